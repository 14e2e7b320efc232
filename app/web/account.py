"""A user's own account: API tokens, password and the e-mail they receive."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from app import http
from app.auth import require
from app.policy import Action
from app.schemas.admin import PasswordChangeIn, TokenCreateIn
from app.services import accounts as account_service
from app.services import users as user_service
from app.services.errors import InvalidInput, ServiceError
from app.services.reminders import USER_KINDS, wants
from app.web import forms

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/tokens", methods=["GET", "POST"])
@require(Action.MANAGE_OWN_TOKENS)
def tokens() -> http.ResponseValue:
    """List the user's API tokens; create one (shown once)."""
    user = http.current_user()
    assert user is not None
    new_token = None
    status = 200
    if request.method == "POST":
        try:
            body = forms.parse(TokenCreateIn)
            days = http.settings().auth.api_token_days if body.days is None else body.days
            new_token, _ = user_service.create_api_token(
                http.db(), http.actor(), user=user, name=body.name, days=days or None
            )
        except ServiceError as exc:
            flash(exc.message, "error")
            status = exc.status
    return (
        render_template(
            "account/tokens.html",
            tokens=user_service.list_api_tokens(http.db(), user.id),
            new_token=new_token,
        ),
        status,
    )


@bp.post("/tokens/<int:token_id>/revoke")
@require(Action.MANAGE_OWN_TOKENS)
def revoke_token(token_id: int) -> http.ResponseValue:
    """Revoke one of the user's tokens."""
    token = user_service.revoke_api_token(http.db(), http.actor(), token_id)
    flash(f"Token {token.prefix}… revoked.", "success")
    return redirect(url_for("account.tokens"))


@bp.route("/password", methods=["GET", "POST"])
@require(Action.CHANGE_OWN_PASSWORD)
def password() -> http.ResponseValue:
    """Change one's own password; one's other sessions end."""
    status = 200
    if request.method == "POST":
        try:
            body = forms.parse(PasswordChangeIn)
            if body.password != request.form.get("confirm", ""):
                raise InvalidInput("confirm: the two new passwords differ", field="confirm")
            account_service.change_own_password(
                http.db(),
                http.actor(),
                body.current_password,
                body.password,
                http.settings().auth,
                session_secret=session.get("sid"),
            )
        except ServiceError as exc:
            forms.refuse(exc, "password")
            status = exc.status
        else:
            flash("Password changed. Your other sessions have ended.", "success")
            return redirect(url_for("account.password"))
    return render_template("account/password.html"), status


@bp.route("/mail", methods=["GET", "POST"])
@require(Action.CHANGE_OWN_PASSWORD)
def mail() -> http.ResponseValue:
    """Choose which e-mails to receive (change notices, tasks); the worklist shows all."""
    user = http.current_user()
    assert user is not None
    status = 200
    if request.method == "POST":
        try:
            account_service.set_mail_kinds(
                http.db(), http.actor(), request.form.getlist("kinds")[: len(USER_KINDS) + 1]
            )
        except ServiceError as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            flash("Your e-mail choices are saved.", "success")
            return redirect(url_for("account.mail"))
    return (
        render_template(
            "account/mail.html",
            kinds=USER_KINDS,
            chosen={k for k in USER_KINDS if wants(user, k)},
            configured=http.settings().smtp.configured,
            change_hours=http.settings().notices.change_hours,
        ),
        status,
    )
