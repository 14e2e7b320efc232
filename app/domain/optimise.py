"""The chair and nurse optimiser: book a horizon of IVIG cycles at one center with CP-SAT.

Pure: the service layer passes the center's calendar, the nurses on shift, the cycles to book
(with the days already given or started, which never move) and the settings; it shows what
comes back beside the current plan and applies it only when the scheduling nurse accepts.

Units and grid:
- Time is the center's local wall clock in whole minutes after midnight; starts lie on the
  slot grid (multiples of `granularity_minutes` after midnight). A day whose opening hours
  hold a clock change is modelled on the wall clock too (no center opens across 2-3 am).
- `minutes` of a day is the chair time from start to end as a booking shows it (the nurse's
  setup, the first `setup_minutes`, included); the chair is then held `turnover_minutes`
  more for cleaning, as everywhere in app.domain.schedule.

Hard (every plan the solver returns keeps them; the therapy checker's `open_hours` rule is
one of them, so each plan passes it):
- every day starts at or after opening and ends (start + minutes) at or before closing;
- no chair double-booked, turnover included (NoOverlap per chair on optional intervals),
  nor booked while a closure blocks it;
- patients in chairs at once <= nurses on shift x ratio (a cumulative per day);
- setups at once <= nurses on shift (a cumulative per day over intervals of
  max(setup, granularity) minutes, so at most `nurses` setups start in one slot and a nurse
  setting up is not counted free before her setup is done);
- a cycle's days on consecutive open days (weekly closed days skipped, an exceptional closure
  breaks the run, as schedule.plan_cycles), its first day within `window_days` of the target
  start, not before `earliest_start` nor after `latest_start`, and at least `min_gap_days`
  after the start of the cycle it `follows`;
- fixed days (given or started) keep their date, chair and start, wherever they are (off
  the grid, past closing, on a day closed since); the cycle's other days go on the open days
  that follow them. Fixed days that break a limit by themselves are reported, not solved.

Soft, weighted (integer weights, see Weights; the objective is their weighted sum):
- same chair: each cycle day off the cycle's own chair (the chair most of its days use);
- preferred time: minutes between each day's start and the patient's preferred start;
- target date: days between the cycle's first day and its target start;
- past closing: minutes the chair is held (infusion and turnover) past closing. The
  infusion itself never runs past closing (hard, above), so this is the cleaning after the
  last patient; how far a plan would make the day run over is what Figures measures, by
  running the day with the nurses on shift;
- level starts: each day's peak of setups at once.

Search: a nurse-aware greedy (each cycle on its cheapest run, on one chair where it can,
each day at the free start nearest the preferred one) gives CP-SAT a complete hint, which
it then improves until the time limit. The plan comes back with the solver's best bound;
on a month at a 30-chair center that bound is weak (the LP relaxation barely sees what the
nurse limits do to start times), so the gap mostly measures the bound. On small centers
the search proves optimality. When no plan keeping every hard rule exists (or none is found
in time) `optimise` returns first-fit (app.domain.schedule.plan_cycles and book_plan, as
bookings are made between optimisations) with the reason.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from ortools.sat.python import cp_model

from app.domain import schedule

#: Minutes between the midnights of two consecutive days on the model's time axis: two
#: days, so nothing one day holds (turnover after a late closing) reaches the next.
_DAY = 2 * 24 * 60
_ONE_DAY = dt.timedelta(days=1)

Status = Literal["optimal", "feasible", "infeasible", "unknown"]


# --- input -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedDay:
    """A day of a cycle already given or started: it keeps its date, chair and start."""

    day_number: int
    date: dt.date
    chair_id: int
    start: dt.time


@dataclass(frozen=True)
class CycleRequest:
    """One cycle to book: 1 to 5 consecutive open days (IVIG: 2 to 5).

    A cycle whose days are all fixed is simply kept; pass every booking at the center on the
    days the optimiser sees this way (or as a cycle to move), so the nurse counts are true.
    """

    id: int
    target_start: dt.date
    #: Chair minutes per day, start to end (setup included, turnover not), day 1 first.
    minutes: tuple[int, ...]
    preferred_start: dt.time
    #: The first day may move this many days from target_start ([scheduling] shift_window_days).
    window_days: int = 3
    #: Days already given or started, as a prefix: day 1 .. day k.
    fixed: tuple[FixedDay, ...] = ()
    #: The first day not before this (today; the interval from the previous kept cycle).
    earliest_start: dt.date | None = None
    #: The first day not after this (the interval before the next cycle, which stays).
    latest_start: dt.date | None = None
    #: The id of the patient's previous cycle in the same request, if any ...
    follows: int | None = None
    #: ... whose first day this cycle's first day follows by at least this many days.
    min_gap_days: int = 0

    @property
    def days(self) -> int:
        """Return the number of infusion days."""
        return len(self.minutes)


@dataclass(frozen=True)
class Weights:
    """Weights of the soft goals (config [optimiser.weights]); each per unit named."""

    #: Per cycle day off the cycle's own chair.
    same_chair: int = 60
    #: Per minute between a start and the preferred start.
    preferred_time: int = 1
    #: Per day between a cycle's first day and its target start.
    target_date: int = 120
    #: Per chair minute held past closing.
    past_closing: int = 10
    #: Per setup in each day's peak of setups at once.
    level_setups: int = 30
    #: Per day the plan moves from where the current plan has it (another date, time or
    #: chair): a patient told a time keeps it unless moving buys something. 0 = no weight.
    stay_put: int = 0


@dataclass(frozen=True)
class Settings:
    """The clinic's optimiser settings (config [scheduling] and [optimiser])."""

    #: Patients one nurse watches at once (DOMAIN.md: about 4).
    ratio: int = 4
    #: Minutes of a nurse's full attention to set a patient up (DOMAIN.md: about 15).
    setup_minutes: int = 15
    turnover_minutes: int = 15
    granularity_minutes: int = 15
    time_limit_seconds: float = 20.0
    #: CP-SAT search workers (the machine's cores).
    workers: int = 2
    seed: int = 0
    weights: Weights = field(default_factory=Weights)


@dataclass(frozen=True)
class Placement:
    """One infusion day of a plan; chair and times None for a day first-fit left unbooked.

    `start` and `end` are local wall-clock times; `utc_span` gives the instants."""

    cycle_id: int
    day_number: int
    date: dt.date
    chair_id: int | None
    start: dt.time | None
    end: dt.time | None

    @property
    def booked(self) -> bool:
        """Return whether the day has a chair and a time."""
        return self.chair_id is not None and self.start is not None and self.end is not None

    def utc_span(self, timezone: str) -> tuple[dt.datetime, dt.datetime] | None:
        """Return the UTC start and end (start + the day's minutes), or None if unbooked."""
        if self.start is None or self.end is None:
            return None
        zone = ZoneInfo(timezone)
        begin = dt.datetime.combine(self.date, self.start, tzinfo=zone).astimezone(dt.UTC)
        return begin, begin + dt.timedelta(minutes=_minute(self.end) - _minute(self.start))


@dataclass(frozen=True)
class Problem:
    """A horizon of cycles to book at one center."""

    calendar: schedule.CenterCalendar
    #: Infusion nurses on shift per weekday (0 = Monday), as app.models.center.OpeningHours.
    nurses_by_weekday: Mapping[int, int]
    cycles: tuple[CycleRequest, ...]
    settings: Settings = field(default_factory=Settings)
    #: The plan as it stands, for the moves a proposal makes (may be empty).
    current: tuple[Placement, ...] = ()
    #: Nurses on particular dates, overriding the weekday's count.
    nurses_on: Mapping[dt.date, int] = field(default_factory=dict)
    #: When the fixed days alone need more nurses on a date than are on shift (bookings made
    #: before the optimiser, that it may not move), plan that date as if the nurses they
    #: need were there, and say so in the solution's notes; otherwise there is no plan.
    fixed_set_the_limit: bool = False

    def nurses(self, day: dt.date) -> int:
        """Return the nurses on shift on an open day."""
        if day in self.nurses_on:
            return self.nurses_on[day]
        weekday = day.weekday()
        if weekday not in self.nurses_by_weekday:
            raise ValueError(f"no nurse count for {day:%A} ({day}), an open day")
        return self.nurses_by_weekday[weekday]


