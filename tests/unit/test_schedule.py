import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.schedule import (
    Booking,
    CenterCalendar,
    Interval,
    OpeningHours,
    PlannedCycle,
    book_plan,
    find_slot,
    free_slots,
    local_to_utc,
    plan_cycles,
)

NY = "America/New_York"
UTC = dt.UTC
WEEKDAYS = tuple(OpeningHours(day, dt.time(8), dt.time(18)) for day in range(5))
MONDAY = dt.date(2026, 6, 1)  # EDT, so local = UTC - 4 h
MINUTES = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
TURNOVER = dt.timedelta(minutes=15)


def book_cycles(*args: Any, **kwargs: Any) -> list[Booking]:
    """The bookings of a plan (what reconciliation writes)."""
    return book_plan(*args, **kwargs).bookings


def center(closures=(), chairs=(1,), hours=WEEKDAYS, timezone=NY) -> CenterCalendar:
    return CenterCalendar(timezone, hours, frozenset(closures), tuple(chairs))


def at(day: dt.date, hour: int, minute: int = 0, timezone: str = NY) -> dt.datetime:
    instant = local_to_utc(day, dt.time(hour, minute), timezone)
    assert instant is not None
    return instant


def local(instant: dt.datetime, timezone: str = NY) -> dt.datetime:
    return instant.astimezone(ZoneInfo(timezone))


def days_after(day: dt.date, count: int) -> dt.date:
    return day + dt.timedelta(days=count)


# --- plan_cycles -------------------------------------------------------------------------


def test_a_year_of_two_day_cycles_falls_on_consecutive_weekdays():
    start = dt.date(2026, 1, 5)  # a Monday
    cycles = plan_cycles(start, 4, 2, dt.date(2026, 12, 31), center(), shift_window_days=3)
    assert len(cycles) == 13
    assert [c.cycle_number for c in cycles] == list(range(1, 14))
    for number, cycle in enumerate(cycles):
        assert cycle.planned_start == start + dt.timedelta(weeks=4 * number)
        assert cycle.placed and cycle.shift_days == 0
        assert all(day.weekday() < 5 for day in cycle.days)
        assert cycle.days[1] - cycle.days[0] == dt.timedelta(days=1)


def test_a_three_day_cycle_from_thursday_skips_the_weekend():
    thursday = dt.date(2026, 6, 4)
    [cycle] = plan_cycles(thursday, 4, 3, thursday, center(), shift_window_days=3)
    assert cycle.days == (thursday, dt.date(2026, 6, 5), dt.date(2026, 6, 8))
    assert [day.strftime("%a") for day in cycle.days] == ["Thu", "Fri", "Mon"]
    assert cycle.shift_days == 0


def test_a_closure_on_the_planned_start_moves_the_cycle_one_day_later_first():
    [cycle] = plan_cycles(MONDAY, 4, 2, MONDAY, center([MONDAY]), shift_window_days=3)
    assert cycle.days == (days_after(MONDAY, 1), days_after(MONDAY, 2))
    assert cycle.shift_days == 1


def test_when_the_later_day_is_closed_too_the_cycle_moves_earlier():
    tuesday = days_after(MONDAY, 1)
    closures = [tuesday, days_after(MONDAY, 2)]
    [cycle] = plan_cycles(tuesday, 4, 1, tuesday, center(closures), shift_window_days=3)
    assert cycle.days == (MONDAY,)
    assert cycle.shift_days == -1


def test_a_closure_in_the_middle_moves_the_whole_cycle():
    tuesday = days_after(MONDAY, 1)
    [cycle] = plan_cycles(MONDAY, 4, 3, MONDAY, center([tuesday]), shift_window_days=3)
    # +1 starts on the closure, -1 is a Sunday, +2 is the first run without the closure.
    assert cycle.days == (days_after(MONDAY, 2), days_after(MONDAY, 3), days_after(MONDAY, 4))
    assert cycle.shift_days == 2


