"""Feeds that stay true (issue 11): 304s across the center's midnight, privacy settings read at
each render, and calendar names that clients read back as written."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest

from app import clock, create_app
from app.services import regimens as regimen_service
from app.services import tapers
from tests.conftest import make_settings
from tests.db.clinic_fixtures import Clinic, make_center, make_patient, regimen_input

NEW_YORK = ZoneInfo("America/New_York")


def new_york(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK)


def subscribe(client, bearer, user, scope, scope_id, **extra) -> str:
    response = client.post(
        "/api/v1/subscriptions",
        headers=bearer(user),
        json={"scope": scope, "scope_id": scope_id} | extra,
    )
    assert response.status_code == 201, response.json
    return response.json["url"].split("://", 1)[1].split("/", 1)[1].join(["/", ""])


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings)
    holder.patient.treating_physician_id = physician.id
    db_session.commit()
    return holder


def taper_from(db_session, clinic: Clinic, settings, start: dt.date):
    """A prednisone taper from 20 mg begun on `start` (its next step waits for approval)."""
    return tapers.create_plan(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        tapers.PlanInput(
            drug="prednisone", start_mg=20, template="banded", starts_on=start, reason="DM"
        ),
        settings,
        start,
    )


def test_a_physician_feed_changes_at_the_centers_midnight_not_a_stale_304(
    client, bearer, clinic, db_session, settings
):
    day = clock.clinic_today("America/New_York") + dt.timedelta(days=2)
    taper_from(db_session, clinic, settings, day - dt.timedelta(days=40))  # due for days
    path = subscribe(client, bearer, clinic.physician, "physician", clinic.physician.id)
    # 20:00 in New York is already tomorrow in UTC; 00:30 the next night is the same UTC date.
    clock.set_now(new_york(day, 20))
    evening = client.get(path)
    shown = {
        e["DTSTART"].dt
        for e in icalendar.Calendar.from_ical(evening.get_data()).walk("VEVENT")
        if str(e["SUMMARY"]).startswith("Taper step")
    }
    assert shown == {day}
    clock.set_now(new_york(day + dt.timedelta(days=1), 0, 30))
    after_midnight = client.get(path, headers={"If-None-Match": evening.headers["ETag"]})
    assert after_midnight.status_code == 200  # the step now shows on the new local day
    shown = {
        e["DTSTART"].dt
        for e in icalendar.Calendar.from_ical(after_midnight.get_data()).walk("VEVENT")
        if str(e["SUMMARY"]).startswith("Taper step")
    }
    assert shown == {day + dt.timedelta(days=1)}


def test_lowering_staff_detail_stops_existing_detailed_feeds_naming_patients(
    database_url, session_factory, bearer, clinic, db_session, settings
):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=clock.clinic_today("America/New_York") + dt.timedelta(days=7)),
        settings,
    )
    detailed_app = create_app(
        make_settings(database_url, feeds={"staff_detail": "full_names"}),
        session_factory=session_factory,
    )
    path = subscribe(
        detailed_app.test_client(),
        bearer,
        clinic.nurse,
        "center",
        clinic.center.id,
        privacy="detailed",
    )
    name = f"{clinic.patient.family_name}, {clinic.patient.given_name}"
    body = detailed_app.test_client().get(path).get_data().decode()
    assert name in body.replace("\\,", ",")
    cautious_app = create_app(settings, session_factory=session_factory)  # staff_detail initials
    body = cautious_app.test_client().get(path).get_data().decode()
    assert name not in body.replace("\\,", ",") and "Infusion: TE #" in body.replace("\r\n ", "")


def test_a_chair_feed_name_reads_back_as_written(client, bearer, clinic):
    path = subscribe(client, bearer, clinic.nurse, "chair", clinic.center.chairs[0].id)
    body = client.get(path).get_data()
    calendar = icalendar.Calendar.from_ical(body)
    name = str(calendar["NAME"])
    assert name == "Test Center · Chair 1: infusions"
    assert b"\\," not in body.split(b"BEGIN:VEVENT")[0]


def test_a_day_stranded_by_a_closure_shows_as_cancelled_not_gone(
    client, bearer, clinic, db_session, settings, make_user
):
    import sqlalchemy as sa

    from app.models import Infusion, InfusionStatus
    from app.services import centers
    from app.services.context import Actor
    from tests.db.clinic_fixtures import give

    monday = clock.clinic_today("America/New_York") + dt.timedelta(days=7)
    monday -= dt.timedelta(days=monday.weekday())
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(starts_on=monday), settings
    )
    path = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    first, second = db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.patient_id == clinic.patient.id)
        .order_by(Infusion.planned_date)
        .limit(2)
    ).all()
    clock.set_now(new_york(monday, 20))
    give(db_session, clinic.nursing, first, settings)  # cycle 1 has begun
    admin = make_user("admin")
    centers.add_closure(
        db_session,
        Actor(label=admin.email, user_id=admin.id, role="admin"),
        clinic.center.id,
        centers.ClosureInput(second.planned_date, "Burst pipe"),
        settings,
    )
    db_session.refresh(second)
    assert second.status == InfusionStatus.CANCELLED and second.starts_at is not None
    waiting = db_session.scalar(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id, Infusion.status == InfusionStatus.UNBOOKED
        )
    )
    assert (waiting.cycle_number, waiting.day_number) == (1, 2)  # a nurse places the day
    feed = icalendar.Calendar.from_ical(client.get(path).get_data())
    (event,) = [e for e in feed.walk("VEVENT") if str(e["UID"]).startswith(second.uid)]
    assert str(event["STATUS"]) == "CANCELLED" and str(event["SUMMARY"]).startswith("Cancelled:")
    assert event["DTSTART"].dt == second.starts_at


def test_feeds_answer_304_from_their_own_rows_and_writes_touch_no_shared_counter(
    client, bearer, clinic, db_session, settings, make_user
):
    import sqlalchemy as sa

    from app.models import ContentRevision, Infusion
    from app.services import infusions as infusion_service

    monday = clock.clinic_today("America/New_York") + dt.timedelta(days=7)
    monday -= dt.timedelta(days=monday.weekday())
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(starts_on=monday), settings
    )
    other = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn="T-2")
    regimen_service.set_regimen(
        db_session, clinic.doctor, other.id, regimen_input(starts_on=monday), settings
    )
    first = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == clinic.patient.id).order_by(Infusion.id)
    ).first()
    theirs = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == other.id).order_by(Infusion.id)
    ).first()
    mine = subscribe(client, bearer, clinic.nurse, "patient", clinic.patient.id)
    center = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    tags = {path: client.get(path).headers["ETag"] for path in (mine, center)}

    def fresh(path: str) -> bool:
        return client.get(path, headers={"If-None-Match": tags[path]}).status_code == 200

    names_before = db_session.scalar(sa.select(ContentRevision.revision))
    # Another patient's appointment moves: the center's feed changes, this patient's does not,
    # and the write updated no clinic-wide row.
    infusion_service.reschedule(
        db_session,
        clinic.nursing,
        theirs.id,
        theirs.chair_id,
        theirs.starts_at + dt.timedelta(hours=2),
        settings,
    )
    assert db_session.scalar(sa.select(ContentRevision.revision)) == names_before
    assert fresh(center) and not fresh(mine)
    # This patient's own appointment moves: their feed changes too.
    infusion_service.reschedule(
        db_session,
        clinic.nursing,
        first.id,
        first.chair_id,
        first.starts_at + dt.timedelta(hours=1),
        settings,
    )
    assert fresh(mine)
    tags[center] = client.get(center).headers["ETag"]
    # A name the center feed shows (its initials) changes: only the names revision moves.
    other.given_name = "Quentin"
    db_session.commit()
    assert db_session.scalar(sa.select(ContentRevision.revision)) == names_before + 1
    assert fresh(center)


def test_a_busy_centers_feed_stays_under_the_size_limit_nearest_first(
    database_url, session_factory, bearer, clinic, db_session, settings
):
    import sqlalchemy as sa

    from app.models import Infusion

    small = make_settings(database_url, feeds={"max_feed_kilobytes": 20, "staff_future_weeks": 60})
    app = create_app(small, session_factory=session_factory)
    start = clock.clinic_today("America/New_York") + dt.timedelta(days=7)
    for n in range(3):
        patient = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn=f"B-{n}")
        regimen_service.set_regimen(
            db_session,
            clinic.doctor,
            patient.id,
            regimen_input(starts_on=start + dt.timedelta(days=n)),
            settings,
        )
    booked = db_session.scalar(sa.select(sa.func.count(Infusion.id)))
    client = app.test_client()
    path = subscribe(client, bearer, clinic.nurse, "center", clinic.center.id)
    body = client.get(path).get_data()
    assert len(body) <= 20_000
    shown = [e["DTSTART"].dt for e in icalendar.Calendar.from_ical(body).walk("VEVENT")]
    assert 0 < len(shown) < booked  # the far future was left out, not the near
    assert shown == sorted(shown) and min(shown).date() <= start + dt.timedelta(days=3)


def test_a_waiting_steps_change_reaches_the_physician_feed_not_a_stale_304(
    client, bearer, clinic, db_session, settings
):
    """A step waiting for approval whose dose the physician changes keeps its id and its day:
    the feed's event still changes (a higher SEQUENCE, a new DTSTAMP), so no 304 may hide it."""
    start = clock.clinic_today("America/New_York") - dt.timedelta(days=40)
    plan = taper_from(db_session, clinic, settings, start)
    path = subscribe(client, bearer, clinic.physician, "physician", clinic.physician.id)

    def step_event(body: bytes):
        (event,) = [
            e
            for e in icalendar.Calendar.from_ical(body).walk("VEVENT")
            if str(e["SUMMARY"]).startswith("Taper step")
        ]
        return event

    first = client.get(path)
    before = step_event(first.get_data())
    waiting = tapers.next_step(plan.steps)
    assert waiting is not None
    tapers.change_step_dose(
        db_session,
        clinic.doctor,
        waiting.id,
        waiting.mg_per_day - 2.5,
        "slower at this dose",
        settings,
        expected_version=waiting.version,
    )
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200
    after = step_event(again.get_data())
    assert after["UID"] == before["UID"] and after["DTSTART"].dt == before["DTSTART"].dt
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
