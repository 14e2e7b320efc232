"""Reconcile a patient's infusions with a regimen version: what to create, move, keep, cancel.

Pure: the service layer passes the version, the patient's infusions, the center's calendar and
the other patients' chair occupancy; it writes what comes back and audits it.

Decisions:
- A cycle that has begun (a day recorded, started, or before today) finishes as it was
  planned; its days are kept and the new plan adds nothing on their dates.
- Cycle numbers continue the course: new cycles follow the highest cycle number still kept.
  Rolling the horizon forward (`extend_only`) keeps every existing infusion and numbers the
  new cycles after the last one booked.
- A nurse's manual move (a pinned infusion) is kept when the new plan still has its cycle
  (same planned start) and the moved days are still valid for the new version: same number
  of days, consecutive open days within the shift window, clear of the neighbouring cycles,
  the chair free and the (possibly longer) infusion inside the opening hours. Otherwise the
  cycle is planned afresh and the move is reported back, with the reason, for the nurse.
- Existing rows are reused by date, so an appointment keeps its calendar UID when it stays on
  its day; what the new plan no longer has is cancelled.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.domain import schedule
from app.domain.integrity import PLANNED, cycle_has_begun

#: Statuses that hold a chair (as app.models.infusion.CHAIR_HOLDING).
_CHAIR_HOLDING = frozenset({"scheduled", "checked_in", "in_chair", "given", "partial"})


@dataclass(frozen=True)
class Version:
    """The regimen version to book."""

    id: int
    first_cycle_on: dt.date
    interval_weeks: int
    days_per_cycle: int
    preferred_time: dt.time
    minutes_per_day: int


@dataclass(frozen=True)
class Existing:
    """One of the patient's infusion rows, as reconciliation sees it."""

    id: int
    regimen_id: int
    cycle_number: int
    day_number: int
    planned_date: dt.date
    cycle_planned_on: dt.date
    status: str
    chair_id: int | None = None
    starts_at: dt.datetime | None = None
    #: End of its chair occupancy (turnover included).
    occupied_until: dt.datetime | None = None
    #: The user who moved it by hand, if anyone did.
    pinned_by: int | None = None


@dataclass(frozen=True)
class Options:
    """The clinic's scheduling settings for one reconciliation."""

    until: dt.date
    shift_window_days: int
    interval_tolerance_days: int
    turnover: dt.timedelta
    granularity_minutes: int


@dataclass(frozen=True)
class PlannedDay:
    """One infusion day of the new plan: a new row (existing_id None) or an existing one."""

    booking: schedule.Booking
    cycle_planned_on: dt.date
    existing_id: int | None


@dataclass(frozen=True)
class UnkeptMove:
    """A manual move the new plan could not keep, for the worklist of whoever made it."""

    existing_id: int
    pinned_by: int
    planned_date: dt.date
    reason: str


@dataclass(frozen=True)
class Reconciliation:
    days: tuple[PlannedDay, ...]
    cancel_ids: tuple[int, ...]
    unkept: tuple[UnkeptMove, ...]
    #: Rolling the horizon stopped before the cycle planned on this date (it could not go
    #: on its own: too soon after the cycle before it, or no open run in the window).
    blocked_on: dt.date | None = None


def _begun_cycles(live: Sequence[Existing], now: dt.datetime, today: dt.date) -> set[int]:
    by_number: dict[int, list[Existing]] = defaultdict(list)
    for row in live:
        by_number[row.cycle_number].append(row)
    return {n for n, rows in by_number.items() if cycle_has_begun(rows, now, today)}


def _last_start(kept: Sequence[Existing]) -> dt.date | None:
    starts: dict[int, dt.date] = {}
    for row in kept:
        if row.status != "missed":
            starts[row.cycle_number] = min(
                starts.get(row.cycle_number, row.planned_date), row.planned_date
            )
    return max(starts.values(), default=None)


def _spans(kept: Sequence[Existing]) -> list[tuple[dt.date, dt.date]]:
    """Return (planned start, last day) of each kept cycle."""
    spans: dict[int, tuple[dt.date, dt.date]] = {}
    for row in kept:
        start, end = spans.get(row.cycle_number, (row.cycle_planned_on, row.planned_date))
        spans[row.cycle_number] = (min(start, row.cycle_planned_on), max(end, row.planned_date))
    return list(spans.values())


