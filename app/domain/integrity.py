"""Therapy integrity: the rules that keep a patient's booked infusions true to the approved therapy.

This module is the only place these rules are written. It is pure: the service layer loads a
patient's regimen versions, infusions and center calendars as plain values, and every
transaction that touches infusions is checked here before it commits (app/services/integrity).

Hard rules have no override. Soft rules may be overridden by a physician with a reason; the
override is stored on the infusions it concerns (`waived`) and audited.

Decisions:
- A cycle is the set of not-cancelled infusions that share a cycle number. It has *begun* when
  a day is recorded (given, partial, missed), has started on the clock, or lies before today
  at its center. A begun cycle finishes as it was planned: the rules about where a future
  cycle goes (version in force, consecutive days, shift window, opening hours) apply only to
  cycles that have not begun.
- The version in force on a date is the newest version whose first cycle starts on or before
  it; a cycle is judged by its planned (unshifted) start, `cycle_planned_on`.
- Grams are counted as given for recorded infusions and as planned for booked ones; missed
  and cancelled ones count nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from app.domain.schedule import CenterCalendar, booking_fits, local_date

# Float hygiene only: no clinical meaning.
_EPS = 1e-6

#: Statuses a nurse records; they are history, not plans.
RECORDED = frozenset({"given", "partial", "missed"})
#: Statuses whose grams went into the patient.
GIVEN = frozenset({"given", "partial"})
#: Statuses of infusions still to come.
PLANNED = frozenset({"scheduled", "unbooked"})
#: Statuses of a visit under way (the patient checked in, or the infusion started).
UNDER_WAY = frozenset({"checked_in", "in_chair"})

#: Every rule the checker knows: code -> (hard, what it protects), for messages and docs.
RULES: Mapping[str, tuple[bool, str]] = {
    "cycle_day_unique": (True, "each cycle and day number is used once in a course"),
    "one_per_day": (True, "a patient has at most one infusion a day"),
    "cycle_days_in_order": (True, "a cycle's days follow each other in order"),
    "cycle_one_version": (True, "all days of a cycle belong to one regimen version"),
    "cycle_length": (True, "a cycle has no more days than its regimen version"),
    "version_in_force": (True, "a future cycle belongs to the regimen version in force"),
    "dose_matches_version": (True, "a planned infusion carries its version's dose"),
    "grams_in_window": (True, "no window holds more than one cycle's grams"),
    "recorded_when_it_happened": (True, "nothing is recorded before it happened"),
    "open_hours": (True, "a booked infusion lies inside the center's opening hours"),
    "chair_not_closed": (True, "a booked infusion's chair is not closed at that time"),
    "consecutive_open_days": (False, "a future cycle runs on consecutive open days"),
    "shift_window": (False, "a future cycle starts within the shift window of its plan"),
    "cycle_interval": (False, "cycles start at least the interval (less tolerance) apart"),
    "authorised": (False, "a booked infusion day lies inside one of the course's authorisations"),
}
SOFT_RULES = frozenset(code for code, (hard, _text) in RULES.items() if not hard)


@dataclass(frozen=True)
class Limits:
    """The clinic's settings the rules read (config.toml [scheduling] and [dosing])."""

    shift_window_days: int
    interval_tolerance_days: int
    #: Length of the grams window as a percent of the interval (at least one day).
    dose_window_percent: float
    #: Given grams may exceed the cycle's grams by this much (vial rounding).
    grams_tolerance_percent: float
    #: Times recorded this far ahead of the clock are still "now" (clock skew at the chair).
    clock_skew: dt.timedelta = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class CourseLimits:
    """The course's authorisation as the booking rules see it (app.domain.reviews).

    A cycle starting after the authorisation's end is a soft stop: a physician may book it
    with a reason. (A review overdue is a soft stop where cycles are decided, not here: when a
    physician sets a regimen, and at the chair; the horizon waits for it.)
    """

    #: The course's authorisations as (first day, last day); empty: no authorisation scheme.
    authorised: tuple[tuple[dt.date, dt.date], ...] = ()


