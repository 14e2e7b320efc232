"""Shared set-up for regimen and infusion tests: a center, staff and the worked-example patient."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy.orm as so

from app.config import Settings
from app.models import Center, Chair, OpeningHours, Patient, User
from app.services import patients as patient_service
from app.services import regimens as regimen_service
from app.services.context import Actor

NEW_YORK = ZoneInfo("America/New_York")


@dataclass
class Clinic:
    center: Center
    physician: User
    nurse: User
    patient: Patient

    @property
    def doctor(self) -> Actor:
        return Actor(label=self.physician.email, user_id=self.physician.id, role="physician")

    @property
    def nursing(self) -> Actor:
        return Actor(label=self.nurse.email, user_id=self.nurse.id, role="nurse")


def make_center(session: so.Session, name: str = "Test Center", chairs: int = 3) -> Center:
    center = Center(name=name, timezone="America/New_York")
    center.opening_hours = [
        OpeningHours(weekday=day, opens_at=dt.time(8), closes_at=dt.time(18)) for day in range(5)
    ]
    center.chairs = [Chair(name=f"Chair {n}") for n in range(1, chairs + 1)]
    session.add(center)
    session.flush()
    return center


def make_clinic(session: so.Session, make_user, settings: Settings) -> Clinic:
    """A center with three chairs, a physician, a nurse and the worked-example patient."""
    center = make_center(session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(session, holder.nursing, center, settings)
    return holder


def make_patient(
    session: so.Session,
    actor: Actor,
    center: Center,
    settings: Settings,
    mrn: str = "T-100",
    weight_kg: float = 100.0,
    height_cm: float = 175.0,
    sex: str = "male",
    thrombosis_risk: bool = False,
) -> Patient:
    return patient_service.create_patient(
        session,
        actor,
        patient_service.PatientInput(
            mrn=mrn,
            family_name="Example",
            given_name=mrn,
            sex=sex,
            birth_date=dt.date(1970, 1, 1),
            home_center_id=center.id,
            height_cm=height_cm,
            weight_kg=weight_kg,
            thrombosis_risk=thrombosis_risk,
        ),
        settings,
        dt.date(2026, 1, 1),
    )


def regimen_input(**changes: object) -> regimen_service.RegimenInput:
    values: dict[str, object] = {
        "product": "Octagam 10%",
        "dose_g_per_kg": 2.0,
        "days_per_cycle": 2,
        "interval_weeks": 4,
        "weight_basis": "adjusted",
        "starts_on": dt.date(2026, 10, 5),
        "preferred_time": dt.time(9, 0),
        "reason": "Refractory cutaneous DM",
    }
    values.update(changes)
    return regimen_service.RegimenInput(**values)  # type: ignore[arg-type]


def at(day: dt.date, hour: int = 7) -> dt.datetime:
    """A moment on a New York wall clock, as the service's `now`."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=NEW_YORK)


def give(
    session: so.Session, actor: Actor, infusion: object, settings: Settings, lot: str = "L1"
) -> None:
    """Record an infusion as given, as planned (its planned grams, times and the top rate)."""
    from app.services import infusions

    infusions.record_given(
        session,
        actor,
        infusion.id,  # type: ignore[attr-defined]
        infusions.GivenInput(
            given_grams=infusion.planned_grams,  # type: ignore[attr-defined]
            started_at=infusion.starts_at,  # type: ignore[attr-defined]
            ended_at=infusion.ends_at,  # type: ignore[attr-defined]
            lot_numbers=lot,
            max_rate_ml_per_kg_min=0.04,
        ),
        settings,
    )


def review_course(
    session: so.Session,
    clinic: Clinic,
    settings: Settings,
    on: dt.date,
    decision: str = "continue",
    scores: dict[str, float] | None = None,
) -> object:
    """Record the measures a course review needs, then the physician's review, on a day."""
    from app import clock
    from app.services import assessments, reviews

    assessments.record_assessment(
        session,
        clinic.nursing,
        clinic.patient.id,
        assessments.AssessmentInput(
            assessed_on=on,
            scores=scores or {"cdasi_activity": 12.0, "mmt8": 74.0, "physician_global": 2.0},
        ),
        on,
    )
    with clock.frozen_at(at(on, 12)):
        return reviews.record_review(
            session,
            clinic.doctor,
            clinic.patient.id,
            reviews.ReviewInput(decision=decision, note="" if decision == "continue" else "Plan"),
            settings,
        )


def booked_course(
    session: so.Session,
    make_user,
    settings: Settings,
    starts_on: dt.date = dt.date(2026, 10, 5),
    contact_email: str | None = None,
) -> Clinic:
    """The worked-example patient, treated by the clinic's physician, booked every 4 weeks
    from `starts_on` (set a week before); with `contact_email`, e-mailed with consent and the
    nurse at home at the center."""
    clinic = make_clinic(session, make_user, settings)
    clinic.patient.treating_physician_id = clinic.physician.id
    if contact_email:
        clinic.patient.contact_email = contact_email
        clinic.patient.contact_consent_at = at(starts_on - dt.timedelta(days=30))
        clinic.nurse.home_center_id = clinic.center.id
    session.commit()
    regimen_service.set_regimen(
        session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=starts_on),
        settings,
        now=at(starts_on - dt.timedelta(days=7)),
    )
    return clinic
