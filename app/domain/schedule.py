"""Infusion schedules: cycle dates from a regimen, then chair bookings at an infusion center.

Pure functions over plain values (no configuration, no database, no clock): the service
layer passes in the center's calendar, the chairs' existing occupancy and the settings.
Dates are the center's local days; instants are aware UTC datetimes.
"""

import bisect
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_ONE_DAY = dt.timedelta(days=1)
_MIDNIGHT = dt.time(0, 0)


@dataclass(frozen=True)
class OpeningHours:
    """Opening hours of a center on one weekday, in the center's local wall-clock time."""

    weekday: int
    opens_at: dt.time
    closes_at: dt.time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {self.weekday}")
        if self.opens_at.tzinfo is not None or self.closes_at.tzinfo is not None:
            raise ValueError("opens_at and closes_at are local wall-clock times without tzinfo")
        if self.opens_at >= self.closes_at:
            raise ValueError(f"opens_at {self.opens_at} must be before closes_at {self.closes_at}")


@dataclass(frozen=True)
class Interval:
    """A span during which a chair is occupied, turnover after the infusion included."""

    starts_at: dt.datetime
    ends_at: dt.datetime


@dataclass(frozen=True)
class Blocked:
    """Time a closure takes from one chair, or from every chair (chair_id None), while the
    center stays open: a chair out of use, or part of a day. UTC instants, half-open."""

    chair_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("a blocked span's instants must be timezone-aware")
        if self.starts_at >= self.ends_at:
            raise ValueError(f"a blocked span must end after it starts ({self.starts_at})")


