"""Therapy integrity over HTTP: refusals name the rule, physicians override soft rules with a
reason, records are corrected with a reason, adverse events are resolved, notices are seen."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, Infusion, InfusionStatus
from app.services import adverse_events as adverse_event_service
from app.services import regimens as regimen_service
from tests.conftest import csrf_of, login
from tests.db.clinic_fixtures import NEW_YORK, Clinic, give, make_clinic, regimen_input

MONDAY = dt.date(2027, 3, 1)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK)


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    clock.set_now(at(MONDAY - dt.timedelta(days=3), 9))
    holder = make_clinic(db_session, make_user, settings)
    regimen_service.set_regimen(
        db_session,
        holder.doctor,
        holder.patient.id,
        regimen_input(starts_on=MONDAY, dose_g_per_kg=1.5),
        settings,
    )
    return holder


@pytest.fixture
def headers(clinic, bearer, make_user):
    return {
        "nurse": bearer(clinic.nurse),
        "physician": bearer(clinic.physician),
        "admin": bearer(make_user("admin")),
    }


def on(db_session, clinic, day: dt.date) -> Infusion:
    return db_session.scalar(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.planned_date == day,
            Infusion.status != InfusionStatus.CANCELLED,
        )
    )


def move(client, headers, infusion: Infusion, when: dt.datetime, **extra):
    return client.post(
        f"/api/v1/infusions/{infusion.id}/reschedule",
        headers=headers,
        json={"chair_id": infusion.chair_id, "starts_at": when.isoformat(), **extra},
    )


def test_a_soft_rule_yields_only_to_a_physicians_reason(client, clinic, headers, db_session):
    # Cycle 2 four days later than planned: past the 3-day shift window, and cycle 3 then
    # comes 24 days after it (every 4 weeks less 3 days' tolerance is 25).
    cycle_2 = on(db_session, clinic, MONDAY + dt.timedelta(days=28))
    friday = at(MONDAY + dt.timedelta(days=32), 9)
    refused = move(client, headers["nurse"], cycle_2, friday)
    error = refused.json["error"]
    assert refused.status_code == 409 and error["code"] == "therapy_rule"
    assert error["field"] == "starts_at" and error["overridable"] is True
    assert set(error["rules"]) == {"shift_window", "cycle_interval"}
    assert "a physician may go ahead" in error["message"]
    # A nurse's reason does not override; a physician's does, and it is stored and audited.
    assert (
        move(client, headers["nurse"], cycle_2, friday, override_reason="asked").status_code == 409
    )
    assert move(client, headers["physician"], cycle_2, friday).status_code == 409
    done = move(
        client, headers["physician"], cycle_2, friday, override_reason="Patient abroad that week"
    )
    assert done.status_code == 200, done.json
    assert done.json["waived_rules"] == ["shift_window"]
    assert done.json["pinned_by_id"] == clinic.physician.id
    cycle_3 = on(db_session, clinic, MONDAY + dt.timedelta(days=56))
    db_session.refresh(cycle_3)
    assert cycle_3.waived_rules == ["cycle_interval"]
    day_2 = on(db_session, clinic, MONDAY + dt.timedelta(days=35))  # Monday, after the weekend
    assert day_2 is not None and day_2.cycle_number == cycle_2.cycle_number
    audit = db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "integrity.override")
    )
    assert audit.after["reason"] == "Patient abroad that week"


def test_a_hard_rule_has_no_override(client, clinic, headers, db_session):
    cycle_2 = on(db_session, clinic, MONDAY + dt.timedelta(days=28))
    before = (cycle_2.planned_date, cycle_2.starts_at, cycle_2.version)
    refused = move(
        client,
        headers["physician"],
        cycle_2,
        at(MONDAY + dt.timedelta(days=7), 9),
        override_reason="I insist",
    )
    assert refused.status_code == 409
    assert refused.json["error"]["overridable"] is False
    assert "grams_in_window" in refused.json["error"]["rules"]
    db_session.expire_all()
    assert (cycle_2.planned_date, cycle_2.starts_at, cycle_2.version) == before


def test_a_recorded_infusion_is_corrected_over_the_api(
    client, clinic, headers, db_session, settings
):
    monday = on(db_session, clinic, MONDAY)
    clock.set_now(at(MONDAY, 20))
    give(db_session, clinic.nursing, monday, settings)
    url = f"/api/v1/infusions/{monday.id}/amend"
    missing = client.post(
        url, headers=headers["nurse"], json={"reason": "pump log", "status": "partial"}
    )
    assert missing.status_code == 422 and missing.json["error"]["field"] == "given_grams"
    assert client.post(url, headers=headers["admin"], json={}).status_code == 403
    body = {
        "reason": "Pump log: stopped at 40 g",
        "status": "partial",
        "given_grams": 40,
        "started_at": monday.given_started_at.isoformat(),
        "ended_at": monday.given_ended_at.isoformat(),
        "lot_numbers": "L1",
        "max_rate_ml_per_kg_min": 0.03,
        "partial_reason": "Headache",
    }
    done = client.post(url, headers=headers["nurse"], json=body)
    assert done.status_code == 200, done.json
    assert done.json["status"] == "partial" and done.json["given_grams"] == 40
    (amendment,) = done.json["amendments"]
    assert amendment["before"]["given_grams"] == 62 and amendment["after"]["given_grams"] == 40
    # The infusion page shows the record as amended, with what it said before.
    web = client.application.test_client()
    login(web, clinic.nurse.email)
    page = web.get(f"/infusions/{monday.id}").get_data(as_text=True)
    assert 'data-testid="amended"' in page and "Pump log: stopped at 40 g" in page
    assert "given, 62 g" in page and "partial, 40 g" in page


def test_a_physician_resolves_an_adverse_event_on_the_patient_page(
    client, clinic, headers, db_session, settings
):
    monday = on(db_session, clinic, MONDAY)
    clock.set_now(at(MONDAY, 20))
    give(db_session, clinic.nursing, monday, settings)
    event = adverse_event_service.record_adverse_event(
        db_session,
        clinic.nursing,
        monday.id,
        adverse_event_service.AdverseEventInput(
            event_type="thrombosis", grade=3, occurred_on=MONDAY
        ),
        MONDAY,
    )
    listed = client.get(
        f"/api/v1/patients/{clinic.patient.id}/adverse-events", headers=headers["nurse"]
    )
    assert [e["resolved_on"] for e in listed.json["adverse_events"]] == [None]
    url = f"/api/v1/adverse-events/{event.id}/resolve"
    tomorrow = (MONDAY + dt.timedelta(days=1)).isoformat()
    body = {"resolved_on": MONDAY.isoformat(), "note": "Duplex clear"}
    assert client.post(url, headers=headers["nurse"], json=body).status_code == 403
    future = client.post(url, headers=headers["physician"], json=body | {"resolved_on": tomorrow})
    assert future.status_code == 422 and future.json["error"]["field"] == "resolved_on"
    unknown = client.post(
        "/api/v1/adverse-events/999999/resolve", headers=headers["physician"], json=body
    )
    assert unknown.status_code == 404
    # On the patient page: the physician sees the open event with a form, and resolves it.
    web = client.application.test_client()
    login(web, clinic.physician.email)
    page = web.get(f"/patients/{clinic.patient.id}").get_data(as_text=True)
    assert 'data-testid="adverse-event-open"' in page and "Mark resolved" in page
    response = web.post(
        f"/patients/{clinic.patient.id}/adverse-events/{event.id}/resolve",
        data={"csrf_token": csrf_of(web), "resolved_on": MONDAY.isoformat(), "note": "Clear"},
    )
    assert response.status_code == 302
    page = web.get(f"/patients/{clinic.patient.id}").get_data(as_text=True)
    assert 'data-testid="adverse-event-resolved"' in page and "Clear" in page
    again = client.post(url, headers=headers["physician"], json=body)
    assert again.status_code == 409


def test_a_nurse_sees_the_move_a_replan_could_not_keep(
    client, clinic, headers, db_session, settings
):
    cycle_2 = on(db_session, clinic, MONDAY + dt.timedelta(days=28))
    moved = move(
        client,
        headers["nurse"],
        cycle_2,
        at(cycle_2.planned_date, 14),
    )
    assert moved.status_code == 200, moved.json
    clock.set_now(at(MONDAY - dt.timedelta(days=2), 9))
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=MONDAY, dose_g_per_kg=1.5, interval_weeks=6, based_on_version=1),
        settings,
    )
    notices = client.get("/api/v1/worklist", headers=headers["nurse"]).json["notices"]
    assert [n["kind"] for n in notices] == ["reschedule_not_kept"]
    assert "no cycle planned for" in notices[0]["message"]
    assert client.get("/api/v1/worklist", headers=headers["physician"]).json["notices"] == []
    web = client.application.test_client()
    login(web, clinic.nurse.email)
    page = web.get("/worklist").get_data(as_text=True)
    assert 'data-testid="notice"' in page and "could not be kept" in page
    other = client.post(f"/api/v1/worklist/{notices[0]['id']}/done", headers=headers["physician"])
    assert other.status_code == 404
    done = client.post(f"/api/v1/worklist/{notices[0]['id']}/done", headers=headers["nurse"])
    assert done.status_code == 200 and done.json["done_at"]
    assert client.get("/api/v1/worklist", headers=headers["nurse"]).json["notices"] == []
