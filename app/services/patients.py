"""Patients: registration, measurements, and what the patient page shows."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.config import Settings
from app.db import utcnow
from app.models import Center, Infusion, Patient, Regimen, User, WeightMeasurement
from app.models.patient import DM_SUBTYPES
from app.models.user import Role
from app.services import audit, mail, regimens
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound


@dataclasses.dataclass(frozen=True)
class PatientInput:
    mrn: str
    family_name: str
    given_name: str
    sex: str
    birth_date: dt.date
    home_center_id: int
    height_cm: float | None = None
    weight_kg: float | None = None
    dm_subtype: str = "classic"
    treating_physician_id: int | None = None
    thrombosis_risk: bool = False
    renal_risk: bool = False
    #: Shown as a banner at every visit.
    allergies: str | None = None
    iga_deficient: bool = False


def _check_range(value: float, field: str, low: float, high: float, unit: str) -> None:
    if not low <= value <= high:
        raise InvalidInput(f"{field}: {value:g} is outside {low:g}-{high:g} {unit}", field=field)


def patient_view(patient: Patient) -> dict[str, object]:
    return {
        "mrn": patient.mrn,
        "name": patient.display_name,
        "sex": patient.sex,
        "birth_date": patient.birth_date,
        "height_cm": patient.height_cm,
        "dm_subtype": patient.dm_subtype,
        "home_center_id": patient.home_center_id,
        "treating_physician_id": patient.treating_physician_id,
        "thrombosis_risk": patient.thrombosis_risk,
        "renal_risk": patient.renal_risk,
        "allergies": patient.allergies,
        "iga_deficient": patient.iga_deficient,
        "contact_email": patient.contact_email,
        "contact_consent": patient.contact_consent_at is not None,
    }


def check_weight(weight_kg: float, settings: Settings) -> None:
    """A body weight within the dosing limits (config.toml [dosing])."""
    limits = settings.dosing
    _check_range(weight_kg, "weight_kg", limits.min_weight_kg, limits.max_weight_kg, "kg")


def check_birth_date(birth_date: dt.date, today: dt.date) -> None:
    if not dt.date(1900, 1, 1) <= birth_date <= today:
        raise InvalidInput("birth_date: between 1900-01-01 and today", field="birth_date")


def check_fields(data: PatientInput, settings: Settings) -> None:
    """What a patient's own fields must be, before anything is looked up."""
    if not 1 <= len(data.mrn.strip()) <= 40:
        raise InvalidInput("mrn: 1 to 40 characters", field="mrn")
    for field in ("family_name", "given_name"):
        if not 1 <= len(getattr(data, field).strip()) <= 100:
            raise InvalidInput(f"{field}: 1 to 100 characters", field=field)
    if data.sex not in ("female", "male"):
        raise InvalidInput("sex: female or male", field="sex")
    _check_clinical(settings, data.height_cm, data.dm_subtype)
    if data.weight_kg is not None:
        check_weight(data.weight_kg, settings)


def _check_clinical(settings: Settings, height_cm: float | None, dm_subtype: str | None) -> None:
    """Height within the dosing limits, a known dermatomyositis subtype (None: not given)."""
    limits = settings.dosing
    if height_cm is not None:
        _check_range(height_cm, "height_cm", limits.min_height_cm, limits.max_height_cm, "cm")
    if dm_subtype is not None and dm_subtype not in DM_SUBTYPES:
        raise InvalidInput(f"dm_subtype: one of {', '.join(DM_SUBTYPES)}", field="dm_subtype")


def _check_physician(session: so.Session, user_id: int | None) -> None:
    if user_id is None:
        return
    doctor = session.get(User, user_id)
    if doctor is None or doctor.role != Role.PHYSICIAN or not doctor.active:
        raise InvalidInput(
            f"treating_physician_id: no physician {user_id}", field="treating_physician_id"
        )


def new_patient(data: PatientInput) -> tuple[Patient, float | None]:
    """The patient row of checked input (MRN and allergies as kept), and the first weight."""
    values = dataclasses.asdict(data) | {
        "mrn": data.mrn.strip(),
        "allergies": _allergies(data.allergies),
    }
    weight = values.pop("weight_kg")
    return Patient(**values), weight


def create_patient(
    session: so.Session,
    actor: Actor,
    data: PatientInput,
    settings: Settings,
    today: dt.date | None = None,
) -> Patient:
    """Register a patient (with a first weight when given).

    Without `today`, dates are checked against the wall-clock date of the home center.
    """
    mrn = data.mrn.strip()
    check_fields(data, settings)
    with unit_of_work(session):
        center = session.get(Center, data.home_center_id)
        if center is None:
            raise InvalidInput(
                f"home_center_id: no center {data.home_center_id}", field="home_center_id"
            )
        today = today or clock.clinic_today(center.timezone)
        check_birth_date(data.birth_date, today)
        _check_physician(session, data.treating_physician_id)
        if session.scalar(sa.select(Patient.id).where(Patient.mrn == mrn)) is not None:
            raise Conflict(f"mrn: a patient with MRN {mrn} exists already", field="mrn")
        patient, weight = new_patient(data)
        session.add(patient)
        session.flush()
        if weight is not None:
            session.add(
                WeightMeasurement(
                    patient_id=patient.id,
                    measured_on=today,
                    weight_kg=weight,
                    recorded_by_id=actor.user_id,
                )
            )
        audit.record(
            session,
            actor,
            "patient.create",
            "patient",
            patient.id,
            after=patient_view(patient) | {"weight_kg": weight},
        )
    return patient


