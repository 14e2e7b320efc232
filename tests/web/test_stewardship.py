"""The stewardship pages and the rule outcomes through the Flask test client, on a real
database: the clinic page and its CSV say the same figures, the filters narrow them, a bad
filter is a 422 naming the field, and the rule simulation page links to the outcomes."""

from __future__ import annotations

import csv
import datetime as dt
import io
from html.parser import HTMLParser

import pytest

from app import clock
from app.services import stewardship
from tests.conftest import login, make_settings
from tests.db.clinic_fixtures import Clinic, at, make_center, make_clinic, make_patient
from tests.db.test_stewardship import D0, add_cycle, add_version, suggestion

TODAY = D0 + dt.timedelta(weeks=16)


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, stewardship={"price_per_gram": 50.0, "currency": "EUR"})


class Cells(HTMLParser):
    """The text of each cell of the rows carrying a data-testid."""

    def __init__(self, testid: str) -> None:
        super().__init__()
        self.testid, self.rows, self._row, self._cell = testid, [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "tr" and dict(attrs).get("data-testid") == self.testid:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join(self._cell.split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def cells(html: str, testid: str) -> list[list[str]]:
    parser = Cells(testid)
    parser.feed(html)
    return parser.rows


def text_of(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    body = html[html.index(">", start) + 1 :]
    text = body[: body.index("</td>")]
    return " ".join(text.replace("<strong>", "").replace("</strong>", "").split())


@pytest.fixture
def clinic(db_session, make_user, settings):
    """Two patients: the clinic's (de-escalated to 1.5 g/kg at week 12, treated by the clinic's
    physician) and one at another center (every 4 weeks at 2 g/kg, another physician)."""
    made = make_clinic(db_session, make_user, settings)
    made.patient.treating_physician_id = made.physician.id
    v1 = add_version(db_session, made, 1, D0, 2.0, 4)
    for n in range(3):
        add_cycle(db_session, made, v1, n + 1, D0 + dt.timedelta(weeks=4 * n))
    v2 = add_version(db_session, made, 2, D0 + dt.timedelta(weeks=12), 1.5, 4)
    add_cycle(db_session, made, v2, 4, D0 + dt.timedelta(weeks=12))
    north = make_center(db_session, "North Center")
    other_doctor = make_user("physician")
    patient = make_patient(db_session, made.nursing, north, settings, mrn="N-1")
    patient.treating_physician_id = other_doctor.id
    other = Clinic(north, other_doctor, made.nurse, patient)
    w1 = add_version(db_session, other, 1, D0, 2.0, 4)
    for n in range(4):
        add_cycle(db_session, other, w1, n + 1, D0 + dt.timedelta(weeks=4 * n))
    db_session.commit()
    clock.set_now(at(TODAY, 12))
    yield made
    clock.set_now(None)


def test_the_clinic_page_and_its_csv_say_the_same_figures(client, clinic):
    login(client, clinic.physician.email)
    page = client.get("/reports/stewardship")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    download = client.get("/reports/stewardship.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert tuple(rows[0]) == stewardship.CSV_HEADER
    lines, total = rows[1:-1], dict(zip(rows[0], rows[-1], strict=True))
    assert cells(html, "ledger-line") == lines
    assert [line[0] for line in lines] == ["N-1", "T-100"]
    # By hand: T-100 gave 3 x 160 + 120 = 600 g and N-1 4 x 160 = 640 g to week 12 (their last
    # cycles on week 12, each with 4 weeks run since: 1 cycle "not given" yet, 120 g and 160 g).
    assert total["mrn"] == "TOTAL" and total["patient"] == "2 patients"
    assert total["grams_given"] == "1240.00"
    assert total["saved_de_escalation"] == "80.00"  # 0.5 g/kg x 80 kg on 2 expected cycles
    assert total["saved_not_given"] == "280.00"
    assert total["grams_saved"] == "360.00"
    assert total["cost_given"] == "62000.00" and total["currency"] == "EUR"
    assert text_of(html, "ledger-grams_given") == f"{total['grams_given']} g"
    assert text_of(html, "ledger-grams_saved").startswith(f"{total['grams_saved']} g")
    assert text_of(html, "ledger-saved_de_escalation") == "80.00 g"
    assert text_of(html, "ledger-cost_saved") == f"{total['cost_saved']} EUR"
    added = sum(float(total[f"saved_{cause}"]) for cause in stewardship.ledger_rules.CAUSES)
    assert added == pytest.approx(float(total["grams_saved"]))


def test_the_filters_narrow_the_patients_and_the_period(client, clinic):
    login(client, clinic.physician.email)
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/reports/stewardship.csv?physician={clinic.physician.id}").get_data(
                    as_text=True
                )
            )
        )
    )
    assert [row[0] for row in rows[1:]] == ["T-100", "TOTAL"]
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/reports/stewardship.csv?center={clinic.center.id}").get_data(
                    as_text=True
                )
            )
        )
    )
    assert [row[0] for row in rows[1:]] == ["T-100", "TOTAL"]
    since, until = D0 + dt.timedelta(weeks=4), D0 + dt.timedelta(weeks=8, days=1)
    page = client.get(f"/reports/stewardship?since={since}&until={until}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Cycles 2 and 3 of each patient: 4 x 160 g.
    assert text_of(html, "ledger-grams_given") == "640.00 g"
    assert f'href="/reports/stewardship.csv?since={since}&amp;until={until}"' in html


#: Bad filters of the clinic's reports, and the field each 422 names (the clinic reports'
#: tests take them too).
BAD_FILTERS = [
    ("center=abc", "center"),
    ("center=999999", "center"),
    ("physician=-1", "physician"),
    ("since=2026-13-01", "since"),
    ("until=yesterday", "until"),
    ("since=2026-05-01&until=2026-04-01", "until"),
]


def assert_refused(client, paths: tuple[str, ...], query: str, field: str) -> None:
    """Each page answers the bad filter with a 422 naming its field."""
    for path in paths:
        response = client.get(f"{path}?{query}")
        assert response.status_code == 422, (path, query)
        assert f"{field}:" in response.get_data(as_text=True)


@pytest.mark.parametrize(("query", "field"), BAD_FILTERS)
def test_a_bad_filter_is_a_422_naming_the_field(client, clinic, query, field):
    login(client, clinic.physician.email)
    assert_refused(client, ("/reports/stewardship", "/reports/stewardship.csv"), query, field)


def test_a_nurse_is_no_physician_filter(client, clinic):
    login(client, clinic.physician.email)
    response = client.get(f"/reports/stewardship?physician={clinic.nurse.id}")
    assert response.status_code == 422
    assert "physician: no physician" in response.get_data(as_text=True)


def test_the_patient_page_links_to_the_patients_ledger(client, clinic):
    login(client, clinic.nurse.email)
    patient_page = client.get(f"/patients/{clinic.patient.id}").get_data(as_text=True)
    assert f'href="/patients/{clinic.patient.id}/stewardship"' in patient_page
    page = client.get(f"/patients/{clinic.patient.id}/stewardship")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert text_of(html, "ledger-grams_given") == "600.00 g"
    assert text_of(html, "ledger-saved_de_escalation") == "80.00 g"
    assert text_of(html, "ledger-period") == f"{D0} to {TODAY}"
    bad = client.get(f"/patients/{clinic.patient.id}/stewardship?since=soon")
    assert bad.status_code == 422 and "since:" in bad.get_data(as_text=True)
    assert client.get("/reports/stewardship").status_code == 403  # the clinic's is not a nurse's


def test_rule_outcomes_page_and_csv_count_the_decisions_and_the_reasons(client, db_session, clinic):
    suggestion(db_session, clinic, "a", "dose_step", "approved")
    suggestion(db_session, clinic, "b", "dose_step", "rejected", "Too early")
    suggestion(db_session, clinic, "c", "dose_step", "rejected", "Too early")
    suggestion(db_session, clinic, "d", "dose_step", "expired", "Not decided within 14 days")
    suggestion(
        db_session, clinic, "e", "order-sign.rate", "rejected", "=Nurse judged", kind="order_check"
    )
    db_session.commit()
    login(client, clinic.physician.email)
    simulation = client.get("/admin/rules").get_data(as_text=True)
    assert 'href="/reports/rules"' in simulation
    page = client.get("/reports/rules")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = cells(html, "rule-outcome")
    assert [row[:2] for row in rows] == [["dose_step", "1"], ["order-sign.rate", "1"]]
    assert rows[0][3:10] == ["1", "0", "2", "1", "0", "0", "0"]
    assert rows[0][-1] == "Too early (2)"
    download = client.get("/reports/rules.csv")
    table = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert tuple(table[0]) == stewardship.RULES_CSV_HEADER
    step = dict(zip(table[0], table[1], strict=True))
    assert step["approved"] == "1" and step["rejected"] == "2"
    assert step["expired_undecided"] == "1" and step["approved_percent"] == "33.3"
    assert step["rejection_reasons"] == "Too early (2)"
    ehr = dict(zip(table[0], table[2], strict=True))
    assert ehr["kinds"] == "order_check" and ehr["rejected"] == "1"
    assert ehr["rejection_reasons"] == "'=Nurse judged (1)"  # defused for spreadsheets
    assert [row[:2] for row in table[1:]] == [row[:2] for row in rows]
