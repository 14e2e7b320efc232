"""The patient's course in one picture, on the review pack's course: version 1 then version
2 (every 6 weeks), two cycles given, three assessments, a review; through real HTTP."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from app import clock
from app.services import timeline as timeline_service
from tests.web.test_review_pack import (  # noqa: F401 (the course fixture)
    MONDAY,
    REVIEWED_ON,
    TODAY,
    V2_FROM,
    assess,
    course,
    logged_in,
)

SVG = "{http://www.w3.org/2000/svg}"


def chart(page: str) -> ET.Element:
    start = page.index("<svg")
    return ET.fromstring(page[start : page.index("</svg>") + 6])  # noqa: S314 (our own page)


def test_the_timeline_shows_the_course_on_one_axis(app, course) -> None:  # noqa: F811
    client = logged_in(app, course)
    page = client.get(f"/patients/{course.patient.id}/timeline")
    assert page.status_code == 200
    root = chart(page.get_data(as_text=True))
    title = root.find(f"{SVG}title")
    assert title is not None and "Example" in (title.text or "")
    marks = [e.get("data-marker") for e in root.iter() if e.get("data-marker")]
    assert marks.count("infusion") == 4  # cycles 1 and 2, two days each
    assert marks.count("review") == 1
    steps = [e for e in root.iter() if e.get("data-series") == "ivig"]
    labels = [e.find(f"{SVG}title").text for e in steps]  # type: ignore[union-attr]
    assert labels == ["2 g/kg every 4 weeks", "2 g/kg every 6 weeks"]
    activity = [e for e in root.iter() if e.get("data-series") == "activity"]
    assert len(activity) == 1 and len(activity[0].get("points", "").split()) == 3
    tis = [e for e in root.iter() if e.get("data-series") == "tis"]
    assert tis  # scored against the baseline before the course


def test_the_chart_covers_the_course_from_its_first_record(
    db_session,
    settings,
    course,  # noqa: F811
) -> None:
    drawn, _title = timeline_service.course(db_session, course.patient.id, settings, TODAY)
    assert drawn.first == MONDAY - dt.timedelta(days=3)  # the baseline assessment
    assert drawn.last >= V2_FROM  # version 2's first cycle, booked ahead
    assert [s.since for s in drawn.ivig][1] == V2_FROM
    assert any(m.kind == "review" and m.on == REVIEWED_ON for m in drawn.markers)
    with clock.frozen_at(clock.now()):
        assess(db_session, course, TODAY, {"cdasi_activity": 5.0, "mmt8": 80.0})
    again, _title = timeline_service.course(db_session, course.patient.id, settings, TODAY)
    assert len(again.cdasi_activity) == len(drawn.cdasi_activity) + 1


def test_an_unknown_patient_is_404(app, course) -> None:  # noqa: F811
    client = logged_in(app, course)
    missing = client.get("/patients/999999/timeline")
    assert missing.status_code == 404
    assert "no patient 999999" in missing.get_data(as_text=True)
