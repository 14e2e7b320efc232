"""The clinic reports' pure rules: each response status by its definition, the time to response,
the shares, grams per month, adverse events by type and grade, and steroid exposure."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import clinic_report as rules
from app.domain.reviews import ReviewFact
from app.domain.rules.facts import AdverseEventFact, Assessment, FactSettings
from app.domain.timeline import Step

D0 = dt.date(2026, 1, 5)
TIS_TABLE = {
    "physician_global": ((0, 0), (5, 7.5), (15, 15), (25, 17.5), (40, 20)),
    "patient_global": ((0, 0), (5, 2.5), (15, 5), (25, 7.5), (40, 10)),
    "mmt8": ((0, 0), (2, 10), (10, 20), (20, 27.5), (30, 32.5)),
    "haq": ((0, 0), (5, 5), (15, 7.5), (25, 7.5), (40, 10)),
    "enzyme": ((0, 0), (5, 2.5), (15, 5), (25, 7.5), (40, 7.5)),
    "extramuscular_global": ((0, 0), (5, 7.5), (15, 12.5), (25, 15), (40, 20)),
}
SETTINGS = FactSettings(
    mcid_points=5,
    responder_min_percent=20,
    responder_tis=20,
    remission_activity_max=14,
    dose_ladder_g_per_kg=(2.0, 1.5, 1.0),
    interval_ladder_weeks=(4, 5, 6, 8),
    tis_table=TIS_TABLE,
)
THRESHOLDS = rules.Thresholds(
    mcid_points=5,
    responder_min_percent=20,
    responder_tis=20,
    remission_activity_max=14,
    window_weeks=16,
    week=16,
    week_tis=20,
)


def weeks(n: float) -> dt.date:
    return D0 + dt.timedelta(days=round(7 * n))


def scores(n: int, on: dt.date, better: float = 0.0, activity: float = 40.0) -> Assessment:
    """An assessment `better` (a fraction) better than the baseline in every TIS measure."""
    return Assessment(
        id=n,
        assessed_on=on,
        cdasi_activity=activity,
        physician_global=6 * (1 - better),
        patient_global=6 * (1 - better),
        mmt8=60 * (1 + better / 3),
        haq=1.5 * (1 - better),
        ck=1000 * (1 - better),
        extramuscular_global=4 * (1 - better),
    )


def course(*assessments: Assessment, cycles: int = 5, **kw: object) -> rules.Course:
    return rules.Course(
        patient_id=1,
        cycle_starts=tuple(weeks(4 * n) for n in range(cycles)),
        assessments=(scores(0, D0 - dt.timedelta(days=1)), *assessments),
        **kw,  # type: ignore[arg-type]
    )


def status_of(item: rules.Course, as_of: dt.date) -> rules.Response:
    return rules.response(item, as_of, SETTINGS, THRESHOLDS)


def test_a_tis_of_20_makes_a_responder_with_its_time_to_response():
    # 10% better everywhere: 7.5 + 2.5 + 20 (mmt8 +3.3%: 10) ... at least 20 points.
    found = status_of(course(scores(1, weeks(5), 0.1), scores(2, weeks(9), 0.5)), weeks(20))
    assert found.status == "responder"
    assert found.responded_on == weeks(5)
    # Cycles on weeks 0 and 4 came before the response at week 5.
    assert found.cycles_to_response == 2
    assert found.weeks_to_response == pytest.approx(5)
    assert found.improved and found.judged


def test_cdasi_activity_better_by_the_mcid_and_the_percent_is_a_response_too():
    # 40 -> 34: 6 points but 15%, not enough; 40 -> 32: 8 points and 20%, on a cycle day (the
    # visit comes before that day's infusion: the cycles of weeks 0 and 4 only).
    found = status_of(
        course(scores(1, weeks(4), activity=34.0), scores(2, weeks(8), activity=32.0)), weeks(20)
    )
    assert found.status == "responder" and found.responded_on == weeks(8)
    assert found.cycles_to_response == 2
    assert found.tis_at_week == 0  # a response, though not by the TIS


def test_no_response_is_in_review_within_the_window_then_a_non_responder():
    flat = course(scores(1, weeks(8)))
    assert status_of(flat, weeks(15)).status == "in_review"
    assert not status_of(flat, weeks(15)).judged
    assert status_of(flat, weeks(16)).status == "non_responder"
    assert status_of(flat, weeks(16)).cycles_to_response is None


def test_an_approved_review_of_non_response_makes_a_non_responder_early():
    flat = course(scores(1, weeks(8)), nonresponse_confirmed_on=(weeks(12),))
    assert status_of(flat, weeks(11)).status == "in_review"
    assert status_of(flat, weeks(12)).status == "non_responder"
    # A later response outweighs it.
    late = course(
        scores(1, weeks(8)), scores(2, weeks(13), 0.5), nonresponse_confirmed_on=(weeks(12),)
    )
    assert status_of(late, weeks(14)).status == "responder"


def test_a_responder_with_mild_activity_is_in_remission_even_when_stopped():
    quiet = course(scores(1, weeks(8), 0.5, activity=12.0))
    assert status_of(quiet, weeks(20)).status == "remission"
    stopped = course(
        scores(1, weeks(8), 0.5, activity=12.0),
        reviews=(ReviewFact(weeks(30), "stop"),),
        adverse_events=(AdverseEventFact(weeks(29), "headache", False, None),),
    )
    found = status_of(stopped, weeks(40))
    assert found.status == "remission" and found.stopped_on == weeks(30)
    assert not found.stopped_for_adverse_event


def test_a_stop_after_a_serious_or_open_event_is_a_stop_for_an_adverse_event():
    def stopped(event: AdverseEventFact) -> rules.Response:
        return status_of(
            course(
                scores(1, weeks(8)),
                reviews=(ReviewFact(weeks(6), "continue"), ReviewFact(weeks(10), "stop")),
                adverse_events=(event,),
            ),
            weeks(12),
        )

    serious = stopped(AdverseEventFact(weeks(9), "thrombosis", True, weeks(9)))
    assert serious.status == "stopped" and serious.stopped_for_adverse_event
    assert stopped(AdverseEventFact(weeks(9), "headache", False, None)).stopped_for_adverse_event
    resolved = stopped(AdverseEventFact(weeks(9), "headache", False, weeks(9)))
    assert resolved.status == "stopped" and not resolved.stopped_for_adverse_event
    after = stopped(AdverseEventFact(weeks(11), "thrombosis", True, None))
    assert not after.stopped_for_adverse_event
    # Before the review day the course is not stopped.
    assert status_of(course(reviews=(ReviewFact(weeks(10), "stop"),)), weeks(9)).status == (
        "in_review"
    )


def test_the_tis_at_the_week_is_the_last_scored_by_then():
    item = course(scores(1, weeks(8), 0.5), scores(2, weeks(15)), scores(3, weeks(17), 0.5))
    assert status_of(item, weeks(20)).tis_at_week == 0  # week 15's: back to the baseline
    assert status_of(item, weeks(15)).tis_at_week is None  # not at week 16 yet


def test_the_summary_counts_statuses_and_shares():
    responses = [
        status_of(course(scores(1, weeks(5), 0.5)), weeks(20)),
        status_of(course(scores(1, weeks(9), 0.5)), weeks(20)),
        status_of(course(scores(1, weeks(8))), weeks(20)),
        status_of(course(scores(1, weeks(8)), cycles=1), weeks(10)),
    ]
    summary = rules.summarise(responses, 20)
    assert summary.patients == 4
    assert summary.by_status == {
        "responder": 2,
        "non_responder": 1,
        "in_review": 1,
        "remission": 0,
        "stopped": 0,
    }
    assert summary.cycles_to_response.mean == pytest.approx(2.5)  # 2 and 3 cycles
    assert summary.weeks_to_response.median == pytest.approx(7)
    assert (summary.improved, summary.judged) == (2, 3)
    assert summary.improved_percent == pytest.approx(200 / 3)
    assert (summary.week_responded, summary.week_scored) == (2, 3)
    assert rules.summarise([], 20).improved_percent is None


def test_grams_add_up_per_month_and_product():
    rows = rules.grams_by_month(
        [
            rules.DayGrams(dt.date(2026, 1, 5), "Octagam 10%", 80, 0),
            rules.DayGrams(dt.date(2026, 1, 30), "Octagam 10%", 40, 10),
            rules.DayGrams(dt.date(2026, 1, 6), "Gamunex-C", 50, 0),
            rules.DayGrams(dt.date(2026, 2, 1), "Octagam 10%", 0, 90),
        ]
    )
    assert rows == (
        rules.MonthGrams("2026-01", "Gamunex-C", 50, 0),
        rules.MonthGrams("2026-01", "Octagam 10%", 120, 10),
        rules.MonthGrams("2026-02", "Octagam 10%", 0, 90),
    )


def test_adverse_events_count_per_type_and_grade():
    counts = rules.adverse_event_counts(
        [(1, "headache", 1, False), (1, "headache", 2, False), (2, "headache", 2, True)]
    )
    assert counts == (rules.EventCount("headache", (1, 2, 0, 0, 0), 2, 1),)
    assert counts[0].events == 3


def test_exposure_holds_each_step_until_the_next_one():
    steps = [Step(D0, 20, ""), Step(D0 + dt.timedelta(days=14), 10, "")]
    found = rules.exposure(steps, D0 + dt.timedelta(days=20))
    assert found == rules.Exposure(current_mg_per_day=10, cumulative_mg=20 * 14 + 10 * 7)
    since = rules.exposure(steps, D0 + dt.timedelta(days=20), since=D0 + dt.timedelta(days=10))
    assert since is not None and since.cumulative_mg == 20 * 4 + 10 * 7
    assert rules.exposure(steps, D0 - dt.timedelta(days=1)) is None


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=6),
    st.integers(0, 90),
    st.integers(0, 90),
)
def test_cumulative_exposure_is_the_sum_of_the_days(raw, since_days, as_of_days):
    """Counted day by day, each day's dose being the latest step started by then."""
    steps = [Step(D0 + dt.timedelta(days=day), float(mg), "") for day, mg in raw]
    as_of, since = D0 + dt.timedelta(days=as_of_days), D0 + dt.timedelta(days=since_days)
    found = rules.exposure(steps, as_of, since)
    if found is None:
        assert all(step.since > as_of for step in steps)
        return
    # Steps starting the same day: the last listed of them is in force (the sort is stable).
    ordered = sorted(steps, key=lambda s: s.since)
    expected = 0.0
    for n in range((as_of - since).days + 1):
        day = since + dt.timedelta(days=n)
        started = [s for s in ordered if s.since <= day]
        expected += started[-1].value if started else 0.0
    assert found.cumulative_mg == pytest.approx(expected)


def test_dose_bands_follow_the_taper_band_edges():
    bands = rules.dose_bands([40, 20, 10, 5])
    assert [label for label, _low, _high in bands] == [
        "0 mg",
        "over 0 to 5 mg",
        "over 5 to 10 mg",
        "over 10 to 20 mg",
        "over 20 to 40 mg",
        "over 40 mg",
    ]
    assert rules.band_counts([0, 5, 5.5, 10, 60], bands) == (1, 1, 2, 0, 0, 1)


def test_spread_gives_the_quartiles():
    found = rules.spread([1, 2, 3, 4, 5])
    assert (found.count, found.minimum, found.median, found.maximum) == (5, 1, 3, 5)
    assert (found.lower_quartile, found.upper_quartile) == (2, 4)
    assert rules.spread([7]).median == 7
    assert rules.spread([]).mean is None
