"""Administration: closing a center or one chair, for a day, a range of days or part of each
day. The admin sees first which infusions of which patients would move where and which could
not be placed; confirming applies exactly that."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from app import http
from app.auth import require
from app.policy import Action
from app.schemas.centers import ClosureIn
from app.services import centers as center_service
from app.services import clinic
from app.services.errors import ServiceError
from app.services.previews import Preview, PreviewChanged
from app.web import forms
from app.web.centers import bp, center_page, replan_message


def _preview_page(
    center_id: int, body: ClosureIn, preview: Preview, status: int = 200
) -> http.ResponseValue:
    center = clinic.get_center(http.db(), center_id)
    chair = next((c.name for c in center.chairs if c.id == body.chair_id), None)
    return (
        render_template(
            "admin/centers/closure_preview.html",
            center=center,
            closure=body,
            place=chair or center.name,
            when=center_service.describe_closure(body.closure_input()),
            preview=preview,
        ),
        status,
    )


@bp.post("/<int:center_id>/closures/preview")
@require(Action.MANAGE_CENTERS)
def preview_closure(center_id: int) -> http.ResponseValue:
    """Show what closing the center that day would do; nothing is saved."""
    clinic.get_center(http.db(), center_id)  # an unknown center: 404
    try:
        body = forms.parse(ClosureIn, fingerprint=None)
        preview = center_service.preview_closure(
            http.db(), http.actor(), center_id, body.closure_input(), http.settings()
        )
    except ServiceError as exc:
        return center_page(center_id, exc, "closure", closure_form=forms.sent())
    return _preview_page(center_id, body, preview)


@bp.post("/<int:center_id>/closures")
@require(Action.MANAGE_CENTERS)
def add_closure(center_id: int) -> http.ResponseValue:
    """Apply a previewed closure; if the bookings changed since, show the new preview."""
    clinic.get_center(http.db(), center_id)
    try:
        body = forms.parse(ClosureIn)
        closure, totals = center_service.add_closure(
            http.db(),
            http.actor(),
            center_id,
            body.closure_input(),
            http.settings(),
            fingerprint=body.fingerprint,
        )
    except PreviewChanged as exc:
        flash(exc.message.split(": ", 1)[1].capitalize() + ".", "error")
        return _preview_page(center_id, forms.parse(ClosureIn), exc.preview, exc.status)
    except ServiceError as exc:
        return center_page(center_id, exc, "closure", closure_form=forms.sent())
    when = center_service.describe_closure(closure)
    flash(f"Closed: {when}. {replan_message(totals)}", "success")
    return redirect(url_for("care.day_board", center_id=center_id, date=closure.closed_on))
