"""Login and logout pages."""

from __future__ import annotations

import time

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from app import http
from app.services import users as user_service
from app.services.errors import AuthenticationFailed
from app.web import csrf

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> http.ResponseValue:
    """Show the login form and log the user in."""
    if request.method == "GET":
        if http.current_user() is not None:
            return redirect(http.redirect_target(url_for("main.home")))
        return render_template("auth/login.html", email="")
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
    return redirect(http.redirect_target(url_for("main.home")))


@bp.post("/logout")
def logout() -> http.ResponseValue:
    """End the browser session."""
    secret = session.get("sid")
    if isinstance(secret, str) and secret:
        user_service.log_out(http.db(), secret, request_id=http.request_id())
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
