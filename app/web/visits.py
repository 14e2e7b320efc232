"""The visit at the chair, for the nurse's tablet: each step a form, the page showing what the
visit needs next; a refused step shows the page again with its problems by their fields. The
printable visit record is one page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for

from app import clock, http
from app.auth import require
from app.config import VITAL_NAMES
from app.models.infusion import ADVERSE_EVENT_TYPES, REACTION_ACTIONS, REACTION_OUTCOMES
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
    VitalsTakenIn,
)
from app.services import adverse_events, labs, visits
from app.services.errors import ServiceError
from app.services.suggestions import evaluation_hook
from app.web import forms
from app.web.care import bp

#: Rows of the vials table on the completion form (lots of one visit).
VIAL_ROWS = 4

#: The labels of the vital signs, as every visit form shows them.
VITAL_LABELS = {
    "systolic_mmhg": "Systolic (mmHg)",
    "diastolic_mmhg": "Diastolic (mmHg)",
    "pulse_bpm": "Pulse (/min)",
    "temperature_c": "Temperature (°C)",
    "respiratory_rate": "Respiratory rate (/min)",
    "spo2_percent": "SpO₂ (%)",
}
assert tuple(VITAL_LABELS) == VITAL_NAMES


def visit_page(infusion_id: int, status: int = 200) -> http.ResponseValue:
    session, settings = http.db(), http.settings()
    infusion = visits.find_visit(session, infusion_id)
    tz = infusion.center.timezone
    product = settings.product_catalog().get(infusion.regimen.product)
    return (
        render_template(
            "care/visit.html",
            i=infusion,
            p=infusion.patient,
            tz=tz,
            now_local=clock.now().astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M"),
            plan=visits.rate_plan(session, infusion, settings),
            renal=visits.renal_check(session, infusion, settings),
            stops=visits.start_stops(session, infusion, settings),
            renal_lab=labs.latest(session, infusion.patient_id, visits.RENAL_TESTS),
            open_serious=adverse_events.open_serious(session, infusion.patient_id),
            visit_grams=visits.visit_grams(infusion),
            premedications=settings.visit.premedications,
            vital_labels=VITAL_LABELS,
            event_types=ADVERSE_EVENT_TYPES,
            reaction_actions=REACTION_ACTIONS,
            reaction_outcomes=REACTION_OUTCOMES,
            vial_sizes=product.vial_sizes_g if product else (),
            vial_rows=range(VIAL_ROWS),
            threshold=settings.visit.dose_change_percent,
            timedelta=dt.timedelta,
        ),
        status,
    )


@bp.get("/infusions/<int:infusion_id>/visit")
@require(Action.VIEW_SCHEDULE)
def visit(infusion_id: int) -> http.ResponseValue:
    """The visit at the chair: what it needs next, the rate plan, what was recorded."""
    return visit_page(infusion_id)


@bp.get("/infusions/<int:infusion_id>/visit/record")
@require(Action.VIEW_SCHEDULE)
def visit_record(infusion_id: int) -> http.ResponseValue:
    """The visit record on one printable page."""
    infusion = visits.find_visit(http.db(), infusion_id)
    return render_template(
        "care/visit_record.html", i=infusion, p=infusion.patient, tz=infusion.center.timezone
    )


def _step(
    infusion_id: int, form: str, run: Callable[[str], object], done: str
) -> http.ResponseValue:
    """Run one step of the visit; refused, the page again with the form's problems."""
    tz = visits.timezone_of(http.db(), infusion_id)
    try:
        run(tz)
    except ServiceError as exc:
        forms.refuse(exc, form)
        return visit_page(infusion_id, exc.status)
    flash(done, "success")
    return redirect(url_for("care.visit", infusion_id=infusion_id))


