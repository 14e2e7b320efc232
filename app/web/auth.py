"""Login and logout pages."""

from __future__ import annotations

import time

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from app import http
from app.services import accounts as account_service
from app.services import users as user_service
from app.services.errors import AuthenticationFailed, ServiceError
from app.web import csrf

bp = Blueprint("auth", __name__)

#: Cookie holding the e-mail last signed in with on this browser (not a credential).
_LAST_EMAIL = "last_email"
_LAST_EMAIL_DAYS = 30


@bp.route("/login", methods=["GET", "POST"])
def login() -> http.ResponseValue:
    """Show the login form and log the user in."""
    if request.method == "GET":
        if http.current_user() is not None:
            return redirect(http.redirect_target(url_for("main.home")))
        return render_template("auth/login.html", email=request.cookies.get(_LAST_EMAIL, ""))
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    try:
        result = user_service.log_in(
            http.db(),
            email=email,
            password=password,
            settings=http.settings().auth,
            request_id=http.request_id(),
            address=request.remote_addr or "unknown",
        )
    except AuthenticationFailed as exc:
        time.sleep(http.settings().auth.failed_login_delay_seconds)
        return render_template("auth/login.html", email=email, error=exc.message), 401
    session.clear()
    session["sid"] = result.session_secret
    session.permanent = True
    csrf.rotate()
    flash(f"Welcome, {result.user.full_name}.", "success")
    response = redirect(http.redirect_target(url_for("main.home")))
    # A shared tablet offers the last e-mail used on it, so signing in again is one password.
    response.set_cookie(
        _LAST_EMAIL,
        result.user.email,
        max_age=_LAST_EMAIL_DAYS * 24 * 3600,
        secure=request.is_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> http.ResponseValue:
    """Set a new password with the one-time link an admin handed over."""
    try:
        user = account_service.reset_link_user(http.db(), token)
    except AuthenticationFailed as exc:
        return render_template("auth/reset.html", error=exc.message, user=None), 410
    if request.method == "GET":
        return render_template("auth/reset.html", user=user)
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        message = "confirm: the two passwords differ"
        return render_template("auth/reset.html", user=user, error=message), 422
    try:
        account_service.use_reset_link(
            http.db(), token, password, http.settings().auth, request_id=http.request_id()
        )
    except ServiceError as exc:
        return render_template("auth/reset.html", user=user, error=exc.message), exc.status
    session.clear()
    flash("Password set. Sign in with it now.", "success")
    return redirect(url_for("auth.login"))


@bp.post("/logout")
def logout() -> http.ResponseValue:
    """End the browser session."""
    secret = session.get("sid")
    if isinstance(secret, str) and secret:
        user_service.log_out(http.db(), secret, request_id=http.request_id())
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
