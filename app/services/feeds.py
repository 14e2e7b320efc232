"""Calendar feed subscriptions: secret URLs, what each feed shows, and fetch bookkeeping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import hashlib
import hmac
import re
import secrets
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import policy
from app.config import Settings
from app.db import utcnow
from app.domain import ical, schedule
from app.models import (
    Center,
    Chair,
    ContentRevision,
    Infusion,
    InfusionStatus,
    Patient,
    StepStatus,
    Subscription,
    Suggestion,
    TaperPlan,
    TaperStep,
    User,
    revisions,
)
from app.models.subscription import PRIVACY, SCOPES
from app.services import audit, tapers
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, Forbidden, InvalidInput, NotFound

#: Feed tokens: 32 random bytes (256 bits), URL-safe base64.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Neutral on purpose: feeds leave the clinic, and the product name would name the drug.
PRODID = "-//Clinic Scheduler//Calendar feeds 1//EN"
UID_DOMAIN = "clinic-feeds"
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


@dataclasses.dataclass(frozen=True)
class Window:
    since: dt.date
    cancelled_since: dt.datetime
    #: Staff feeds end here (exclusive); a patient's feed shows the whole course.
    staff_until: dt.date


def _window(settings: Settings, now: dt.datetime) -> Window:
    # Day boundaries (UTC), so the feed's content changes with the date only at midnight.
    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    return Window(
        since=now.date() - dt.timedelta(days=settings.feeds.past_days),
        cancelled_since=midnight - dt.timedelta(days=settings.feeds.cancelled_retention_days),
        staff_until=now.date() + dt.timedelta(weeks=settings.feeds.staff_future_weeks),
    )


def _infusion_filter(sub: Subscription, window: Window) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [
        Infusion.starts_at.is_not(None),
        sa.or_(
            Infusion.status != InfusionStatus.CANCELLED,
            Infusion.updated_at >= window.cancelled_since,
        ),
    ]
    if sub.scope == "patient":
        # A patient's own feed is small and shows the whole course.
        conditions.append(Infusion.patient_id == sub.scope_id)
        return conditions
    conditions += [
        Infusion.planned_date >= window.since,
        Infusion.planned_date < window.staff_until,
    ]
    if sub.scope == "center":
        conditions.append(Infusion.center_id == sub.scope_id)
    elif sub.scope == "chair":
        conditions.append(Infusion.chair_id == sub.scope_id)
    else:
        conditions.append(
            Infusion.patient_id.in_(
                sa.select(Patient.id).where(Patient.treating_physician_id == sub.scope_id)
            )
        )
    return conditions


def _step_filter(sub: Subscription, window: Window) -> list[sa.ColumnElement[bool]]:
    return [
        TaperStep.patient_id == sub.scope_id,
        TaperStep.status.not_in([StepStatus.SKIPPED]),
        sa.or_(
            TaperStep.status != StepStatus.CANCELLED,
            TaperStep.updated_at >= window.cancelled_since,
        ),
        sa.func.coalesce(TaperStep.started_on, TaperStep.earliest_on) >= window.since,
    ]


def _versions(session: so.Session, model: type, conditions: list[sa.ColumnElement[bool]]) -> str:
    """Count, summed versions and last change of the rows a feed shows: any edit moves one."""
    count, versions, last = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(model.version), 0),  # type: ignore[attr-defined]
            sa.func.max(model.updated_at),  # type: ignore[attr-defined]
        ).where(*conditions)
    ).one()
    return f"{count}:{versions}:{last.isoformat() if last else '-'}"


def fingerprint(
    session: so.Session, sub: Subscription, settings: Settings, now: dt.datetime
) -> str:
    """A cheap summary that changes whenever the feed's content could (for 304s).

    It reads the feed's own rows' versions (indexed, no rendering) and the "names" revision,
    so a write elsewhere in the clinic never forces this feed to re-render and no single row
    serialises the clinic's writes. Time moves the window and retention once a day, so the
    date is part of it too; a physician's approvals follow each center's midnight.
    """
    window = _window(settings, now)
    names = session.scalar(
        sa.select(ContentRevision.revision).where(ContentRevision.name == revisions.NAMES)
    )
    parts = [
        sub.scope,
        str(sub.scope_id),
        sub.privacy,
        str(_detailed(sub, settings)),
        sub.label,
        now.date().isoformat(),
        str(names),
        _versions(session, Infusion, _infusion_filter(sub, window)),
    ]
    if sub.scope == "patient":
        parts.append(_versions(session, TaperStep, _step_filter(sub, window)))
    elif sub.scope == "physician":
        # A step becomes due, and its shown day moves, at the patient's local midnight
        # without any row changing.
        parts += [f"{step.id}:{day}" for step, day in _approval_days(session, sub, now)]
        parts.append(
            _versions(
                session,
                Suggestion,
                [
                    Suggestion.patient_id.in_(
                        sa.select(Patient.id).where(Patient.treating_physician_id == sub.scope_id)
                    ),
                    Suggestion.status == "pending",
                ],
            )
        )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _detailed(sub: Subscription, settings: Settings) -> bool:
    """Names in full only while the clinic still allows it: the setting is read at each render."""
    return (
        sub.scope != "patient"
        and sub.privacy == "detailed"
        and settings.feeds.staff_detail == "full_names"
    )


def _approval_days(
    session: so.Session, sub: Subscription, now: dt.datetime
) -> list[tuple[TaperStep, dt.date]]:
    """Each taper step waiting for this physician, on the day the feed shows it.

    A step shows from its earliest date, or from today at the patient's center: that day moves
    at the center's midnight, which the fingerprint must follow too.
    """
    return [
        (
            step,
            max(step.earliest_on, schedule.local_date(now, step.plan.patient.home_center.timezone)),
        )
        for step in tapers.due_queue(session, physician_id=sub.scope_id)
    ]


def _short_id(patient_id: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"patient:{patient_id}".encode(), hashlib.sha256).hexdigest()[
        :6
    ]


def _who(patient: Patient, detailed: bool, secret: str) -> str:
    if detailed:
        return patient.display_name
    initials = f"{patient.given_name[:1]}{patient.family_name[:1]}".upper()
    return f"{initials} #{_short_id(patient.id, secret)}"


_STATUS: dict[str, ical.Status] = {
    InfusionStatus.CANCELLED: "CANCELLED",
}


def infusion_rows(
    sub: Subscription, settings: Settings, now: dt.datetime
) -> sa.Select[*tuple[Any, ...]]:
    """The one SELECT a feed's infusions come from (the benchmark times it as the floor)."""
    return (
        sa.select(
            Infusion.uid,
            Infusion.sequence,
            Infusion.updated_at,
            Infusion.status,
            Infusion.starts_at,
            Infusion.ends_at,
            Infusion.cycle_number,
            Infusion.day_number,
            Patient.id,
            Patient.given_name,
            Patient.family_name,
            Center.name,
            Center.address,
            Chair.name,
        )
        .join(Patient, Infusion.patient_id == Patient.id)
        .join(Center, Infusion.center_id == Center.id)
        .outerjoin(Chair, Infusion.chair_id == Chair.id)
        .where(*_infusion_filter(sub, _window(settings, now)))
        .order_by(Infusion.starts_at, Infusion.id)
    )


