"""Recording response assessments: ranges, dates, roles; nothing half-written."""

import datetime as dt

import pytest
import sqlalchemy as sa

from app.clock import clinic_today as local_today
from app.models import Assessment, AuditEvent
from tests.db.clinic_fixtures import make_center, make_patient


@pytest.fixture
def patient(db_session, make_user, settings):
    from app.services.context import Actor

    nurse = make_user("nurse")
    return make_patient(
        db_session,
        Actor(label=nurse.email, user_id=nurse.id, role="nurse"),
        make_center(db_session),
        settings,
    )


def post(client, headers, patient_id, **values):
    body = {"assessed_on": local_today("America/New_York").isoformat()} | values
    return client.post(f"/api/v1/patients/{patient_id}/assessments", headers=headers, json=body)


def test_a_nurse_records_an_assessment_and_it_is_audited(
    client, make_user, bearer, patient, db_session
):
    nurse = make_user("nurse")
    response = post(
        client, bearer(nurse), patient.id, cdasi_activity=32, mmt8=74, ck=420, ck_uln=200
    )
    assert response.status_code == 201, response.json
    assert response.json["cdasi_activity"] == 32
    listed = client.get(f"/api/v1/patients/{patient.id}/assessments", headers=bearer(nurse)).json
    assert [a["id"] for a in listed["assessments"]] == [response.json["id"]]
    assert db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "assessment.record"))


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"cdasi_activity": 101}, "cdasi_activity", "0-100"),
        ({"cdasi_damage": 33}, "cdasi_damage", "0-32"),
        ({"mmt8": -1}, "mmt8", "0-80"),
        ({"physician_global": 11}, "physician_global", "0-10"),
        ({"haq": 3.5}, "haq", "0-3"),
        ({"ck": 300}, "ck_uln", "upper limit"),
        ({}, "cdasi_activity", "at least one"),
        ({"cdasi_activity": "high"}, "cdasi_activity", ""),
    ],
)
def test_out_of_range_scores_are_422_naming_the_field(
    client, make_user, bearer, patient, db_session, values, field, text
):
    response = post(client, bearer(make_user("nurse")), patient.id, **values)
    assert response.status_code == 422
    assert response.json["error"]["field"] == field and text in response.json["error"]["message"]
    assert db_session.scalar(sa.select(sa.func.count(Assessment.id))) == 0


def test_future_dates_and_wrong_roles_are_refused(client, make_user, bearer, patient, db_session):
    tomorrow = local_today("America/New_York") + dt.timedelta(days=1)
    response = post(
        client,
        bearer(make_user("nurse")),
        patient.id,
        assessed_on=tomorrow.isoformat(),
        cdasi_activity=10,
    )
    assert response.status_code == 422 and response.json["error"]["field"] == "assessed_on"
    assert (
        post(client, bearer(make_user("admin")), patient.id, cdasi_activity=10).status_code == 403
    )
    assert post(client, bearer(make_user("nurse")), 999_999, cdasi_activity=10).status_code == 404
    assert db_session.scalar(sa.select(sa.func.count(Assessment.id))) == 0


def test_height_and_risk_flags_can_be_changed_and_are_audited(
    client, make_user, bearer, patient, db_session
):
    nurse = make_user("nurse")
    response = client.patch(
        f"/api/v1/patients/{patient.id}",
        headers=bearer(nurse),
        json={"height_cm": 180, "thrombosis_risk": True},
    )
    assert response.status_code == 200, response.json
    db_session.refresh(patient)
    assert patient.height_cm == 180 and patient.thrombosis_risk
    event = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "patient.update"))
    assert event.before["height_cm"] == 175 and event.after["thrombosis_risk"] is True
    bad = client.patch(
        f"/api/v1/patients/{patient.id}", headers=bearer(nurse), json={"height_cm": 300}
    )
    assert (
        bad.status_code == 422
        and bad.json["error"]["field"] == "height_cm"
        and "230" in bad.json["error"]["message"]
    )
