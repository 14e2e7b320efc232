"""The placement queue: a nurse puts the days left without a chair into free slots."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from app.models import AuditEvent, Infusion, InfusionStatus
from app.services import centers as center_service
from app.services.context import Actor
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import NEW_YORK, at
from tests.web.test_care_pages import logged_in, next_monday, text_of
from tests.web.test_closures import book, clinic

__all__ = ["clinic"]


def waiting_ids(db_session, patient_id: int) -> list[int]:
    db_session.expire_all()
    return list(
        db_session.scalars(
            sa.select(Infusion.id)
            .where(Infusion.patient_id == patient_id, Infusion.status == InfusionStatus.UNBOOKED)
            .order_by(Infusion.planned_date)
        )
    )


def test_a_nurse_places_the_days_left_without_a_chair(app, clinic, db_session, settings, make_user):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    admin = make_user("admin")
    actor = Actor(label=admin.email, user_id=admin.id, role="admin")
    now = at(monday - dt.timedelta(days=3))
    for chair in clinic.center.chairs:  # the chairs go for repair: nothing has a place
        center_service.update_chair(
            db_session,
            actor,
            chair.id,
            center_service.ChairInput(chair.name, active=False),
            settings,
            now,
        )
    first = clinic.center.chairs[0]
    center_service.update_chair(
        db_session, actor, first.id, center_service.ChairInput(first.name), settings, now
    )
    waiting = waiting_ids(db_session, clinic.patient.id)
    assert len(waiting) > 2

    nurse = logged_in(app, clinic.nurse)
    page = text_of(nurse.get(f"/centers/{clinic.center.id}/placements"))
    rows = re.findall(r'data-testid="waiting" data-infusion="(\d+)"', page)
    assert [int(r) for r in rows] == waiting
    assert "Chair 1" in page and "taken out of use" in page
    offers = re.findall(
        rf'placements/{waiting[0]}">.*?name="version" value="(\d+)">'
        r'.*?name="chair_id" value="(\d+)">.*?name="starts_at" value="([^"]+)">',
        page,
        re.S,
    )
    assert offers and {int(chair) for _v, chair, _s in offers} == {first.id}
    version, chair_id, starts_at = offers[0]
    placed = nurse.post(
        f"/centers/{clinic.center.id}/placements/{waiting[0]}",
        data={
            "csrf_token": csrf_of(nurse),
            "version": version,
            "chair_id": chair_id,
            "starts_at": starts_at,
        },
    )
    assert placed.status_code == 302
    infusion = db_session.get(Infusion, waiting[0])
    assert infusion.status == InfusionStatus.SCHEDULED and infusion.chair_id == first.id
    assert infusion.starts_at == dt.datetime.fromisoformat(starts_at)
    assert infusion.starts_at.astimezone(NEW_YORK).time() == dt.time(9)  # the preferred time
    assert waiting_ids(db_session, clinic.patient.id) == waiting[1:]
    assert "Placed Example, CL-1" in text_of(nurse.get(f"/centers/{clinic.center.id}/placements"))
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "infusion.reschedule")
    ).one()
    assert event.actor_user_id == clinic.nurse.id

    # The same offer again (another nurse was quicker) is refused, not double-booked.
    again = nurse.post(
        f"/centers/{clinic.center.id}/placements/{waiting[1]}",
        data={"csrf_token": csrf_of(nurse), "chair_id": chair_id, "starts_at": starts_at},
    )
    assert again.status_code in (409, 422)
    assert waiting_ids(db_session, clinic.patient.id) == waiting[1:]


def test_an_empty_queue_says_so(app, clinic):
    page = text_of(logged_in(app, clinic.nurse).get(f"/centers/{clinic.center.id}/placements"))
    assert "Nothing is waiting" in page
