"""Setting up and editing centers on a real database: what a change to a center's calendar
does to the infusions booked there, and what it refuses."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Center, Infusion, InfusionStatus
from app.services import centers as center_service
from app.services import integrity
from app.services import regimens as regimen_service
from app.services.context import Actor
from app.services.errors import Conflict, InvalidInput
from tests.db.clinic_fixtures import (
    NEW_YORK,
    Clinic,
    at,
    make_center,
    make_patient,
    regimen_input,
)

NOW = at(dt.date(2026, 10, 1))
WEEKDAYS_8_TO_18 = tuple(center_service.DayHours(d, dt.time(8), dt.time(18), 2) for d in range(5))


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings)
    return holder


@pytest.fixture
def admin(make_user) -> Actor:
    user = make_user("admin")
    return Actor(label=user.email, user_id=user.id, role="admin")


def described(center: Center, **changes: object) -> center_service.CenterInput:
    """The center as it is, with some fields changed (what the edit page sends)."""
    values: dict[str, object] = {
        "name": center.name,
        "timezone": center.timezone,
        "address": center.address,
        "holiday_country": center.holiday_country,
        "holiday_subdivision": center.holiday_subdivision,
        "hours": tuple(
            center_service.DayHours(h.weekday, h.opens_at, h.closes_at, h.nurses)
            for h in center.opening_hours
        ),
    }
    values.update(changes)
    return center_service.CenterInput(**values)  # type: ignore[arg-type]


def booked(db_session, patient_id: int) -> list[Infusion]:
    return list(
        db_session.scalars(
            sa.select(Infusion)
            .where(Infusion.patient_id == patient_id, Infusion.status != InfusionStatus.CANCELLED)
            .order_by(Infusion.planned_date)
        )
    )


def count(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


def book(db_session, clinic: Clinic, settings, **changes: object) -> None:
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(**changes), settings, now=NOW
    )


def test_a_center_is_created_with_its_week_and_chairs_and_audited(db_session, admin):
    center = center_service.create_center(
        db_session,
        admin,
        center_service.CenterInput(
            name="  Lakeside Infusion  ",
            timezone="Europe/Oslo",
            address="Fjordveien 1",
            holiday_country="NO",
            hours=(
                *center_service.week_from_text("Mon-Thu 08:00-16:00", nurses=3),
                center_service.DayHours(4, dt.time(8), dt.time(14), 2),
            ),
            chairs=(
                center_service.ChairInput("Recliner 1"),
                center_service.ChairInput("Bed 1", kind="bed", notes="By the window"),
            ),
        ),
    )
    db_session.expire_all()
    center = db_session.get(Center, center.id)
    assert center.name == "Lakeside Infusion" and center.holiday_country == "NO"
    assert [(h.weekday, h.opens_at, h.closes_at, h.nurses) for h in center.opening_hours] == [
        (0, dt.time(8), dt.time(16), 3),
        (1, dt.time(8), dt.time(16), 3),
        (2, dt.time(8), dt.time(16), 3),
        (3, dt.time(8), dt.time(16), 3),
        (4, dt.time(8), dt.time(14), 2),
    ]
    assert [(c.name, c.kind, c.notes) for c in center.chairs] == [
        ("Recliner 1", "recliner", None),
        ("Bed 1", "bed", "By the window"),
    ]
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "center.create")
    ).one()
    assert event.entity_id == str(center.id)
    assert event.after["hours"][4] == {
        "weekday": 4,
        "opens_at": "08:00:00",
        "closes_at": "14:00:00",
        "nurses": 2,
    }
    assert [c["name"] for c in event.after["chairs"]] == ["Recliner 1", "Bed 1"]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "not an IANA time zone"),
        ({"name": " "}, "name", "give the center's name"),
        ({"holiday_country": "XX"}, "holiday_country", "'XX' is not a country"),
        ({"holiday_country": "US", "holiday_subdivision": "ZZ"}, "holiday_subdivision", "of US"),
        ({"holiday_subdivision": "NY"}, "holiday_subdivision", "set the holiday country first"),
        (
            {"hours": (center_service.DayHours(0, dt.time(18), dt.time(8)),)},
            "hours",
            "Monday closes (08:00) before it opens (18:00)",
        ),
        (
            {"hours": (center_service.DayHours(2, dt.time(8), dt.time(18), nurses=0),)},
            "hours",
            "Wednesday needs 1 to 100 infusion nurses (got 0)",
        ),
        (
            {"hours": (*WEEKDAYS_8_TO_18, center_service.DayHours(1, dt.time(9), dt.time(12)))},
            "hours",
            "Tuesday is given twice",
        ),
        (
            {"chairs": (center_service.ChairInput("A"), center_service.ChairInput("a"))},
            "chairs",
            "'a' is given twice",
        ),
        ({"chairs": (center_service.ChairInput("A", kind="sofa"),)}, "kind", "one of recliner"),
    ],
)
def test_a_center_that_cannot_work_is_refused_and_nothing_is_written(
    db_session, admin, changes, field, words
):
    before = (count(db_session, Center), count(db_session, AuditEvent))
    values: dict[str, object] = {"name": "New", "timezone": "UTC", "hours": WEEKDAYS_8_TO_18}
    with pytest.raises(InvalidInput) as refused:
        center_service.create_center(
            db_session,
            admin,
            center_service.CenterInput(**(values | changes)),  # type: ignore[arg-type]
        )
    assert refused.value.field == field
    assert words in refused.value.message
    assert (count(db_session, Center), count(db_session, AuditEvent)) == before


def test_a_second_center_of_the_same_name_is_a_conflict(db_session, admin, clinic):
    with pytest.raises(Conflict, match="already called 'test center'"):
        center_service.create_center(
            db_session, admin, center_service.CenterInput(name="test center", timezone="UTC")
        )


def test_shorter_hours_rebook_what_no_longer_fits_and_the_audit_says_so(
    db_session, clinic, settings, admin
):
    book(db_session, clinic, settings, preferred_time=dt.time(12, 30))  # 295 min: to 17:25
    ends = [i.ends_at.astimezone(NEW_YORK).time() for i in booked(db_session, clinic.patient.id)]
    assert ends and max(ends) > dt.time(16)
    hours = tuple(center_service.DayHours(d, dt.time(7), dt.time(16), 2) for d in range(5))
    _center, totals = center_service.update_center(
        db_session, admin, clinic.center.id, described(clinic.center, hours=hours), settings, NOW
    )
    assert totals["patients"] == 1 and totals["moved"] > 0
    future = [i for i in booked(db_session, clinic.patient.id) if i.planned_date >= NOW.date()]
    assert future and all(i.status == InfusionStatus.SCHEDULED for i in future)
    assert max(i.ends_at.astimezone(NEW_YORK).time() for i in future) <= dt.time(16)
    assert integrity.check_patient(db_session, clinic.patient.id, settings, NOW) == []
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "center.update")
    ).one()
    assert event.before["hours"][0]["closes_at"] == "18:00:00"
    assert event.after["hours"][0]["closes_at"] == "16:00:00"
    assert event.after["replan"] == totals


def test_a_weekday_no_longer_open_moves_its_cycles_to_open_days(
    db_session, clinic, settings, admin
):
    book(db_session, clinic, settings)  # Mondays and Tuesdays, from 2026-10-05
    assert {i.planned_date.weekday() for i in booked(db_session, clinic.patient.id)} == {0, 1}
    wed_to_fri = tuple(center_service.DayHours(d, dt.time(8), dt.time(18), 2) for d in (2, 3, 4))
    center_service.update_center(
        db_session,
        admin,
        clinic.center.id,
        described(clinic.center, hours=wed_to_fri),
        settings,
        NOW,
    )
    days = {i.planned_date.weekday() for i in booked(db_session, clinic.patient.id)}
    assert days <= {2, 3, 4}
    assert integrity.check_patient(db_session, clinic.patient.id, settings, NOW) == []


def test_public_holidays_close_a_center_that_opts_in(db_session, clinic, settings, admin):
    # 2027-09-06 is Labor Day, a Monday: cycle 13 starts on it.
    book(db_session, clinic, settings)
    holiday = dt.date(2027, 9, 6)
    assert holiday in {i.planned_date for i in booked(db_session, clinic.patient.id)}
    _center, totals = center_service.update_center(
        db_session,
        admin,
        clinic.center.id,
        described(clinic.center, holiday_country="US", holiday_subdivision="NY"),
        settings,
        NOW,
    )
    assert totals["patients"] == 1
    assert holiday not in {i.planned_date for i in booked(db_session, clinic.patient.id)}
    assert integrity.check_patient(db_session, clinic.patient.id, settings, NOW) == []
    # Another center, not opted in, keeps the clinic's default: open on the holiday.
    other = make_center(db_session, name="Other")
    assert center_service.rebook_misfits(db_session, other, settings, NOW, "none") == {
        "patients": 0,
        "moved": 0,
        "created": 0,
        "cancelled": 0,
        "unbooked": 0,
    }


def test_the_time_zone_cannot_change_under_booked_infusions(db_session, clinic, settings, admin):
    book(db_session, clinic, settings)
    with pytest.raises(Conflict) as refused:
        center_service.update_center(
            db_session,
            admin,
            clinic.center.id,
            described(clinic.center, timezone="America/Chicago"),
            settings,
            NOW,
        )
    assert refused.value.field == "timezone"
    db_session.expire_all()
    assert db_session.get(Center, clinic.center.id).timezone == "America/New_York"
    empty = make_center(db_session, name="Empty")
    changed, _ = center_service.update_center(
        db_session, admin, empty.id, described(empty, timezone="America/Chicago"), settings, NOW
    )
    assert changed.timezone == "America/Chicago"


def test_a_retired_chair_gives_up_its_bookings(db_session, clinic, settings, admin):
    book(db_session, clinic, settings)
    first = clinic.center.chairs[0]
    assert any(i.chair_id == first.id for i in booked(db_session, clinic.patient.id))
    chair, totals = center_service.update_chair(
        db_session,
        admin,
        first.id,
        center_service.ChairInput(first.name, kind="bed", active=False, notes="Broken recline"),
        settings,
        NOW,
    )
    assert (chair.active, chair.kind, chair.notes) == (False, "bed", "Broken recline")
    assert totals["patients"] == 1
    future = [i for i in booked(db_session, clinic.patient.id) if i.planned_date >= NOW.date()]
    assert future and all(i.chair_id != first.id for i in future)
    assert integrity.check_patient(db_session, clinic.patient.id, settings, NOW) == []
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "chair.update")
    ).one()
    assert (event.before["active"], event.after["active"]) == (True, False)


def test_with_no_chair_left_the_days_wait_for_a_nurse(db_session, clinic, settings, admin):
    book(db_session, clinic, settings)
    for chair in clinic.center.chairs:
        center_service.update_chair(
            db_session,
            admin,
            chair.id,
            center_service.ChairInput(chair.name, active=False),
            settings,
            NOW,
        )
    future = [i for i in booked(db_session, clinic.patient.id) if i.planned_date >= NOW.date()]
    assert future and {i.status for i in future} == {InfusionStatus.UNBOOKED}
    assert all(i.chair_id is None for i in future)


def test_chairs_are_added_once_by_name(db_session, clinic, admin):
    chair = center_service.add_chair(
        db_session, admin, clinic.center.id, center_service.ChairInput("Bed A", kind="bed")
    )
    assert chair.center_id == clinic.center.id and chair.active
    with pytest.raises(Conflict, match="already has a chair called 'Bed A'"):
        center_service.add_chair(
            db_session, admin, clinic.center.id, center_service.ChairInput("bed a")
        )


def test_weekly_hours_read_from_text():
    assert center_service.week_from_text("Tue-Thu 09:00-17:30", nurses=4) == tuple(
        center_service.DayHours(d, dt.time(9), dt.time(17, 30), 4) for d in (1, 2, 3)
    )
    assert center_service.week_from_text("saturday 09:00-13:00") == (
        center_service.DayHours(5, dt.time(9), dt.time(13), 1),
    )
    for text in ("Mon-Fry 08:00-18:00", "Mon 8-18", "Mon-Fri", "every day"):
        with pytest.raises(InvalidInput, match="like 'Mon-Fri 08:00-18:00'"):
            center_service.week_from_text(text)
