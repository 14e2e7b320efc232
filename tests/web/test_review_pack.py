"""The review pack through the Flask test client, on a real database: a course of two regimen
versions, infusions given, three assessments, an authorisation and one recorded review read
back from the printable page and from the CSV, which say the same lines."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from app import clock
from app.models import CourseReview, Infusion, InfusionStatus
from app.services import assessments, reviews
from app.services import regimens as regimen_service
from app.services import review_pack as pack_service
from tests.conftest import login
from tests.db.clinic_fixtures import Clinic, at, give, make_clinic, regimen_input, review_course

MONDAY = dt.date(2026, 10, 5)
CYCLE_2 = MONDAY + dt.timedelta(weeks=4)
CYCLE_3 = MONDAY + dt.timedelta(weeks=8)
REVIEWED_ON = CYCLE_3 - dt.timedelta(days=5)
#: Version 2 (every 6 weeks) starts 6 weeks after cycle 2, in place of cycle 3 of version 1.
V2_FROM = CYCLE_2 + dt.timedelta(weeks=6)
#: The day the pack is drawn up.
TODAY = REVIEWED_ON + dt.timedelta(days=2)
#: A note a spreadsheet would run as a formula.
FORMULA_NOTE = '=HYPERLINK("http://example.invalid","widen the interval")'

BASELINE = {
    "cdasi_activity": 30.0,
    "cdasi_damage": 8.0,
    "mmt8": 60.0,
    "ck": 900.0,
    "ck_uln": 200.0,
    "physician_global": 6.0,
    "patient_global": 7.0,
    "haq": 1.5,
    "extramuscular_global": 5.0,
}
MIDWAY = {**BASELINE, "cdasi_activity": 22.0, "mmt8": 66.0, "ck": 500.0, "physician_global": 4.0}
AT_REVIEW = {
    **BASELINE,
    "cdasi_activity": 12.0,
    "cdasi_damage": 7.0,
    "mmt8": 74.0,
    "ck": 250.0,
    "physician_global": 2.0,
    "patient_global": 3.0,
    "haq": 0.5,
    "extramuscular_global": 2.0,
}


def live_infusions(db_session, clinic: Clinic) -> list[Infusion]:
    return list(
        db_session.scalars(
            sa.select(Infusion)
            .where(
                Infusion.patient_id == clinic.patient.id,
                Infusion.status != InfusionStatus.CANCELLED,
            )
            .order_by(Infusion.planned_date, Infusion.day_number)
        )
    )


def assess(db_session, clinic: Clinic, on: dt.date, scores: dict[str, float]) -> None:
    assessments.record_assessment(
        db_session,
        clinic.nursing,
        clinic.patient.id,
        assessments.AssessmentInput(assessed_on=on, scores=scores),
        on,
    )


@pytest.fixture
def course(db_session, make_user, settings) -> Clinic:
    """Version 1 from MONDAY, cycles 1 and 2 given, reviewed ("change") before cycle 3, then
    version 2 every 6 weeks from V2_FROM; assessed before the course, midway and at review."""
    clock.set_now(at(MONDAY - dt.timedelta(days=7), 9))
    clinic = make_clinic(db_session, make_user, settings)
    clinic.patient.treating_physician_id = clinic.physician.id
    db_session.commit()
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(starts_on=MONDAY), settings
    )
    reviews.record_authorisation(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        reviews.AuthorisationInput(
            reference="BS-2026-0042",
            approved_by="BloodSTAR",
            starts_on=MONDAY,
            ends_on=MONDAY + dt.timedelta(days=730),
        ),
        settings,
    )
    assess(db_session, clinic, MONDAY - dt.timedelta(days=3), BASELINE)
    clock.set_now(at(CYCLE_2 + dt.timedelta(days=1), 20))
    for infusion in live_infusions(db_session, clinic):
        if infusion.planned_date <= CYCLE_2 + dt.timedelta(days=1):
            give(db_session, clinic.nursing, infusion, settings)
    assess(db_session, clinic, CYCLE_2 - dt.timedelta(days=3), MIDWAY)
    clock.set_now(at(REVIEWED_ON, 9))
    review = review_course(db_session, clinic, settings, REVIEWED_ON, "change", AT_REVIEW)
    # review_course writes a fixed note; the pack must defuse whatever a physician typed.
    assert isinstance(review, CourseReview)
    review.note = FORMULA_NOTE
    db_session.commit()
    clock.set_now(at(REVIEWED_ON + dt.timedelta(days=1), 9))
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(
            starts_on=V2_FROM,
            interval_weeks=6,
            based_on_version=1,
            reason="Responding; widen the interval",
        ),
        settings,
    )
    clock.set_now(at(TODAY, 10))
    return clinic


class _PackReader(HTMLParser):
    """Rows by data-testid (pack-regimen, ...), each {data-field: text}; and the next review."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.next_review = ""
        self._row: dict[str, str] | None = None
        self._field: str | None = None
        self._in_next = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and a.get("data-testid", "").startswith("pack-"):
            self._row = {}
            self.rows[a["data-testid"].removeprefix("pack-")].append(self._row)
        elif tag == "td" and self._row is not None and a.get("data-field"):
            self._field = a["data-field"]
            self._row[self._field] = ""
        elif tag == "dd" and a.get("data-testid") == "next-review":
            self._in_next = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None
        elif tag == "tr":
            self._row = None
        elif tag == "dd":
            self._in_next = False

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._field is not None:
            self._row[self._field] += data
        if self._in_next:
            self.next_review += data