def test_a_cycle_is_unplaced_when_closures_block_the_whole_window():
    closures = [days_after(MONDAY, offset) for offset in range(-3, 5)]
    cycles = plan_cycles(MONDAY, 4, 2, days_after(MONDAY, 28), center(closures), 3)
    assert cycles[0] == PlannedCycle(1, MONDAY, (), 0)
    assert not cycles[0].placed
    assert cycles[1].placed and cycles[1].shift_days == 0


def test_a_shifted_cycle_pushes_the_next_one_instead_of_overlapping_it():
    cycles = plan_cycles(MONDAY, 1, 5, days_after(MONDAY, 7), center([MONDAY]), 3)
    assert cycles[0].days[0] == days_after(MONDAY, 1)
    assert cycles[0].days[-1] == days_after(MONDAY, 7)
    assert cycles[1].days[0] > cycles[0].days[-1]
    assert cycles[1].shift_days == 1


def test_replanning_skips_past_cycles_and_places_nothing_before_not_before():
    start = dt.date(2026, 1, 5)
    not_before = dt.date(2026, 3, 4)  # a Wednesday; cycle 3 was planned for Monday 2 March
    cycles = plan_cycles(start, 4, 2, dt.date(2026, 4, 20), center(), 3, not_before=not_before)
    assert [c.cycle_number for c in cycles] == [3, 4]
    assert cycles[0].days == (not_before, days_after(not_before, 1))
    assert cycles[0].shift_days == 2
    assert cycles[1].days[0] == dt.date(2026, 3, 30)


def test_first_cycle_number_counts_from_the_start():
    cycles = plan_cycles(MONDAY, 2, 1, days_after(MONDAY, 14), center(), 3, first_cycle_number=7)
    assert [(c.cycle_number, c.planned_start) for c in cycles] == [
        (7, MONDAY),
        (8, days_after(MONDAY, 14)),
    ]


def test_impossible_arguments_are_refused():
    with pytest.raises(ValueError, match="interval_weeks"):
        plan_cycles(MONDAY, 0, 2, MONDAY, center(), 3)
    with pytest.raises(ValueError, match="weekday"):
        OpeningHours(7, dt.time(8), dt.time(18))
    with pytest.raises(ValueError, match="before closes_at"):
        OpeningHours(0, dt.time(18), dt.time(8))


# --- time zones --------------------------------------------------------------------------


def test_local_to_utc_refuses_a_time_in_the_spring_gap_and_takes_the_first_fold():
    assert local_to_utc(dt.date(2026, 3, 8), dt.time(2, 30), NY) is None
    assert local_to_utc(dt.date(2026, 11, 1), dt.time(1, 30), NY) == dt.datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )
    assert local_to_utc(MONDAY, dt.time(9), NY) == dt.datetime(2026, 6, 1, 13, tzinfo=UTC)


def test_bookings_keep_local_time_across_the_end_of_daylight_saving():
    calendar = center()
    cycles = plan_cycles(dt.date(2026, 10, 5), 2, 2, dt.date(2026, 11, 30), calendar, 3)
    bookings = book_cycles(
        cycles, 2, calendar, dt.time(9), [4 * HOUR, 4 * HOUR], TURNOVER, {}, 15, 3
    )
    assert len(bookings) == 10
    for booking in bookings:
        assert booking.starts_at is not None
        assert local(booking.starts_at).time() == dt.time(9)
        expected_utc_hour = 13 if booking.date < dt.date(2026, 11, 1) else 14
        assert booking.starts_at.hour == expected_utc_hour
    assert {b.starts_at.hour for b in bookings if b.starts_at} == {13, 14}


def test_find_slot_skips_wall_times_that_do_not_exist():
    night = (OpeningHours(6, dt.time(0), dt.time(6)),)  # Sundays, across the spring gap
    slot = find_slot(
        dt.date(2026, 3, 8), center(hours=night), dt.time(2, 30), HOUR, TURNOVER, {}, 15
    )
    # 02:00-02:59 do not exist; of the two times 30 minutes away only 03:00 EDT is real.
    assert slot == (1, dt.datetime(2026, 3, 8, 7, tzinfo=UTC))


