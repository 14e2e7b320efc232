"""The visit at the chair, from check-in to discharge: one transaction per step, each audited,
every recorded infusion through the therapy-integrity checker.

Decisions:
- The pre-infusion check records the day's weight (and a set of vital signs); the domain
  recomputes the day's dose from it, and a change past the clinic's threshold makes the visit
  wait for a physician's approval before it may start.
- A patient at renal or thrombosis risk without a recent creatinine or eGFR is a soft stop:
  the infusion starts only with the nurse's reason, which is kept on the record.
- Completing records each vial (product, lot, expiry, size, count); whole vials add up to the
  grams given. Stopping early records the grams given and why; the vials opened may hold more.
- The highest rate on the record is the highest of the rate steps run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.domain import dosing, schedule, visit
from app.domain.problems import Problem
from app.models import (
    Center,
    Infusion,
    InfusionStatus,
    InfusionVial,
    Patient,
    Premedication,
    RateStep,
    VitalSigns,
    WeightMeasurement,
)
from app.models.visit import RATE_ACTIONS
from app.services import adverse_events, audit, integrity, labs, regimens, reviews
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.infusions import (
    get_infusion,
    infusion_view,
    load_for_change,
    lock_patient_of,
    require_status,
)

#: Lab tests that show kidney function for the pre-infusion check.
RENAL_TESTS = ("creatinine", "egfr")


@dataclasses.dataclass(frozen=True)
class Vitals:
    systolic_mmhg: int | None = None
    diastolic_mmhg: int | None = None
    pulse_bpm: int | None = None
    temperature_c: float | None = None
    respiratory_rate: int | None = None
    spo2_percent: int | None = None


@dataclasses.dataclass(frozen=True)
class Completion:
    ended_at: dt.datetime
    vials: tuple[visit.VialUse, ...]
    #: Stopped early: the grams given (less than the day's dose) and why.
    stopped_early: bool = False
    given_grams: float | None = None
    reason: str | None = None


def _skew(settings: Settings) -> dt.timedelta:
    return settings.integrity_limits().clock_skew


def _refuse(problems: Sequence[Problem]) -> None:
    if problems:
        raise InvalidInput.every(problems)


def _step(session: so.Session, infusion_id: int, version: int | None, field: str) -> Infusion:
    """Lock the patient (therapy order first), then load the infusion for a change."""
    lock_patient_of(session, infusion_id)
    integrity.guard(session, field=field)
    return load_for_change(session, infusion_id, version)


def _transition(infusion: Infusion, action: str) -> None:
    try:
        visit.check_transition(action, infusion.status)
    except visit.VisitRejected as exc:
        raise Conflict(exc.problems[0].message, field="status") from None


def _audit(
    session: so.Session, actor: Actor, what: str, infusion: Infusion, **after: object
) -> None:
    audit.record(session, actor, f"visit.{what}", "infusion", infusion.id, after=after)


def _status_change(
    session: so.Session,
    actor: Actor,
    infusion: Infusion,
    action: str,
    before: dict[str, object],
    now: dt.datetime,
    **more: object,
) -> None:
    infusion.mark_changed(now, significant=True)
    audit.record(
        session,
        actor,
        f"visit.{action}",
        "infusion",
        infusion.id,
        before=before,
        after=infusion_view(infusion) | visit_view(infusion) | more,
    )


def _booked_day(field: str, infusion: Infusion, at: dt.datetime) -> list[Problem]:
    if at.utcoffset() is None:
        return []  # refused by the time check already
    local_day = schedule.local_date(at, infusion.center.timezone)
    return visit.on_the_booked_day(field, at, infusion.planned_date, local_day)


def visit_grams(infusion: Infusion) -> float:
    """The grams this visit gives (the day's dose once set and approved, else the booked)."""
    return visit.visit_grams(infusion.planned_grams, infusion.day_grams, infusion.dose_approval)


def visit_view(infusion: Infusion) -> dict[str, object]:
    return {
        "checked_in_at": infusion.checked_in_at,
        "day_weight_kg": infusion.day_weight_kg,
        "day_grams": infusion.day_grams,
        "dose_approval": infusion.dose_approval,
        "check_override_reason": infusion.check_override_reason,
    }


# --- states -----------------------------------------------------------------------------------


def check_in(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    at: dt.datetime,
    settings: Settings,
    version: int | None = None,
    now: dt.datetime | None = None,
) -> Infusion:
    """The patient has arrived: the visit is checked in (not in the future)."""
    now = now or utcnow()
    with unit_of_work(session):
        infusion = _step(session, infusion_id, version, "checked_in_at")
        _transition(infusion, "check_in")
        _refuse(
            visit.time_problems("checked_in_at", at, now, _skew(settings))
            + _booked_day("checked_in_at", infusion, at)
        )
        before = infusion_view(infusion)
        infusion.status = InfusionStatus.CHECKED_IN
        infusion.checked_in_at = at
        _status_change(session, actor, infusion, "check_in", before, now)
    return infusion


def day_dose(
    session: so.Session, infusion: Infusion, weight_kg: float, settings: Settings
) -> tuple[dosing.DoseResult, visit.DayDose]:
    """The dose the day's weight gives under the infusion's regimen, against the booked one."""
    patient = session.get(Patient, infusion.patient_id)
    assert patient is not None
    request = regimens.dose_request(patient, weight_kg, infusion.regimen)
    try:
        result = regimens.calculate(request, settings)
    except InvalidInput as exc:
        if exc.field == "weight_kg":
            raise InvalidInput(exc.message, field="weight_kg", problems=exc.problems) from None
        raise
    compared = visit.day_dose(
        infusion.planned_grams, result.rounding.rounded_g, settings.visit.dose_change_percent
    )
    return result, compared


def record_check(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    weight_kg: float,
    vitals: Vitals,
    taken_at: dt.datetime,
    settings: Settings,
    version: int | None = None,
    now: dt.datetime | None = None,
) -> Infusion:
    """The pre-infusion check: the day's weight (the dose recomputed; a change past the
    threshold waits for a physician) and a set of vital signs."""
    now = now or utcnow()
    with unit_of_work(session):
        infusion = _step(session, infusion_id, version, "weight_kg")
        require_status(infusion, InfusionStatus.CHECKED_IN)
        _refuse(
            visit.time_problems(
                "taken_at", taken_at, now, _skew(settings), infusion.checked_in_at, "check-in"
            )
            + _vital_problems(vitals, settings)
        )
        _result, compared = day_dose(session, infusion, weight_kg, settings)
        infusion.day_weight_kg = weight_kg
        infusion.day_grams = compared.day_grams
        infusion.dose_approval = "waiting" if compared.needs_approval else None
        infusion.dose_approved_by_id = infusion.dose_approved_at = None
        session.add(
            WeightMeasurement(
                patient_id=infusion.patient_id,
                weight_kg=weight_kg,
                measured_on=infusion.planned_date,
                recorded_by_id=actor.user_id,
            )
        )
        vital_row = _vital_row(infusion, vitals, taken_at, actor)
        session.add(vital_row)
        infusion.mark_changed(now, significant=False)
        _audit(
            session,
            actor,
            "check",
            infusion,
            weight_kg=weight_kg,
            day_grams=compared.day_grams,
            planned_grams=compared.planned_grams,
            change_percent=compared.change_percent,
            dose_approval=infusion.dose_approval,
            vitals=dataclasses.asdict(vitals),
        )
    return infusion


def approve_day_dose(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    version: int | None = None,
    now: dt.datetime | None = None,
    keep_booked: bool = False,
) -> Infusion:
    """A physician approves the dose the day's weight gave, or keeps the booked dose for
    today (`keep_booked`); the visit may start. The therapy checker judges the dose approved
    (a day's dose that would break the cycle's limits is refused here, before the start)."""
    now = now or utcnow()
    with unit_of_work(session):
        infusion = _step(session, infusion_id, version, "dose_approval")
        require_status(infusion, InfusionStatus.CHECKED_IN)
        if infusion.dose_approval != "waiting":
            raise Conflict("dose_approval: no day's dose waits for approval", field="dose_approval")
        if keep_booked:
            infusion.day_grams = infusion.planned_grams
        infusion.dose_approval = "approved"
        infusion.dose_approved_by_id = actor.user_id
        infusion.dose_approved_at = now
        infusion.mark_changed(now, significant=False)
        _audit(
            session,
            actor,
            "approve_dose",
            infusion,
            day_grams=infusion.day_grams,
            planned_grams=infusion.planned_grams,
        )
    return infusion


def renal_check(session: so.Session, infusion: Infusion, settings: Settings) -> visit.RenalCheck:
    """Whether the patient's kidney function was checked recently enough to start."""
    patient = session.get(Patient, infusion.patient_id)
    assert patient is not None
    latest = labs.latest(session, patient.id, RENAL_TESTS)
    return visit.renal_check(
        patient.renal_risk or patient.thrombosis_risk,
        latest.taken_on if latest else None,
        infusion.planned_date,
        settings.visit.renal_lab_max_age_days,
    )


def start_stops(session: so.Session, infusion: Infusion, settings: Settings) -> list[str]:
    """What needs the nurse's reason before the infusion starts: no recent creatinine for a
    patient at risk, a course review due and not recorded, an authorisation that has ended."""
    renal = renal_check(session, infusion, settings).soft_stop
    return ([renal] if renal else []) + list(reviews.start_stops(session, infusion, settings))


def start(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    at: dt.datetime,
    settings: Settings,
    override_reason: str | None = None,
    version: int | None = None,
    now: dt.datetime | None = None,
) -> Infusion:
    """The infusion starts: after the check (the day's weight recorded, its dose approved when
    it had to be) and, for a patient at risk, a recent creatinine or a reason to go on."""
    now = now or utcnow()
    with unit_of_work(session):
        infusion = _step(session, infusion_id, version, "started_at")
        _transition(infusion, "start")
        if infusion.day_weight_kg is None:
            raise Conflict("weight_kg: record today's weight in the check first", field="weight_kg")
        if infusion.dose_approval == "waiting":
            raise Conflict(
                f"dose_approval: today's dose ({infusion.day_grams:g} g against "
                f"{infusion.planned_grams:g} g booked) waits for a physician's approval",
                field="dose_approval",
            )
        stops = start_stops(session, infusion, settings)
        reason = (override_reason or "").strip()
        if stops and not reason:
            raise InvalidInput(
                f"override_reason: {'; '.join(stops)}; give a reason to go on",
                field="override_reason",
            )
        _refuse(
            visit.time_problems(
                "started_at", at, now, _skew(settings), infusion.checked_in_at, "check-in"
            )
            + _booked_day("started_at", infusion, at)
        )
        before = infusion_view(infusion)
        infusion.status = InfusionStatus.IN_CHAIR
        infusion.given_started_at = at
        infusion.check_override_reason = (reason or None) if stops else None
        infusion.recorded_by_id = actor.user_id
        # The audit keeps what the reason went past, beside the reason itself.
        _status_change(session, actor, infusion, "start", before, now, overridden=stops)
    return infusion


def complete(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    data: Completion,
    settings: Settings,
    version: int | None = None,
    now: dt.datetime | None = None,
) -> Infusion:
    """The infusion ends: completed with the day's dose, or stopped early with the grams given
    and why; each vial used is recorded."""
    now = now or utcnow()
    with unit_of_work(session):
        infusion = _step(session, infusion_id, version, "ended_at")
        _transition(infusion, "stop" if data.stopped_early else "complete")
        dose = visit_grams(infusion)
        given = data.given_grams if data.stopped_early else dose
        problems = _completion_problems(infusion, data, given, dose, settings, now)
        _refuse(problems)
        assert given is not None
        before = infusion_view(infusion)
        for vial in data.vials:
            session.add(
                InfusionVial(
                    infusion_id=infusion.id,
                    product=vial.product,
                    lot_number=visit.normal_lot(vial.lot_number),
                    expires_on=vial.expires_on,
                    vial_grams=vial.vial_grams,
                    count=vial.count,
                    recorded_by_id=actor.user_id,
                )
            )
        infusion.status = InfusionStatus.PARTIAL if data.stopped_early else InfusionStatus.GIVEN
        infusion.given_grams = given
        infusion.given_ended_at = data.ended_at
        infusion.lot_numbers = ", ".join(
            dict.fromkeys(visit.normal_lot(v.lot_number) for v in data.vials)
        )[:200]
        infusion.max_rate_ml_per_kg_min = _highest_rate(
            infusion, rate_basis(session, infusion, settings)
        )
        infusion.status_reason = (data.reason or "").strip() or None
        infusion.recorded_by_id = actor.user_id
        _status_change(
            session, actor, infusion, "stop" if data.stopped_early else "complete", before, now
        )
        audit.record(
            session,
            actor,
            "visit.vials",
            "infusion",
            infusion.id,
            after={"vials": [dataclasses.asdict(v) for v in data.vials]},
        )
    return infusion


def _completion_problems(
    infusion: Infusion,
    data: Completion,
    given: float | None,
    dose: float,
    settings: Settings,
    now: dt.datetime,
) -> list[Problem]:
    assert infusion.given_started_at is not None
    last_step = max((s.started_at for s in infusion.rate_steps), default=infusion.given_started_at)
    problems = visit.time_problems(
        "ended_at", data.ended_at, now, _skew(settings), last_step, "the last rate step"
    )
    if not data.stopped_early and (data.given_grams is not None or (data.reason or "").strip()):
        problems.append(
            Problem(
                "stopped_early",
                "stopped_early: grams given or a reason are for an infusion stopped early: tick "
                f"it, or leave them empty to record the whole {dose:g} g",
                "stopped_early",
            )
        )
    if data.stopped_early:
        if not (data.reason or "").strip():
            problems.append(
                Problem("reason", "reason: say why the infusion stopped early", "reason")
            )
        if given is None or not 0 < given < dose:
            problems.append(
                Problem(
                    "given_grams",
                    f"given_grams: an infusion stopped early gives more than 0 and less than "
                    f"the day's {dose:g} g (got {given if given is not None else 'none'})",
                    "given_grams",
                )
            )
            return problems
    product = settings.product_catalog().get(infusion.regimen.product)
    if product is None:
        raise InvalidInput(
            f"vials: the product {infusion.regimen.product!r} is no longer configured",
            field="vials",
        )
    assert given is not None
    problems += visit.vial_problems(
        data.vials,
        given,
        infusion.planned_date,
        infusion.regimen.product,
        product.vial_sizes_g,
        stopped_early=data.stopped_early,
    )
    return problems


@dataclasses.dataclass(frozen=True)
class RateBasis:
    """What the visit's rates are judged on: its grams, the dosing weight (the day's check's
    when there is one), the highest rate for the patient as they are now, and the plan."""

    grams: float
    dosing_weight_kg: float
    max_ml_per_kg_min: float
    plan: dosing.InfusionDayPlan


def rate_basis(session: so.Session, infusion: Infusion, settings: Settings) -> RateBasis | None:
    """The visit's rate plan and limits, from the domain (None if the product is gone)."""
    product = settings.product_catalog().get(infusion.regimen.product)
    if product is None:
        return None
    patient = session.get(Patient, infusion.patient_id)
    assert patient is not None
    at_risk = patient.thrombosis_risk or patient.renal_risk
    grams = visit_grams(infusion)
    weight = _regimen_dosing_weight(infusion)
    if infusion.day_weight_kg is not None:
        result, _compared = day_dose(session, infusion, infusion.day_weight_kg, settings)
        weight = result.dosing_weight_kg
    plan = dosing.plan_infusion_day(grams, weight, product, at_risk)
    return RateBasis(grams, weight, plan.max_rate_ml_per_kg_min, plan)


def _running_rate(infusion: Infusion) -> float | None:
    """The rate of the last step recorded, if any."""
    if not infusion.rate_steps:
        return None
    return max(infusion.rate_steps, key=lambda s: s.started_at).rate_ml_per_h


def _regimen_dosing_weight(infusion: Infusion) -> float:
    calculation: Mapping[str, object] = infusion.regimen.calculation
    weight = calculation.get("dosing_weight_kg")
    if isinstance(weight, int | float) and weight > 0:
        return float(weight)
    return infusion.regimen.dosing_weight_kg


def _highest_rate(infusion: Infusion, basis: RateBasis | None) -> float | None:
    rates = [s.rate_ml_per_h for s in infusion.rate_steps]
    if not rates or basis is None:
        return None
    return round(visit.ml_per_kg_min(max(rates), basis.dosing_weight_kg), 4)


def rate_plan(
    session: so.Session, infusion: Infusion, settings: Settings
) -> dosing.InfusionDayPlan | None:
    """The rate steps the visit's dose runs at (mL/h and minutes per step), from the domain."""
    basis = rate_basis(session, infusion, settings)
    return basis.plan if basis else None


# --- documentation at the chair ---------------------------------------------------------------


def _vital_problems(vitals: Vitals, settings: Settings) -> list[Problem]:
    return visit.vitals_problems(dataclasses.asdict(vitals), settings.vital_bounds())


def _vital_row(
    infusion: Infusion, vitals: Vitals, taken_at: dt.datetime, actor: Actor
) -> VitalSigns:
    return VitalSigns(
        infusion_id=infusion.id,
        taken_at=taken_at,
        recorded_by_id=actor.user_id,
        **dataclasses.asdict(vitals),
    )


def record_vitals(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    vitals: Vitals,
    taken_at: dt.datetime,
    settings: Settings,
    now: dt.datetime | None = None,
) -> VitalSigns:
    """A set of vital signs during the visit."""
    now = now or utcnow()
    with unit_of_work(session):
        infusion = _step(session, infusion_id, None, "taken_at")
        require_status(infusion, InfusionStatus.CHECKED_IN, InfusionStatus.IN_CHAIR)
        _refuse(
            visit.time_problems(
                "taken_at", taken_at, now, _skew(settings), infusion.checked_in_at, "check-in"
            )
            + _vital_problems(vitals, settings)
        )
        row = _vital_row(infusion, vitals, taken_at, actor)
        session.add(row)
        _audit(session, actor, "vitals", infusion, taken_at=taken_at, **dataclasses.asdict(vitals))
    return row


def record_premedication(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    name: str,
    dose: float,
    given_at: dt.datetime,
    settings: Settings,
    now: dt.datetime | None = None,
) -> Premedication:
    """A premedication or hydration from the clinic's list, with its dose and time."""
    now = now or utcnow()
    choices = {choice.name: choice for choice in settings.visit.premedications}
    choice = choices.get(name)
    if choice is None:
        raise InvalidInput(f"name: one of {', '.join(choices)} (got {name!r})", field="name")
    if not 0 < dose <= choice.dose * 10:
        raise InvalidInput(
            f"dose: {dose:g} {choice.unit} is outside 0-{choice.dose * 10:g} {choice.unit}",
            field="dose",
        )
    with unit_of_work(session):
        infusion = _step(session, infusion_id, None, "given_at")
        require_status(infusion, InfusionStatus.CHECKED_IN, InfusionStatus.IN_CHAIR)
        _refuse(
            visit.time_problems(
                "given_at", given_at, now, _skew(settings), infusion.checked_in_at, "check-in"
            )
        )
        row = Premedication(
            infusion_id=infusion.id,
            name=choice.name,
            dose=dose,
            unit=choice.unit,
            route=choice.route,
            given_at=given_at,
            recorded_by_id=actor.user_id,
        )
        session.add(row)
        _audit(session, actor, "premedication", infusion, name=name, dose=dose, unit=choice.unit)
    return row


def record_rate_step(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    started_at: dt.datetime,
    rate_ml_per_h: float,
    settings: Settings,
    action: str = "step",
    note: str | None = None,
    vitals: Vitals | None = None,
    now: dt.datetime | None = None,
) -> RateStep:
    """A rate the pump ran at from `started_at` (with vital signs taken then, if given); a
    rate above the regimen's maximum is refused; slowing or pausing after a reaction is a step
    with its action."""
    now = now or utcnow()
    if action not in RATE_ACTIONS:
        raise InvalidInput(f"action: one of {', '.join(RATE_ACTIONS)}", field="action")
    with unit_of_work(session):
        infusion = _step(session, infusion_id, None, "started_at")
        require_status(infusion, InfusionStatus.IN_CHAIR)
        taken = vitals is not None and any(
            value is not None for value in dataclasses.asdict(vitals).values()
        )
        step = _rate_step(
            session,
            infusion,
            started_at,
            rate_ml_per_h,
            action,
            note,
            settings,
            now,
            actor,
            also=_vital_problems(vitals, settings) if vitals is not None and taken else [],
        )
        if vitals is not None and taken:
            session.add(_vital_row(infusion, vitals, started_at, actor))
        session.add(step)
        _audit(
            session,
            actor,
            "rate_step",
            infusion,
            started_at=started_at,
            rate_ml_per_h=rate_ml_per_h,
            action=action,
            note=note,
            vitals=dataclasses.asdict(vitals) if vitals else None,
        )
    return step


def _rate_step(
    session: so.Session,
    infusion: Infusion,
    started_at: dt.datetime,
    rate_ml_per_h: float,
    action: str,
    note: str | None,
    settings: Settings,
    now: dt.datetime,
    actor: Actor,
    also: Sequence[Problem] = (),
) -> RateStep:
    """A checked, unsaved rate step (the caller adds it); `also` are the problems of what is
    recorded with it, refused together."""
    assert infusion.given_started_at is not None
    previous = max((s.started_at for s in infusion.rate_steps), default=infusion.given_started_at)
    basis = rate_basis(session, infusion, settings)
    if basis is None:
        raise InvalidInput(
            f"rate_ml_per_h: the product {infusion.regimen.product!r} is no longer configured",
            field="rate_ml_per_h",
        )
    _refuse(
        visit.time_problems(
            "started_at", started_at, now, _skew(settings), previous, "the step before"
        )
        + visit.rate_problems(
            rate_ml_per_h, basis.dosing_weight_kg, basis.max_ml_per_kg_min, action
        )
        + visit.slower_problems(rate_ml_per_h, _running_rate(infusion), action)
        + list(also)
    )
    if note is not None and len(note) > 500:
        raise InvalidInput("note: at most 500 characters", field="note")
    return RateStep(
        infusion_id=infusion.id,
        started_at=started_at,
        rate_ml_per_h=rate_ml_per_h,
        action=action,
        note=(note or "").strip() or None,
        recorded_by_id=actor.user_id,
    )


def record_reaction(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    data: adverse_events.AdverseEventInput,
    settings: Settings,
    today: dt.date,
    new_rate_ml_per_h: float | None = None,
    at: dt.datetime | None = None,
    after_record: adverse_events.AfterRecord | None = None,
    now: dt.datetime | None = None,
) -> None:
    """A reaction at the chair; slowing or pausing the infusion for it is recorded as a rate
    step in the same transaction (serious reactions raise the safety hold as before)."""
    now = now or utcnow()
    with unit_of_work(session):
        infusion = _step(session, infusion_id, None, "event_type")
        if data.action_taken in ("slowed", "paused"):
            require_status(infusion, InfusionStatus.IN_CHAIR)
            if new_rate_ml_per_h is None and data.action_taken == "slowed":
                raise InvalidInput(
                    "new_rate_ml_per_h: give the rate the infusion was slowed to",
                    field="new_rate_ml_per_h",
                )
            step = _rate_step(
                session,
                infusion,
                at or now,
                0.0 if data.action_taken == "paused" else float(new_rate_ml_per_h or 0),
                data.action_taken,
                f"after {data.event_type.replace('_', ' ')} (grade {data.grade})",
                settings,
                now,
                actor,
            )
            session.add(step)
            _audit(
                session,
                actor,
                "rate_step",
                infusion,
                started_at=step.started_at,
                rate_ml_per_h=step.rate_ml_per_h,
                action=step.action,
                note=step.note,
            )
        adverse_events.record_adverse_event(
            session, actor, infusion_id, data, today, after_record=after_record
        )


def find_visit(session: so.Session, infusion_id: int) -> Infusion:
    """An infusion with its visit's documentation, in a fixed number of queries."""
    return get_infusion(session, infusion_id, visit=True)


def timezone_of(session: so.Session, infusion_id: int) -> str:
    """The time zone of the center an infusion is booked at (one query)."""
    zone = session.scalar(
        sa.select(Center.timezone)
        .join(Infusion, Infusion.center_id == Center.id)
        .where(Infusion.id == infusion_id)
    )
    if zone is None:
        raise NotFound(f"infusion_id: no infusion {infusion_id}", field="infusion_id")
    return zone