def feed_calendar(
    session: so.Session, sub: Subscription, settings: Settings, now: dt.datetime
) -> ical.FeedCalendar:
    """Build the feed's events from the database, at the subscription's privacy level."""
    window = _window(settings, now)
    secret = settings.app.secret_key
    staff = sub.scope != "patient"
    detailed = _detailed(sub, settings)
    rows = session.execute(infusion_rows(sub, settings, now)).all()
    events: list[ical.FeedEvent] = []
    # A feed repeats the same patients, chairs and cycles many times: build each text once.
    summaries: dict[int, str] = {}
    locations: dict[tuple[str, str | None], str] = {}
    descriptions: dict[tuple[int, int], str] = {}
    for (
        uid,
        sequence,
        updated,
        status,
        starts,
        ends,
        cycle,
        day,
        pid,
        given,
        family,
        center_name,
        address,
        chair_name,
    ) in rows:
        if staff:
            summary = summaries.get(pid)
            if summary is None:
                who = (
                    f"{family}, {given}"
                    if detailed
                    else f"{given[:1]}{family[:1]}".upper() + f" #{_short_id(pid, secret)}"
                )
                summary = summaries[pid] = f"Infusion: {who}"
            place = (center_name, chair_name)
            location = locations.get(place)
            if location is None:
                location = locations[place] = (
                    f"{center_name}, {chair_name}" if chair_name else center_name
                )
            description = descriptions.get((cycle, day))
            if description is None:
                description = descriptions[(cycle, day)] = f"Cycle {cycle}, day {day}"
        else:
            summary, location, description = _MINIMAL, _minimal_place(center_name, address), None
        events.append(
            _event(uid, sequence, updated, status, starts, ends, summary, location, description)
        )
    if sub.scope == "patient":
        events += _patient_steps(session, sub, window)
    elif sub.scope == "physician":
        events += _approvals(session, sub, now, detailed, secret)
    return ical.FeedCalendar(
        # Escaped right, `,;\` still come back as `\,` in icalendar and ical.js: none in names.
        name=ical.plain_name(sub.label),
        prodid=PRODID,
        refresh_minutes=settings.feeds.refresh_minutes,
        events=events,
    )