# --- output ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayPeak:
    """One open day's peak setups at once against the nurses on shift."""

    date: dt.date
    peak_setups: int
    nurses: int


@dataclass(frozen=True)
class Figures:
    """What a plan does to the days, for the side-by-side view (the same for any plan)."""

    days_booked: int
    days_unbooked: int
    #: Highest count of setups at once on any day, and each day's.
    peak_setups: int
    peaks: tuple[DayPeak, ...]
    #: Days whose peak setups exceed the nurses on shift.
    days_setups_over_nurses: int
    #: Highest count of patients in chairs at once, and the days above nurses x ratio.
    peak_patients: int
    days_patients_over_capacity: int
    #: Chair minutes held past closing (infusion and turnover) as the day would run with the
    #: nurses on shift: a patient waits for a nurse free to set up and a place in the
    #: nurses' watch. A plan inside the hard limits runs as booked.
    minutes_past_closing: int
    #: The same as booked, before any wait.
    booked_minutes_past_closing: int
    #: Minutes patients would wait past their booked start, in all and at most.
    minutes_waited: int
    max_minutes_waited: int
    #: Infusion minutes booked / chair minutes open (closures taken off), on the open days
    #: the problem spans.
    chair_utilisation: float
    #: Share of fully booked cycles whose days are all on one chair.
    cycles_on_one_chair: float
    minutes_from_preferred: int
    days_from_target: int


@dataclass(frozen=True)
class Moves:
    """What a plan changes against the current plan, by (cycle, day)."""

    cycles_moved: int
    days_moved: int
    #: Days booked that the current plan had unbooked.
    days_newly_booked: int
    days_shifted: int
    max_days_shifted: int
    minutes_shifted: int
    max_minutes_shifted: int
    chairs_changed: int


@dataclass(frozen=True)
class Solution:
    """A plan with its figures: the optimiser's, or first-fit's (its fallback)."""

    method: Literal["cp-sat", "first-fit"]
    #: The solver's status; None for first-fit run on its own (it knows nothing of nurses).
    status: Status | None
    plan: tuple[Placement, ...]
    #: The objective of the plan (the weighted soft goals); None when a day is unbooked.
    objective: int | None
    #: The solver's best bound on the objective (cp-sat only).
    bound: float | None
    solve_seconds: float
    figures: Figures
    moves: Moves
    #: Why the optimiser fell back to first-fit, or None.
    reason: str | None = None
    #: Dates planned with the nurses the fixed days need (Problem.fixed_set_the_limit).
    notes: tuple[str, ...] = ()

    @property
    def fallback(self) -> bool:
        """Return whether this is first-fit standing in for the optimiser."""
        return self.method == "first-fit" and self.reason is not None

    @property
    def gap(self) -> float | None:
        """Return the relative gap between the objective and the bound (0 when optimal)."""
        if self.objective is None or self.bound is None:
            return None
        return max(0.0, self.objective - self.bound) / max(1.0, abs(self.objective))


# --- helpers -----------------------------------------------------------------------------


def _minute(at: dt.time) -> int:
    return at.hour * 60 + at.minute + (1 if at.second or at.microsecond else 0)


