"""Calendar feed subscriptions: secret URLs, who may manage them, and fetch bookkeeping."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import policy
from app.config import Settings
from app.db import utcnow
from app.models import Center, Chair, Patient, Subscription, User
from app.models.subscription import PRIVACY, SCOPES
from app.services import audit
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, Forbidden, InvalidInput, NotFound

#: Feed tokens: 32 random bytes (256 bits), URL-safe base64.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_TOUCH_EVERY = dt.timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _view(sub: Subscription) -> dict[str, object]:
    return {
        "scope": sub.scope,
        "scope_id": sub.scope_id,
        "label": sub.label,
        "privacy": sub.privacy,
        "token_prefix": sub.token_prefix,
        "expires_at": sub.expires_at,
        "revoked_at": sub.revoked_at,
    }


def _scope_label(session: so.Session, scope: str, scope_id: int) -> str:
    """Name the feed's target, or raise NotFound."""
    if scope == "patient":
        patient = session.get(Patient, scope_id)
        if patient is not None:
            return "My infusion appointments"
    elif scope == "center":
        center = session.get(Center, scope_id)
        if center is not None:
            return f"{center.name}: infusions"
    elif scope == "chair":
        chair = session.get(Chair, scope_id)
        if chair is not None:
            return f"{chair.center.name} · {chair.name}: infusions"
    elif scope == "physician":
        user = session.get(User, scope_id)
        if user is not None and policy.has_own_feed(user.role):
            return f"{user.full_name}: patients' infusions and approvals"
    raise NotFound(f"scope_id: no {scope} {scope_id}", field="scope_id")


def create_subscription(
    session: so.Session,
    actor: Actor,
    *,
    scope: str,
    scope_id: int,
    privacy: str,
    settings: Settings,
    expires_in_days: int | None = None,
) -> tuple[str, Subscription]:
    """Create a feed; the secret token is returned once and stored only as a hash."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope: one of {', '.join(SCOPES)}", field="scope")
    if privacy not in PRIVACY:
        raise InvalidInput(f"privacy: one of {', '.join(PRIVACY)}", field="privacy")
    if privacy == "detailed" and (
        scope == "patient" or settings.feeds.staff_detail != "full_names"
    ):
        raise InvalidInput(
            "privacy: detailed feeds are off (patient feeds are always minimal; staff feeds need "
            'feeds.staff_detail = "full_names" in the clinic settings)',
            field="privacy",
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise InvalidInput("expires_in_days: 1 to 3650", field="expires_in_days")
    if not policy.may_subscribe(actor.role, actor.user_id, scope, scope_id):
        raise Forbidden("scope_id: physicians subscribe to their own feed only", field="scope_id")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with unit_of_work(session):
        label = _scope_label(session, scope, scope_id)
        sub = Subscription(
            scope=scope,
            scope_id=scope_id,
            label=label,
            privacy=privacy,
            token_hash=_hash(token),
            token_prefix=token[:6],
            created_by_id=actor.user_id,
            created_at=now,
            expires_at=now + dt.timedelta(days=expires_in_days) if expires_in_days else None,
        )
        session.add(sub)
        session.flush()
        audit.record(session, actor, "feed.create", "subscription", sub.id, after=_view(sub))
    return token, sub


def _owned(session: so.Session, actor: Actor, subscription_id: int) -> Subscription:
    sub = session.get(Subscription, subscription_id, with_for_update=True)
    allowed = sub is not None and policy.may_manage_subscription(
        actor.role, actor.user_id, owner_id=sub.created_by_id, scope=sub.scope
    )
    if not allowed:
        raise NotFound(
            f"subscription_id: no subscription {subscription_id}", field="subscription_id"
        )
    assert sub is not None
    return sub


def revoke(session: so.Session, actor: Actor, subscription_id: int) -> Subscription:
    """Revoke a feed: its URL answers 404 from now on."""
    with unit_of_work(session):
        sub = _owned(session, actor, subscription_id)
        if sub.revoked_at is None:
            before = _view(sub)
            sub.revoked_at = utcnow()
            audit.record(
                session,
                actor,
                "feed.revoke",
                "subscription",
                sub.id,
                before=before,
                after=_view(sub),
            )
    return sub


def rotate(session: so.Session, actor: Actor, subscription_id: int) -> tuple[str, Subscription]:
    """Give a feed a new secret URL; the old one stops working at once."""
    token = secrets.token_urlsafe(32)
    with unit_of_work(session):
        sub = _owned(session, actor, subscription_id)
        if sub.revoked_at is not None:
            raise Conflict(
                "subscription_id: a revoked feed cannot be rotated", field="subscription_id"
            )
        before = _view(sub)
        sub.token_hash = _hash(token)
        sub.token_prefix = token[:6]
        sub.rotated_at = utcnow()
        audit.record(
            session, actor, "feed.rotate", "subscription", sub.id, before=before, after=_view(sub)
        )
    return token, sub


def list_for(
    session: so.Session, *, user_id: int | None = None, patient_id: int | None = None
) -> list[Subscription]:
    """Feeds created by a user, or the feeds of one patient."""
    statement = sa.select(Subscription).order_by(
        Subscription.created_at.desc(), Subscription.id.desc()
    )
    if patient_id is not None:
        statement = statement.where(
            Subscription.scope == "patient", Subscription.scope_id == patient_id
        )
    else:
        statement = statement.where(Subscription.created_by_id == user_id)
    return list(session.scalars(statement))


def resolve(session: so.Session, token: str, now: dt.datetime | None = None) -> Subscription | None:
    """Return the live subscription for a token, or None (unknown, revoked and expired alike)."""
    well_formed = bool(TOKEN_PATTERN.match(token))
    # Hash and look up even a malformed token, so every miss costs the same.
    digest = _hash(token if well_formed else "x" * 43)
    sub = session.scalar(sa.select(Subscription).where(Subscription.token_hash == digest))
    if sub is None or not well_formed or not hmac.compare_digest(sub.token_hash, _hash(token)):
        return None
    now = now or utcnow()
    if sub.revoked_at is not None or (sub.expires_at is not None and sub.expires_at <= now):
        return None
    return sub


def record_fetch(
    session: so.Session, sub: Subscription, etag: str, print_: str, now: dt.datetime
) -> Subscription:
    """Remember the body served (ETag, fingerprint, when it changed) and the fetch time."""
    changed = sub.content_etag != etag
    stale_touch = sub.last_fetched_at is None or now - sub.last_fetched_at > _TOUCH_EVERY
    if changed or stale_touch or sub.content_fingerprint != print_:
        with unit_of_work(session):
            if changed:
                sub.content_etag = etag
                # HTTP dates have one-second resolution: a change must move Last-Modified
                # forward by at least a second, or If-Modified-Since would answer 304.
                stamp = now.replace(microsecond=0)
                previous = sub.content_changed_at
                if previous is not None and stamp <= previous:
                    stamp = previous + dt.timedelta(seconds=1)
                sub.content_changed_at = stamp
            sub.content_fingerprint = print_
            sub.last_fetched_at = now
    return sub