def _patient_steps(session: so.Session, sub: Subscription, window: Window) -> list[ical.FeedEvent]:
    steps = session.scalars(
        sa.select(TaperStep)
        .where(*_step_filter(sub, window))
        .order_by(TaperStep.plan_id, TaperStep.position)
    ).all()
    events = []
    for step in steps:
        day = step.started_on or step.earliest_on
        if step.mg_per_day == 0:
            summary = "Steroid tablets stop (if your doctor approves)"
        elif step.status == StepStatus.PLANNED:
            summary = f"Next steroid dose, if approved: {step.mg_per_day:g} mg a day"
        else:
            summary = f"Steroid dose from today: {step.mg_per_day:g} mg a day"
        events.append(
            ical.FeedEvent(
                uid=f"{step.uid}@{UID_DOMAIN}",
                sequence=step.sequence,
                dtstamp=step.updated_at,
                status="CANCELLED"
                if step.status == StepStatus.CANCELLED
                else (
                    "TENTATIVE"
                    if step.status in (StepStatus.PLANNED, StepStatus.HELD)
                    else "CONFIRMED"
                ),
                summary=summary,
                all_day_start=day,
                all_day_end=day + dt.timedelta(days=1),
            )
        )
    return events


def _approvals(
    session: so.Session, sub: Subscription, now: dt.datetime, detailed: bool, secret: str
) -> list[ical.FeedEvent]:
    events = []
    for step, day in _approval_days(session, sub, now):
        plan: TaperPlan = step.plan
        who = _who(plan.patient, detailed, secret)
        events.append(
            ical.FeedEvent(
                uid=f"approve-{step.uid}@{UID_DOMAIN}",
                sequence=step.sequence,
                dtstamp=step.updated_at,
                status="CONFIRMED",
                summary=f"Taper step waiting for approval: {who}",
                all_day_start=day,
                all_day_end=day + dt.timedelta(days=1),
            )
        )
    pending = session.execute(
        sa.select(Suggestion, Patient, Center.timezone)
        .join(Patient, Suggestion.patient_id == Patient.id)
        .join(Center, Patient.home_center_id == Center.id)
        .where(Suggestion.status == "pending", Patient.treating_physician_id == sub.scope_id)
        .order_by(Suggestion.created_at, Suggestion.id)
    ).all()
    for suggestion, patient, timezone in pending:
        # Only that a decision waits, and for whom: the content stays in the clinic.
        day = schedule.local_date(suggestion.created_at, timezone)
        events.append(
            ical.FeedEvent(
                uid=f"suggestion-{suggestion.id}@{UID_DOMAIN}",
                sequence=suggestion.version - 1,
                dtstamp=suggestion.updated_at,
                status="CONFIRMED",
                summary=f"Suggestion waiting for a decision: {_who(patient, detailed, secret)}",
                all_day_start=day,
                all_day_end=day + dt.timedelta(days=1),
            )
        )
    return events


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