def read_page(html: str) -> _PackReader:
    reader = _PackReader()
    reader.feed(html)
    return reader


def number(cell: str) -> float | None:
    cell = cell.strip()
    return None if cell in ("", "—") else float(cell)


def logged_in(app, clinic: Clinic):
    client = app.test_client()
    assert login(client, clinic.nurse.email).status_code == 302
    return client


def test_the_page_shows_the_versions_the_scores_with_their_tis_the_review_and_the_next_point(
    app, db_session, settings, course
):
    page = logged_in(app, course).get(f"/patients/{course.patient.id}/review-pack")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    read = read_page(html)

    regimens = read.rows["regimen"]
    assert [r["version"] for r in regimens] == ["1", "2"]
    assert [r["interval_weeks"] for r in regimens] == ["4", "6"]
    assert [r["date"] for r in regimens] == [MONDAY.isoformat(), V2_FROM.isoformat()]
    assert regimens[1]["reason"] == "Responding; widen the interval"

    shown = {row["date"]: number(row["tis"]) for row in read.rows["assessment"]}
    days = [MONDAY - dt.timedelta(days=3), CYCLE_2 - dt.timedelta(days=3), REVIEWED_ON]
    assert list(shown) == [d.isoformat() for d in days]
    expected = {
        d.isoformat(): reviews.tis_on(db_session, course.patient.id, settings, d) for d in days
    }
    assert all(tis is not None for tis in expected.values())
    assert expected[REVIEWED_ON.isoformat()] > expected[days[1].isoformat()]  # improving
    assert shown == pytest.approx(expected)

    (review,) = read.rows["review"]
    assert review["decision"] == "change" and review["date"] == REVIEWED_ON.isoformat()
    assert review["note"] == FORMULA_NOTE  # the page shows the text as typed
    assert number(review["tis"]) == pytest.approx(expected[REVIEWED_ON.isoformat()])
    state = reviews.status(db_session, course.patient.id, settings, TODAY)
    assert state.point is not None
    assert f"due {state.point.due_on.isoformat()}" in read.next_review
    assert "overdue" not in read.next_review.lower()

    (granted,) = read.rows["authorisation"]
    assert granted["reference"] == "BS-2026-0042" and granted["approved_by"] == "BloodSTAR"
    assert '<button type="button" class="js-print">Print</button>' in html
    assert f"MRN <b>{course.patient.mrn}</b>" in html


