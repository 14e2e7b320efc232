"""FHIR R4 over real HTTP: $everything, the NDJSON export and the lab import.

Every exported resource is parsed back through fhir.resources; the EHR signs its JWT as for
CDS Hooks (keys made here, registered in [[cds.clients]]); nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from collections import Counter

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationrequest import MedicationRequest

from app import clock
from app.domain import fhir as fhir_domain
from app.domain import taper
from app.models import AuditEvent, Infusion, InfusionStatus, InfusionVial, LabResult, TaperPlan
from app.services import adverse_events, assessments, fhir_export, infusions, tapers
from app.services import labs as lab_service
from app.services import regimens as regimen_service
from tests.conftest import csrf_of, login, make_settings
from tests.db.clinic_fixtures import (
    Clinic,
    at,
    give,
    make_clinic,
    make_patient,
    regimen_input,
    review_course,
)
from tests.web.test_recalls import record_visit

ISSUER = "https://ehr.hospital.test"
SYSTEM = "urn:oid:2.16.840.1.113883.3.0000"  # config.toml's placeholder MRN system
AUDIENCE = "http://localhost/fhir"  # the test client's host + /fhir ([cds].audience is "")
MONDAY = dt.date(2026, 10, 5)
CYCLE_2 = MONDAY + dt.timedelta(weeks=4)
CYCLE_3 = MONDAY + dt.timedelta(weeks=8)
REVIEWED_ON = CYCLE_3 - dt.timedelta(days=5)
V2_FROM = CYCLE_2 + dt.timedelta(weeks=6)
TAPER_V1 = MONDAY
TAPER_V2 = MONDAY + dt.timedelta(days=10)
TODAY = REVIEWED_ON + dt.timedelta(days=2)
SCORES = {
    "cdasi_activity": 30.0,
    "cdasi_damage": 8.0,
    "mmt8": 60.0,
    "ck": 900.0,
    "ck_uln": 200.0,
    "physician_global": 6.0,
    "patient_global": 7.0,
    "haq": 1.5,
    "extramuscular_global": 5.0,
}
BETTER = SCORES | {"cdasi_activity": 12.0, "mmt8": 74.0, "ck": 250.0, "physician_global": 2.0}
V2_TAPER = tapers.PlanInput(
    drug="prednisone",
    start_mg=30,
    template="banded",
    starts_on=TAPER_V2,
    reason="Responding: taper",
    based_on_version=1,
)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def settings(database_url, rsa_key):
    public = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    jwks = {"keys": [public | {"kid": "rsa-1", "alg": "RS384", "use": "sig"}]}
    clients = [{"issuer": ISSUER, "name": "Hospital EHR", "jwks": json.dumps(jwks)}]
    return make_settings(
        database_url,
        cds={"clients": clients},
        fhir={"max_bundle_entries": 5, "max_bundle_bytes": 20_000},
    )


def ehr(key, aud: str = AUDIENCE) -> dict[str, str]:
    now = int(clock.now().timestamp())  # the app's clock is the test's
    claims = {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = jwt.encode(claims, key, algorithm="RS384", headers={"kid": "rsa-1", "typ": "JWT"})
    return {"Authorization": f"Bearer {token}"}


def live(db_session, clinic: Clinic) -> list[Infusion]:
    return list(
        db_session.scalars(
            sa.select(Infusion)
            .where(Infusion.patient_id == clinic.patient.id)
            .order_by(Infusion.planned_date, Infusion.day_number)
        )
    )


def assess(db_session, clinic: Clinic, on: dt.date, scores: dict[str, float]) -> None:
    assessments.record_assessment(
        db_session,
        clinic.nursing,
        clinic.patient.id,
        assessments.AssessmentInput(assessed_on=on, scores=scores),
        on,
    )


@pytest.fixture
def record(db_session, make_user, settings) -> Clinic:
    """Two regimen versions, two taper versions, cycle 1 given (day 1 with two lots from the
    visit, day 2 with a typed lot), a missed infusion, assessments, labs, an adverse event."""
    clock.set_now(at(MONDAY - dt.timedelta(days=7), 9))
    clinic = make_clinic(db_session, make_user, settings)
    clinic.patient.treating_physician_id = clinic.physician.id
    db_session.commit()
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(starts_on=MONDAY), settings
    )
    assess(db_session, clinic, MONDAY - dt.timedelta(days=3), SCORES)
    tapers.create_plan(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        tapers.PlanInput(
            drug="prednisone", start_mg=40, template="banded", starts_on=TAPER_V1, reason="Start"
        ),
        settings,
        today=TAPER_V1,
    )
    first, second, *later = live(db_session, clinic)
    clock.set_now(at(MONDAY + dt.timedelta(days=3), 9))
    record_visit(db_session, clinic, first, settings, "A123", "B456")
    clock.set_now(at(CYCLE_2 + dt.timedelta(days=1), 20))
    give(db_session, clinic.nursing, second, settings, lot="TYPED-9")
    missed = next(i for i in later if i.planned_date == CYCLE_2)
    infusions.set_status(
        db_session, clinic.nursing, missed.id, InfusionStatus.MISSED, "Patient unwell"
    )
    adverse_events.record_adverse_event(
        db_session,
        clinic.nursing,
        first.id,
        adverse_events.AdverseEventInput(
            event_type="headache", grade=2, occurred_on=MONDAY, description="Headache after"
        ),
        CYCLE_2,
    )
    tapers.create_plan(db_session, clinic.doctor, clinic.patient.id, V2_TAPER, settings, TAPER_V2)
    for test, value, unit in (("creatinine", 70, None), ("egfr", 88, None), ("ck", 250, None)):
        lab_service.record_lab(
            db_session,
            clinic.nursing,
            clinic.patient.id,
            lab_service.LabInput(test=test, value=value, taken_on=CYCLE_2, unit=unit),
            CYCLE_2,
            settings.labs,
        )
    clock.set_now(at(REVIEWED_ON, 9))
    review_course(db_session, clinic, settings, REVIEWED_ON, "change", BETTER)
    clock.set_now(at(REVIEWED_ON + dt.timedelta(days=1), 9))
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=V2_FROM, interval_weeks=6, based_on_version=1, reason="Widen"),
        settings,
    )
    clock.set_now(at(TODAY, 10))
    return clinic


def parse_back(resource: dict):
    """The resource through its own fhir.resources model, and back to JSON unchanged."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert model.model_dump(mode="json", exclude_none=True) == resource
    return model


