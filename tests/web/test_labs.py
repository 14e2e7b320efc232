"""Lab results over the API and on the patient page: recorded, listed as a flagged trend,
refused with the field and the limit named (nothing written), and only by the care team."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from app.clock import clinic_today
from app.models import AuditEvent, LabResult
from app.services import labs as lab_service
from app.services.labs import LabInput
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import Clinic, make_clinic
from tests.web.test_care_pages import logged_in
from tests.web.test_form_errors import seen


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    return make_clinic(db_session, make_user, settings)


def today() -> dt.date:
    return clinic_today("America/New_York")


def counts(session) -> tuple[int, int]:
    labs = session.scalar(sa.select(sa.func.count()).select_from(LabResult))
    audits = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    return labs, audits


def post(client, headers, patient_id, **values):
    body = {"test": "creatinine", "value": 70, "taken_on": today().isoformat()} | values
    return client.post(f"/api/v1/patients/{patient_id}/labs", headers=headers, json=body)


def test_a_nurse_records_results_and_anyone_on_staff_reads_the_trend(
    client, bearer, clinic, make_user, db_session
):
    nurse = bearer(clinic.nurse)
    created = post(client, nurse, clinic.patient.id, value=130)
    assert created.status_code == 201, created.json
    assert created.json | {"id": 0} == {
        "id": 0,
        "patient_id": clinic.patient.id,
        "test": "creatinine",
        "value": 130,
        "unit": "µmol/L",
        "ref_low": 45,
        "ref_high": 84,
        "taken_on": today().isoformat(),
        "flag": "high",
    }
    yesterday = (today() - dt.timedelta(days=1)).isoformat()
    egfr = post(
        client,
        bearer(clinic.physician),
        clinic.patient.id,
        test="egfr",
        value=95,
        unit="mL/min/1.73 m²",
    )
    assert egfr.status_code == 201 and egfr.json["flag"] is None
    post(client, nurse, clinic.patient.id, value=60, taken_on=yesterday, ref_low=59, ref_high=104)
    listed = client.get(
        f"/api/v1/patients/{clinic.patient.id}/labs", headers=bearer(make_user("admin"))
    )
    assert listed.status_code == 200
    tests = listed.json["tests"]
    assert [(t["test"], t["label"], t["unit"]) for t in tests] == [
        ("creatinine", "Creatinine", "µmol/L"),
        ("egfr", "eGFR", "mL/min/1.73 m²"),
    ]
    assert [(v["taken_on"], v["value"], v["flag"]) for v in tests[0]["values"]] == [
        (yesterday, 60, None),
        (today().isoformat(), 130, "high"),
    ]
    assert tests[0]["values"][0]["ref_low"] == 59  # the lab's own range, kept
    assert (
        db_session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "lab.record")
        )
        == 3
    )


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"test": "potassium"}, "test", "one of creatinine, egfr, hemoglobin, ck"),
        ({"unit": "mg/dL"}, "unit", "recorded in µmol/L"),
        ({"value": 1.2}, "value", "outside the plausible 5-3000 µmol/L"),
        ({"test": "ck", "value": 200_000}, "value", "1-100000 U/L"),
        ({"value": -1}, "value", "at least 0"),
        ({"value": "high"}, "value", "give a number"),
        ({"ref_low": 100, "ref_high": 50}, "ref_low", "not be above ref_high"),
        ({"taken_on": "2999-01-01"}, "taken_on", "not in the future"),
        ({"taken_on": "1969-12-31"}, "taken_on", "birth date"),
        ({"taken_on": None}, "taken_on", ""),
        ({"flag": "high"}, "flag", "not a field"),
    ],
)
def test_bad_results_are_422_naming_the_field_and_the_limit_and_write_nothing(
    client, bearer, clinic, db_session, values, field, words
):
    headers = bearer(clinic.nurse)
    before = counts(db_session)
    response = post(client, headers, clinic.patient.id, **values)
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["field"] == field and words in error["message"], error
    assert counts(db_session) == before


def test_only_the_care_team_records_and_an_unknown_patient_is_404(
    client, bearer, clinic, make_user, db_session
):
    admin, nurse = bearer(make_user("admin")), bearer(clinic.nurse)
    before = counts(db_session)
    assert post(client, admin, clinic.patient.id).status_code == 403
    assert post(client, nurse, 999_999).status_code == 404
    assert client.get("/api/v1/patients/999999/labs", headers=admin).status_code == 404
    assert post(client, {}, clinic.patient.id).status_code == 401
    assert counts(db_session) == before


# --- the patient page ------------------------------------------------------------------------


class Card(HTMLParser):
    """What the labs card shows: the rows of each test's table as text, and the charts' titles."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.titles: list[str] = []
        self.hidden: list[str] = []
        self._test: str | None = None
        self._row: list[str] | None = None
        self._title: list[str] | None = None
        self._hidden: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attr = dict(attrs)
        if tag == "div" and attr.get("data-testid") == "lab-trend":
            self._test = attr["data-test"]
            self.rows[self._test] = []
        elif tag == "tr" and attr.get("data-testid") == "lab-row":
            self._row = []
        elif tag == "title" and self._test:
            self._title = []
        elif tag == "span" and attr.get("class") == "visually-hidden" and self._row is not None:
            self._hidden = []

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None:
            self._row.append(" ")
        elif tag == "tr" and self._row is not None and self._test:
            self.rows[self._test].append(" ".join("".join(self._row).split()))
            self._row = None
        elif tag == "title" and self._title is not None:
            self.titles.append("".join(self._title))
            self._title = None
        elif tag == "span" and self._hidden is not None:
            self.hidden.append("".join(self._hidden).strip())
            self._hidden = None

    def handle_data(self, data):
        for part in (self._row, self._title, self._hidden):
            if part is not None:
                part.append(data)


