"""Administration: infusion centers (place, time zone, public holidays, weekly hours with the
nurses on shift) and their chairs. A change to when a center is open re-books what it leaves
without a place; the flash message says how many patients that touched."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Mapping
from typing import Any, get_args

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import clock, http
from app.auth import require
from app.models import Center
from app.policy import Action
from app.schemas.centers import CenterCreateIn, CenterIn, ChairIn, ChairKind, HoursIn
from app.services import centers as center_service
from app.services import clinic, scheduling
from app.services.errors import InvalidInput, NotFound, Problem, ServiceError
from app.web import forms

bp = Blueprint("centers_admin", __name__, url_prefix="/admin/centers")

DEFAULT_ZONE = "America/New_York"
DEFAULT_OPENS, DEFAULT_CLOSES = dt.time(8), dt.time(18)
DEFAULT_CHAIRS = 3
CHAIR_KINDS: tuple[str, ...] = get_args(ChairKind)

#: What the re-booking totals say, in the order the message lists them.
_REPLAN_WORDS = (
    ("moved", "moved"),
    ("created", "booked"),
    ("cancelled", "cancelled"),
    ("unbooked", "waiting for a chair"),
)


@functools.cache
def _time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


@functools.cache
def _holiday_countries() -> list[str]:
    """Two-letter codes only: the API and the table take ISO 3166 alpha-2."""
    return sorted(code for code in center_service.holiday_countries() if len(code) == 2)


def replan_message(totals: Mapping[str, int]) -> str:
    """ "2 patients re-booked: 3 moved, 1 waiting for a chair." or "No bookings were affected."."""
    parts = [f"{totals[key]} {words}" for key, words in _REPLAN_WORDS if totals.get(key)]
    patients = totals.get("patients", 0)
    if not parts and not patients:
        return "No bookings were affected."
    head = (
        f"{patients} patient{'' if patients == 1 else 's'} re-booked" if patients else "Re-booked"
    )
    return f"{head}: {', '.join(parts)}." if parts else f"{head}."


# --- forms: what the page shows in each field ------------------------------------------------


def _day_fields(day: int, is_open: bool, opens: str, closes: str, nurses: str) -> dict[str, str]:
    return {
        f"open_{day}": "on" if is_open else "",
        f"opens_at_{day}": opens,
        f"closes_at_{day}": closes,
        f"nurses_{day}": nurses,
    }


def _blank_form(timezone: str) -> dict[str, str]:
    """A new center: open Monday to Friday, 08:00-18:00, one nurse, three chairs."""
    form = {
        "name": "",
        "address": "",
        "timezone": timezone,
        "holiday_country": "",
        "holiday_subdivision": "",
        "chair_count": str(DEFAULT_CHAIRS),
    }
    for day in range(7):
        form |= _day_fields(day, day < 5, f"{DEFAULT_OPENS:%H:%M}", f"{DEFAULT_CLOSES:%H:%M}", "1")
    return form


def _center_form(center: Center) -> dict[str, str]:
    form = {
        "name": center.name,
        "address": center.address or "",
        "timezone": center.timezone,
        "holiday_country": center.holiday_country or "",
        "holiday_subdivision": center.holiday_subdivision or "",
    }
    hours = {h.weekday: h for h in center.opening_hours}
    for day in range(7):
        h = hours.get(day)
        opens, closes = (h.opens_at, h.closes_at) if h else (DEFAULT_OPENS, DEFAULT_CLOSES)
        nurses = str(h.nurses) if h else "1"
        form |= _day_fields(day, h is not None, f"{opens:%H:%M}", f"{closes:%H:%M}", nurses)
    return form


def _chair_form(
    name: str = "", kind: str = "recliner", notes: str = "", active: bool = True
) -> dict[str, str]:
    return {"name": name, "kind": kind, "notes": notes, "active": "on" if active else ""}


# --- forms: reading what was sent -------------------------------------------------------------


def _day_hours(day: int) -> HoursIn | None:
    """One weekday's row, or None when its "open" box is not ticked; a bad value names the day."""
    if not forms.checkbox(f"open_{day}"):
        return None
    given = {
        field: request.form.get(f"{field}_{day}", "").strip() or None
        for field in ("opens_at", "closes_at", "nurses")
    }
    try:
        return forms.parse(HoursIn, weekday=day, **given)
    except InvalidInput as exc:
        # Each problem belongs to the day's own field ("opens_at_0"), as the week table names it.
        day_name = center_service.WEEKDAYS[day]
        problems = tuple(Problem(f"{p.field}_{day}", p.text) for p in exc.problems)
        first = problems[0]
        raise InvalidInput(
            f"hours: {day_name} {exc.message}", field=first.field, problems=problems
        ) from None


def _hours() -> list[HoursIn]:
    """Every open day's hours; every bad day's problems at once."""
    hours: list[HoursIn] = []
    problems: list[Problem] = []
    for day in range(7):
        try:
            row = _day_hours(day)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        if row is not None:
            hours.append(row)
    if problems:
        raise InvalidInput("hours: see each day", field=problems[0].field, problems=tuple(problems))
    return hours


def _numbered_chairs() -> list[dict[str, str]]:
    """ "Chair 1" .. "Chair N", recliners, from the "chairs to create" field."""
    raw = request.form.get("chair_count", "").strip() or "0"
    limit = center_service.MAX_CHAIRS
    if not (raw.isascii() and raw.isdigit() and int(raw) <= limit):
        raise InvalidInput(
            f"chair_count: give a whole number from 0 to {limit} (got {raw[:20]!r})",
            field="chair_count",
        )
    return [{"name": f"Chair {n}", "kind": "recliner"} for n in range(1, int(raw) + 1)]


