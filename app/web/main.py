"""The landing page and the patient list."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from app import http
from app.auth import require
from app.db import utcnow
from app.policy import Action
from app.services import clinic

bp = Blueprint("main", __name__)


@bp.get("/")
@require(Action.VIEW_SCHEDULE)
def home() -> http.ResponseValue:
    """Today at each center: local date, opening hours and chairs."""
    now = utcnow()
    today = []
    for center in clinic.list_centers(http.db()):
        local_now = now.astimezone(ZoneInfo(center.timezone))
        hours = next((h for h in center.opening_hours if h.weekday == local_now.weekday()), None)
        today.append({"center": center, "local_now": local_now, "hours": hours})
    return render_template("main/home.html", today=today, now=now, weekday_names=_WEEKDAYS)


_WEEKDAYS = [dt.date(2024, 1, day).strftime("%A") for day in range(1, 8)]


@bp.get("/patients")
@require(Action.VIEW_PATIENTS)
def patients() -> http.ResponseValue:
    """List and search patients."""
    query = request.args.get("q", "")[:100]
    return render_template(
        "main/patients.html", patients=clinic.list_patients(http.db(), query), query=query
    )
