"""Staff accounts over their life: an admin deactivates, reactivates, changes a role, unlocks
and hands over a password reset link; everyone changes their own password.

Decisions:
- Deactivating ends the user's browser sessions, revokes their API tokens and ends any reset
  link at once; reactivating restores none of them (the user signs in again, makes new tokens).
- An admin cannot deactivate or demote themselves, and the clinic always keeps one active
  admin: nobody can lock the clinic out of its own setup.
- A reset link is shown once (only its hash is stored), works once, within the configured
  hours, and a newer link replaces an older one. Using it ends every session of the user.
- Where a mail server is configured the link may instead go by e-mail to the account's own
  address. The link, its audit row and the e-mail are one unit: the e-mail is sent last,
  before the commit, so a mail server that cannot be reached leaves no link behind (and the
  older link stands; should the commit itself fail after the send, the e-mailed link is simply
  refused). The link never reaches the admin's screen then.
- Changing one's own password needs the current one and ends one's other sessions.
- Unlocking clears the failed-login counters of the user's e-mail from every address.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from email.message import EmailMessage

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import policy
from app.config import AuthSettings, Settings
from app.db import utcnow
from app.models import (
    ApiToken,
    LoginSession,
    LoginThrottle,
    PasswordReset,
    Role,
    User,
)
from app.services import audit, mail
from app.services import users as user_service
from app.services.context import Actor, unit_of_work
from app.services.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
)


def _count(session: so.Session, statement: sa.Update) -> int:
    """Run an UPDATE and return how many rows it changed."""
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0))


def _load(session: so.Session, user_id: int) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"user_id: no user {user_id}", field="user_id")
    return user


def _other_active_admins(session: so.Session, user_id: int) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.active.is_(True), User.id != user_id)
        )
        or 0
    )


def _end_access(
    session: so.Session, user_id: int, now: dt.datetime, keep_session: str | None = None
) -> dict[str, int]:
    """End the user's browser sessions (but `keep_session`'s, a secret hash) and reset links;
    return how many ended."""
    ended = _count(
        session,
        sa.update(LoginSession)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.ended_at.is_(None),
            LoginSession.secret_hash != (keep_session or ""),
        )
        .values(ended_at=now),
    )
    _count(
        session,
        sa.update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.ended_at.is_(None))
        .values(ended_at=now),
    )
    return {"sessions_ended": ended}


def set_active(
    session: so.Session, actor: Actor, user_id: int, active: bool, now: dt.datetime | None = None
) -> User:
    """Deactivate (sessions, tokens and reset links end at once) or reactivate an account."""
    now = now or utcnow()
    with unit_of_work(session):
        user = _load(session, user_id)
        if user.active == active:
            return user
        if not active:
            if not policy.may_lock_out(actor.user_id, user.id):
                raise Forbidden("user_id: you cannot deactivate your own account", "user_id")
            if user.role == Role.ADMIN and _other_active_admins(session, user.id) == 0:
                raise Conflict("user_id: the clinic needs at least one active admin", "user_id")
        user.active = active
        ended: dict[str, int] = {}
        if not active:
            ended = _end_access(session, user.id, now)
            ended["tokens_revoked"] = _count(
                session,
                sa.update(ApiToken)
                .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now),
            )
        audit.record(
            session,
            actor,
            "user.activate" if active else "user.deactivate",
            "user",
            user.id,
            before={"active": not active},
            after={"active": active, **ended},
        )
    return user


def change_role(session: so.Session, actor: Actor, user_id: int, role: str) -> User:
    """Give an account another role (it applies from the user's next request)."""
    if role not in {r.value for r in Role}:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role: one of {allowed} (got {role!r})", field="role")
    with unit_of_work(session):
        user = _load(session, user_id)
        if user.role == role:
            return user
        if user.role == Role.ADMIN:
            if not policy.may_lock_out(actor.user_id, user.id):
                raise Forbidden("role: you cannot take the admin role from yourself", "role")
            if user.active and _other_active_admins(session, user.id) == 0:
                raise Conflict("role: the clinic needs at least one active admin", "role")
        before = user.role
        user.role = role
        audit.record(
            session,
            actor,
            "user.role",
            "user",
            user.id,
            before={"role": before},
            after={"role": role},
        )
    return user


def _clear_counters(session: so.Session, user: User) -> int:
    return _count(
        session,
        sa.update(LoginThrottle)
        .where(LoginThrottle.email_hash == user_service.email_hash(user.email))
        .values(failures=0, locked_until=None),
    )


def unlock(session: so.Session, actor: Actor, user_id: int) -> User:
    """Clear the failed logins counted against the user's e-mail, from every address."""
    with unit_of_work(session):
        user = _load(session, user_id)
        cleared = _clear_counters(session, user)
        user.failed_logins, user.locked_until = 0, None
        audit.record(session, actor, "user.unlock", "user", user.id, after={"counters": cleared})
    return user


def locked_ids(
    session: so.Session, users: Sequence[User], now: dt.datetime | None = None
) -> set[int]:
    """Which of these users have logins refused from some address right now (one query)."""
    now = now or utcnow()
    by_hash = {user_service.email_hash(user.email): user.id for user in users}
    locked = session.scalars(
        sa.select(LoginThrottle.email_hash).where(
            LoginThrottle.email_hash.in_(by_hash), LoginThrottle.locked_until > now
        )
    )
    return {by_hash[key] for key in locked if key is not None}


def create_reset_link(
    session: so.Session,
    actor: Actor,
    user_id: int,
    settings: AuthSettings,
    now: dt.datetime | None = None,
    emailed: bool = False,
) -> tuple[str, PasswordReset]:
    """Make a one-time password reset token for an active account; the plain token is
    returned once (older links of the user end). `emailed` says so in the audit row."""
    now = now or utcnow()
    with unit_of_work(session):
        user = _load(session, user_id)
        if not user.active:
            raise Conflict("user_id: reactivate the account before resetting its password")
        _count(
            session,
            sa.update(PasswordReset)
            .where(PasswordReset.user_id == user.id, PasswordReset.ended_at.is_(None))
            .values(ended_at=now),
        )
        plain = secrets.token_urlsafe(32)
        reset = PasswordReset(
            user_id=user.id,
            token_hash=user_service.sha256(plain),
            created_by_id=actor.user_id,
            created_at=now,
            expires_at=now + dt.timedelta(hours=settings.password_reset_hours),
        )
        session.add(reset)
        session.flush()
        after: dict[str, object] = {"expires_at": reset.expires_at}
        if emailed:
            after["emailed_to"] = user.email
        audit.record(session, actor, "user.reset_link", "user", user.id, after=after)
    return plain, reset


def email_reset_link(
    session: so.Session,
    actor: Actor,
    user_id: int,
    settings: Settings,
    link_for: Callable[[str], str],
    now: dt.datetime | None = None,
) -> PasswordReset:
    """E-mail a one-time password reset link to the account's own address; `link_for`
    turns the token into the absolute URL. The link exists only if the mail server took it."""
    mail.require_configured(settings.smtp)
    now = now or utcnow()
    with unit_of_work(session):
        plain, reset = create_reset_link(session, actor, user_id, settings.auth, now, emailed=True)
        message = _reset_message(session, actor, reset, link_for(plain), settings, now)
        try:
            mail.send(settings.smtp, message)
        except Unavailable as exc:
            raise Unavailable(
                f"{exc.message} The reset link for {reset.user.email} was not sent and does "
                'not work; try again, or use "Reset link" to hand one over.'
            ) from exc
    return reset


def _in_words(delta: dt.timedelta) -> str:
    """`24 hours`, `3 days`, `90 minutes`: a validity period as a person says it."""
    minutes = max(1, round(delta.total_seconds() / 60))
    count, unit = minutes, "minute"
    if minutes % (24 * 60) == 0 and minutes >= 48 * 60:
        count, unit = minutes // (24 * 60), "day"
    elif minutes % 60 == 0:
        count, unit = minutes // 60, "hour"
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _reset_message(
    session: so.Session,
    actor: Actor,
    reset: PasswordReset,
    link: str,
    settings: Settings,
    now: dt.datetime,
) -> EmailMessage:
    user, clinic = reset.user, settings.app.clinic_name
    asker = session.get(User, actor.user_id) if actor.user_id is not None else None
    name = asker.full_name if asker is not None else actor.label
    who = f"{name} ({asker.email})" if asker is not None else name
    expires = reset.expires_at.astimezone(dt.UTC)
    until = f"{expires:%H:%M} UTC on {expires:%A} {expires.day} {expires:%B %Y}"
    body = mail.paragraphs(
        f"Hello {user.full_name},",
        f"{who} asked for a new password for your account at {clinic} ({user.email}). "
        "Open this link to choose one:",
        link,
        f"The link works once, for {_in_words(reset.expires_at - now)}: until {until}. "
        "A newer link replaces this one, and setting the password signs you out everywhere.",
        f"If you did not expect this e-mail, tell {name} or your clinic's administrator. "
        "Nobody can change your password without this link.",
    )
    subject = f"{clinic}: your password reset link"
    return mail.compose(settings.smtp, user.email, subject, body, to_name=user.full_name)


def _live_reset(session: so.Session, plain: str, now: dt.datetime) -> PasswordReset:
    reset = session.scalar(
        sa.select(PasswordReset)
        .where(PasswordReset.token_hash == user_service.sha256(plain[:200]))
        .with_for_update()
    )
    if reset is None or reset.ended_at is not None or reset.expires_at <= now:
        raise AuthenticationFailed("This reset link has been used, replaced or has expired.")
    if not reset.user.active:
        raise AuthenticationFailed("This account is deactivated.")
    return reset


def reset_link_user(session: so.Session, plain: str, now: dt.datetime | None = None) -> User:
    """Return the user a reset link is for, or raise AuthenticationFailed."""
    return _live_reset(session, plain, now or utcnow()).user


def _check_new_password(password: str, settings: AuthSettings) -> None:
    if len(password) < settings.password_min_length:
        raise InvalidInput(
            f"password: at least {settings.password_min_length} characters", field="password"
        )
    if len(password) > 1024:
        raise InvalidInput("password: at most 1024 characters", field="password")


def use_reset_link(
    session: so.Session,
    plain: str,
    password: str,
    settings: AuthSettings,
    now: dt.datetime | None = None,
    request_id: str | None = None,
) -> User:
    """Set a new password with a reset link; the link ends and so do the user's sessions."""
    now = now or utcnow()
    _check_new_password(password, settings)
    with unit_of_work(session):
        reset = _live_reset(session, plain, now)
        user = reset.user
        user.password_hash = user_service.hash_password(password)
        ended = _end_access(session, user.id, now)
        unlock_counters = _clear_counters(session, user)
        actor = Actor(label=user.email, user_id=user.id, role=user.role, request_id=request_id)
        audit.record(
            session,
            actor,
            "user.password_reset",
            "user",
            user.id,
            after=ended | {"counters_cleared": unlock_counters},
        )
    return user


def change_own_password(
    session: so.Session,
    actor: Actor,
    current: str,
    password: str,
    settings: AuthSettings,
    session_secret: str | None = None,
    now: dt.datetime | None = None,
) -> User:
    """Change one's own password (the current one is needed); one's other sessions end."""
    now = now or utcnow()
    if actor.user_id is None:
        raise Forbidden("only a signed-in user changes their password")
    _check_new_password(password, settings)
    with unit_of_work(session):
        user = _load(session, actor.user_id)
        if not user_service.verify_password(user.password_hash, current):
            raise InvalidInput(
                "current_password: that is not your current password", "current_password"
            )
        if current == password:
            raise InvalidInput("password: choose a password other than the current one", "password")
        user.password_hash = user_service.hash_password(password)
        keep = user_service.sha256(session_secret) if session_secret else None
        ended = _end_access(session, user.id, now, keep_session=keep)
        audit.record(session, actor, "user.password_change", "user", user.id, after=ended)
    return user


def set_home_center(session: so.Session, actor: Actor, user_id: int, center_id: int | None) -> User:
    """Set the center an account works at (None: every center); its home page opens on it."""
    with unit_of_work(session):
        user = _load(session, user_id)
        user_service.check_center(session, center_id)
        if user.home_center_id == center_id:
            return user
        before = user.home_center_id
        user.home_center_id = center_id
        audit.record(
            session,
            actor,
            "user.home_center",
            "user",
            user.id,
            before={"home_center_id": before},
            after={"home_center_id": center_id},
        )
    return user


def set_mail_kinds(session: so.Session, actor: Actor, kinds: Sequence[str]) -> User:
    """Choose which kinds of e-mail one receives (the worklist shows every task anyway)."""
    from app.services import reminders

    unknown = sorted(set(kinds) - set(reminders.USER_KINDS))
    if unknown:
        raise InvalidInput(
            f"kinds: unknown {', '.join(unknown)}; known: {', '.join(reminders.USER_KINDS)}",
            field="kinds",
        )
    if actor.user_id is None:
        raise Forbidden("only a signed-in user chooses their e-mail")
    with unit_of_work(session):
        user = _load(session, actor.user_id)
        before = sorted(user.mail_kinds) if user.mail_kinds is not None else None
        user.mail_kinds = sorted(set(kinds))
        audit.record(
            session,
            actor,
            "user.mail_kinds",
            "user",
            user.id,
            before={"mail_kinds": before},
            after={"mail_kinds": user.mail_kinds},
        )
    return user