def test_the_csv_has_the_pages_lines_and_defuses_a_formula_in_a_note(app, db_session, course):
    client = logged_in(app, course)
    read = read_page(client.get(f"/patients/{course.patient.id}/review-pack").get_data(True))
    response = client.get(f"/patients/{course.patient.id}/review-pack.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert (
        response.headers["Content-Disposition"]
        == f'attachment; filename="review-pack-{course.patient.mrn}.csv"'
    )
    header, *rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(header) == pack_service.CSV_HEADER
    assert all(len(row) == len(header) for row in rows)
    lines = [dict(zip(header, row, strict=True)) for row in rows]
    counts = Counter(line["section"] for line in lines)
    assert counts == {"patient": 1, "regimen": 2, "assessment": 3, "review": 1, "authorisation": 1}
    for section in ("regimen", "assessment", "review", "authorisation"):
        assert [line["date"] for line in lines if line["section"] == section] == [
            row["date"] for row in read.rows[section]
        ], section
    assessed = [line for line in lines if line["section"] == "assessment"]
    assert [number(line["tis"]) for line in assessed] == pytest.approx(
        [number(row["tis"]) for row in read.rows["assessment"]]
    )
    (patient,) = (line for line in lines if line["section"] == "patient")
    assert patient["mrn"] == course.patient.mrn
    assert patient["first_cycle_on"] == MONDAY.isoformat()
    assert patient["cycles_given"] == "2" and patient["review_overdue"] == "no"
    given = sum(
        i.given_grams or 0 for i in live_infusions(db_session, course) if i.status == "given"
    )
    assert float(patient["grams_given"]) == pytest.approx(given) and given > 0
    (review,) = (line for line in lines if line["section"] == "review")
    assert review["decision"] == "change"
    assert review["note"] == "'" + FORMULA_NOTE  # a leading quote: shown as text, never run


def test_an_overdue_review_is_said_in_words(app, db_session, settings, course):
    state = reviews.status(db_session, course.patient.id, settings, TODAY)
    assert state.point is not None
    late = state.point.due_on + dt.timedelta(days=1)
    clock.set_now(at(late, 10))
    client = logged_in(app, course)
    page = client.get(f"/patients/{course.patient.id}/review-pack").get_data(as_text=True)
    assert 'data-testid="overdue"' in page and "Overdue" in page
    lines = list(
        csv.DictReader(
            io.StringIO(
                client.get(f"/patients/{course.patient.id}/review-pack.csv").get_data(as_text=True)
            )
        )
    )
    assert lines[0]["section"] == "patient" and lines[0]["review_overdue"] == "yes"


def test_the_pack_takes_the_same_queries_however_long_the_course(
    db_session, settings, course, count_queries
):
    patient_id = course.patient.id

    def queries() -> int:
        db_session.expire_all()
        with count_queries() as statements:
            pack_service.review_pack(db_session, patient_id, settings, TODAY)
        return sum(1 for s in statements if str(s).lstrip().upper().startswith("SELECT"))

    before = queries()
    assess(db_session, course, TODAY, AT_REVIEW)
    reviews.record_authorisation(
        db_session,
        course.doctor,
        course.patient.id,
        reviews.AuthorisationInput("BS-2026-0043", "BloodSTAR", TODAY, TODAY + dt.timedelta(400)),
        settings,
    )
    pack = pack_service.review_pack(db_session, course.patient.id, settings, TODAY)
    assert len(pack.assessments) == 4 and len(pack.authorisations) == 2
    assert queries() == before


def test_an_unknown_patient_is_404_and_no_login_goes_to_the_login_page(app, course):
    client = logged_in(app, course)
    for tail in ("review-pack", "review-pack.csv"):
        missing = client.get(f"/patients/999999/{tail}")
        assert missing.status_code == 404, tail
        assert "no patient 999999" in missing.get_data(as_text=True)
        anonymous = app.test_client().get(f"/patients/{course.patient.id}/{tail}")
        assert anonymous.status_code == 302, tail
        assert anonymous.headers["Location"].startswith("/login?next=")