def test_find_slot_measures_the_infusion_in_real_time_across_the_spring_gap():
    night = (OpeningHours(6, dt.time(0), dt.time(4)),)  # Sundays
    slot = find_slot(
        dt.date(2026, 3, 8), center(hours=night), dt.time(1, 30), 2 * HOUR, TURNOVER, {}, 15
    )
    # Two hours from 01:30 EST end at 04:30 EDT, after closing; from 01:00 they end at 04:00.
    assert slot == (1, dt.datetime(2026, 3, 8, 6, tzinfo=UTC))


# --- find_slot ---------------------------------------------------------------------------


def slot_at(calendar, busy, preferred=dt.time(10), duration=HOUR, turnover=TURNOVER, day=MONDAY):
    return find_slot(day, calendar, preferred, duration, turnover, busy, 15)


def test_find_slot_takes_the_preferred_time_when_it_is_free():
    assert slot_at(center(chairs=(3, 1)), {}) == (3, at(MONDAY, 10))


def test_find_slot_takes_the_nearest_free_time_when_every_chair_is_taken():
    taken = [Interval(at(MONDAY, 10), at(MONDAY, 11, 15))]
    slot = slot_at(center(chairs=(1, 2)), {1: taken, 2: taken})
    # 08:45 and 11:15 are both 75 minutes away; the earlier wins, and it ends with its
    # turnover exactly when the taken interval begins.
    assert slot == (1, at(MONDAY, 8, 45))


def test_find_slot_uses_the_second_chair_when_the_first_is_busy():
    busy = {1: [Interval(at(MONDAY, 9), at(MONDAY, 12))]}
    assert slot_at(center(chairs=(1, 2)), busy) == (2, at(MONDAY, 10))


def test_find_slot_waits_for_the_previous_patients_turnover():
    # The previous infusion ends at 10:00; without turnover the chair is free at once.
    without_turnover = {1: [Interval(at(MONDAY, 8), at(MONDAY, 10))]}
    assert slot_at(center(), without_turnover, turnover=0 * HOUR) == (1, at(MONDAY, 10))
    with_turnover = {1: [Interval(at(MONDAY, 8), at(MONDAY, 10, 15))]}
    assert slot_at(center(), with_turnover) == (1, at(MONDAY, 10, 15))


def test_find_slot_leaves_room_for_its_own_turnover_before_the_next_patient():
    busy = {1: [Interval(at(MONDAY, 11), at(MONDAY, 12))]}
    assert slot_at(center(), busy, turnover=0 * HOUR) == (1, at(MONDAY, 10))
    assert slot_at(center(), busy) == (1, at(MONDAY, 9, 45))


def test_find_slot_never_ends_an_infusion_after_closing():
    assert slot_at(center(), {}, preferred=dt.time(17, 30)) == (1, at(MONDAY, 17))
    assert slot_at(center(), {}, duration=11 * HOUR) is None


def test_find_slot_returns_none_when_full_or_closed():
    all_day = [Interval(at(MONDAY, 7), at(MONDAY, 19))]
    assert slot_at(center(chairs=(1, 2)), {1: all_day, 2: all_day}) is None
    assert slot_at(center([MONDAY]), {}) is None
    assert slot_at(center(), {}, day=dt.date(2026, 6, 6)) is None  # Saturday


def test_find_slot_handles_unsorted_and_overlapping_busy_intervals():
    busy = {
        1: [
            Interval(at(MONDAY, 9), at(MONDAY, 9, 30)),
            Interval(at(MONDAY, 8), at(MONDAY, 16)),
        ]
    }
    assert slot_at(center(), busy) == (1, at(MONDAY, 16))


# --- book_plan's bookings -------------------------------------------------------------------------