def logged_in(app, user):
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    return client


def everything(client, patient_id: int, **kwargs):
    return client.get(f"/fhir/Patient/{patient_id}/$everything", **kwargs)


def by_type(bundle: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return found


# --- $everything -------------------------------------------------------------------------------


def test_everything_is_a_bundle_whose_every_resource_parses_back(app, record, db_session):
    response = everything(logged_in(app, record.physician), record.patient.id)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "application/fhir+json"
    bundle = response.get_json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    # Bundle.total counts the matches (the Patient), not the included resources.
    modes = Counter(entry["search"]["mode"] for entry in bundle["entry"])
    assert bundle["total"] == modes["match"] == 1
    assert modes["include"] == len(bundle["entry"]) - 1
    for entry in bundle["entry"]:
        resource = entry["resource"]
        parse_back(resource)
        assert entry["fullUrl"] == f"{AUDIENCE}/{resource['resourceType']}/{resource['id']}"
    found = by_type(bundle)
    assert Counter({k: len(v) for k, v in found.items()}) == Counter(
        Patient=1,
        MedicationRequest=4,  # two regimen versions, two taper versions
        MedicationAdministration=2,
        Appointment=len(live(db_session, record)),
        Observation=len(found["Observation"]),
        AdverseEvent=1,
    )
    ids = [r["id"] for r in (e["resource"] for e in bundle["entry"])]
    assert len(ids) == len(set(ids))


def test_patient_carries_the_mrn_under_the_configured_system(app, record):
    bundle = everything(logged_in(app, record.nurse), record.patient.id).get_json()
    (patient,) = by_type(bundle)["Patient"]
    assert patient["id"] == str(record.patient.id)
    assert {"system": SYSTEM, "value": "T-100"}.items() <= patient["identifier"][0].items()
    assert patient["birthDate"] == "1970-01-01"
    assert patient["gender"] == "male"


def test_each_regimen_version_is_a_request_with_its_dose_days_and_interval(app, record):
    bundle = everything(logged_in(app, record.nurse), record.patient.id).get_json()
    regimens = [r for r in by_type(bundle)["MedicationRequest"] if r["id"].startswith("regimen")]
    first, second = regimens
    assert (first["status"], second["status"]) == ("completed", "active")
    repeat = first["dosageInstruction"][0]["timing"]["repeat"]
    assert repeat == {
        "boundsPeriod": {
            "start": MONDAY.isoformat(),
            "end": (V2_FROM - dt.timedelta(days=1)).isoformat(),
        },
        "frequency": 2,
        "period": 4,
        "periodUnit": "wk",
    }
    assert second["dosageInstruction"][0]["timing"]["repeat"]["period"] == 6
    ordered, calculated = first["dosageInstruction"][0]["doseAndRate"]
    assert ordered["doseQuantity"] == {
        "value": 1.0,  # 2 g/kg per cycle over 2 days
        "unit": "g/kg",
        "system": "http://unitsofmeasure.org",
        "code": "g/kg",
    }
    assert calculated["type"]["coding"][0]["code"] == "calculated"
    assert first["dosageInstruction"][0]["maxDosePerPeriod"]["denominator"]["value"] == 4


def test_the_taper_request_reproduces_the_plans_steps_and_dates_exactly(
    app, record, db_session, settings
):
    bundle = everything(logged_in(app, record.nurse), record.patient.id).get_json()
    old, new = (r for r in by_type(bundle)["MedicationRequest"] if r["id"].startswith("taper"))
    assert (old["status"], new["status"]) == ("stopped", "active")
    planned = taper.date_steps(tapers.build_steps(V2_TAPER, settings), TAPER_V2)
    dosages = MedicationRequest.model_validate(new).dosageInstruction
    assert [
        (
            d.sequence,
            float(d.doseAndRate[0].doseQuantity.value),
            d.timing.repeat.boundsPeriod.start,
            d.timing.repeat.boundsPeriod.end,
        )
        for d in dosages
    ] == [
        (
            s.index + 1,
            s.step.mg_per_day,
            s.starts_on,
            s.ends_on - dt.timedelta(days=1),
        )
        for s in planned
    ]
    # Back to back: each step starts the day after the one before it ends.
    for before, after in itertools.pairwise(dosages):
        end = before.timing.repeat.boundsPeriod.end
        assert after.timing.repeat.boundsPeriod.start == end + dt.timedelta(days=1)
    # The stored steps agree too (the plan as the database holds it).
    plan = db_session.scalars(
        sa.select(TaperPlan).where(
            TaperPlan.patient_id == record.patient.id, TaperPlan.version == 2
        )
    ).one()
    assert [s.mg_per_day for s in plan.steps] == [
        float(d.doseAndRate[0].doseQuantity.value) for d in dosages
    ]
    # Version 1 ran only its first step, until version 2 started.
    (ran,) = old["dosageInstruction"]
    assert ran["timing"]["repeat"]["boundsPeriod"] == {
        "start": TAPER_V1.isoformat(),
        "end": (TAPER_V2 - dt.timedelta(days=1)).isoformat(),
    }


def test_an_alternate_day_step_is_two_dosages_of_one_sequence():
    step = fhir_domain.StepRow(0, 20, 6, 10, False, "planned", MONDAY, None, None)
    stop = fhir_domain.StepRow(1, 0, 7, None, True, "planned", MONDAY + dt.timedelta(6), None, None)
    first, last = fhir_domain.step_bounds([stop, step])
    assert (first.first_day, first.last_day) == (MONDAY, MONDAY + dt.timedelta(days=5))
    assert (last.first_day, last.last_day) == (MONDAY + dt.timedelta(6), MONDAY + dt.timedelta(6))
    dosages = fhir_export.step_dosages("prednisone", first)
    assert [(d["sequence"], d["doseAndRate"][0]["doseQuantity"]["value"]) for d in dosages] == [
        (1, 20),
        (1, 10),
    ]
    assert [d["timing"]["repeat"]["boundsPeriod"]["start"] for d in dosages] == [
        MONDAY.isoformat(),
        (MONDAY + dt.timedelta(days=1)).isoformat(),
    ]
    assert {d["timing"]["repeat"]["period"] for d in dosages} == {2}


def test_given_infusions_carry_their_lots_and_expiry(app, record, db_session):
    bundle = everything(logged_in(app, record.nurse), record.patient.id).get_json()
    visit, typed = by_type(bundle)["MedicationAdministration"]
    vials = db_session.scalars(sa.select(InfusionVial).order_by(InfusionVial.id)).all()
    lots = {
        (m["batch"]["lotNumber"], m["batch"]["expirationDate"][:10])
        for m in visit["contained"]
        if "batch" in m
    }
    assert lots == {(v.lot_number, v.expires_on.isoformat()) for v in vials}
    assert {v.lot_number for v in vials} == {"A123", "B456"}
    assert visit["medicationReference"] == {"reference": "#given"}
    assert visit["status"] == "completed"
    assert visit["effectivePeriod"]["start"].endswith("Z")
    assert typed["contained"][0]["batch"] == {"lotNumber": "TYPED-9"}
    assert typed["dosage"]["dose"]["unit"] == "g"


def test_an_administration_says_what_was_given_even_when_it_was_nothing(record, db_session):
    given = next(i for i in live(db_session, record) if i.given_grams is not None)
    assert fhir_export.administration(given)["dosage"]["dose"]["value"] == given.given_grams
    given.given_grams = 0.0  # the service refuses 0 g; the export must not read it as unset
    assert fhir_export.administration(given)["dosage"]["dose"]["value"] == 0
    given.given_grams = None
    dose = fhir_export.administration(given)["dosage"]["dose"]["value"]
    assert dose == given.planned_grams
    db_session.rollback()


def test_appointments_map_our_statuses(app, record, db_session):
    bundle = everything(logged_in(app, record.nurse), record.patient.id).get_json()
    appointments = {a["id"]: a["status"] for a in by_type(bundle)["Appointment"]}
    expected = {
        f"appointment-{i.id}": fhir_domain.APPOINTMENT_STATUS[i.status]
        for i in live(db_session, record)
    }
    assert appointments == expected
    assert {"fulfilled", "noshow", "booked"} <= set(appointments.values())


def test_observations_code_scores_locally_and_labs_by_loinc_with_ucum(app, record):
    bundle = everything(logged_in(app, record.nurse), record.patient.id).get_json()
    observations = by_type(bundle)["Observation"]
    codes = Counter(
        (o["code"]["coding"][0]["system"], o["code"]["coding"][0]["code"]) for o in observations
    )
    local = fhir_domain.LOCAL_SYSTEM
    assert codes[(local, "cdasi-activity")] == 2
    assert codes[(local, "cdasi-damage")] == 2
    assert codes[(local, "mmt8")] == 2
    assert codes[(local, "tis")] >= 1  # against the baseline: the review's assessment
    assert codes[("http://loinc.org", "14682-9")] == 1  # creatinine
    assert codes[("http://loinc.org", "33914-3")] == 1  # eGFR
    assert codes[("http://loinc.org", "2157-6")] == 3  # CK: two assessments and one lab
    creatinine = next(o for o in observations if o["code"]["coding"][0]["code"] == "14682-9")
    assert creatinine["valueQuantity"] == {
        "value": 70.0,
        "unit": "µmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "umol/L",
    }
    egfr = next(o for o in observations if o["code"]["coding"][0]["code"] == "33914-3")
    assert egfr["valueQuantity"]["code"] == "mL/min/{1.73_m2}"
    assert creatinine["referenceRange"] == [
        {
            "low": creatinine["valueQuantity"] | {"value": 45.0},
            "high": creatinine["valueQuantity"] | {"value": 84.0},
        }
    ]


def test_the_adverse_event_names_the_infusion_suspected(app, record, db_session):
    bundle = everything(logged_in(app, record.nurse), record.patient.id).get_json()
    (event,) = by_type(bundle)["AdverseEvent"]
    first = live(db_session, record)[0]
    assert event["suspectEntity"] == [
        {"instance": {"reference": f"MedicationAdministration/administration-{first.id}"}}
    ]
    assert event["severity"]["coding"][0]["code"] == "moderate"
    assert event["severity"]["text"] == "CTCAE grade 2"
    assert event["seriousness"]["coding"][0]["code"] == "non-serious"


def test_everything_is_audited_and_an_unknown_patient_is_a_404_outcome(app, record, db_session):
    client = logged_in(app, record.nurse)
    assert everything(client, record.patient.id).status_code == 200
    row = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "fhir.everything")
    ).one()
    assert (row.entity_type, row.entity_id, row.actor_user_id) == (
        "patient",
        str(record.patient.id),
        record.nurse.id,
    )
    assert row.after["resources"]["Patient"] == 1
    missing = everything(client, 999_999)
    assert missing.status_code == 404
    assert missing.content_type == "application/fhir+json"
    outcome = missing.get_json()
    parse_back(outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"
    assert "999999" in outcome["issue"][0]["diagnostics"]


def test_staff_api_tokens_and_the_ehrs_jwt_read_it_and_nobody_else(app, record, bearer, rsa_key):
    client = app.test_client()
    assert everything(client, record.patient.id, headers=bearer(record.nurse)).status_code == 200
    by_ehr = everything(client, record.patient.id, headers=ehr(rsa_key))
    assert by_ehr.status_code == 200, by_ehr.get_json()
    anonymous = everything(client, record.patient.id)
    assert anonymous.status_code == 401
    assert anonymous.get_json()["issue"][0]["code"] == "login"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong_aud = everything(client, record.patient.id, headers=ehr(rsa_key, aud="http://x/fhir"))
    assert wrong_aud.status_code == 401
    headers = ehr(rsa_key)
    assert everything(client, record.patient.id, headers=headers).status_code == 200
    replayed = everything(client, record.patient.id, headers=headers)
    assert replayed.status_code == 401
    assert "already used" in replayed.get_json()["issue"][0]["diagnostics"]
    not_a_token = everything(client, record.patient.id, headers={"Authorization": "Bearer x"})
    assert not_a_token.status_code == 401


# --- the NDJSON export -------------------------------------------------------------------------


def test_the_cli_writes_one_ndjson_file_per_type_each_line_parsing(app, record, tmp_path):
    result = app.test_cli_runner().invoke(args=["fhir", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(f"{kind}.ndjson" for kind in fhir_export.RESOURCE_TYPES)
    counts = {}
    for kind in fhir_export.RESOURCE_TYPES:
        lines = (tmp_path / "out" / f"{kind}.ndjson").read_text(encoding="utf-8").splitlines()
        for line in lines:
            resource = json.loads(line)
            assert resource["resourceType"] == kind
            parse_back(resource)
        counts[kind] = len(lines)
        assert f"{kind}.ndjson: {len(lines)}" in result.output
    assert counts["Patient"] == 1
    assert counts["MedicationRequest"] == 4
    assert counts["MedicationAdministration"] == 2


# --- the lab import ----------------------------------------------------------------------------


def observation(patient: str | dict, code="14682-9", value=70.0, unit="umol/L", **changes):
    subject = {"reference": patient} if isinstance(patient, str) else {"identifier": patient}
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": subject,
        "effectiveDateTime": f"{TODAY.isoformat()}T08:30:00-05:00",
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
    resource.update(changes)
    return {key: value for key, value in resource.items() if value is not None}


def transaction(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in resources
        ],
    }


def post(client, body, headers=None, content_type="application/fhir+json"):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/fhir", data=data, headers=headers or {}, content_type=content_type)


def rows(db_session) -> tuple[int, int]:
    labs = db_session.scalar(sa.select(sa.func.count()).select_from(LabResult))
    audits = db_session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    return labs, audits


def test_an_ehr_sends_labs_by_reference_and_by_mrn_converting_units(
    app, record, db_session, rsa_key
):
    ours = f"Patient/{record.patient.id}"
    mrn = {"system": SYSTEM, "value": "T-100"}
    before = rows(db_session)
    response = post(
        app.test_client(),
        transaction(
            observation(ours, "2160-0", 1.1, "mg/dL"),  # creatinine by mass: to µmol/L
            observation(mrn, "62238-1", 75, "mL/min/{1.73_m2}"),
            observation(ours, "718-7", 12.5, "g/dL"),  # haemoglobin: to g/L
            observation(
                mrn,
                "2157-6",
                410,
                "U/L",
                referenceRange=[{"high": {"value": 190, "unit": "U/L"}}],
            ),
        ),
        headers=ehr(rsa_key),
    )
    assert response.status_code == 200, response.get_json()
    assert response.content_type == "application/fhir+json"
    answer = response.get_json()
    parse_back(answer)
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 4
    results = db_session.scalars(
        sa.select(LabResult).where(LabResult.taken_on == TODAY).order_by(LabResult.id)
    ).all()
    assert [(r.test, r.value, r.unit) for r in results] == [
        ("creatinine", pytest.approx(97.24), "µmol/L"),
        ("egfr", 75.0, "mL/min/1.73 m²"),
        ("hemoglobin", 125.0, "g/L"),
        ("ck", 410.0, "U/L"),
    ]
    assert (results[3].ref_low, results[3].ref_high) == (None, 190.0)
    assert (results[0].ref_low, results[0].ref_high) == (45.0, 84.0)  # the default range
    assert [e["response"]["location"] for e in answer["entry"]] == [
        f"Observation/lab-{r.id}" for r in results
    ]
    labs_after, audits_after = rows(db_session)
    # The lab service's row per result, and one for the import.
    assert (labs_after - before[0], audits_after - before[1]) == (4, 5)
    imported = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "fhir.lab_import")
    ).one()
    assert imported.actor_label == f"ehr:{ISSUER}"
    assert imported.after["converted"] == {"0": "mg/dL", "2": "g/dL"}


