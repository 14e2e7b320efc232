"""The patient page's labs card: recording a result, and each test's trend as a table and a
small inline SVG chart drawn on the server."""

from __future__ import annotations

import dataclasses

from flask import flash, redirect, url_for

from app import http
from app.auth import require
from app.config import LabTestSettings
from app.policy import Action
from app.schemas.labs import LabIn
from app.services import labs as lab_service
from app.services import patients as patient_service
from app.services.errors import ServiceError
from app.web import forms
from app.web.care import bp
from app.web.patients import patient_page

_WORDS = {"high": "above range", "low": "below range"}


def range_text(low: float | None, high: float | None) -> str:
    """A reference range as the page shows it: "45-84", "≥ 60", "≤ 192" or "—"."""
    if low is not None and high is not None:
        return f"{low:g}-{high:g}"
    if low is not None:
        return f"≥ {low:g}"
    if high is not None:
        return f"≤ {high:g}"
    return "—"


@bp.app_template_global("lab_range")
def lab_range(value: lab_service.LabValue) -> str:
    return range_text(value.ref_low, value.ref_high)


def _choice(key: str, test: LabTestSettings) -> tuple[str, str]:
    default = range_text(test.ref_low, test.ref_high)
    return key, f"{test.label} ({test.unit}; default range {default})"


@bp.app_template_global("lab_choices")
def lab_choices() -> list[tuple[str, str]]:
    """(key, text) pairs of the clinic's lab list, for the form's select."""
    return [_choice(key, test) for key, test in http.settings().labs.tests.items()]


@dataclasses.dataclass(frozen=True)
class Mark:
    x: float
    y: float
    flag: str | None

    def triangle(self, size: float = 4.0) -> str:
        """The points of a triangle pointing up (above range) or down (below range)."""
        tip = -size if self.flag == "high" else size
        tip_y, base_y = round(self.y + tip, 1), round(self.y - tip, 1)
        return f"{self.x},{tip_y} {self.x - size},{base_y} {self.x + size},{base_y}"


@bp.app_template_global("lab_sparkline")
def sparkline(
    trend: lab_service.LabTrend, width: int = 200, height: int = 48, pad: float = 6.0
) -> dict[str, object]:
    """Geometry of a test's sparkline (values over the days taken) with its reference lines,
    and the title that says what it shows in words."""
    values = trend.values
    latest = trend.latest
    bounds = [b for b in (latest.ref_low, latest.ref_high) if b is not None]
    lowest = min([v.value for v in values] + bounds)
    highest = max([v.value for v in values] + bounds)
    if highest == lowest:
        lowest, highest = lowest - 1, highest + 1
    first, last = values[0].taken_on, values[-1].taken_on
    span = (last - first).days

    def x(index: int) -> float:
        if len(values) == 1:
            return width / 2
        share = (values[index].taken_on - first).days / span if span else index / (len(values) - 1)
        return round(pad + share * (width - 2 * pad), 1)

    def y(value: float) -> float:
        return round(height - pad - (value - lowest) / (highest - lowest) * (height - 2 * pad), 1)

    marks = [Mark(x(i), y(v.value), v.flag) for i, v in enumerate(values)]
    words = f"latest {latest.value:g} {trend.unit} on {latest.taken_on.isoformat()}"
    if latest.flag:
        words += f", {_WORDS[latest.flag]}"
    reference = range_text(latest.ref_low, latest.ref_high)
    count = f"{len(values)} result{'s' if len(values) != 1 else ''}"
    period = (
        f"on {first.isoformat()}"
        if first == last
        else f"from {first.isoformat()} to {last.isoformat()}"
    )
    title = (
        f"{trend.label} ({trend.unit}), {count} {period}, "
        f"lowest {min(v.value for v in values):g}, highest {max(v.value for v in values):g}; "
        f"{words}; reference range {reference}"
    )
    return {
        "width": width,
        "height": height,
        "points": " ".join(f"{m.x},{m.y}" for m in marks),
        "marks": marks,
        "ref_lines": [y(b) for b in bounds],
        "title": title,
    }


@bp.post("/patients/<int:patient_id>/labs")
@require(Action.RECORD_ASSESSMENT)
def record_lab(patient_id: int) -> http.ResponseValue:
    """Record a lab result."""
    labs = http.settings().labs
    try:
        today = patient_service.local_today(http.db(), patient_id)
        result = lab_service.record_lab(
            http.db(), http.actor(), patient_id, forms.parse(LabIn).lab_input(), today, labs
        )
    except ServiceError as exc:
        forms.refuse(exc, "lab")
        return patient_page(patient_id, exc.status)
    value = lab_service.value_of(result)
    label = labs.tests[result.test].label
    where = f" ({_WORDS[value.flag]})" if value.flag else ""
    flash(f"{label} {value.value:g} {value.unit} recorded{where}.", "success")
    return redirect(url_for("care.patient", patient_id=patient_id, _anchor="labs"))
