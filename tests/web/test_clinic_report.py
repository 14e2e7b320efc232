"""The clinic reports through the Flask test client, on a real database: figures worked out by
hand, the page and its CSV saying the same figures, the filters narrowing them, a bad filter a
422 naming the field, and the same number of queries whatever the number of patients."""

from __future__ import annotations

import csv
import datetime as dt
import io
from html.parser import HTMLParser

import pytest

from app import clock
from app.models import AdverseEvent, Assessment, CourseReview, Infusion, TaperPlan, TaperStep
from app.services import clinic_report
from tests.conftest import login
from tests.db.clinic_fixtures import Clinic, at, make_center, make_clinic, make_patient
from tests.db.test_stewardship import D0, add_cycle, add_version, selects
from tests.web.test_stewardship import BAD_FILTERS, assert_refused

TODAY = D0 + dt.timedelta(weeks=20)
#: Scores at the baseline, and after a response (TIS 85: 20 + 10 + 20 + 7.5 + 7.5 + 20).
BASELINE = {
    "cdasi_activity": 40.0,
    "physician_global": 6.0,
    "patient_global": 6.0,
    "mmt8": 60.0,
    "haq": 1.5,
    "ck": 1000.0,
    "extramuscular_global": 4.0,
}
BETTER = {
    "cdasi_activity": 30.0,
    "physician_global": 3.0,
    "patient_global": 3.0,
    "mmt8": 66.0,
    "haq": 1.2,
    "ck": 700.0,
    "extramuscular_global": 2.0,
}