def test_the_mrn_names_the_patient_and_a_reference_that_disagrees_refuses_the_entry(
    app, record, db_session, rsa_key, settings
):
    """An EHR's Patient/<id> is in its own id space: beside our MRN it must agree with it."""
    other = make_patient(db_session, record.nursing, record.center, settings, mrn="T-999")
    db_session.commit()
    mrn = {"system": SYSTEM, "value": "T-100"}
    before = rows(db_session)
    for reference in (f"Patient/{other.id}", "Patient/999999"):
        disagreeing = observation(reference, "2157-6", 900, "U/L")
        disagreeing["subject"]["identifier"] = mrn
        response = post(
            app.test_client(),
            transaction(observation(mrn), disagreeing),
            headers=ehr(rsa_key),
        )
        assert response.status_code == 422, response.get_json()
        (issue,) = response.get_json()["issue"]
        assert issue["expression"] == ["Bundle.entry[1].resource.subject"]
        assert "T-100" in issue["diagnostics"] and reference in issue["diagnostics"]
        assert rows(db_session) == before
    # Beside another system's identifier, a reference may be in that system's ids: refused.
    foreign = observation(f"Patient/{record.patient.id}", "2157-6", 900, "U/L")
    foreign["subject"]["identifier"] = {"system": "urn:oid:9.9.9", "value": "E-1"}
    response = post(app.test_client(), transaction(foreign), headers=ehr(rsa_key))
    assert response.status_code == 422, response.get_json()
    (issue,) = response.get_json()["issue"]
    assert issue["expression"] == ["Bundle.entry[0].resource.subject"]
    assert rows(db_session) == before
    # Both naming the same patient: recorded on them; the MRN alone: resolved by it.
    agreeing = observation(f"Patient/{record.patient.id}", "2157-6", 901, "U/L")
    agreeing["subject"]["identifier"] = mrn
    by_mrn = observation({"system": SYSTEM, "value": " T-999 "}, "2157-6", 902, "U/L")
    response = post(app.test_client(), transaction(agreeing, by_mrn), headers=ehr(rsa_key))
    assert response.status_code == 200, response.get_json()
    got = db_session.scalars(sa.select(LabResult).where(LabResult.value.in_((901, 902)))).all()
    assert sorted((r.value, r.patient_id) for r in got) == [
        (901.0, record.patient.id),
        (902.0, other.id),
    ]