def card(response) -> Card:
    parser = Card()
    parser.feed(response.get_data(as_text=True))
    return parser


def form(client, **values):
    return {
        "csrf_token": csrf_of(client),
        "test": "creatinine",
        "value": "70",
        "taken_on": today().isoformat(),
    } | values


def test_a_nurse_records_on_the_page_and_sees_the_trend_marked_in_words(app, clinic, db_session):
    nurse = logged_in(app, clinic.nurse)
    page = f"/patients/{clinic.patient.id}"
    empty = nurse.get(page)
    assert 'data-testid="lab-form"' in empty.get_data(as_text=True)
    assert "No lab results yet." in empty.get_data(as_text=True)
    earlier = (today() - dt.timedelta(days=30)).isoformat()
    first = nurse.post(f"{page}/labs", data=form(nurse, value="80", taken_on=earlier))
    assert first.status_code == 302 and first.headers["Location"].endswith(f"{page}#labs")
    second = nurse.post(f"{page}/labs", data=form(nurse, value="130"))
    assert second.status_code == 302
    low = nurse.post(
        f"{page}/labs", data=form(nurse, test="hemoglobin", value="98", ref_low="115", ref_high="")
    )
    assert low.status_code == 302
    shown = nurse.get(page)
    html = shown.get_data(as_text=True)
    assert "Creatinine 130 µmol/L recorded (above range)." in html
    seen_card = card(shown)
    # Newest first; the flag in text ("H"), and in words for a screen reader.
    assert seen_card.rows["creatinine"] == [
        f"{today().isoformat()} 130 H above range µmol/L 45-84",
        f"{earlier} 80 µmol/L 45-84",
    ]
    assert seen_card.rows["hemoglobin"] == [f"{today().isoformat()} 98 L below range g/L ≥ 115"]
    assert {"above range", "below range"} <= set(seen_card.hidden)
    # A chart per test, drawn on the server, that says what it shows.
    assert (
        html.count('data-testid="lab-sparkline"') == 2
        and "<script" not in html.split('id="labs"')[1].split("</section>")[0]
    )
    creatinine_title = seen_card.titles[0]
    assert creatinine_title.startswith(f"Creatinine (µmol/L), 2 results from {earlier} to")
    assert "latest 130 µmol/L" in creatinine_title and "above range" in creatinine_title
    assert "reference range 45-84" in creatinine_title
    assert re.search(r'<title id="lab-hemoglobin-title">[^<]*1 result on', html)
    assert counts(db_session)[0] == 3


def test_a_refused_result_shows_the_problem_by_its_field_keeps_what_was_typed_writes_nothing(
    app, clinic, db_session
):
    nurse = logged_in(app, clinic.nurse)
    before = counts(db_session)
    refused = nurse.post(
        f"/patients/{clinic.patient.id}/labs", data=form(nurse, value="1.1", ref_low="45")
    )
    assert refused.status_code == 422
    page = seen(refused)
    assert page.errors == {
        "value": "1.1 µmol/L is outside the plausible 5-3000 µmol/L for Creatinine "
        "(a typo, or another unit?)"
    }
    assert page.values["value"] == "1.1" and page.values["ref_low"] == "45"
    assert ("#lab-value", f"{page.labels['lab-value']}: {page.errors['value']}") in page.listed
    assert "<details open>" in refused.get_data(as_text=True)
    assert counts(db_session) == before
    future = nurse.post(
        f"/patients/{clinic.patient.id}/labs",
        data=form(nurse, taken_on=(today() + dt.timedelta(days=1)).isoformat()),
    )
    assert future.status_code == 422 and "not in the future" in seen(future).errors["taken_on"]
    assert counts(db_session) == before


def test_the_form_is_for_the_care_team_only(app, clinic, make_user, db_session):
    admin = logged_in(app, make_user("admin"))
    page = admin.get(f"/patients/{clinic.patient.id}")
    assert page.status_code == 200
    assert 'id="labs"' in page.get_data(as_text=True)
    assert 'data-testid="lab-form"' not in page.get_data(as_text=True)
    before = counts(db_session)
    response = admin.post(f"/patients/{clinic.patient.id}/labs", data=form(admin))
    assert response.status_code == 403
    assert counts(db_session) == before


def test_the_page_runs_the_same_queries_for_one_or_many_results(
    app, clinic, db_session, settings, count_queries
):
    client = logged_in(app, clinic.nurse)
    page = f"/patients/{clinic.patient.id}"

    def add(count: int) -> None:
        for n in range(count):
            lab_service.record_lab(
                db_session,
                clinic.nursing,
                clinic.patient.id,
                LabInput(test=("creatinine", "ck", "egfr")[n % 3], value=50 + n, taken_on=today()),
                today(),
                settings.labs,
            )

    def queries() -> int:
        with count_queries() as statements:
            assert client.get(page).status_code == 200
        return len(statements)

    add(1)
    queries()  # warm-up: the login session is touched at most once a minute
    few = queries()
    add(30)
    assert queries() == few
