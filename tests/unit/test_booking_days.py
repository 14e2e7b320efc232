"""Reading a busy center's chairs only where a plan may book (issue 18): the plan made with
the occupancy of the planned days alone, when it stays on them, is the plan the whole
calendar gives; when it goes off them the service reads every day of the shift windows."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import reconcile, schedule
from tests.unit.test_integrity import MONDAY, at, calendar

OPTIONS = reconcile.Options(
    until=MONDAY + dt.timedelta(days=120),
    shift_window_days=3,
    interval_tolerance_days=3,
    turnover=dt.timedelta(minutes=15),
    granularity_minutes=15,
)


def only(
    busy: dict[int, list[schedule.Interval]], spans: tuple[tuple[dt.date, dt.date], ...]
) -> dict[int, list[schedule.Interval]]:
    """The occupancy on the spans' dates (New York days), as the service reads it."""
    zone = calendar().timezone
    edges = [
        (schedule.day_span(a, None, None, zone)[0], schedule.day_span(b, None, None, zone)[1])
        for a, b in spans
    ]
    return {
        chair: [i for i in intervals if any(i.starts_at < e and i.ends_at > s for s, e in edges)]
        for chair, intervals in busy.items()
    }


@settings(max_examples=80, deadline=None)
@given(
    interval=st.integers(2, 6),
    days=st.integers(1, 5),
    start=st.integers(0, 10),
    closures=st.sets(st.integers(0, 100), max_size=10),
    full_days=st.sets(st.integers(0, 100), max_size=25),
)
def test_the_planned_days_alone_give_the_same_plan_or_say_they_do_not(
    interval, days, start, closures, full_days
):
    cal = calendar(frozenset(MONDAY + dt.timedelta(days=c) for c in closures))
    version = reconcile.Version(
        1, MONDAY + dt.timedelta(days=start), interval, days, dt.time(9), 240
    )
    # Another patient fills both chairs all day on some days: a cycle there must shift.
    busy: dict[int, list[schedule.Interval]] = {
        chair: [
            schedule.Interval(
                at(MONDAY + dt.timedelta(days=d), 6), at(MONDAY + dt.timedelta(days=d), 23)
            )
            for d in sorted(full_days)
        ]
        for chair in cal.chair_ids
    }
    now = at(MONDAY, 6)
    whole = reconcile.reconcile(version, [], cal, busy, MONDAY, now, OPTIONS)
    planned = reconcile.booking_days(version, [], cal, MONDAY, OPTIONS, planned_only=True)
    first = reconcile.reconcile(version, [], cal, only(busy, planned), MONDAY, now, OPTIONS)
    if reconcile.within(first, planned):
        assert first == whole
    windows = reconcile.booking_days(version, [], cal, MONDAY, OPTIONS)
    assert reconcile.reconcile(version, [], cal, only(busy, windows), MONDAY, now, OPTIONS) == whole


def test_a_full_planned_day_sends_the_plan_off_its_days() -> None:
    cal = calendar()
    version = reconcile.Version(1, MONDAY, 4, 2, dt.time(9), 240)
    busy = {chair: [schedule.Interval(at(MONDAY, 6), at(MONDAY, 23))] for chair in cal.chair_ids}
    planned = reconcile.booking_days(version, [], cal, MONDAY, OPTIONS, planned_only=True)
    assert planned[0] == (MONDAY, MONDAY + dt.timedelta(days=1))
    first = reconcile.reconcile(
        version, [], cal, only(busy, planned), MONDAY, at(MONDAY, 6), OPTIONS
    )
    assert not reconcile.within(first, planned)  # Monday is full: the cycle moves on
    assert first.days[0].booking.date == MONDAY + dt.timedelta(days=1)
