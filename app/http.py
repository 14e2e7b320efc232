"""Per-request plumbing shared by the web pages and the JSON API."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app, g, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from app.config import Settings
from app.models import User
from app.services.context import Actor

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Deepest JSON nesting a request body may have (ours are at most 4 deep; Python's parser
#: would recurse past its limit on about 1,000 and answer 500).
MAX_JSON_DEPTH = 32


@dataclass
class AppState:
    """What the app holds between requests: settings, the engine and a session factory."""

    settings: Settings
    engine: sa.Engine | None
    session_factory: so.sessionmaker[so.Session]
    #: For GET, HEAD and OPTIONS requests (app.db.make_read_session_factory).
    read_session_factory: so.sessionmaker[so.Session] | None = None


def state() -> AppState:
    found: AppState = current_app.extensions["ivig"]
    return found


def settings() -> Settings:
    return state().settings


def db() -> so.Session:
    """Return this request's database session, opening it on first use."""
    if "db_session" not in g:
        found = state()
        factory = found.session_factory
        if found.read_session_factory and request.method in ("GET", "HEAD", "OPTIONS"):
            factory = found.read_session_factory
        g.db_session = factory()
    session: so.Session = g.db_session
    return session


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def request_id() -> str:
    return g.get("request_id") or "-"


def actor() -> Actor:
    """Return the acting user for a service call."""
    user = current_user()
    if user is None:
        return Actor(label="anonymous", request_id=request_id())
    return Actor(label=user.email, user_id=user.id, role=user.role, request_id=request_id())


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link to send outside the browser (an e-mail): from feeds.public_base_url,
    else this request's host."""
    base = settings().feeds.public_base_url
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def is_cds_request() -> bool:
    """A CDS Hooks call (app/cds): a signed JWT, no cookie, so no CSRF token either."""
    return request.path == "/cds-services" or request.path.startswith("/cds-services/")


def is_fhir_request() -> bool:
    """A FHIR call (app/fhir): staff on the pages, an API token, or an EHR's signed JWT."""
    return request.path == "/fhir" or request.path.startswith("/fhir/")


def _assign_request_id() -> None:
    # Our own id goes into logs and audit rows; a client's is only echoed back, never trusted.
    g.request_id = uuid.uuid4().hex
    incoming = request.headers.get("X-Request-ID", "")
    g.client_request_id = incoming if _REQUEST_ID.match(incoming) else None


def json_depth(body: bytes) -> int:
    """Return how deeply a JSON text nests arrays and objects (strings are skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _refuse_deep_json() -> None:
    if not request.is_json:
        return
    body = request.get_data(cache=True)
    if json_depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
    if body.strip() and not body.lstrip().startswith(b"{"):
        # `null` or a list would otherwise read as "no fields given" and take the defaults.
        raise BadRequest("The JSON body must be an object ({...}).")


def csp_nonce() -> str:
    """Return this response's nonce for the one <style> block a page may carry."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id()
    if g.get("client_request_id"):
        response.headers["X-Client-Request-ID"] = g.client_request_id
    if settings().is_production:
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    response.headers.setdefault(
        "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; "
        f"style-src 'self' 'nonce-{csp_nonce()}'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'",
    )
    if request.endpoint != "static" and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def _close_session(_exc: BaseException | None) -> None:
    session: so.Session | None = g.pop("db_session", None)
    if session is not None:
        # close() rolls back what is left and lets the objects go; a rollback() first would
        # expire each of them (a day board's 900 rows: 12 ms) only to drop them after.
        session.close()


def init_app(app: Flask) -> None:
    """Register the request hooks every request goes through."""
    app.before_request(_assign_request_id)
    app.before_request(_refuse_deep_json)
    app.after_request(_finish)
    app.teardown_appcontext(_close_session)
    app.jinja_env.globals["csp_nonce"] = csp_nonce


def redirect_target(default: str) -> str:
    """Return the ?next= path if it is a local path, else the default."""
    target = request.values.get("next", "")
    parts = urlsplit(target)
    if (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target)
        and not parts.scheme
        and not parts.netloc
    ):
        return target
    return default


ResponseValue = ResponseReturnValue
