"""Calendar feeds over HTTP, parsed with icalendar: privacy, stability, conditional GET."""

import datetime as dt
import gzip
import logging
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa

from app import clock, create_app, logs
from app.models import AuditEvent, Infusion, Subscription, Suggestion
from app.services import regimens as regimen_service
from app.services import tapers
from tests.conftest import make_settings
from tests.db.clinic_fixtures import Clinic, at, make_center, make_patient, regimen_input

NEW_YORK = ZoneInfo("America/New_York")


def next_monday() -> dt.date:
    day = dt.date.today() + dt.timedelta(days=7)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    patient = make_patient(db_session, holder.nursing, center, settings)
    patient.treating_physician_id = physician.id
    db_session.commit()
    holder.patient = patient
    regimen_service.set_regimen(
        db_session,
        holder.doctor,
        patient.id,
        regimen_input(starts_on=next_monday()),
        settings,
        now=at(dt.date.today()),
    )
    return holder


def subscribe(client, bearer, user, scope, scope_id, **extra) -> dict:
    response = client.post(
        "/api/v1/subscriptions",
        headers=bearer(user),
        json={"scope": scope, "scope_id": scope_id} | extra,
    )
    assert response.status_code == 201, response.json
    return response.json


def path_of(created: dict) -> str:
    return created["url"].split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def events(body: bytes) -> list:
    return icalendar.Calendar.from_ical(body).walk("VEVENT")


def test_center_feed_shows_initials_not_names_and_stable_uids(client, bearer, clinic, db_session):
    created = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    assert created["url"].startswith("http") and created["webcal_url"].startswith("webcal://")
    assert len(created["url"]) < 256
    first = client.get(path_of(created))
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "text/calendar; charset=utf-8"
    body = first.get_data()
    calendar = icalendar.Calendar.from_ical(body)
    assert str(calendar["METHOD"]) == "PUBLISH"
    # Staff feeds show feeds.staff_future_weeks ahead (a year of a busy center is megabytes).
    until = dt.datetime.now(dt.UTC).date() + dt.timedelta(weeks=12)
    booked = db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id, Infusion.planned_date < until
        )
    ).all()
    vevents = events(body)
    assert len(vevents) == len(booked) > 0
    text = body.decode()
    patient = clinic.patient
    assert patient.family_name not in text and patient.mrn not in text
    assert "Octagam" not in text
    assert str(vevents[0]["SUMMARY"]).startswith(
        f"Infusion: {patient.given_name[0]}{patient.family_name[0]} #"
    )
    assert "Chair" in str(vevents[0]["LOCATION"])
    second = client.get(path_of(created))
    assert second.get_data() == body  # unchanged feed, byte-identical
    assert second.headers["ETag"] == first.headers["ETag"]


def test_patient_feed_is_minimal_and_keeps_local_time(client, bearer, clinic):
    created = subscribe(client, bearer, clinic.nurse, "patient", clinic.patient.id)
    body = client.get(path_of(created)).get_data()
    vevents = events(body)
    assert {str(e["SUMMARY"]) for e in vevents} == {"Infusion appointment"}
    assert "Test Center" in str(vevents[0]["LOCATION"])
    assert "Chair" not in body.decode() and "Cycle" not in body.decode()
    assert "ivig" not in body.decode().lower()  # not even in PRODID or UIDs: it names the drug
    local = {e.decoded("DTSTART").astimezone(NEW_YORK).time() for e in vevents}
    assert local == {dt.time(9, 0)}  # across the November daylight-saving change too


def test_patient_feed_has_all_day_taper_steps(client, bearer, clinic, db_session, settings):
    today = dt.date.today()
    tapers.create_plan(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        tapers.PlanInput(
            drug="prednisone", start_mg=20, template="banded", starts_on=today, reason="DM"
        ),
        settings,
        today,
    )
    created = subscribe(client, bearer, clinic.nurse, "patient", clinic.patient.id)
    steps = [
        e
        for e in events(client.get(path_of(created)).get_data())
        if "mg a day" in str(e["SUMMARY"])
    ]
    assert steps
    first = steps[0]
    assert first.decoded("DTSTART") == today and not isinstance(
        first.decoded("DTSTART"), dt.datetime
    )
    assert first.decoded("DTEND") == today + dt.timedelta(days=1)
    assert str(first["SUMMARY"]) == "Steroid dose from today: 20 mg a day"
    assert "prednisone" not in str(first["SUMMARY"]).lower()