def test_a_result_taken_at_an_instant_is_filed_on_the_clinics_day(app, record, db_session, rsa_key):
    """03:00Z is 22:00 the evening before on the home center's clock (America/New_York)."""
    ours = f"Patient/{record.patient.id}"
    response = post(
        app.test_client(),
        transaction(
            observation(ours, "2157-6", 301, "U/L", effectiveDateTime=f"{TODAY}T03:00:00Z"),
            observation(ours, "2157-6", 302, "U/L", effectiveDateTime=f"{TODAY}T23:30:00-05:00"),
            observation(ours, "2157-6", 303, "U/L", effectiveDateTime=TODAY.isoformat()),
            observation(
                ours,
                "2157-6",
                304,
                "U/L",
                effectiveDateTime=None,
                effectivePeriod={"start": f"{TODAY}T04:59:00Z"},
            ),
        ),
        headers=ehr(rsa_key),
    )
    assert response.status_code == 200, response.get_json()
    got = db_session.scalars(
        sa.select(LabResult).where(LabResult.value.in_((301, 302, 303, 304)))
    ).all()
    day_before = TODAY - dt.timedelta(days=1)
    assert sorted((r.value, r.taken_on) for r in got) == [
        (301.0, day_before),
        (302.0, TODAY),
        (303.0, TODAY),  # a date is the day as sent
        (304.0, day_before),
    ]