def occupancy(bookings: list[Booking], turnover: dt.timedelta) -> dict[int, list[Interval]]:
    busy: dict[int, list[Interval]] = {}
    for booking in bookings:
        if booking.chair_id is not None and booking.starts_at and booking.ends_at:
            interval = Interval(booking.starts_at, booking.ends_at + turnover)
            busy.setdefault(booking.chair_id, []).append(interval)
    return busy


def assert_no_overlap(intervals: list[Interval]) -> None:
    ordered = sorted(intervals, key=lambda interval: interval.starts_at)
    for before, after in itertools.pairwise(ordered):
        assert before.ends_at <= after.starts_at, (before, after)


def test_two_patients_booked_one_after_the_other_never_share_a_chair_time():
    calendar = center()
    durations = [3 * HOUR, 3 * HOUR]
    cycles = plan_cycles(MONDAY, 4, 2, days_after(MONDAY, 365), calendar, 3)
    first = book_cycles(cycles, 2, calendar, dt.time(9), durations, TURNOVER, {}, 15, 3)
    busy = occupancy(first, TURNOVER)
    snapshot = {chair: list(intervals) for chair, intervals in busy.items()}
    second = book_cycles(cycles, 2, calendar, dt.time(9), durations, TURNOVER, busy, 15, 3)
    assert busy == snapshot  # the caller's mapping is left alone
    assert all(b.starts_at is not None for b in first + second)
    assert {local(b.starts_at).time() for b in second if b.starts_at} == {dt.time(12, 15)}
    assert_no_overlap(occupancy(first + second, TURNOVER)[1])


def test_bookings_are_ordered_and_last_as_long_as_their_day_needs():
    calendar = center()
    cycles = plan_cycles(MONDAY, 4, 2, days_after(MONDAY, 60), calendar, 3)
    durations = [2 * HOUR, 3 * HOUR]
    bookings = book_cycles(
        list(reversed(cycles)), 2, calendar, dt.time(9), durations, TURNOVER, {}, 15, 3
    )
    assert [(b.cycle_number, b.day_number) for b in bookings] == [
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
        (3, 1),
        (3, 2),
    ]
    for booking in bookings:
        assert booking.starts_at and booking.ends_at
        assert booking.ends_at - booking.starts_at == durations[booking.day_number - 1]


def test_a_full_day_moves_the_whole_cycle_within_the_window():
    calendar = center()
    [cycle] = plan_cycles(MONDAY, 4, 2, MONDAY, calendar, 3)
    busy = {1: [Interval(at(MONDAY, 8), at(MONDAY, 18))]}
    bookings = book_cycles([cycle], 2, calendar, dt.time(9), [HOUR, HOUR], TURNOVER, busy, 15, 3)
    assert [b.date for b in bookings] == [days_after(MONDAY, 1), days_after(MONDAY, 2)]
    assert all(b.chair_id == 1 and b.shift_days == 1 for b in bookings)


def test_when_no_move_works_the_days_that_fit_are_booked_and_the_rest_left_to_a_nurse():
    calendar = center()
    [cycle] = plan_cycles(MONDAY, 4, 2, MONDAY, calendar, 1)
    wednesday = days_after(MONDAY, 2)
    busy = {
        1: [
            Interval(at(MONDAY, 8), at(MONDAY, 18)),
            Interval(at(wednesday, 8), at(wednesday, 18)),
        ]
    }
    monday, tuesday = book_cycles(
        [cycle], 2, calendar, dt.time(9), [HOUR, HOUR], TURNOVER, busy, 15, 1
    )
    assert monday == Booking(1, 1, MONDAY, None, None, None, 0)
    assert tuesday.date == days_after(MONDAY, 1) and tuesday.chair_id == 1
    assert tuesday.starts_at == at(tuesday.date, 9)


