"""Staff accounts: creation, login with lockout, browser sessions and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
import sqlalchemy.orm as so
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app import policy
from app.config import AuthSettings
from app.db import utcnow
from app.models import ApiToken, Center, LoginSession, LoginThrottle, Role, User
from app.models.user import EMAIL_PATTERN
from app.services import audit
from app.services.context import Actor, unit_of_work
from app.services.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing")
_EMAIL = re.compile(EMAIL_PATTERN)
TOKEN_PREFIX = "ivig_"  # noqa: S105 (a prefix, not a secret)
# Touch last_seen/last_used at most this often, so reads do not write on every request.
_TOUCH_EVERY = dt.timedelta(minutes=1)


def sha256(secret: str) -> str:
    """How a secret (session, token, reset link) is stored: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of a password (PHC string)."""
    return _hasher.hash(password)


def _user_view(user: User) -> dict[str, object]:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "active": user.active,
        "home_center_id": user.home_center_id,
    }


def check_center(session: so.Session, center_id: int | None) -> None:
    """A home center, when given, is a center."""
    if center_id is not None and session.get(Center, center_id) is None:
        raise NotFound(f"home_center_id: no center {center_id}", field="home_center_id")


def email_hash(email: str) -> str:
    """How a login counter names the e-mail it counts (never in clear)."""
    return sha256(f"email|{normalise_email(email)}")


def normalise_email(email: str) -> str:
    """Return the email as stored: trimmed and lower-cased."""
    return email.strip().lower()


def create_user(
    session: so.Session,
    actor: Actor,
    *,
    email: str,
    full_name: str,
    role: str,
    password: str,
    settings: AuthSettings,
    home_center_id: int | None = None,
) -> User:
    """Create a staff account with an argon2id-hashed password, at its home center when one
    is given."""
    email = normalise_email(email)
    if not _EMAIL.match(email):
        raise InvalidInput("email: not a valid email address", field="email")
    full_name = full_name.strip()
    if not 1 <= len(full_name) <= 120:
        raise InvalidInput("name: give 1 to 120 characters", field="full_name")
    if role not in {r.value for r in Role}:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role: must be one of {allowed} (got {role!r})", field="role")
    if len(password) < settings.password_min_length:
        raise InvalidInput(
            f"password: at least {settings.password_min_length} characters", field="password"
        )
    with unit_of_work(session):
        if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            raise Conflict(f"email: a user with {email} exists already", field="email")
        check_center(session, home_center_id)
        user = User(
            email=email,
            full_name=full_name,
            role=role,
            password_hash=hash_password(password),
            home_center_id=home_center_id,
        )
        session.add(user)
        session.flush()
        audit.record(session, actor, "user.create", "user", user.id, after=_user_view(user))
    return user


def get_user_by_email(session: so.Session, email: str) -> User:
    """Return the user with this email, or raise NotFound."""
    user = session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"email: no user with {normalise_email(email)}", field="email")
    return user


def list_users(session: so.Session) -> list[User]:
    """Return every user, by role then name."""
    return list(session.scalars(sa.select(User).order_by(User.role, User.full_name)))


@dataclass(frozen=True)
class LoginResult:
    user: User
    session_secret: str


def _throttle_rows(
    session: so.Session, email: str, address: str, now: dt.datetime
) -> list[LoginThrottle]:
    """Lock (creating if new) the counters for this e-mail from this address, and the address."""
    keys = [sha256(f"pair|{email}|{address}"), sha256(f"address|{address}")]
    insert = (
        sa.dialects.postgresql.insert
        if session.get_bind().dialect.name == "postgresql"
        else sa.dialects.sqlite.insert
    )
    emails = [email_hash(email), None]
    session.execute(
        insert(LoginThrottle)
        .values(
            [
                {"key": key, "email_hash": owner, "failures": 0, "window_started_at": now}
                for key, owner in zip(keys, emails, strict=True)
            ]
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    rows = {
        row.key: row
        for row in session.scalars(
            sa.select(LoginThrottle)
            .where(LoginThrottle.key.in_(keys))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    return [rows[key] for key in keys]


def log_in(
    session: so.Session,
    *,
    email: str,
    password: str,
    settings: AuthSettings,
    request_id: str | None = None,
    now: dt.datetime | None = None,
    address: str = "unknown",
) -> LoginResult:
    """Check a password, count failures per e-mail and address, and open a browser session.

    A known and an unknown e-mail get the same answers at the same cost, and too many failures
    refuse that e-mail from that address (and, past a higher count, that address), never the
    account from everywhere.
    """
    now = now or utcnow()
    email = normalise_email(email)
    with unit_of_work(session):
        pair, place = _throttle_rows(session, email, address, now)
        user = session.scalar(sa.select(User).where(User.email == email).with_for_update())
        known = user is not None and user.active
        actor = (
            Actor(label=user.email, user_id=user.id, role=user.role, request_id=request_id)
            if known and user is not None
            else Actor(label=email[:254] or "(blank)", request_id=request_id)
        )
        entity = user.id if known and user is not None else None
        locked = max((r.locked_until for r in (pair, place) if r.locked_until), default=None)
        if locked is not None and locked > now:
            verify_password(_DUMMY_HASH, password)  # same cost as a wrong password
            minutes = max(1, int((locked - now).total_seconds() // 60) + 1)
            audit.record(session, actor, "user.login_refused_locked", "user", entity)
            session.commit()
            raise AuthenticationFailed(
                "Too many failed attempts: logins to this account from here are locked. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
            )
        verified = verify_password(user.password_hash if known else _DUMMY_HASH, password)  # type: ignore[union-attr]
        if not (known and verified):
            window = dt.timedelta(minutes=settings.lockout_minutes)
            limits = (settings.max_failed_logins, settings.max_failed_logins_per_address)
            locking = False
            for row, limit in zip((pair, place), limits, strict=True):
                if row.window_started_at + window < now:
                    row.failures, row.window_started_at = 0, now
                row.failures += 1
                if row.failures >= limit:
                    row.locked_until, row.failures = now + window, 0
                    locking = True
            if locking:
                audit.record(
                    session,
                    actor,
                    "user.locked",
                    "user",
                    entity,
                    after={"locked_until": now + window},
                )
            else:
                audit.record(session, actor, "user.login_failed", "user", entity)
            session.commit()
            raise AuthenticationFailed("Wrong email or password.")
        assert user is not None
        pair.failures, pair.locked_until = 0, None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        secret = secrets.token_urlsafe(32)
        session.add(
            LoginSession(
                user_id=user.id, secret_hash=sha256(secret), created_at=now, last_seen_at=now
            )
        )
        audit.record(session, actor, "user.login", "user", user.id)
    return LoginResult(user=user, session_secret=secret)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash (a malformed hash matches nothing)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def resolve_login_session(
    session: so.Session, secret: str, settings: AuthSettings, now: dt.datetime | None = None
) -> User | None:
    """Return the user of a live browser session, or None if it ended or timed out."""
    now = now or utcnow()
    login = session.scalar(
        sa.select(LoginSession)
        .where(LoginSession.secret_hash == sha256(secret))
        .options(so.joinedload(LoginSession.user))
    )
    if login is None or login.ended_at is not None or not login.user.active:
        return None
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    absolute = dt.timedelta(hours=settings.session_absolute_hours)
    if now - login.last_seen_at > idle or now - login.created_at > absolute:
        return None
    if now - login.last_seen_at > _TOUCH_EVERY:
        with unit_of_work(session):
            login.last_seen_at = now
    return login.user


def log_out(session: so.Session, secret: str, request_id: str | None = None) -> None:
    """End a browser session (its cookie stops working at once)."""
    with unit_of_work(session):
        login = session.scalar(
            sa.select(LoginSession).where(LoginSession.secret_hash == sha256(secret))
        )
        if login is None or login.ended_at is not None:
            return
        login.ended_at = utcnow()
        user = login.user
        actor = Actor(label=user.email, user_id=user.id, role=user.role, request_id=request_id)
        audit.record(session, actor, "user.logout", "user", user.id)


def _token_view(token: ApiToken) -> dict[str, object]:
    return {
        "name": token.name,
        "prefix": token.prefix,
        "user_id": token.user_id,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


def create_api_token(
    session: so.Session,
    actor: Actor,
    *,
    user: User,
    name: str,
    days: int | None,
) -> tuple[str, ApiToken]:
    """Create a bearer token for a user; the plain token is returned once and never stored."""
    name = name.strip() or "API token"
    if len(name) > 100:
        raise InvalidInput("name: at most 100 characters", field="name")
    if days is not None and not 0 <= days <= 3650:
        raise InvalidInput("days: 0 to 3650 (0 = no expiry)", field="days")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with unit_of_work(session):
        token = ApiToken(
            user_id=user.id,
            name=name,
            token_hash=sha256(plain),
            prefix=plain[: len(TOKEN_PREFIX) + 4],
            created_at=now,
            expires_at=now + dt.timedelta(days=days) if days else None,
        )
        session.add(token)
        session.flush()
        audit.record(
            session, actor, "api_token.create", "api_token", token.id, after=_token_view(token)
        )
    return plain, token


def resolve_api_token(
    session: so.Session, plain: str, now: dt.datetime | None = None
) -> User | None:
    """Return the active user a bearer token belongs to, or None."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    now = now or utcnow()
    token = session.scalar(
        sa.select(ApiToken)
        .where(ApiToken.token_hash == sha256(plain))
        .options(so.joinedload(ApiToken.user))
    )
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        with unit_of_work(session):
            token.last_used_at = now
    return token.user


def list_api_tokens(session: so.Session, user_id: int) -> list[ApiToken]:
    """Return a user's tokens, newest first."""
    return list(
        session.scalars(
            sa.select(ApiToken)
            .where(ApiToken.user_id == user_id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def revoke_api_token(session: so.Session, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token: the actor's own, or anyone's for an admin."""
    with unit_of_work(session):
        token = session.get(ApiToken, token_id, with_for_update=True)
        if token is None or not policy.may_manage_token(actor.role, actor.user_id, token.user_id):
            raise NotFound(f"token_id: no token {token_id}", field="token_id")
        if token.revoked_at is None:
            before = _token_view(token)
            token.revoked_at = utcnow()
            audit.record(
                session,
                actor,
                "api_token.revoke",
                "api_token",
                token.id,
                before=before,
                after=_token_view(token),
            )
    return token
