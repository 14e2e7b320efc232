"""The home page (each role's day of work) and the patient list."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from app import http
from app.auth import require
from app.db import utcnow
from app.policy import Action, can
from app.services import clinic, worklists

bp = Blueprint("main", __name__)


@bp.get("/")
@require(Action.VIEW_SCHEDULE)
def home() -> http.ResponseValue:
    """The day's work for the user's role, and each center today."""
    user = http.current_user()
    assert user is not None
    session, settings, now = http.db(), http.settings(), utcnow()
    work: dict[str, object] = {}
    # Each part of the day's work is shown to whoever may act on it.
    if can(user.role, Action.RECORD_INFUSION):
        work["nurse"] = worklists.nurse_work(
            session,
            user.id,
            settings,
            now,
            home_center_id=user.home_center_id,
            all_centers=request.args.get("center") == "all",
        )
    if can(user.role, Action.DECIDE_SUGGESTION):
        work["physician"] = worklists.physician_work(session, user.id)
    if can(user.role, Action.MANAGE_CENTERS):
        work["admin"] = worklists.admin_work(session, now)
    today = []
    for center in clinic.list_centers(session):
        local_now = now.astimezone(ZoneInfo(center.timezone))
        hours = next((h for h in center.opening_hours if h.weekday == local_now.weekday()), None)
        today.append({"center": center, "local_now": local_now, "hours": hours})
    return render_template("main/home.html", today=today, now=now, weekday_names=_WEEKDAYS, **work)


_WEEKDAYS = [dt.date(2024, 1, day).strftime("%A") for day in range(1, 8)]


@bp.get("/patients")
@require(Action.VIEW_PATIENTS)
def patients() -> http.ResponseValue:
    """List and search patients."""
    query = request.args.get("q", "")[:100]
    return render_template(
        "main/patients.html", patients=clinic.list_patients(http.db(), query), query=query
    )