@dataclass(frozen=True)
class VersionFact:
    """A regimen version as the rules see it."""

    id: int
    version: int
    #: Date its first cycle is planned to start (preferred weekday applied).
    effective_on: dt.date
    grams_per_day: float
    grams_per_cycle: float
    days_per_cycle: int
    interval_weeks: int


@dataclass(frozen=True)
class InfusionFact:
    """One infusion row as the rules see it."""

    id: int
    regimen_id: int
    center_id: int
    cycle_number: int
    day_number: int
    planned_date: dt.date
    #: The cycle's planned start before any shift (closures, full chairs, a nurse's move).
    cycle_planned_on: dt.date
    status: str
    planned_grams: float
    given_grams: float | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    chair_id: int | None = None
    #: A visit under way: the dose the day's check set (once approved when it had to be).
    day_grams: float | None = None
    given_started_at: dt.datetime | None = None
    given_ended_at: dt.datetime | None = None
    #: Soft rules a physician overrode for this infusion.
    waived: frozenset[str] = frozenset()

    @property
    def live(self) -> bool:
        """Return whether the infusion counts at all (not cancelled)."""
        return self.status != "cancelled"

    @property
    def grams(self) -> float:
        """Return the grams this infusion puts into the patient (given, or planned)."""
        if self.status in GIVEN:
            return self.given_grams or 0.0
        if self.status in UNDER_WAY:
            return self.day_grams if self.day_grams is not None else self.planned_grams
        if self.status in PLANNED:
            return self.planned_grams
        return 0.0


@dataclass(frozen=True)
class Violation:
    """One broken rule, with the infusions it concerns."""

    rule: str
    message: str
    infusion_ids: tuple[int, ...]

    @property
    def hard(self) -> bool:
        """Return whether no one may override it."""
        return RULES[self.rule][0]

    @property
    def key(self) -> tuple[str, tuple[int, ...], str]:
        """Return what identifies the violation across two checks of the same patient.

        The message carries the dates and amounts, so a violation made worse is a new one.
        """
        return self.rule, self.infusion_ids, self.message


@dataclass(frozen=True)
class _Cycle:
    number: int
    days: tuple[InfusionFact, ...]  # by day number
    begun: bool

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(sorted(i.id for i in self.days))


@dataclass
class _Context:
    versions: dict[int, VersionFact]
    calendars: Mapping[int, CenterCalendar]
    now: dt.datetime
    limits: Limits
    found: list[Violation] = field(default_factory=list)

    def today_at(self, center_id: int) -> dt.date:
        return local_date(self.now, self.calendars[center_id].timezone)

    def add(self, rule: str, message: str, infusions: Iterable[InfusionFact]) -> None:
        chosen = list(infusions)
        if not RULES[rule][0] and any(rule in i.waived for i in chosen):
            return
        self.found.append(
            Violation(rule, f"{rule}: {message}", tuple(sorted(i.id for i in chosen)))
        )