def test_replan_bumps_sequence_and_keeps_the_cancelled_event(
    client, bearer, clinic, db_session, settings
):
    created = subscribe(client, bearer, clinic.nurse, "patient", clinic.patient.id)
    before = {str(e["UID"]): e for e in events(client.get(path_of(created)).get_data())}
    etag = client.get(path_of(created)).headers["ETag"]
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(
            starts_on=next_monday(), interval_weeks=6, based_on_version=1, reason="widen"
        ),
        settings,
        now=at(dt.date.today()),
    )
    response = client.get(path_of(created), headers={"If-None-Match": etag})
    assert response.status_code == 200
    after = {str(e["UID"]): e for e in events(response.get_data())}
    cancelled = [e for e in after.values() if str(e["STATUS"]) == "CANCELLED"]
    assert cancelled, "what disappeared stays as CANCELLED"
    for event in cancelled:
        assert int(event["SEQUENCE"]) == int(before[str(event["UID"])]["SEQUENCE"]) + 1
    assert set(before) <= set(after)  # no UID vanished, none was renamed


def test_conditional_get(client, bearer, clinic, db_session):
    created = subscribe(client, bearer, clinic.nurse, "chair", clinic.center.chairs[0].id)
    first = client.get(path_of(created))
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get(path_of(created), headers={"If-None-Match": etag}).status_code == 304
    assert (
        client.get(path_of(created), headers={"If-Modified-Since": last_modified}).status_code
        == 304
    )
    old = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert client.get(path_of(created), headers={"If-Modified-Since": old}).status_code == 200
    infusion = db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.chair_id == clinic.center.chairs[0].id)
        .order_by(Infusion.starts_at)
    ).first()
    infusion.sequence += 1
    infusion.starts_at += dt.timedelta(minutes=30)
    infusion.ends_at += dt.timedelta(minutes=30)
    infusion.occupied_until += dt.timedelta(minutes=30)
    infusion.updated_at = infusion.updated_at + dt.timedelta(seconds=1)
    db_session.commit()
    changed = client.get(path_of(created), headers={"If-Modified-Since": last_modified})
    assert changed.status_code == 200, "a changed feed is never answered 304"
    assert client.get(path_of(created), headers={"If-None-Match": etag}).status_code == 200


def test_gzip_when_asked(client, bearer, clinic):
    created = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    plain = client.get(path_of(created))
    zipped = client.get(path_of(created), headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.get_data()) == plain.get_data()
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert "Accept-Encoding" in zipped.headers["Vary"]


def test_unknown_revoked_expired_and_malformed_tokens_all_answer_the_same_404(
    client, bearer, clinic, db_session
):
    created = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    path = path_of(created)
    assert client.get(path).status_code == 200
    sub_id = created["id"]
    assert (
        client.post(
            f"/api/v1/subscriptions/{sub_id}/revoke", headers=bearer(clinic.nurse)
        ).status_code
        == 200
    )
    revoked = client.get(path)
    expired_created = subscribe(
        client, bearer, clinic.nurse, "center", clinic.center.id, expires_in_days=1
    )
    db_session.get(Subscription, expired_created["id"]).expires_at = dt.datetime(
        2020, 1, 1, tzinfo=dt.UTC
    )
    db_session.commit()
    answers = [
        revoked,
        client.get(path_of(expired_created)),
        client.get("/feeds/" + "A" * 43 + ".ics"),
        client.get("/feeds/short.ics"),
        client.get("/feeds/..%2F..%2Fetc%2Fpasswd.ics"),
    ]
    assert {(r.status_code, r.get_data()) for r in answers} == {(404, b"Not found\n")}
    assert client.get(path + "?" + "x" * 5000).status_code == 400


