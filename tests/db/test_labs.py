"""Lab results: checked against the clinic's lab list, audited, read back as the newest of a
few tests and as a flagged trend; a refused result writes nothing."""

import datetime as dt

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, LabResult
from app.services import labs as lab_service
from app.services.errors import InvalidInput, NotFound
from app.services.labs import LabInput
from tests.db.clinic_fixtures import Clinic, make_center, make_patient

TODAY = dt.date(2026, 12, 2)


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings)
    return holder


def counts(session) -> tuple[int, int]:
    labs = session.scalar(sa.select(sa.func.count()).select_from(LabResult))
    audits = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    return labs, audits


def record(session, clinic, settings, test="creatinine", value=70.0, taken_on=TODAY, **more):
    return lab_service.record_lab(
        session,
        clinic.nursing,
        clinic.patient.id,
        LabInput(test=test, value=value, taken_on=taken_on, **more),
        TODAY,
        settings.labs,
    )


def test_a_result_is_stored_with_the_configured_unit_and_default_range_and_audited(
    db_session, clinic, settings
):
    result = record(db_session, clinic, settings, value=130)
    assert (result.test, result.value, result.unit) == ("creatinine", 130, "µmol/L")
    assert (result.ref_low, result.ref_high) == (45, 84)  # config.toml's default
    assert result.recorded_by_id == clinic.nurse.id
    event = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "lab.record"))
    assert event.entity_type == "lab_result" and event.entity_id == str(result.id)
    assert event.after["value"] == 130 and event.after["range_from"] == "default"
    assert event.after["taken_on"] == TODAY.isoformat()


def test_the_labs_own_range_wins_and_one_bound_leaves_the_other_open(db_session, clinic, settings):
    own = record(db_session, clinic, settings, value=100, ref_low=59, ref_high=104)
    assert (own.ref_low, own.ref_high) == (59, 104)
    egfr = record(db_session, clinic, settings, test="egfr", value=55, ref_low=90)
    assert (egfr.ref_low, egfr.ref_high) == (90, None)


@pytest.mark.parametrize("unit", ["µmol/L", "umol/L", "μmol/l", " µmol / L "])
def test_the_configured_unit_may_be_written_the_usual_ways(db_session, clinic, settings, unit):
    assert record(db_session, clinic, settings, unit=unit).unit == "µmol/L"


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"test": "potassium"}, "test", "creatinine, egfr, hemoglobin, ck, aldolase, ldh"),
        ({"unit": "mg/dL"}, "unit", "µmol/L"),
        ({"value": 1.1}, "value", "1.1 µmol/L is outside the plausible 5-3000 µmol/L"),
        ({"value": 3001}, "value", "5-3000 µmol/L"),
        ({"test": "egfr", "value": 250}, "value", "1-200 mL/min/1.73 m²"),
        ({"test": "hemoglobin", "value": 12.5}, "value", "30-250 g/L"),
        ({"value": float("nan")}, "value", "give a number"),
        ({"ref_low": 90, "ref_high": 45}, "ref_low", "not be above ref_high (90 > 45"),
        ({"ref_high": 5000}, "ref_high", "0-3000 µmol/L"),
        ({"taken_on": TODAY + dt.timedelta(days=1)}, "taken_on", "not in the future"),
        ({"taken_on": dt.date(1969, 12, 31)}, "taken_on", "birth date (1970-01-01)"),
    ],
)
def test_a_bad_result_names_the_field_and_the_limit_and_writes_nothing(
    db_session, clinic, settings, values, field, words
):
    before = counts(db_session)
    with pytest.raises(InvalidInput) as refused:
        record(db_session, clinic, settings, **values)
    assert refused.value.field == field
    assert refused.value.message.startswith(f"{field}: ") and words in refused.value.message
    assert counts(db_session) == before


def test_an_unknown_patient_is_not_found(db_session, clinic, settings):
    before = counts(db_session)
    with pytest.raises(NotFound):
        lab_service.record_lab(
            db_session,
            clinic.nursing,
            999_999,
            LabInput(test="ck", value=100, taken_on=TODAY),
            TODAY,
            settings.labs,
        )
    assert counts(db_session) == before


def test_latest_is_the_newest_of_the_tests_asked_for(db_session, clinic, settings):
    pid = clinic.patient.id
    assert lab_service.latest(db_session, pid, ("creatinine", "egfr")) is None
    record(db_session, clinic, settings, test="creatinine", taken_on=dt.date(2026, 11, 1))
    egfr = record(db_session, clinic, settings, test="egfr", value=80, taken_on=TODAY)
    record(db_session, clinic, settings, test="ck", value=300, taken_on=TODAY)
    # Recorded later but taken earlier: not the newest.
    record(db_session, clinic, settings, test="creatinine", taken_on=dt.date(2026, 11, 20))
    assert lab_service.latest(db_session, pid, ("creatinine", "egfr")) == egfr
    assert lab_service.latest(db_session, pid, ("creatinine",)).taken_on == dt.date(2026, 11, 20)
    # On one day, the one recorded last.
    again = record(db_session, clinic, settings, test="creatinine", value=75, taken_on=TODAY)
    assert lab_service.latest(db_session, pid, ("creatinine", "egfr")) == again
    assert lab_service.latest(db_session, pid, ()) is None
    assert lab_service.latest(db_session, pid, ("aldolase",)) is None


def test_the_trend_is_per_test_in_list_order_oldest_first_and_flagged(db_session, clinic, settings):
    for day, value in ((3, 130), (1, 70), (2, 40)):
        record(db_session, clinic, settings, value=value, taken_on=dt.date(2026, 11, day))
    record(db_session, clinic, settings, test="ck", value=150, taken_on=dt.date(2026, 11, 1))
    record(db_session, clinic, settings, test="egfr", value=55, taken_on=dt.date(2026, 11, 1))
    trends = lab_service.trend(db_session, clinic.patient.id, settings.labs)
    assert [t.test for t in trends] == ["creatinine", "egfr", "ck"]  # config.toml's order
    creatinine = trends[0]
    assert (creatinine.label, creatinine.unit) == ("Creatinine", "µmol/L")
    assert [(v.value, v.flag) for v in creatinine.values] == [
        (70, None),
        (40, "low"),
        (130, "high"),
    ]
    assert creatinine.latest.taken_on == dt.date(2026, 11, 3)
    assert trends[1].values[0].flag == "low"  # eGFR below 60
    assert trends[2].values[0].flag is None  # CK within its upper limit
    newest_two = lab_service.trend(db_session, clinic.patient.id, settings.labs, per_test=2)
    assert [v.value for v in newest_two[0].values] == [40, 130]
    # Without the lab list: keys as labels, alphabetical.
    assert [t.label for t in lab_service.trend(db_session, clinic.patient.id)] == [
        "ck",
        "creatinine",
        "egfr",
    ]


def test_a_bound_itself_is_within_the_range():
    assert lab_service.flag_of(84, 45, 84) is None
    assert lab_service.flag_of(45, 45, 84) is None
    assert lab_service.flag_of(84.1, 45, 84) == "high"
    assert lab_service.flag_of(44.9, 45, None) == "low"
    assert lab_service.flag_of(1e6, None, None) is None