# --- pages ------------------------------------------------------------------------------------


def _form_page(template: str, status: int = 200, **context: Any) -> http.ResponseValue:
    return (
        render_template(
            template,
            weekdays=center_service.WEEKDAYS,
            time_zones=_time_zones(),
            countries=_holiday_countries(),
            subdivisions=center_service.holiday_countries(),
            max_nurses=center_service.MAX_NURSES,
            max_chairs=center_service.MAX_CHAIRS,
            kinds=CHAIR_KINDS,
            **context,
        ),
        status,
    )


@bp.get("")
@require(Action.MANAGE_CENTERS)
def index() -> http.ResponseValue:
    """Every center with its open days, hours, nurses and chairs in use."""
    return render_template(
        "admin/centers/index.html",
        centers=clinic.list_centers(http.db()),
        weekdays=center_service.WEEKDAYS,
    )


@bp.route("/new", methods=["GET", "POST"])
@require(Action.MANAGE_CENTERS)
def new() -> http.ResponseValue:
    """Create a center with its weekly hours and numbered chairs."""
    centers = clinic.list_centers(http.db())
    first = min(centers, key=lambda c: c.id).timezone if centers else DEFAULT_ZONE
    if request.method == "GET":
        return _form_page("admin/centers/new.html", form=_blank_form(first))
    try:
        body = forms.parse_all(CenterCreateIn, {"hours": _hours, "chairs": _numbered_chairs})
        chairs = tuple(chair.chair_input() for chair in body.chairs)
        center = center_service.create_center(http.db(), http.actor(), body.center_input(chairs))
    except ServiceError as exc:
        forms.refuse(exc, "center")
        return _form_page("admin/centers/new.html", exc.status, form=forms.sent())
    count = len(center.chairs)
    flash(f"Created {center.name} with {count} chair{'' if count == 1 else 's'}.", "success")
    return redirect(url_for("centers_admin.center", center_id=center.id))


def center_page(
    center_id: int,
    error: ServiceError | None = None,
    refused: str = "center",
    form: dict[str, str] | None = None,
    chair_edit: tuple[int, dict[str, str]] | None = None,
    new_chair: dict[str, str] | None = None,
    closure_form: dict[str, str] | None = None,
) -> http.ResponseValue:
    """The center's page; after a refused change to one of its forms (`refused`: center,
    closure, new-chair, chair-<id>), its problems by its fields and what was typed."""
    center = clinic.get_center(http.db(), center_id)  # an unknown center: 404, no message
    if error is not None:
        forms.refuse(error, refused)
    today = clock.clinic_today(center.timezone)
    chair_forms = {
        c.id: _chair_form(c.name, c.kind, c.notes or "", c.active) for c in center.chairs
    }
    if chair_edit is not None:
        chair_forms[chair_edit[0]] = chair_edit[1]
    return _form_page(
        "admin/centers/center.html",
        error.status if error else 200,
        center=center,
        form=form or _center_form(center),
        chair_forms=chair_forms,
        new_chair=new_chair or _chair_form(),
        today=today,
        closures=center_service.closures_to_come(http.db(), center_id),
        holidays=sorted(
            scheduling.public_holidays(
                center, http.settings(), today, today + dt.timedelta(days=365)
            ).items()
        ),
        describe_closure=center_service.describe_closure,
        closure_form=closure_form or {},
    )


@bp.route("/<int:center_id>", methods=["GET", "POST"])
@require(Action.MANAGE_CENTERS)
def center(center_id: int) -> http.ResponseValue:
    """A center's page; saving replaces its description and weekly hours."""
    if request.method == "GET":
        return center_page(center_id)
    try:
        body = forms.parse_all(CenterIn, {"hours": _hours})
        _changed, totals = center_service.update_center(
            http.db(), http.actor(), center_id, body.center_input(), http.settings()
        )
    except ServiceError as exc:
        return center_page(center_id, exc, form=forms.sent())
    flash(f"Saved. {replan_message(totals)}", "success")
    return redirect(url_for("centers_admin.center", center_id=center_id))


@bp.post("/<int:center_id>/chairs")
@require(Action.MANAGE_CENTERS)
def add_chair(center_id: int) -> http.ResponseValue:
    """Add a chair to the center."""
    try:
        body = forms.parse(ChairIn)
        chair = center_service.add_chair(http.db(), http.actor(), center_id, body.chair_input())
    except ServiceError as exc:
        return center_page(center_id, exc, "new-chair", new_chair=forms.sent())
    flash(f"Added {chair.name}.", "success")
    return redirect(url_for("centers_admin.center", center_id=center_id, _anchor="chairs"))


@bp.post("/<int:center_id>/chairs/<int:chair_id>")
@require(Action.MANAGE_CENTERS)
def update_chair(center_id: int, chair_id: int) -> http.ResponseValue:
    """Rename, re-describe, retire or bring back a chair; a retired chair's bookings move."""
    if chair_id not in {c.id for c in clinic.get_center(http.db(), center_id).chairs}:
        raise NotFound(f"chair_id: no chair {chair_id} at this center", field="chair_id")
    try:
        body = forms.parse(ChairIn)
        chair, totals = center_service.update_chair(
            http.db(), http.actor(), chair_id, body.chair_input(), http.settings()
        )
    except ServiceError as exc:
        return center_page(center_id, exc, f"chair-{chair_id}", chair_edit=(chair_id, forms.sent()))
    flash(f"{chair.name} saved. {replan_message(totals)}", "success")
    return redirect(url_for("centers_admin.center", center_id=center_id, _anchor="chairs"))


from app.web import closures  # noqa: E402, F401  (routes on this blueprint)
