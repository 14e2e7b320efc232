"""The patient's course in one picture (app.domain.timeline), printable."""

from __future__ import annotations

from flask import render_template
from markupsafe import Markup

from app import http
from app.auth import require
from app.domain import timeline
from app.policy import Action
from app.services import timeline as timeline_service
from app.web.care import bp


@bp.get("/patients/<int:patient_id>/timeline")
@require(Action.VIEW_PATIENTS)
def patient_timeline(patient_id: int) -> http.ResponseValue:
    """Measures, doses and events of the whole course on one time axis."""
    course, title = timeline_service.course(http.db(), patient_id, http.settings())
    # The SVG is built with every text escaped (app.domain.timeline).
    chart = Markup(timeline.svg(course, title))  # noqa: S704
    return render_template("care/timeline.html", patient_id=patient_id, title=title, chart=chart)
