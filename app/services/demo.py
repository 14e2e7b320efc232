"""Demo data for the quick start: loaded idempotently, refused in production."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.config import Settings
from app.models import (
    Center,
    Patient,
    Regimen,
    TaperPlan,
    User,
)
from app.services import centers as center_service
from app.services import jobruns, patients, regimens, reviews, tapers
from app.services import users as user_service
from app.services.context import Actor, system_actor, unit_of_work
from app.services.errors import Forbidden


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


DEMO_LOGINS = (
    DemoLogin("nurse", "nurse@demo.clinic", "demo-nurse-pass"),
    DemoLogin("physician", "physician@demo.clinic", "demo-physician-pass"),
    DemoLogin("admin", "admin@demo.clinic", "demo-admin-pass"),
)
_NAMES = {"nurse": "Nora Nurse", "physician": "Dr Paul Physician", "admin": "Ada Admin"}

_CENTERS = (
    ("Riverside Infusion Center", "America/New_York", "12 River Rd", 6, range(0, 5)),
    ("Hilltop Infusion Suite", "America/Chicago", "400 Hill St", 4, range(0, 6)),
)

_PATIENTS = (
    # mrn, family, given, sex, born, center index, height cm, weight kg, thrombosis risk
    ("DEMO-0001", "Garcia", "Maria", "female", dt.date(1971, 3, 14), 0, 163.0, 68.0, False),
    ("DEMO-0002", "Okafor", "James", "male", dt.date(1964, 11, 2), 0, 175.0, 100.0, False),
    ("DEMO-0003", "Lindqvist", "Eva", "female", dt.date(1985, 7, 29), 1, 170.0, 59.5, False),
    ("DEMO-0004", "Nguyen", "Thi", "female", dt.date(1958, 1, 5), 1, 152.0, 51.0, True),
    ("DEMO-0005", "Brown", "Alex", "male", dt.date(1969, 5, 20), 0, 175.0, 100.0, False),
    # The busy Monday at Riverside (_demo_busy_monday): six courses that all want 09:00.
    ("DEMO-0006", "Haddad", "Leila", "female", dt.date(1976, 9, 9), 0, 168.0, 72.0, False),
    ("DEMO-0007", "Kowalski", "Piotr", "male", dt.date(1961, 2, 17), 0, 181.0, 88.0, False),
    ("DEMO-0008", "Mensah", "Ama", "female", dt.date(1980, 12, 1), 0, 160.0, 64.0, False),
    ("DEMO-0009", "Rossi", "Marco", "male", dt.date(1955, 6, 30), 0, 172.0, 79.0, False),
    ("DEMO-0010", "Tanaka", "Yui", "female", dt.date(1990, 4, 22), 0, 158.0, 52.0, False),
    ("DEMO-0011", "Walsh", "Siobhan", "female", dt.date(1967, 8, 14), 0, 165.0, 70.0, False),
)
#: The patients of the busy Monday.
_BUSY_MONDAY = ("DEMO-0006", "DEMO-0007", "DEMO-0008", "DEMO-0009", "DEMO-0010", "DEMO-0011")


def load_demo_data(session: so.Session, settings: Settings) -> list[DemoLogin]:
    """Create the demo users, centers, chairs and patients that are missing."""
    if settings.is_production:
        raise Forbidden("demo data is refused in production mode")
    actor = system_actor("demo")
    for login in DEMO_LOGINS:
        exists = session.scalar(sa.select(User.id).where(User.email == login.email))
        if exists is None:
            user_service.create_user(
                session,
                actor,
                email=login.email,
                full_name=_NAMES[login.role],
                role=login.role,
                password=login.password,
                settings=settings.auth,
            )
    with unit_of_work(session):
        centers = []
        for name, zone, address, chairs, weekdays in _CENTERS:
            center = session.scalar(sa.select(Center).where(Center.name == name))
            if center is None:
                center = center_service.create_center(
                    session,
                    actor,
                    center_service.CenterInput(
                        name=name,
                        timezone=zone,
                        address=address,
                        hours=tuple(
                            center_service.DayHours(day, dt.time(8), dt.time(18), nurses=2)
                            for day in weekdays
                        ),
                        chairs=tuple(
                            center_service.ChairInput(f"Chair {n}") for n in range(1, chairs + 1)
                        ),
                    ),
                )
            centers.append(center)
        physician_id = session.scalar(sa.select(User.id).where(User.email == DEMO_LOGINS[1].email))
        for mrn, family, given, sex, born, center_index, height, weight, risk in _PATIENTS:
            if session.scalar(sa.select(Patient.id).where(Patient.mrn == mrn)) is None:
                patients.create_patient(
                    session,
                    actor,
                    patients.PatientInput(
                        mrn=mrn,
                        family_name=family,
                        given_name=given,
                        sex=sex,
                        birth_date=born,
                        home_center_id=centers[center_index].id,
                        height_cm=height,
                        weight_kg=weight,
                        treating_physician_id=physician_id,
                        thrombosis_risk=risk,
                    ),
                    settings,
                )
    _demo_taper(session, settings, physician_id)
    _demo_responder(session, settings, physician_id)
    _demo_starting(session, settings, physician_id)
    _demo_busy_monday(session, settings, physician_id)
    # The review job's tasks now (a run on the admin's jobs page), not at its next daily run.
    jobruns.run(session, settings, "review_due", reviews.sweep_due, process="demo load")
    return list(DEMO_LOGINS)


def _demo_starting(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """A course that starts on the next open day, the patient e-mailed with consent: moving
    that infusion sends a change notice (`make run MAIL=1` prints it)."""
    patient = session.scalar(sa.select(Patient).where(Patient.mrn == "DEMO-0001"))
    if patient is None or session.scalar(
        sa.select(Regimen.id).where(Regimen.patient_id == patient.id)
    ):
        return
    with unit_of_work(session):
        patient.contact_email = "maria.garcia@example.org"
        patient.contact_consent_at = clock.now()
    today = clock.clinic_today(patient.home_center.timezone)
    start = today + dt.timedelta(days=1)
    while start.weekday() >= 5:  # Riverside opens Monday to Friday
        start += dt.timedelta(days=1)
    _demo_regimen(
        session, settings, physician_id, patient, start, dt.time(10), "first cycle", now=None
    )


def busy_monday() -> dt.date:
    """The Monday after next on Riverside's clock: the day the busy courses start."""
    monday = clock.clinic_today("America/New_York") + dt.timedelta(days=8)
    return monday + dt.timedelta(days=(7 - monday.weekday()) % 7)