def day_span(
    day: dt.date, from_time: dt.time | None, until_time: dt.time | None, timezone: str
) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants of part of a local day (the whole day when no times are given)."""
    zone = ZoneInfo(timezone)
    begin = dt.datetime.combine(day, from_time or _MIDNIGHT, tzinfo=zone)
    end = (
        dt.datetime.combine(day, until_time, tzinfo=zone)
        if until_time is not None
        else dt.datetime.combine(day + _ONE_DAY, _MIDNIGHT, tzinfo=zone)
    )
    return begin.astimezone(dt.UTC), end.astimezone(dt.UTC)


@dataclass(frozen=True)
class CenterCalendar:
    """When an infusion center is open and which chairs it books, in preference order.

    `closures` are the whole days the center is closed (cycles shift around them); `blocked`
    the spans closures take from chairs on days it is open (bookings move off them)."""

    timezone: str
    hours: tuple[OpeningHours, ...]
    closures: frozenset[dt.date]
    chair_ids: tuple[int, ...]
    blocked: tuple[Blocked, ...] = ()

    def __post_init__(self) -> None:
        weekdays = [entry.weekday for entry in self.hours]
        if len(set(weekdays)) != len(weekdays):
            raise ValueError("hours has more than one entry for the same weekday")

    def hours_on(self, day: dt.date) -> OpeningHours | None:
        """Return the opening hours on day, or None if the center is closed that day."""
        if day in self.closures:
            return None
        weekday = day.weekday()
        for entry in self.hours:
            if entry.weekday == weekday:
                return entry
        return None

    def blocked_for(self, chair_id: int) -> list[Interval]:
        """The spans closures take from a chair."""
        return [
            Interval(span.starts_at, span.ends_at)
            for span in self.blocked
            if span.chair_id is None or span.chair_id == chair_id
        ]

    def blocking(self, chair_id: int, begin: dt.datetime, end: dt.datetime) -> Blocked | None:
        """The closure span a booking of the chair from begin to end would overlap, if any."""
        for span in self.blocked:
            if (span.chair_id is None or span.chair_id == chair_id) and (
                span.starts_at < end and begin < span.ends_at
            ):
                return span
        return None


def booking_fits(
    calendar: CenterCalendar, day: dt.date, starts_at: dt.datetime, ends_at: dt.datetime
) -> bool:
    """Whether a booking on `day` from starts_at to ends_at lies inside the center's opening
    hours that day (on the center's clock; a closed day fits nothing)."""
    hours = calendar.hours_on(day)
    zone = ZoneInfo(calendar.timezone)
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    return (
        hours is not None
        and start.date() == day
        and end.date() == day
        and start.time() >= hours.opens_at
        and end.time() <= hours.closes_at
    )


@dataclass(frozen=True)
class PlannedCycle:
    """The infusion dates of one cycle, or no dates if it could not be placed."""

    cycle_number: int
    planned_start: dt.date
    days: tuple[dt.date, ...]
    shift_days: int

    @property
    def placed(self) -> bool:
        """Return whether the cycle has infusion dates."""
        return bool(self.days)


@dataclass(frozen=True)
class Booking:
    """One infusion day of a cycle, on a chair at a time, or unbooked for a nurse to place."""

    cycle_number: int
    day_number: int
    date: dt.date
    chair_id: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    shift_days: int


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _shift_offsets(window: int) -> Iterator[int]:
    # Nearest first; on a tie later before earlier, because a later start never shortens
    # the prescribed interval since the previous cycle.
    yield 0
    for distance in range(1, window + 1):
        yield distance
        yield -distance


def _run_from(
    start: dt.date, count: int, open_weekdays: frozenset[int], closures: frozenset[dt.date]
) -> tuple[dt.date, ...] | None:
    """Return count consecutive open days from start, or None if a closure interrupts them."""
    if start.weekday() not in open_weekdays or start in closures:
        return None
    days: list[dt.date] = []
    day = start
    while True:
        if day.weekday() in open_weekdays:
            # Regular weekly closed days (weekends) are part of a normal cycle; an exceptional
            # closure on an otherwise open day would split it, so the whole cycle must move.
            if day in closures:
                return None
            days.append(day)
            if len(days) == count:
                return tuple(days)
        day += _ONE_DAY


def _candidate_runs(
    planned: dt.date,
    count: int,
    window: int,
    open_weekdays: frozenset[int],
    closures: frozenset[dt.date],
    after: dt.date | None,
    before: dt.date | None,
    not_before: dt.date | None,
    earliest: dt.date | None = None,
    strict_gap: bool = False,
) -> Iterator[tuple[dt.date, ...]]:
    """Yield the runs of days a cycle may occupy, in the order they should be tried.

    `earliest` keeps a shift from bringing the cycle closer to the previous one than the
    interval allows; a cycle planned earlier than that (a physician's choice) may stay,
    unless `strict_gap` (the horizon rolling on by itself) says it may not.
    """
    for offset in _shift_offsets(window):
        start = planned + dt.timedelta(days=offset)
        if after is not None and start <= after:
            continue
        if not_before is not None and start < not_before:
            continue
        if earliest is not None and start < (earliest if strict_gap else min(earliest, planned)):
            continue
        run = _run_from(start, count, open_weekdays, closures)
        if run is not None and (before is None or run[-1] < before):
            yield run


def plan_cycles(
    start: dt.date,
    interval_weeks: int,
    days_per_cycle: int,
    until: dt.date,
    calendar: CenterCalendar,
    shift_window_days: int,
    first_cycle_number: int = 1,
    not_before: dt.date | None = None,
    min_gap_days: int = 0,
    previous_start: dt.date | None = None,
    strict_gap: bool = False,
) -> list[PlannedCycle]:
    """Plan the cycles from start through until on open days, shifting them around closures.

    A shift never brings a cycle's start within `min_gap_days` of the previous cycle's start
    (`previous_start` is the one before the first planned cycle, if any).
    """
    _require(interval_weeks >= 1, f"interval_weeks must be at least 1, got {interval_weeks}")
    _require(days_per_cycle >= 1, f"days_per_cycle must be at least 1, got {days_per_cycle}")
    _require(shift_window_days >= 0, f"shift_window_days must be >= 0, got {shift_window_days}")
    open_weekdays = frozenset(entry.weekday for entry in calendar.hours)
    step = dt.timedelta(weeks=interval_weeks)
    index = 0
    if not_before is not None:
        # Cycles planned before this belong to the past: jump over them instead of walking.
        earliest = not_before - dt.timedelta(days=shift_window_days)
        index = max(0, -(-(earliest - start).days // step.days))
    cycles: list[PlannedCycle] = []
    last_day: dt.date | None = None
    last_start = previous_start
    planned = start + index * step
    while planned <= until:
        run = next(
            _candidate_runs(
                planned,
                days_per_cycle,
                shift_window_days,
                open_weekdays,
                calendar.closures,
                after=last_day,
                before=None,
                not_before=not_before,
                earliest=_earliest(last_start, min_gap_days),
                strict_gap=strict_gap,
            ),
            (),
        )
        if run:
            last_day, last_start = run[-1], run[0]
        cycles.append(
            PlannedCycle(
                cycle_number=first_cycle_number + index,
                planned_start=planned,
                days=run,
                shift_days=(run[0] - planned).days if run else 0,
            )
        )
        index += 1
        planned = start + index * step
    return cycles


def _earliest(previous_start: dt.date | None, min_gap_days: int) -> dt.date | None:
    if previous_start is None or min_gap_days <= 0:
        return None
    return previous_start + dt.timedelta(days=min_gap_days)


def first_cycle_start(starts_on: dt.date, preferred_weekday: int | None) -> dt.date:
    """Return a regimen's start date moved forward to its preferred weekday, if any."""
    if preferred_weekday is None:
        return starts_on
    return starts_on + dt.timedelta(days=(preferred_weekday - starts_on.weekday()) % 7)


def _wall_to_utc(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    # fold=0 picks the first occurrence of an ambiguous time; a wall time inside a DST gap
    # comes back different after the round trip, which is how a nonexistent time shows.
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def local_date(instant: dt.datetime, timezone: str) -> dt.date:
    """Return the date an aware instant falls on at a place's wall clock (the clinic's day)."""
    if instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(ZoneInfo(timezone)).date()


def local_to_utc(day: dt.date, at: dt.time, timezone: str) -> dt.datetime | None:
    """Convert a local date and wall-clock time to UTC, or None if that time does not exist."""
    wall = dt.datetime.combine(day, at.replace(tzinfo=None, fold=0))
    return _wall_to_utc(wall, ZoneInfo(timezone))


class _ChairBusy:
    """A chair's occupied spans as sorted, disjoint half-open intervals."""

    __slots__ = ("ends", "starts")

    def __init__(self, intervals: Sequence[Interval]) -> None:
        self.starts: list[dt.datetime] = []
        self.ends: list[dt.datetime] = []
        spans = []
        for interval in intervals:
            begin, end = interval.starts_at, interval.ends_at
            if begin.tzinfo is None or end.tzinfo is None:
                raise ValueError("busy intervals must be timezone-aware")
            # Comparing datetimes that share the UTC tzinfo skips an offset lookup each time.
            if begin.tzinfo is not dt.UTC:
                begin = begin.astimezone(dt.UTC)
            if end.tzinfo is not dt.UTC:
                end = end.astimezone(dt.UTC)
            if begin < end:
                spans.append((begin, end))
        spans.sort()
        for begin, end in spans:
            # Merging overlaps keeps the ends sorted too, so one neighbour decides a conflict.
            if self.ends and begin <= self.ends[-1]:
                self.ends[-1] = max(self.ends[-1], end)
            else:
                self.starts.append(begin)
                self.ends.append(end)

    def is_free(self, begin: dt.datetime, end: dt.datetime) -> bool:
        """Return whether [begin, end) overlaps no occupied span."""
        position = bisect.bisect_left(self.starts, end)
        return position == 0 or self.ends[position - 1] <= begin

    def add(self, begin: dt.datetime, end: dt.datetime) -> None:
        """Occupy [begin, end), which must be free."""
        position = bisect.bisect_left(self.starts, begin)
        self.starts.insert(position, begin)
        self.ends.insert(position, end)

    def remove(self, begin: dt.datetime) -> None:
        """Free the span added with add(begin, ...)."""
        position = bisect.bisect_left(self.starts, begin)
        del self.starts[position]
        del self.ends[position]


class _Slotter:
    """Finds free chair slots for one center, remembering what it has booked."""

    def __init__(
        self,
        calendar: CenterCalendar,
        preferred_time: dt.time,
        turnover: dt.timedelta,
        busy: Mapping[int, Sequence[Interval]],
        granularity_minutes: int,
    ) -> None:
        _require(granularity_minutes >= 1, "granularity_minutes must be at least 1")
        _require(turnover >= dt.timedelta(0), "turnover must not be negative")
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.timezone)
        self.preferred_seconds = _seconds(preferred_time)
        self.step_seconds = granularity_minutes * 60
        self.turnover = turnover
        self.chairs = {
            chair: _ChairBusy([*busy.get(chair, ()), *calendar.blocked_for(chair)])
            for chair in calendar.chair_ids
        }
        self.hours = {entry.weekday: entry for entry in calendar.hours}
        self._orders: dict[tuple[dt.time, dt.time, dt.timedelta], tuple[int, ...]] = {}

    def _start_order(self, hours: OpeningHours, duration: dt.timedelta) -> tuple[int, ...]:
        """Return the candidate start times (seconds after midnight), best first."""
        key = (hours.opens_at, hours.closes_at, duration)
        order = self._orders.get(key)
        if order is None:
            step = self.step_seconds
            first = -(-_seconds(hours.opens_at) // step) * step
            # Whole seconds, rounded up, so a fractional duration never overruns closing.
            last = _seconds(hours.closes_at) + (-duration // dt.timedelta(seconds=1))
            preferred = self.preferred_seconds
            order = tuple(
                sorted(range(first, last + 1, step), key=lambda s: (abs(s - preferred), s))
            )
            self._orders[key] = order
        return order

    def find(self, day: dt.date, duration: dt.timedelta) -> tuple[int, dt.datetime] | None:
        """Return the best free (chair, UTC start) on day, or None."""
        if day in self.calendar.closures:
            return None
        hours = self.hours.get(day.weekday())
        if hours is None:
            return None
        zone = self.zone
        midnight = dt.datetime.combine(day, _MIDNIGHT)
        closing = dt.datetime.combine(day, hours.closes_at)
        offset = zone.utcoffset(dt.datetime.combine(day, hours.opens_at))
        # Same offset at opening and closing means no clock change in between (no zone
        # changes its clocks twice within a day), so wall time maps to UTC by subtraction.
        steady = offset is not None and offset == zone.utcoffset(closing)
        utc_midnight = (
            (midnight - offset).replace(tzinfo=dt.UTC) if steady and offset is not None else None
        )
        occupancy = duration + self.turnover
        for seconds in self._start_order(hours, duration):
            if utc_midnight is not None:
                begin = utc_midnight + dt.timedelta(seconds=seconds)
            else:
                found = _wall_to_utc(midnight + dt.timedelta(seconds=seconds), zone)
                if found is None:
                    continue
                # Across a clock change wall-clock arithmetic and elapsed time differ, so
                # check where the infusion really ends on the clock.
                if (found + duration).astimezone(zone).replace(tzinfo=None) > closing:
                    continue
                begin = found
            end = begin + occupancy
            for chair in self.calendar.chair_ids:
                if self.chairs[chair].is_free(begin, end):
                    return chair, begin
        return None

    def fits(self, day: dt.date, chair: int, begin: dt.datetime, duration: dt.timedelta) -> bool:
        """Return whether this exact slot is open, inside the day's hours and free."""
        hours = None if day in self.calendar.closures else self.hours.get(day.weekday())
        if hours is None or chair not in self.chairs:
            return False
        start = begin.astimezone(self.zone)
        end = (begin + duration).astimezone(self.zone)
        if start.date() != day or end.date() != day:
            return False
        if start.time() < hours.opens_at or end.time() > hours.closes_at:
            return False
        return self.chairs[chair].is_free(begin, begin + duration + self.turnover)

    def book_fixed(
        self,
        days: Sequence[dt.date],
        durations: Sequence[dt.timedelta],
        slots: Sequence[tuple[int, dt.datetime] | None],
    ) -> list[tuple[int, dt.datetime]] | None:
        """Book each day on its chosen slot (or the best one that day); None undoes all."""
        taken: list[tuple[int, dt.datetime]] = []
        for day, duration, wanted in zip(days, durations, slots, strict=True):
            slot = wanted if wanted and self.fits(day, wanted[0], wanted[1], duration) else None
            if slot is None and wanted is None:
                slot = self.find(day, duration)
            if slot is None:
                for chair, begin in taken:
                    self.chairs[chair].remove(begin)
                return None
            self.chairs[slot[0]].add(slot[1], slot[1] + duration + self.turnover)
            taken.append(slot)
        return taken

    def book_days(
        self, days: Sequence[dt.date], durations: Sequence[dt.timedelta], *, all_or_nothing: bool
    ) -> list[tuple[int, dt.datetime] | None] | None:
        """Book each day on the best free slot; with all_or_nothing, undo all if one fails."""
        slots: list[tuple[int, dt.datetime] | None] = []
        for day, duration in zip(days, durations, strict=True):
            slot = self.find(day, duration)
            if slot is None and all_or_nothing:
                for taken in slots:
                    if taken is not None:
                        self.chairs[taken[0]].remove(taken[1])
                return None
            if slot is not None:
                chair, begin = slot
                self.chairs[chair].add(begin, begin + duration + self.turnover)
            slots.append(slot)
        return slots


def _seconds(at: dt.time) -> int:
    return at.hour * 3600 + at.minute * 60 + at.second


def find_slot(
    day: dt.date,
    calendar: CenterCalendar,
    preferred_time: dt.time,
    duration: dt.timedelta,
    turnover: dt.timedelta,
    busy: Mapping[int, Sequence[Interval]],
    granularity_minutes: int,
) -> tuple[int, dt.datetime] | None:
    """Find the free chair and UTC start nearest the preferred local time on day."""
    _require(duration > dt.timedelta(0), "duration must be positive")
    slotter = _Slotter(calendar, preferred_time, turnover, busy, granularity_minutes)
    return slotter.find(day, duration)


def free_slots(
    day: dt.date,
    calendar: CenterCalendar,
    preferred_time: dt.time,
    duration: dt.timedelta,
    turnover: dt.timedelta,
    busy: Mapping[int, Sequence[Interval]],
    granularity_minutes: int,
    count: int,
) -> list[tuple[int, dt.datetime]]:
    """The `count` free (chair, UTC start) slots on day nearest the preferred local time, each
    clear of the others (what a nurse placing a day by hand is offered)."""
    _require(duration > dt.timedelta(0), "duration must be positive")
    slotter = _Slotter(calendar, preferred_time, turnover, busy, granularity_minutes)
    offers: list[tuple[int, dt.datetime]] = []
    while len(offers) < count:
        found = slotter.find(day, duration)
        if found is None:
            break
        offers.append(found)
        slotter.chairs[found[0]].add(found[1], found[1] + duration + turnover)
    return sorted(offers, key=lambda offer: (offer[1], calendar.chair_ids.index(offer[0])))


def following_open_days(
    first: dt.date, count: int, calendar: CenterCalendar
) -> tuple[dt.date, ...] | None:
    """Return the `count` open days that follow `first` in a cycle, or None if a closure cuts in."""
    open_weekdays = frozenset(entry.weekday for entry in calendar.hours)
    run = _run_from(first, count + 1, open_weekdays, calendar.closures)
    return None if run is None else run[1:]


def place_days(
    days: Sequence[dt.date],
    calendar: CenterCalendar,
    preferred_time: dt.time,
    duration: dt.timedelta,
    turnover: dt.timedelta,
    busy: Mapping[int, Sequence[Interval]],
    granularity_minutes: int,
    prefer_chair: int | None = None,
) -> list[tuple[int, dt.datetime]] | None:
    """Book each day at the preferred time on the preferred chair, else the best free slot."""
    slotter = _Slotter(calendar, preferred_time, turnover, busy, granularity_minutes)
    wanted: list[tuple[int, dt.datetime] | None] = []
    for day in days:
        begin = local_to_utc(day, preferred_time, calendar.timezone)
        fits = prefer_chair is not None and begin is not None
        if fits and slotter.fits(day, prefer_chair, begin, duration):  # type: ignore[arg-type]
            wanted.append((prefer_chair, begin))  # type: ignore[arg-type]
        else:
            wanted.append(None)
    return slotter.book_fixed(days, [duration] * len(days), wanted)


@dataclass(frozen=True)
class FixedCycle:
    """A cycle whose days and slots someone chose by hand: keep them if they are still valid."""

    days: tuple[dt.date, ...]
    #: Per day, the (chair, UTC start) to keep; None lets the day take the best slot that date.
    slots: tuple[tuple[int, dt.datetime] | None, ...]


@dataclass(frozen=True)
class BookedPlan:
    """Bookings for planned cycles, and why any fixed cycle could not be kept."""

    bookings: list[Booking]
    #: cycle_number -> reason, for fixed cycles booked afresh instead.
    not_kept: dict[int, str]


def _fixed_problem(
    fixed: FixedCycle,
    cycle: PlannedCycle,
    days_per_cycle: int,
    shift_window_days: int,
    open_weekdays: frozenset[int],
    closures: frozenset[dt.date],
    bounds: tuple[dt.date | None, dt.date | None, dt.date | None, dt.date | None],
) -> str | None:
    """Say why a hand-made cycle no longer fits the plan, or None when it still does."""
    after, before, not_before, earliest = bounds
    days = fixed.days
    if len(days) != days_per_cycle:
        return f"the regimen now gives {days_per_cycle} day(s) per cycle, not {len(days)}"
    first = days[0]
    if abs((first - cycle.planned_start).days) > shift_window_days:
        return (
            f"the cycle is now planned for {cycle.planned_start}, more than "
            f"{shift_window_days} days from {first}"
        )
    if _run_from(first, days_per_cycle, open_weekdays, closures) != days:
        return "its days are no longer consecutive open days"
    if not_before is not None and first < not_before:
        return f"{first} is in the past"
    if after is not None and first <= after:
        return f"{first} overlaps the previous cycle"
    if before is not None and days[-1] >= before:
        return f"{days[-1]} runs into the next cycle"
    if earliest is not None and first < min(earliest, cycle.planned_start):
        return f"{first} is too soon after the previous cycle for the interval"
    return None


def _next_starts(ordered: Sequence[PlannedCycle]) -> list[dt.date | None]:
    """For each cycle, the first day of the next placed one: a moved cycle stays clear of it."""
    next_starts: list[dt.date | None] = []
    upcoming: dt.date | None = None
    for cycle in reversed(ordered):
        next_starts.append(upcoming)
        if cycle.placed:
            upcoming = cycle.days[0]
    next_starts.reverse()
    return next_starts


@dataclass(frozen=True)
class _Booker:
    """Books one cycle at a time for `book_plan`."""

    slotter: _Slotter
    calendar: CenterCalendar
    days_per_cycle: int
    durations: tuple[dt.timedelta, ...]
    shift_window_days: int
    open_weekdays: frozenset[int]
    not_before: dt.date | None
    strict_gap: bool

    def _bookings(
        self,
        cycle: PlannedCycle,
        days: Sequence[dt.date],
        slots: Sequence[tuple[int, dt.datetime] | None],
        shift: int,
    ) -> list[Booking]:
        out = []
        for number, (day, duration, slot) in enumerate(
            zip(days, self.durations, slots, strict=True), start=1
        ):
            if slot is None:
                out.append(Booking(cycle.cycle_number, number, day, None, None, None, shift))
            else:
                chair, begin = slot
                out.append(
                    Booking(cycle.cycle_number, number, day, chair, begin, begin + duration, shift)
                )
        return out

    def fixed(
        self,
        cycle: PlannedCycle,
        hand_made: FixedCycle,
        bounds: tuple[dt.date | None, dt.date | None, dt.date | None, dt.date | None],
    ) -> list[Booking] | str:
        """The hand-made cycle as it stands, or why it can no longer be kept."""
        problem = _fixed_problem(
            hand_made,
            cycle,
            self.days_per_cycle,
            self.shift_window_days,
            self.open_weekdays,
            self.calendar.closures,
            bounds,
        )
        if problem is not None:
            return problem
        slots = self.slotter.book_fixed(hand_made.days, self.durations, hand_made.slots)
        if slots is None:
            return "the chair or the time chosen is no longer free or open"
        shift = (hand_made.days[0] - cycle.planned_start).days
        return self._bookings(cycle, hand_made.days, slots, shift)

    def unplaced(self, cycle: PlannedCycle) -> list[Booking]:
        """A cycle with no open days in its window: its days wait, unbooked, for a nurse."""
        return [
            Booking(
                cycle.cycle_number,
                number,
                cycle.planned_start + dt.timedelta(days=number - 1),
                None,
                None,
                None,
                0,
            )
            for number in range(1, self.days_per_cycle + 1)
        ]

    def planned(
        self,
        cycle: PlannedCycle,
        last_day: dt.date | None,
        next_start: dt.date | None,
        earliest: dt.date | None,
    ) -> tuple[Sequence[dt.date], list[Booking]]:
        """The cycle on its planned days, else on the first run in its shift window where
        every day fits, else on its planned days with the days that fit nowhere unbooked."""
        _require(
            len(cycle.days) == self.days_per_cycle,
            f"cycle {cycle.cycle_number} has {len(cycle.days)} days, "
            f"expected {self.days_per_cycle}",
        )
        days, shift = cycle.days, cycle.shift_days
        booked = self.slotter.book_days(days, self.durations, all_or_nothing=True)
        if booked is None:
            for run in _candidate_runs(
                cycle.planned_start,
                self.days_per_cycle,
                self.shift_window_days,
                self.open_weekdays,
                self.calendar.closures,
                after=last_day,
                before=next_start,
                not_before=self.not_before,
                earliest=earliest,
                strict_gap=self.strict_gap,
            ):
                if run == cycle.days:
                    continue
                booked = self.slotter.book_days(run, self.durations, all_or_nothing=True)
                if booked is not None:
                    days, shift = run, (run[0] - cycle.planned_start).days
                    break
        if booked is None:
            booked = self.slotter.book_days(days, self.durations, all_or_nothing=False)
            assert booked is not None
        return days, self._bookings(cycle, days, booked, shift)


def book_plan(
    cycles: Sequence[PlannedCycle],
    days_per_cycle: int,
    calendar: CenterCalendar,
    preferred_time: dt.time,
    durations: Sequence[dt.timedelta],
    turnover: dt.timedelta,
    busy: Mapping[int, Sequence[Interval]],
    granularity_minutes: int,
    shift_window_days: int,
    *,
    not_before: dt.date | None = None,
    fixed: Mapping[int, FixedCycle] | None = None,
    min_gap_days: int = 0,
    previous_start: dt.date | None = None,
    strict_gap: bool = False,
) -> BookedPlan:
    """Book the planned cycles on chairs; keep each fixed cycle (by number) while it is valid.

    A cycle that does not fit its planned days moves within the shift window, never into the
    next cycle's days and never closer than `min_gap_days` to the previous cycle's start.
    """
    _require(
        len(durations) == days_per_cycle,
        f"durations needs {days_per_cycle} entries (one per day), got {len(durations)}",
    )
    _require(all(d > dt.timedelta(0) for d in durations), "every duration must be positive")
    _require(shift_window_days >= 0, f"shift_window_days must be >= 0, got {shift_window_days}")
    fixed = fixed or {}
    slotter = _Slotter(calendar, preferred_time, turnover, busy, granularity_minutes)
    booking = _Booker(
        slotter,
        calendar,
        days_per_cycle,
        tuple(durations),
        shift_window_days,
        frozenset(slotter.hours),
        not_before,
        strict_gap,
    )
    ordered = sorted(cycles, key=lambda cycle: cycle.cycle_number)
    bookings: list[Booking] = []
    not_kept: dict[int, str] = {}
    last_day: dt.date | None = None
    last_start = previous_start
    for cycle, next_start in zip(ordered, _next_starts(ordered), strict=True):
        earliest = _earliest(last_start, min_gap_days)
        hand_made = fixed.get(cycle.cycle_number)
        if hand_made is not None:
            kept = booking.fixed(cycle, hand_made, (last_day, next_start, not_before, earliest))
            if not isinstance(kept, str):
                bookings.extend(kept)
                last_day, last_start = hand_made.days[-1], hand_made.days[0]
                continue
            not_kept[cycle.cycle_number] = kept
        if not cycle.placed:
            bookings.extend(booking.unplaced(cycle))
            continue
        days, booked = booking.planned(cycle, last_day, next_start, earliest)
        bookings.extend(booked)
        last_day, last_start = days[-1], days[0]
    return BookedPlan(bookings, not_kept)


def add_months(day: dt.date, months: int) -> dt.date:
    """Return the same day `months` later (clamped to the month's end)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")
