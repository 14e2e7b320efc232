"""Setting up a clinic from an empty database over the JSON API and the command line."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from app.models import AuditEvent, Center, Chair, Infusion, InfusionStatus
from app.services import regimens as regimen_service
from app.services.context import Actor
from tests.db.clinic_fixtures import at, make_patient, regimen_input

WEEK = [
    {"weekday": day, "opens_at": "08:00", "closes_at": "18:00", "nurses": 2} for day in range(5)
]
NEW_CENTER = {
    "name": "Harbour Infusion Unit",
    "timezone": "America/New_York",
    "address": "1 Quay St",
    "holiday_country": "US",
    "holiday_subdivision": "NY",
    "hours": WEEK,
    "chairs": [{"name": "Recliner 1"}, {"name": "Bed 1", "kind": "bed", "notes": "hoist"}],
}


def count(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


def test_an_admin_sets_up_a_center_from_nothing(client, make_user, bearer, db_session):
    headers = bearer(make_user("admin"))
    created = client.post("/api/v1/centers", json=NEW_CENTER, headers=headers)
    assert created.status_code == 201, created.json
    body = created.json
    assert body["holiday_country"] == "US" and body["holiday_subdivision"] == "NY"
    assert [(h["weekday"], h["opens_at"], h["nurses"]) for h in body["opening_hours"]] == [
        (day, "08:00:00", 2) for day in range(5)
    ]
    assert [(c["name"], c["kind"], c["notes"]) for c in body["chairs"]] == [
        ("Recliner 1", "recliner", None),
        ("Bed 1", "bed", "hoist"),
    ]
    center_id = body["id"]
    assert client.get(f"/api/v1/centers/{center_id}", headers=headers).json == body

    added = client.post(
        f"/api/v1/centers/{center_id}/chairs", json={"name": "Chair 3"}, headers=headers
    )
    assert added.status_code == 201 and added.json["active"] is True
    retired = client.put(
        f"/api/v1/chairs/{added.json['id']}",
        json={"name": "Chair 3", "active": False, "notes": "awaiting repair"},
        headers=headers,
    )
    assert retired.status_code == 200, retired.json
    assert retired.json["chair"]["active"] is False
    assert retired.json["replan"]["patients"] == 0

    weekend = client.put(
        f"/api/v1/centers/{center_id}",
        json={k: v for k, v in NEW_CENTER.items() if k != "chairs"}
        | {"hours": [*WEEK, {"weekday": 5, "opens_at": "09:00", "closes_at": "13:00"}]},
        headers=headers,
    )
    assert weekend.status_code == 200, weekend.json
    assert weekend.json["center"]["opening_hours"][-1] == {
        "weekday": 5,
        "opens_at": "09:00:00",
        "closes_at": "13:00:00",
        "nurses": 1,
    }
    actions = db_session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert [a for a in actions if a.startswith(("center.", "chair."))] == [
        "center.create",
        "chair.create",
        "chair.update",
        "center.update",
    ]


def test_a_bad_center_names_the_field_and_writes_nothing(client, make_user, bearer, db_session):
    headers = bearer(make_user("admin"))
    before = (count(db_session, Center), count(db_session, Chair))
    for change, field, words in (
        ({"timezone": "Moon/Tranquility"}, "timezone", "not an IANA time zone"),
        ({"holiday_country": "us"}, "holiday_country", "should match pattern"),
        ({"hours": [{**WEEK[0], "nurses": 0}]}, "hours.0.nurses", "must be at least 1 (got 0)"),
        ({"hours": [{**WEEK[0], "weekday": 7}]}, "hours.0.weekday", "must be at most 6 (got 7)"),
        ({"hours": [{**WEEK[0], "closes_at": "07:00"}]}, "hours", "closes (07:00) before it opens"),
        ({"chairs": [{"name": "A", "kind": "sofa"}]}, "chairs.0.kind", "one of 'recliner'"),
    ):
        answer = client.post("/api/v1/centers", json=NEW_CENTER | change, headers=headers)
        assert answer.status_code == 422, (change, answer.json)
        assert answer.json["error"]["field"] == field
        assert words in answer.json["error"]["message"], answer.json
    assert (count(db_session, Center), count(db_session, Chair)) == before
    assert client.post("/api/v1/centers", json=NEW_CENTER, headers=headers).status_code == 201
    again = client.post("/api/v1/centers", json=NEW_CENTER, headers=headers)
    assert again.status_code == 409 and again.json["error"]["field"] == "name"
    unknown = client.put(
        "/api/v1/centers/424242", json=NEW_CENTER | {"chairs": None}, headers=headers
    )
    assert unknown.status_code == 422  # chairs is not a field of an update


def test_opting_into_holidays_moves_a_booked_holiday(
    client, make_user, bearer, db_session, settings
):
    admin = bearer(make_user("admin"))
    center = client.post(
        "/api/v1/centers",
        json=NEW_CENTER | {"holiday_country": None, "holiday_subdivision": None},
        headers=admin,
    ).json
    physician = make_user("physician")
    doctor = Actor(label=physician.email, user_id=physician.id, role="physician")
    patient = make_patient(db_session, doctor, db_session.get(Center, center["id"]), settings)
    regimen_service.set_regimen(
        db_session, doctor, patient.id, regimen_input(), settings, now=at(dt.date(2026, 10, 1))
    )
    labor_day = dt.date(2027, 9, 6)

    def booked_days() -> set[dt.date]:
        db_session.expire_all()
        return set(
            db_session.scalars(
                sa.select(Infusion.planned_date).where(
                    Infusion.patient_id == patient.id,
                    Infusion.status == InfusionStatus.SCHEDULED,
                )
            )
        )

    assert labor_day in booked_days()
    changed = client.put(
        f"/api/v1/centers/{center['id']}",
        json={k: v for k, v in NEW_CENTER.items() if k != "chairs"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["replan"]["patients"] == 1
    assert labor_day not in booked_days()


def test_the_command_line_creates_a_center(app, db_session):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            *("centers", "create", "--name", "CLI Center", "--timezone", "Australia/Sydney"),
            *("--open", "Mon-Thu 08:00-17:00", "--open", "Fri 08:00-13:00"),
            *("--nurses", "3", "--chairs", "4", "--holidays", "AU-NSW"),
        ]
    )
    assert result.exit_code == 0, result.output
    center = db_session.scalars(sa.select(Center).where(Center.name == "CLI Center")).one()
    assert (center.holiday_country, center.holiday_subdivision) == ("AU", "NSW")
    assert [(h.weekday, h.closes_at, h.nurses) for h in center.opening_hours] == [
        (0, dt.time(17), 3),
        (1, dt.time(17), 3),
        (2, dt.time(17), 3),
        (3, dt.time(17), 3),
        (4, dt.time(13), 3),
    ]
    assert [c.name for c in center.chairs] == ["Chair 1", "Chair 2", "Chair 3", "Chair 4"]
    listed = runner.invoke(args=["centers", "list"])
    assert "CLI Center\tAustralia/Sydney\t4 chairs\tMon 08:00-17:00 (3 nurses)" in listed.output
    refused = runner.invoke(
        args=["centers", "create", "--name", "X", "--timezone", "UTC", "--open", "Mon-Fry 8-5"]
    )
    assert refused.exit_code == 1
    assert "write days and hours like 'Mon-Fri 08:00-18:00'" in refused.output


def test_a_number_is_not_a_time_or_a_yes(client, make_user, bearer):
    # Found by schemathesis: "opens_at": 0 became a time with a UTC offset and the hours check
    # failed with a 500; "active": 0 was taken as false.
    headers = bearer(make_user("admin"))
    center = client.post("/api/v1/centers", json=NEW_CENTER, headers=headers).json
    day = {"weekday": 0, "opens_at": 0, "closes_at": "08:30:00", "nurses": 1}
    answer = client.put(
        f"/api/v1/centers/{center['id']}",
        json={k: v for k, v in NEW_CENTER.items() if k != "chairs"} | {"hours": [day]},
        headers=headers,
    )
    assert answer.status_code == 422 and answer.json["error"]["field"] == "hours.0.opens_at"
    offset = day | {"opens_at": "08:00:00+02:00"}
    answer = client.put(
        f"/api/v1/centers/{center['id']}",
        json={k: v for k, v in NEW_CENTER.items() if k != "chairs"} | {"hours": [offset]},
        headers=headers,
    )
    assert answer.status_code == 422 and "without an offset" in answer.json["error"]["message"]
    chair = center["chairs"][0]["id"]
    answer = client.put(
        f"/api/v1/chairs/{chair}", json={"name": "Recliner 1", "active": 0}, headers=headers
    )
    assert answer.status_code == 422 and answer.json["error"]["field"] == "active"
