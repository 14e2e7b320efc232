"""The dose calculator page."""

from __future__ import annotations

from flask import flash, render_template, request

from app import http
from app.auth import require
from app.domain import dosing
from app.policy import Action
from app.services import regimens as regimen_service
from app.services.errors import ServiceError
from app.web import forms
from app.web.care import bp


@bp.route("/dosing/ivig", methods=["GET", "POST"])
@require(Action.USE_CALCULATOR)
def calculator() -> http.ResponseValue:
    """The dose calculator: saves nothing."""
    settings = http.settings()
    result = None
    status = 200
    if request.method == "POST":
        try:
            request_value = dosing.DoseRequest(
                weight_kg=forms.number("weight_kg"),
                height_cm=forms.number("height_cm"),
                sex=forms.text("sex", 10),  # type: ignore[arg-type]
                dose_g_per_kg=forms.number("dose_g_per_kg"),
                days_per_cycle=forms.whole("days_per_cycle"),
                weight_basis=forms.text("weight_basis", 10),  # type: ignore[arg-type]
                product=forms.text("product", 60),
                thrombosis_risk=forms.checkbox("thrombosis_risk"),
                renal_risk=forms.checkbox("renal_risk"),
            )
            result = regimen_service.calculate(request_value, settings)
        except ServiceError as exc:
            flash(exc.message, "error")
            status = exc.status
    return (
        render_template(
            "care/calculator.html",
            result=result,
            products=list(settings.product_catalog()),
            default_basis=settings.dosing.weight_basis_default,
            form=request.form,
        ),
        status,
    )
