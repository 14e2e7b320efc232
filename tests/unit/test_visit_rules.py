"""The visit's pure rules: every problem found at once, each naming its field and the limit."""

from __future__ import annotations

import datetime as dt

import pytest

from app.domain import visit
from app.domain.visit import Bound, VialUse

DAY = dt.date(2026, 10, 5)
NOW = dt.datetime(2026, 10, 5, 15, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=5)


def fields(problems) -> list[str]:
    return [p.field for p in problems]


def test_states_follow_their_order():
    visit.check_transition("check_in", "scheduled")
    visit.check_transition("complete", "in_chair")
    with pytest.raises(visit.VisitRejected) as refused:
        visit.check_transition("start", "scheduled")
    assert "the visit is scheduled; this needs it checked in" in str(refused.value)
    with pytest.raises(visit.VisitRejected):
        visit.check_transition("check_in", "given")


def test_a_time_is_neither_in_the_future_nor_before_the_step_before():
    assert visit.time_problems("at", NOW + dt.timedelta(minutes=4), NOW, SKEW) == []
    assert fields(visit.time_problems("at", NOW + dt.timedelta(minutes=6), NOW, SKEW)) == ["at"]
    earlier = visit.time_problems(
        "ended_at", NOW - dt.timedelta(hours=2), NOW, SKEW, NOW - dt.timedelta(hours=1), "the start"
    )
    assert [p.code for p in earlier] == ["time_order"]
    assert "before the start" in earlier[0].message


def test_the_days_dose_waits_past_the_threshold_either_way():
    assert not visit.day_dose(82, 86, 5).needs_approval  # +4.9%
    assert visit.day_dose(82, 87, 5).needs_approval  # +6.1%
    assert visit.day_dose(82, 76, 5).needs_approval  # -7.3%
    assert visit.day_dose(80, 84, 5).change_percent == 5.0
    assert not visit.day_dose(80, 84, 5).needs_approval  # exactly 5% is still within


def test_the_renal_check_is_soft_and_only_for_patients_at_risk():
    assert visit.renal_check(False, None, DAY, 30).soft_stop is None
    assert "no creatinine" in (visit.renal_check(True, None, DAY, 30).soft_stop or "")
    assert visit.renal_check(True, DAY - dt.timedelta(days=30), DAY, 30).soft_stop is None
    late = visit.renal_check(True, DAY - dt.timedelta(days=31), DAY, 30).soft_stop or ""
    assert "31 days ago" in late and "30 days" in late


BOUNDS = {
    "systolic_mmhg": Bound(50, 260, "mmHg"),
    "diastolic_mmhg": Bound(20, 160, "mmHg"),
    "pulse_bpm": Bound(20, 250, "/min"),
}


def test_every_vital_out_of_range_at_once_with_its_unit():
    problems = visit.vitals_problems(
        {"systolic_mmhg": 300, "diastolic_mmhg": 10, "pulse_bpm": 72}, BOUNDS
    )
    assert fields(problems) == ["systolic_mmhg", "diastolic_mmhg"]
    assert problems[0].message == "systolic_mmhg: 300 mmHg is outside 50-260 mmHg"
    below = visit.vitals_problems({"systolic_mmhg": 90, "diastolic_mmhg": 95}, BOUNDS)
    assert fields(below) == ["diastolic_mmhg"]
    assert fields(visit.vitals_problems({"pulse_bpm": None}, BOUNDS)) == ["vitals"]


def vials(
    *rows: tuple[str, float, int], product: str = "Octagam 10%", expires=DAY
) -> list[VialUse]:
    return [VialUse(product, lot, expires, size, count) for lot, size, count in rows]


SIZES = (1, 2, 5, 10, 20, 30)


def test_vials_add_up_to_the_grams_and_none_is_expired_or_of_another_brand():
    good = vials(("A", 30, 2), ("B", 20, 1), ("B", 2, 1))
    assert visit.vial_problems(good, 82, DAY, "Octagam 10%", SIZES) == []
    short = visit.vial_problems(good[:2], 82, DAY, "Octagam 10%", SIZES)
    assert [p.message for p in short] == ["vials: the vials add up to 80 g, not the 82 g given"]
    old = vials(("OLD", 30, 2), ("B", 20, 1), ("B", 2, 1), expires=DAY - dt.timedelta(days=1))
    assert {p.code for p in visit.vial_problems(old, 82, DAY, "Octagam 10%", SIZES)} == {
        "lot_expired"
    }
    other = vials(("A", 30, 2), ("B", 22, 1), product="Privigen")
    codes = {p.code for p in visit.vial_problems(other, 82, DAY, "Octagam 10%", SIZES)}
    assert codes == {"vial_product", "vial_size"}
    # Stopped early: the vials opened may hold more than was given, never less.
    assert visit.vial_problems(good, 50, DAY, "Octagam 10%", SIZES, stopped_early=True) == []
    assert fields(visit.vial_problems(good, 90, DAY, "Octagam 10%", SIZES, stopped_early=True)) == [
        "vials"
    ]


def test_lot_numbers_are_searched_as_printed():
    assert visit.normal_lot(" hb 2207a ") == "HB2207A"


def test_a_rate_above_the_maximum_is_refused_in_the_pumps_precision():
    # 82.28 kg at 0.04 mL/kg/min is 197.472 mL/h, shown and run as 197.5.
    assert visit.rate_problems(197.5, 82.28, 0.04, "step") == []
    [fast] = visit.rate_problems(197.6, 82.28, 0.04, "step")
    assert "above the maximum of 0.04 mL/kg/min (197.5 mL/h at 82.3 kg)" in fast.message
    assert visit.rate_problems(0, 82.28, 0.04, "paused") == []
    assert fields(visit.rate_problems(10, 82.28, 0.04, "paused")) == ["rate_ml_per_h"]
    assert fields(visit.rate_problems(0, 82.28, 0.04, "step")) == ["rate_ml_per_h"]


def test_slowing_runs_slower_than_the_rate_running():
    assert visit.slower_problems(50, 98.7, "slowed") == []
    [same] = visit.slower_problems(98.7, 98.7, "slowed")
    assert "slowed means below the 98.7 mL/h running" in same.message
    assert visit.slower_problems(150, 98.7, "step") == []
    assert visit.slower_problems(50, None, "slowed") == []