#: What a minimal (patient) event says: no name, no chair, no dose.
_MINIMAL = "Infusion appointment"


def _minimal_place(center_name: str, address: str | None) -> str:
    return f"{center_name}, {address}" if address else center_name


def _event(
    uid: str,
    sequence: int,
    updated: dt.datetime,
    status: str,
    starts: dt.datetime,
    ends: dt.datetime,
    summary: str,
    location: str,
    description: str | None = None,
) -> ical.FeedEvent:
    """One appointment as a calendar event (feeds and the single-appointment file)."""
    return ical.FeedEvent(
        uid=f"{uid}@{UID_DOMAIN}",
        sequence=sequence,
        dtstamp=updated,
        status=_STATUS.get(status, "CONFIRMED"),
        # Some Outlook versions show STATUS:CANCELLED as a normal event: say it.
        summary=f"Cancelled: {summary}" if status == InfusionStatus.CANCELLED else summary,
        starts_at=starts,
        ends_at=ends,
        location=location,
        description=description,
    )


def appointment_calendar(
    session: so.Session, infusion_id: int, settings: Settings
) -> ical.FeedCalendar:
    """One appointment as a calendar file for a patient without a subscription (minimal)."""
    row = session.execute(
        sa.select(
            Infusion.uid,
            Infusion.sequence,
            Infusion.updated_at,
            Infusion.status,
            Infusion.starts_at,
            Infusion.ends_at,
            Center.name,
            Center.address,
        )
        .join(Center, Infusion.center_id == Center.id)
        .where(Infusion.id == infusion_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"infusion_id: no infusion {infusion_id}", field="infusion_id")
    uid, sequence, updated, status, starts, ends, center_name, address = row
    if starts is None or ends is None:
        raise InvalidInput(
            "infusion_id: the infusion has no chair and time yet", field="infusion_id"
        )
    event = _event(
        uid, sequence, updated, status, starts, ends, _MINIMAL, _minimal_place(center_name, address)
    )
    return ical.FeedCalendar(
        name=_MINIMAL,
        prodid=PRODID,
        refresh_minutes=settings.feeds.refresh_minutes,
        events=[event],
    )


def render_feed(
    session: so.Session, sub: Subscription, settings: Settings, now: dt.datetime
) -> bytes:
    """Render a subscription's calendar to bytes (what GET /feeds/<token>.ics serves).

    The cyclic garbage collector is paused meanwhile: a large feed makes tens of thousands of
    small, short-lived, acyclic objects, and collecting during the loop only costs time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _within_size(feed_calendar(session, sub, settings, now), settings, now)
    finally:
        if was_enabled:
            gc.enable()


def _within_size(calendar: ical.FeedCalendar, settings: Settings, now: dt.datetime) -> bytes:
    """Render nearest first (today on, then back in time) and drop the farthest past the limit.

    The order changes only at midnight (UTC, with the window), so an unchanged feed stays
    byte-identical within a day.
    """
    today = now.date()

    def when(event: ical.FeedEvent) -> dt.date:
        return event.starts_at.date() if event.starts_at else event.all_day_start  # type: ignore[return-value]

    ordered = sorted(
        calendar.events,
        key=lambda e: (0, when(e).toordinal()) if when(e) >= today else (1, -when(e).toordinal()),
    )
    limit = settings.feeds.max_feed_kilobytes * 1000
    keep = len(ordered)
    while True:
        body = ical.render(dataclasses.replace(calendar, events=ordered[:keep]))
        if len(body) <= limit or keep == 0:
            return body
        # Scale down by the bytes an event takes, with a margin; rarely more than twice.
        keep = min(keep - 1, int(keep * limit / len(body) * 0.98))
