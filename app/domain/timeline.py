"""A patient's course in one picture: outcome measures, IVIG and steroid doses as steps, and
the events between them, on one shared time axis, drawn as SVG on the server.

Pure: the service passes the series and events; this returns the SVG text. Readable in print
and without colour: every line has its own dash pattern and every event its own shape, with
a legend; colour only repeats what the patterns say. Each panel has its own scale, labelled.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Literal
from xml.sax.saxutils import escape

MarkerKind = Literal["infusion", "reaction", "suggestion", "review"]


@dataclasses.dataclass(frozen=True)
class Point:
    on: dt.date
    value: float


@dataclasses.dataclass(frozen=True)
class Step:
    """A value in force from a day until the next step (or the end of the axis)."""

    since: dt.date
    value: float
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Marker:
    on: dt.date
    kind: MarkerKind
    label: str
    #: For a suggestion: pending, approved, rejected, expired, superseded.
    state: str = ""


@dataclasses.dataclass(frozen=True)
class Course:
    first: dt.date
    last: dt.date
    cdasi_activity: tuple[Point, ...] = ()
    cdasi_damage: tuple[Point, ...] = ()
    mmt8: tuple[Point, ...] = ()
    tis: tuple[Point, ...] = ()
    #: IVIG g/kg per cycle, each step labelled with its interval ("2 g/kg every 4 weeks").
    ivig: tuple[Step, ...] = ()
    #: Prednisone-equivalent mg/day.
    prednisone: tuple[Step, ...] = ()
    markers: tuple[Marker, ...] = ()


WIDTH, LEFT, RIGHT = 960, 150, 20
PANEL, GAP, TOP = 80, 22, 28
#: (title, series, line style, top of the scale or None for the data's own).
_LINES = {
    "activity": ("none", "#b03030"),
    "damage": ("6 3", "#6a4c93"),
    "mmt8": ("none", "#1f6f8b"),
    "tis": ("2 3", "#2d7d46"),
}
_SHAPES: dict[str, str] = {
    "infusion": "M-1,-7 h2 v14 h-2 z",
    "reaction": "M0,-7 L7,6 L-7,6 z",
    "suggestion": "M0,-7 L7,0 L0,7 L-7,0 z",
    "review": "M-6,-6 h12 v12 h-12 z",
}
_ROWS = ("infusion", "reaction", "suggestion", "review")
#: Text as attributes: the pages' Content-Security-Policy refuses inline CSS.
_BOLD = 'font-family="sans-serif" font-size="12" font-weight="600"'
_SMALL = 'font-family="sans-serif" font-size="11"'
_ROW_NAMES = {
    "infusion": "IVIG given",
    "reaction": "Reaction",
    "suggestion": "Suggestion",
    "review": "Review",
}


class _Axis:
    def __init__(self, first: dt.date, last: dt.date) -> None:
        self.first = first
        self.days = max(1, (last - first).days)

    def x(self, day: dt.date) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (day - self.first).days / self.days


def _top(values: Sequence[float], floor: float) -> float:
    high = max(values, default=0.0)
    return max(floor, high * 1.1) or 1.0


def _months(axis: _Axis, last: dt.date) -> list[dt.date]:
    ticks, day = [], dt.date(axis.first.year, axis.first.month, 1)
    step = 1 if axis.days <= 400 else 3 if axis.days <= 1200 else 6
    while day <= last:
        if day >= axis.first:
            ticks.append(day)
        month = day.month - 1 + step
        day = dt.date(day.year + month // 12, month % 12 + 1, 1)
    return ticks


def _panel_frame(out: list[str], y: float, title: str, top: float, unit: str) -> None:
    out.append(f'<text x="8" y="{y + 12}" {_BOLD}>{escape(title)}</text>')
    out.append(f'<text x="8" y="{y + 27}" {_SMALL}>{escape(unit)}</text>')
    out.append(f'<text x="{LEFT - 6}" y="{y + 10}" {_SMALL} text-anchor="end">{top:g}</text>')
    out.append(f'<text x="{LEFT - 6}" y="{y + PANEL}" {_SMALL} text-anchor="end">0</text>')
    out.append(
        f'<rect x="{LEFT}" y="{y}" width="{WIDTH - LEFT - RIGHT}" height="{PANEL}" '
        'fill="none" stroke="#999"/>'
    )


def _polyline(
    out: list[str], axis: _Axis, points: Sequence[Point], y: float, top: float, kind: str
) -> None:
    if not points:
        return
    style, colour = _LINES[kind]
    coords = " ".join(
        f"{axis.x(p.on):.1f},{y + PANEL - PANEL * min(p.value, top) / top:.1f}" for p in points
    )
    out.append(
        f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2" '
        f'stroke-dasharray="{style}" data-series="{kind}"/>'
    )
    for p in points:
        cy = y + PANEL - PANEL * min(p.value, top) / top
        out.append(
            f'<circle cx="{axis.x(p.on):.1f}" cy="{cy:.1f}" r="2.5" fill="{colour}">'
            f"<title>{escape(kind)} {p.value:g} on {p.on}</title></circle>"
        )


def _steps(
    out: list[str],
    axis: _Axis,
    steps: Sequence[Step],
    y: float,
    top: float,
    kind: str,
    end: dt.date,
) -> None:
    ordered = sorted(steps, key=lambda s: s.since)
    for n, step in enumerate(ordered):
        until = ordered[n + 1].since if n + 1 < len(ordered) else end
        x1, x2 = axis.x(max(step.since, axis.first)), axis.x(until)
        level = y + PANEL - PANEL * min(step.value, top) / top
        out.append(
            f'<path d="M{x1:.1f},{y + PANEL} V{level:.1f} H{x2:.1f} V{y + PANEL}" '
            f'fill="none" stroke="#222" stroke-width="2" data-series="{kind}">'
            f"<title>{escape(step.label)}</title></path>"
        )
        if step.label and x2 - x1 > 40:
            out.append(
                f'<text x="{x1 + 3:.1f}" y="{level - 3:.1f}" {_SMALL}>{escape(step.label)}</text>'
            )


def _events(out: list[str], axis: _Axis, markers: Sequence[Marker], y: float) -> float:
    """The rows of events under the panels; returns where they end."""
    for n, kind in enumerate(_ROWS):
        row_y = y + 10 + n * 20
        out.append(f'<text x="8" y="{row_y + 4}" {_BOLD}>{_ROW_NAMES[kind]}</text>')
        for marker in (m for m in markers if m.kind == kind):
            fill = "none" if marker.state in ("rejected", "expired", "superseded") else "#333"
            if marker.state == "pending":
                fill = "#bbb"
            out.append(
                f'<path transform="translate({axis.x(marker.on):.1f},{row_y})" '
                f'd="{_SHAPES[kind]}" fill="{fill}" stroke="#333" data-marker="{kind}"'
                f' data-state="{escape(marker.state)}"><title>{escape(marker.label)}</title></path>'
            )
    return y + 10 + len(_ROWS) * 20


def _month_ticks(out: list[str], axis: _Axis, last: dt.date, bottom: float) -> None:
    for tick in _months(axis, last):
        x = axis.x(tick)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom - 10}" stroke="#ddd"/>')
        label = (
            tick.strftime("%b %Y") if tick.month == 1 or tick == axis.first else tick.strftime("%b")
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 6}" {_SMALL} text-anchor="middle">{label}</text>'
        )


def svg(course: Course, title: str) -> str:
    """The course as an SVG document with a <title> and a text description."""
    axis = _Axis(course.first, course.last)
    out: list[str] = []
    y = TOP
    panels: list[tuple[str, str, float]] = [
        (
            "CDASI",
            "activity —, damage - -",
            _top([p.value for p in course.cdasi_activity + course.cdasi_damage], 20),
        ),
        ("MMT-8", "0-150", 150.0),
        ("TIS", "improvement, 0-100", 100.0),
        ("IVIG", "g/kg per cycle", _top([s.value for s in course.ivig], 2.0)),
        ("Prednisone", "mg/day (equivalent)", _top([s.value for s in course.prednisone], 10)),
    ]
    for name, unit, top in panels:
        _panel_frame(out, y, name, top, unit)
        if name == "CDASI":
            _polyline(out, axis, course.cdasi_activity, y, top, "activity")
            _polyline(out, axis, course.cdasi_damage, y, top, "damage")
        elif name == "MMT-8":
            _polyline(out, axis, course.mmt8, y, top, "mmt8")
        elif name == "TIS":
            _polyline(out, axis, course.tis, y, top, "tis")
        elif name == "IVIG":
            _steps(out, axis, course.ivig, y, top, "ivig", course.last)
        else:
            _steps(out, axis, course.prednisone, y, top, "prednisone", course.last)
        y += PANEL + GAP
    bottom = _events(out, axis, course.markers, y)
    _month_ticks(out, axis, course.last, bottom)
    lines = (
        "Lines: CDASI activity solid, damage dashed; MMT-8 solid; TIS dotted.",
        "Steps: IVIG g/kg per cycle (with its interval) and prednisone-equivalent mg/day.",
        "Marks: bar IVIG given, triangle reaction, square review; diamond suggestion",
        "(filled approved, grey pending, hollow rejected, expired or superseded).",
    )
    legend = " ".join(lines)
    height = bottom + 30 + 15 * len(lines)
    for n, line in enumerate(lines):
        out.append(f'<text x="8" y="{bottom + 30 + 15 * n}" {_SMALL}>{escape(line)}</text>')
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" aria-labelledby="tl-title tl-desc" class="timeline">'
        f'<title id="tl-title">{escape(title)}</title>'
        f'<desc id="tl-desc">{escape(legend)} From {course.first} to {course.last}.</desc>'
    )
    return head + "".join(out) + "</svg>"