def test_a_move_never_lands_before_not_before():
    calendar = center()
    tuesday = days_after(MONDAY, 1)
    [cycle] = plan_cycles(tuesday, 4, 1, tuesday, calendar, 1)
    wednesday = days_after(MONDAY, 2)
    # Tuesday is full and Wednesday (+1) too, so only Monday (-1) remains.
    busy = {
        1: [
            Interval(at(tuesday, 8), at(tuesday, 18)),
            Interval(at(wednesday, 8), at(wednesday, 18)),
        ]
    }
    args = ([cycle], 1, calendar, dt.time(9), [HOUR], TURNOVER, busy, 15, 1)
    assert book_cycles(*args)[0].date == MONDAY
    assert book_cycles(*args, not_before=tuesday)[0].chair_id is None


def test_a_patients_own_turnover_carries_over_midnight_into_the_next_day():
    all_week = tuple(OpeningHours(day, dt.time(0), dt.time(23, 59)) for day in range(7))
    calendar = center(hours=all_week, timezone="UTC")
    [cycle] = plan_cycles(MONDAY, 4, 2, MONDAY, calendar, 0)
    durations = [dt.timedelta(hours=23, minutes=45), HOUR]
    first, second = book_cycles(
        [cycle], 2, calendar, dt.time(0), durations, 30 * MINUTES, {}, 15, 0
    )
    assert first.starts_at == dt.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    # The chair is being cleaned until 00:15 on Tuesday.
    assert second.starts_at == dt.datetime(2026, 6, 2, 0, 15, tzinfo=UTC)


def test_unplaced_cycles_become_unbooked_days_from_the_planned_start():
    cycle = PlannedCycle(4, MONDAY, (), 0)
    bookings = book_cycles([cycle], 3, center(), dt.time(9), [HOUR] * 3, TURNOVER, {}, 15, 3)
    assert bookings == [
        Booking(4, number, days_after(MONDAY, number - 1), None, None, None, 0)
        for number in (1, 2, 3)
    ]


def test_book_cycles_needs_one_duration_per_day():
    with pytest.raises(ValueError, match="durations"):
        book_cycles([], 2, center(), dt.time(9), [HOUR], TURNOVER, {}, 15, 3)


# --- properties --------------------------------------------------------------------------

BASE = dt.date(2026, 1, 1)
ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]


@st.composite
def plans(draw):
    weekdays = draw(st.sets(st.integers(0, 6)))
    hours = tuple(OpeningHours(day, dt.time(8), dt.time(18)) for day in sorted(weekdays))
    closures = draw(st.frozensets(st.dates(BASE, days_after(BASE, 240)), max_size=40))
    calendar = CenterCalendar(NY, hours, closures, (1,))
    start = draw(st.dates(BASE, days_after(BASE, 60)))
    return dict(
        start=start,
        interval_weeks=draw(st.integers(1, 6)),
        days_per_cycle=draw(st.integers(1, 5)),
        until=days_after(start, draw(st.integers(0, 180))),
        calendar=calendar,
        shift_window_days=draw(st.integers(0, 4)),
        first_cycle_number=draw(st.integers(1, 5)),
        not_before=draw(st.none() | st.dates(BASE, days_after(BASE, 120))),
    )


@settings(max_examples=200)
@given(plans())
def test_planned_cycles_never_overlap_and_sit_on_whole_runs_of_open_days(plan):
    calendar, window = plan["calendar"], plan["shift_window_days"]
    open_weekdays = {entry.weekday for entry in calendar.hours}
    cycles = plan_cycles(**plan)
    previous_last = None
    for cycle in cycles:
        steps = cycle.cycle_number - plan["first_cycle_number"]
        assert cycle.planned_start == plan["start"] + dt.timedelta(weeks=plan["interval_weeks"]) * (
            steps
        )
        assert cycle.planned_start <= plan["until"]
        if plan["not_before"] is not None:
            assert cycle.planned_start >= days_after(plan["not_before"], -window)
        if not cycle.placed:
            assert cycle.days == () and cycle.shift_days == 0
            continue
        assert len(cycle.days) == plan["days_per_cycle"]
        assert cycle.shift_days == (cycle.days[0] - cycle.planned_start).days
        assert abs(cycle.shift_days) <= window
        assert all(calendar.hours_on(day) is not None for day in cycle.days)
        for day, following in itertools.pairwise(cycle.days):
            between = range(1, (following - day).days)
            assert all(days_after(day, n).weekday() not in open_weekdays for n in between)
        if plan["not_before"] is not None:
            assert cycle.days[0] >= plan["not_before"]
        if previous_last is not None:
            assert cycle.days[0] > previous_last
        previous_last = cycle.days[-1]


