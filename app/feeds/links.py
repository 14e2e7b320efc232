"""Feed URLs as people paste them: https and webcal, with a QR code."""

from __future__ import annotations

from dataclasses import dataclass

import segno
from flask import request, url_for

from app import http


@dataclass(frozen=True)
class FeedLinks:
    https: str
    webcal: str
    qr_svg_data_uri: str


def links_for(token: str) -> FeedLinks:
    """Build the feed's URLs (from feeds.public_base_url, else this request's host)."""
    base = http.settings().feeds.public_base_url or request.host_url.rstrip("/")
    url = base + url_for("feeds.feed", name=f"{token}.ics")
    webcal = "webcal://" + url.split("://", 1)[1]
    qr = segno.make(url, error="m").svg_data_uri(scale=4, border=2)
    return FeedLinks(https=url, webcal=webcal, qr_svg_data_uri=qr)
