"""Cancelling an infusion asks once and can be undone while its slot is free (clinic setup)."""

from __future__ import annotations

import sqlalchemy as sa

from app.models import AuditEvent, Infusion, InfusionStatus
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import make_patient
from tests.web.test_care_pages import logged_in, next_monday, text_of
from tests.web.test_closures import book, clinic

__all__ = ["clinic"]


def first_booked(db_session, patient_id: int) -> Infusion:
    return db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.patient_id == patient_id, Infusion.status == InfusionStatus.SCHEDULED)
        .order_by(Infusion.planned_date)
    ).first()


def test_a_cancelled_infusion_is_booked_again_on_its_slot(app, clinic, db_session, settings):
    book(db_session, clinic, settings, next_monday())
    infusion = first_booked(db_session, clinic.patient.id)
    chair, starts = infusion.chair_id, infusion.starts_at
    nurse = logged_in(app, clinic.nurse)
    page = text_of(nurse.get(f"/infusions/{infusion.id}"))
    assert "Cancel this infusion of Example, CL-1 on" in page  # asks once (data-confirm)
    nurse.post(
        f"/infusions/{infusion.id}/cancel",
        data={"csrf_token": csrf_of(nurse), "version": str(infusion.version), "reason": "Flu"},
    )
    db_session.expire_all()
    assert db_session.get(Infusion, infusion.id).status == InfusionStatus.CANCELLED
    page = text_of(nurse.get(f"/infusions/{infusion.id}"))
    assert 'data-testid="undo-cancel"' in page
    version = db_session.get(Infusion, infusion.id).version
    undone = nurse.post(
        f"/infusions/{infusion.id}/undo-cancel",
        data={"csrf_token": csrf_of(nurse), "version": str(version)},
    )
    assert undone.status_code == 302
    db_session.expire_all()
    again = db_session.get(Infusion, infusion.id)
    assert (again.status, again.chair_id, again.starts_at) == (
        InfusionStatus.SCHEDULED,
        chair,
        starts,
    )
    assert "infusion.undo_cancel" in set(db_session.scalars(sa.select(AuditEvent.action)))


def test_undo_is_refused_once_the_slot_is_taken(app, clinic, db_session, settings, bearer):
    book(db_session, clinic, settings, next_monday())
    infusion = first_booked(db_session, clinic.patient.id)
    headers = bearer(clinic.nurse)
    api = app.test_client()
    cycle = db_session.scalars(
        sa.select(Infusion.id).where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.cycle_number == infusion.cycle_number,
        )
    ).all()
    for day in cycle:  # the whole cycle is cancelled: flu
        cancelled = api.post(
            f"/api/v1/infusions/{day}/cancel", json={"reason": "Flu"}, headers=headers
        )
        assert cancelled.status_code == 200
    # The freed chair is given to another patient at that time.
    for chair in clinic.center.chairs[1:]:
        chair.active = False
    db_session.commit()
    other = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn="CL-7")
    book(db_session, clinic, settings, next_monday(), patient=other)
    taken = first_booked(db_session, other.id)
    assert (taken.chair_id, taken.starts_at) == (infusion.chair_id, infusion.starts_at)
    refused = api.post(f"/api/v1/infusions/{infusion.id}/undo-cancel", json={}, headers=headers)
    assert refused.status_code == 409, refused.json
    assert "given to someone else" in refused.json["error"]["message"]
    db_session.expire_all()
    assert db_session.get(Infusion, infusion.id).status == InfusionStatus.CANCELLED