def _demo_busy_monday(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """Six courses that start on the Monday after next, every patient wanting 09:00: first-fit
    books them side by side, six setups at once for the two nurses on shift. "Optimise the
    next four weeks" (the day board's Optimise link) spreads them."""
    monday = busy_monday()
    for mrn in _BUSY_MONDAY:
        patient = session.scalar(sa.select(Patient).where(Patient.mrn == mrn))
        if patient is None or session.scalar(
            sa.select(Regimen.id).where(Regimen.patient_id == patient.id)
        ):
            continue
        _demo_regimen(
            session, settings, physician_id, patient, monday, dt.time(9), "new course", now=None
        )


def _demo_regimen(
    session: so.Session,
    settings: Settings,
    physician_id: int | None,
    patient: Patient,
    start: dt.date,
    at: dt.time,
    why: str,
    now: dt.datetime | None,
) -> None:
    """The demo's regimen: 2 g/kg over 2 days every 4 weeks, set by the demo physician."""
    doctor = Actor(label="system:demo", user_id=physician_id, role="physician")
    regimens.set_regimen(
        session,
        doctor,
        patient.id,
        regimens.RegimenInput(
            product="Octagam 10%",
            dose_g_per_kg=2.0,
            days_per_cycle=2,
            interval_weeks=4,
            weight_basis="adjusted",
            starts_on=start,
            preferred_time=at,
            reason=f"Demo: refractory DM, {why}",
        ),
        settings,
        now=now,
    )


def _demo_responder(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """Sixteen weeks of IVIG with a response: one more stable assessment earns a suggestion."""
    from app.models import Assessment, Infusion, InfusionStatus
    from app.services import infusions

    patient = session.scalar(sa.select(Patient).where(Patient.mrn == "DEMO-0005"))
    if patient is None or session.scalar(
        sa.select(Regimen.id).where(Regimen.patient_id == patient.id)
    ):
        return
    zone = ZoneInfo(patient.home_center.timezone)
    today = clock.clinic_today(patient.home_center.timezone)
    start = today - dt.timedelta(weeks=16)
    start -= dt.timedelta(days=start.weekday())  # a Monday
    _demo_regimen(
        session,
        settings,
        physician_id,
        patient,
        start,
        dt.time(9),
        "cutaneous",
        now=dt.datetime.combine(start - dt.timedelta(days=1), dt.time(8), tzinfo=zone),
    )
    past = session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == patient.id,
            Infusion.status == InfusionStatus.SCHEDULED,
            Infusion.planned_date < today,
        )
    ).all()
    nurse = Actor(label="system:demo")
    for infusion in past:
        assert infusion.starts_at is not None and infusion.ends_at is not None  # booked
        infusions.record_given(
            session,
            nurse,
            infusion.id,
            infusions.GivenInput(
                given_grams=infusion.planned_grams,
                started_at=infusion.starts_at,
                ended_at=infusion.ends_at,
                lot_numbers="DEMO-LOT",
                max_rate_ml_per_kg_min=0.04,
            ),
            settings,
        )
    with unit_of_work(session):
        for days, activity in ((-1, 40.0), (56, 30.0)):
            session.add(
                Assessment(
                    patient_id=patient.id,
                    assessed_on=start + dt.timedelta(days=days),
                    cdasi_activity=activity,
                    notes="demo",
                )
            )


def _demo_taper(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """A prednisone taper begun four weeks ago, so its first step is waiting for approval."""
    patient = session.scalar(sa.select(Patient).where(Patient.mrn == "DEMO-0003"))
    if patient is None or session.scalar(
        sa.select(TaperPlan.id).where(TaperPlan.patient_id == patient.id)
    ):
        return
    today = clock.clinic_today(patient.home_center.timezone)
    started = today - dt.timedelta(days=settings.steroids.start_days)
    actor = Actor(label="system:demo", user_id=physician_id, role="physician")
    tapers.create_plan(
        session,
        actor,
        patient.id,
        tapers.PlanInput(
            drug="prednisone",
            start_mg=60,
            template="banded",
            starts_on=started,
            reason="Demo: taper beside IVIG",
        ),
        settings,
        started,
    )