def _fixed_cycles(
    movable: Sequence[Existing], cycles: Sequence[schedule.PlannedCycle]
) -> tuple[dict[int, schedule.FixedCycle], dict[int, list[Existing]], list[Existing]]:
    """Match pinned cycles to planned ones by planned start; return what cannot match."""
    groups: dict[dt.date, list[Existing]] = defaultdict(list)
    for row in movable:
        groups[row.cycle_planned_on].append(row)
    by_start = {cycle.planned_start: cycle.cycle_number for cycle in cycles}
    fixed: dict[int, schedule.FixedCycle] = {}
    pinned_rows: dict[int, list[Existing]] = {}
    orphans: list[Existing] = []
    for planned_on, rows in groups.items():
        pinned = [r for r in rows if r.pinned_by is not None]
        if not pinned:
            continue
        number = by_start.get(planned_on)
        if number is None:
            orphans.extend(pinned)
            continue
        rows.sort(key=lambda r: (r.planned_date, r.day_number))
        fixed[number] = schedule.FixedCycle(
            days=tuple(r.planned_date for r in rows),
            slots=tuple(
                (r.chair_id, r.starts_at)
                if r.pinned_by is not None and r.chair_id is not None and r.starts_at is not None
                else None
                for r in rows
            ),
        )
        pinned_rows[number] = pinned
    return fixed, pinned_rows, orphans


def _after_the_last_booked(
    cycles: list[schedule.PlannedCycle], existing: Sequence[Existing], version: Version
) -> tuple[list[schedule.PlannedCycle], dt.date | None]:
    """Rolling the horizon only adds cycles planned after the last one this version ever
    booked (cancelled or moved ones included): it never re-creates what a nurse changed, and
    a cycle shifted earlier than its planned day is still that cycle. By itself the horizon
    never books a cycle too soon after the one before (moved late by an override, say) nor
    leaves one for a nurse to place: it stops there and says where (`blocked_on`)."""
    last = max(
        (row.cycle_planned_on for row in existing if row.regimen_id == version.id),
        default=None,
    )
    if last is not None:
        cycles = [c for c in cycles if c.planned_start > last]
    blocked = next((c for c in cycles if not c.placed), None)
    if blocked is None:
        return cycles, None
    return [c for c in cycles if c.planned_start < blocked.planned_start], blocked.planned_start


def _occupied(
    busy: Mapping[int, Sequence[schedule.Interval]],
    kept: Sequence[Existing],
    calendar: schedule.CenterCalendar,
    today: dt.date,
    now: dt.datetime,
) -> dict[int, list[schedule.Interval]]:
    """Chairs' occupancy to book around: `busy` is the other patients'; this patient's kept
    infusions hold theirs; and nothing new goes in a slot that has already begun today."""
    occupied = {chair: list(spans) for chair, spans in busy.items()}
    for row in kept:
        if (
            row.chair_id is not None
            and row.starts_at
            and row.occupied_until
            and (row.status in _CHAIR_HOLDING)
        ):
            occupied.setdefault(row.chair_id, []).append(
                schedule.Interval(row.starts_at, row.occupied_until)
            )
    day_start = schedule.local_to_utc(today, dt.time(), calendar.timezone) or now
    if day_start < now:
        for chair_id in calendar.chair_ids:
            occupied.setdefault(chair_id, []).append(schedule.Interval(day_start, now))
    return occupied


def _planned_day(
    booking: schedule.Booking,
    numbers: Mapping[int, int],
    planned_on: Mapping[int, dt.date],
    by_date: dict[dt.date, list[Existing]],
) -> PlannedDay:
    """A booking under its course-wide cycle number, reusing a movable row on its date."""
    same_day = by_date.get(booking.date)
    reused = same_day.pop(0) if same_day else None
    return PlannedDay(
        booking=dataclasses.replace(booking, cycle_number=numbers[booking.cycle_number]),
        cycle_planned_on=planned_on[booking.cycle_number],
        existing_id=reused.id if reused else None,
    )


