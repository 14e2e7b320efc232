"""Calendar feeds: what each subscription shows, its fingerprint, and the iCalendar bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import hashlib
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
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
    revisions,
)
from app.services import labels, tapers
from app.services.errors import InvalidInput, NotFound

# Neutral on purpose: feeds leave the clinic, and the product name would name the drug.
PRODID = "-//Clinic Scheduler//Calendar feeds 1//EN"
UID_DOMAIN = "clinic-feeds"


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


def _who(patient: Patient, detailed: bool, secret: str) -> str:
    if detailed:
        return patient.display_name
    return labels.staff_label(patient, secret)


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
                    else f"{labels.initials(given, family)} #{labels.short_id(pid, secret)}"
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
