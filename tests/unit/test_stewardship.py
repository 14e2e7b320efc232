"""The ledger's arithmetic on plain values: the causes always add up to the grams saved, a
course that never changed saves nothing, and the rule outcomes file their counts."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import rule_outcomes, stewardship

D0 = dt.date(2026, 1, 5)


def version(number: int, dose: float = 2.0, interval: int = 4, weight: float = 80.0, **kw):
    dosing = kw.pop("dosing", weight)
    planned = kw.pop("planned", dose * dosing)
    return stewardship.RegimenFact(
        version=number,
        dose_g_per_kg=dose,
        interval_weeks=interval,
        days_per_cycle=2,
        starts_on=kw.pop("starts_on", D0),
        weight_kg=weight,
        dosing_weight_kg=dosing,
        computed_grams_per_cycle=dose * dosing,
        planned_grams_per_cycle=planned,
        minutes_per_day=180,
    )


def cycle(number: int, on: dt.date, regimen: stewardship.RegimenFact, grams: float | None = None):
    grams = regimen.planned_grams_per_cycle if grams is None else grams
    return [
        stewardship.GivenDay(number, on, regimen.version, grams / 2, 180),
        stewardship.GivenDay(number, on + dt.timedelta(days=1), regimen.version, grams / 2, 180),
    ]


def test_a_course_that_never_changed_saves_nothing():
    v1 = version(1)
    days = [d for n in range(6) for d in cycle(n + 1, D0 + dt.timedelta(weeks=4 * n), v1)]
    ledger = stewardship.ledger(
        stewardship.History((v1,), days), D0 + dt.timedelta(weeks=20, days=1)
    )
    assert ledger.cycles_given == 6 and ledger.grams_given == pytest.approx(960)
    # The day since cycle 6 began is 1/28 of a cycle run: not yet due, "not given".
    assert ledger.grams_saved == pytest.approx(160 / 28)
    assert ledger.saved["not_given"] == pytest.approx(160 / 28)
    assert ledger.cost_given == 0 and ledger.saved_percent is not None


def test_nothing_given_is_an_empty_ledger():
    v1 = version(1)
    ledger = stewardship.ledger(stewardship.History((v1,), ()), D0)
    assert ledger.cycles_given == 0 and ledger.grams_saved == 0
    assert ledger.saved_percent is None
    assert stewardship.total([ledger], D0).patients == 0


def test_the_total_adds_patients_and_prices_the_grams():
    v1 = version(1)
    one = stewardship.ledger(stewardship.History((v1,), cycle(1, D0, v1)), D0 + dt.timedelta(1))
    both = stewardship.total([one, one], D0 + dt.timedelta(1), price_per_gram=10)
    assert both.patients == 2 and both.grams_given == pytest.approx(320)
    assert both.cost_given == pytest.approx(3200)
    assert both.cost_saved == pytest.approx(both.grams_saved * 10)


@st.composite
def histories(draw):
    count = draw(st.integers(1, 4))
    regimens = []
    for number in range(1, count + 1):
        weight = draw(st.floats(40, 150))
        regimens.append(
            version(
                number,
                dose=draw(st.sampled_from([2.0, 1.5, 1.0, 0.8])),
                interval=draw(st.sampled_from([4, 5, 6, 8])),
                weight=weight,
                dosing=weight * draw(st.floats(0.6, 1.0)),
                planned=draw(st.floats(20, 300)),
                starts_on=D0 + dt.timedelta(weeks=10 * (number - 1)),
            )
        )
    days = []
    on = D0
    for number in range(1, draw(st.integers(1, 20)) + 1):
        regimen = regimens[min(len(regimens) - 1, (on - D0).days // 70)]
        grams = draw(st.floats(1, 300))
        days += cycle(number, on, regimen, grams)
        on += dt.timedelta(days=draw(st.integers(7, 120)))
    stopped = draw(st.none() | st.integers(0, 800).map(lambda n: D0 + dt.timedelta(n)))
    return stewardship.History(tuple(regimens), tuple(days), stopped)


@given(histories(), st.integers(0, 900), st.none() | st.integers(0, 400))
def test_the_causes_always_add_up_to_the_grams_saved(history, days, since):
    as_of = D0 + dt.timedelta(days)
    start = None if since is None else D0 + dt.timedelta(since)
    ledger = stewardship.ledger(history, as_of, start, price_per_gram=3)
    assert set(ledger.saved) == set(stewardship.CAUSES)
    assert sum(ledger.saved.values()) == pytest.approx(ledger.grams_saved, abs=1e-6)
    assert ledger.grams_saved == pytest.approx(ledger.baseline_grams - ledger.grams_given)
    assert ledger.baseline_cycles >= (1 if ledger.cycles_given else 0)


def test_rule_outcomes_file_counts_and_reasons_per_rule_version():
    counts = [
        rule_outcomes.SuggestionCount("a", 1, "deescalate_ivig", "approved", 3),
        rule_outcomes.SuggestionCount("a", 1, "deescalate_ivig", "rejected", 2),
        rule_outcomes.SuggestionCount("a", 2, "deescalate_ivig", "pending", 1),
    ]
    reasons = [
        rule_outcomes.ReasonCount("a", 1, "b reason", 1),
        rule_outcomes.ReasonCount("a", 1, "a reason", 1),
    ]
    first, second = rule_outcomes.rule_outcomes(counts, reasons)
    assert (first.rule_version, first.total, first.decided) == (1, 5, 5)
    assert first.approved_percent == pytest.approx(60)
    assert first.reasons == (("a reason", 1), ("b reason", 1))
    assert second.approved_percent is None and second.counts["pending"] == 1
    with pytest.raises(ValueError, match="outcome"):
        rule_outcomes.rule_outcomes([rule_outcomes.SuggestionCount("a", 1, "k", "lost", 1)], [])