def reconcile(
    version: Version,
    existing: Sequence[Existing],
    calendar: schedule.CenterCalendar,
    busy: Mapping[int, Sequence[schedule.Interval]],
    today: dt.date,
    now: dt.datetime,
    options: Options,
    *,
    extend_only: bool = False,
) -> Reconciliation:
    """Plan the version from today to the horizon against what is booked; nothing is written."""
    live = [row for row in existing if row.status != "cancelled"]
    begun = _begun_cycles(live, now, today)
    movable = [
        row
        for row in live
        if not extend_only and row.cycle_number not in begun and row.status in PLANNED
    ]
    moving = {row.id for row in movable}
    kept = [row for row in live if row.id not in moving]
    kept_dates = {row.planned_date for row in kept}
    first_number = max((row.cycle_number for row in kept), default=0) + 1
    min_gap = version.interval_weeks * 7 - options.interval_tolerance_days
    previous_start = _last_start(kept)
    window = options.shift_window_days
    blocked_on: dt.date | None = None

    cycles = schedule.plan_cycles(
        start=version.first_cycle_on,
        interval_weeks=version.interval_weeks,
        days_per_cycle=version.days_per_cycle,
        until=options.until,
        calendar=calendar,
        shift_window_days=window,
        not_before=today,
        min_gap_days=min_gap,
        previous_start=previous_start,
        strict_gap=extend_only,
    )
    # A cycle that has begun (given, under way or waiting to be recorded) serves the planned
    # cycle it stands for: re-planning adds no cycle that would start before a nearby begun
    # cycle ends, nor one planned before today next to days already kept.
    reach = dt.timedelta(days=window + version.days_per_cycle + 2)
    begun_spans = _spans(kept)
    cycles = [
        c
        for c in cycles
        if not any(
            abs(start - c.planned_start) <= reach and c.planned_start <= end
            for start, end in begun_spans
        )
        and not (
            c.planned_start < today and any(abs(d - c.planned_start) <= reach for d in kept_dates)
        )
    ]
    if extend_only:
        cycles, blocked_on = _after_the_last_booked(cycles, existing, version)
    fixed, pinned_rows, orphans = _fixed_cycles(movable, cycles)
    occupied = _occupied(busy, kept, calendar, today, now)
    booked = schedule.book_plan(
        cycles,
        version.days_per_cycle,
        calendar,
        version.preferred_time,
        [dt.timedelta(minutes=version.minutes_per_day)] * version.days_per_cycle,
        options.turnover,
        occupied,
        options.granularity_minutes,
        window,
        not_before=today,
        fixed=fixed,
        min_gap_days=min_gap,
        previous_start=previous_start,
        strict_gap=extend_only,
    )
    numbers = {cycle.cycle_number: first_number + i for i, cycle in enumerate(cycles)}
    planned_on = {cycle.cycle_number: cycle.planned_start for cycle in cycles}

    by_date: dict[dt.date, list[Existing]] = defaultdict(list)
    for row in sorted(movable, key=lambda r: (r.planned_date, r.day_number, r.id)):
        by_date[row.planned_date].append(row)
    days = [
        _planned_day(booking, numbers, planned_on, by_date)
        for booking in booked.bookings
        # A day already given, recorded or under way stays; no second infusion on it.
        if booking.date not in kept_dates
    ]
    unkept = [
        UnkeptMove(row.id, row.pinned_by, row.planned_date, reason)  # type: ignore[arg-type]
        for number, reason in booked.not_kept.items()
        for row in pinned_rows[number]
    ]
    unkept += [
        UnkeptMove(
            row.id,
            row.pinned_by,  # type: ignore[arg-type]
            row.planned_date,
            f"the new plan has no cycle planned for {row.cycle_planned_on}",
        )
        for row in orphans
    ]
    return Reconciliation(
        days=tuple(days),
        cancel_ids=tuple(row.id for rows in by_date.values() for row in rows),
        unkept=tuple(sorted(unkept, key=lambda m: (m.planned_date, m.existing_id))),
        blocked_on=blocked_on,
    )


def booking_days(
    version: Version,
    existing: Sequence[Existing],
    calendar: schedule.CenterCalendar,
    today: dt.date,
    options: Options,
    *,
    extend_only: bool = False,
    planned_only: bool = False,
) -> tuple[tuple[dt.date, dt.date], ...]:
    """The spans of dates a reconciliation may book on (first and last day, merged): each
    cycle's shift window with the open days its run takes from the window's last day, and
    the dates of the patient's rows it may keep or move. The chairs' occupancy matters only
    there, so that is all the service reads of a busy center.

    With `planned_only`, each cycle's planned run alone: where a plan books when nothing
    pushes it off its days (see `within`)."""
    window = dt.timedelta(days=options.shift_window_days)
    cycles = schedule.plan_cycles(
        start=version.first_cycle_on,
        interval_weeks=version.interval_weeks,
        days_per_cycle=version.days_per_cycle,
        until=options.until,
        calendar=calendar,
        shift_window_days=options.shift_window_days,
        not_before=today,
    )
    if extend_only:
        cycles, _blocked = _after_the_last_booked(cycles, existing, version)
    spans = []
    for cycle in cycles:
        if planned_only:
            if cycle.days:
                spans.append((cycle.days[0], cycle.days[-1]))
            continue
        latest = cycle.planned_start + window
        run = schedule.following_open_days(latest, version.days_per_cycle - 1, calendar)
        # A closure cutting the run from the latest start: the runs before it end sooner.
        last = run[-1] if run else latest + dt.timedelta(days=version.days_per_cycle + 7)
        spans.append((max(today, cycle.planned_start - window), max(latest, last)))
    spans += [
        (row.planned_date, row.planned_date)
        for row in existing
        if row.status in PLANNED and row.planned_date >= today
    ]
    merged: list[tuple[dt.date, dt.date]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + dt.timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


def within(plan: Reconciliation, spans: Sequence[tuple[dt.date, dt.date]]) -> bool:
    """Whether every day of a plan is booked on a chair on a date inside the spans.

    A plan made with the chairs' occupancy of those dates only is then the plan the whole
    calendar gives: each day was checked against all of its date's bookings, and it went
    to the first place the search tries (its planned run), which the rest cannot change."""
    return all(
        day.booking.chair_id is not None
        and any(first <= day.booking.date <= last for first, last in spans)
        for day in plan.days
    )
