"""Feeds on the light path (issue 18): an unrelated write leaves every feed's 304 alone, and
the body goes out in blocks exactly as one piece would."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib

import icalendar
import pytest
import sqlalchemy as sa

from app import clock
from app.models import ContentRevision
from app.services import assessments as assessment_service
from app.services import feeds as feed_service
from app.services import patients as patient_service
from app.services import regimens as regimen_service
from tests.db.clinic_fixtures import Clinic, make_center, make_patient, regimen_input


def subscribe(client, bearer, user, scope, scope_id) -> str:
    response = client.post(
        "/api/v1/subscriptions", headers=bearer(user), json={"scope": scope, "scope_id": scope_id}
    )
    assert response.status_code == 201, response.json
    return response.json["url"].split("://", 1)[1].split("/", 1)[1].join(["/", ""])


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings)
    monday = clock.clinic_today("America/New_York") + dt.timedelta(days=7)
    monday -= dt.timedelta(days=monday.weekday())
    regimen_service.set_regimen(
        db_session, holder.doctor, holder.patient.id, regimen_input(starts_on=monday), settings
    )
    return holder


def test_a_write_that_changes_no_name_a_feed_shows_does_not_make_feeds_render(
    client, bearer, clinic, db_session, settings, monkeypatch
):
    path = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    etag = client.get(path).headers["ETag"]
    names = db_session.scalar(sa.select(ContentRevision.revision))
    other = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn="T-2")
    today = clock.clinic_today("America/New_York")
    # A patient's allergies and e-mail, a weight and an assessment: nothing any feed shows.
    patient_service.update_patient(
        db_session,
        clinic.nursing,
        other.id,
        patient_service.PatientChanges(allergies="latex", contact_email="t2@example.org"),
        settings,
    )
    patient_service.record_weight(
        db_session, clinic.nursing, clinic.patient.id, 99.0, today, settings, today
    )
    assessment_service.record_assessment(
        db_session,
        clinic.nursing,
        clinic.patient.id,
        assessment_service.AssessmentInput(assessed_on=today, scores={"cdasi_activity": 12}),
        today,
    )
    assert db_session.scalar(sa.select(ContentRevision.revision)) == names

    def no_render(*args: object, **kwargs: object) -> object:
        raise AssertionError("the feed rendered again after an unrelated write")

    monkeypatch.setattr(feed_service, "render_feed", no_render)
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    monkeypatch.undo()
    # A name the feed shows still moves it.
    clinic.patient.family_name = "Renamed"
    db_session.commit()
    assert db_session.scalar(sa.select(ContentRevision.revision)) == names + 1
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 200


def test_the_body_in_blocks_is_the_body_whole_gzipped_or_not(client, bearer, clinic):
    path = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    body = plain.get_data()
    assert int(plain.headers["Content-Length"]) == len(body)
    assert plain.headers["ETag"] == '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
    events = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert events and body.startswith(b"BEGIN:VCALENDAR\r\n")
    assert body.endswith(b"END:VEVENT\r\nEND:VCALENDAR\r\n")
    packed = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.get_data() == gzip.compress(body, compresslevel=6, mtime=0)
    assert int(packed.headers["Content-Length"]) == len(packed.get_data())
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"'


def test_a_renamed_patient_is_renamed_in_the_next_render_of_the_same_worker(
    client, bearer, clinic, db_session
):
    # The process keeps each patient's title between renders: it must follow the names.
    path = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)

    def titles() -> set[str]:
        body = client.get(path).get_data()
        return {str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}

    before = titles()
    assert before and all(t.startswith("Infusion: ") for t in before)
    clinic.patient.given_name, clinic.patient.family_name = "Quentin", "Zimmer"
    db_session.commit()
    after = titles()
    assert after and all(t.startswith("Infusion: QZ #") for t in after), after
    assert not before & after
