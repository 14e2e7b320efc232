"""The course review, the authorisation, the patient's contact e-mail and a user's e-mail
choices through real HTTP: pages with their forms, and the JSON API."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, Authorisation, CourseReview, Patient, User
from app.services import assessments
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import at, booked_course
from tests.web.test_care_pages import form_fields, logged_in
from tests.web.test_form_errors import seen

MONDAY = dt.date(2026, 10, 5)
CYCLE_3 = MONDAY + dt.timedelta(weeks=8)


@pytest.fixture
def course(db_session, make_user, settings):
    clinic = booked_course(db_session, make_user, settings, MONDAY)
    clock.set_now(at(CYCLE_3 - dt.timedelta(days=4), 9))
    yield clinic
    clock.set_now(None)


def test_the_patient_page_says_the_review_is_due_and_what_it_still_needs(app, course):
    doctor = logged_in(app, course.physician)
    page = doctor.get(f"/patients/{course.patient.id}").get_data(as_text=True)
    assert f"Next review due {CYCLE_3}" in page
    assert "Still needs: CDASI activity, MMT-8, physician global" in page
    assert form_fields(page, "review-form")["decision"] == "continue"
    nurse = logged_in(app, course.nurse)
    nurse_page = nurse.get(f"/patients/{course.patient.id}").get_data(as_text=True)
    assert 'data-testid="review-due"' in nurse_page and "review-form" not in nurse_page


def test_a_review_without_its_measures_is_refused_on_the_page_by_field(app, db_session, course):
    doctor = logged_in(app, course.physician)
    page = doctor.get(f"/patients/{course.patient.id}").get_data(as_text=True)
    sent = form_fields(page, "review-form") | {"csrf_token": csrf_of(doctor)}
    refused = doctor.post(f"/patients/{course.patient.id}/reviews", data=sent)
    assert refused.status_code == 422
    shown = seen(refused)
    assert any(
        "a review needs CDASI activity, MMT-8 and physician global" in text
        for _f, text in shown.listed
    )
    assert "cdasi_activity" in shown.errors  # beside the review form, not only at the top
    assert db_session.scalar(sa.select(sa.func.count()).select_from(CourseReview)) == 0
    assessments.record_assessment(
        db_session,
        course.nursing,
        course.patient.id,
        assessments.AssessmentInput(
            assessed_on=CYCLE_3 - dt.timedelta(days=5),
            scores={"cdasi_activity": 9.0, "mmt8": 76.0, "physician_global": 1.5},
        ),
        CYCLE_3 - dt.timedelta(days=4),
    )
    done = doctor.post(f"/patients/{course.patient.id}/reviews", data=sent)
    assert done.status_code == 302 and done.headers["Location"].endswith("#course-review")
    page = doctor.get(f"/patients/{course.patient.id}").get_data(as_text=True)
    assert 'data-testid="review-history"' in page and ">continue<" in page
    assert "Next review due 2027-05-26 (review every 6 months (last 2026-11-26))" in page


def test_an_authorisation_form_refuses_an_end_before_its_start(app, db_session, course):
    doctor = logged_in(app, course.physician)
    sent = {
        "csrf_token": csrf_of(doctor),
        "reference": "BS-77",
        "approved_by": "BloodSTAR",
        "starts_on": "2026-12-01",
        "ends_on": "2026-11-01",
    }
    refused = doctor.post(f"/patients/{course.patient.id}/authorisations", data=sent)
    assert refused.status_code == 422 and "ends_on" in seen(refused).errors
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Authorisation)) == 0
    ok = doctor.post(
        f"/patients/{course.patient.id}/authorisations", data=sent | {"ends_on": "2027-06-01"}
    )
    assert ok.status_code == 302
    page = doctor.get(f"/patients/{course.patient.id}").get_data(as_text=True)
    assert "BS-77 (BloodSTAR): 2026-12-01 to 2027-06-01" in page
    nurse = logged_in(app, course.nurse)
    as_nurse = sent | {"csrf_token": csrf_of(nurse)}
    denied = nurse.post(f"/patients/{course.patient.id}/authorisations", data=as_nurse)
    assert denied.status_code == 403


def test_the_api_reports_the_review_and_records_one(app, db_session, course, bearer):
    doctor = bearer(course.physician)
    status = app.test_client().get(
        f"/api/v1/patients/{course.patient.id}/course-review", headers=doctor
    )
    assert status.status_code == 200
    body = status.json
    assert body["next_review"]["due_on"] == CYCLE_3.isoformat() and not body["overdue"]
    assert body["missing_measures"] == ["cdasi_activity", "mmt8", "physician_global"]
    bad = app.test_client().post(
        f"/api/v1/patients/{course.patient.id}/reviews",
        json={"decision": "continue"},
        headers=doctor,
    )
    assert bad.status_code == 422 and bad.json["error"]["field"] == "cdasi_activity"
    nurse = app.test_client().post(
        f"/api/v1/patients/{course.patient.id}/reviews",
        json={"decision": "continue"},
        headers=bearer(course.nurse),
    )
    assert nurse.status_code == 403


def test_the_patients_contact_email_and_consent_are_kept_and_audited(app, db_session, course):
    nurse = logged_in(app, course.nurse)
    page = nurse.get(f"/patients/{course.patient.id}").get_data(as_text=True)
    sent = form_fields(page, "details-form") | {"csrf_token": csrf_of(nurse)}
    wrong = nurse.post(
        f"/patients/{course.patient.id}/details",
        data=sent | {"contact_email": "not-an-address", "contact_consent": "on"},
    )
    assert wrong.status_code == 422 and "contact_email" in seen(wrong).errors
    ok = nurse.post(
        f"/patients/{course.patient.id}/details",
        data=sent | {"contact_email": "ada@example.org", "contact_consent": "on"},
    )
    assert ok.status_code == 302
    patient = db_session.get(Patient, course.patient.id)
    db_session.refresh(patient)
    assert patient.contact_email == "ada@example.org" and patient.contact_consent_at is not None
    withdrawn = nurse.post(
        f"/patients/{course.patient.id}/details", data=sent | {"contact_email": "ada@example.org"}
    )
    assert withdrawn.status_code == 302
    db_session.refresh(patient)
    assert patient.contact_consent_at is None
    changes = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "patient.update")
    ).all()
    assert [c.after["contact_consent"] for c in changes] == [True, False]


def test_a_user_chooses_the_emails_they_receive(app, db_session, course):
    nurse = logged_in(app, course.nurse)
    page = nurse.get("/account/mail").get_data(as_text=True)
    assert form_fields(page, "mail-form").get("kinds") == "on" or "checked" in page
    saved = nurse.post("/account/mail", data={"csrf_token": csrf_of(nurse), "kinds": ["task"]})
    assert saved.status_code == 302
    user = db_session.get(User, course.nurse.id)
    db_session.refresh(user)
    assert user.mail_kinds == ["task"]
    unknown = nurse.post(
        "/account/mail", data={"csrf_token": csrf_of(nurse), "kinds": ["everything"]}
    )
    assert unknown.status_code == 422
    db_session.refresh(user)
    assert user.mail_kinds == ["task"]
