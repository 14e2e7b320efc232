"""Calendar feeds: what each subscription shows, its fingerprint, and the iCalendar bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gc
import hashlib
from collections.abc import Iterable, Iterator
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
    return _infusion_conditions(
        sub.scope, sub.scope_id, window.since, window.staff_until, window.cancelled_since
    )


def _infusion_conditions(
    scope: str, scope_id: Any, since: Any, until: Any, cancelled_since: Any
) -> list[sa.ColumnElement[bool]]:
    """What infusions a feed of `scope` shows: the values, or bind parameters for them."""
    conditions: list[sa.ColumnElement[bool]] = [
        Infusion.starts_at.is_not(None),
        sa.or_(
            Infusion.status != InfusionStatus.CANCELLED,
            Infusion.updated_at >= cancelled_since,
        ),
    ]
    if scope == "patient":
        # A patient's own feed is small and shows the whole course.
        conditions.append(Infusion.patient_id == scope_id)
        return conditions
    conditions += [
        Infusion.planned_date >= since,
        Infusion.planned_date < until,
    ]
    if scope == "center":
        conditions.append(Infusion.center_id == scope_id)
    elif scope == "chair":
        conditions.append(Infusion.chair_id == scope_id)
    else:
        conditions.append(
            Infusion.patient_id.in_(
                sa.select(Patient.id).where(Patient.treating_physician_id == scope_id)
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
        # without any row changing; a change to a waiting step (its dose) shows as its
        # SEQUENCE and DTSTAMP.
        parts += [
            f"{step.id}:{step.sequence}:{step.updated_at.isoformat()}:{day}"
            for step, day in _approval_days(session, sub, now)
        ]
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


def infusion_rows(scope: str, dialect: str) -> sa.Select[*tuple[Any, ...]]:
    """The one SELECT a feed's infusions come from, as plain columns, with bind parameters
    scope_id, since, until and cancelled_since.

    The three times come back as the driver gives them, without UTCDateTime's conversion per
    row: SQLite's UTC text, PostgreSQL's aware datetimes (written as UTC either way).
    """
    raw: sa.types.TypeEngine[Any] = (
        sa.String() if dialect == "sqlite" else sa.DateTime(timezone=True)
    )
    return (
        sa.select(
            Infusion.uid,
            Infusion.sequence,
            sa.type_coerce(Infusion.updated_at, raw),
            Infusion.status,
            sa.type_coerce(Infusion.starts_at, raw),
            sa.type_coerce(Infusion.ends_at, raw),
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
        .where(
            *_infusion_conditions(
                scope,
                sa.bindparam("scope_id", required=False),
                sa.bindparam("since", required=False),
                sa.bindparam("until", required=False),
                sa.bindparam("cancelled_since", required=False),
            )
        )
        .order_by(Infusion.starts_at, Infusion.id)
    )


@dataclasses.dataclass(frozen=True)
class _DriverStatement:
    sql: str
    #: Parameter names in the driver's order (positional drivers), or None (named).
    order: tuple[str, ...] | None
    defaults: dict[str, Any]
    processors: dict[str, Any]


_DRIVER_STATEMENTS: dict[tuple[str, str, str], _DriverStatement] = {}


def driver_statement(
    session: so.Session, sub: Subscription, settings: Settings, now: dt.datetime
) -> tuple[str, Any]:
    """The feed's infusion SELECT as the database driver takes it: SQL text and parameters.

    SQLAlchemy compiles it once per database and scope (and converts the parameters as it
    would); the rows are then read through the driver itself, as tuples: SQLAlchemy's row
    handling was most of a large feed's fetch on PostgreSQL. The benchmark's floor runs the
    same statement.
    """
    dialect = session.get_bind().dialect
    key = (dialect.name, dialect.driver, sub.scope)
    statement = _DRIVER_STATEMENTS.get(key)
    if statement is None:
        compiled = infusion_rows(sub.scope, dialect.name).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        statement = _DRIVER_STATEMENTS[key] = _DriverStatement(
            sql=compiled.string,
            order=tuple(compiled.positiontup or ()) if compiled.positional else None,
            defaults=dict(compiled.construct_params()),
            processors={
                name: bind.type.bind_processor(dialect) for name, bind in compiled.binds.items()
            },
        )
    window = _window(settings, now)
    values = statement.defaults | {
        "scope_id": sub.scope_id,
        "since": window.since,
        "until": window.staff_until,
        "cancelled_since": window.cancelled_since,
    }
    for name, processor in statement.processors.items():
        if processor is not None and name in values:
            values[name] = processor(values[name])
    if statement.order is None:
        return statement.sql, values
    return statement.sql, tuple(values[name] for name in statement.order)


def _driver_rows(session: so.Session, sql: str, parameters: Any) -> Iterator[list[Any]]:
    """The rows of a SELECT, read through the driver a batch at a time, in the session's
    transaction: never the whole result at once (PostgreSQL's client-side cursor would)."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    if session.get_bind().dialect.name == "postgresql":
        yield from _postgresql_rows(connection, sql, parameters)
        return
    cursor = connection.cursor()
    try:
        cursor.execute(sql, parameters)
        while batch := cursor.fetchmany(_BATCH_ROWS):
            yield batch
    finally:
        cursor.close()


def _postgresql_rows(connection: Any, sql: str, parameters: Any) -> Iterator[list[Any]]:
    import psycopg

    if psycopg.pq.version() >= 170000:
        # libpq 17's chunked rows: batches as they arrive, no server-side cursor to plan.
        batch: list[Any] = []
        with connection.cursor() as cursor:
            for row in cursor.stream(sql, parameters, size=_BATCH_ROWS):
                batch.append(row)
                if len(batch) == _BATCH_ROWS:
                    yield batch
                    batch = []
        if batch:
            yield batch
        return
    with connection.cursor(name="feed_rows") as cursor:
        cursor.execute(sql, parameters)
        while rows := cursor.fetchmany(_BATCH_ROWS):
            yield rows


#: Rows fetched from the cursor at a time: the feed never holds all its rows at once.
_BATCH_ROWS = 2000
_UID_SUFFIX = f"@{UID_DOMAIN}"
#: Past events sort after every future one (nearest first): see _order_key.
_PAST = 10**9


@dataclasses.dataclass(frozen=True)
class RenderedFeed:
    """A feed's body as blocks of bytes (sent as they are, never joined) and its ETag."""

    chunks: tuple[bytes, ...]
    size: int
    etag: str

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def _order_key(day: int, today: int) -> int:
    """Nearest first: today and later by date, then the past from the latest back."""
    return day if day >= today else _PAST - day


def _day_number(value: dt.date) -> int:
    return value.year * 10_000 + value.month * 100 + value.day


def render_feed(
    session: so.Session, sub: Subscription, settings: Settings, now: dt.datetime
) -> RenderedFeed:
    """Render a subscription's calendar (what GET /feeds/<token>.ics serves) and its ETag.

    Rows stream from the cursor in batches straight into event text (plain rows, light
    records, no ORM or event objects), so memory follows the body, not the rows; a body over
    the size limit keeps only what it serves (nearest first, the farthest left out). The
    cyclic garbage collector is paused meanwhile: a large feed makes tens of thousands of
    small, short-lived, acyclic objects, and collecting during the loop only costs time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _render(session, sub, settings, now)
    finally:
        if was_enabled:
            gc.enable()


def _render(
    session: so.Session, sub: Subscription, settings: Settings, now: dt.datetime
) -> RenderedFeed:
    window = _window(settings, now)
    secret = settings.app.secret_key
    detailed = _detailed(sub, settings)
    extras: list[ical.FeedEvent] = []
    if sub.scope == "patient":
        extras = _patient_steps(session, sub, window)
    elif sub.scope == "physician":
        extras = _approvals(session, sub, now, detailed, secret)
    writer, records = _SHARED.get(staff=sub.scope != "patient", detailed=detailed, secret=secret)
    body = ical.Body(
        # Escaped right, `,;\` still come back as `\,` in icalendar and ical.js: none in names.
        writer.header(ical.plain_name(sub.label), PRODID, settings.feeds.refresh_minutes),
        settings.feeds.max_feed_kilobytes * 1000,
    )
    # The order changes only at midnight (UTC, with the window), so an unchanged feed stays
    # byte-identical within a day.
    today = _day_number(now.date())
    dialect = session.get_bind().dialect.name
    iso_text = dialect == "sqlite"
    events: list[tuple[int, str]] = []
    for batch in _driver_rows(session, *driver_statement(session, sub, settings, now)):
        texts, days = writer.timed_texts(records(batch), uid_suffix=_UID_SUFFIX, iso_text=iso_text)
        if extras:
            events += zip(days, texts, strict=True)
        else:
            body.add_in_time_order(texts, days, today)
    if extras:
        _add_sorted(body, events, extras, writer, today)
    chunks, size = body.finish()
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return RenderedFeed(tuple(chunks), size, '"' + digest.hexdigest()[:40] + '"')


class _Records:
    """Infusion rows as light event records, at the subscription's privacy level."""

    def __init__(self, *, staff: bool, detailed: bool, secret: str) -> None:
        self.staff, self.detailed, self.secret = staff, detailed, secret
        # A feed repeats the same patients, chairs and cycles many times, and every render the
        # same again: each text once per process (see _shared).
        self.summaries: dict[int, tuple[str, str, str]] = {}
        self.cancelled: dict[str, str] = {}
        self.locations: dict[str, dict[str | None, str]] = {}
        self.descriptions: dict[int, str] = {}

    def remembered(self) -> int:
        """How many texts these records keep (see _shared)."""
        places = sum(len(by_place) for by_place in self.locations.values())
        return len(self.summaries) + len(self.cancelled) + len(self.descriptions) + places

    def __call__(self, rows: Iterable[Any]) -> list[ical.TimedRecord]:
        staff = self.staff
        summaries, cancelled = self.summaries, self.cancelled
        locations, descriptions = self.locations, self.descriptions
        cancelled_status = InfusionStatus.CANCELLED  # an enum member: looked up once
        out: list[ical.TimedRecord] = []
        append = out.append
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
            # Kept per process: checked against the names, so a renamed patient is renamed.
            named = summaries.get(pid)
            if named is None or named[0] != given or named[1] != family:
                named = summaries[pid] = (
                    given,
                    family,
                    _summary(pid, given, family, staff, self.detailed, self.secret),
                )
            summary = named[2]
            # Staff feeds say the center and chair, a patient's the center and its address.
            by_place = locations.get(center_name)
            if by_place is None:
                by_place = locations[center_name] = {}
            place = chair_name if staff else address
            location = by_place.get(place)
            if location is None:
                location = by_place[place] = (
                    (f"{center_name}, {chair_name}" if chair_name else center_name)
                    if staff
                    else _minimal_place(center_name, address)
                )
            description = None
            if staff:
                # day_number is 1 to 5 (a CHECK constraint): one int names the pair.
                description = descriptions.get(cycle * 8 + day)
                if description is None:
                    description = descriptions[cycle * 8 + day] = f"Cycle {cycle}, day {day}"
            if status == cancelled_status:
                # Some Outlook versions show STATUS:CANCELLED as a normal event: say it.
                title = cancelled.get(summary)
                if title is None:
                    title = cancelled[summary] = f"Cancelled: {summary}"
                append(
                    (
                        uid,
                        sequence,
                        updated,
                        "CANCELLED",
                        title,
                        starts,
                        ends,
                        location,
                        description,
                    )
                )
            else:
                append(
                    (
                        uid,
                        sequence,
                        updated,
                        "CONFIRMED",
                        summary,
                        starts,
                        ends,
                        location,
                        description,
                    )
                )
        return out


class _Shared:
    """The writer and the record makers every render in this process shares: the next render
    (any feed, any request of the worker) repeats the same patients, chairs, cycles and chair
    slots, and their texts are made once. Each text is keyed by the values it is made of, so
    none goes stale; past _KEPT_TEXTS a maker is replaced by a fresh one before a render.
    Threads may share them: a render only reads and adds entries (a lost race makes a text
    twice)."""

    def __init__(self) -> None:
        self.writer = ical.Writer()
        self.records: dict[tuple[bool, bool, str], _Records] = {}

    def get(self, *, staff: bool, detailed: bool, secret: str) -> tuple[ical.Writer, _Records]:
        if self.writer.remembered() > _KEPT_TEXTS:
            self.writer = ical.Writer()
        key = (staff, detailed, secret)
        records = self.records.get(key)
        if records is None or records.remembered() > _KEPT_TEXTS:
            records = self.records[key] = _Records(staff=staff, detailed=detailed, secret=secret)
        return self.writer, records


#: Texts a shared writer or record maker keeps before it is replaced (a few MB).
_KEPT_TEXTS = 50_000
_SHARED = _Shared()


@functools.lru_cache(maxsize=32_768)
def _summary(pid: int, given: str, family: str, staff: bool, detailed: bool, secret: str) -> str:
    """What an infusion's title says of the patient (kept per process: names are keys)."""
    if not staff:
        return _MINIMAL
    if detailed:
        return f"Infusion: {family}, {given}"
    return f"Infusion: {labels.initials(given, family)} #{labels.short_id(pid, secret)}"


def _add_sorted(
    body: ical.Body,
    events: Iterable[tuple[int, str]],
    extras: list[ical.FeedEvent],
    writer: ical.Writer,
    today: int,
) -> None:
    """Add infusions and all-day events (a patient's or a physician's feed) nearest first,
    infusions before the all-day events of their day."""
    keyed = [(_order_key(day, today), n, text) for n, (day, text) in enumerate(events)]
    offset = len(keyed)
    for n, event in enumerate(extras):
        assert event.all_day_start is not None and event.all_day_end is not None
        text = writer.all_day(
            event.uid,
            event.sequence,
            writer.utc(event.dtstamp),
            event.status,
            event.summary,
            event.all_day_start,
            event.all_day_end,
            event.location,
            event.description,
        )
        keyed.append((_order_key(_day_number(event.all_day_start), today), offset + n, text))
    keyed.sort()
    for _, _, text in keyed:
        body.add(text)


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
