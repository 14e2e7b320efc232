"""JSON API: the dose calculator and patients' regimen versions."""

from __future__ import annotations

import dataclasses
from typing import Any

from app import http
from app.api import bp, guarded
from app.domain import dosing
from app.policy import Action
from app.schemas.regimens import (
    DoseIn,
    DoseOut,
    RegimenIn,
    RegimenList,
    RegimenPreviewOut,
    RegimenSetOut,
)
from app.services import patients as patient_service
from app.services import regimens as regimen_service


def dose_out(result: dosing.DoseResult) -> dict[str, Any]:
    """Flatten a dose result into the API's answer."""
    return {
        "weight_basis": result.weight_basis,
        "ideal_body_weight_kg": round(result.ideal_body_weight_kg, 2),
        "adjusted_body_weight_kg": round(result.adjusted_body_weight_kg, 2),
        "dosing_weight_kg": round(result.dosing_weight_kg, 2),
        "grams_per_cycle": round(result.grams_per_cycle, 2),
        "grams_per_day": round(result.grams_per_day, 2),
        "rounded_grams_per_day": result.rounding.rounded_g,
        "rounded_grams_per_cycle": result.rounded_grams_per_cycle,
        "vials_per_day": [{"size_g": size, "count": n} for size, n in result.rounding.vials],
        "vial_count_per_day": result.rounding.vial_count,
        "deviation_percent": result.rounding.deviation_percent,
        "waste_g_per_day": round(result.rounding.waste_g, 2),
        "within_tolerance": result.rounding.within_tolerance,
        "volume_ml_per_day": round(result.infusion.volume_ml, 1),
        "rate_steps": [dataclasses.asdict(step) for step in result.infusion.steps],
        "minutes_per_day": result.infusion.minutes,
        "max_rate_ml_per_kg_min": result.infusion.max_rate_ml_per_kg_min,
        "soft_stops": [dataclasses.asdict(problem) for problem in result.soft_stops],
    }


@bp.post("/dosing/ivig")
@guarded(Action.USE_CALCULATOR)
@bp.input(DoseIn, arg_name="body")
@bp.output(DoseOut)
def calculate_ivig_dose(body: DoseIn) -> Any:
    """Work out an IVIG dose, vials and rate plan; saves nothing."""
    request = dosing.DoseRequest(**body.model_dump())
    return dose_out(regimen_service.calculate(request, http.settings()))


@bp.post("/patients/<int:patient_id>/regimens/preview")
@guarded(Action.SET_REGIMEN)
@bp.input(RegimenIn, arg_name="body")
@bp.output(RegimenPreviewOut)
def preview_regimen(patient_id: int, body: RegimenIn) -> Any:
    """What setting this regimen would do (old and new version, bookings that change); saves
    nothing. Send its fingerprint with the regimen to apply exactly this (physician)."""
    settings = http.settings()
    summary, preview = regimen_service.preview_regimen(
        http.db(),
        http.actor(),
        patient_id,
        body.regimen_input(settings.dosing.weight_basis_default),
        settings,
    )
    return summary | {"preview": preview.as_dict()}


@bp.get("/patients/<int:patient_id>/regimens")
@guarded(Action.VIEW_PATIENTS)
@bp.output(RegimenList)
def regimens(patient_id: int) -> Any:
    """Every regimen version, newest first."""
    patient_service.get_patient(http.db(), patient_id)
    return {"regimens": regimen_service.regimen_history(http.db(), patient_id)}


@bp.post("/patients/<int:patient_id>/regimens")
@guarded(Action.SET_REGIMEN)
@bp.input(RegimenIn, arg_name="body")
@bp.output(RegimenSetOut, status_code=201)
def set_regimen(patient_id: int, body: RegimenIn) -> Any:
    """Set a new regimen version (physician) and re-plan future infusions."""
    settings = http.settings()
    regimen, plan = regimen_service.set_regimen(
        http.db(),
        http.actor(),
        patient_id,
        body.regimen_input(settings.dosing.weight_basis_default),
        settings,
        fingerprint=body.fingerprint,
    )
    return {"regimen": regimen, "replan": plan.summary()}