def test_rotation_kills_the_old_url_at_once(client, bearer, clinic):
    created = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    rotated = client.post(
        f"/api/v1/subscriptions/{created['id']}/rotate", headers=bearer(clinic.nurse)
    )
    assert rotated.status_code == 200
    assert client.get(path_of(created)).status_code == 404
    assert client.get(path_of(rotated.json)).status_code == 200


def test_a_revoked_feed_cannot_be_rotated_back_to_life(client, bearer, clinic):
    # Hardening (schemathesis, stateful): this was a 422, as if the request were malformed.
    created = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    url = f"/api/v1/subscriptions/{created['id']}"
    assert client.post(f"{url}/revoke", headers=bearer(clinic.nurse)).status_code == 200
    rotated = client.post(f"{url}/rotate", headers=bearer(clinic.nurse))
    assert rotated.status_code == 409
    assert rotated.json["error"]["field"] == "subscription_id"
    assert client.get(path_of(created)).status_code == 404


def test_rate_limit_answers_429(database_url, session_factory, bearer, clinic):
    app = create_app(
        make_settings(database_url, feeds={"rate_limit_per_minute": 3}),
        session_factory=session_factory,
    )
    client = app.test_client()
    created = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    statuses = [client.get(path_of(created)).status_code for _ in range(2)]
    # A second web worker (another app on the same database) shares the count.
    other = create_app(
        make_settings(database_url, feeds={"rate_limit_per_minute": 3}),
        session_factory=session_factory,
    ).test_client()
    statuses += [other.get(path_of(created)).status_code for _ in range(2)]
    assert statuses == [200, 200, 200, 429]
    assert int(client.get(path_of(created)).headers["Retry-After"]) >= 1


def test_physician_feed_lists_approvals_waiting(client, bearer, clinic, db_session, settings):
    start = clock.clinic_today("America/New_York") - dt.timedelta(days=28)
    tapers.create_plan(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        tapers.PlanInput(
            drug="prednisone", start_mg=20, template="banded", starts_on=start, reason="DM"
        ),
        settings,
        start,
    )
    created = subscribe(client, bearer, clinic.physician, "physician", clinic.physician.id)
    summaries = [str(e["SUMMARY"]) for e in events(client.get(path_of(created)).get_data())]
    assert any(s.startswith("Taper step waiting for approval:") for s in summaries)
    other = subscribe  # a nurse cannot subscribe to a physician's feed
    response = client.post(
        "/api/v1/subscriptions",
        headers=bearer(clinic.nurse),
        json={"scope": "physician", "scope_id": clinic.physician.id},
    )
    assert response.status_code == 403 and other


def test_detailed_names_round_trip_exactly(
    database_url, session_factory, bearer, make_user, db_session
):
    settings = make_settings(database_url, feeds={"staff_detail": "full_names"})
    app = create_app(settings, session_factory=session_factory)
    client = app.test_client()
    center = make_center(db_session, "Zentrum; Süd, \\ 東京")
    nurse, physician = make_user("nurse"), make_user("physician")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    patient = make_patient(db_session, holder.nursing, center, settings, mrn="ODD-1")
    patient.family_name, patient.given_name = (
        "O'Brien, Jr; \\x",
        "Zoë\nATTENDEE:mailto:evil@example.com",
    )
    db_session.commit()
    regimen_service.set_regimen(
        db_session,
        holder.doctor,
        patient.id,
        regimen_input(starts_on=next_monday()),
        settings,
        now=at(dt.date.today()),
    )
    created = subscribe(client, bearer, nurse, "center", center.id, privacy="detailed")
    body = client.get(path_of(created)).get_data()
    event = events(body)[0]
    assert str(event["SUMMARY"]) == f"Infusion: {patient.family_name}, {patient.given_name}"
    assert str(event["LOCATION"]).startswith("Zentrum; Süd, \\ 東京")
    assert "ATTENDEE" not in event
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))


