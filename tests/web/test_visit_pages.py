"""The visit page at the chair through the Flask test client: each step's form, the page
showing what comes next, refused steps with their problems by their fields."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app import clock
from app.models import AuditEvent
from tests.conftest import csrf_of
from tests.db.test_visits import booked, minutes
from tests.web.test_care_pages import logged_in, text_of
from tests.web.test_form_errors import seen

__all__ = ["booked"]
NEW_YORK = ZoneInfo("America/New_York")


def local(moment: dt.datetime) -> str:
    return moment.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M")


def test_the_nurse_runs_a_visit_from_the_page(app, db_session, booked):
    clinic, infusion = booked
    nurse = logged_in(app, clinic.nurse)
    url = f"/infusions/{infusion.id}/visit"
    page = nurse.get(url)
    assert page.status_code == 200
    assert f"MRN {clinic.patient.mrn}" in text_of(
        page
    ) and 'data-testid="check-in-form"' in text_of(page)

    def post(step: str, **fields: str):
        return nurse.post(f"{url}/{step}", data={"csrf_token": csrf_of(nurse)} | fields)

    version = str(infusion.version)
    assert post("check-in", at=local(minutes(infusion, -15)), version=version).status_code == 302
    db_session.refresh(infusion)
    # A check with a vital sign out of range: shown under the field by its label; nothing kept.
    refused = post(
        "check",
        weight_kg="100",
        taken_at=local(minutes(infusion, -10)),
        pulse_bpm="300",
        version=str(infusion.version),
    )
    assert refused.status_code == 422
    assert seen(refused).errors == {"pulse_bpm": "300 /min is outside 20-250 /min"}
    assert ("#check-pulse_bpm", "Pulse (/min): 300 /min is outside 20-250 /min") in seen(
        refused
    ).listed
    assert (
        post(
            "check",
            weight_kg="100",
            taken_at=local(minutes(infusion, -10)),
            pulse_bpm="72",
            version=str(infusion.version),
        ).status_code
        == 302
    )
    assert (
        post(
            "premedication",
            name="Paracetamol (acetaminophen)",
            dose="1000",
            given_at=local(minutes(infusion, -5)),
        ).status_code
        == 302
    )
    clock.set_now(minutes(infusion, 240))
    nurse = logged_in(app, clinic.nurse)  # the idle timeout ended the session meanwhile
    db_session.refresh(infusion)
    assert (
        post("start", at=local(minutes(infusion, 0)), version=str(infusion.version)).status_code
        == 302
    )
    page = text_of(nurse.get(url))
    assert 'data-testid="rate-plan"' in page and "mL/h" in page
    assert (
        post(
            "rate-step",
            started_at=local(minutes(infusion, 0)),
            rate_ml_per_h="49.4",
            action="step",
            pulse_bpm="70",
        ).status_code
        == 302
    )
    too_fast = post(
        "rate-step", started_at=local(minutes(infusion, 30)), rate_ml_per_h="900", action="step"
    )
    assert too_fast.status_code == 422
    assert "above the maximum of 0.04 mL/kg/min" in seen(too_fast).errors["rate_ml_per_h"]
    db_session.refresh(infusion)
    size, count = infusion.planned_vials[0]
    rows = {}
    for row, (size, count) in enumerate(infusion.planned_vials):
        rows |= {
            f"vials.{row}.lot_number": f"ab {row}",
            f"vials.{row}.expires_on": "2027-01-31",
            f"vials.{row}.vial_grams": f"{size:g}",
            f"vials.{row}.count": str(int(count)),
        }
    short = dict(rows) | {"vials.0.count": str(int(infusion.planned_vials[0][1]) + 1)}
    wrong = post(
        "complete", ended_at=local(minutes(infusion, 230)), version=str(infusion.version), **short
    )
    assert wrong.status_code == 422 and "vials" in seen(wrong).errors
    assert seen(wrong).values["vials.0.lot_number"] == "ab 0"
    done = post(
        "complete", ended_at=local(minutes(infusion, 230)), version=str(infusion.version), **rows
    )
    assert done.status_code == 302, text_of(done)
    record = text_of(nurse.get(f"{url}/record"))
    assert "AB0" in record and "Status: <strong>given</strong>" in record


def test_allergies_and_iga_deficiency_are_kept_and_shown_at_the_visit(app, db_session, booked):
    clinic, infusion = booked
    nurse = logged_in(app, clinic.nurse)
    fields = {
        "csrf_token": csrf_of(nurse),
        "height_cm": "175",
        "allergies": "Penicillin (rash)",
        "iga_deficient": "on",
    }
    assert nurse.post(f"/patients/{clinic.patient.id}/details", data=fields).status_code == 302
    visit = text_of(nurse.get(f"/infusions/{infusion.id}/visit"))
    assert "Penicillin (rash)" in visit and 'data-testid="iga"' in visit
    cleared = fields | {"allergies": "", "iga_deficient": ""}
    cleared.pop("iga_deficient")
    assert nurse.post(f"/patients/{clinic.patient.id}/details", data=cleared).status_code == 302
    db_session.refresh(clinic.patient)
    assert clinic.patient.allergies is None and clinic.patient.iga_deficient is False
    events = db_session.scalars(
        sa.select(AuditEvent.after)
        .where(AuditEvent.action == "patient.update")
        .order_by(AuditEvent.id)
    ).all()
    assert [e["allergies"] for e in events] == ["Penicillin (rash)", None]


def test_a_dose_past_the_threshold_waits_in_the_physicians_worklist(
    app, db_session, settings, booked
):
    from app.services import visits

    clinic, infusion = booked
    clinic.patient.treating_physician_id = clinic.physician.id
    db_session.commit()
    visits.check_in(db_session, clinic.nursing, infusion.id, minutes(infusion, -15), settings)
    visits.record_check(
        db_session,
        clinic.nursing,
        infusion.id,
        120.0,
        visits.Vitals(pulse_bpm=70),
        minutes(infusion, -10),
        settings,
    )
    nurse_view = text_of(logged_in(app, clinic.nurse).get(f"/infusions/{infusion.id}/visit"))
    assert (
        "waits for a physician's approval" in nurse_view
        and 'data-testid="approve-dose-form"' not in nurse_view
    )
    doctor = logged_in(app, clinic.physician)
    home = text_of(doctor.get("/"))
    assert '<strong data-testid="dose-approval-count">1</strong>' in home
    assert (
        f"/infusions/{infusion.id}/visit" in home and f"booked {infusion.planned_grams:g} g" in home
    )
    db_session.refresh(infusion)
    approved = doctor.post(
        f"/infusions/{infusion.id}/visit/approve-dose",
        data={"csrf_token": csrf_of(doctor), "version": str(infusion.version)},
    )
    assert approved.status_code == 302
    assert '<strong data-testid="dose-approval-count">0</strong>' in text_of(doctor.get("/"))
    db_session.refresh(infusion)
    assert (
        infusion.dose_approval == "approved" and infusion.dose_approved_by_id == clinic.physician.id
    )


def test_an_open_serious_reaction_from_an_earlier_day_is_a_banner_at_the_visit(
    app,
    db_session,
    booked,
):
    from app.models import AdverseEvent

    clinic, infusion = booked
    db_session.add(
        AdverseEvent(
            patient_id=clinic.patient.id,
            occurred_on=infusion.planned_date - dt.timedelta(days=28),
            event_type="thrombosis",
            grade=3,
            serious=True,
            description="DVT left leg",
        )
    )
    db_session.commit()
    page = text_of(logged_in(app, clinic.nurse).get(f"/infusions/{infusion.id}/visit"))
    assert 'data-testid="open-serious"' in page
    assert "thrombosis, grade 3" in page and "DVT left leg" in page