# Days on which one of ZONES changes its clocks (all Sundays), so bookings cross them.
CLOCK_CHANGES = [
    dt.date(2026, 3, 8),  # New York, spring
    dt.date(2026, 3, 29),  # London, spring
    dt.date(2026, 4, 5),  # Lord Howe, autumn (30 minutes)
    dt.date(2026, 10, 4),  # Lord Howe, spring
    dt.date(2026, 10, 25),  # London, autumn
    dt.date(2026, 11, 1),  # New York, autumn
]


def minutes_of_day(draw, low: int, high: int) -> int:
    # Half the time near the small hours, where the clocks change.
    return draw(st.integers(low, min(high, 4 * 12)) | st.integers(low, high)) * 5


@st.composite
def bookings_setups(draw):
    timezone = draw(st.sampled_from(ZONES))
    hours = []
    for weekday in sorted(draw(st.sets(st.integers(0, 6), min_size=1))):
        opens = minutes_of_day(draw, 0, 20 * 12)
        closes = min(opens + draw(st.integers(1, 14 * 12)) * 5, 24 * 60 - 1)
        hours.append(
            OpeningHours(
                weekday, dt.time(opens // 60, opens % 60), dt.time(closes // 60, closes % 60)
            )
        )
    start = days_after(draw(st.sampled_from(CLOCK_CHANGES)), draw(st.integers(-3, 0)))
    closures = draw(st.frozensets(st.dates(start, days_after(start, 40)), max_size=4))
    chairs = tuple(range(1, draw(st.integers(1, 2)) + 1))
    calendar = CenterCalendar(timezone, tuple(hours), closures, chairs)
    days_per_cycle = draw(st.integers(1, 4))
    window = draw(st.integers(0, 3))
    cycles = plan_cycles(
        start, draw(st.integers(1, 2)), days_per_cycle, days_after(start, 28), calendar, window
    )
    origin = dt.datetime.combine(days_after(start, -1), dt.time(0), tzinfo=UTC)
    busy: dict[int, list[Interval]] = {}
    for _ in range(draw(st.integers(0, 60))):
        begin = origin + draw(st.integers(0, 40 * 24 * 12)) * 5 * MINUTES
        length = draw(st.integers(1, 12 * 12)) * 5 * MINUTES
        busy.setdefault(draw(st.sampled_from(chairs)), []).append(Interval(begin, begin + length))
    return dict(
        cycles=cycles,
        days_per_cycle=days_per_cycle,
        calendar=calendar,
        preferred_time=dt.time(draw(st.integers(0, 23)), draw(st.integers(0, 11)) * 5),
        durations=[draw(st.integers(1, 48)) * 5 * MINUTES for _ in range(days_per_cycle)],
        turnover=draw(st.integers(0, 30)) * MINUTES,
        busy=busy,
        granularity_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 60])),
        shift_window_days=window,
    )


def assert_inside_opening_hours(bookings: list[Booking], setup: dict) -> None:
    calendar = setup["calendar"]
    zone = ZoneInfo(calendar.timezone)
    granularity = setup["granularity_minutes"]
    for booking in bookings:
        assert abs(booking.shift_days) <= setup["shift_window_days"]
        if booking.starts_at is None or booking.ends_at is None:
            assert booking.chair_id is None and booking.starts_at is booking.ends_at is None
            continue
        hours = calendar.hours_on(booking.date)
        assert hours is not None
        begin, end = booking.starts_at.astimezone(zone), booking.ends_at.astimezone(zone)
        assert begin.date() == booking.date == end.date()
        assert hours.opens_at <= begin.time()
        # Compare instants: on a spring-forward day a closing time inside the gap (02:00 in
        # New York) is the moment the clocks jump, so 01:55 + 5 min (03:00 EDT) is in time.
        closes = dt.datetime.combine(booking.date, hours.closes_at, tzinfo=zone)
        assert booking.ends_at <= closes.astimezone(dt.UTC)
        assert (begin.hour * 60 + begin.minute) % granularity == 0 and begin.second == 0
        assert booking.ends_at - booking.starts_at == setup["durations"][booking.day_number - 1]


