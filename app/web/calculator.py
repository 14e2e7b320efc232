"""The dose calculator page."""

from __future__ import annotations

from flask import render_template, request

from app import http
from app.auth import require
from app.domain import dosing
from app.policy import Action
from app.schemas.regimens import DoseIn
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
            body = forms.parse(DoseIn)
            result = regimen_service.calculate(dosing.DoseRequest(**body.model_dump()), settings)
        except ServiceError as exc:
            forms.refuse(exc, "dose")
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
