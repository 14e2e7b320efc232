"""A lot recall through the page, the API and the CSV: the vials recorded at the chair (by
app.services.visits) answer "which patients received lot X, when", on a real database."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import html
import io

import pytest
import sqlalchemy as sa

from app.auth import POLICY_ATTRIBUTE
from app.csvout import safe_cell
from app.domain.visit import VialUse
from app.models import Infusion, Role
from app.policy import Action, can
from app.services import patients as patient_service
from app.services import recalls, visits
from app.services import regimens as regimen_service
from tests.conftest import login
from tests.db.clinic_fixtures import Clinic, at, make_center, make_patient, regimen_input

MONDAY = dt.date(2026, 10, 5)
#: Long after the first infusions, so no recorded time is in the future.
LATER = at(MONDAY + dt.timedelta(days=3))

CSV_HEADER = [
    "date",
    "started_at_utc",
    "ended_at_utc",
    "patient_id",
    "mrn",
    "family_name",
    "given_name",
    "birth_date",
    "infusion_id",
    "status",
    "center",
    "product",
    "lot_number",
    "expires_on",
    "vials",
    "vial_count",
    "grams",
]


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def logged_in(app, user):
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    return client


def first_infusion(db_session, patient_id: int) -> Infusion:
    return db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.patient_id == patient_id)
        .order_by(Infusion.planned_date, Infusion.day_number)
    ).first()


def vials_over(infusion: Infusion, *lots: str) -> tuple[VialUse, ...]:
    """The planned vials (adding up to the planned grams), sizes dealt out over the lots."""
    return tuple(
        VialUse(
            infusion.regimen.product,
            lots[index % len(lots)],
            MONDAY + dt.timedelta(days=120),
            size,
            int(count),
        )
        for index, (size, count) in enumerate(infusion.planned_vials)
    )


def record_visit(db_session, clinic: Clinic, infusion: Infusion, settings, *lots: str) -> None:
    """Check in, check, start and complete the infusion at its booked time with these lots."""
    nurse = clinic.nursing
    starts = infusion.starts_at
    assert starts is not None
    visits.check_in(
        db_session, nurse, infusion.id, starts - dt.timedelta(minutes=15), settings, now=LATER
    )
    visits.record_check(
        db_session,
        nurse,
        infusion.id,
        100.0,
        visits.Vitals(systolic_mmhg=120, diastolic_mmhg=80, pulse_bpm=70),
        starts - dt.timedelta(minutes=10),
        settings,
        now=LATER,
    )
    visits.start(db_session, nurse, infusion.id, starts, settings, now=LATER)
    visits.complete(
        db_session,
        nurse,
        infusion.id,
        visits.Completion(
            ended_at=starts + dt.timedelta(minutes=infusion.planned_minutes),
            vials=vials_over(infusion, *lots),
        ),
        settings,
        now=LATER,
    )


@dataclasses.dataclass
class Recall:
    clinic: Clinic
    #: R-1's infusion used lots A123 and B456; R-2's only A123; R-3's only C789.
    infusions: dict[str, Infusion]


@pytest.fixture
def recall(db_session, make_user, settings) -> Recall:
    center = make_center(db_session, "Recall Center")
    clinic = Clinic(
        center=center,
        physician=make_user("physician"),
        nurse=make_user("nurse"),
        patient=None,  # type: ignore[arg-type]
    )
    infusions = {}
    # Registered out of order: the answer is by date, then patient (family, given name).
    for mrn, lots in (("R-2", ("A123",)), ("R-1", ("A123", "B456")), ("R-3", ("C789",))):
        patient = make_patient(db_session, clinic.nursing, center, settings, mrn=mrn)
        regimen_service.set_regimen(
            db_session,
            clinic.doctor,
            patient.id,
            regimen_input(starts_on=MONDAY),
            settings,
            now=at(MONDAY - dt.timedelta(days=7)),
        )
        infusion = first_infusion(db_session, patient.id)
        record_visit(db_session, clinic, infusion, settings, *lots)
        infusions[mrn] = infusion
    clinic.patient = patient
    return Recall(clinic=clinic, infusions=infusions)


# --- the service ------------------------------------------------------------------------------


def test_the_service_answers_in_one_query_by_date_then_patient(db_session, recall, count_queries):
    db_session.expire_all()
    with count_queries() as statements:
        found = recalls.recipients(db_session, "  a1 23 ")
    # (the session opening its savepoint aside): the vials, then the records naming the lot
    # in their text only; two, however many recipients.
    assert [s.split()[0] for s in statements if not s.startswith("SAVEPOINT")] == [
        "SELECT",
        "SELECT",
    ]
    assert [r.mrn for r in found] == ["R-1", "R-2"]
    one, two = (recall.infusions[m] for m in ("R-1", "R-2"))
    assert [r.infusion_id for r in found] == [one.id, two.id]
    assert {r.lot_number for r in found} == {"A123"}
    assert all(r.planned_date == MONDAY and r.status == "given" for r in found)
    # R-2's infusion was all lot A123; R-1's shared its vials with B456.
    assert found[1].grams == pytest.approx(two.planned_grams)
    assert found[0].grams < one.planned_grams
    assert found[0].started_at == one.starts_at
    assert found[0].center_name == "Recall Center"
    assert found[0].center_timezone == "America/New_York"


def test_a_lot_no_one_received_or_no_vial_could_hold_is_an_empty_list(db_session, recall):
    assert recalls.recipients(db_session, "ZZ999") == []
    assert recalls.recipients(db_session, "   ") == []
    assert recalls.recipients(db_session, "A" * 41) == []
    assert recalls.recipients(db_session, "A1\x0023") == []


# --- the page ---------------------------------------------------------------------------------


def test_the_page_finds_the_patients_of_a_lot_typed_in_lower_case_with_spaces(app, recall):
    client = logged_in(app, recall.clinic.nurse)
    home = text_of(client.get("/"))
    assert 'href="/recalls"' in home  # the nav link
    empty = client.get("/recalls")
    assert empty.status_code == 200
    assert 'id="recall-lot" name="lot"' in text_of(empty)
    assert 'data-testid="recall-row"' not in text_of(empty)

    page = client.get("/recalls", query_string={"lot": " a1 23 "})
    assert page.status_code == 200
    body = text_of(page)
    assert 'value=" a1 23 "' in body  # what was typed stays in the box
    assert "2 infusions with lot A123, 2 patients" in body
    assert body.count('data-testid="recall-row"') == 2
    one, two = recall.infusions["R-1"], recall.infusions["R-2"]
    assert body.index("MRN R-1") < body.index("MRN R-2")
    for infusion in (one, two):
        assert f'href="/patients/{infusion.patient_id}"' in body
        assert f'href="/infusions/{infusion.id}"' in body
    assert "born 1970-01-01" in body and "Recall Center" in body and "Octagam 10%" in body
    assert MONDAY.isoformat() in body and "2027-02-02" in body  # date and expiry
    assert "09:00–" in body  # the center's wall clock
    assert "MRN R-3" not in body
    assert 'href="/recalls.csv?lot=A123"' in body and "Download CSV" in body


def test_two_lots_of_one_infusion_each_find_it(app, recall, bearer):
    headers = bearer(recall.clinic.nurse)
    client = app.test_client()
    one = recall.infusions["R-1"]
    grams = {}
    for lot in ("a123", "B 456"):
        answer = client.get(f"/api/v1/lots/{lot}/recipients", headers=headers)
        assert answer.status_code == 200
        rows = [r for r in answer.json["recipients"] if r["infusion_id"] == one.id]
        assert len(rows) == 1, lot
        grams[answer.json["lot"]] = rows[0]["grams"]
        assert rows[0]["vial_count"] == sum(v["count"] for v in rows[0]["vials"])
    assert set(grams) == {"A123", "B456"}
    assert sum(grams.values()) == pytest.approx(one.planned_grams)
    page = text_of(logged_in(app, recall.clinic.physician).get("/recalls?lot=b456"))
    assert "1 infusion with lot B456, 1 patient<" in page and f'href="/infusions/{one.id}"' in page


def test_the_api_answers_the_normalised_lot_and_its_recipients(app, recall, bearer):
    answer = app.test_client().get(
        "/api/v1/lots/ a1%2023/recipients", headers=bearer(recall.clinic.physician)
    )
    assert answer.status_code == 200
    assert answer.json["lot"] == "A123"
    first = answer.json["recipients"][0]
    one = recall.infusions["R-1"]
    assert first["mrn"] == "R-1" and first["patient_id"] == one.patient_id
    assert first["birth_date"] == "1970-01-01" and first["planned_date"] == MONDAY.isoformat()
    assert first["expires_on"] == "2027-02-02" and first["status"] == "given"
    assert dt.datetime.fromisoformat(first["started_at"]) == one.starts_at
    assert first["product"] == "Octagam 10%" and first["center_name"] == "Recall Center"


def test_an_unknown_lot_is_200_with_an_empty_list_and_the_page_says_so(app, recall, bearer):
    headers = bearer(recall.clinic.nurse)
    client = app.test_client()
    for lot in ("zz999", "A" * 60, "%00"):
        answer = client.get(f"/api/v1/lots/{lot}/recipients", headers=headers)
        assert answer.status_code == 200, lot
        assert answer.json["recipients"] == []
    assert client.get("/api/v1/lots/zz999/recipients", headers=headers).json["lot"] == "ZZ999"
    exported = client.get("/api/v1/lots/zz999/recipients.csv", headers=headers)
    assert exported.status_code == 200
    assert list(csv.reader(io.StringIO(exported.get_data(as_text=True)))) == [CSV_HEADER]

    page = logged_in(app, recall.clinic.nurse).get("/recalls?lot=zz 999")
    assert page.status_code == 200
    body = text_of(page)
    assert "No patient received lot ZZ999." in body
    assert 'data-testid="recall-row"' not in body and "Download CSV" not in body


# --- the CSV ----------------------------------------------------------------------------------


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_csv_from_the_api_and_the_page_is_the_same_download(app, recall, bearer):
    api = app.test_client().get(
        "/api/v1/lots/a123/recipients.csv", headers=bearer(recall.clinic.nurse)
    )
    page = logged_in(app, recall.clinic.nurse).get("/recalls.csv?lot=a 123")
    one, two = recall.infusions["R-1"], recall.infusions["R-2"]
    for response in (api, page):
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert (
            response.headers["Content-Disposition"]
            == 'attachment; filename="lot-A123-recipients.csv"'
        )
        rows = _rows(response)
        assert rows[0] == CSV_HEADER
        assert [row[4] for row in rows[1:]] == ["R-1", "R-2"]
        record = dict(zip(CSV_HEADER, rows[2], strict=True))
        assert record["date"] == MONDAY.isoformat()
        assert dt.datetime.fromisoformat(record["started_at_utc"]) == two.starts_at
        assert record["started_at_utc"].endswith("+00:00")
        assert record["birth_date"] == "1970-01-01" and record["expires_on"] == "2027-02-02"
        assert record["infusion_id"] == str(two.id) and record["lot_number"] == "A123"
        assert record["center"] == "Recall Center" and record["status"] == "given"
        assert float(record["grams"]) == pytest.approx(two.planned_grams)
        assert record["vials"] == "30 g × 2 + 20 g + 2 g" and record["vial_count"] == "4"
        assert record["family_name"] == "Example"
        assert rows[1][8] == str(one.id)
    assert api.get_data() == page.get_data()


def test_the_csv_keeps_a_spreadsheet_from_running_a_name_as_a_formula(
    app, db_session, recall, settings, bearer
):
    clinic = recall.clinic
    patient = patient_service.create_patient(
        db_session,
        clinic.nursing,
        patient_service.PatientInput(
            mrn="=1+2",
            family_name='=HYPERLINK("http://evil.test","x")',
            given_name="@SUM(A1)",
            sex="female",
            birth_date=dt.date(1980, 5, 6),
            home_center_id=clinic.center.id,
            height_cm=165,
            weight_kg=100,
        ),
        settings,
        dt.date(2026, 1, 1),
    )
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        patient.id,
        regimen_input(starts_on=MONDAY),
        settings,
        now=at(MONDAY - dt.timedelta(days=7)),
    )
    record_visit(db_session, clinic, first_infusion(db_session, patient.id), settings, "F1")
    exported = app.test_client().get("/api/v1/lots/F1/recipients.csv", headers=bearer(clinic.nurse))
    record = dict(zip(CSV_HEADER, _rows(exported)[1], strict=True))
    assert record["mrn"] == "'=1+2"
    assert record["family_name"] == '\'=HYPERLINK("http://evil.test","x")'
    assert record["given_name"] == "'@SUM(A1)"
    # The page shows the names as they are.
    page = text_of(logged_in(app, clinic.nurse).get("/recalls?lot=f1"))
    assert "=HYPERLINK" in page and "'=HYPERLINK" not in page


def test_safe_cell_defuses_formulas_and_leaves_numbers_and_text():
    for formula in ("=1+2", "+A1", "-A1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(formula) == "'" + formula
    for kept in ("A123", "-2.5", "+3", "1e-3", "", "Octagam 10%", 12, -3.5, None):
        assert safe_cell(kept) == kept


# --- queries and permissions ------------------------------------------------------------------


def test_the_page_runs_the_same_queries_for_one_or_two_recipients(app, recall, count_queries):
    client = logged_in(app, recall.clinic.nurse)

    def page_queries(lot: str) -> int:
        with count_queries() as statements:
            response = client.get("/recalls", query_string={"lot": lot})
        assert response.status_code == 200
        return len(statements)

    page_queries("B456")  # warm-up: the login session is touched at most once a minute
    one = page_queries("B456")
    two = page_queries("A123")
    assert one == two > 0


def test_every_role_that_sees_patients_may_recall_and_no_one_anonymous(
    app, recall, make_user, bearer
):
    for endpoint in (
        "recalls.index",
        "recalls.export",
        "api.lot_recipients",
        "api.lot_recipients_csv",
    ):
        assert getattr(app.view_functions[endpoint], POLICY_ATTRIBUTE) == Action.VIEW_PATIENTS
    for role in Role:
        user = make_user(role.value)
        expected = 200 if can(role.value, Action.VIEW_PATIENTS) else 403
        web = logged_in(app, user)
        assert web.get("/recalls?lot=a123").status_code == expected, role
        assert web.get("/recalls.csv?lot=a123").status_code == expected, role
        headers = bearer(user)
        for path in ("/api/v1/lots/a123/recipients", "/api/v1/lots/a123/recipients.csv"):
            assert app.test_client().get(path, headers=headers).status_code == expected, role
    anonymous = app.test_client()
    for path in ("/api/v1/lots/a123/recipients", "/api/v1/lots/a123/recipients.csv"):
        assert anonymous.get(path).status_code == 401
    for path in ("/recalls?lot=a123", "/recalls.csv?lot=a123"):
        refused = anonymous.get(path)
        assert refused.status_code == 302
        assert refused.headers["Location"].startswith("/login?next=")
    # A session cookie is not a bearer token: the API stays closed to the page's login.
    assert (
        logged_in(app, recall.clinic.nurse).get("/api/v1/lots/a123/recipients").status_code == 401
    )


def test_a_lot_named_only_on_the_short_record_form_is_found_too(db_session, settings, make_user):
    # The short "given" form keeps lots as text ("A1, b 2"), with no vial rows: a recall that
    # searched vials only missed those patients (the demo's DEMO-LOT among them).
    from tests.db.clinic_fixtures import give, make_clinic

    clinic = make_clinic(db_session, make_user, settings)
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=dt.date(2026, 10, 5)),
        settings,
        now=at(dt.date(2026, 9, 28)),
    )
    first = db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.patient_id == clinic.patient.id)
        .order_by(Infusion.planned_date)
    ).first()
    from app import clock

    with clock.frozen_at(first.ends_at + dt.timedelta(hours=1)):
        give(db_session, clinic.nursing, first, settings, lot="OLD-1, b 22; C33 D44")
    [found] = recalls.recipients(db_session, "B22")
    assert (found.infusion_id, found.expires_on, found.grams) == (first.id, None, None)
    assert found.vials_text == "lot named in the record only (no vial details)"
    assert recalls.recipients(db_session, "B2") == []  # a part of a lot names no lot
    assert [r.infusion_id for r in recalls.recipients(db_session, "old-1")] == [first.id]
    # Lots written with only a space between them are each found too.
    assert [r.infusion_id for r in recalls.recipients(db_session, "c33")] == [first.id]