def test_feed_tokens_never_reach_the_logs(caplog):
    logs.install("test.access")
    with caplog.at_level(logging.INFO, logger="test.access"):
        logging.getLogger("test.access").info(
            '"GET %s HTTP/1.1" 200', "/feeds/abcDEF123_-xyz.ics?x=1"
        )
    assert "abcDEF123" not in caplog.text and "/feeds/[redacted].ics" in caplog.text


def test_creating_a_feed_is_audited_and_the_token_is_not_stored(client, bearer, clinic, db_session):
    created = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    token = path_of(created).rsplit("/", 1)[1].removesuffix(".ics")
    assert len(token) >= 43  # >= 256 bits of randomness
    stored = db_session.get(Subscription, created["id"])
    assert token not in (stored.token_hash, stored.token_prefix)
    event = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "feed.create"))
    assert token not in str(event.after)


def test_physician_feed_shows_a_suggestion_waiting_without_its_content(
    client, bearer, clinic, db_session
):
    db_session.add(
        Suggestion(
            patient_id=clinic.patient.id,
            dedupe_key="feed-test",
            kind="deescalate_ivig",
            rule_id="ivig_deescalation",
            rule_version=1,
            indicator="info",
            summary="Stable responder: lower the IVIG dose 2 -> 1.5 g/kg",
            detail="...",
            proposal={},
            facts={},
            evidence=[],
        )
    )
    db_session.commit()
    created = subscribe(client, bearer, clinic.physician, "physician", clinic.physician.id)
    body = client.get(path_of(created)).get_data().decode()
    assert "Suggestion waiting for a decision:" in body
    assert "ivig" not in body.lower() and "g/kg" not in body


def test_one_appointment_file_matches_the_feed_and_says_cancelled(
    app, client, bearer, clinic, db_session
):
    # House in order: the single-appointment file built its event apart from the feeds and
    # never said "Cancelled:" for a cancelled appointment.
    from tests.conftest import login

    infusion = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == clinic.patient.id).order_by(Infusion.id)
    ).first()
    web = app.test_client()
    login(web, clinic.nurse.email)
    [booked] = events(web.get(f"/infusions/{infusion.id}.ics").get_data())
    assert str(booked["SUMMARY"]) == "Infusion appointment"
    cancel = client.post(
        f"/api/v1/infusions/{infusion.id}/cancel",
        headers=bearer(clinic.nurse),
        json={"reason": "patient unwell"},
    )
    assert cancel.status_code == 200, cancel.json
    [gone] = events(web.get(f"/infusions/{infusion.id}.ics").get_data())
    assert (str(gone["STATUS"]), str(gone["SUMMARY"])) == (
        "CANCELLED",
        "Cancelled: Infusion appointment",
    )
    assert int(gone["SEQUENCE"]) == int(booked["SEQUENCE"]) + 1
    created = subscribe(client, bearer, clinic.nurse, "patient", clinic.patient.id)
    in_feed = {str(e["UID"]): e for e in events(client.get(path_of(created)).get_data())}
    assert in_feed[str(gone["UID"])].to_ical() == gone.to_ical()


def test_a_cancelled_event_leaves_the_feed_after_the_retention_without_a_stale_304(
    client, bearer, clinic, db_session, settings
):
    from app.models import InfusionStatus
    from app.services import infusions

    created = subscribe(client, bearer, clinic.nurse, "patient", clinic.patient.id)
    first = db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.patient_id == clinic.patient.id)
        .order_by(Infusion.planned_date)
    ).first()
    infusions.set_status(
        db_session, clinic.nursing, first.id, InfusionStatus.CANCELLED, "Patient moved away"
    )
    shown = client.get(path_of(created))
    uids = {str(e["UID"]): str(e["STATUS"]) for e in events(shown.get_data())}
    assert list(uids.values()).count("CANCELLED") == 1
    days = settings.feeds.cancelled_retention_days
    clock.set_now(first.updated_at + dt.timedelta(days=days + 1))
    later = client.get(path_of(created), headers={"If-None-Match": shown.headers["ETag"]})
    assert later.status_code == 200  # the day moved: no stale 304
    assert all(str(e["STATUS"]) != "CANCELLED" for e in events(later.get_data()))
    assert len(events(later.get_data())) == len(uids) - 1