def _time(minute: int) -> dt.time:
    return dt.time(minute // 60, minute % 60)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _setup_span(settings: Settings) -> int:
    return max(settings.setup_minutes, settings.granularity_minutes)


@dataclass(frozen=True)
class _Day:
    """An open day as the model sees it."""

    date: dt.date
    index: int
    opens: int
    closes: int
    nurses: int
    #: chair -> merged blocked spans (local minutes, half-open), clipped to the day.
    blocked: Mapping[int, tuple[tuple[int, int], ...]]

    def free(self, chair: int, begin: int, end: int) -> bool:
        return all(end <= a or b <= begin for a, b in self.blocked.get(chair, ()))


def _merge(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return tuple(merged)


def _local_minutes(instant: dt.datetime, day: dt.date, zone: ZoneInfo, *, up: bool) -> int:
    """Minutes after the day's midnight, rounded down (a span's start) or up (its end)."""
    local = instant.astimezone(zone)
    if local.date() < day:
        return 0
    if local.date() > day:
        return 24 * 60
    at = local.time()
    return _minute(at) if up else at.hour * 60 + at.minute


class _Days:
    """The open days the problem touches, built once."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.calendar = problem.calendar
        self.zone = ZoneInfo(problem.calendar.timezone)
        self._days: dict[dt.date, _Day | None] = {}
        self.base: dt.date | None = None

    def base_index(self, day: dt.date) -> int:
        assert self.base is not None
        return (day - self.base).days

    def get(self, day: dt.date) -> _Day | None:
        if day not in self._days:
            self._days[day] = self._build(day)
        return self._days[day]

    def _build(self, day: dt.date) -> _Day | None:
        hours = self.calendar.hours_on(day)
        if hours is None:
            return None
        if self.base is None:
            raise AssertionError("base date is set before days are built")
        begin, end = schedule.day_span(day, None, None, self.calendar.timezone)
        blocked: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for span in self.calendar.blocked:
            if span.starts_at >= end or span.ends_at <= begin:
                continue
            local = (
                _local_minutes(max(span.starts_at, begin), day, self.zone, up=False),
                _local_minutes(min(span.ends_at, end), day, self.zone, up=True),
            )
            chairs = self.calendar.chair_ids if span.chair_id is None else (span.chair_id,)
            for chair in chairs:
                blocked[chair].append(local)
        nurses = self.problem.nurses(day)
        _require(nurses >= 1, f"{day}: at least one nurse is needed on an open day")
        return _Day(
            date=day,
            index=(day - self.base).days,
            opens=_minute(hours.opens_at),
            closes=_minute(hours.closes_at),
            nurses=nurses,
            blocked={chair: _merge(spans) for chair, spans in blocked.items()},
        )

    def spanned(self) -> list[_Day]:
        """The open days from the first to the last day any plan may use."""
        known = [d for d in self._days if self._days[d] is not None]
        if not known:
            return []
        first, last = min(known), max(known)
        out = []
        for offset in range((last - first).days + 1):
            found = self.get(first + dt.timedelta(days=offset))
            if found is not None:
                out.append(found)
        return out


@dataclass(frozen=True)
class _Option:
    """A run of days a cycle may take, with each day's allowed starts (local minutes)."""

    dates: tuple[dt.date, ...]
    starts: tuple[tuple[int, ...], ...]
    shift: int


#: A run of dates and its shift in days from the target start.
_Run = tuple[tuple[dt.date, ...], int]


def _grid_starts(day: _Day, minutes: int, granularity: int) -> tuple[int, ...]:
    first = -(-day.opens // granularity) * granularity
    return tuple(range(first, day.closes - minutes + 1, granularity))


def _runs(request: CycleRequest, calendar: schedule.CenterCalendar) -> list[_Run] | str:
    """The runs of days a cycle may take with their shift from the target, or why none."""
    count = request.days
    fixed = sorted(request.fixed, key=lambda f: f.day_number)
    if fixed:
        dates = tuple(f.date for f in fixed)
        rest = (
            schedule.following_open_days(dates[-1], count - len(fixed), calendar)
            if count > len(fixed)
            else ()
        )
        if rest is None:
            return (
                f"cycle {request.id}: a closure cuts into the days after its days already "
                f"given ({dates[-1]})"
            )
        return [(dates + rest, (dates[0] - request.target_start).days)]
    runs: list[_Run] = []
    for offset in range(-request.window_days, request.window_days + 1):
        start = request.target_start + dt.timedelta(days=offset)
        if request.earliest_start is not None and start < request.earliest_start:
            continue
        if request.latest_start is not None and start > request.latest_start:
            continue
        following = schedule.following_open_days(start, count - 1, calendar)
        if following is not None:
            runs.append(((start, *following), offset))
    if runs:
        return runs
    return (
        f"cycle {request.id}: no run of {count} consecutive open days starts within "
        f"{request.window_days} days of {request.target_start}"
        + (f" on or after {request.earliest_start}" if request.earliest_start else "")
        + (f" on or before {request.latest_start}" if request.latest_start else "")
    )


def _options(request: CycleRequest, days: _Days, settings: Settings) -> list[_Option] | str:
    """The runs a cycle may take with each day's allowed starts, or why it has none."""
    runs = _runs(request, days.calendar)
    if isinstance(runs, str):
        return runs
    fixed = {f.day_number: f for f in request.fixed}
    options: list[_Option] = []
    too_long = ""
    for dates, shift in runs:
        starts: list[tuple[int, ...]] = []
        for number, (date, minutes) in enumerate(zip(dates, request.minutes, strict=True), 1):
            if number in fixed:
                starts.append((_minute(fixed[number].start),))
                continue
            day = days.get(date)
            assert day is not None  # a run's days are open
            grid = _grid_starts(day, minutes, settings.granularity_minutes)
            if not grid:
                too_long = f"{minutes} minutes do not fit the opening hours of {date}"
                break
            starts.append(grid)
        else:
            options.append(_Option(dates, tuple(starts), shift))
    return options or f"cycle {request.id}: {too_long}"


def _validate(problem: Problem) -> None:
    settings = problem.settings
    _require(bool(problem.calendar.chair_ids), "the center has no chairs")
    _require(settings.ratio >= 1, "ratio must be at least 1")
    _require(settings.setup_minutes >= 0, "setup_minutes must not be negative")
    _require(settings.turnover_minutes >= 0, "turnover_minutes must not be negative")
    _require(1 <= settings.granularity_minutes <= 240, "granularity_minutes must be 1 to 240")
    _require(settings.time_limit_seconds > 0, "time_limit_seconds must be positive")
    _require(settings.workers >= 1, "workers must be at least 1")
    weights = settings.weights
    _require(
        min(
            weights.same_chair,
            weights.preferred_time,
            weights.target_date,
            weights.past_closing,
            weights.level_setups,
            weights.stay_put,
        )
        >= 0,
        "weights must not be negative",
    )
    ids = [c.id for c in problem.cycles]
    _require(len(set(ids)) == len(ids), "cycle ids must be unique")
    for cycle in problem.cycles:
        _validate_cycle(cycle, set(problem.calendar.chair_ids), set(ids))


def _validate_cycle(cycle: CycleRequest, chairs: set[int], known: set[int]) -> None:
    _require(1 <= cycle.days <= 5, f"cycle {cycle.id}: 1 to 5 days, got {cycle.days}")
    _require(all(m > 0 for m in cycle.minutes), f"cycle {cycle.id}: minutes must be > 0")
    _require(cycle.window_days >= 0, f"cycle {cycle.id}: window_days must be >= 0")
    fixed = sorted(cycle.fixed, key=lambda f: f.day_number)
    numbers = [f.day_number for f in fixed]
    _require(
        numbers == list(range(1, len(numbers) + 1)) and len(numbers) <= cycle.days,
        f"cycle {cycle.id}: fixed days must be days 1 to k, got {numbers}",
    )
    for day in fixed:
        _require(day.chair_id in chairs, f"cycle {cycle.id}: unknown chair {day.chair_id}")
        end = _minute(day.start) + cycle.minutes[day.day_number - 1]
        _require(end < 24 * 60, f"cycle {cycle.id}: day {day.day_number} ends after midnight")
    _require(
        all(a.date < b.date for a, b in itertools.pairwise(fixed)),
        f"cycle {cycle.id}: fixed days must be in date order",
    )
    if cycle.follows is not None:
        _require(cycle.follows in known, f"cycle {cycle.id} follows unknown {cycle.follows}")
        _require(cycle.follows != cycle.id, f"cycle {cycle.id} cannot follow itself")


# --- the model ---------------------------------------------------------------------------

#: A literal, or True for what is certain (a cycle with one run, a fixed day's chair).
_Lit = cp_model.IntVar | bool


@dataclass
class _DayVars:
    """The variables of one infusion day."""

    cycle: CycleRequest
    number: int
    minutes: int
    #: (date, allowed local starts, literal of the run that puts the day there).
    options: list[tuple[dt.date, tuple[int, ...], _Lit]]
    #: Start on the model's axis (day index x _DAY + local minute): a variable or a constant.
    start: cp_model.IntVar | int
    #: Local start (minutes after midnight).
    minute: cp_model.IntVar | int
    #: chair -> presence literal.
    chairs: dict[int, _Lit]
    preference: cp_model.IntVar | None = None
    past_closing: cp_model.IntVar | None = None
    #: True when the day stays where the current plan has it (with a stay_put weight).
    stays: cp_model.IntVar | None = None


@dataclass
class _Context:
    problem: Problem
    days: _Days
    options: dict[int, list[_Option]]
    notes: tuple[str, ...] = ()

    def day(self, date: dt.date) -> _Day:
        found = self.days.get(date)
        assert found is not None
        return found

    def axis(self, date: dt.date) -> int:
        return self.days.base_index(date) * _DAY


def _prepare(problem: Problem) -> _Context | str:
    """Every cycle's runs, or why one has none."""
    _validate(problem)
    days = _calendar_days(problem)
    options: dict[int, list[_Option]] = {}
    for request in problem.cycles:
        found = _options(request, days, problem.settings)
        if isinstance(found, str):
            return found
        options[request.id] = found
    notes = _fixed_limits(problem, days) if problem.fixed_set_the_limit else ()
    clash = _fixed_clash(problem, days)
    if clash is not None:
        return clash
    return _Context(problem, days, options, notes)


def _fixed_items(problem: Problem) -> dict[dt.date, list[tuple[int, int, int]]]:
    """The fixed days' (chair, start, minutes) by date."""
    by_date: dict[dt.date, list[tuple[int, int, int]]] = defaultdict(list)
    for request in problem.cycles:
        for fixed in request.fixed:
            minutes = request.minutes[fixed.day_number - 1]
            by_date[fixed.date].append((fixed.chair_id, _minute(fixed.start), minutes))
    return by_date


def _fixed_limits(problem: Problem, days: _Days) -> tuple[str, ...]:
    """The dates whose fixed days alone need more nurses than are on shift, as notes. The
    model then counts their load only up to the nurses' limits: nothing else starts while
    they overload it, and the rest of the day keeps the nurses really there."""
    settings, notes = problem.settings, []
    span = _setup_span(settings)
    for date, items in sorted(_fixed_items(problem).items()):
        day = days.get(date)
        if day is None:
            continue
        setups = _peak((start, start + span) for _c, start, _m in items)
        patients = _peak((start, start + m) for _c, start, m in items)
        needed = max(setups, -(-patients // settings.ratio))
        if needed > day.nurses:
            notes.append(
                f"{date}: the bookings that stay already need {needed} nurses at once "
                f"({day.nurses} on shift); nothing more was put beside them"
            )
    return tuple(notes)


def _fixed_clash(problem: Problem, days: _Days) -> str | None:
    """Why the days already given or started break a hard limit by themselves, if they do
    (the nurse limits not, when the fixed days may set them: Problem.fixed_set_the_limit)."""
    settings = problem.settings
    nurses = not problem.fixed_set_the_limit
    for date, items in sorted(_fixed_items(problem).items()):
        day = days.get(date)
        clash = None if day is None else _day_clash(day, items, settings, nurses)
        if clash is not None:
            return f"the days already given or started on {date} {clash}"
    return None


def _day_clash(
    day: _Day, items: Sequence[tuple[int, int, int]], settings: Settings, nurses: bool = True
) -> str | None:
    """Why (chair, start, minutes) bookings on an open day break a hard limit, if they do."""
    turnover = settings.turnover_minutes
    for chair, start, minutes in items:
        if not day.free(chair, start, start + minutes + turnover):
            return f"hold chair {chair} while a closure blocks it"
    for (chair, start, minutes), (other, begin, length) in itertools.combinations(items, 2):
        if (
            chair == other
            and start < begin + length + turnover
            and begin < start + minutes + turnover
        ):
            return f"hold chair {chair} twice at once"
    if not nurses:
        return None
    span = _setup_span(settings)
    if _peak((start, start + span) for _c, start, _m in items) > day.nurses:
        return f"need more setups at once than the {day.nurses} nurse(s) on shift"
    if _peak((start, start + m) for _c, start, m in items) > day.nurses * settings.ratio:
        return f"hold more patients at once than nurses x {settings.ratio}"
    return None


def _layers(spans: Sequence[tuple[int, int]], cap: int) -> list[tuple[int, int]]:
    """Disjoint-per-layer spans whose count at each minute is min(the spans there, cap)."""
    edges = sorted({t for span in spans for t in span})
    out: list[tuple[int, int]] = []
    for layer in range(1, cap + 1):
        begin = None
        for a, b in itertools.pairwise(edges):
            covered = sum(s <= a and b <= e for s, e in spans) >= layer
            if covered and begin is None:
                begin = a
            elif not covered and begin is not None:
                out.append((begin, a))
                begin = None
        if begin is not None:
            out.append((begin, edges[-1]))
    return out


def _pick(literals: Sequence[_Lit], values: Sequence[int]) -> cp_model.LinearExpr | int:
    """The value of the chosen option (exactly one literal is true)."""
    if len(literals) == 1:
        return values[0]
    base = min(values)
    return base + sum(
        ((v - base) * lit for v, lit in zip(values, literals, strict=True) if v != base),
        start=0,
    )


class _Model:
    """The CP-SAT model of a problem, with its variables kept for hints and the plan."""

    def __init__(self, ctx: _Context, nurse_limits: bool = True) -> None:
        self.ctx = ctx
        self.settings = ctx.problem.settings
        self.weights = self.settings.weights
        self.model = cp_model.CpModel()
        self.runs: dict[int, list[_Lit]] = {}
        self.days: list[_DayVars] = []
        self.own: dict[int, dict[int, cp_model.IntVar]] = {}
        self.off: dict[int, cp_model.IntVar] = {}
        self.peaks: dict[dt.date, cp_model.IntVar] = {}
        self.terms: list[cp_model.LinearExpr | int] = []
        self.current = {(p.cycle_id, p.day_number): p for p in ctx.problem.current if p.booked}
        self._chairs: dict[int, list[cp_model.IntervalVar]] = defaultdict(list)
        self._setups: dict[dt.date, list[cp_model.IntervalVar]] = defaultdict(list)
        self._patients: dict[dt.date, list[cp_model.IntervalVar]] = defaultdict(list)
        self._fixed_load: dict[dt.date, list[tuple[int, int]]] = defaultdict(list)
        for request in ctx.problem.cycles:
            self._cycle(request)
        for request in ctx.problem.cycles:
            if request.follows is not None:
                self.model.add(
                    self._first_day(request.id)
                    >= self._first_day(request.follows) + request.min_gap_days
                )
        self._capacities(nurse_limits)
        self.model.minimize(sum(self.terms, start=0))

    # building

    def _interval(
        self, start: cp_model.IntVar | int, size: int, present: _Lit, name: str
    ) -> cp_model.IntervalVar:
        if present is True:
            return self.model.new_fixed_size_interval_var(start, size, name)
        assert not isinstance(present, bool)
        return self.model.new_optional_fixed_size_interval_var(start, size, present, name)

    def _first_day(self, cycle_id: int) -> cp_model.LinearExpr | int:
        options = self.ctx.options[cycle_id]
        index = self.ctx.days.base_index
        return _pick(self.runs[cycle_id], [index(o.dates[0]) for o in options])

    def _cycle(self, request: CycleRequest) -> None:
        options = self.ctx.options[request.id]
        runs: list[_Lit] = [True]
        if len(options) > 1:
            runs = [self.model.new_bool_var(f"c{request.id}_run{i}") for i in range(len(options))]
            self.model.add_exactly_one(runs)
        self.runs[request.id] = runs
        self.terms.append(self.weights.target_date * _pick(runs, [abs(o.shift) for o in options]))
        cycle_days = [self._day(request, k, options, runs) for k in range(request.days)]
        self.days.extend(cycle_days)
        if self.weights.same_chair and request.days > 1:
            self.terms.append(self.weights.same_chair * self._off_chair(request, cycle_days))

    def _day(
        self, request: CycleRequest, k: int, options: Sequence[_Option], runs: Sequence[_Lit]
    ) -> _DayVars:
        ctx, model = self.ctx, self.model
        minutes, turnover = request.minutes[k], self.settings.turnover_minutes
        name = f"c{request.id}_d{k + 1}"
        day_options = [(o.dates[k], o.starts[k], lit) for o, lit in zip(options, runs, strict=True)]
        fixed = next((f for f in request.fixed if f.day_number == k + 1), None)
        start: cp_model.IntVar | int
        minute: cp_model.IntVar | int
        chairs: dict[int, _Lit]
        if fixed is not None:
            minute = _minute(fixed.start)
            start = ctx.axis(fixed.date) + minute
            chairs = {fixed.chair_id: True}
        else:
            # The time of day, shared by the day's candidate dates; the date adds its offset
            # on the model's axis (where the chairs are), so changing the run keeps the time.
            grid = sorted({s for _d, g, _l in day_options for s in g})
            minute = model.new_int_var_from_domain(cp_model.Domain.from_values(grid), name)
            values = sorted(ctx.axis(d) + s for d, g, _lit in day_options for s in g)
            start = model.new_int_var_from_domain(cp_model.Domain.from_values(values), f"{name}_at")
            offset = _pick(runs, [ctx.axis(d) for d, _g, _l in day_options])
            model.add(start == offset + minute)
            for _date, own, lit in day_options:
                if lit is not True and (own[0] > grid[0] or own[-1] < grid[-1]):
                    assert not isinstance(lit, bool)
                    model.add(minute >= own[0]).only_enforce_if(lit)
                    model.add(minute <= own[-1]).only_enforce_if(lit)
            chairs = self._chair_literals(name, day_options, minutes)
        record = _DayVars(request, k + 1, minutes, day_options, start, minute, chairs)
        if fixed is not None and ctx.days.get(fixed.date) is None:
            # Given on a day now closed: nothing else can go there; only its time counts.
            preferred = _minute(request.preferred_start)
            self.terms.append(self.weights.preferred_time * abs(_minute(fixed.start) - preferred))
            return record
        for chair, present in chairs.items():
            self._chairs[chair].append(
                self._interval(start, minutes + turnover, present, f"{name}_on{chair}")
            )
        setup = _setup_span(self.settings)
        if fixed is not None and ctx.problem.fixed_set_the_limit:
            # Counted up to the nurses' limits only, with the day's other fixed days.
            self._fixed_load[fixed.date].append((_minute(fixed.start), minutes))
        else:
            for date, _grid, lit in day_options:
                self._setups[date].append(self._interval(minute, setup, lit, f"{name}_{date}_s"))
                self._patients[date].append(
                    self._interval(minute, minutes, lit, f"{name}_{date}_p")
                )
        self._soft_day(record)
        self._stay_put(record)
        return record

    def _stay_put(self, record: _DayVars) -> None:
        """The stay_put weight, unless the day keeps its current date, time and chair."""
        current = self.current.get((record.cycle.id, record.number))
        if not self.weights.stay_put or current is None or isinstance(record.start, int):
            return
        assert current.start is not None and current.chair_id is not None
        minute = _minute(current.start)
        chair = record.chairs.get(current.chair_id)
        place = next((g for d, g, _l in record.options if d == current.date), ())
        if chair is None or minute not in place:
            self.terms.append(self.weights.stay_put)  # it cannot stay
            return
        stays = self.model.new_bool_var(f"c{record.cycle.id}_d{record.number}_stays")
        self.model.add(record.start == self.ctx.axis(current.date) + minute).only_enforce_if(stays)
        if chair is not True:
            self.model.add_implication(stays, chair)
        record.stays = stays
        self.terms.append(self.weights.stay_put * (1 - stays))

    def _soft_day(self, record: _DayVars) -> None:
        """Distance to the preferred start and minutes held past closing."""
        literals = [lit for _d, _g, lit in record.options]
        closing = _pick(literals, [self.ctx.day(d).closes for d, _g, _l in record.options])
        preferred = _minute(record.cycle.preferred_start)
        held = record.minutes + self.settings.turnover_minutes
        name = f"c{record.cycle.id}_d{record.number}"
        minute = record.minute
        if isinstance(minute, int):
            assert isinstance(closing, int)
            self.terms.append(
                self.weights.preferred_time * abs(minute - preferred)
                + self.weights.past_closing * max(0, minute + held - closing)
            )
            return
        if self.weights.preferred_time:
            distance = self.model.new_int_var(0, _DAY, f"{name}_pref")
            self.model.add_abs_equality(distance, minute - preferred)
            record.preference = distance
            self.terms.append(self.weights.preferred_time * distance)
        if self.weights.past_closing:
            over = self.model.new_int_var(0, _DAY, f"{name}_over")
            self.model.add(over >= minute + held - closing)
            record.past_closing = over
            self.terms.append(self.weights.past_closing * over)

    def _chair_literals(
        self,
        name: str,
        day_options: Sequence[tuple[dt.date, tuple[int, ...], _Lit]],
        minutes: int,
    ) -> dict[int, _Lit]:
        """A literal per chair that could hold the day (some start free of its closures)."""
        held = minutes + self.settings.turnover_minutes
        usable = [
            chair
            for chair in self.ctx.problem.calendar.chair_ids
            if any(
                self.ctx.day(date).free(chair, s, s + held)
                for date, grid, _lit in day_options
                for s in grid
            )
        ]
        literals = [self.model.new_bool_var(f"{name}_ch{chair}") for chair in usable]
        self.model.add_exactly_one(literals)  # none usable: infeasible
        return dict(zip(usable, literals, strict=True))

    def _off_chair(self, request: CycleRequest, days: Sequence[_DayVars]) -> cp_model.IntVar:
        """Days of the cycle off its own chair (the one most of its days use)."""
        count = len(days)
        chairs = sorted({chair for day in days for chair in day.chairs})
        own = {chair: self.model.new_bool_var(f"c{request.id}_own{chair}") for chair in chairs}
        self.model.add_exactly_one(list(own.values()))
        off = self.model.new_int_var(0, count - 1, f"c{request.id}_off")
        for chair in chairs:
            on = sum((day.chairs[chair] for day in days if chair in day.chairs), start=0)
            self.model.add(off >= count - on - count * (1 - own[chair]))
        self.own[request.id], self.off[request.id] = own, off
        return off

    def _capacities(self, nurse_limits: bool) -> None:
        """Closures, and each day's capacities: setups at once, patients at once."""
        closed: dict[int, list[cp_model.IntervalVar]] = defaultdict(list)
        for date in sorted(self._setups):
            day = self.ctx.day(date)
            for chair, spans in day.blocked.items():
                for begin, end in spans:
                    interval = self.model.new_fixed_size_interval_var(
                        self.ctx.axis(date) + begin, end - begin, f"closed{chair}_{date}_{begin}"
                    )
                    closed[chair].append(interval)
            if not nurse_limits:
                continue
            peak: cp_model.IntVar | int = day.nurses
            if self.weights.level_setups:
                peak = self.model.new_int_var(0, day.nurses, f"peak_{date}")
                self.peaks[date] = peak
                self.terms.append(self.weights.level_setups * peak)
            setups, patients = self._setups[date], self._patients[date]
            load = self._fixed_load.get(date, [])
            span = _setup_span(self.settings)
            setups = setups + self._capped(
                [(a, a + span) for a, _m in load], day.nurses, f"fs_{date}"
            )
            patients = patients + self._capped(
                [(a, a + m) for a, m in load], day.nurses * self.settings.ratio, f"fp_{date}"
            )
            self.model.add_cumulative(setups, [1] * len(setups), peak)
            self.model.add_cumulative(
                patients, [1] * len(patients), day.nurses * self.settings.ratio
            )
        for chair, intervals in self._chairs.items():
            self.model.add_no_overlap(intervals + closed.get(chair, []))

    def _capped(
        self, spans: Sequence[tuple[int, int]], cap: int, name: str
    ) -> list[cp_model.IntervalVar]:
        """Fixed unit intervals whose count at each minute is min(the spans there, cap)."""
        return [
            self.model.new_fixed_size_interval_var(begin, end - begin, f"{name}_{n}")
            for n, (begin, end) in enumerate(_layers(spans, cap))
        ]

    # hints and answers

    def hint(self, plan: Sequence[Placement]) -> None:
        """Hint a plan (complete or not) to the solver."""
        placed = {(p.cycle_id, p.day_number): p for p in plan if p.booked}
        for cycle_id, runs in self.runs.items():
            first = placed.get((cycle_id, 1))
            if first is None or len(runs) == 1:
                continue
            for option, lit in zip(self.ctx.options[cycle_id], runs, strict=True):
                assert not isinstance(lit, bool)
                self.model.add_hint(lit, option.dates[0] == first.date)
        for day in self.days:
            placement = placed.get((day.cycle.id, day.number))
            if placement is not None and not isinstance(day.start, int):
                self._hint_day(day, placement)
        self._hint_cycles(placed)

    def _hint_day(self, day: _DayVars, placement: Placement) -> None:
        assert placement.start is not None and not isinstance(day.start, int)
        minute = _minute(placement.start)
        self.model.add_hint(day.start, self.ctx.axis(placement.date) + minute)
        if not isinstance(day.minute, int):
            self.model.add_hint(day.minute, minute)
        for chair, lit in day.chairs.items():
            if not isinstance(lit, bool):
                self.model.add_hint(lit, chair == placement.chair_id)
        if day.preference is not None:
            preferred = _minute(day.cycle.preferred_start)
            self.model.add_hint(day.preference, abs(minute - preferred))
        if day.past_closing is not None:
            held = minute + day.minutes + self.settings.turnover_minutes
            closes = self.ctx.day(placement.date).closes
            self.model.add_hint(day.past_closing, max(0, held - closes))
        if day.stays is not None:
            current = self.current[(day.cycle.id, day.number)]
            self.model.add_hint(day.stays, _same_place(current, placement))

    def _hint_cycles(self, placed: Mapping[tuple[int, int], Placement]) -> None:
        by_cycle: dict[int, list[int | None]] = defaultdict(list)
        by_date: dict[dt.date, list[int]] = defaultdict(list)
        for (cycle_id, _number), placement in placed.items():
            by_cycle[cycle_id].append(placement.chair_id)
            assert placement.start is not None
            by_date[placement.date].append(_minute(placement.start))
        for cycle_id, own in self.own.items():
            chairs = by_cycle.get(cycle_id)
            if not chairs or len(chairs) < len(self.ctx.options[cycle_id][0].dates):
                continue
            best = max(own, key=lambda chair: (chairs.count(chair), -chair))
            for chair, lit in own.items():
                self.model.add_hint(lit, chair == best)
            self.model.add_hint(self.off[cycle_id], len(chairs) - chairs.count(best))
        span = _setup_span(self.settings)
        for date, peak in self.peaks.items():
            self.model.add_hint(peak, _peak((s, s + span) for s in by_date.get(date, [])))

    def plan(self, solver: cp_model.CpSolver) -> tuple[Placement, ...]:
        """The plan in a solution."""
        base = self.ctx.days.base
        assert base is not None
        plan = []
        for day in self.days:
            start = day.start if isinstance(day.start, int) else solver.value(day.start)
            index, minute = divmod(start, _DAY)
            chair = next(
                c for c, lit in day.chairs.items() if lit is True or solver.boolean_value(lit)
            )
            plan.append(
                Placement(
                    day.cycle.id,
                    day.number,
                    base + dt.timedelta(days=index),
                    chair,
                    _time(minute),
                    _time(minute + day.minutes),
                )
            )
        return tuple(plan)


# --- a nurse-aware greedy, the solver's first hint ---------------------------------------


class _Board:
    """One day's loads minute by minute, for the greedy."""

    def __init__(self, day: _Day, settings: Settings) -> None:
        self.day = day
        self.setups = [0] * _DAY
        self.patients = [0] * _DAY
        self.capacity = day.nurses * settings.ratio
        self.busy: dict[int, list[tuple[int, int]]] = {
            chair: list(spans) for chair, spans in day.blocked.items()
        }

    def nurses_free(self, start: int, setup: int, minutes: int) -> bool:
        return (
            max(self.setups[start : start + setup], default=0) < self.day.nurses
            and max(self.patients[start : start + minutes], default=0) < self.capacity
        )

    def chair_free(self, chair: int, start: int, end: int) -> bool:
        return all(end <= a or b <= start for a, b in self.busy.get(chair, ()))

    def take(self, chair: int, start: int, setup: int, minutes: int, held: int, sign: int) -> None:
        for m in range(start, start + setup):
            self.setups[m] += sign
        for m in range(start, start + minutes):
            self.patients[m] += sign
        spans = self.busy.setdefault(chair, [])
        if sign > 0:
            spans.append((start, start + held))
        else:
            spans.remove((start, start + held))


class _Greedy:
    """Books cycle after cycle on the cheapest run, each day at the start nearest the
    preferred one where a nurse and a chair (the cycle's own, if it can) are free."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.settings = ctx.problem.settings
        self.boards: dict[dt.date, _Board] = {}
        self.placed: list[Placement] = []

    def board(self, date: dt.date) -> _Board:
        if date not in self.boards:
            self.boards[date] = _Board(self.ctx.day(date), self.settings)
        return self.boards[date]

    def _take(self, placement: Placement, minutes: int, sign: int) -> None:
        assert placement.start is not None and placement.chair_id is not None
        board = self.board(placement.date)
        setup = _setup_span(self.settings)
        held = minutes + self.settings.turnover_minutes
        board.take(placement.chair_id, _minute(placement.start), setup, minutes, held, sign)

    def _starts(
        self, date: dt.date, grid: Sequence[int], minutes: int, preferred: int
    ) -> list[int]:
        """The starts on a date where a nurse is free, nearest the preferred start first."""
        board = self.board(date)
        setup = _setup_span(self.settings)
        return [
            start
            for start in sorted(grid, key=lambda s: (abs(s - preferred), s))
            if board.nurses_free(start, setup, minutes)
        ]

    def _day_cost(self, date: dt.date, start: int, minutes: int, preferred: int) -> int:
        weights = self.settings.weights
        held_until = start + minutes + self.settings.turnover_minutes
        return weights.preferred_time * abs(start - preferred) + weights.past_closing * max(
            0, held_until - self.ctx.day(date).closes
        )

    def _on_chairs(
        self, request: CycleRequest, option: _Option, starts: Sequence[Sequence[int]]
    ) -> tuple[int, list[tuple[int, int]]] | None:
        """The cheapest (start, chair) per day: one chair for all days when any can, else
        each day's own."""
        preferred = _minute(request.preferred_start)
        held = [m + self.settings.turnover_minutes for m in request.minutes]
        best: tuple[int, list[tuple[int, int]]] | None = None
        for chair in self.ctx.problem.calendar.chair_ids:
            days: list[tuple[int, int]] = []
            cost = 0
            for k, date in enumerate(option.dates):
                board = self.board(date)
                found = next(
                    (s for s in starts[k] if board.chair_free(chair, s, s + held[k])), None
                )
                if found is None:
                    break
                days.append((found, chair))
                cost += self._day_cost(date, found, request.minutes[k], preferred)
            else:
                if best is None or cost < best[0]:
                    best = (cost, days)
        if best is not None:
            return best
        cost, days = self.settings.weights.same_chair * (request.days - 1), []
        for k, date in enumerate(option.dates):
            board = self.board(date)
            slot = next(
                (
                    (s, c)
                    for s in starts[k]
                    for c in self.ctx.problem.calendar.chair_ids
                    if board.chair_free(c, s, s + held[k])
                ),
                None,
            )
            if slot is None:
                return None
            days.append(slot)
            cost += self._day_cost(date, slot[0], request.minutes[k], preferred)
        return cost, days

    def _try(self, request: CycleRequest, option: _Option) -> tuple[int, list[Placement]] | None:
        """The cost and days of the cycle on a run, or None if it does not fit there."""
        preferred = _minute(request.preferred_start)
        starts = [
            self._starts(date, grid, request.minutes[k], preferred)
            for k, (date, grid) in enumerate(zip(option.dates, option.starts, strict=True))
        ]
        found = self._on_chairs(request, option, starts)
        if found is None:
            return None
        cost, slots = found
        days = [
            Placement(request.id, k + 1, date, chair, _time(start), _time(start + minutes))
            for k, (date, (start, chair), minutes) in enumerate(
                zip(option.dates, slots, request.minutes, strict=True)
            )
        ]
        return cost + self.settings.weights.target_date * abs(option.shift), days

    def book(self, request: CycleRequest) -> None:
        best: tuple[int, list[Placement]] | None = None
        for option in self.ctx.options[request.id]:
            tried = self._try(request, option)
            if tried is None:
                continue
            if best is None or tried[0] < best[0]:
                best = tried
        if best is not None:
            for placement in best[1]:
                self._take(placement, request.minutes[placement.day_number - 1], 1)
            self.placed.extend(best[1])

    def fixed(self, request: CycleRequest) -> None:
        for placement in _fixed_placements(request):
            if self.ctx.days.get(placement.date) is not None:
                self._take(placement, request.minutes[placement.day_number - 1], 1)
            self.placed.append(placement)


def _greedy(ctx: _Context) -> tuple[Placement, ...]:
    """A plan inside the hard limits for as many cycles as the greedy can place."""
    greedy = _Greedy(ctx)
    movable = []
    for request in ctx.problem.cycles:
        if request.fixed:
            greedy.fixed(request)
        else:
            movable.append(request)
    # Long days and short windows first: they are the hardest to place late.
    for request in sorted(
        movable, key=lambda c: (-max(c.minutes), len(ctx.options[c.id]), c.target_start)
    ):
        greedy.book(request)
    return tuple(greedy.placed)


# --- solving -----------------------------------------------------------------------------


_STATUS: Mapping[cp_model.CpSolverStatus, Status] = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.UNKNOWN: "unknown",
}


def _solver(settings: Settings, seconds: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = settings.workers
    solver.parameters.random_seed = settings.seed
    # Probing in presolve takes seconds on a month at a big center for little; symmetry
    # breaking in presolve would throw away the greedy's hint (it fixes chair literals).
    solver.parameters.cp_model_probing_level = 0
    solver.parameters.symmetry_level = 0
    return solver


def _diagnose(ctx: _Context) -> str:
    """Why no plan exists: try again without the nurses' limits."""
    seconds = min(5.0, ctx.problem.settings.time_limit_seconds)
    relaxed = _Model(ctx, nurse_limits=False)
    status = _solver(ctx.problem.settings, seconds).solve(relaxed.model)
    ratio = ctx.problem.settings.ratio
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return (
            "the nurses on shift cannot set up and watch every patient: no plan keeps the "
            f"setups at once within the nurses and the patients at once within nurses x "
            f"{ratio} (a plan exists without those limits)"
        )
    if status == cp_model.INFEASIBLE:
        return (
            "no plan puts every cycle in its window, inside the opening hours, on free "
            "chairs (and a patient's cycles far enough apart), even before counting nurses"
        )
    return "no plan keeps every hard rule (the cause was not found within the time limit)"


def solve(problem: Problem) -> Solution:
    """Run CP-SAT on the problem; the plan is empty when its status is infeasible/unknown."""
    started = time.monotonic()
    ctx = _prepare(problem)
    if isinstance(ctx, str):
        return _empty(problem, "infeasible", ctx, time.monotonic() - started)
    built = _Model(ctx)
    built.hint(_greedy(ctx))
    remaining = max(0.1, problem.settings.time_limit_seconds - (time.monotonic() - started))
    solver = _solver(problem.settings, remaining)
    status = _STATUS.get(solver.solve(built.model))
    if status is None:
        raise RuntimeError(f"CP-SAT rejected the model: {solver.status_name()}")
    if status == "infeasible":
        return _empty(problem, status, _diagnose(ctx), time.monotonic() - started)
    if status == "unknown":
        limit = problem.settings.time_limit_seconds
        reason = f"no plan keeping every hard rule was found within {limit:g} s"
        return _empty(problem, status, reason, time.monotonic() - started)
    plan = built.plan(solver)
    return Solution(
        method="cp-sat",
        status=status,
        plan=plan,
        objective=round(solver.objective_value),
        bound=solver.best_objective_bound,
        solve_seconds=time.monotonic() - started,
        figures=figures(problem, plan),
        moves=moves(problem.current, plan),
        notes=ctx.notes,
    )


def _empty(problem: Problem, status: Status, reason: str, seconds: float) -> Solution:
    return Solution(
        method="cp-sat",
        status=status,
        plan=(),
        objective=None,
        bound=None,
        solve_seconds=seconds,
        figures=figures(problem, ()),
        moves=moves(problem.current, ()),
        reason=reason,
    )


def optimise(problem: Problem) -> Solution:
    """The optimiser's plan, or first-fit's with the reason when it has none."""
    found = solve(problem)
    if found.status in ("optimal", "feasible"):
        return found
    baseline = first_fit(problem)
    return Solution(
        method="first-fit",
        status=found.status,
        plan=baseline.plan,
        objective=baseline.objective,
        bound=None,
        solve_seconds=found.solve_seconds + baseline.solve_seconds,
        figures=baseline.figures,
        moves=baseline.moves,
        reason=found.reason,
    )


# --- first-fit, on the same input --------------------------------------------------------


def first_fit(problem: Problem) -> Solution:
    """Book the cycles as bookings are made today (schedule.plan_cycles and book_plan), one
    after the other in the order given: preferred time, else the nearest free slot, else
    another run in the window. It knows nothing of nurses; a day that fits nowhere stays
    unbooked. Fixed days keep their places."""
    started = time.monotonic()
    _validate(problem)
    calendar, settings = problem.calendar, problem.settings
    zone = ZoneInfo(calendar.timezone)
    turnover = dt.timedelta(minutes=settings.turnover_minutes)
    busy: dict[int, list[schedule.Interval]] = defaultdict(list)
    placed: dict[tuple[int, int], Placement] = {}
    first_dates: dict[int, dt.date] = {}

    def hold(placement: Placement) -> None:
        placed[(placement.cycle_id, placement.day_number)] = placement
        span = placement.utc_span(calendar.timezone)
        if span is not None and placement.chair_id is not None:
            busy[placement.chair_id].append(schedule.Interval(span[0], span[1] + turnover))

    for request in problem.cycles:
        for placement in _fixed_placements(request):
            hold(placement)
    for request in problem.cycles:
        done = len(request.fixed)
        bookings = (
            _first_fit_cycle(problem, request, busy, first_dates) if done < request.days else []
        )
        for booking in bookings:
            hold(_from_booking(request.id, done + booking.day_number, booking, zone))
        if done:
            first_dates[request.id] = min(f.date for f in request.fixed)
        elif bookings:
            first_dates[request.id] = bookings[0].date
    plan = tuple(placed[key] for key in sorted(placed))
    return Solution(
        method="first-fit",
        status=None,
        plan=plan,
        objective=score(problem, plan),
        bound=None,
        solve_seconds=time.monotonic() - started,
        figures=figures(problem, plan),
        moves=moves(problem.current, plan),
    )


def _fixed_placements(request: CycleRequest) -> list[Placement]:
    return [
        Placement(
            request.id,
            day.day_number,
            day.date,
            day.chair_id,
            day.start,
            _time(_minute(day.start) + request.minutes[day.day_number - 1]),
        )
        for day in request.fixed
    ]


def _from_booking(
    cycle_id: int, number: int, booking: schedule.Booking, zone: ZoneInfo
) -> Placement:
    start = end = None
    if booking.starts_at is not None and booking.ends_at is not None:
        start = booking.starts_at.astimezone(zone).time()
        end = booking.ends_at.astimezone(zone).time()
    return Placement(cycle_id, number, booking.date, booking.chair_id, start, end)


def _first_fit_cycle(
    problem: Problem,
    request: CycleRequest,
    busy: Mapping[int, Sequence[schedule.Interval]],
    first_dates: Mapping[int, dt.date],
) -> list[schedule.Booking]:
    calendar, settings = problem.calendar, problem.settings
    turnover = dt.timedelta(minutes=settings.turnover_minutes)
    done = len(request.fixed)
    durations = [dt.timedelta(minutes=m) for m in request.minutes[done:]]
    count = request.days - done
    if done:
        last = max(f.date for f in request.fixed)
        rest = schedule.following_open_days(last, count, calendar)
        if rest is None:
            return [
                schedule.Booking(1 + n, 1 + n, last + (n + 1) * _ONE_DAY, None, None, None, 0)
                for n in range(count)
            ]
        cycle = schedule.PlannedCycle(1, rest[0], rest, 0)
        return schedule.book_plan(
            [cycle],
            count,
            calendar,
            request.preferred_start,
            durations,
            turnover,
            busy,
            settings.granularity_minutes,
            0,
        ).bookings
    previous = first_dates.get(request.follows) if request.follows is not None else None
    gap = request.min_gap_days if previous is not None else 0
    cycles = schedule.plan_cycles(
        request.target_start,
        1,
        count,
        request.target_start,
        calendar,
        request.window_days,
        not_before=request.earliest_start,
        min_gap_days=gap,
        previous_start=previous,
        strict_gap=True,
    )
    if not cycles:
        cycles = [schedule.PlannedCycle(1, request.target_start, (), 0)]
    return schedule.book_plan(
        cycles,
        count,
        calendar,
        request.preferred_start,
        durations,
        turnover,
        busy,
        settings.granularity_minutes,
        request.window_days,
        not_before=request.earliest_start,
        min_gap_days=gap,
        previous_start=previous,
        strict_gap=True,
    ).bookings


# --- scoring and figures -----------------------------------------------------------------


@dataclass(frozen=True)
class _Booked:
    placement: Placement
    request: CycleRequest
    start: int
    minutes: int


def _booked(problem: Problem, plan: Sequence[Placement]) -> list[_Booked]:
    requests = {c.id: c for c in problem.cycles}
    out = []
    for placement in plan:
        if placement.booked and placement.start is not None:
            request = requests[placement.cycle_id]
            out.append(
                _Booked(
                    placement,
                    request,
                    _minute(placement.start),
                    request.minutes[placement.day_number - 1],
                )
            )
    return out


def _peak(spans: Iterable[tuple[int, int]]) -> int:
    events = sorted(itertools.chain.from_iterable(((a, 1), (b, -1)) for a, b in spans))
    level = peak = 0
    for _at, change in events:  # an end sorts before a start at the same minute
        level += change
        peak = max(peak, level)
    return peak


def _calendar_days(problem: Problem) -> _Days:
    days = _Days(problem)
    dates = [c.target_start - dt.timedelta(days=c.window_days) for c in problem.cycles]
    dates += [f.date for c in problem.cycles for f in c.fixed]
    days.base = min(dates, default=dt.date(2000, 1, 1))
    return days


def score(problem: Problem, plan: Sequence[Placement]) -> int | None:
    """The optimiser's objective for any plan with every day booked (None otherwise)."""
    weights, settings = problem.settings.weights, problem.settings
    booked = _booked(problem, plan)
    if len(booked) != sum(c.days for c in problem.cycles):
        return None
    days = _calendar_days(problem)
    total = 0
    by_cycle: dict[int, list[_Booked]] = defaultdict(list)
    by_date: dict[dt.date, list[_Booked]] = defaultdict(list)
    for item in booked:
        by_cycle[item.request.id].append(item)
        by_date[item.placement.date].append(item)
        total += weights.preferred_time * abs(item.start - _minute(item.request.preferred_start))
        day = days.get(item.placement.date)
        if day is not None:
            held_until = item.start + item.minutes + settings.turnover_minutes
            total += weights.past_closing * max(0, held_until - day.closes)
    for request in problem.cycles:
        items = by_cycle[request.id]
        first = min(i.placement.date for i in items)
        total += weights.target_date * abs((first - request.target_start).days)
        if request.days > 1:
            chairs = [i.placement.chair_id for i in items]
            most = max(chairs.count(chair) for chair in set(chairs))
            total += weights.same_chair * (request.days - most)
    span = _setup_span(settings)
    for items in by_date.values():
        total += weights.level_setups * _peak((i.start, i.start + span) for i in items)
    if weights.stay_put:
        current = {(p.cycle_id, p.day_number): p for p in problem.current if p.booked}
        for item in booked:
            was = current.get((item.placement.cycle_id, item.placement.day_number))
            if was is not None and not item.request.fixed and not _same_place(was, item.placement):
                total += weights.stay_put
    return total


def _same_place(one: Placement, other: Placement) -> bool:
    return (one.date, one.chair_id, one.start) == (other.date, other.chair_id, other.start)


def _run_day(items: Sequence[_Booked], nurses: int, settings: Settings) -> list[int]:
    """The starts a day's patients would get with the nurses on shift, in booking order: a
    patient waits for a nurse free to set up, a place in the nurses' watch and her chair."""
    capacity = nurses * settings.ratio
    setup, turnover = settings.setup_minutes, settings.turnover_minutes
    length = 4 * 24 * 60
    setting_up = [0] * length
    watched = [0] * length
    chair_free: dict[int | None, int] = {}
    order = sorted(range(len(items)), key=lambda i: (items[i].start, items[i].placement.chair_id))
    starts = [0] * len(items)
    for index in order:
        item = items[index]
        at = max(item.start, chair_free.get(item.placement.chair_id, 0))
        while True:
            busy = next((m for m in range(at, at + setup) if setting_up[m] >= nurses), None)
            if busy is None:
                busy = next(
                    (m for m in range(at, at + item.minutes) if watched[m] >= capacity), None
                )
            if busy is None:
                break
            at = busy + 1
        for m in range(at, at + setup):
            setting_up[m] += 1
        for m in range(at, at + item.minutes):
            watched[m] += 1
        chair_free[item.placement.chair_id] = at + item.minutes + turnover
        starts[index] = at
    return starts


@dataclass(frozen=True)
class _DayFigures:
    peak: DayPeak
    patients: int
    over_capacity: bool
    past: int
    booked_past: int
    waited: int
    max_wait: int


def _day_figures(day: _Day, items: Sequence[_Booked], settings: Settings) -> _DayFigures:
    span = _setup_span(settings)
    setups = _peak((i.start, i.start + span) for i in items)
    patients = _peak((i.start, i.start + i.minutes) for i in items)
    past = booked_past = waited = max_wait = 0
    for item, start in zip(items, _run_day(items, day.nurses, settings), strict=True):
        held = item.minutes + settings.turnover_minutes
        booked_past += max(0, item.start + held - day.closes)
        past += max(0, start + held - day.closes)
        waited += start - item.start
        max_wait = max(max_wait, start - item.start)
    return _DayFigures(
        DayPeak(day.date, setups, day.nurses),
        patients,
        patients > day.nurses * settings.ratio,
        past,
        booked_past,
        waited,
        max_wait,
    )


def _open_chair_minutes(problem: Problem, days: _Days) -> int:
    total = 0
    for day in days.spanned():
        for chair in problem.calendar.chair_ids:
            total += day.closes - day.opens
            for begin, end in day.blocked.get(chair, ()):
                total -= max(0, min(end, day.closes) - max(begin, day.opens))
    return total


def figures(problem: Problem, plan: Sequence[Placement]) -> Figures:
    """The figures of any plan on the problem's days (the optimiser's, first-fit's, current)."""
    settings = problem.settings
    days = _calendar_days(problem)
    for request in problem.cycles:
        _options(request, days, settings)  # touches every day a plan may use
    booked = _booked(problem, plan)
    by_date: dict[dt.date, list[_Booked]] = defaultdict(list)
    by_cycle: dict[int, list[_Booked]] = defaultdict(list)
    for item in booked:
        by_date[item.placement.date].append(item)
        by_cycle[item.request.id].append(item)
    per_day = []
    for date, items in sorted(by_date.items()):
        found = days.get(date)
        if found is not None:
            per_day.append(_day_figures(found, items, settings))
    open_minutes = _open_chair_minutes(problem, days)
    complete = [items for items in by_cycle.values() if len(items) == items[0].request.days]
    one_chair = sum(len({i.placement.chair_id for i in items}) == 1 for items in complete)
    from_target = sum(
        abs((min(i.placement.date for i in items) - items[0].request.target_start).days)
        for items in complete
    )
    return Figures(
        days_booked=len(booked),
        days_unbooked=sum(c.days for c in problem.cycles) - len(booked),
        peak_setups=max((d.peak.peak_setups for d in per_day), default=0),
        peaks=tuple(d.peak for d in per_day),
        days_setups_over_nurses=sum(d.peak.peak_setups > d.peak.nurses for d in per_day),
        peak_patients=max((d.patients for d in per_day), default=0),
        days_patients_over_capacity=sum(d.over_capacity for d in per_day),
        minutes_past_closing=sum(d.past for d in per_day),
        booked_minutes_past_closing=sum(d.booked_past for d in per_day),
        minutes_waited=sum(d.waited for d in per_day),
        max_minutes_waited=max((d.max_wait for d in per_day), default=0),
        chair_utilisation=sum(i.minutes for i in booked) / open_minutes if open_minutes else 0.0,
        cycles_on_one_chair=one_chair / len(complete) if complete else 1.0,
        minutes_from_preferred=sum(
            abs(i.start - _minute(i.request.preferred_start)) for i in booked
        ),
        days_from_target=from_target,
    )


def moves(current: Sequence[Placement], plan: Sequence[Placement]) -> Moves:
    """What a plan moves against the current one (days absent from either are not moves)."""
    before = {(p.cycle_id, p.day_number): p for p in current}
    moved_cycles: set[int] = set()
    days_moved = newly = shifted = max_shift = minutes = max_minutes = chairs = 0
    for placement in plan:
        old = before.get((placement.cycle_id, placement.day_number))
        if old is None or not placement.booked:
            continue
        if not old.booked:
            newly += 1
            moved_cycles.add(placement.cycle_id)
            continue
        assert old.start is not None and placement.start is not None
        days = abs((placement.date - old.date).days)
        mins = abs(_minute(placement.start) - _minute(old.start))
        if days or mins:
            days_moved += 1
            moved_cycles.add(placement.cycle_id)
        shifted += days
        max_shift = max(max_shift, days)
        minutes += mins
        max_minutes = max(max_minutes, mins)
        chairs += placement.chair_id != old.chair_id
    return Moves(
        cycles_moved=len(moved_cycles),
        days_moved=days_moved,
        days_newly_booked=newly,
        days_shifted=shifted,
        max_days_shifted=max_shift,
        minutes_shifted=minutes,
        max_minutes_shifted=max_minutes,
        chairs_changed=chairs,
    )