@settings(max_examples=150, deadline=None)
@given(bookings_setups(), st.times())
def test_booked_infusions_never_double_book_a_chair_and_stay_inside_opening_hours(setup, other):
    turnover, given_busy = setup["turnover"], setup["busy"]
    snapshot = {chair: list(intervals) for chair, intervals in given_busy.items()}
    first = book_cycles(**setup)
    assert given_busy == snapshot
    # A second patient at the same center, booked against the first one's chairs.
    busy_then = {
        chair: snapshot.get(chair, []) + occupancy(first, turnover).get(chair, [])
        for chair in setup["calendar"].chair_ids
    }
    second = book_cycles(**{**setup, "busy": busy_then, "preferred_time": other.replace(second=0)})
    for bookings in (first, second):
        assert len(bookings) == len(setup["cycles"]) * setup["days_per_cycle"]
        keys = [(b.cycle_number, b.day_number) for b in bookings]
        assert keys == sorted(keys)
        assert_inside_opening_hours(bookings, setup)
        booked: dict[int, list[dt.date]] = {}
        for booking in bookings:
            if booking.chair_id is not None:
                booked.setdefault(booking.cycle_number, []).append(booking.date)
        spans = [(min(days), max(days)) for _, days in sorted(booked.items())]
        for (_, last), (first_day, _) in itertools.pairwise(spans):
            assert last < first_day
    ours = occupancy(first + second, turnover)
    for chair, intervals in ours.items():
        assert_no_overlap(intervals)
        for interval in intervals:
            for other_interval in snapshot.get(chair, []):
                assert (
                    other_interval.ends_at <= interval.starts_at
                    or interval.ends_at <= other_interval.starts_at
                )


# --- free_slots (the placement queue's offers) ----------------------------------------------


def test_free_slots_offer_the_nearest_clear_slots_on_any_free_chair():
    calendar = center(chairs=(1, 2))
    busy = {1: [Interval(at(MONDAY, 9), at(MONDAY, 12))]}  # chair 1 taken 09:00-12:00
    offers = free_slots(MONDAY, calendar, dt.time(9), 2 * HOUR, TURNOVER, busy, 15, 4)
    assert len(offers) == 4
    assert offers[0] == (2, at(MONDAY, 9))  # the preferred time, on the free chair
    for (chair_a, start_a), (chair_b, start_b) in itertools.combinations(offers, 2):
        if chair_a == chair_b:  # two offers on one chair never overlap (with turnover)
            assert abs(start_a - start_b) >= 2 * HOUR + TURNOVER
    for chair, start in offers:
        assert local(start).time() >= dt.time(8) and local(start + 2 * HOUR).time() <= dt.time(18)
        if chair == 1:
            assert start >= at(MONDAY, 12) or start + 2 * HOUR + TURNOVER <= at(MONDAY, 9)
    assert offers == sorted(offers, key=lambda o: (o[1], o[0]))


def test_free_slots_offer_nothing_on_a_closed_or_full_day():
    assert (
        free_slots(MONDAY, center(closures={MONDAY}), dt.time(9), HOUR, TURNOVER, {}, 15, 3) == []
    )
    full = {1: [Interval(at(MONDAY, 8), at(MONDAY, 18))]}
    assert free_slots(MONDAY, center(), dt.time(9), HOUR, TURNOVER, full, 15, 3) == []
