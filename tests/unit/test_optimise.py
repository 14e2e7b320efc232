"""The chair and nurse optimiser (app.domain.optimise) on small instances, no database.

Every plan is checked here by code independent of the model: the hard rules minute by
minute, and the therapy checker (app.domain.integrity). On instances small enough to
enumerate, the solver's objective is the exhaustive optimum computed here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import integrity, schedule
from app.domain.optimise import (
    CycleRequest,
    FixedDay,
    Placement,
    Problem,
    Settings,
    Weights,
    figures,
    first_fit,
    moves,
    optimise,
    score,
    solve,
)

NY = "America/New_York"
MONDAY = dt.date(2027, 3, 1)
NOW = dt.datetime(2027, 2, 20, 12, tzinfo=dt.UTC)  # before every day below
ONE_DAY = dt.timedelta(days=1)
PROPERTY = settings(
    derandomize=True,
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def minute(at: dt.time) -> int:
    return at.hour * 60 + at.minute


def clock(m: int) -> dt.time:
    return dt.time(m // 60, m % 60)


def calendar(
    chairs: int = 2,
    closes: int = 12,
    weekdays: Sequence[int] = range(5),
    closures: frozenset[dt.date] = frozenset(),
    blocked: tuple[schedule.Blocked, ...] = (),
) -> schedule.CenterCalendar:
    return schedule.CenterCalendar(
        NY,
        tuple(schedule.OpeningHours(d, dt.time(8), dt.time(closes)) for d in weekdays),
        closures,
        tuple(range(1, chairs + 1)),
        blocked,
    )


def problem(
    cal: schedule.CenterCalendar,
    cycles: Sequence[CycleRequest],
    nurses: int = 1,
    **options: object,
) -> Problem:
    base = Settings(time_limit_seconds=10.0, workers=1)
    return Problem(
        calendar=cal,
        nurses_by_weekday={d: nurses for d in range(7)},
        cycles=tuple(cycles),
        settings=dataclasses.replace(base, **options),  # type: ignore[arg-type]
    )


# --- an independent checker --------------------------------------------------------------


def runs(request: CycleRequest, cal: schedule.CenterCalendar) -> Iterator[tuple[dt.date, ...]]:
    """Every run a cycle may take: consecutive open days, no exceptional closure inside."""
    open_weekdays = {h.weekday for h in cal.hours}
    for offset in range(-request.window_days, request.window_days + 1):
        start = request.target_start + offset * ONE_DAY
        if request.earliest_start is not None and start < request.earliest_start:
            continue
        if request.latest_start is not None and start > request.latest_start:
            continue
        if cal.hours_on(start) is None:
            continue
        dates, day = [start], start
        while len(dates) < request.days:
            day += ONE_DAY
            if day.weekday() not in open_weekdays:
                continue
            if day in cal.closures:
                break
            dates.append(day)
        if len(dates) == request.days:
            yield tuple(dates)


def local_span(p: Placement) -> tuple[int, int]:
    assert p.start is not None and p.end is not None
    return minute(p.start), minute(p.end)


def hard_problems(prob: Problem, plan: Sequence[Placement]) -> list[str]:
    """Every hard rule the plan breaks, counted at every start (where a peak begins)."""
    by_cycle: dict[int, list[Placement]] = defaultdict(list)
    for p in plan:
        by_cycle[p.cycle_id].append(p)
    found: list[str] = []
    for request in prob.cycles:
        found += cycle_problems(prob, request, by_cycle)
    booked = [p for p in plan if p.booked]
    return found + chair_problems(prob, booked) + nurse_problems(prob, booked)


def cycle_problems(
    prob: Problem, request: CycleRequest, by_cycle: dict[int, list[Placement]]
) -> list[str]:
    """A cycle's days: all booked, in a run of its window, in hours, on the grid, fixed kept."""
    days = sorted(by_cycle.get(request.id, []), key=lambda p: p.day_number)
    if [p.day_number for p in days] != list(range(1, request.days + 1)):
        return [f"cycle {request.id} has days {[p.day_number for p in days]}"]
    found = []
    fixed = {f.day_number: f for f in request.fixed}
    dates = tuple(p.date for p in days)
    if not fixed and dates not in set(runs(request, prob.calendar)):
        found.append(f"cycle {request.id} on {dates}: not a run in its window")
    if request.follows is not None:
        before = min(p.date for p in by_cycle[request.follows])
        if (dates[0] - before).days < request.min_gap_days:
            found.append(f"cycle {request.id} too soon after {request.follows}")
    for p in days:
        found += [
            f"cycle {request.id} day {p.day_number}: {what}"
            for what in day_problems(prob, request, p, fixed.get(p.day_number))
        ]
    return found


