"""GET /feeds/<token>.ics: conditional, compressed, rate-limited, the same 404 for every miss."""

from __future__ import annotations

import hashlib
import zlib
from email.utils import format_datetime, parsedate_to_datetime

from flask import Blueprint, Response, request

from app import http
from app.db import utcnow
from app.services import feeds as feed_service
from app.services import ratelimit
from app.services import subscriptions as subscription_service

bp = Blueprint("feeds", __name__)

_MAX_QUERY_BYTES = 256


def _not_found() -> Response:
    return Response("Not found\n", status=404, mimetype="text/plain")


def _etag_matches(header: str, etags: set[str]) -> bool:
    if header.strip() == "*":
        return True
    sent = {part.strip().removeprefix("W/") for part in header.split(",")}
    return bool(sent & etags)


@bp.get("/feeds/<path:name>")
def feed(name: str) -> Response:
    """Serve a subscription's calendar at /feeds/<token>.ics; anything else is the same 404."""
    token = name.removesuffix(".ics")
    if token == name or "/" in token:
        token = ""
    if len(request.query_string) > _MAX_QUERY_BYTES:
        return Response("Query string too long\n", status=400, mimetype="text/plain")
    settings = http.settings()
    key = hashlib.sha256(token.encode()).hexdigest()
    allowed, wait = ratelimit.hit(http.db(), key, settings.feeds.rate_limit_per_minute, utcnow())
    if not allowed:
        response = Response("Too many requests\n", status=429, mimetype="text/plain")
        response.headers["Retry-After"] = str(wait)
        return response
    session = http.db()
    sub = subscription_service.resolve(session, token)
    if sub is None:
        return _not_found()
    now = utcnow()
    print_ = feed_service.fingerprint(session, sub, settings, now)
    wants_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    if_none_match = request.headers.get("If-None-Match")
    # Nothing in the feed's rows changed since the body this ETag names: skip rendering.
    if (
        sub.content_etag
        and sub.content_fingerprint == print_
        and if_none_match is not None
        and _etag_matches(if_none_match, {sub.content_etag, _gz(sub.content_etag)})
    ):
        subscription_service.record_fetch(session, sub, sub.content_etag, print_, now)
        return _not_modified(sub.content_etag, wants_gzip, sub.content_changed_at)
    rendered = feed_service.render_feed(session, sub, settings, now)
    etag = rendered.etag
    subscription_service.record_fetch(session, sub, etag, print_, now)
    last_modified = sub.content_changed_at or now
    if if_none_match is not None:
        if _etag_matches(if_none_match, {etag, _gz(etag)}):
            return _not_modified(etag, wants_gzip, last_modified)
    elif _not_modified_since(last_modified):
        return _not_modified(etag, wants_gzip, last_modified)
    return _full(rendered, wants_gzip, last_modified)


def _full(rendered: feed_service.RenderedFeed, gzipped: bool, last_modified: object) -> Response:
    """A 200 with the body; its blocks go out as they are, never joined into one copy."""
    chunks, etag = rendered.chunks, rendered.etag
    if gzipped:
        chunks, etag = (_gzip(chunks),), _gz(etag)
    response = Response(chunks, status=200, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Length"] = str(sum(len(chunk) for chunk in chunks))
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    return _cache_headers(response, etag, last_modified)


def _gzip(chunks: tuple[bytes, ...]) -> bytes:
    """gzip.compress(b"".join(chunks), compresslevel=6, mtime=0), without the joined copy."""
    # wbits 31: zlib's gzip wrapper, mtime 0, exactly what gzip.compress writes with mtime=0.
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = [deflate.compress(chunk) for chunk in chunks]
    out.append(deflate.flush())
    return b"".join(out)


def _gz(etag: str) -> str:
    return etag[:-1] + '-gzip"'


def _not_modified_since(last_modified: object) -> bool:
    header = request.headers.get("If-Modified-Since")
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    # HTTP dates have whole seconds; content_changed_at is stored without microseconds.
    return last_modified <= since  # type: ignore[operator]


def _not_modified(etag: str, gzipped: bool, last_modified: object) -> Response:
    response = Response(status=304)
    return _cache_headers(response, _gz(etag) if gzipped else etag, last_modified)


def _cache_headers(response: Response, etag: str, last_modified: object) -> Response:
    response.headers["ETag"] = etag
    if last_modified is not None:
        response.headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)  # type: ignore[arg-type]
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Vary"] = "Accept-Encoding"
    return response
