"""Synthetic rows for benchmarks and tests: a patient booked on a chair, and its visit's notes.

One builder for every place that needs a day of visits without going through the services
(which would check, audit and schedule each one): `center_with_chairs` writes a center,
`booked_patient` a patient, a first regimen version and one infusion of it on the day, and
`document_visit` what a nurse records at the chair (vials, premedication, rate steps, vital
signs, an adverse event). Every value a caller cares about is a parameter, so each caller
keeps its own numbers; the defaults are the day board benchmark's. `add_nurse` and
`logged_in_client` give the benchmarks the nurse who looks at the board.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy.orm as so
from flask import Flask
from flask.testing import FlaskClient

from app.config import AuthSettings, Settings
from app.models import (
    AdverseEvent,
    Center,
    Infusion,
    InfusionStatus,
    Patient,
    Regimen,
    User,
    WeightMeasurement,
)
from app.models.center import Chair, OpeningHours
from app.models.visit import InfusionVial, Premedication, RateStep, VitalSigns
from app.services import regimens as regimen_service
from app.services import users as user_service
from app.services.context import Actor, system_actor

#: The benchmarks' nurse: email and password.
NURSE = ("nurse@bench.test", "bench-password")

#: Premedication and hydration as (name, dose, unit, route).
PREMEDICATIONS: tuple[tuple[str, float, str, str], ...] = (
    ("paracetamol", 1000, "mg", "PO"),
    ("cetirizine", 10, "mg", "PO"),
    ("sodium chloride 0.9%", 500, "mL", "IV"),
)
#: Rate steps as (minutes after the start, mL/h).
RATE_STEPS: tuple[tuple[int, float], ...] = ((0, 30), (15, 60), (30, 120), (45, 240))
#: Minutes after the start at which vital signs are taken (negative: before it).
VITALS_AT: tuple[int, ...] = (-10, 15, 30, 60)


@dataclass(frozen=True)
class Vitals:
    """One set of vital signs, written at each of a visit's `vitals_at` minutes."""

    systolic_mmhg: int
    diastolic_mmhg: int
    pulse_bpm: int
    temperature_c: float
    respiratory_rate: int | None = None
    spo2_percent: int | None = None


VITALS = Vitals(122, 78, 74, 36.7, respiratory_rate=14, spo2_percent=98)


def center_with_chairs(
    session: so.Session,
    name: str,
    *,
    chairs: int,
    timezone: str,
    opens_at: dt.time = dt.time(7),
    closes_at: dt.time = dt.time(19),
    weekdays: Sequence[int] = range(5),
) -> Center:
    """A center open `opens_at`-`closes_at` on `weekdays` (Monday to Friday) with chairs
    "Chair 01" to "Chair <chairs>", flushed."""
    center = Center(name=name, timezone=timezone)
    center.opening_hours = [
        OpeningHours(weekday=d, opens_at=opens_at, closes_at=closes_at) for d in weekdays
    ]
    center.chairs = [Chair(name=f"Chair {n:02d}") for n in range(1, chairs + 1)]
    session.add(center)
    session.flush()
    return center


def add_nurse(session: so.Session, settings: AuthSettings) -> User:
    """The benchmarks' nurse account (`NURSE`), committed."""
    email, password = NURSE
    return user_service.create_user(
        session,
        system_actor("bench"),
        email=email,
        full_name="Bench Nurse",
        role="nurse",
        password=password,
        settings=settings,
    )


def logged_in_client(app: Flask) -> FlaskClient:
    """A test client of `app` logged in as `NURSE` through the login form."""
    email, password = NURSE
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    client.post("/login", data={"email": email, "password": password, "csrf_token": csrf})
    return client


def _utc(at: dt.datetime | None) -> dt.datetime | None:
    return at.astimezone(dt.UTC) if at is not None else None


def booked_patient(
    session: so.Session,
    center: Center,
    *,
    mrn: str,
    family_name: str,
    day: dt.date,
    starts_at: dt.datetime | None,
    chair_id: int | None,
    grams: float,
    minutes: int,
    vials: list[list[float]],
    status: str = InfusionStatus.SCHEDULED,
    turnover_minutes: int = 15,
    given_name: str = "Bench",
    birth_date: dt.date = dt.date(1960, 1, 1),
    dose_g_per_kg: float = 2,
    days_per_cycle: int = 2,
    weight_kg: float = 41,
    preferred_time: dt.time = dt.time(7),
    reason: str = "bench",
    checked_in_at: dt.datetime | None = None,
    given_grams: float | None = None,
    given_for: dt.timedelta | None = None,
    lot_numbers: str | None = None,
) -> Infusion:
    """A patient of `center` with a first regimen version starting on `day` and its first
    infusion on that day, flushed (so each row has its id), not committed.

    The infusion plans `grams` in `vials` ([[vial grams, count], ...]) over `minutes`; it is
    booked on `chair_id` from `starts_at` (any time zone; None for both: waiting for a chair)
    and holds the chair `turnover_minutes` longer. The regimen gives `dose_g_per_kg` of
    `weight_kg` (`grams` a day) for `days_per_cycle` days every four weeks. With `given_grams`
    and `given_for`, the infusion was given from `starts_at` for that long."""
    patient = Patient(
        mrn=mrn,
        family_name=family_name,
        given_name=given_name,
        sex="female",
        birth_date=birth_date,
        home_center_id=center.id,
        height_cm=165,
    )
    session.add(patient)
    session.flush()
    regimen = Regimen(
        patient_id=patient.id,
        version=1,
        product="Octagam 10%",
        dose_g_per_kg=dose_g_per_kg,
        days_per_cycle=days_per_cycle,
        interval_weeks=4,
        weight_basis="actual",
        starts_on=day,
        preferred_time=preferred_time,
        center_id=center.id,
        weight_kg=weight_kg,
        height_cm=165,
        dosing_weight_kg=weight_kg,
        grams_per_day=grams,
        grams_per_cycle=days_per_cycle * grams,
        minutes_per_day=minutes,
        calculation={},
        soft_stops=[],
        reason=reason,
    )
    session.add(regimen)
    session.flush()
    ends_at = starts_at + dt.timedelta(minutes=minutes) if starts_at else None
    occupied_until = ends_at + dt.timedelta(minutes=turnover_minutes) if ends_at else None
    given_until = starts_at + given_for if starts_at and given_for is not None else None
    infusion = Infusion(
        patient_id=patient.id,
        regimen_id=regimen.id,
        cycle_number=1,
        day_number=1,
        planned_date=day,
        cycle_planned_on=day,
        center_id=center.id,
        chair_id=chair_id,
        starts_at=_utc(starts_at),
        ends_at=_utc(ends_at),
        occupied_until=_utc(occupied_until),
        status=status,
        planned_grams=grams,
        planned_vials=vials,
        planned_minutes=minutes,
        checked_in_at=_utc(checked_in_at),
        given_grams=given_grams,
        given_started_at=_utc(starts_at) if given_until else None,
        given_ended_at=_utc(given_until),
        lot_numbers=lot_numbers,
    )
    session.add(infusion)
    session.flush()
    return infusion