@bp.post("/infusions/<int:infusion_id>/visit/check-in")
@require(Action.RECORD_INFUSION)
def visit_check_in(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        body = forms.parse(CheckInIn, timezone=tz)
        visits.check_in(
            http.db(), http.actor(), infusion_id, body.at, http.settings(), body.version
        )

    return _step(infusion_id, "check-in", run, "Checked in.")


@bp.post("/infusions/<int:infusion_id>/visit/check")
@require(Action.RECORD_INFUSION)
def visit_check(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        body = forms.parse(CheckIn, timezone=tz)
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

    return _step(infusion_id, "check", run, "Check recorded.")


@bp.post("/infusions/<int:infusion_id>/visit/approve-dose")
@require(Action.SET_REGIMEN)
def visit_approve_dose(infusion_id: int) -> http.ResponseValue:
    def run(_tz: str) -> None:
        body = forms.parse(ApproveDoseIn)
        visits.approve_day_dose(
            http.db(), http.actor(), infusion_id, body.version, keep_booked=body.keep_booked
        )

    return _step(infusion_id, "approve", run, "Today's dose approved.")


@bp.post("/infusions/<int:infusion_id>/visit/premedication")
@require(Action.RECORD_INFUSION)
def visit_premedication(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        body = forms.parse(PremedicationIn, timezone=tz)
        visits.record_premedication(
            http.db(),
            http.actor(),
            infusion_id,
            body.name,
            body.dose,
            body.given_at,
            http.settings(),
        )

    return _step(infusion_id, "premedication", run, "Premedication recorded.")


@bp.post("/infusions/<int:infusion_id>/visit/start")
@require(Action.RECORD_INFUSION)
def visit_start(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        body = forms.parse(StartIn, timezone=tz)
        visits.start(
            http.db(),
            http.actor(),
            infusion_id,
            body.at,
            http.settings(),
            body.override_reason,
            body.version,
        )

    return _step(infusion_id, "start", run, "Infusion started.")


@bp.post("/infusions/<int:infusion_id>/visit/rate-step")
@require(Action.RECORD_INFUSION)
def visit_rate_step(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        body = forms.parse(RateStepIn, timezone=tz)
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

    return _step(infusion_id, "rate-step", run, "Rate step recorded.")


@bp.post("/infusions/<int:infusion_id>/visit/vitals")
@require(Action.RECORD_INFUSION)
def visit_vitals(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        body = forms.parse(VitalsTakenIn, timezone=tz)
        visits.record_vitals(
            http.db(), http.actor(), infusion_id, body.vitals(), body.taken_at, http.settings()
        )

    return _step(infusion_id, "vitals", run, "Vital signs recorded.")


@bp.post("/infusions/<int:infusion_id>/visit/reaction")
@require(Action.RECORD_INFUSION)
def visit_reaction(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        body = forms.parse(ReactionIn, timezone=tz)
        today = clock.clinic_today(tz)
        visits.record_reaction(
            http.db(),
            http.actor(),
            infusion_id,
            body.event_input(today),
            http.settings(),
            today,
            body.new_rate_ml_per_h,
            body.at,
            after_record=evaluation_hook(http.settings()),
        )

    return _step(infusion_id, "reaction", run, "Reaction recorded.")


def _vial_rows(product: str) -> list[dict[str, str]]:
    """The vials table's filled rows, as typed (the model checks each value)."""
    rows = []
    for row in range(VIAL_ROWS):
        values = {
            name: request.form.get(f"vials.{row}.{name}", "").strip()
            for name in ("lot_number", "expires_on", "vial_grams", "count")
        }
        if any(values.values()):
            rows.append({"product": product} | values)
    return rows


@bp.post("/infusions/<int:infusion_id>/visit/complete")
@require(Action.RECORD_INFUSION)
def visit_complete(infusion_id: int) -> http.ResponseValue:
    def run(tz: str) -> None:
        product = visits.find_visit(http.db(), infusion_id).regimen.product
        body = forms.parse_all(CompleteIn, {"vials": lambda: _vial_rows(product)}, timezone=tz)
        visits.complete(
            http.db(), http.actor(), infusion_id, body.completion(), http.settings(), body.version
        )

    return _step(infusion_id, "complete", run, "Infusion recorded: the visit is complete.")
