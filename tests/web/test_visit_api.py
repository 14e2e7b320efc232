"""The visit at the chair over the JSON API: every step in order, the record it leaves, and
bad input refused with the field and its limit, nothing written."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, InfusionVial
from tests.db.test_visits import MONDAY, booked, minutes  # noqa: F401  (fixture)

__all__ = ["booked"]


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def test_a_visit_over_the_api_and_its_record(app, db_session, bearer, booked):
    clinic, infusion = booked
    api, headers = app.test_client(), bearer(clinic.nurse)
    base = f"/api/v1/infusions/{infusion.id}"

    def post(path: str, body: dict, status: int = 200):
        answer = api.post(base + path, json=body, headers=headers)
        assert answer.status_code == status, answer.json
        return answer.json

    post("/check-in", {"at": iso(minutes(infusion, -15))})
    checked = post(
        "/check",
        {
            "weight_kg": 100,
            "taken_at": iso(minutes(infusion, -10)),
            "pulse_bpm": 72,
            "systolic_mmhg": 120,
            "diastolic_mmhg": 80,
        },
    )
    assert checked["status"] == "checked_in" and checked["dose_approval"] is None
    post(
        "/premedications",
        {"name": "Cetirizine", "dose": 10, "given_at": iso(minutes(infusion, -5))},
        201,
    )
    clock.set_now(minutes(infusion, 240))
    started = post("/start", {"at": iso(minutes(infusion, 0))})
    plan = started["rate_plan"]
    assert started["status"] == "in_chair" and len(plan) >= 4
    assert all(step["rate_ml_per_hour"] > 0 and step["minutes"] > 0 for step in plan)
    for step in plan[:4]:
        post(
            "/rate-steps",
            {
                "started_at": iso(minutes(infusion, int(step["starts_at_minute"]))),
                "rate_ml_per_h": step["rate_ml_per_hour"],
                "pulse_bpm": 75,
            },
            201,
        )
    post(
        "/reactions",
        {
            "event_type": "headache",
            "grade": 1,
            "action_taken": "slowed",
            "outcome": "resolved",
            "new_rate_ml_per_h": plan[1]["rate_ml_per_hour"],
            "at": iso(minutes(infusion, 125)),
        },
        201,
    )
    vials = [
        {
            "product": "Octagam 10%",
            "lot_number": f"lot-{index}",
            "expires_on": "2027-06-30",
            "vial_grams": size,
            "count": int(count),
        }
        for index, (size, count) in enumerate(infusion.planned_vials)
    ]
    done = post("/complete", {"ended_at": iso(minutes(infusion, 230)), "vials": vials})
    assert done["status"] == "given" and done["given_grams"] == infusion.planned_grams
    assert [s["action"] for s in done["rate_steps"]][-1] == "slowed"
    assert {v["lot_number"] for v in done["vials"]} == {f"LOT-{i}" for i in range(len(vials))}
    record = api.get(base + "/visit", headers=headers).json
    assert record["checked_in_at"] and record["started_at"] and record["ended_at"]
    assert len(record["vitals"]) == 5 and record["premedications"][0]["name"] == "Cetirizine"


def test_bad_visit_input_names_the_field_and_the_limit(app, db_session, bearer, booked):
    clinic, infusion = booked
    api, headers = app.test_client(), bearer(clinic.nurse)
    base = f"/api/v1/infusions/{infusion.id}"
    before = db_session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    early = api.post(base + "/start", json={"at": iso(minutes(infusion, 0))}, headers=headers)
    assert early.status_code == 409 and early.json["error"]["field"] == "status"
    assert (
        api.post(
            base + "/check-in", json={"at": iso(minutes(infusion, -15))}, headers=headers
        ).status_code
        == 200
    )
    wrong = api.post(
        base + "/check",
        json={
            "weight_kg": 100,
            "taken_at": iso(minutes(infusion, -10)),
            "temperature_c": 52,
            "pulse_bpm": 400,
        },
        headers=headers,
    )
    assert wrong.status_code == 422
    assert (
        wrong.json["error"]["field"] == "pulse_bpm"
        or wrong.json["error"]["field"] == "temperature_c"
    )
    assert "52 °C is outside 30-43 °C" in wrong.json["error"]["message"]
    assert "400 /min is outside 20-250 /min" in wrong.json["error"]["message"]
    unknown = api.post(
        base + "/premedications",
        json={"name": "Aspirin", "dose": 1, "given_at": iso(minutes(infusion, -5))},
        headers=headers,
    )
    assert unknown.status_code == 422 and unknown.json["error"]["field"] == "name"
    assert db_session.scalar(sa.select(sa.func.count()).select_from(InfusionVial)) == 0
    # The check-in, and its API token's creation before it, are all that was written.
    assert db_session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == before + 1
    unseen = api.post(base + "/approve-dose", json={}, headers=bearer(clinic.physician))
    assert unseen.status_code == 422 and unseen.json["error"]["field"] == "version"
    db_session.refresh(infusion)
    physician = api.post(
        base + "/approve-dose", json={"version": infusion.version}, headers=bearer(clinic.physician)
    )
    assert physician.status_code == 409 and physician.json["error"]["field"] == "dose_approval"
    # A time without its offset is a 422 naming the field, not a server error.
    naive = api.post(
        base + "/vitals", json={"taken_at": "2026-10-05T09:45:00", "pulse_bpm": 70}, headers=headers
    )
    assert naive.status_code == 422 and naive.json["error"]["field"] == "taken_at"
    assert "give the time with its offset" in naive.json["error"]["message"]
    nurse_approves = api.post(base + "/approve-dose", json={}, headers=headers)
    assert nurse_approves.status_code == 403
