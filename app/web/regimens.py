"""Pages for setting a patient's IVIG regimen: a preview of what it does first (old and new
version, grams and vials a day, the bookings that move), then confirming applies exactly that."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app import http
from app.auth import require
from app.policy import Action
from app.schemas.regimens import RegimenIn
from app.services import patients as patient_service
from app.services import regimens as regimen_service
from app.services.errors import ServiceError
from app.services.previews import Preview, PreviewChanged
from app.web import forms
from app.web.care import bp
from app.web.patients import patient_page

#: The regimen form's fields, carried from the preview to the confirmation.
_FIELDS = tuple(name for name in RegimenIn.model_fields if name != "fingerprint")


def _preview_page(
    patient_id: int, summary: dict[str, object], preview: Preview, status: int = 200
) -> http.ResponseValue:
    return (
        render_template(
            "care/regimen_preview.html",
            patient=patient_service.get_patient(http.db(), patient_id),
            summary=summary,
            preview=preview,
            fields={name: request.form.get(name, "") for name in _FIELDS},
        ),
        status,
    )


@bp.post("/patients/<int:patient_id>/regimens/preview")
@require(Action.SET_REGIMEN)
def preview_regimen(patient_id: int) -> http.ResponseValue:
    """Show what the regimen would do; nothing is saved."""
    try:
        settings = http.settings()
        body = forms.parse(RegimenIn, fingerprint=None)
        summary, preview = regimen_service.preview_regimen(
            http.db(),
            http.actor(),
            patient_id,
            body.regimen_input(settings.dosing.weight_basis_default),
            settings,
        )
    except ServiceError as exc:
        forms.refuse(exc, "regimen")
        return patient_page(patient_id, exc.status)
    return _preview_page(patient_id, summary, preview)


@bp.post("/patients/<int:patient_id>/regimens")
@require(Action.SET_REGIMEN)
def set_regimen(patient_id: int) -> http.ResponseValue:
    """Set a new regimen version and re-plan the future (from a preview: exactly it)."""
    settings = http.settings()
    try:
        body = forms.parse(RegimenIn)
        data = body.regimen_input(settings.dosing.weight_basis_default)
        regimen, plan = regimen_service.set_regimen(
            http.db(), http.actor(), patient_id, data, settings, fingerprint=body.fingerprint
        )
    except PreviewChanged as exc:
        flash("The bookings changed since the preview was shown: check it again.", "error")
        summary, preview = regimen_service.preview_regimen(
            http.db(), http.actor(), patient_id, data, settings
        )
        return _preview_page(patient_id, summary, preview, exc.status)
    except ServiceError as exc:
        forms.refuse(exc, "regimen")
        return patient_page(patient_id, exc.status)
    summary = plan.summary()
    flash(
        f"Regimen version {regimen.version} set: {summary['created']} infusions booked, "
        f"{summary['moved']} moved, {summary['cancelled']} cancelled, "
        f"{summary['unbooked']} waiting for a chair.",
        "success",
    )
    return redirect(url_for("care.patient", patient_id=patient_id))
