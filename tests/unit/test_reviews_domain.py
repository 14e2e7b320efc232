"""When a course review is due, and what stops a cycle: the pure rules of app.domain.reviews."""

import datetime as dt

from app.domain import reviews

POLICY = reviews.ReviewPolicy(
    first_before_cycle=3,
    interval_months=6,
    required_measures=("cdasi_activity", "mmt8", "physician_global"),
    task_days_before=14,
    renewal_days_before=28,
)
START = dt.date(2026, 10, 5)


def course(
    cycles: int = 6, weeks: int = 4, reviewed: tuple[tuple[dt.date, str], ...] = (), auth=()
) -> reviews.CourseFacts:
    return reviews.CourseFacts(
        {n: START + dt.timedelta(weeks=weeks * (n - 1)) for n in range(1, cycles + 1)},
        tuple(reviews.ReviewFact(on, decision) for on, decision in reviewed),
        tuple(reviews.AuthorisationFact("A-1", s, e) for s, e in auth),
    )


def test_the_response_review_is_due_on_the_first_day_of_cycle_three():
    point = reviews.next_review(course(), POLICY)
    assert point is not None and point.number == 1
    assert point.due_on == START + dt.timedelta(weeks=8)
    assert "before cycle 3" in point.reason
    assert not point.overdue_on(point.due_on) and point.overdue_on(point.due_on + dt.timedelta(1))


def test_without_cycle_three_booked_the_review_falls_six_months_after_the_start():
    assert reviews.next_review(course(cycles=2), POLICY) == reviews.ReviewPoint(
        dt.date(2027, 4, 5), 1, "response review 6 months after the course began (2026-10-05)"
    )
    # Cycles so far apart that cycle 3 comes after six months: six months wins.
    assert reviews.next_review(course(weeks=14), POLICY).due_on == dt.date(2027, 4, 5)


def test_after_a_review_the_next_is_due_the_interval_later_and_stop_ends_the_course():
    point = reviews.next_review(course(reviewed=((dt.date(2026, 11, 20), "continue"),)), POLICY)
    assert point is not None and point.due_on == dt.date(2027, 5, 20) and point.number == 2
    assert reviews.next_review(course(reviewed=((dt.date(2026, 11, 20), "stop"),)), POLICY) is None
    assert reviews.next_review(reviews.CourseFacts({}, ()), POLICY) is None


def test_measures_missing_are_named_in_the_policy_order():
    assert reviews.missing_measures(POLICY, None) == POLICY.required_measures
    assert reviews.missing_measures(
        POLICY, {"cdasi_activity": 10.0, "mmt8": None, "physician_global": 0.0}
    ) == ("mmt8",)


def test_a_cycle_on_or_after_the_due_date_or_past_the_authorisation_needs_a_reason():
    facts = course(auth=((START, dt.date(2026, 12, 31)),))
    due = START + dt.timedelta(weeks=8)
    assert reviews.cycle_stops(facts, POLICY, due - dt.timedelta(days=1)) == ()
    (stop,) = reviews.cycle_stops(facts, POLICY, due)
    assert stop.code == "review_due" and str(due) in stop.message
    codes = [s.code for s in reviews.cycle_stops(facts, POLICY, dt.date(2027, 1, 4))]
    assert codes == ["review_due", "authorisation_expired"]
    assert reviews.authorised_until(facts) == dt.date(2026, 12, 31)
    assert reviews.authorised_until(course()) is None