def test_a_nurse_may_import_with_her_api_token_and_the_page_session_needs_csrf(
    app, record, bearer, make_user
):
    body = transaction(observation(f"Patient/{record.patient.id}"))
    assert post(app.test_client(), body, headers=bearer(record.nurse)).status_code == 200
    web = logged_in(app, record.nurse)
    assert post(web, body).status_code == 400  # no CSRF token from the page
    assert post(web, body, headers={"X-CSRF-Token": csrf_of(web)}).status_code == 200
    admin = post(app.test_client(), body, headers=bearer(make_user("admin")))
    assert admin.status_code == 403
    assert admin.get_json()["issue"][0]["code"] == "forbidden"
    assert post(app.test_client(), body).status_code == 401


@pytest.mark.parametrize(
    ("entry", "expression", "code"),
    [
        (
            lambda pid: observation("Patient/999999"),
            "Bundle.entry[1].resource.subject",
            "not-found",
        ),
        (
            lambda pid: observation({"system": SYSTEM, "value": "NOBODY"}),
            "Bundle.entry[1].resource.subject",
            "not-found",
        ),
        (
            lambda pid: observation(f"Patient/{pid}", code="2345-7"),  # glucose: not on our list
            "Bundle.entry[1].resource.code",
            "code-invalid",
        ),
        (
            lambda pid: observation(f"Patient/{pid}", unit="mmol/mol"),
            "Bundle.entry[1].resource.valueQuantity.unit",
            "value",
        ),
        (
            lambda pid: observation(f"Patient/{pid}", value=70_000),  # past the typo guard
            "Bundle.entry[1].resource.valueQuantity.value",
            "value",
        ),
        (
            lambda pid: {"resourceType": "Patient", "id": "x"},
            "Bundle.entry[1].resource.resourceType",
            "not-supported",
        ),
        (
            lambda pid: observation(f"Patient/{pid}", status="bogus"),
            "Bundle.entry[1].resource.status",
            "value",
        ),
        (
            lambda pid: observation(f"Patient/{pid}", valueQuantity={"value": "abc"}),
            "Bundle.entry[1].resource.valueQuantity.value",
            "structure",
        ),
    ],
)
def test_a_bad_entry_refuses_the_bundle_naming_it_and_nothing_is_written(
    app, record, bearer, db_session, entry, expression, code
):
    good = observation(f"Patient/{record.patient.id}")
    headers = bearer(record.nurse)
    before = rows(db_session)
    response = post(app.test_client(), transaction(good, entry(record.patient.id)), headers=headers)
    assert response.status_code == 422, response.get_json()
    outcome = response.get_json()
    parse_back(outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    assert [(i["expression"], i["code"]) for i in outcome["issue"]] == [([expression], code)]
    assert rows(db_session) == before


def test_every_bad_entry_is_named_at_once(app, record, bearer, db_session):
    headers = bearer(record.nurse)
    before = rows(db_session)
    response = post(
        app.test_client(),
        transaction(
            observation("Patient/999999"),
            observation(f"Patient/{record.patient.id}"),
            observation(f"Patient/{record.patient.id}", code="0000-0"),
        ),
        headers=headers,
    )
    assert response.status_code == 422
    assert [i["expression"][0] for i in response.get_json()["issue"]] == [
        "Bundle.entry[0].resource.subject",
        "Bundle.entry[2].resource.code",
    ]
    assert rows(db_session) == before


@pytest.mark.parametrize(
    ("body", "status", "expression", "text"),
    [
        (b'{"resourceType": "Bundle", "type": ', 400, "Bundle", "not JSON"),
        ({"resourceType": "Observation"}, 400, "resourceType", "send a Bundle"),
        (
            {"resourceType": "Bundle", "type": "batch", "entry": []},
            400,
            "Bundle.type",
            "transaction",
        ),
        ({"resourceType": "Bundle", "type": "transaction"}, 400, "Bundle.entry", "at least one"),
        ("six entries", 413, "Bundle.entry", "at most 5"),
        ("too many bytes", 413, "Bundle", "at most 20000"),
        (b"[1, 2]", 400, None, "must be an object"),
    ],
)
def test_a_bad_bundle_is_refused_whole(
    app, record, bearer, db_session, body, status, expression, text
):
    ours = f"Patient/{record.patient.id}"
    if body == "six entries":
        body = transaction(*(observation(ours) for _ in range(6)))
    elif body == "too many bytes":
        body = transaction(observation(ours, note=[{"text": "x" * 25_000}]))
    headers = bearer(record.nurse)
    before = rows(db_session)
    response = post(app.test_client(), body, headers=headers)
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/fhir+json"
    (issue,) = response.get_json()["issue"]
    assert issue.get("expression", [None])[0] == expression
    assert text in issue["diagnostics"]
    assert rows(db_session) == before


def test_a_bundle_not_sent_as_json_is_a_415(app, record, bearer):
    response = post(
        app.test_client(), "x=1", bearer(record.nurse), "application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.get_json()["resourceType"] == "OperationOutcome"