class Figures(HTMLParser):
    """The text of every cell carrying data-figure (and data-reference), by its name."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.references: dict[str, str] = {}
        self._open: tuple[dict[str, str], str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "td" and "data-figure" in found:
            self._open, self._text = (self.figures, found["data-figure"]), ""
        elif tag == "td" and "data-reference" in found:
            self._open, self._text = (self.references, found["data-reference"]), ""

    def handle_endtag(self, tag):
        if tag == "td" and self._open is not None:
            table, name = self._open
            table[name] = self._text.strip()
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._text += data


def page_figures(html: str) -> Figures:
    parser = Figures()
    parser.feed(html)
    return parser


def csv_figures(client, query: str = "") -> dict[str, tuple[str, str]]:
    response = client.get(f"/reports/clinic.csv{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == clinic_report.CSV_HEADER
    return {"|".join(row[:3]): (row[3], row[4]) for row in rows[1:]}


def assess(session, clinic: Clinic, on: dt.date, scores: dict[str, float]) -> None:
    session.add(Assessment(patient_id=clinic.patient.id, assessed_on=on, **scores))


def taper(session, clinic: Clinic) -> None:
    """Prednisone 20 mg/day for 14 days from D0, then 10 mg/day (active); 5 mg only planned."""
    plan = TaperPlan(
        patient_id=clinic.patient.id,
        version=1,
        drug="prednisone",
        start_mg=20.0,
        template="custom",
        template_params={},
        starts_on=D0,
        reason="test",
    )
    session.add(plan)
    session.flush()
    for position, mg, status, started, ended in (
        (0, 20.0, "completed", D0, D0 + dt.timedelta(days=14)),
        (1, 10.0, "active", D0 + dt.timedelta(days=14), None),
        (2, 5.0, "planned", None, None),
    ):
        session.add(
            TaperStep(
                uid=f"step-{clinic.patient.id}-{position}",
                plan_id=plan.id,
                patient_id=clinic.patient.id,
                position=position,
                mg_per_day=mg,
                min_days=14,
                status=status,
                earliest_on=D0 + dt.timedelta(days=14 * position),
                started_on=started,
                ended_on=ended,
            )
        )
    session.flush()


def event(session, clinic: Clinic, on: dt.date, kind: str, grade: int, serious: bool) -> None:
    session.add(
        AdverseEvent(
            patient_id=clinic.patient.id,
            occurred_on=on,
            event_type=kind,
            grade=grade,
            serious=serious,
            resolved_on=on + dt.timedelta(days=2),
        )
    )


def weeks(n: int) -> dt.date:
    return D0 + dt.timedelta(weeks=n)


def responder(session, made: Clinic) -> None:
    """Five cycles from D0 at 2 g/kg (160 g), a response at week 6 after two cycles, a taper,
    and a day still to give at week 24."""
    v1 = add_version(session, made, 1, D0, 2.0, 4)
    for n in range(5):
        add_cycle(session, made, v1, n + 1, weeks(4 * n))
    assess(session, made, D0 - dt.timedelta(days=1), BASELINE)
    assess(session, made, weeks(6), BETTER)
    taper(session, made)
    session.add(
        Infusion(
            patient_id=made.patient.id,
            regimen_id=v1.id,
            cycle_number=7,
            day_number=1,
            planned_date=weeks(24),
            cycle_planned_on=weeks(24),
            center_id=made.center.id,
            status="unbooked",
            planned_grams=80.0,
            planned_vials=[[30.0, 1]],
            planned_minutes=180,
        )
    )


def stopped(session, made: Clinic) -> None:
    """Five cycles from D0, no improvement at week 8, a headache at week 4, a serious
    thrombosis at week 17 and a review that stopped the course at week 18."""
    v1 = add_version(session, made, 1, D0, 2.0, 4)
    for n in range(5):
        add_cycle(session, made, v1, n + 1, weeks(4 * n))
    assess(session, made, D0 - dt.timedelta(days=1), BASELINE)
    assess(session, made, weeks(8), BASELINE)
    event(session, made, weeks(4), "headache", 2, False)
    event(session, made, weeks(17), "thrombosis", 3, True)
    session.add(
        CourseReview(
            patient_id=made.patient.id,
            reviewed_on=weeks(18),
            decision="stop",
            reviewed_by_id=made.physician.id,
        )
    )


def starting(session, made: Clinic) -> None:
    """One cycle at week 14: too early to judge."""
    v1 = add_version(session, made, 1, weeks(14), 2.0, 4)
    add_cycle(session, made, v1, 1, weeks(14))
    assess(session, made, weeks(14) - dt.timedelta(days=1), BASELINE)


@pytest.fixture
def clinic(db_session, make_user, settings):
    """A responder (T-100) and a patient just starting (T-101) at the clinic's center with its
    physician; at North Center with another physician, a course stopped after a thrombosis."""
    made = make_clinic(db_session, make_user, settings)
    made.patient.treating_physician_id = made.physician.id
    responder(db_session, made)
    newcomer = make_patient(db_session, made.nursing, made.center, settings, mrn="T-101")
    newcomer.treating_physician_id = made.physician.id
    starting(db_session, Clinic(made.center, made.physician, made.nurse, newcomer))
    north = make_center(db_session, "North Center")
    other_doctor = make_user("physician")
    patient = make_patient(db_session, made.nursing, north, settings, mrn="N-1")
    patient.treating_physician_id = other_doctor.id
    stopped(db_session, Clinic(north, other_doctor, made.nurse, patient))
    db_session.commit()
    clock.set_now(at(TODAY, 12))
    yield made
    clock.set_now(None)


def test_the_figures_worked_out_by_hand(client, clinic):
    login(client, clinic.physician.email)
    figures = csv_figures(client)
    value = {name: shown for name, (shown, _ref) in figures.items()}
    # Grams: both five-cycle courses give 160 g a cycle (Jan 5, Feb 2, Mar 2 and 30, Apr 27);
    # the newcomer's cycle on April 13; the day still planned is in June.
    assert value["grams_given|2026-01|Octagam 10%"] == "320.00"
    assert value["grams_given|2026-03|Octagam 10%"] == "640.00"
    assert value["grams_given|2026-04|Octagam 10%"] == "480.00"
    assert value["grams_planned|2026-06|Octagam 10%"] == "80.00"
    assert value["grams_given|2026-06|Octagam 10%"] == "0.00"
    assert [value[f"response_status|{s}|patients"] for s in ("responder", "stopped")] == ["1", "1"]
    assert value["response_status|in_review|patients"] == "1"
    assert value["response_status|non_responder|patients"] == "0"
    assert value["response_status|remission|patients"] == "0"
    # The response seen at week 6, after the cycles of weeks 0 and 4.
    assert value["time_to_response|cycles|mean"] == "2.00"
    assert figures["time_to_response|cycles|mean"][1] == "1.82"
    assert value["time_to_response|weeks|median"] == "6.0"
    # Improved: the responder of the two who can be judged (the newcomer is in review).
    assert figures["shares|improved|percent"] == ("50.0", "80.0")
    assert figures["shares|stopped_for_adverse_events|patients"] == ("1", "6")
    assert figures["shares|stopped_for_adverse_events|of"] == ("3", "42")
    assert figures["shares|stopped_for_adverse_events|percent"] == ("33.3", "14.3")
    assert figures["shares|tis_at_week_16|percent"] == ("50.0", "78.7")
    assert value["adverse_events|thrombosis|grade_3"] == "1"
    assert value["adverse_events|thrombosis|serious"] == "1"
    assert value["adverse_events|headache|grade_2"] == "1"
    # Prednisone: 20 mg for 14 days, then 10 mg for the 127 days to today (the 5 mg step is
    # only planned).
    assert value["steroids_current|over 5 to 10 mg|patients"] == "1"
    assert value["steroids_current|mg_per_day|median"] == "10.0"
    assert value["steroids_cumulative|mg|maximum"] == "1550"


def test_the_page_and_its_csv_say_the_same_figures(client, clinic):
    login(client, clinic.physician.email)
    page = client.get("/reports/clinic")
    assert page.status_code == 200
    shown = page_figures(page.get_data(as_text=True))
    figures = csv_figures(client)
    assert shown.figures == {name: value for name, (value, _ref) in figures.items()}
    assert {k: v for k, v in shown.references.items() if v} == {
        name: ref for name, (_value, ref) in figures.items() if ref
    }


def test_the_filters_narrow_the_patients_and_the_period(client, clinic):
    login(client, clinic.physician.email)
    mine = csv_figures(client, f"?center={clinic.center.id}")
    assert mine["response_status|all|patients"][0] == "2"
    assert mine["response_status|stopped|patients"][0] == "0"
    assert mine["grams_given|2026-01|Octagam 10%"][0] == "160.00"
    assert not any(name.startswith("adverse_events|") for name in mine)
    theirs = csv_figures(client, f"?physician={clinic.physician.id}")
    assert theirs["response_status|all|patients"][0] == "2"
    since = weeks(10)
    later = csv_figures(client, f"?since={since}&until={weeks(19)}")
    assert "grams_given|2026-01|Octagam 10%" not in later
    assert later["grams_given|2026-03|Octagam 10%"][0] == "320.00"  # March 30-31 only
    assert later["adverse_events|thrombosis|events"][0] == "1"
    assert "adverse_events|headache|events" not in later
    # 10 mg/day from week 10 to week 19, both days included.
    assert later["steroids_cumulative|mg|maximum"][0] == str(10 * (9 * 7 + 1))
    # As of week 19, the newcomer (from week 14) is still in review.
    assert later["response_status|in_review|patients"][0] == "1"
    html = client.get(f"/reports/clinic?since={since}").get_data(as_text=True)
    assert f'href="/reports/clinic.csv?since={since}"' in html


@pytest.mark.parametrize(("query", "field"), BAD_FILTERS)
def test_a_bad_filter_is_a_422_naming_the_field(client, clinic, query, field):
    login(client, clinic.physician.email)
    assert_refused(client, ("/reports/clinic", "/reports/clinic.csv"), query, field)


def test_a_nurse_may_not_read_the_clinic_reports(client, clinic):
    login(client, clinic.nurse.email)
    assert client.get("/reports/clinic").status_code == 403
    assert client.get("/reports/clinic.csv").status_code == 403


def test_the_report_pages_link_to_each_other(client, clinic):
    login(client, clinic.physician.email)
    for path in ("/reports/stewardship", "/reports/rules"):
        assert 'href="/reports/clinic"' in client.get(path).get_data(as_text=True), path
    assert 'href="/reports/stewardship"' in client.get("/reports/clinic").get_data(as_text=True)


def test_the_report_sends_the_same_queries_for_three_patients_or_six(
    db_session, clinic, make_user, settings, count_queries
):
    def queries() -> int:
        with count_queries() as sent:
            clinic_report.clinic_report(db_session, clinic_report.ClinicFilter(), settings, TODAY)
        return len(selects(sent))

    before = queries()
    for n in range(3):
        more = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn=f"M-{n}")
        made = Clinic(clinic.center, clinic.physician, clinic.nurse, more)
        (responder, stopped, starting)[n](db_session, made)
    db_session.commit()
    assert queries() == before == 7
