"""JSON API: the caller, staff accounts, API tokens and the audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from flask import url_for

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.admin import (
    AuditPageOut,
    AuditQuery,
    HomeCenterIn,
    PasswordChangeIn,
    ResetLinkOut,
    ResetLinkSentOut,
    RoleIn,
    TokenCreatedOut,
    TokenCreateIn,
    TokenList,
    TokenOut,
    UserCreateIn,
    UserList,
    UserOut,
)
from app.services import accounts as account_service
from app.services import audit
from app.services import users as user_service
from app.services.errors import InvalidInput


@bp.get("/me")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(UserOut)
def me() -> Any:
    """The user the token belongs to."""
    return http.current_user()


@bp.get("/users")
@guarded(Action.MANAGE_USERS)
@bp.output(UserList)
def users() -> Any:
    """Staff accounts."""
    return {"users": user_service.list_users(http.db())}


@bp.post("/users")
@guarded(Action.MANAGE_USERS)
@bp.input(UserCreateIn, arg_name="body")
@bp.output(UserOut, status_code=201)
def create_user(body: UserCreateIn) -> Any:
    """Create a staff account, optionally at a home center (admin)."""
    return user_service.create_user(
        http.db(), http.actor(), settings=http.settings().auth, **body.model_dump()
    )


@bp.post("/users/<int:user_id>/deactivate")
@guarded(Action.MANAGE_USERS)
@bp.output(UserOut)
def deactivate_user(user_id: int) -> Any:
    """Deactivate an account: its sessions, API tokens and reset links end at once (admin)."""
    return account_service.set_active(http.db(), http.actor(), user_id, active=False)


@bp.post("/users/<int:user_id>/activate")
@guarded(Action.MANAGE_USERS)
@bp.output(UserOut)
def activate_user(user_id: int) -> Any:
    """Reactivate an account (the user signs in again; old tokens stay revoked) (admin)."""
    return account_service.set_active(http.db(), http.actor(), user_id, active=True)


@bp.put("/users/<int:user_id>/role")
@guarded(Action.MANAGE_USERS)
@bp.input(RoleIn, arg_name="body")
@bp.output(UserOut)
def change_role(user_id: int, body: RoleIn) -> Any:
    """Give an account another role (admin)."""
    return account_service.change_role(http.db(), http.actor(), user_id, body.role)


@bp.put("/users/<int:user_id>/home-center")
@guarded(Action.MANAGE_USERS)
@bp.input(HomeCenterIn, arg_name="body")
@bp.output(UserOut)
def set_home_center(user_id: int, body: HomeCenterIn) -> Any:
    """Set the center an account works at; null: every center (admin)."""
    return account_service.set_home_center(http.db(), http.actor(), user_id, body.home_center_id)


@bp.post("/users/<int:user_id>/unlock")
@guarded(Action.MANAGE_USERS)
@bp.output(UserOut)
def unlock_user(user_id: int) -> Any:
    """Clear the failed logins that lock an account out, from every address (admin)."""
    return account_service.unlock(http.db(), http.actor(), user_id)


@bp.post("/users/<int:user_id>/reset-link")
@guarded(Action.MANAGE_USERS)
@bp.output(ResetLinkOut, status_code=201)
def reset_link(user_id: int) -> Any:
    """Make a one-time password reset link to hand to the user (admin); older links end."""
    plain, reset = account_service.create_reset_link(
        http.db(), http.actor(), user_id, http.settings().auth
    )
    return {
        "url": url_for("auth.reset", token=plain, _external=True),
        "expires_at": reset.expires_at,
    }


F = TypeVar("F", bound=Callable[..., Any])


def _also_answers(responses: dict[int, str]) -> Callable[[F], F]:
    """Document more answers beside those `guarded` lists (a second bp.doc would replace them)."""

    def decorator(view: F) -> F:
        documented = dict(getattr(view, "_spec", {}).get("responses") or {})
        return bp.doc(responses={**documented, **responses})(view)

    return decorator


def _public_reset_url(token: str) -> str:
    return http.public_url("auth.reset", token=token)


@bp.post("/users/<int:user_id>/reset-link/email")
@_also_answers({503: "The mail server cannot be reached or refused the e-mail; no link was made"})
@guarded(Action.MANAGE_USERS)
@bp.output(ResetLinkSentOut, status_code=201)
def email_reset_link(user_id: int) -> Any:
    """E-mail a one-time password reset link to the account's own address (admin).

    Only where the clinic configured a mail server ([smtp] in config.toml; 409 otherwise).
    The link is not in the answer; older links end. If the mail server cannot take the
    e-mail (503) no link is made and the older one still works.
    """
    reset = account_service.email_reset_link(
        http.db(), http.actor(), user_id, http.settings(), _public_reset_url
    )
    return {"sent_to": reset.user.email, "expires_at": reset.expires_at}


@bp.post("/me/password")
@guarded(Action.CHANGE_OWN_PASSWORD)
@bp.input(PasswordChangeIn, arg_name="body")
@bp.output({}, status_code=204)
def change_password(body: PasswordChangeIn) -> Any:
    """Change the caller's password; their browser sessions end (this token stays)."""
    account_service.change_own_password(
        http.db(), http.actor(), body.current_password, body.password, http.settings().auth
    )
    return ""


@bp.get("/tokens")
@guarded(Action.MANAGE_OWN_TOKENS)
@bp.output(TokenList)
def tokens() -> Any:
    """The caller's API tokens."""
    user = http.current_user()
    assert user is not None
    return {"tokens": user_service.list_api_tokens(http.db(), user.id)}


@bp.post("/tokens")
@guarded(Action.MANAGE_OWN_TOKENS)
@bp.input(TokenCreateIn, arg_name="body")
@bp.output(TokenCreatedOut, status_code=201)
def create_token(body: TokenCreateIn) -> Any:
    """Create an API token for the caller; the token is in this answer only."""
    user = http.current_user()
    assert user is not None
    days = http.settings().auth.api_token_days if body.days is None else body.days
    plain, token = user_service.create_api_token(
        http.db(), http.actor(), user=user, name=body.name, days=days or None
    )
    return {**TokenOut.model_validate(token).model_dump(), "token": plain}


@bp.delete("/tokens/<int:token_id>")
@guarded(Action.MANAGE_OWN_TOKENS)
@bp.output({}, status_code=204)
def revoke_token(token_id: int) -> Any:
    """Revoke an API token (the caller's own; an admin's may be anyone's)."""
    user_service.revoke_api_token(http.db(), http.actor(), token_id)
    return ""


@bp.get("/audit")
@guarded(Action.VIEW_AUDIT)
@bp.input(AuditQuery, location="query", arg_name="query")
@bp.output(AuditPageOut)
def audit_events(query: AuditQuery) -> Any:
    """The audit trail, newest first, filtered (admin)."""
    for name in ("since", "until"):
        value = getattr(query, name)
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name}: give a time zone offset, e.g. Z", field=name)
    filters = audit.AuditFilter(
        actor=query.actor,
        action=query.action,
        entity_type=query.entity_type,
        entity_id=query.entity_id,
        since=query.since.astimezone(dt.UTC) if query.since else None,
        until=query.until.astimezone(dt.UTC) if query.until else None,
    )
    page = audit.list_events(
        http.db(), filters, page=query.page, page_size=http.settings().audit.page_size
    )
    return {
        "events": page.events,
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
    }
