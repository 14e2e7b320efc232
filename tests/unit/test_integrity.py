"""The therapy-integrity checker on plain values, and reconciliation's output under it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import integrity, reconcile, schedule
from app.domain.integrity import InfusionFact, Limits, VersionFact, check, new_violations

NY = "America/New_York"
MONDAY = dt.date(2027, 3, 1)
NOW = dt.datetime(2027, 2, 20, 12, tzinfo=dt.UTC)  # before everything below
LIMITS = Limits(
    shift_window_days=3,
    interval_tolerance_days=3,
    dose_window_percent=50,
    grams_tolerance_percent=5,
)
V1 = VersionFact(
    id=1,
    version=1,
    effective_on=MONDAY,
    grams_per_day=82,
    grams_per_cycle=164,
    days_per_cycle=2,
    interval_weeks=4,
)


def calendar(closures: frozenset[dt.date] = frozenset()) -> schedule.CenterCalendar:
    return schedule.CenterCalendar(
        timezone=NY,
        hours=tuple(schedule.OpeningHours(d, dt.time(8), dt.time(18)) for d in range(5)),
        closures=closures,
        chair_ids=(1, 2),
    )


CALENDARS = {1: calendar()}


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone(dt.timedelta(hours=-5)))


def infusion(n: int, cycle: int, day: int, date: dt.date, **changes) -> InfusionFact:
    values = {
        "id": n,
        "regimen_id": 1,
        "center_id": 1,
        "cycle_number": cycle,
        "day_number": day,
        "planned_date": date,
        "cycle_planned_on": MONDAY + dt.timedelta(weeks=4 * (cycle - 1)),
        "status": "scheduled",
        "planned_grams": 82,
        "starts_at": at(date, 9),
        "ends_at": at(date, 14),
    }
    values.update(changes)
    return InfusionFact(**values)


def plan() -> list[InfusionFact]:
    """Three clean cycles: Monday and Tuesday every four weeks."""
    return [
        infusion(c * 2 + d, c + 1, d + 1, MONDAY + dt.timedelta(weeks=4 * c, days=d))
        for c in range(3)
        for d in range(2)
    ]


def rules_of(infusions, versions=(V1,), now=NOW, calendars=CALENDARS) -> list[str]:
    return [v.rule for v in check(list(versions), infusions, calendars, now, LIMITS)]


def replace(items, index, **changes):
    items = list(items)
    date = changes.get("planned_date")
    if date is not None and "starts_at" not in changes:
        changes |= {"starts_at": at(date, 9), "ends_at": at(date, 14)}
    items[index] = dataclasses.replace(items[index], **changes)
    return items


def test_a_clean_plan_breaks_nothing():
    assert rules_of(plan()) == []


def test_each_rule_names_what_it_guards():
    assert set(integrity.RULES) >= {"grams_in_window", "cycle_interval", "version_in_force"}
    assert {
        "consecutive_open_days",
        "shift_window",
        "cycle_interval",
        "authorised",
    } == integrity.SOFT_RULES


def test_a_cycle_day_booked_twice_is_found():
    items = [*plan(), infusion(99, 2, 1, MONDAY + dt.timedelta(weeks=4, days=3))]
    assert "cycle_day_unique" in rules_of(items)


def test_two_infusions_on_one_day_are_found():
    items = replace(plan(), 3, planned_date=MONDAY + dt.timedelta(weeks=4))
    assert "one_per_day" in rules_of(items)


def test_a_second_day_before_the_first_is_found():
    items = replace(plan(), 2, planned_date=MONDAY + dt.timedelta(weeks=4, days=2))
    items = replace(items, 3, planned_date=MONDAY + dt.timedelta(weeks=4, days=1))
    assert "cycle_days_in_order" in rules_of(items)


def test_a_future_cycle_on_an_old_version_or_dose_is_found():
    v2 = dataclasses.replace(
        V1,
        id=2,
        version=2,
        effective_on=MONDAY + dt.timedelta(weeks=4),
        grams_per_day=62,
        grams_per_cycle=124,
    )
    found = rules_of(plan(), versions=(V1, v2))
    assert found.count("version_in_force") == 2  # cycles 2 and 3 should be version 2
    moved = [dataclasses.replace(i, regimen_id=2) if i.cycle_number > 1 else i for i in plan()]
    assert set(rules_of(moved, versions=(V1, v2))) == {"dose_matches_version", "grams_in_window"}
    lowered = [dataclasses.replace(i, planned_grams=62) if i.regimen_id == 2 else i for i in moved]
    assert rules_of(lowered, versions=(V1, v2)) == []


def test_a_cycle_crowded_into_the_previous_week_breaks_the_hard_grams_window():
    # Defect 2: cycle 2 moved next to cycle 1 puts 4 x 82 g within nine days.
    items = replace(plan(), 2, planned_date=MONDAY + dt.timedelta(days=7))
    items = replace(items, 3, planned_date=MONDAY + dt.timedelta(days=8))
    found = check([V1], items, CALENDARS, NOW, LIMITS)
    hard = {v.rule for v in found if v.hard}
    assert "grams_in_window" in hard
    assert {"cycle_interval", "shift_window"} <= {v.rule for v in found if not v.hard}


def test_a_shift_inside_the_window_and_tolerance_is_clean():
    # Cycle 2 three days early: Friday, then Monday after the weekend. 25 days after cycle 1.
    items = replace(plan(), 2, planned_date=MONDAY + dt.timedelta(weeks=4, days=-3))
    items = replace(items, 3, planned_date=MONDAY + dt.timedelta(weeks=4))
    assert rules_of(items) == []
    # Four days early (Thursday, Friday): past the window, and 24 days after cycle 1.
    items = replace(items, 2, planned_date=MONDAY + dt.timedelta(weeks=4, days=-4))
    items = replace(items, 3, planned_date=MONDAY + dt.timedelta(weeks=4, days=-3))
    assert rules_of(items) == ["cycle_interval", "shift_window"]


def test_a_gap_day_inside_a_future_cycle_is_soft_and_a_waiver_covers_it():
    items = replace(plan(), 3, planned_date=MONDAY + dt.timedelta(weeks=4, days=2))
    assert rules_of(items) == ["consecutive_open_days"]
    waived = replace(items, 3, waived=frozenset({"consecutive_open_days"}))
    assert rules_of(waived) == []
    # A waiver never covers a hard rule.
    crowded = replace(
        plan(), 2, planned_date=MONDAY + dt.timedelta(days=7), waived=frozenset({"grams_in_window"})
    )
    assert "grams_in_window" in rules_of(crowded)


def test_booked_outside_the_opening_hours_is_found():
    items = replace(plan(), 0, ends_at=at(MONDAY, 19))
    assert rules_of(items) == ["open_hours"]
    closed = {1: calendar(frozenset({MONDAY}))}
    assert rules_of(plan(), calendars=closed) == ["open_hours"]


def test_a_begun_cycle_is_judged_only_by_what_it_was():
    # Cycle 1 given; its Tuesday falls on a closure added since: still fine, it has begun.
    items = replace(
        plan(),
        0,
        status="given",
        given_grams=82,
        given_started_at=at(MONDAY, 9),
        given_ended_at=at(MONDAY, 14),
    )
    closed = {1: calendar(frozenset({MONDAY + dt.timedelta(days=1)}))}
    now = at(MONDAY, 20)
    assert rules_of(items, now=now, calendars=closed) == []


def test_a_record_before_it_happened_is_found():
    # Defect 9: Tuesday's infusion "given" on Monday evening.
    monday_night = at(MONDAY, 23)
    items = replace(
        plan(),
        1,
        status="given",
        given_grams=82,
        given_started_at=at(MONDAY, 17),
        given_ended_at=at(MONDAY, 22),
    )
    assert rules_of(items, now=monday_night) == ["recorded_when_it_happened"]
    future_end = replace(
        plan(),
        0,
        status="given",
        given_grams=82,
        given_started_at=at(MONDAY, 9),
        given_ended_at=at(
            MONDAY,
            23,
        ),
    )
    assert rules_of(future_end, now=at(MONDAY, 20)) == ["recorded_when_it_happened"]
    missed_early = replace(plan(), 1, status="missed")
    assert rules_of(missed_early, now=monday_night) == ["recorded_when_it_happened"]


def test_new_violations_are_what_a_change_added():
    before = check(
        [V1],
        replace(plan(), 3, planned_date=MONDAY + dt.timedelta(weeks=4, days=2)),
        CALENDARS,
        NOW,
        LIMITS,
    )
    after = check(
        [V1],
        replace(plan(), 5, planned_date=MONDAY + dt.timedelta(weeks=8, days=2)),
        CALENDARS,
        NOW,
        LIMITS,
    )
    assert [v.rule for v in new_violations(before, after)] == ["consecutive_open_days"]
    assert new_violations(before, before) == []


# --- reconciliation's plans are clean ---------------------------------------------------------


def facts_of(result: reconcile.Reconciliation, version: VersionFact) -> list[InfusionFact]:
    return [
        InfusionFact(
            id=n,
            regimen_id=version.id,
            center_id=1,
            cycle_number=day.booking.cycle_number,
            day_number=day.booking.day_number,
            planned_date=day.booking.date,
            cycle_planned_on=day.cycle_planned_on,
            status="scheduled" if day.booking.chair_id else "unbooked",
            planned_grams=version.grams_per_day,
            starts_at=day.booking.starts_at,
            ends_at=day.booking.ends_at,
        )
        for n, day in enumerate(result.days, start=1)
    ]


@settings(max_examples=60, deadline=None)
@given(
    interval=st.integers(2, 8),
    days=st.integers(1, 5),
    start=st.integers(0, 20),
    closures=st.sets(st.integers(0, 120), max_size=12),
    minutes=st.integers(60, 480),
    busy_chair=st.booleans(),
)
def test_reconciled_plans_break_no_rule(interval, days, start, closures, minutes, busy_chair):
    first = MONDAY + dt.timedelta(days=start)
    cal = calendar(frozenset(MONDAY + dt.timedelta(days=c) for c in closures))
    version = reconcile.Version(
        id=1,
        first_cycle_on=first,
        interval_weeks=interval,
        days_per_cycle=days,
        preferred_time=dt.time(9),
        minutes_per_day=minutes,
    )
    busy = {}
    if busy_chair:
        # Another patient holds chair 1 every weekday morning of the first month.
        busy[1] = [
            schedule.Interval(
                at(MONDAY + dt.timedelta(days=d), 8), at(MONDAY + dt.timedelta(days=d), 13)
            )
            for d in range(30)
        ]
    result = reconcile.reconcile(
        version,
        [],
        cal,
        busy,
        MONDAY,
        at(MONDAY, 6),
        reconcile.Options(
            until=MONDAY + dt.timedelta(days=150),
            shift_window_days=3,
            interval_tolerance_days=3,
            turnover=dt.timedelta(minutes=15),
            granularity_minutes=15,
        ),
    )
    fact = VersionFact(1, 1, first, 40, 40 * days, days, interval)
    booked = [f for f in facts_of(result, fact) if f.status == "scheduled"]
    # Unplaceable days (no chair within the window) are left for a nurse; what is booked is sound.
    whole_cycles = [
        f for f in booked if sum(1 for g in booked if g.cycle_number == f.cycle_number) == days
    ]
    found = check([fact], whole_cycles, {1: cal}, at(MONDAY, 6), LIMITS)
    assert found == [], [v.message for v in found]
    numbers = [f.cycle_number for f in facts_of(result, fact) if f.day_number == 1]
    assert numbers == list(range(1, len(numbers) + 1))
    assert all(a < b for a, b in itertools.pairwise(numbers))