def day_problems(
    prob: Problem, request: CycleRequest, p: Placement, fixed: FixedDay | None
) -> list[str]:
    if not p.booked:
        return ["unbooked"]
    found = []
    begin, end = local_span(p)
    if end - begin != request.minutes[p.day_number - 1]:
        found.append(f"lasts {end - begin} minutes")
    if fixed is not None:
        if (p.date, p.chair_id, p.start) != (fixed.date, fixed.chair_id, fixed.start):
            found.append("a fixed day moved")
        return found
    hours = prob.calendar.hours_on(p.date)
    if hours is None or begin < minute(hours.opens_at) or end > minute(hours.closes_at):
        found.append("outside the opening hours")
    if begin % prob.settings.granularity_minutes:
        found.append("off the slot grid")
    return found


def chair_problems(prob: Problem, booked: Sequence[Placement]) -> list[str]:
    """No chair holds two patients at once (turnover included), nor one while closed."""
    found = []
    turnover = prob.settings.turnover_minutes
    for a, b in itertools.combinations(booked, 2):
        if a.chair_id == b.chair_id and a.date == b.date:
            (a0, a1), (b0, b1) = local_span(a), local_span(b)
            if a0 < b1 + turnover and b0 < a1 + turnover:
                found.append(f"chair {a.chair_id} double-booked on {a.date}")
    for p in booked:
        span = p.utc_span(NY)
        assert span is not None
        held_until = span[1] + dt.timedelta(minutes=turnover)
        for block in prob.calendar.blocked:
            if block.chair_id in (None, p.chair_id) and (
                block.starts_at < held_until and span[0] < block.ends_at
            ):
                found.append(f"chair {p.chair_id} booked while closed on {p.date}")
    return found


def nurse_problems(prob: Problem, booked: Sequence[Placement]) -> list[str]:
    """Setups at once <= nurses, patients at once <= nurses x ratio."""
    s = prob.settings
    setup = max(s.setup_minutes, s.granularity_minutes)
    by_date: dict[dt.date, list[tuple[int, int]]] = defaultdict(list)
    for p in booked:
        by_date[p.date].append(local_span(p))
    found = []
    for date, spans in by_date.items():
        nurses = prob.nurses(date)
        for m in sorted({begin for begin, _end in spans}):  # a peak starts with someone
            setting_up = sum(begin <= m < begin + setup for begin, _end in spans)
            in_chairs = sum(begin <= m < end for begin, end in spans)
            if setting_up > nurses or in_chairs > nurses * s.ratio:
                found.append(f"{setting_up} setups, {in_chairs} patients on {date} at {clock(m)}")
                break
    return found


def therapy_violations(prob: Problem, plan: Sequence[Placement]) -> list[integrity.Violation]:
    """The therapy checker on each cycle as one patient's course."""
    out: list[integrity.Violation] = []
    window = max((c.window_days for c in prob.cycles), default=0)
    limits = integrity.Limits(window, 3, 50.0, 0.0)
    for request in prob.cycles:
        version = integrity.VersionFact(
            id=request.id,
            version=1,
            effective_on=request.target_start - dt.timedelta(days=30),
            grams_per_day=10.0,
            grams_per_cycle=10.0 * request.days,
            days_per_cycle=request.days,
            interval_weeks=4,
        )
        facts = []
        for p in plan:
            if p.cycle_id != request.id:
                continue
            span = p.utc_span(NY)
            facts.append(
                integrity.InfusionFact(
                    id=request.id * 10 + p.day_number,
                    regimen_id=request.id,
                    center_id=1,
                    cycle_number=1,
                    day_number=p.day_number,
                    planned_date=p.date,
                    cycle_planned_on=request.target_start,
                    status="scheduled" if span else "unbooked",
                    planned_grams=10.0,
                    starts_at=span[0] if span else None,
                    ends_at=span[1] if span else None,
                    chair_id=p.chair_id,
                )
            )
        out += integrity.check([version], facts, {1: prob.calendar}, NOW, limits)
    return out


