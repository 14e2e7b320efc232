"""The taper pages through the Flask test client: real login, real CSRF tokens, real forms.

Forms are read back from the rendered HTML and submitted with the fields the template
renders. Plans that need a due step are set through the service with a start date in the
past; every date is computed from the center's wall clock (America/New_York).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, TaperPlan, TaperStep
from app.services import tapers as taper_service
from tests.db.clinic_fixtures import Clinic, make_center, make_patient
from tests.web.test_care_pages import _FormReader, form_fields, has_form, logged_in, text_of

TIMEZONE = "America/New_York"
PRINT_DATE = "%a %d %b %Y"


def today() -> dt.date:
    return clock.clinic_today(TIMEZONE)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def taper_rows(db_session) -> tuple[int, int, int]:
    return tuple(
        db_session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (TaperPlan, TaperStep, AuditEvent)
    )


def form_by_action(page: str, prefix: str) -> tuple[str, dict]:
    """Return the action and fields of the first form whose action starts with prefix."""
    reader = _FormReader()
    reader.feed(page)
    for form in reader.forms:
        if form["attrs"].get("action", "").startswith(prefix):
            return form["attrs"]["action"], dict(form["fields"])
    raise AssertionError(f"no form posting to {prefix} on the page")


class _Rows(HTMLParser):
    """Collect the cell texts of each body row of the table with a data-testid."""

    def __init__(self, testid: str) -> None:
        super().__init__(convert_charrefs=True)
        self.testid = testid
        self.rows: list[list[str]] = []
        self._inside = self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("data-testid") == self.testid:
            self._inside = True
        elif self._inside and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._inside:
            self._inside = self._in_body = False


def table_rows(page: str, testid: str) -> list[list[str]]:
    reader = _Rows(testid)
    reader.feed(page)
    return reader.rows


def shown_text(page: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</p>', page, re.S)
    assert match, f"no {testid} on the page"
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings, mrn="PG-1")
    holder.patient.treating_physician_id = physician.id
    db_session.commit()
    return holder


def plan_in_past(db_session, settings, clinic: Clinic, patient=None, days_ago: int = 28):
    """A banded 60 mg prednisone plan set `days_ago` days ago (28: step 1 is due today)."""
    start = today() - days(days_ago)
    plan = taper_service.create_plan(
        db_session,
        clinic.doctor,
        (patient or clinic.patient).id,
        taper_service.PlanInput(
            drug="prednisone",
            start_mg=60,
            template="banded",
            starts_on=start,
            reason="Active DM, starting the taper",
        ),
        settings,
        today=start,
    )
    db_session.commit()
    return plan


# --- the approvals page ----------------------------------------------------------------------


def test_physician_approves_the_due_step_from_the_approvals_page(app, clinic, db_session, settings):
    plan = plan_in_past(db_session, settings, clinic)
    step1 = plan.steps[1]
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    before = text_of(client.get(patient_url))
    assert shown_text(before, "current-dose") == (
        "Today: 60 mg prednisone a day = 1 × 50 mg + 1 × 10 mg"
    )
    assert f"Next step: 50 mg/day, due {today().isoformat()}." in before

    home = text_of(client.get("/"))
    assert 'href="/approvals"' in home and ">Approvals</a>" in home
    page = client.get("/approvals")
    assert page.status_code == 200
    body = text_of(page)
    assert body.count('data-testid="due-step"') == 1
    assert "Example, PG-1" in body
    assert "50 mg prednisone" in body and "(1 × 50 mg)" in body
    assert f"due since {today().isoformat()}" in body

    action, fields = form_by_action(body, f"/taper-steps/{step1.id}/approve")
    assert fields["version"] == str(step1.version) and fields["csrf_token"]
    response = client.post(action, data=fields)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/approvals")
    queue = text_of(client.get(response.headers["Location"]))
    assert "Approved: 50 mg/day from today." in queue
    assert 'data-testid="queue-empty"' in queue and 'data-testid="due-step"' not in queue

    after = text_of(client.get(patient_url))
    assert shown_text(after, "current-dose") == "Today: 50 mg prednisone a day = 1 × 50 mg"
    assert f"Next step: 40 mg/day, due {(today() + days(14)).isoformat()}." in after
    assert (
        db_session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "taper_step.approve", AuditEvent.entity_id == str(step1.id))
        )
        == 1
    )


def test_approvals_page_shows_my_patients_unless_all_are_asked_for(
    app, clinic, db_session, settings, make_user
):
    other_doctor = make_user("physician")
    other = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn="PG-2")
    other.treating_physician_id = other_doctor.id
    db_session.commit()
    plan_in_past(db_session, settings, clinic)
    plan_in_past(db_session, settings, clinic, patient=other)
    client = logged_in(app, clinic.physician)
    mine = text_of(client.get("/approvals"))
    assert "Example, PG-1" in mine and "Example, PG-2" not in mine
    everyone = text_of(client.get("/approvals?all=1"))
    assert everyone.count('data-testid="due-step"') == 2
    assert "Example, PG-1" in everyone and "Example, PG-2" in everyone


def test_holding_from_the_approvals_page_needs_a_reason_and_empties_the_queue(
    app, clinic, db_session, settings
):
    plan = plan_in_past(db_session, settings, clinic)
    step1 = plan.steps[1]
    client = logged_in(app, clinic.physician)
    action, fields = form_by_action(
        text_of(client.get("/approvals")), f"/taper-steps/{step1.id}/hold"
    )
    blank = client.post(action, data=fields | {"reason": "  "}, follow_redirects=True)
    assert "reason: required" in text_of(blank)
    assert text_of(blank).count('data-testid="due-step"') == 1

    held = client.post(action, data=fields | {"reason": "Rash flaring"}, follow_redirects=True)
    assert "Step held." in text_of(held)
    assert 'data-testid="queue-empty"' in text_of(held)
    patient_page = text_of(client.get(f"/patients/{clinic.patient.id}"))
    assert "held" in shown_text(patient_page, "next-step")
    assert "Today: 60 mg prednisone" in shown_text(patient_page, "current-dose")


def test_the_final_stop_on_the_approvals_page_asks_for_a_morning_cortisol(
    app, clinic, db_session, settings
):
    start = today() - days(28)
    plan = taper_service.create_plan(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        taper_service.PlanInput(
            drug="prednisone",
            start_mg=5,
            template="custom",
            starts_on=start,
            params={"steps": [{"mg_per_day": 5, "min_days": 28}, {"mg_per_day": 0, "min_days": 1}]},
            reason="Last step of a long taper",
        ),
        settings,
        today=start,
    )
    db_session.commit()
    stop = plan.steps[-1]
    client = logged_in(app, clinic.physician)
    body = text_of(client.get("/approvals"))
    assert "Final stop: morning cortisol or an override reason." in body
    action, fields = form_by_action(body, f"/taper-steps/{stop.id}/approve")
    assert {"cortisol_nmol_l", "override_reason"} <= set(fields)

    grey = client.post(action, data=fields | {"cortisol_nmol_l": "200"}, follow_redirects=True)
    assert "200 nmol/L is between 150 and 300: continue the current dose and recheck" in (
        text_of(grey)
    )
    assert text_of(grey).count('data-testid="due-step"') == 1

    ok = client.post(action, data=fields | {"cortisol_nmol_l": "350"}, follow_redirects=True)
    assert "Approved: 0 mg/day from today." in text_of(ok)
    patient_page = text_of(client.get(f"/patients/{clinic.patient.id}"))
    assert shown_text(patient_page, "current-dose") == "Today: 0 mg prednisone a day"


def test_raising_a_dose_from_the_approvals_page_is_refused_with_the_reason(
    app, clinic, db_session, settings
):
    plan = plan_in_past(db_session, settings, clinic)
    step1 = plan.steps[1]
    client = logged_in(app, clinic.physician)
    action, fields = form_by_action(
        text_of(client.get("/approvals")), f"/taper-steps/{step1.id}/dose"
    )
    refused = client.post(
        action, data=fields | {"mg_per_day": "70", "reason": "Flare"}, follow_redirects=True
    )
    assert "a taper never increases the dose" in text_of(refused)
    assert "Next: <b>50 mg prednisone</b>" in text_of(refused)

    # Clinic setup: a dose change is previewed (the steps before and after) before it is made.
    preview = text_of(client.post(action, data=fields | {"mg_per_day": "45", "reason": "Slower"}))
    assert 'data-testid="dose-preview"' in preview
    [(now, after)] = re.findall(
        r'data-testid="step-change"><td>2</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>', preview
    )
    assert now.startswith("50 mg/day") and after.startswith("45 mg/day")
    db_session.expire_all()
    assert db_session.get(TaperStep, step1.id).mg_per_day == 50  # nothing saved by looking
    confirm_action, confirm = form_by_action(preview, f"/taper-steps/{step1.id}/dose?")
    lowered = client.post(confirm_action, data=confirm, follow_redirects=True)
    assert "Step changed to 45 mg/day." in text_of(lowered)
    assert "Next: <b>45 mg prednisone</b>" in text_of(lowered)
    assert "(2 × 20 mg + 1 × 5 mg)" in text_of(lowered)
    # The same confirmation again is refused: the step's version moved on.
    stale = client.post(confirm_action, data=confirm, follow_redirects=True)
    assert "Step changed" not in text_of(stale) and "version" in text_of(stale)


def test_a_nurse_has_no_approvals_page_or_link(app, clinic, db_session, settings):
    plan = plan_in_past(db_session, settings, clinic)
    client = logged_in(app, clinic.nurse)
    home = text_of(client.get("/"))
    assert 'href="/approvals"' not in home and ">Approvals</a>" not in home
    page = client.get("/approvals")
    assert page.status_code == 403
    assert "role does not allow" in text_of(page)
    assert "Example, PG-1" not in text_of(page)

    patient_page = text_of(client.get(f"/patients/{clinic.patient.id}"))
    assert "Today: 60 mg prednisone" in shown_text(patient_page, "current-dose")
    assert not has_form(patient_page, "taper-form")
    csrf = form_fields(patient_page, action="/logout")["csrf_token"]
    before = taper_rows(db_session)
    response = client.post(f"/taper-steps/{plan.steps[1].id}/approve", data={"csrf_token": csrf})
    assert response.status_code == 403
    assert taper_rows(db_session) == before


# --- the taper section of the patient page ---------------------------------------------------


def test_physician_sets_a_banded_plan_on_the_patient_page(app, clinic, db_session):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    page = text_of(client.get(patient_url))
    assert "No taper plan." in page
    fields = form_fields(page, testid="taper-form")
    assert fields["drug"] == "prednisone" and fields["template"] == "banded"
    assert fields["starts_on"] == today().isoformat() and fields["based_on_version"] == ""
    fields |= {"start_mg": "60", "reason": "Active DM, starting the taper"}
    response = client.post(f"{patient_url}/tapers", data=fields)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{patient_url}#taper")

    page = text_of(client.get(patient_url))
    assert "Taper plan version 1 set: 21 steps." in page
    assert shown_text(page, "current-dose") == (
        "Today: 60 mg prednisone a day = 1 × 50 mg + 1 × 10 mg"
    )
    assert f"Next step: 50 mg/day, due {(today() + days(28)).isoformat()}." in page
    assert '<b data-testid="cumulative">60 mg</b> to date, 6650 mg projected' in page
    assert f'href="/patients/{clinic.patient.id}/taper/print"' in page
    # The step chart: one polyline from the start to the stop day, today marked.
    last_day = today() + days(434)
    chart = re.search(r'<svg class="chart"[^>]*aria-label="([^"]+)"', page)
    assert chart, "no dose chart"
    assert chart.group(1) == (
        f"Daily dose over time, {today().isoformat()} to {last_day.isoformat()}, at most 60 mg"
    )
    assert "<polyline" in page and 'stroke-dasharray="4 3"' in page
    assert len(table_rows(page, "taper-steps")) == 21
    # The form now carries the version just set.
    assert form_fields(page, testid="taper-form")["based_on_version"] == "1"


def test_a_nurse_sees_the_taper_but_not_the_plan_form(app, clinic, db_session, settings):
    plan_in_past(db_session, settings, clinic, days_ago=10)
    page = text_of(logged_in(app, clinic.nurse).get(f"/patients/{clinic.patient.id}"))
    assert 'data-testid="taper"' in page
    assert shown_text(page, "current-dose").startswith("Today: 60 mg prednisone a day")
    assert f"due {(today() + days(18)).isoformat()}" in shown_text(page, "next-step")
    assert '<b data-testid="cumulative">660 mg</b>' in page  # 11 days at 60 mg
    assert '<svg class="chart"' in page
    assert not has_form(page, "taper-form")
    assert f'action="/patients/{clinic.patient.id}/tapers"' not in page


def test_a_bad_start_dose_on_the_plan_form_is_explained_and_writes_nothing(app, clinic, db_session):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    fields = form_fields(text_of(client.get(patient_url)), testid="taper-form")
    before = taper_rows(db_session)
    response = client.post(
        f"{patient_url}/tapers", data=fields | {"start_mg": "500", "reason": "Flare"}
    )
    # The patient page again, the problem under the field and what was typed kept.
    assert response.status_code == 422
    page = text_of(response)
    assert form_fields(page, testid="taper-form")["start_mg"] == "500"
    assert (
        "Start dose (mg/day)</a>: 500 mg prednisone (500 mg prednisone-equivalent) is above "
        "the maximum of 100 mg prednisone-equivalent"
    ) in page
    assert 'role="alert"' in page
    assert "No taper plan." in page
    assert taper_rows(db_session) == before


def test_the_plan_form_without_a_csrf_token_is_refused(app, clinic, db_session):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    fields = form_fields(text_of(client.get(patient_url)), testid="taper-form")
    fields.pop("csrf_token")
    before = taper_rows(db_session)
    response = client.post(f"{patient_url}/tapers", data=fields | {"start_mg": "60", "reason": "x"})
    assert response.status_code == 400
    assert taper_rows(db_session) == before


# --- the printable schedule ------------------------------------------------------------------


def test_printable_schedule_lists_every_day_from_today_with_tablets(app, clinic, db_session):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    fields = form_fields(text_of(client.get(patient_url)), testid="taper-form")
    fields |= {"start_mg": "60", "reason": "Active DM, starting the taper"}
    assert client.post(f"{patient_url}/tapers", data=fields).status_code == 302

    nurse = logged_in(app, clinic.nurse)
    page = nurse.get(f"{patient_url}/taper/print?days=1")
    assert page.status_code == 200
    body = text_of(page)
    assert "Steroid schedule: Example, PG-1" in body
    rows = table_rows(body, "day-by-day")
    # 28 days at 60 mg, 9 steps of 14 days, 10 of 28 days, then the stop day.
    assert len(rows) == 28 + 9 * 14 + 10 * 28 + 1
    expected_days = [(today() + days(n)).strftime(PRINT_DATE) for n in range(len(rows))]
    assert [row[0] for row in rows] == expected_days
    by_mg = {row[1]: row[2] for row in rows}
    assert rows[0][1:] == ["60", "1 × 50 mg + 1 × 10 mg"]
    assert rows[27][1] == "60" and rows[28][1] == "50"
    assert by_mg["17.5"] == "1 × 10 mg + 1 × 5 mg + 1 × 2.5 mg"
    assert by_mg["9"] == "1 × 5 mg + 4 × 1 mg"
    assert rows[-1][1:] == ["0", "none"]
    assert [row[1] for row in rows].count("17.5") == 14


def test_the_printout_is_a_line_per_step_so_a_60_mg_taper_fits_two_pages(app, clinic):
    # Clinic setup: the printable 60 mg taper was 446 lines, a line per day (19 pages).
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    fields = form_fields(text_of(client.get(patient_url)), testid="taper-form")
    fields |= {"start_mg": "60", "reason": "Active DM, starting the taper"}
    assert client.post(f"{patient_url}/tapers", data=fields).status_code == 302

    body = text_of(logged_in(app, clinic.nurse).get(f"{patient_url}/taper/print"))
    rows = table_rows(body, "by-step")
    assert len(rows) == 1 + 9 + 10 + 1  # 60 mg, 9 steps of 14 days, 10 of 28, the stop
    first_day, last_day = today(), today() + days(27)
    assert rows[0] == [
        first_day.strftime(PRINT_DATE),
        last_day.strftime(PRINT_DATE),
        "60 mg",
        "1 × 50 mg + 1 × 10 mg",
    ]
    assert rows[1][0] == (today() + days(28)).strftime(PRINT_DATE) and rows[1][2] == "50 mg"
    assert rows[-1][2:] == ["0 mg", "none"]
    assert rows[-1][0].endswith("(after a morning blood test)")  # a stop needs a cortisol
    assert f'href="{patient_url}/taper/print?days=1"' in body  # the day-by-day calendar


def test_printable_schedule_starts_today_on_the_dose_being_taken(app, clinic, db_session, settings):
    # Step 1 (50 mg) fell due three days ago and is not approved: today is still 60 mg.
    plan_in_past(db_session, settings, clinic, days_ago=31)
    client = logged_in(app, clinic.nurse)
    patient_page = text_of(client.get(f"/patients/{clinic.patient.id}"))
    assert "Today: 60 mg prednisone" in shown_text(patient_page, "current-dose")
    rows = table_rows(
        text_of(client.get(f"/patients/{clinic.patient.id}/taper/print?days=1")), "day-by-day"
    )
    assert rows[0][0] == today().strftime(PRINT_DATE)
    assert rows[0][1:] == ["60", "1 × 50 mg + 1 × 10 mg"]


# --- the center's date, not the server's -----------------------------------------------------


@pytest.fixture
def server_date_differs_from_the_center(monkeypatch):
    """Run the app process in a time zone whose date is not New York's date right now."""
    hour = dt.datetime.now(ZoneInfo(TIMEZONE)).hour
    monkeypatch.setenv("TZ", "Etc/GMT-14" if hour >= 6 else "Etc/GMT+12")
    time.tzset()
    assert dt.date.today() != today(), "the server's date must differ from New York's"
    yield
    monkeypatch.undo()
    time.tzset()


def test_approvals_page_uses_the_centers_date(
    app, clinic, db_session, settings, server_date_differs_from_the_center
):
    tomorrow_patient = make_patient(db_session, clinic.nursing, clinic.center, settings, "PG-3")
    tomorrow_patient.treating_physician_id = clinic.physician.id
    db_session.commit()
    plan_in_past(db_session, settings, clinic, days_ago=28)  # due today in New York
    plan_in_past(db_session, settings, clinic, patient=tomorrow_patient, days_ago=27)
    page = text_of(logged_in(app, clinic.physician).get("/approvals"))
    assert page.count('data-testid="due-step"') == 1
    assert "Example, PG-1" in page and "Example, PG-3" not in page
