"""Administration: closing a center for a day. The admin sees first which infusions of which
patients would move where and which could not be placed; confirming applies exactly that."""

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
from app.web.centers import bp, replan_message


def _preview_page(
    center_id: int, body: ClosureIn, preview: Preview, status: int = 200
) -> http.ResponseValue:
    center = clinic.get_center(http.db(), center_id)
    return (
        render_template(
            "admin/centers/closure_preview.html", center=center, closure=body, preview=preview
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
            http.db(), http.actor(), center_id, body.closed_on, body.reason, http.settings()
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("centers_admin.center", center_id=center_id, _anchor="closures"))
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
            body.closed_on,
            body.reason,
            http.settings(),
            fingerprint=body.fingerprint,
        )
    except PreviewChanged as exc:
        flash(exc.message.split(": ", 1)[1].capitalize() + ".", "error")
        return _preview_page(center_id, forms.parse(ClosureIn), exc.preview, exc.status)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("centers_admin.center", center_id=center_id, _anchor="closures"))
    flash(f"Closed on {closure.closed_on:%a %d %b %Y}. {replan_message(totals)}", "success")
    return redirect(url_for("care.day_board", center_id=center_id, date=closure.closed_on))