# --- brute force -------------------------------------------------------------------------


def exhaustive_optimum(prob: Problem) -> int | None:
    """The least objective over every plan keeping the hard rules (None: no such plan)."""
    cal, s = prob.calendar, prob.settings
    per_cycle = []
    for request in prob.cycles:
        choices = []
        for dates in runs(request, cal):
            per_day = []
            for date, length in zip(dates, request.minutes, strict=True):
                hours = cal.hours_on(date)
                assert hours is not None
                opens, closes = minute(hours.opens_at), minute(hours.closes_at)
                first = -(-opens // s.granularity_minutes) * s.granularity_minutes
                per_day.append(
                    [
                        Placement(request.id, 0, date, chair, clock(b), clock(b + length))
                        for b in range(first, closes - length + 1, s.granularity_minutes)
                        for chair in cal.chair_ids
                    ]
                )
            for days in itertools.product(*per_day):
                choices.append(
                    [dataclasses.replace(p, day_number=n) for n, p in enumerate(days, 1)]
                )
        per_cycle.append(choices)
    best: int | None = None
    for combination in itertools.product(*per_cycle):
        plan = [p for days in combination for p in days]
        cost = objective(prob, plan)
        if (best is None or cost < best) and not hard_problems(prob, plan):
            best = cost
    return best


def objective(prob: Problem, plan: Sequence[Placement]) -> int:
    """The weighted soft goals as the module's docstring defines them, written afresh."""
    cal, s, w = prob.calendar, prob.settings, prob.settings.weights
    requests = {c.id: c for c in prob.cycles}
    total = 0
    for p in plan:
        request = requests[p.cycle_id]
        begin, end = local_span(p)
        hours = cal.hours_on(p.date)
        assert hours is not None
        total += w.preferred_time * abs(begin - minute(request.preferred_start))
        total += w.past_closing * max(0, end + s.turnover_minutes - minute(hours.closes_at))
    for request in prob.cycles:
        days = [p for p in plan if p.cycle_id == request.id]
        total += w.target_date * abs((min(p.date for p in days) - request.target_start).days)
        chairs = [p.chair_id for p in days]
        total += w.same_chair * (len(days) - max(chairs.count(c) for c in chairs))
    setup = max(s.setup_minutes, s.granularity_minutes)
    for date in {p.date for p in plan}:
        starts = [local_span(p)[0] for p in plan if p.date == date]
        total += w.level_setups * max(sum(b <= m < b + setup for b in starts) for m in starts)
    before = {(p.cycle_id, p.day_number): p for p in prob.current if p.booked}
    for p in plan:
        was = before.get((p.cycle_id, p.day_number))
        if was is not None and not requests[p.cycle_id].fixed:
            total += w.stay_put * (
                (was.date, was.chair_id, was.start) != (p.date, p.chair_id, p.start)
            )
    return total


# --- strategies --------------------------------------------------------------------------


@st.composite
def small_problems(draw: st.DrawFn) -> Problem:
    """2-3 chairs, 1-2 weeks, 2-5 cycles of 1-3 days, with closures and a fixed day."""
    weeks = draw(st.integers(1, 2))
    chairs = draw(st.integers(2, 3))
    closes = draw(st.sampled_from([12, 14, 16]))
    days = [MONDAY + n * ONE_DAY for n in range(7 * weeks) if (MONDAY + n * ONE_DAY).weekday() < 5]
    closures = frozenset(draw(st.lists(st.sampled_from(days), max_size=1)))
    blocked: tuple[schedule.Blocked, ...] = ()
    if draw(st.booleans()):
        day = draw(st.sampled_from(days))
        begin, end = schedule.day_span(day, dt.time(8), dt.time(10), NY)
        blocked = (schedule.Blocked(1, begin, end, "repair"),)
    cal = calendar(chairs, closes, closures=closures, blocked=blocked)
    granularity = draw(st.sampled_from([30, 60]))
    count = draw(st.integers(2, 5))
    cycles = []
    for n in range(1, count + 1):
        length = draw(st.integers(1, 3))
        cycles.append(
            CycleRequest(
                id=n,
                target_start=draw(st.sampled_from(days)),
                minutes=tuple(draw(st.sampled_from([45, 60, 90, 120, 180])) for _ in range(length)),
                preferred_start=draw(st.sampled_from([dt.time(8), dt.time(9), dt.time(10, 30)])),
                window_days=draw(st.integers(0, 2)),
            )
        )
    first = cycles[0]
    if draw(st.booleans()) and cal.hours_on(first.target_start) is not None:
        given = FixedDay(1, first.target_start, chairs, dt.time(9))
        cycles[0] = dataclasses.replace(first, fixed=(given,))
    if count >= 3 and draw(st.booleans()):
        cycles[2] = dataclasses.replace(cycles[2], follows=2, min_gap_days=1)
    return problem(
        cal,
        cycles,
        nurses=draw(st.integers(1, 2)),
        ratio=draw(st.integers(1, 3)),
        setup_minutes=draw(st.sampled_from([15, 30])),
        turnover_minutes=draw(st.sampled_from([0, 15])),
        granularity_minutes=granularity,
        time_limit_seconds=0.5,
    )


# --- properties --------------------------------------------------------------------------


@PROPERTY
@given(small_problems())
def test_every_plan_keeps_the_hard_rules_and_passes_the_therapy_checker(prob: Problem) -> None:
    result = optimise(prob)
    if result.method == "first-fit":
        assert result.status in ("infeasible", "unknown")
        assert result.reason
        assert result.fallback
        return
    assert result.status in ("optimal", "feasible")
    assert hard_problems(prob, result.plan) == []
    assert therapy_violations(prob, result.plan) == []
    assert result.objective == score(prob, result.plan) == objective(prob, result.plan)
    assert result.bound is not None and result.bound <= result.objective + 1e-6
    assert result.figures.days_unbooked == 0
    assert result.figures.days_setups_over_nurses == 0
    assert result.figures.minutes_waited == 0  # inside the nurse limits the day runs as booked
    for request in prob.cycles:
        for fixed in request.fixed:
            kept = next(
                p
                for p in result.plan
                if (p.cycle_id, p.day_number) == (request.id, fixed.day_number)
            )
            assert (kept.date, kept.chair_id, kept.start) == (
                fixed.date,
                fixed.chair_id,
                fixed.start,
            )


@st.composite
def tiny_problems(draw: st.DrawFn) -> Problem:
    """2 cycles x 1-2 days, 2 chairs, Monday to Wednesday, 60-minute slots: enumerable."""
    cal = calendar(
        chairs=2,
        closes=draw(st.sampled_from([10, 11, 12])),
        weekdays=(0, 1, 2),
        blocked=(
            (schedule.Blocked(2, *schedule.day_span(MONDAY, dt.time(8), dt.time(9), NY), "x"),)
            if draw(st.booleans())
            else ()
        ),
    )
    cycles = [
        CycleRequest(
            id=n,
            target_start=draw(st.sampled_from([MONDAY, MONDAY + ONE_DAY])),
            minutes=tuple(
                draw(st.sampled_from([60, 90, 120])) for _ in range(draw(st.integers(1, 2)))
            ),
            preferred_start=draw(st.sampled_from([dt.time(8), dt.time(9, 30), dt.time(10)])),
            window_days=draw(st.integers(0, 1)),
        )
        for n in (1, 2)
    ]
    weights = Weights(
        same_chair=draw(st.integers(0, 90)),
        preferred_time=draw(st.integers(0, 2)),
        target_date=draw(st.integers(0, 200)),
        past_closing=draw(st.integers(0, 5)),
        level_setups=draw(st.integers(0, 60)),
        stay_put=draw(st.sampled_from([0, 0, 25, 80])),
    )
    prob = problem(
        cal,
        cycles,
        nurses=1,
        ratio=draw(st.integers(1, 2)),
        setup_minutes=15,
        turnover_minutes=draw(st.sampled_from([0, 15])),
        granularity_minutes=60,
        weights=weights,
    )
    # The plan as booked, which a stay_put weight holds the proposal to: first-fit's.
    return dataclasses.replace(prob, current=first_fit(prob).plan)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(tiny_problems())
def test_the_solver_finds_the_exhaustive_optimum(prob: Problem) -> None:
    best = exhaustive_optimum(prob)
    result = solve(prob)
    if best is None:
        assert result.status == "infeasible"
        assert result.reason
        return
    assert result.status == "optimal"
    assert result.objective == best
    assert objective(prob, result.plan) == best
    assert hard_problems(prob, result.plan) == []


def test_the_exhaustive_optimum_of_a_hand_made_instance() -> None:
    # Two 2-day cycles want 08:00 on Monday; one nurse sets up one patient per hourly slot.
    cycles = [CycleRequest(n, MONDAY, (120, 120), dt.time(8), window_days=1) for n in (1, 2)]
    prob = problem(calendar(weekdays=(0, 1, 2)), cycles, ratio=2, granularity_minutes=60)
    result = solve(prob)
    assert result.status == "optimal"
    assert result.objective == exhaustive_optimum(prob)
    starts = sorted(minute(p.start) for p in result.plan if p.start and p.date == MONDAY)
    assert starts == [8 * 60, 9 * 60]  # one waits an hour rather than a day


# --- fallbacks and reasons ---------------------------------------------------------------


def test_too_few_nurses_falls_back_to_first_fit_with_the_reason() -> None:
    # Two patients on two chairs for the whole day, but one nurse watches one patient.
    cycles = [CycleRequest(n, MONDAY, (240,), dt.time(8), window_days=0) for n in (1, 2)]
    prob = problem(calendar(closes=12), cycles, ratio=1)
    result = optimise(prob)
    assert result.method == "first-fit" and result.fallback
    assert result.status == "infeasible"
    assert result.reason is not None and "nurses" in result.reason
    assert result.figures.days_unbooked == 0  # first-fit books them, nurses or not
    assert result.figures.days_setups_over_nurses == 1


def test_too_few_chairs_gives_the_reason() -> None:
    cycles = [CycleRequest(n, MONDAY, (240,), dt.time(8), window_days=0) for n in (1, 2)]
    result = optimise(problem(calendar(chairs=1, closes=12), cycles, nurses=2))
    assert result.fallback and result.status == "infeasible"
    assert result.reason is not None and "free chairs" in result.reason
    assert result.figures.days_unbooked == 1


def test_a_day_longer_than_the_opening_hours_is_named() -> None:
    cycles = [CycleRequest(1, MONDAY, (300,), dt.time(8), window_days=0)]
    result = optimise(problem(calendar(closes=12), cycles))
    assert result.fallback
    assert result.reason == "cycle 1: 300 minutes do not fit the opening hours of 2027-03-01"


def test_a_cycle_without_a_run_in_its_window_is_named() -> None:
    cycles = [CycleRequest(1, MONDAY, (60, 60), dt.time(8), window_days=0)]
    result = optimise(problem(calendar(closures=frozenset({MONDAY + ONE_DAY})), cycles))
    assert result.reason is not None
    assert result.reason.startswith("cycle 1: no run of 2 consecutive open days")


def test_fixed_days_that_already_break_a_limit_are_named() -> None:
    given_day = FixedDay(1, MONDAY, 1, dt.time(9))
    cycles = [
        CycleRequest(1, MONDAY, (60,), dt.time(9), fixed=(given_day,)),
        CycleRequest(2, MONDAY, (60,), dt.time(9), fixed=(dataclasses.replace(given_day),)),
    ]
    result = solve(problem(calendar(), cycles))
    assert result.status == "infeasible"
    assert (
        result.reason
        == "the days already given or started on 2027-03-01 hold chair 1 twice at once"
    )


def test_fixed_days_over_the_nurses_may_set_that_days_limit_and_are_noted() -> None:
    # Two bookings that stay start together at 09:00 with one nurse on shift: with
    # fixed_set_the_limit the day is planned for the two nurses they need, the third patient
    # does not start beside them, and the note names the day.
    kept = [
        CycleRequest(n, MONDAY, (60,), dt.time(9), fixed=(FixedDay(1, MONDAY, n, dt.time(9)),))
        for n in (1, 2)
    ]
    moving = CycleRequest(3, MONDAY, (60,), dt.time(9), window_days=0)
    prob = dataclasses.replace(
        problem(calendar(chairs=3), [*kept, moving]), fixed_set_the_limit=True
    )
    result = solve(prob)
    assert result.status == "optimal"
    (note,) = result.notes
    assert note.startswith("2027-03-01: the bookings that stay already need 2 nurses")
    (third,) = [p for p in result.plan if p.cycle_id == 3]
    assert third.start != dt.time(9)
    # The figures still count the day against the one nurse really there.
    assert result.figures.days_setups_over_nurses == 1


def test_fixed_days_over_the_nurses_leave_the_rest_of_the_day_at_the_real_limit() -> None:
    # Review defect: the whole day's limit used to rise to what the 09:00 pair needs, so two
    # patients moved to 10:30 started their setups together with one nurse on shift.
    kept = [
        CycleRequest(n, MONDAY, (60,), dt.time(9), fixed=(FixedDay(1, MONDAY, n, dt.time(9)),))
        for n in (1, 2)
    ]
    moving = [CycleRequest(n, MONDAY, (60,), dt.time(10, 30), window_days=0) for n in (3, 4)]
    prob = dataclasses.replace(
        problem(calendar(chairs=4), [*kept, *moving], nurses=1), fixed_set_the_limit=True
    )
    result = solve(prob)
    assert result.status == "optimal"
    starts = sorted(minute(p.start) for p in result.plan if p.cycle_id in (3, 4) and p.start)
    assert starts[1] - starts[0] >= 15  # one nurse sets up one patient at a time
    assert all(start >= 9 * 60 + 15 for start in starts)  # none beside the 09:00 pair
    # Only the pair's day is over the nurse, and only by the pair.
    assert result.figures.peak_setups == 2
    assert len(result.notes) == 1


# --- fixed days --------------------------------------------------------------------------


def test_a_begun_cycle_keeps_its_given_day_and_books_the_rest_on_the_next_open_day() -> None:
    friday = MONDAY + 4 * ONE_DAY
    given_day = FixedDay(1, friday, 2, dt.time(10, 15))  # off the grid, as it happened
    cycles = [CycleRequest(1, friday, (90, 90), dt.time(8), fixed=(given_day,))]
    result = solve(problem(calendar(), cycles))
    assert result.status == "optimal"
    first, second = sorted(result.plan, key=lambda p: p.day_number)
    assert (first.date, first.chair_id, first.start) == (friday, 2, dt.time(10, 15))
    assert second.date == MONDAY + 7 * ONE_DAY  # over the weekend
    assert second.chair_id == 2 and second.start == dt.time(8)


def test_a_day_given_on_a_date_closed_since_is_kept() -> None:
    given_day = FixedDay(1, MONDAY, 1, dt.time(8))
    cycles = [
        CycleRequest(1, MONDAY, (60,), dt.time(8), fixed=(given_day,)),
        CycleRequest(2, MONDAY + ONE_DAY, (60,), dt.time(8)),
    ]
    result = solve(problem(calendar(closures=frozenset({MONDAY})), cycles))
    assert result.status == "optimal"
    assert Placement(1, 1, MONDAY, 1, dt.time(8), dt.time(9)) in result.plan


def test_a_patients_second_cycle_keeps_its_distance() -> None:
    cycles = [
        CycleRequest(1, MONDAY + ONE_DAY, (60,), dt.time(8), window_days=2),
        CycleRequest(
            2, MONDAY + ONE_DAY, (60,), dt.time(8), window_days=2, follows=1, min_gap_days=2
        ),
    ]
    prob = problem(calendar(), cycles)
    result = solve(prob)
    assert result.status == "optimal"
    assert hard_problems(prob, result.plan) == []
    dates = {p.cycle_id: p.date for p in result.plan}
    assert (dates[2] - dates[1]).days >= 2


def test_a_cycle_before_one_that_stays_starts_no_later_than_its_interval_allows() -> None:
    # Two patients want Monday 08:00 on one chair; one of them may not start after Monday
    # (the next cycle, which stays, is one interval away): the other one moves.
    cycles = [
        CycleRequest(1, MONDAY, (180,), dt.time(8), window_days=2),
        CycleRequest(2, MONDAY, (180,), dt.time(8), window_days=2, latest_start=MONDAY),
    ]
    prob = problem(calendar(chairs=1), cycles)
    result = solve(prob)
    assert result.status == "optimal"
    assert hard_problems(prob, result.plan) == []
    dates = {p.cycle_id: p.date for p in result.plan}
    assert dates[2] == MONDAY
    assert dates[1] != MONDAY


# --- figures, first-fit and moves --------------------------------------------------------


def test_figures_run_the_day_with_the_nurses_on_shift() -> None:
    # Three patients booked at 08:00 on three chairs with one nurse: setups queue.
    cycles = [CycleRequest(n, MONDAY, (120,), dt.time(8), window_days=0) for n in (1, 2, 3)]
    prob = problem(calendar(chairs=3, closes=10), cycles, ratio=4)
    plan = [Placement(n, 1, MONDAY, n, dt.time(8), dt.time(10)) for n in (1, 2, 3)]
    f = figures(prob, plan)
    assert f.peak_setups == 3 and f.days_setups_over_nurses == 1
    assert f.booked_minutes_past_closing == 3 * 15  # turnover after closing
    assert f.minutes_waited == 15 + 30 and f.max_minutes_waited == 30
    assert f.minutes_past_closing == 3 * 15 + 15 + 30
    assert f.cycles_on_one_chair == 1.0
    assert f.chair_utilisation == pytest.approx(360 / (3 * 120))


def test_first_fit_is_todays_booking_and_the_optimiser_spreads_the_setups() -> None:
    cycles = [CycleRequest(n, MONDAY, (120,), dt.time(8), window_days=0) for n in (1, 2, 3)]
    prob = problem(calendar(chairs=3, closes=12), cycles, ratio=4)
    baseline = first_fit(prob)
    assert {(p.chair_id, p.start) for p in baseline.plan} == {
        (1, dt.time(8)),
        (2, dt.time(8)),
        (3, dt.time(8)),
    }
    assert baseline.status is None and not baseline.fallback
    solved = optimise(dataclasses.replace(prob, current=baseline.plan))
    assert solved.method == "cp-sat" and solved.status == "optimal"
    assert solved.figures.peak_setups == 1
    assert solved.figures.minutes_waited == 0
    assert sorted(minute(p.start) for p in solved.plan if p.start) == [480, 495, 510]
    assert solved.moves.cycles_moved == 2
    assert solved.moves.max_minutes_shifted == 30


def test_moves_count_days_and_shifts() -> None:
    before = [
        Placement(1, 1, MONDAY, 1, dt.time(8), dt.time(9)),
        Placement(1, 2, MONDAY + ONE_DAY, 1, dt.time(8), dt.time(9)),
        Placement(2, 1, MONDAY, 2, None, None),
    ]
    after = [
        Placement(1, 1, MONDAY + ONE_DAY, 2, dt.time(9), dt.time(10)),
        Placement(1, 2, MONDAY + 2 * ONE_DAY, 1, dt.time(8), dt.time(9)),
        Placement(2, 1, MONDAY, 2, dt.time(8), dt.time(9)),
    ]
    m = moves(before, after)
    assert (m.cycles_moved, m.days_moved, m.days_newly_booked) == (2, 2, 1)
    assert (m.days_shifted, m.max_days_shifted) == (2, 1)
    assert (m.minutes_shifted, m.max_minutes_shifted, m.chairs_changed) == (60, 60, 1)


def test_a_placement_gives_its_utc_span() -> None:
    span = Placement(1, 1, MONDAY, 1, dt.time(8), dt.time(10, 30)).utc_span(NY)
    assert span == (
        dt.datetime(2027, 3, 1, 13, tzinfo=dt.UTC),
        dt.datetime(2027, 3, 1, 15, 30, tzinfo=dt.UTC),
    )
    assert Placement(1, 1, MONDAY, None, None, None).utc_span(NY) is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 5 days"):
        solve(problem(calendar(), [CycleRequest(1, MONDAY, (), dt.time(8))]))
    with pytest.raises(ValueError, match="fixed days must be days 1 to k"):
        fixed = (FixedDay(2, MONDAY, 1, dt.time(8)),)
        solve(problem(calendar(), [CycleRequest(1, MONDAY, (60, 60), dt.time(8), fixed=fixed)]))
    with pytest.raises(ValueError, match="no nurse count"):
        prob = dataclasses.replace(
            problem(calendar(), [CycleRequest(1, MONDAY, (60,), dt.time(8))]),
            nurses_by_weekday={},
        )
        solve(prob)
