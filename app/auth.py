"""Who is asking (session cookie or bearer token) and the decorator that asks the policy."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, flash, g, redirect, request, session, url_for

from app import http
from app.policy import Action, can
from app.services import users as user_service

F = TypeVar("F", bound=Callable[..., Any])

#: Attribute set on every view the policy guards (the permission matrix test reads it).
POLICY_ATTRIBUTE = "_policy_action"


def load_user() -> None:
    """Attach the authenticated user to the request: bearer token on the API, cookie on pages."""
    g.user = None
    if http.is_api_request():
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            g.user = user_service.resolve_api_token(http.db(), credentials.strip())
        return
    secret = session.get("sid")
    if isinstance(secret, str) and secret:
        g.user = user_service.resolve_login_session(http.db(), secret, http.settings().auth)
        if g.user is None:
            session.pop("sid", None)
            minutes = http.settings().auth.session_idle_minutes
            flash(f"You were signed out after {minutes:g} minutes without use. Sign in to go on.")


def require(action: Action) -> Callable[[F], F]:
    """Guard a view: anonymous -> 401 (API) or the login page; wrong role -> 403."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = http.current_user()
            if user is None:
                if http.is_api_request():
                    abort(401)
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not can(user.role, action):
                abort(403)
            return view(*args, **kwargs)

        setattr(wrapped, POLICY_ATTRIBUTE, action)
        return wrapped  # type: ignore[return-value]

    return decorator
