"""The care API over HTTP: dose calculator, patients, regimens, infusions and the day board.

Regimens set over HTTP are planned against the real clock, so every start date here is
computed from today (the next Monday at least a week ahead), never a fixed calendar date.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app import clock
from app.clock import clinic_today as local_today
from app.models import AdverseEvent, AuditEvent, Infusion, Patient, Regimen
from app.services import regimens as regimen_service
from app.services.context import Actor
from app.services.scheduling import add_months
from tests.db.clinic_fixtures import at, make_center, regimen_input

NEW_YORK = ZoneInfo("America/New_York")

WORKED_EXAMPLE = {
    "weight_kg": 100,
    "height_cm": 175,
    "sex": "male",
    "dose_g_per_kg": 2.0,
    "days_per_cycle": 2,
    "weight_basis": "adjusted",
    "product": "Octagam 10%",
}


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def today_in_new_york() -> dt.date:
    return dt.datetime.now(NEW_YORK).date()


def next_monday(at_least_days: int = 7) -> dt.date:
    """The first Monday at least `at_least_days` after today (New York wall clock)."""
    day = today_in_new_york() + dt.timedelta(days=at_least_days)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def expected_bookings(starts_on: dt.date, today: dt.date) -> int:
    """Two days per 4-weekly cycle, from a Monday start through the 12-month horizon."""
    horizon = add_months(today, 12)
    return 2 * ((horizon - starts_on).days // 28 + 1)


def count_rows(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


class Staff:
    def __init__(self, make_user, bearer) -> None:
        self.physician = make_user("physician")
        self.nurse = make_user("nurse")
        self.admin = make_user("admin")
        self.doctor_headers = bearer(self.physician)
        self.nurse_headers = bearer(self.nurse)
        self.admin_headers = bearer(self.admin)


@pytest.fixture
def staff(make_user, bearer) -> Staff:
    return Staff(make_user, bearer)


@pytest.fixture
def center(db_session):
    center = make_center(db_session, chairs=3)
    db_session.commit()
    return center


def patient_body(center_id: int, mrn: str = "API-1", **changes: object) -> dict:
    body = {
        "mrn": mrn,
        "family_name": "Rivera",
        "given_name": mrn,
        "sex": "male",
        "birth_date": "1970-01-01",
        "home_center_id": center_id,
        "height_cm": 175,
        "weight_kg": 100,
    }
    body.update(changes)
    return body


def create_patient(client, staff: Staff, center_id: int, mrn: str = "API-1", **changes) -> dict:
    response = client.post(
        "/api/v1/patients",
        headers=staff.nurse_headers,
        json=patient_body(center_id, mrn, **changes),
    )
    assert response.status_code == 201, response.json
    return response.json


def regimen_body(starts_on: dt.date, **changes: object) -> dict:
    body = {
        "product": "Octagam 10%",
        "dose_g_per_kg": 2.0,
        "days_per_cycle": 2,
        "interval_weeks": 4,
        "weight_basis": "adjusted",
        "starts_on": starts_on.isoformat(),
        "preferred_time": "09:00",
        "reason": "Refractory cutaneous DM",
    }
    body.update(changes)
    return body


def post_regimen(client, headers, patient_id: int, starts_on: dt.date, **changes):
    return client.post(
        f"/api/v1/patients/{patient_id}/regimens",
        headers=headers,
        json=regimen_body(starts_on, **changes),
    )


def infusions_of(client, staff: Staff, patient_id: int) -> list[dict]:
    response = client.get(f"/api/v1/patients/{patient_id}/infusions", headers=staff.nurse_headers)
    assert response.status_code == 200, response.json
    return response.json["infusions"]


def local(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(NEW_YORK)


class Booked:
    """A patient with the worked-example regimen booked through the API."""

    def __init__(self, patient: dict, starts_on: dt.date, infusions: list[dict]) -> None:
        self.patient = patient
        self.starts_on = starts_on
        self.infusions = infusions

    @property
    def first(self) -> dict:
        return self.infusions[0]


def book(client, staff: Staff, center_id: int, mrn: str, starts_on: dt.date) -> Booked:
    patient = create_patient(client, staff, center_id, mrn)
    response = post_regimen(client, staff.doctor_headers, patient["id"], starts_on)
    assert response.status_code == 201, response.json
    return Booked(patient, starts_on, infusions_of(client, staff, patient["id"]))


@pytest.fixture
def booked(client, staff, center) -> Booked:
    return book(client, staff, center.id, "API-1", next_monday())


def given_body(infusion: dict, **changes: object) -> dict:
    """What a nurse records after the infusion ran as booked (the test clock moves past it)."""
    ended = dt.datetime.fromisoformat(infusion["ends_at"])
    clock.set_now(max(clock.now(), ended + dt.timedelta(minutes=20)))
    body = {
        "given_grams": 82,
        "started_at": infusion["starts_at"],
        "ended_at": infusion["ends_at"],
        "lot_numbers": "OCT-2291A, OCT-2291B",
        "max_rate_ml_per_kg_min": 0.04,
        "version": infusion["version"],
    }
    body.update(changes)
    return body


def get_infusion(client, staff: Staff, infusion_id: int) -> dict:
    response = client.get(f"/api/v1/infusions/{infusion_id}", headers=staff.nurse_headers)
    assert response.status_code == 200, response.json
    return response.json


# --- dose calculator -------------------------------------------------------------------------


def test_calculator_answers_the_worked_example_and_saves_nothing(client, staff, db_session):
    counted = (Regimen, Infusion, AuditEvent, Patient)
    before = {model: count_rows(db_session, model) for model in counted}
    response = client.post("/api/v1/dosing/ivig", headers=staff.nurse_headers, json=WORKED_EXAMPLE)
    assert response.status_code == 200, response.json
    dose = response.json
    assert dose["weight_basis"] == "adjusted"
    assert dose["ideal_body_weight_kg"] == 70.46
    assert dose["dosing_weight_kg"] == 82.28
    assert dose["grams_per_cycle"] == 164.56
    assert dose["grams_per_day"] == 82.28
    assert dose["rounded_grams_per_day"] == 82
    assert dose["rounded_grams_per_cycle"] == 164
    assert dose["vials_per_day"] == [
        {"size_g": 30, "count": 2},
        {"size_g": 20, "count": 1},
        {"size_g": 2, "count": 1},
    ]
    assert dose["vial_count_per_day"] == 4
    assert dose["within_tolerance"] is True
    assert dose["minutes_per_day"] == 295
    assert [step["rate_ml_per_kg_min"] for step in dose["rate_steps"]] == [0.01, 0.02, 0.03, 0.04]
    assert dose["max_rate_ml_per_kg_min"] == 0.04
    assert dose["soft_stops"] == []
    assert {model: count_rows(db_session, model) for model in counted} == before


def test_calculator_flags_a_thrombosis_risk_without_refusing(client, staff):
    response = client.post(
        "/api/v1/dosing/ivig",
        headers=staff.nurse_headers,
        json=WORKED_EXAMPLE | {"thrombosis_risk": True},
    )
    assert response.status_code == 200, response.json
    assert [stop["code"] for stop in response.json["soft_stops"]] == ["thrombosis_risk_daily_dose"]
    # At-risk patients run at most 0.03 mL/kg/min, so the same grams take longer.
    assert response.json["max_rate_ml_per_kg_min"] == 0.03
    assert response.json["minutes_per_day"] > 295


@pytest.mark.parametrize(
    ("change", "field", "in_message"),
    [
        ({"dose_g_per_kg": 2.5}, "dose_g_per_kg", "2.0"),
        ({"product": "Octagam 5%"}, "product", "Octagam 10%"),
        ({"days_per_cycle": 7}, "days_per_cycle", "5"),
        ({"weight_kg": "heavy"}, "weight_kg", ""),
        ({"weight_kg": 10}, "weight_kg", "25"),
    ],
    ids=["dose-above-label", "unknown-product", "seven-days", "weight-not-a-number", "weight-10kg"],
)
def test_calculator_refuses_bad_input_naming_the_field(
    client, staff, db_session, change, field, in_message
):
    before = count_rows(db_session, AuditEvent)
    response = client.post(
        "/api/v1/dosing/ivig", headers=staff.nurse_headers, json=WORKED_EXAMPLE | change
    )
    assert response.status_code == 422, response.json
    error = error_of(response)
    assert error["field"] == field and error["code"] == "invalid"
    assert error["message"].startswith(f"{field}: ")
    assert in_message in error["message"]
    assert count_rows(db_session, AuditEvent) == before


def test_calculator_needs_a_token(client):
    response = client.post("/api/v1/dosing/ivig", json=WORKED_EXAMPLE)
    assert response.status_code == 401 and error_of(response)["code"] == "unauthenticated"


# --- patients --------------------------------------------------------------------------------


def test_nurse_registers_a_patient_with_a_first_weight(client, staff, center):
    response = client.post(
        "/api/v1/patients", headers=staff.nurse_headers, json=patient_body(center.id, "API-7")
    )
    assert response.status_code == 201, response.json
    created = response.json
    assert created["mrn"] == "API-7" and created["home_center_id"] == center.id
    detail = client.get(f"/api/v1/patients/{created['id']}", headers=staff.nurse_headers).json
    assert [w["weight_kg"] for w in detail["weights"]] == [100]
    assert detail["height_cm"] == 175 and detail["current_regimen"] is None
    assert detail["weight_review_needed"] is False


def test_duplicate_mrn_is_409_and_writes_nothing(client, staff, center, db_session):
    create_patient(client, staff, center.id, "DUP-1")
    before = count_rows(db_session, Patient)
    response = client.post(
        "/api/v1/patients",
        headers=staff.nurse_headers,
        json=patient_body(center.id, " DUP-1 ", given_name="Other"),
    )
    assert response.status_code == 409
    error = error_of(response)
    assert error["field"] == "mrn" and error["code"] == "conflict"
    assert "DUP-1" in error["message"]
    assert count_rows(db_session, Patient) == before


def test_unknown_home_center_is_422(client, staff, center, db_session):
    before = count_rows(db_session, Patient)
    response = client.post(
        "/api/v1/patients",
        headers=staff.nurse_headers,
        json=patient_body(center.id + 1000, "NOWHERE-1"),
    )
    assert response.status_code == 422
    assert error_of(response)["field"] == "home_center_id"
    assert count_rows(db_session, Patient) == before


def test_admin_may_not_register_patients(client, staff, center, db_session):
    before = count_rows(db_session, Patient)
    response = client.post(
        "/api/v1/patients", headers=staff.admin_headers, json=patient_body(center.id, "ADM-1")
    )
    assert response.status_code == 403 and error_of(response)["code"] == "forbidden"
    assert count_rows(db_session, Patient) == before


# --- regimens --------------------------------------------------------------------------------


def test_physician_sets_the_worked_example_regimen_and_it_is_booked(client, staff, center):
    patient = create_patient(client, staff, center.id)
    starts_on = next_monday()
    today_before = today_in_new_york()
    response = post_regimen(client, staff.doctor_headers, patient["id"], starts_on)
    today_after = today_in_new_york()
    assert response.status_code == 201, response.json
    regimen, replan = response.json["regimen"], response.json["replan"]
    assert regimen["version"] == 1 and regimen["created_by_id"] == staff.physician.id
    assert regimen["dosing_weight_kg"] == pytest.approx(82.28, abs=0.005)
    assert regimen["grams_per_day"] == 82 and regimen["grams_per_cycle"] == 164
    assert regimen["minutes_per_day"] == 295 and regimen["center_id"] == center.id
    expected = {
        expected_bookings(starts_on, today_before),
        expected_bookings(starts_on, today_after),
    }
    assert replan["created"] in expected
    assert replan | {"created": 0} == {
        "created": 0,
        "moved": 0,
        "unchanged": 0,
        "cancelled": 0,
        "unbooked": 0,
    }

    infusions = infusions_of(client, staff, patient["id"])
    assert len(infusions) == replan["created"]
    assert {i["status"] for i in infusions} == {"scheduled"}
    first, second = infusions[0], infusions[1]
    assert (first["planned_date"], first["cycle_number"], first["day_number"]) == (
        starts_on.isoformat(),
        1,
        1,
    )
    assert (second["planned_date"], second["day_number"]) == (
        (starts_on + dt.timedelta(days=1)).isoformat(),
        2,
    )
    assert local(first["starts_at"]).time() == dt.time(9, 0)
    assert local(first["ends_at"]) - local(first["starts_at"]) == dt.timedelta(minutes=295)
    assert first["planned_grams"] == 82 and first["planned_vials"] == [[30, 2], [20, 1], [2, 1]]
    assert infusions[2]["planned_date"] == (starts_on + dt.timedelta(weeks=4)).isoformat()


def test_changing_the_regimen_moves_the_future_bookings(client, staff, center):
    patient = create_patient(client, staff, center.id)
    starts_on = next_monday()
    first = post_regimen(client, staff.doctor_headers, patient["id"], starts_on)
    assert first.status_code == 201
    booked = first.json["replan"]["created"]
    response = post_regimen(
        client,
        staff.doctor_headers,
        patient["id"],
        starts_on,
        dose_g_per_kg=1.5,
        based_on_version=1,
        reason="Responding: taper the dose",
    )
    assert response.status_code == 201, response.json
    assert response.json["regimen"]["version"] == 2
    assert response.json["regimen"]["grams_per_day"] == 62  # 61.71 g -> 30 + 30 + 2
    assert response.json["replan"] == {
        "created": 0,
        "moved": booked,
        "unchanged": 0,
        "cancelled": 0,
        "unbooked": 0,
    }
    infusions = infusions_of(client, staff, patient["id"])
    assert len(infusions) == booked
    assert {i["planned_grams"] for i in infusions} == {62}
    history = client.get(
        f"/api/v1/patients/{patient['id']}/regimens", headers=staff.nurse_headers
    ).json["regimens"]
    assert [(r["version"], r["dose_g_per_kg"]) for r in history] == [(2, 1.5), (1, 2.0)]


def test_nurse_may_not_set_a_regimen(client, staff, center, db_session):
    patient = create_patient(client, staff, center.id)
    response = post_regimen(client, staff.nurse_headers, patient["id"], next_monday())
    assert response.status_code == 403 and error_of(response)["code"] == "forbidden"
    assert count_rows(db_session, Regimen) == 0
    assert infusions_of(client, staff, patient["id"]) == []


def test_stale_based_on_version_is_409_and_adds_no_version(client, staff, center, db_session):
    patient = create_patient(client, staff, center.id)
    starts_on = next_monday()
    assert post_regimen(client, staff.doctor_headers, patient["id"], starts_on).status_code == 201
    # A colleague changes the regimen first...
    changed = post_regimen(
        client,
        staff.doctor_headers,
        patient["id"],
        starts_on,
        dose_g_per_kg=1.5,
        based_on_version=1,
    )
    assert changed.status_code == 201
    regimens_before = count_rows(db_session, Regimen)
    audit_before = count_rows(db_session, AuditEvent)
    # ...then the second physician saves what they saw at version 1.
    response = post_regimen(
        client,
        staff.doctor_headers,
        patient["id"],
        starts_on,
        dose_g_per_kg=1.0,
        based_on_version=1,
    )
    assert response.status_code == 409
    error = error_of(response)
    assert error["field"] == "based_on_version" and error["code"] == "conflict"
    assert "version 2" in error["message"]
    assert count_rows(db_session, Regimen) == regimens_before
    assert count_rows(db_session, AuditEvent) == audit_before
    current = client.get(f"/api/v1/patients/{patient['id']}", headers=staff.nurse_headers).json
    assert current["current_regimen"]["version"] == 2
    assert current["current_regimen"]["dose_g_per_kg"] == 1.5
    # Omitting the version once a regimen exists is just as stale.
    response = post_regimen(client, staff.doctor_headers, patient["id"], starts_on)
    assert response.status_code == 409 and error_of(response)["field"] == "based_on_version"


def test_thrombosis_risk_needs_an_override_reason_at_35_g_a_day(client, staff, center, db_session):
    patient = create_patient(client, staff, center.id, "CLOT-1", thrombosis_risk=True)
    starts_on = next_monday()
    response = post_regimen(client, staff.doctor_headers, patient["id"], starts_on)
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "override_reason"
    assert "82.0 g per day" in error["message"] and "35.0" in error["message"]
    assert count_rows(db_session, Regimen) == 0
    assert infusions_of(client, staff, patient["id"]) == []
    # Whitespace is no reason.
    response = post_regimen(
        client, staff.doctor_headers, patient["id"], starts_on, override_reason="   "
    )
    assert response.status_code == 422 and error_of(response)["field"] == "override_reason"

    response = post_regimen(
        client,
        staff.doctor_headers,
        patient["id"],
        starts_on,
        override_reason="Severe flare; hydration and creatinine checks arranged",
    )
    assert response.status_code == 201, response.json
    regimen = response.json["regimen"]
    assert regimen["override_reason"] == "Severe flare; hydration and creatinine checks arranged"
    assert regimen["grams_per_day"] == 82
    # The at-risk rate cap (0.03 mL/kg/min) makes each day longer than the 295 minutes.
    assert regimen["minutes_per_day"] > 295
    assert response.json["replan"]["created"] > 0


def test_a_regimen_set_in_the_afternoon_books_no_slot_that_has_already_begun(
    client, staff, center, db_session, settings
):
    """Set at 15:00 on its first day, a regimen cannot have the patient in a chair at 09:00."""
    patient = create_patient(client, staff, center.id, "LATE-1")
    monday = dt.date(2026, 10, 5)
    now = at(monday, 15)
    doctor = Actor(label=staff.physician.email, user_id=staff.physician.id, role="physician")
    _, plan = regimen_service.set_regimen(
        db_session, doctor, patient["id"], regimen_input(starts_on=monday), settings, now=now
    )
    infusions = infusions_of(client, staff, patient["id"])
    assert len(infusions) == plan.summary()["created"] > 0
    already_begun = [
        (i["planned_date"], local(i["starts_at"]).strftime("%H:%M"))
        for i in infusions
        if i["status"] == "scheduled" and dt.datetime.fromisoformat(i["starts_at"]) < now
    ]
    assert already_begun == []


def test_regimen_for_unknown_patient_is_404(client, staff):
    response = post_regimen(client, staff.doctor_headers, 424242, next_monday())
    assert response.status_code == 404 and error_of(response)["field"] == "patient_id"


def test_patient_shows_the_regimen_and_asks_for_a_review_after_a_weight_change(
    client, staff, center
):
    patient = create_patient(client, staff, center.id)
    assert post_regimen(client, staff.doctor_headers, patient["id"], next_monday()).status_code == (
        201
    )
    url = f"/api/v1/patients/{patient['id']}"
    detail = client.get(url, headers=staff.nurse_headers).json
    assert detail["current_regimen"]["version"] == 1
    assert detail["current_regimen"]["product"] == "Octagam 10%"
    assert detail["current_regimen"]["weight_kg"] == 100
    assert detail["weight_review_needed"] is False

    small = client.post(f"{url}/weights", headers=staff.nurse_headers, json={"weight_kg": 105})
    assert small.status_code == 201 and small.json["weight_kg"] == 105
    detail = client.get(url, headers=staff.nurse_headers).json
    assert detail["weight_change_percent"] == pytest.approx(5.0)
    assert detail["weight_review_needed"] is False

    big = client.post(f"{url}/weights", headers=staff.nurse_headers, json={"weight_kg": 112})
    assert big.status_code == 201
    detail = client.get(url, headers=staff.nurse_headers).json
    assert detail["weights"][0]["weight_kg"] == 112
    assert detail["weight_change_percent"] == pytest.approx(12.0)
    assert detail["weight_review_needed"] is True


def test_bad_weight_is_422(client, staff, center):
    patient = create_patient(client, staff, center.id)
    url = f"/api/v1/patients/{patient['id']}/weights"
    response = client.post(url, headers=staff.nurse_headers, json={"weight_kg": 400})
    assert response.status_code == 422 and error_of(response)["field"] == "weight_kg"
    later = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    response = client.post(
        url, headers=staff.nurse_headers, json={"weight_kg": 90, "measured_on": later}
    )
    assert response.status_code == 422 and error_of(response)["field"] == "measured_on"


# --- infusions and the day board -------------------------------------------------------------


def test_day_board_shows_the_booked_patients_on_their_chairs(client, staff, center):
    starts_on = next_monday()
    first = book(client, staff, center.id, "BOARD-1", starts_on)
    second = book(client, staff, center.id, "BOARD-2", starts_on)
    response = client.get(
        f"/api/v1/centers/{center.id}/day/{starts_on.isoformat()}", headers=staff.nurse_headers
    )
    assert response.status_code == 200, response.json
    board = response.json
    assert board["date"] == starts_on.isoformat()
    assert (board["opens_at"], board["closes_at"]) == ("08:00:00", "18:00:00")
    assert [c["name"] for c in board["chairs"]] == ["Chair 1", "Chair 2", "Chair 3"]
    on_chairs = {
        (chair["name"], i["patient_name"], i["id"])
        for chair in board["chairs"]
        for i in chair["infusions"]
    }
    assert on_chairs == {
        ("Chair 1", "Rivera, BOARD-1", first.first["id"]),
        ("Chair 2", "Rivera, BOARD-2", second.first["id"]),
    }
    assert board["unbooked"] == []
    # The next day carries day 2 of both cycles; the Wednesday is empty.
    tuesday = client.get(
        f"/api/v1/centers/{center.id}/day/{(starts_on + dt.timedelta(days=1)).isoformat()}",
        headers=staff.nurse_headers,
    ).json
    assert sorted(i["day_number"] for c in tuesday["chairs"] for i in c["infusions"]) == [2, 2]
    wednesday = client.get(
        f"/api/v1/centers/{center.id}/day/{(starts_on + dt.timedelta(days=2)).isoformat()}",
        headers=staff.nurse_headers,
    ).json
    assert all(c["infusions"] == [] for c in wednesday["chairs"])


def test_day_board_bad_date_and_unknown_center(client, staff, center):
    response = client.get(
        f"/api/v1/centers/{center.id}/day/2026-13-01", headers=staff.nurse_headers
    )
    assert response.status_code == 422 and error_of(response)["field"] == "day"
    response = client.get(f"/api/v1/centers/{center.id}/day/tomorrow", headers=staff.nurse_headers)
    assert response.status_code == 422 and error_of(response)["field"] == "day"
    response = client.get(
        f"/api/v1/centers/{center.id + 1000}/day/2026-10-05", headers=staff.nurse_headers
    )
    assert response.status_code == 404
    assert error_of(response)["field"] == "center_id"


def test_nurse_records_an_infusion_as_given(client, staff, booked, db_session):
    infusion = booked.first
    body = given_body(infusion)
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/given", headers=staff.nurse_headers, json=body
    )
    assert response.status_code in (200, 201), response.json
    given = response.json
    assert given["status"] == "given"
    assert given["lot_numbers"] == "OCT-2291A, OCT-2291B"
    assert given["given_grams"] == 82 and given["max_rate_ml_per_kg_min"] == 0.04
    assert dt.datetime.fromisoformat(given["given_started_at"]) == dt.datetime.fromisoformat(
        body["started_at"]
    )
    assert given["version"] == infusion["version"] + 1
    assert get_infusion(client, staff, infusion["id"])["status"] == "given"
    event = db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "infusion.given", AuditEvent.entity_id == str(infusion["id"])
        )
    )
    assert event.actor_user_id == staff.nurse.id

    # Recording it twice is refused, whatever version is sent.
    again = client.post(
        f"/api/v1/infusions/{infusion['id']}/given",
        headers=staff.nurse_headers,
        json=given_body(given),
    )
    assert again.status_code == 409
    assert error_of(again)["field"] == "status" and "given" in error_of(again)["message"]


def test_partly_given_needs_a_reason(client, staff, booked):
    infusion = booked.first
    url = f"/api/v1/infusions/{infusion['id']}/given"
    response = client.post(
        url, headers=staff.nurse_headers, json=given_body(infusion, given_grams=40, partial=True)
    )
    assert response.status_code == 422 and error_of(response)["field"] == "reason"
    response = client.post(
        url,
        headers=staff.nurse_headers,
        json=given_body(infusion, given_grams=40, partial=True, reason="Headache; stopped"),
    )
    assert response.status_code in (200, 201), response.json
    assert response.json["status"] == "partial" and response.json["status_reason"] == (
        "Headache; stopped"
    )


def test_given_with_a_stale_version_is_409(client, staff, booked):
    infusion = booked.first
    starts = local(infusion["starts_at"])
    # Another nurse moves the infusion an hour later first.
    moved = client.post(
        f"/api/v1/infusions/{infusion['id']}/reschedule",
        headers=staff.nurse_headers,
        json={
            "chair_id": infusion["chair_id"],
            "starts_at": (starts + dt.timedelta(hours=1)).isoformat(),
            "version": infusion["version"],
        },
    )
    assert moved.status_code == 200, moved.json
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/given",
        headers=staff.nurse_headers,
        json=given_body(infusion),
    )
    assert response.status_code == 409
    assert error_of(response)["field"] == "version"
    assert get_infusion(client, staff, infusion["id"])["status"] == "scheduled"


@pytest.mark.parametrize(
    ("change", "field", "in_message"),
    [
        ("ended_before_started", "ended_at", "after started_at"),
        ({"given_grams": 150}, "given_grams", "140"),
        ({"lot_numbers": "   "}, "lot_numbers", ""),
    ],
    ids=["ended-before-started", "above-product-maximum", "blank-lot"],
)
def test_given_refuses_impossible_records(client, staff, booked, change, field, in_message):
    infusion = booked.first
    body = given_body(infusion)
    if change == "ended_before_started":
        body["started_at"], body["ended_at"] = body["ended_at"], body["started_at"]
    else:
        body |= change
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/given", headers=staff.nurse_headers, json=body
    )
    assert response.status_code == 422, response.json
    error = error_of(response)
    assert error["field"] == field and in_message in error["message"]
    after = get_infusion(client, staff, infusion["id"])
    assert after["status"] == "scheduled" and after["version"] == infusion["version"]


@pytest.mark.parametrize(("action", "status"), [("missed", "missed"), ("cancel", "cancelled")])
def test_missed_and_cancel_need_a_reason(client, staff, booked, action, status):
    infusion = booked.first
    url = f"/api/v1/infusions/{infusion['id']}/{action}"
    for blank in ("", "   "):
        response = client.post(
            url, headers=staff.nurse_headers, json={"reason": blank, "version": infusion["version"]}
        )
        assert response.status_code == 422, response.json
        assert error_of(response)["field"] == "reason"
    response = client.post(url, headers=staff.nurse_headers, json={"version": infusion["version"]})
    assert response.status_code == 422 and error_of(response)["field"] == "reason"
    assert get_infusion(client, staff, infusion["id"])["status"] == "scheduled"

    # A patient is missed on the day (not before); cancelling may come any time.
    clock.set_now(dt.datetime.fromisoformat(infusion["ends_at"]) + dt.timedelta(hours=1))
    response = client.post(
        url,
        headers=staff.nurse_headers,
        json={"reason": "Patient has a fever", "version": infusion["version"]},
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == status
    assert response.json["status_reason"] == "Patient has a fever"


def test_cancelled_infusion_leaves_the_chair_on_the_day_board(client, staff, booked, center):
    infusion = booked.first
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/cancel",
        headers=staff.nurse_headers,
        json={"reason": "Hospitalised"},
    )
    assert response.status_code == 200
    board = client.get(
        f"/api/v1/centers/{center.id}/day/{booked.starts_on.isoformat()}",
        headers=staff.nurse_headers,
    ).json
    assert all(c["infusions"] == [] for c in board["chairs"])


def test_reschedule_onto_another_patients_slot_is_409(client, staff, center):
    starts_on = next_monday()
    first = book(client, staff, center.id, "SLOT-1", starts_on)
    second = book(client, staff, center.id, "SLOT-2", starts_on)
    taken, mine = first.first, second.first
    assert taken["chair_id"] != mine["chair_id"]
    assert taken["starts_at"] == mine["starts_at"]
    for starts_at in (local(taken["starts_at"]), local(taken["starts_at"]) + dt.timedelta(hours=2)):
        response = client.post(
            f"/api/v1/infusions/{mine['id']}/reschedule",
            headers=staff.nurse_headers,
            json={
                "chair_id": taken["chair_id"],
                "starts_at": starts_at.isoformat(),
                "version": mine["version"],
            },
        )
        assert response.status_code == 409, response.json
        error = error_of(response)
        assert error["field"] == "chair_id" and "Chair 1" in error["message"]
    unchanged = get_infusion(client, staff, mine["id"])
    assert (unchanged["chair_id"], unchanged["starts_at"], unchanged["version"]) == (
        mine["chair_id"],
        mine["starts_at"],
        mine["version"],
    )

    # The free third chair at the same time is fine.
    free_chair = next(
        c["id"]
        for c in client.get("/api/v1/centers", headers=staff.nurse_headers).json["centers"][0][
            "chairs"
        ]
        if c["id"] not in (taken["chair_id"], mine["chair_id"])
    )
    response = client.post(
        f"/api/v1/infusions/{mine['id']}/reschedule",
        headers=staff.nurse_headers,
        json={"chair_id": free_chair, "starts_at": mine["starts_at"], "version": mine["version"]},
    )
    assert response.status_code == 200, response.json
    assert response.json["chair_id"] == free_chair


def test_a_cancelled_slot_can_be_taken_by_another_patient(client, staff, center):
    starts_on = next_monday()
    first = book(client, staff, center.id, "FREE-1", starts_on)
    second = book(client, staff, center.id, "FREE-2", starts_on)
    freed, mine = first.first, second.first
    cancelled = client.post(
        f"/api/v1/infusions/{freed['id']}/cancel",
        headers=staff.nurse_headers,
        json={"reason": "Patient travelling", "version": freed["version"]},
    )
    assert cancelled.status_code == 200
    response = client.post(
        f"/api/v1/infusions/{mine['id']}/reschedule",
        headers=staff.nurse_headers,
        json={"chair_id": freed["chair_id"], "starts_at": freed["starts_at"], "version": 1},
    )
    assert response.status_code == 200, response.json
    moved = response.json
    assert (moved["chair_id"], moved["status"]) == (freed["chair_id"], "scheduled")
    assert moved["version"] == mine["version"] + 1
    board = client.get(
        f"/api/v1/centers/{center.id}/day/{starts_on.isoformat()}", headers=staff.nurse_headers
    ).json
    assert {
        (c["chair_id"], i["patient_name"]) for c in board["chairs"] for i in c["infusions"]
    } == {(freed["chair_id"], "Rivera, FREE-2")}


@pytest.mark.parametrize(
    ("hour", "minute"), [(6, 0), (14, 0)], ids=["before-opening", "runs-past-closing"]
)
def test_reschedule_outside_opening_hours_is_422(client, staff, booked, hour, minute):
    infusion = booked.first
    day = booked.starts_on + dt.timedelta(weeks=1)  # a Monday with free chairs
    starts_at = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK)
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/reschedule",
        headers=staff.nurse_headers,
        json={
            "chair_id": infusion["chair_id"],
            "starts_at": starts_at.isoformat(),
            "version": infusion["version"],
        },
    )
    assert response.status_code == 422, response.json
    error = error_of(response)
    assert error["field"] == "starts_at" and "08:00-18:00" in error["message"]
    assert get_infusion(client, staff, infusion["id"])["starts_at"] == infusion["starts_at"]


def test_reschedule_to_a_weekend_or_without_offset_is_422(client, staff, booked):
    infusion = booked.first
    saturday = dt.datetime.combine(
        booked.starts_on + dt.timedelta(days=5), dt.time(9), tzinfo=NEW_YORK
    )
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/reschedule",
        headers=staff.nurse_headers,
        json={"chair_id": infusion["chair_id"], "starts_at": saturday.isoformat()},
    )
    assert response.status_code == 422 and error_of(response)["field"] == "starts_at"
    assert "closed" in error_of(response)["message"]
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/reschedule",
        headers=staff.nurse_headers,
        json={
            "chair_id": infusion["chair_id"],
            "starts_at": saturday.replace(tzinfo=None).isoformat(),
        },
    )
    assert response.status_code == 422 and error_of(response)["field"] == "starts_at"


def test_adverse_events_are_graded_and_thrombosis_is_serious(client, staff, booked, db_session):
    infusion = booked.first
    url = f"/api/v1/infusions/{infusion['id']}/adverse-events"
    response = client.post(
        url, headers=staff.nurse_headers, json={"event_type": "headache", "grade": 6}
    )
    assert response.status_code == 422 and error_of(response)["field"] == "grade"
    assert count_rows(db_session, AdverseEvent) == 0

    response = client.post(
        url, headers=staff.nurse_headers, json={"event_type": "headache", "grade": 1}
    )
    assert response.status_code == 201, response.json
    assert response.json["serious"] is False

    response = client.post(
        url,
        headers=staff.nurse_headers,
        json={"event_type": "thrombosis", "grade": 2, "description": "Left calf DVT"},
    )
    assert response.status_code == 201, response.json
    event = response.json
    assert event["serious"] is True and event["patient_id"] == booked.patient["id"]
    assert event["occurred_on"] == local_today("America/New_York").isoformat()
    stored = db_session.get(AdverseEvent, event["id"])
    assert stored.serious is True and stored.infusion_id == infusion["id"]

    response = client.post(
        url, headers=staff.nurse_headers, json={"event_type": "sneezing", "grade": 1}
    )
    assert response.status_code == 422 and error_of(response)["field"] == "event_type"


def test_admin_may_not_record_infusions(client, staff, booked):
    infusion = booked.first
    response = client.post(
        f"/api/v1/infusions/{infusion['id']}/given",
        headers=staff.admin_headers,
        json=given_body(infusion),
    )
    assert response.status_code == 403
    assert get_infusion(client, staff, infusion["id"])["status"] == "scheduled"


def test_unknown_infusion_is_404(client, staff):
    response = client.post(
        "/api/v1/infusions/424242/missed", headers=staff.nurse_headers, json={"reason": "x"}
    )
    assert response.status_code == 404 and error_of(response)["field"] == "infusion_id"


# --- OpenAPI ---------------------------------------------------------------------------------


def test_openapi_documents_the_care_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/dosing/ivig", "post"),
        ("/api/v1/patients", "post"),
        ("/api/v1/patients/{patient_id}", "get"),
        ("/api/v1/patients/{patient_id}/weights", "post"),
        ("/api/v1/patients/{patient_id}/regimens", "get"),
        ("/api/v1/patients/{patient_id}/regimens", "post"),
        ("/api/v1/patients/{patient_id}/infusions", "get"),
        ("/api/v1/infusions/{infusion_id}", "get"),
        ("/api/v1/infusions/{infusion_id}/given", "post"),
        ("/api/v1/infusions/{infusion_id}/missed", "post"),
        ("/api/v1/infusions/{infusion_id}/cancel", "post"),
        ("/api/v1/infusions/{infusion_id}/reschedule", "post"),
        ("/api/v1/infusions/{infusion_id}/adverse-events", "post"),
        ("/api/v1/centers/{center_id}/day/{day}", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not documented"
        assert paths[path][method]["security"] == [{"BearerAuth": []}]
    set_regimen = paths["/api/v1/patients/{patient_id}/regimens"]["post"]
    ref = set_regimen["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    properties = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
    assert {"based_on_version", "override_reason", "starts_on", "dose_g_per_kg"} <= set(properties)
    assert "201" in set_regimen["responses"]