def document_visit(
    session: so.Session,
    infusion: Infusion,
    *,
    lot_number: str,
    expires_on: dt.date,
    started_at: dt.datetime | None = None,
    premedications: Sequence[tuple[str, float, str, str]] = PREMEDICATIONS,
    premedicated_before: dt.timedelta = dt.timedelta(minutes=15),
    rate_steps: Sequence[tuple[int, float]] = RATE_STEPS,
    vitals: Vitals = VITALS,
    vitals_at: Sequence[int] = VITALS_AT,
    adverse_event: bool = False,
    event_description: str = "",
) -> None:
    """What a nurse writes at the chair for `infusion` (flushed first): its planned vials of
    one lot, the premedication given `premedicated_before` the start, the rate steps and the
    vital signs at their minutes from the start; with `adverse_event`, a mild headache, the
    rate slowed, resolved. The start is `started_at`, or the infusion's booked start."""
    start = started_at if started_at is not None else infusion.starts_at
    if start is None:
        raise ValueError(f"infusion {infusion.id} has no start: give started_at")
    session.add_all(
        [
            InfusionVial(
                infusion_id=infusion.id,
                product="Octagam 10%",
                lot_number=lot_number,
                expires_on=expires_on,
                vial_grams=size,
                count=int(count),
            )
            for size, count in infusion.planned_vials
        ]
        + [
            Premedication(
                infusion_id=infusion.id,
                name=name,
                dose=dose,
                unit=unit,
                route=route,
                given_at=start - premedicated_before,
            )
            for name, dose, unit, route in premedications
        ]
        + [
            RateStep(
                infusion_id=infusion.id,
                started_at=start + dt.timedelta(minutes=minute),
                rate_ml_per_h=rate,
            )
            for minute, rate in rate_steps
        ]
        + [
            VitalSigns(
                infusion_id=infusion.id,
                taken_at=start + dt.timedelta(minutes=minute),
                systolic_mmhg=vitals.systolic_mmhg,
                diastolic_mmhg=vitals.diastolic_mmhg,
                pulse_bpm=vitals.pulse_bpm,
                temperature_c=vitals.temperature_c,
                respiratory_rate=vitals.respiratory_rate,
                spo2_percent=vitals.spo2_percent,
            )
            for minute in vitals_at
        ]
    )
    if adverse_event:
        session.add(
            AdverseEvent(
                patient_id=infusion.patient_id,
                infusion_id=infusion.id,
                occurred_on=infusion.planned_date,
                event_type="headache",
                grade=1,
                serious=False,
                description=event_description,
                action_taken="slowed",
                outcome="resolved",
            )
        )


def regimen_setter(
    session: so.Session, settings: Settings, center: Center, mrn: str, starts_on: dt.date
) -> tuple[Patient, Callable[[], None]]:
    """A new 100 kg patient of `center`, and a function that sets their regimen again (a new
    version each call: 2 g/kg over 2 days every 4 weeks from `starts_on`, 09:00) through the
    service, as the physician's page does, two days before it starts."""
    patient = Patient(
        mrn=mrn,
        family_name="Bench",
        given_name=mrn,
        sex="male",
        birth_date=dt.date(1970, 1, 1),
        home_center_id=center.id,
        height_cm=175,
    )
    session.add(patient)
    session.flush()
    session.add(WeightMeasurement(patient_id=patient.id, measured_on=starts_on, weight_kg=100))
    session.commit()
    actor = Actor(label="bench", role="physician")
    zone = ZoneInfo(center.timezone)
    now = dt.datetime.combine(starts_on - dt.timedelta(days=2), dt.time(7), tzinfo=zone)
    version = [0]

    def set_once() -> None:
        regimen_service.set_regimen(
            session,
            actor,
            patient.id,
            regimen_service.RegimenInput(
                product="Octagam 10%",
                dose_g_per_kg=2,
                days_per_cycle=2,
                interval_weeks=4,
                weight_basis="adjusted",
                starts_on=starts_on,
                preferred_time=dt.time(9),
                reason="bench",
                based_on_version=version[0] or None,
            ),
            settings,
            now=now,
        )
        version[0] += 1

    return patient, set_once
