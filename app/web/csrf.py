"""CSRF protection for every HTML form (the API takes bearer tokens, not cookies)."""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session

from app import http

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def csrf_token() -> str:
    """Return this browser session's CSRF token, creating it on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def rotate() -> None:
    """Give the session a new CSRF token (after login, against session fixation)."""
    session["csrf"] = secrets.token_urlsafe(32)


def _check() -> None:
    if request.method not in _UNSAFE or http.is_api_request() or http.is_cds_request():
        return
    if request.routing_exception is not None:
        return  # no such page or method: the 404 or 405 says so, nothing would run
    if http.is_fhir_request() and (
        "Authorization" in request.headers or http.current_user() is None
    ):
        return  # app/fhir reads only the bearer credential then, or refuses with 401
    expected = session.get("csrf")
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        abort(400, description="The form expired or was not sent from this site.")


def init_app(app: Flask) -> None:
    app.before_request(_check)
    app.jinja_env.globals["csrf_token"] = csrf_token