class _Day(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def starts_at(self) -> dt.datetime | None: ...
    @property
    def planned_date(self) -> dt.date: ...


def cycle_has_begun(days: Iterable[_Day], now: dt.datetime, today: dt.date) -> bool:
    """Return whether a cycle has a day recorded or under way, started on the clock, or
    before today."""
    return any(
        i.status in RECORDED
        or i.status in UNDER_WAY
        or (i.starts_at is not None and i.starts_at <= now)
        or i.planned_date < today
        for i in days
    )


def version_in_force(versions: Sequence[VersionFact], on: dt.date) -> VersionFact | None:
    """Return the newest version whose first cycle starts on or before a date."""
    candidates = [v for v in versions if v.effective_on <= on]
    return max(candidates, key=lambda v: v.version) if candidates else None


def min_days_between_cycles(interval_weeks: int, tolerance_days: int) -> int:
    """Return the fewest days from one cycle's start to the next's (the interval less the
    clinic's tolerance): closer is the soft rule `cycle_interval`."""
    return interval_weeks * 7 - tolerance_days


def _cycles(infusions: Sequence[InfusionFact], ctx: _Context) -> list[_Cycle]:
    by_number: dict[int, list[InfusionFact]] = defaultdict(list)
    for infusion in infusions:
        if infusion.live:
            by_number[infusion.cycle_number].append(infusion)
    cycles = []
    for number, days in sorted(by_number.items()):
        days.sort(key=lambda i: (i.day_number, i.planned_date, i.id))
        today = ctx.today_at(days[0].center_id)
        cycles.append(_Cycle(number, tuple(days), cycle_has_begun(days, ctx.now, today)))
    return cycles


def _check_numbers(live: Sequence[InfusionFact], ctx: _Context) -> None:
    by_key: dict[tuple[int, int], list[InfusionFact]] = defaultdict(list)
    by_date: dict[dt.date, list[InfusionFact]] = defaultdict(list)
    for infusion in live:
        by_key[(infusion.cycle_number, infusion.day_number)].append(infusion)
        by_date[infusion.planned_date].append(infusion)
    for (cycle, day), same in sorted(by_key.items()):
        if len(same) > 1:
            dates = ", ".join(str(i.planned_date) for i in same)
            ctx.add(
                "cycle_day_unique",
                f"cycle {cycle} day {day} is booked {len(same)} times ({dates})",
                same,
            )
    for on, same in sorted(by_date.items()):
        if len(same) > 1:
            ctx.add("one_per_day", f"{len(same)} infusions on {on}", same)


def _check_cycle_shape(cycle: _Cycle, ctx: _Context) -> None:
    days = cycle.days
    for first, second in itertools.pairwise(days):
        if second.planned_date <= first.planned_date:
            ctx.add(
                "cycle_days_in_order",
                f"cycle {cycle.number} day {second.day_number} ({second.planned_date}) is not "
                f"after day {first.day_number} ({first.planned_date})",
                (first, second),
            )
    if len({i.regimen_id for i in days}) > 1:
        ctx.add("cycle_one_version", f"cycle {cycle.number} mixes regimen versions", days)
        return
    version = ctx.versions.get(days[0].regimen_id)
    if version is None:
        return
    too_many = [i for i in days if i.day_number > version.days_per_cycle]
    if len(days) > version.days_per_cycle or too_many:
        ctx.add(
            "cycle_length",
            f"cycle {cycle.number} has {len(days)} day(s), up to day "
            f"{max(i.day_number for i in days)}; version {version.version} gives "
            f"{version.days_per_cycle} day(s) per cycle",
            days,
        )


def _check_dose(cycle: _Cycle, ctx: _Context) -> None:
    for infusion in cycle.days:
        version = ctx.versions.get(infusion.regimen_id)
        if version is None or infusion.status not in PLANNED:
            continue
        if abs(infusion.planned_grams - version.grams_per_day) > _EPS:
            ctx.add(
                "dose_matches_version",
                f"cycle {cycle.number} day {infusion.day_number} on {infusion.planned_date} "
                f"plans {infusion.planned_grams:g} g; regimen version {version.version} gives "
                f"{version.grams_per_day:g} g a day",
                (infusion,),
            )


def _check_future_cycle(cycle: _Cycle, ordered: Sequence[VersionFact], ctx: _Context) -> None:
    """Rules for a cycle that has not begun: where it is, and which version it carries."""
    days = cycle.days
    first = days[0]
    version = ctx.versions.get(first.regimen_id)
    in_force = version_in_force(ordered, first.cycle_planned_on)
    if in_force is not None and version is not None and in_force.id != version.id:
        ctx.add(
            "version_in_force",
            f"cycle {cycle.number} (planned {first.cycle_planned_on}) carries regimen version "
            f"{version.version}; version {in_force.version} is in force then",
            days,
        )
    calendar = ctx.calendars[first.center_id]
    limits = ctx.limits
    shift = abs((first.planned_date - first.cycle_planned_on).days)
    if first.day_number == 1 and shift > limits.shift_window_days:
        ctx.add(
            "shift_window",
            f"cycle {cycle.number} starts {first.planned_date}, {shift} days from its planned "
            f"start {first.cycle_planned_on} (window {limits.shift_window_days} days)",
            days,
        )
    for earlier, later in itertools.pairwise(days):
        if later.day_number != earlier.day_number + 1:
            continue  # a cancelled day between them: the cycle is short, not spread out
        day = earlier.planned_date + dt.timedelta(days=1)
        while day < later.planned_date:
            if calendar.hours_on(day) is not None:
                ctx.add(
                    "consecutive_open_days",
                    f"cycle {cycle.number} skips the open day {day} between day "
                    f"{earlier.day_number} ({earlier.planned_date}) and day "
                    f"{later.day_number} ({later.planned_date})",
                    (earlier, later),
                )
                break
            day += dt.timedelta(days=1)
    _check_bookings(cycle, calendar, ctx)


def _check_bookings(cycle: _Cycle, calendar: CenterCalendar, ctx: _Context) -> None:
    """Each booked day lies in the day's opening hours, on a chair not closed then."""
    for infusion in cycle.days:
        if infusion.status != "scheduled" or infusion.starts_at is None:
            continue
        zone = ZoneInfo(calendar.timezone)
        start = infusion.starts_at.astimezone(zone)
        end = (infusion.ends_at or infusion.starts_at).astimezone(zone)
        hours = calendar.hours_on(infusion.planned_date)
        if not booking_fits(calendar, infusion.planned_date, start, end):
            opening = f"{hours.opens_at:%H:%M}-{hours.closes_at:%H:%M}" if hours else "closed"
            ctx.add(
                "open_hours",
                f"cycle {cycle.number} day {infusion.day_number} is booked {start:%Y-%m-%d %H:%M}"
                f"-{end:%H:%M}; the center is {opening} on {infusion.planned_date}",
                (infusion,),
            )
        closed = (
            calendar.blocking(infusion.chair_id, start, end)
            if infusion.chair_id is not None
            else None
        )
        if closed is not None:
            ctx.add(
                "chair_not_closed",
                f"cycle {cycle.number} day {infusion.day_number} is booked {start:%Y-%m-%d %H:%M}"
                f"-{end:%H:%M} on a chair closed then: {closed.reason}",
                (infusion,),
            )


def _check_course(cycle: _Cycle, course: CourseLimits, ctx: _Context) -> None:
    if not course.authorised:
        return
    outside = [
        i
        for i in cycle.days
        if not any(start <= i.planned_date <= end for start, end in course.authorised)
    ]
    if outside:
        days = ", ".join(f"day {i.day_number} ({i.planned_date})" for i in outside)
        ctx.add(
            "authorised",
            f"cycle {cycle.number} {days} lies outside every authorisation",
            outside,
        )


def _check_intervals(cycles: Sequence[_Cycle], ctx: _Context) -> None:
    # A cycle starts on its first day, missed or not: recording a no-show never moves it. A
    # cycle missed entirely gave nothing and does not count.
    counted = []
    for cycle in cycles:
        if any(i.status != "missed" for i in cycle.days):
            counted.append((min(i.planned_date for i in cycle.days), cycle, list(cycle.days)))
    counted.sort(key=lambda item: (item[0], item[1].number))
    for (start, cycle, _days), (next_start, following, next_days) in itertools.pairwise(counted):
        version = ctx.versions.get(following.days[0].regimen_id)
        if version is None:
            continue
        minimum = min_days_between_cycles(
            version.interval_weeks, ctx.limits.interval_tolerance_days
        )
        gap = (next_start - start).days
        if gap < minimum:
            ctx.add(
                "cycle_interval",
                f"cycle {following.number} starts {next_start}, {gap} days after cycle "
                f"{cycle.number} ({start}); every {version.interval_weeks} weeks needs at least "
                f"{minimum} days",
                [next_days[0]],
            )


def _check_grams(live: Sequence[InfusionFact], ctx: _Context) -> None:
    counted = sorted((i for i in live if i.grams > 0), key=lambda i: (i.planned_date, i.id))
    reported: set[tuple[int, ...]] = set()
    for index, anchor in enumerate(counted):
        version = ctx.versions.get(anchor.regimen_id)
        if version is None:
            continue
        length = max(1, int(version.interval_weeks * 7 * ctx.limits.dose_window_percent / 100))
        end = anchor.planned_date + dt.timedelta(days=length)
        window = [i for i in counted[index:] if i.planned_date < end]
        limit = max(
            (
                ctx.versions[i.regimen_id].grams_per_cycle
                for i in window
                if i.regimen_id in ctx.versions
            ),
            default=version.grams_per_cycle,
        ) * (1 + ctx.limits.grams_tolerance_percent / 100)
        total = sum(i.grams for i in window)
        ids = tuple(sorted(i.id for i in window))
        if total > limit + _EPS and not any(set(ids) <= set(seen) for seen in reported):
            reported.add(ids)
            ctx.add(
                "grams_in_window",
                f"{total:g} g between {anchor.planned_date} and {window[-1].planned_date} "
                f"({len(window)} infusions); at most {limit:g} g in any {length} days",
                window,
            )


def _check_records(live: Sequence[InfusionFact], ctx: _Context) -> None:
    skew = ctx.limits.clock_skew
    for infusion in live:
        if infusion.status not in RECORDED:
            continue
        today = ctx.today_at(infusion.center_id)
        if infusion.status == "missed":
            if infusion.planned_date > today:
                ctx.add(
                    "recorded_when_it_happened",
                    f"cycle {infusion.cycle_number} day {infusion.day_number} on "
                    f"{infusion.planned_date} is recorded missed before its day",
                    (infusion,),
                )
            continue
        started, ended = infusion.given_started_at, infusion.given_ended_at
        timezone = ctx.calendars[infusion.center_id].timezone
        zone = ZoneInfo(timezone)
        if started is None or ended is None or ended <= started:
            ctx.add(
                "recorded_when_it_happened",
                f"cycle {infusion.cycle_number} day {infusion.day_number} has no valid "
                "start and end of what was given",
                (infusion,),
            )
        elif ended > ctx.now + skew or started > ctx.now + skew:
            ctx.add(
                "recorded_when_it_happened",
                f"cycle {infusion.cycle_number} day {infusion.day_number} is recorded given "
                f"until {ended.astimezone(zone):%Y-%m-%d %H:%M}, which is in the future",
                (infusion,),
            )
        elif local_date(started, timezone) != infusion.planned_date:
            ctx.add(
                "recorded_when_it_happened",
                f"cycle {infusion.cycle_number} day {infusion.day_number} is planned "
                f"{infusion.planned_date} but recorded given on "
                f"{started.astimezone(zone):%Y-%m-%d}; move it to that day first",
                (infusion,),
            )


def check(
    versions: Sequence[VersionFact],
    infusions: Sequence[InfusionFact],
    calendars: Mapping[int, CenterCalendar],
    now: dt.datetime,
    limits: Limits,
    course: CourseLimits | None = None,
) -> list[Violation]:
    """Return every rule one patient's infusions break, hard ones first; empty when sound."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    ctx = _Context({v.id: v for v in versions}, calendars, now, limits)
    ordered = sorted(versions, key=lambda v: v.version)
    live = [i for i in infusions if i.live]
    _check_numbers(live, ctx)
    cycles = _cycles(live, ctx)
    for cycle in cycles:
        _check_cycle_shape(cycle, ctx)
        _check_dose(cycle, ctx)
        if not cycle.begun:
            _check_future_cycle(cycle, ordered, ctx)
            if course is not None:
                _check_course(cycle, course, ctx)
    _check_intervals(cycles, ctx)
    _check_grams(live, ctx)
    _check_records(live, ctx)
    return sorted(ctx.found, key=lambda v: (not v.hard, v.rule, v.infusion_ids))


def new_violations(before: Sequence[Violation], after: Sequence[Violation]) -> list[Violation]:
    """Return the violations in `after` that `before` did not have (what a change broke)."""
    seen = {v.key for v in before}
    return [v for v in after if v.key not in seen]
