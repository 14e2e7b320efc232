"""The order check (order-sign): the pages' dosing rules on an EHR's draft, and its corrections.

Plain values only; the HTTP side is tests/web/test_cds_order_sign.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import order_check
from app.domain.order_check import Correction, DraftDose, PatientFacts, Rules, check_order
from tests.unit.test_dosing import LIMITS, PRODUCTS

RULES = Rules(PRODUCTS, LIMITS, interval_tolerance_days=3)
# DOMAIN.md's worked example: 100 kg, 175 cm man; adjusted weight 82.28 kg.
PATIENT = PatientFacts(weight_kg=100.0, height_cm=175.0, sex="male", policy_basis="adjusted")
START = dt.date(2026, 12, 7)


def draft(**changes: object) -> DraftDose:
    values: dict[str, object] = {
        "product": "Octagam 10%",
        "amount": 1.0,
        "unit": "g/kg",
        "days_per_cycle": 2,
        "interval_weeks": 4,
        "starts_on": START,
    }
    values.update(changes)
    return DraftDose(**values)  # type: ignore[arg-type]


def rules_of(check: order_check.OrderCheck) -> list[str]:
    return [f.rule for f in check.findings]


def apply(order: DraftDose, correction: Correction) -> DraftDose:
    return dataclasses.replace(
        order,
        amount=correction.amount if correction.amount is not None else order.amount,
        rate=correction.rate if correction.rate is not None else order.rate,
        weight_basis=correction.weight_basis or order.weight_basis,
        starts_on=correction.starts_on or order.starts_on,
    )


def test_the_label_dose_passes_on_the_worked_example():
    check = check_order(draft(), PATIENT, RULES)
    assert check.findings == ()
    assert round(check.dosing_weight_kg, 2) == 82.28
    assert check.result is not None and check.result.rounding.rounded_g == 82


def test_2_4_g_per_kg_a_cycle_is_a_hard_stop_corrected_to_the_maximum():
    check = check_order(draft(amount=1.2), PATIENT, RULES)
    (finding,) = check.findings
    assert finding.rule == "dose" and finding.hard
    assert finding.correction == Correction(amount=1.0)


def test_a_gram_dose_is_per_day_on_the_dosing_weight():
    check = check_order(draft(amount=82, unit="g"), PATIENT, RULES)
    assert check.findings == () and round(check.dose_g_per_kg_per_cycle, 3) == 1.993


def test_grams_ordered_above_the_products_maximum_are_a_hard_stop_even_if_vials_round_under():
    # Bivigam's maximum is 140 g a day; 142 g rounds to 140 g in its 5 and 10 g vials.
    big = PatientFacts(weight_kg=250.0, height_cm=190.0, sex="male", policy_basis="adjusted")
    check = check_order(draft(product="Bivigam", amount=142.0, unit="g"), big, RULES)
    (finding,) = check.findings
    assert finding.rule == "grams-per-day" and finding.hard
    assert "142 g" in finding.message and "140 g" in finding.message
    assert finding.correction == Correction(amount=140.0)
    assert check_order(draft(product="Bivigam", amount=140.0, unit="g"), big, RULES).findings == ()
    # Just under the maximum, not whole vials: the soft rounding note, as before.
    (soft,) = check_order(draft(product="Bivigam", amount=139.0, unit="g"), big, RULES).findings
    assert soft.rule == "vial-rounding" and not soft.hard


def test_the_stated_basis_is_used_and_the_clinics_proposed():
    check = check_order(draft(amount=100, unit="g", weight_basis="actual"), PATIENT, RULES)
    (finding,) = check.findings
    assert finding.rule == "weight-basis" and not finding.hard
    assert finding.correction == Correction(amount=82, weight_basis="adjusted")


def test_too_soon_after_the_last_cycle_is_soft_and_moved_to_the_interval():
    patient = dataclasses.replace(PATIENT, last_cycle_started_on=START - dt.timedelta(days=24))
    (finding,) = check_order(draft(), patient, RULES).findings
    assert finding.rule == "interval-too-soon" and not finding.hard
    assert finding.correction == Correction(starts_on=START + dt.timedelta(days=4))
    patient = dataclasses.replace(PATIENT, last_cycle_started_on=START - dt.timedelta(days=25))
    assert check_order(draft(), patient, RULES).findings == ()


def test_rates_are_judged_in_every_unit_against_the_at_risk_cap():
    at_risk = dataclasses.replace(PATIENT, renal_risk=True)
    for rate, unit in ((0.035, "mL/kg/min"), (3.5, "mg/kg/min"), (0.035 * 82.28 * 60, "mL/h")):
        check = check_order(draft(rate=rate, rate_unit=unit), at_risk, RULES)
        (finding,) = check.findings
        assert finding.rule == "rate" and finding.hard, unit
        assert check_order(draft(rate=rate, rate_unit=unit), PATIENT, RULES).findings == ()
    (finding,) = check_order(draft(rate=200, rate_unit="mL/h"), at_risk, RULES).findings
    assert finding.correction == Correction(rate=148.1)  # 0.03 x 82.28 x 60 = 148.10


def test_measurements_that_cannot_carry_a_dose_make_the_order_uncheckable():
    import pytest

    with pytest.raises(order_check.Uncheckable, match="height_cm"):
        check_order(draft(), dataclasses.replace(PATIENT, height_cm=100.0), RULES)


def test_an_order_not_saying_its_interval_is_checked_but_for_the_interval_and_says_so():
    patient = dataclasses.replace(PATIENT, last_cycle_started_on=START - dt.timedelta(days=3))
    check = check_order(draft(amount=0.4, days_per_cycle=5, interval_weeks=None), patient, RULES)
    (finding,) = check.findings  # not judged "too soon": the interval is not guessed
    assert finding.rule == "interval-unknown" and not finding.hard
    assert finding.correction is None and "not checked" in finding.message
    assert round(check.dose_g_per_kg_per_cycle, 6) == 2.0
    check = check_order(draft(amount=0.5, days_per_cycle=5, interval_weeks=None), PATIENT, RULES)
    assert rules_of(check) == ["dose", "interval-unknown"]


def test_every_rule_id_is_documented():
    found = set()
    for order in (
        draft(amount=1.2),
        draft(days_per_cycle=7),
        draft(interval_weeks=1),
        draft(amount=1.0, days_per_cycle=1),
        draft(amount=81.5, unit="g"),
        draft(product="Unknown"),
        draft(days_per_cycle=5, amount=0.4, interval_weeks=None),
    ):
        found |= set(rules_of(check_order(order, PATIENT, RULES)))
    assert found <= set(order_check.RULES)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.floats(0.1, 3.0),
    unit=st.sampled_from(["g/kg", "g"]),
    days=st.integers(1, 5),
    interval=st.integers(2, 12),
    basis=st.sampled_from([None, "actual", "ideal", "adjusted"]),
    rate=st.one_of(st.none(), st.floats(0.005, 0.1)),
    weight=st.floats(40, 160),
    gap=st.one_of(st.none(), st.integers(0, 100)),
    product=st.sampled_from(sorted(PRODUCTS)),
)
def test_applying_a_findings_correction_clears_that_finding(
    amount, unit, days, interval, basis, rate, weight, gap, product
):
    """Law: a correction, applied to the draft as sent, leaves no finding of its rule."""
    order = draft(
        amount=amount * (weight if unit == "g" else 1),
        unit=unit,
        days_per_cycle=days,
        interval_weeks=interval,
        weight_basis=basis,
        rate=rate,
        rate_unit="mL/kg/min" if rate is not None else None,
        product=product,
    )
    patient = dataclasses.replace(
        PATIENT,
        weight_kg=weight,
        last_cycle_started_on=None if gap is None else START - dt.timedelta(days=gap),
    )
    check = check_order(order, patient, RULES)
    assert [f.hard for f in check.findings] == sorted(
        (f.hard for f in check.findings), reverse=True
    )
    for finding in check.findings:
        if finding.correction is None:
            continue
        again = check_order(apply(order, finding.correction), patient, RULES)
        assert finding.rule not in rules_of(again), (finding, again.findings)