def record_weight(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    weight_kg: float,
    measured_on: dt.date,
    settings: Settings,
    today: dt.date,
) -> WeightMeasurement:
    """Record a body weight (dosing uses the latest)."""
    check_weight(weight_kg, settings)
    if measured_on > today:
        raise InvalidInput("measured_on: not in the future", field="measured_on")
    with unit_of_work(session):
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
        measurement = WeightMeasurement(
            patient_id=patient_id,
            measured_on=measured_on,
            weight_kg=weight_kg,
            recorded_by_id=actor.user_id,
        )
        session.add(measurement)
        session.flush()
        audit.record(
            session,
            actor,
            "patient.weight",
            "patient",
            patient_id,
            after={"weight_kg": weight_kg, "measured_on": measured_on},
        )
    return measurement


@dataclasses.dataclass(frozen=True)
class PatientDetail:
    patient: Patient
    weights: list[WeightMeasurement]
    regimens: list[Regimen]
    upcoming: list[Infusion]
    past: list[Infusion]
    weight_change_percent: float | None
    weight_review_needed: bool


def get_patient(session: so.Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
    return patient


def patient_detail(
    session: so.Session, patient_id: int, settings: Settings, today: dt.date
) -> PatientDetail:
    """Everything the patient page shows, in a fixed number of queries."""
    patient = get_patient(session, patient_id)
    weights = list(
        session.scalars(
            sa.select(WeightMeasurement)
            .where(WeightMeasurement.patient_id == patient_id)
            .order_by(WeightMeasurement.measured_on.desc(), WeightMeasurement.id.desc())
        )
    )
    history = regimens.regimen_history(session, patient_id)
    infusions = list(
        session.scalars(
            sa.select(Infusion)
            .where(Infusion.patient_id == patient_id)
            .options(so.joinedload(Infusion.chair), so.joinedload(Infusion.center))
            .order_by(Infusion.planned_date, Infusion.day_number, Infusion.id)
        )
    )
    change = None
    if history and weights:
        change = (weights[0].weight_kg - history[0].weight_kg) / history[0].weight_kg * 100
    return PatientDetail(
        patient=patient,
        weights=weights,
        regimens=history,
        upcoming=[i for i in infusions if i.planned_date >= today],
        past=[i for i in infusions if i.planned_date < today][::-1],
        weight_change_percent=change,
        weight_review_needed=change is not None
        and abs(change) > settings.dosing.weight_change_review_percent,
    )


def local_today(session: so.Session, patient_id: int) -> dt.date:
    """Return today's date on the wall clock of the patient's home center."""
    patient = get_patient(session, patient_id)
    return clock.clinic_today(patient.home_center.timezone)


@dataclasses.dataclass(frozen=True)
class PatientChanges:
    height_cm: float | None = None
    dm_subtype: str | None = None
    thrombosis_risk: bool | None = None
    renal_risk: bool | None = None
    #: The physician responsible for the patient (their approvals, worklist and feed).
    treating_physician_id: int | None = None
    #: "" clears the allergies.
    allergies: str | None = None
    iga_deficient: bool | None = None
    #: "" clears it (and the consent with it).
    contact_email: str | None = None
    #: True records the patient's consent to e-mail now; False withdraws it.
    contact_consent: bool | None = None


def _contact(patient: Patient, changes: PatientChanges) -> None:
    """Set the contact e-mail and the consent to use it (consent needs an address)."""
    if changes.contact_email is not None:
        email = changes.contact_email.strip()
        if email and not mail.usable_address(email):
            raise InvalidInput(
                "contact_email: an e-mail address such as name@example.org", field="contact_email"
            )
        patient.contact_email = email or None
    if changes.contact_consent is True and patient.contact_consent_at is None:
        if not patient.contact_email:
            raise InvalidInput(
                "contact_consent: record the patient's e-mail address first",
                field="contact_consent",
            )
        patient.contact_consent_at = utcnow()
    if changes.contact_consent is False or not patient.contact_email:
        patient.contact_consent_at = None


def _allergies(text: str | None) -> str | None:
    """Allergies as kept: trimmed, at most 500 characters, nothing for none."""
    text = (text or "").strip()
    if len(text) > 500:
        raise InvalidInput("allergies: at most 500 characters", field="allergies")
    return text or None


def update_patient(
    session: so.Session, actor: Actor, patient_id: int, changes: PatientChanges, settings: Settings
) -> Patient:
    """Change height, subtype, risk flags or the responsible physician (each change is
    audited: the first three change dosing, the last who approves)."""
    _check_clinical(settings, changes.height_cm, changes.dm_subtype)
    with unit_of_work(session):
        _check_physician(session, changes.treating_physician_id)
        patient = get_patient(session, patient_id)
        before = patient_view(patient)
        for name, value in dataclasses.asdict(changes).items():
            if name == "allergies" and value is not None:
                patient.allergies = _allergies(value)
            elif name in ("contact_email", "contact_consent"):
                continue
            elif value is not None:
                setattr(patient, name, value)
        _contact(patient, changes)
        after = patient_view(patient)
        if after != before:
            audit.record(
                session, actor, "patient.update", "patient", patient.id, before=before, after=after
            )
    return patient
