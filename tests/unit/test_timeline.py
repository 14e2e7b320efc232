"""The course chart: one time axis, every series and event where its date puts it, text
escaped, readable without colour (shapes and dash patterns, a legend)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from app.domain import timeline
from app.domain.timeline import Course, Marker, Point, Step

SVG = "{http://www.w3.org/2000/svg}"
START = dt.date(2026, 1, 5)


def course(**changes: object) -> Course:
    values: dict[str, object] = {
        "first": START,
        "last": START + dt.timedelta(days=365),
        "cdasi_activity": (Point(START, 30), Point(START + dt.timedelta(days=90), 12)),
        "cdasi_damage": (Point(START, 8),),
        "mmt8": (Point(START, 110), Point(START + dt.timedelta(days=90), 140)),
        "tis": (Point(START + dt.timedelta(days=90), 47.5),),
        "ivig": (
            Step(START, 2.0, "2 g/kg every 4 weeks"),
            Step(START + dt.timedelta(days=180), 1.5, "1.5 g/kg every 4 weeks"),
        ),
        "prednisone": (Step(START, 40), Step(START + dt.timedelta(days=28), 30)),
        "markers": (
            Marker(START, "infusion", "Cycle 1 day 1"),
            Marker(START + dt.timedelta(days=30), "reaction", "headache, grade 1"),
            Marker(START + dt.timedelta(days=150), "suggestion", "Lower the dose", "approved"),
            Marker(
                START + dt.timedelta(days=200), "suggestion", "Widen <interval> & co", "rejected"
            ),
            Marker(START + dt.timedelta(days=181), "review", "Course review: continue"),
        ),
    }
    values.update(changes)
    return Course(**values)  # type: ignore[arg-type]


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 (our own output)


def test_every_series_and_event_is_drawn_once_with_its_title() -> None:
    root = parse(timeline.svg(course(), "Course of Example, T-100"))
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Course of Example, T-100"  # type: ignore[union-attr]
    series = [e.get("data-series") for e in root.iter() if e.get("data-series")]
    assert series.count("activity") == 1 and series.count("damage") == 1
    assert series.count("ivig") == 2 and series.count("prednisone") == 2
    marks = [
        (e.get("data-marker"), e.get("data-state")) for e in root.iter() if e.get("data-marker")
    ]
    assert sorted(marks) == [
        ("infusion", ""),
        ("reaction", ""),
        ("review", ""),
        ("suggestion", "approved"),
        ("suggestion", "rejected"),
    ]


def test_the_axis_is_shared_a_later_event_lies_further_right() -> None:
    root = parse(timeline.svg(course(), "t"))
    xs = {
        e.find(f"{SVG}title").text: float(e.get("transform").split("(")[1].split(",")[0])  # type: ignore[union-attr]
        for e in root.iter()
        if e.get("data-marker")
    }
    assert xs["Cycle 1 day 1"] < xs["headache, grade 1"] < xs["Lower the dose"]
    # The IVIG step that starts on the review's day starts where the review's mark is.
    steps = [e for e in root.iter() if e.get("data-series") == "ivig"]
    second = float(steps[1].get("d").split(",")[0][1:])  # type: ignore[union-attr]
    assert abs(second - xs["Course review: continue"]) < 3


def test_text_is_escaped_and_shapes_not_colour_tell_a_rejection() -> None:
    text = timeline.svg(course(), "Course of <O'Brien> & co")
    root = parse(text)  # well-formed despite the markup in the labels
    rejected = next(e for e in root.iter() if e.get("data-state") == "rejected")
    approved = next(e for e in root.iter() if e.get("data-state") == "approved")
    assert rejected.get("fill") == "none" and approved.get("fill") != "none"
    assert "Widen &lt;interval&gt; &amp; co" in text
    assert "hollow rejected" in text  # the legend says it in words


def test_an_empty_course_draws_its_frame() -> None:
    root = parse(timeline.svg(Course(first=START, last=START), "Nothing yet"))
    assert not [e for e in root.iter() if e.get("data-marker") or e.get("data-series")]
