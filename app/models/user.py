"""Staff accounts, their browser sessions and their API tokens."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    NURSE = "nurse"
    PHYSICIAN = "physician"
    ADMIN = "admin"


ROLE_VALUES = tuple(role.value for role in Role)
#: What the product takes as an e-mail address (the API document states the same pattern).
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "role IN ({})".format(", ".join(f"'{r}'" for r in ROLE_VALUES)), name="role_known"
        ),
        sa.CheckConstraint("failed_logins >= 0", name="failed_logins_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Login name; stored lower-cased.
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    #: Name shown on pages and in the audit trail.
    full_name: so.Mapped[str] = so.mapped_column(sa.String(120))
    role: so.Mapped[str] = so.mapped_column(sa.String(20))
    #: argon2id hash (PHC string).
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    #: Failed logins since the last successful one.
    failed_logins: so.Mapped[int] = so.mapped_column(default=0)
    #: Logins are refused until this time after too many failures.
    locked_until: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    last_login_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    #: The center the user works at: a nurse's home page opens on it (None: every center).
    home_center_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("centers.id", ondelete="SET NULL")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    #: Kinds of e-mail the user chose to receive (None: the defaults of their role,
    #: app.services.reminders.DEFAULT_KINDS); the in-app worklist shows every task regardless.
    mail_kinds: so.Mapped[list[str] | None] = so.mapped_column(sa.JSON)

    @property
    def initials(self) -> str:
        return "".join(part[0] for part in self.full_name.split() if part).upper()[:3]


class LoginThrottle(Base):
    """Failed logins counted per (e-mail, client address) and per client address.

    No account is locked for everyone (anyone who knows an e-mail could lock a nurse out),
    and an unknown e-mail is counted and refused exactly like a real one (no enumeration).
    """

    __tablename__ = "login_throttles"
    __table_args__ = (sa.CheckConstraint("failures >= 0", name="failures_not_negative"),)

    #: SHA-256 of the scope and its values (no address or e-mail is stored in clear).
    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    #: SHA-256 of the e-mail of an (e-mail, address) counter, so an admin can unlock an
    #: account from every address at once; None for an address's own counter.
    email_hash: so.Mapped[str | None] = so.mapped_column(sa.String(64), index=True)
    failures: so.Mapped[int] = so.mapped_column(default=0)
    #: Failures older than the lockout period no longer count.
    window_started_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    locked_until: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())


class LoginSession(Base):
    """A browser login; the cookie carries only its random id, the table its hash."""

    __tablename__ = "login_sessions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    #: SHA-256 of the session secret held in the signed cookie.
    secret_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    ended_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())

    user: so.Mapped[User] = so.relationship()


class ApiToken(Base):
    """A bearer token for API clients; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    #: What the token is for, as its creator named it.
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    #: First characters of the token, to recognise it in lists.
    prefix: so.Mapped[str] = so.mapped_column(sa.String(12))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    expires_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    last_used_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())
    revoked_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())

    user: so.Mapped[User] = so.relationship()


class PasswordReset(Base):
    """A one-time link that sets a new password; only its SHA-256 is stored."""

    __tablename__ = "password_resets"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    expires_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
    #: Set when the link is used, or when a newer link or a deactivation replaces it.
    ended_at: so.Mapped[dt.datetime | None] = so.mapped_column(UTCDateTime())

    user: so.Mapped[User] = so.relationship(foreign_keys=[user_id])
