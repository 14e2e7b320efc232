"""JSON API: the visit at the chair, step by step (each a transaction, each audited)."""

from __future__ import annotations

from typing import Any

from app import clock, http
from app.api import bp, guarded
from app.models import Infusion
from app.policy import Action
from app.schemas.visits import (
    ApproveDoseIn,
    CheckIn,
    CheckInIn,
    CompleteIn,
    PremedicationIn,
    RateStepIn,
    ReactionIn,
    StartIn,
    VisitOut,
    VitalsTakenIn,
)
from app.services import visits
from app.services.suggestions import evaluation_hook


def visit_record(infusion_id: int) -> dict[str, Any]:
    """The visit as it stands: states and times, the check, the plan and what was recorded."""
    session = http.db()
    session.expire_all()
    infusion: Infusion = visits.find_visit(session, infusion_id)
    plan = visits.rate_plan(session, infusion, http.settings())
    return {
        "infusion_id": infusion.id,
        "status": infusion.status,
        "version": infusion.version,
        "checked_in_at": infusion.checked_in_at,
        "started_at": infusion.given_started_at,
        "ended_at": infusion.given_ended_at,
        "planned_grams": infusion.planned_grams,
        "day_weight_kg": infusion.day_weight_kg,
        "day_grams": infusion.day_grams,
        "dose_approval": infusion.dose_approval,
        "given_grams": infusion.given_grams,
        "check_override_reason": infusion.check_override_reason,
        "rate_plan": [vars(step) for step in plan.steps] if plan else [],
        "premedications": infusion.premedications,
        "rate_steps": infusion.rate_steps,
        "vitals": infusion.vitals,
        "vials": infusion.vials,
    }


@bp.get("/infusions/<int:infusion_id>/visit")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(VisitOut)
def visit(infusion_id: int) -> Any:
    """The visit record: states with times, the check, the rate plan (mL/h, minutes per step),
    premedication, rate steps as run, vital signs and vials."""
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/check-in")
@guarded(Action.RECORD_INFUSION)
@bp.input(CheckInIn, arg_name="body")
@bp.output(VisitOut)
def check_in(infusion_id: int, body: CheckInIn) -> Any:
    """The patient has arrived (scheduled -> checked in)."""
    visits.check_in(http.db(), http.actor(), infusion_id, body.at, http.settings(), body.version)
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/check")
@guarded(Action.RECORD_INFUSION)
@bp.input(CheckIn, arg_name="body")
@bp.output(VisitOut)
def check(infusion_id: int, body: CheckIn) -> Any:
    """The pre-infusion check: today's weight (the dose is recomputed; a change past the
    threshold waits for a physician) and vital signs."""
    visits.record_check(
        http.db(),
        http.actor(),
        infusion_id,
        body.weight_kg,
        body.vitals(),
        body.taken_at,
        http.settings(),
        body.version,
    )
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/approve-dose")
@guarded(Action.SET_REGIMEN)
@bp.input(ApproveDoseIn, arg_name="body")
@bp.output(VisitOut)
def approve_dose(infusion_id: int, body: ApproveDoseIn) -> Any:
    """A physician approves the dose the day's weight gave, or keeps the booked dose for
    today (physician; the version seen is required)."""
    visits.approve_day_dose(
        http.db(), http.actor(), infusion_id, body.version, keep_booked=body.keep_booked
    )
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/start")
@guarded(Action.RECORD_INFUSION)
@bp.input(StartIn, arg_name="body")
@bp.output(VisitOut)
def start(infusion_id: int, body: StartIn) -> Any:
    """The infusion starts (checked in -> in chair)."""
    visits.start(
        http.db(),
        http.actor(),
        infusion_id,
        body.at,
        http.settings(),
        body.override_reason,
        body.version,
    )
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/premedications")
@guarded(Action.RECORD_INFUSION)
@bp.input(PremedicationIn, arg_name="body")
@bp.output(VisitOut, status_code=201)
def premedication(infusion_id: int, body: PremedicationIn) -> Any:
    """A premedication or hydration from the clinic's list."""
    visits.record_premedication(
        http.db(), http.actor(), infusion_id, body.name, body.dose, body.given_at, http.settings()
    )
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/rate-steps")
@guarded(Action.RECORD_INFUSION)
@bp.input(RateStepIn, arg_name="body")
@bp.output(VisitOut, status_code=201)
def rate_step(infusion_id: int, body: RateStepIn) -> Any:
    """A rate the pump ran at from a moment on, with the vital signs taken then."""
    visits.record_rate_step(
        http.db(),
        http.actor(),
        infusion_id,
        body.started_at,
        body.rate_ml_per_h,
        http.settings(),
        body.action,
        body.note,
        body.vitals(),
    )
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/vitals")
@guarded(Action.RECORD_INFUSION)
@bp.input(VitalsTakenIn, arg_name="body")
@bp.output(VisitOut, status_code=201)
def vitals(infusion_id: int, body: VitalsTakenIn) -> Any:
    """A set of vital signs during the visit."""
    visits.record_vitals(
        http.db(), http.actor(), infusion_id, body.vitals(), body.taken_at, http.settings()
    )
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/reactions")
@guarded(Action.RECORD_INFUSION)
@bp.input(ReactionIn, arg_name="body")
@bp.output(VisitOut, status_code=201)
def reaction(infusion_id: int, body: ReactionIn) -> Any:
    """A reaction at the chair; slowing or pausing for it is recorded as a rate step."""
    session = http.db()
    timezone = visits.timezone_of(session, infusion_id)
    today = clock.clinic_today(timezone)
    visits.record_reaction(
        session,
        http.actor(),
        infusion_id,
        body.event_input(today),
        http.settings(),
        today,
        body.new_rate_ml_per_h,
        body.at,
        after_record=evaluation_hook(http.settings()),
    )
    return visit_record(infusion_id)


@bp.post("/infusions/<int:infusion_id>/complete")
@guarded(Action.RECORD_INFUSION)
@bp.input(CompleteIn, arg_name="body")
@bp.output(VisitOut)
def complete(infusion_id: int, body: CompleteIn) -> Any:
    """The infusion ends: completed with the day's dose, or stopped early (grams and why);
    each vial used with its lot and expiry; the vials add up to the grams given."""
    visits.complete(
        http.db(), http.actor(), infusion_id, body.completion(), http.settings(), body.version
    )
    return visit_record(infusion_id)
