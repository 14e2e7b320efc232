"""The care pages through the Flask test client: real login, real CSRF tokens, real forms.

Forms are read back from the rendered HTML and submitted with the fields the template
renders, so a field renamed on one side only shows up here.
"""

from __future__ import annotations

import datetime as dt
import html
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, Infusion, InfusionStatus, Regimen
from app.services import regimens as regimen_service
from app.services.scheduling import add_months
from tests.conftest import csrf_of, login
from tests.db.clinic_fixtures import Clinic, at, make_center, make_patient, regimen_input

NEW_YORK = ZoneInfo("America/New_York")


class _FormReader(HTMLParser):
    """Collect the fields of every <form> as a browser would send them (select: chosen option)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._option: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {"attrs": a, "fields": {}}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self._form["fields"][a["name"]] = "on"
            else:
                self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "option" and self._option is not None and self._select and self._form:
            option, self._option = self._option, None
            value = option["value"] if option["value"] is not None else option["text"].strip()
            if option["selected"] or self._select not in self._form["fields"]:
                self._form["fields"][self._select] = value
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._form = None


def form_fields(page: str, testid: str | None = None, action: str | None = None) -> dict:
    """Return the fields of the form with this data-testid or action, as the browser sends them."""
    reader = _FormReader()
    reader.feed(page)
    for form in reader.forms:
        attrs = form["attrs"]
        if (testid and attrs.get("data-testid") == testid) or (
            action and attrs.get("action") == action
        ):
            return dict(form["fields"])
    raise AssertionError(f"no form {testid or action} on the page")


def form_fields_with(page: str, name: str) -> dict:
    """Return the fields of the first form that has a field of this name."""
    reader = _FormReader()
    reader.feed(page)
    return next(f["fields"] for f in reader.forms if name in f["fields"])


def has_form(page: str, testid: str) -> bool:
    reader = _FormReader()
    reader.feed(page)
    return any(form["attrs"].get("data-testid") == testid for form in reader.forms)


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def next_monday(at_least_days: int = 7) -> dt.date:
    day = dt.datetime.now(NEW_YORK).date() + dt.timedelta(days=at_least_days)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def count_rows(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings, mrn="PG-100")
    return holder


def logged_in(app, user):
    client = app.test_client()
    response = login(client, user.email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


WORKED_EXAMPLE_FORM = {
    "weight_kg": "100",
    "height_cm": "175",
    "sex": "male",
    "dose_g_per_kg": "2",
    "days_per_cycle": "2",
    "weight_basis": "adjusted",
    "product": "Octagam 10%",
}


# --- dose calculator -------------------------------------------------------------------------


def test_calculator_page_shows_the_worked_example(app, clinic, db_session):
    client = logged_in(app, clinic.nurse)
    page = client.get("/dosing/ivig")
    assert page.status_code == 200
    fields = form_fields_with(text_of(page), "weight_kg")
    assert {"csrf_token", "weight_kg", "height_cm", "sex", "dose_g_per_kg", "product"} <= set(
        fields
    )
    before = (count_rows(db_session, Regimen), count_rows(db_session, AuditEvent))
    response = client.post("/dosing/ivig", data=fields | WORKED_EXAMPLE_FORM)
    assert response.status_code == 200
    body = text_of(response)
    assert "82.28 kg" in body
    assert "164.56 g" in body
    assert "30 g × 2 + 20 g + 2 g" in body
    assert "295 min" in body
    assert 'role="alert"' not in body
    assert (count_rows(db_session, Regimen), count_rows(db_session, AuditEvent)) == before


def test_calculator_page_explains_a_bad_dose(app, clinic):
    client = logged_in(app, clinic.nurse)
    client.get("/dosing/ivig")
    data = WORKED_EXAMPLE_FORM | {"csrf_token": csrf_of(client), "dose_g_per_kg": "2.5"}
    response = client.post("/dosing/ivig", data=data)
    assert response.status_code == 422
    body = text_of(response)
    assert "Dose (g/kg per cycle)</a>: 2.5 is above the maximum of 2.0 g/kg per cycle" in body
    assert 'data-testid="dose-result"' not in body
    # What was typed stays in the form for correction.
    assert form_fields_with(body, "dose_g_per_kg")["dose_g_per_kg"] == "2.5"

    response = client.post(
        "/dosing/ivig", data=data | {"dose_g_per_kg": "two", "csrf_token": csrf_of(client)}
    )
    assert response.status_code == 422
    assert "Dose (g/kg per cycle)</a>: give a number (got 'two')" in text_of(response)


def test_calculator_form_without_csrf_token_is_refused(app, clinic):
    client = logged_in(app, clinic.nurse)
    response = client.post("/dosing/ivig", data=WORKED_EXAMPLE_FORM)
    assert response.status_code == 400
    assert "82.28" not in text_of(response)


# --- regimen through the patient page --------------------------------------------------------


def expected_bookings(starts_on: dt.date) -> set[int]:
    today = dt.datetime.now(NEW_YORK).date()
    return {
        2 * ((add_months(day, 12) - starts_on).days // 28 + 1)
        for day in (today, today + dt.timedelta(days=1))
    }


def test_physician_sets_a_regimen_through_the_patient_page(app, clinic, db_session):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    page = client.get(patient_url)
    assert page.status_code == 200
    assert "No regimen yet." in text_of(page)
    fields = form_fields(text_of(page), testid="regimen-form")
    assert fields["based_on_version"] == ""
    assert fields["csrf_token"] == csrf_of(client)
    assert fields["weight_basis"] == "adjusted" and fields["dose_g_per_kg"] == "2"
    starts_on = next_monday()
    fields |= {
        "product": "Octagam 10%",
        "starts_on": starts_on.isoformat(),
        "preferred_time": "09:00",
        "reason": "Refractory cutaneous DM",
    }
    response = client.post(f"{patient_url}/regimens", data=fields)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(patient_url)

    page = client.get(patient_url)
    body = text_of(page)
    booked = count_rows(db_session, Infusion)
    assert booked in expected_bookings(starts_on)
    assert f"Regimen version 1 set: {booked} infusions booked" in body
    assert body.count('data-testid="infusion-row"') == booked
    assert starts_on.strftime("%a %d %b %Y") in body
    assert "09:00–13:55" in body
    assert "Octagam 10% 2 g/kg / 2 d / q4w (adjusted)" in body
    assert "Refractory cutaneous DM" in body
    assert "(version 1)" in body and "82.28 kg" in body

    # The form now carries the version just set, so a change is based on it.
    fields = form_fields(body, testid="regimen-form")
    assert fields["based_on_version"] == "1"
    assert fields["dose_g_per_kg"] == "2" and fields["preferred_time"] == "09:00"
    # "First cycle on" is pre-filled with today, not the current rhythm: keep the rhythm.
    fields |= {"dose_g_per_kg": "1.5", "starts_on": starts_on.isoformat(), "reason": "Taper"}
    assert client.post(f"{patient_url}/regimens", data=fields).status_code == 302
    body = text_of(client.get(patient_url))
    assert f"Regimen version 2 set: 0 infusions booked, {booked} moved, 0 cancelled" in body
    assert body.count('data-testid="infusion-row"') == booked
    assert "(version 2)" in body and "Taper" in body and "62 g" in body
    assert count_rows(db_session, Regimen) == 2


def test_bad_regimen_form_re_renders_with_422_and_writes_nothing(app, clinic, db_session):
    from tests.web.test_form_errors import seen

    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    fields = form_fields(text_of(client.get(patient_url)), testid="regimen-form")
    fields |= {
        "dose_g_per_kg": "3",
        "starts_on": next_monday().isoformat(),
        "reason": "Refractory cutaneous DM",
    }
    before = [count_rows(db_session, m) for m in (Regimen, Infusion, AuditEvent)]
    response = client.post(f"{patient_url}/regimens", data=fields)
    assert response.status_code == 422
    body = text_of(response)
    shown = seen(response)
    assert shown.errors == {"dose_g_per_kg": "3.0 is above the maximum of 2.0 g/kg per cycle"}
    assert shown.listed == [
        (
            "#regimen-dose_g_per_kg",
            "Dose (g/kg per cycle): 3.0 is above the maximum of 2.0 g/kg per cycle",
        )
    ]
    assert form_fields(body, testid="regimen-form")["dose_g_per_kg"] == "3"
    assert "No regimen yet." in body
    assert [count_rows(db_session, m) for m in (Regimen, Infusion, AuditEvent)] == before


def test_stale_regimen_form_is_409_with_a_message(app, clinic, db_session, settings):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    fields = form_fields(text_of(client.get(patient_url)), testid="regimen-form")
    # Someone else sets the first regimen while this form is open.
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=next_monday()),
        settings,
    )
    fields |= {"starts_on": next_monday().isoformat(), "reason": "Mine"}
    response = client.post(f"{patient_url}/regimens", data=fields)
    assert response.status_code == 409
    assert "the regimen is at version 1" in text_of(response)
    assert count_rows(db_session, Regimen) == 1


def test_nurse_cannot_set_a_regimen(app, clinic, db_session):
    client = logged_in(app, clinic.nurse)
    patient_url = f"/patients/{clinic.patient.id}"
    page = client.get(patient_url)
    assert page.status_code == 200
    body = text_of(page)
    assert not has_form(body, "regimen-form")
    assert "Set regimen" not in body and "Save regimen" not in body
    # She still records weights there.
    assert form_fields(body, action=f"{patient_url}/weights")["csrf_token"] == csrf_of(client)
    response = client.post(
        f"{patient_url}/regimens",
        data={
            "csrf_token": csrf_of(client),
            "based_on_version": "",
            "product": "Octagam 10%",
            "dose_g_per_kg": "2",
            "days_per_cycle": "2",
            "interval_weeks": "4",
            "weight_basis": "adjusted",
            "starts_on": next_monday().isoformat(),
            "preferred_time": "09:00",
            "center_id": str(clinic.center.id),
            "reason": "Trying",
        },
    )
    assert response.status_code == 403
    assert count_rows(db_session, Regimen) == 0 and count_rows(db_session, Infusion) == 0


# --- day and week boards ---------------------------------------------------------------------


def test_day_and_week_boards_show_the_booked_patient(app, clinic, db_session, settings):
    starts_on = next_monday()
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(starts_on=starts_on), settings
    )
    name = clinic.patient.display_name
    client = logged_in(app, clinic.nurse)
    day = client.get(f"/centers/{clinic.center.id}/day?date={starts_on.isoformat()}")
    assert day.status_code == 200
    body = text_of(day)
    assert name in body
    assert "09:00–13:55" in body and "C1D1" in body
    assert "82 g = 30 g × 2 + 20 g + 2 g" in body
    assert body.count('data-testid="board-infusion"') == 1

    wednesday = (starts_on + dt.timedelta(days=2)).isoformat()
    empty = text_of(client.get(f"/centers/{clinic.center.id}/day?date={wednesday}"))
    assert name not in empty

    week = client.get(f"/centers/{clinic.center.id}/week?date={wednesday}")
    assert week.status_code == 200
    body = text_of(week)
    assert f"week of {starts_on.strftime('%d %B %Y')}" in body
    assert body.count(f"09:00 Chair 1: {name} (scheduled)") == 2


def test_day_board_runs_the_same_queries_for_5_or_30_patients(
    app, db_session, make_user, settings, count_queries
):
    physician = make_user("physician")
    nurse = make_user("nurse")
    small, large = make_center(db_session, "Small", chairs=30), make_center(db_session, "Large", 30)
    clinic = Clinic(center=small, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    day = dt.date(2026, 10, 5)
    for center, patients in ((small, 5), (large, 30)):
        for n in range(patients):
            patient = make_patient(
                db_session, clinic.nursing, center, settings, mrn=f"{center.name[0]}-{n:02d}"
            )
            regimen_service.set_regimen(
                db_session,
                clinic.doctor,
                patient.id,
                regimen_input(starts_on=day),
                settings,
                now=at(dt.date(2026, 10, 1)),
            )
    on_day = sa.select(sa.func.count()).where(
        Infusion.planned_date == day, Infusion.status == InfusionStatus.SCHEDULED
    )
    assert db_session.scalar(on_day.where(Infusion.center_id == small.id)) == 5
    assert db_session.scalar(on_day.where(Infusion.center_id == large.id)) == 30

    client = logged_in(app, nurse)

    def board_queries(center) -> tuple[int, str]:
        with count_queries() as statements:
            response = client.get(f"/centers/{center.id}/day?date={day.isoformat()}")
        assert response.status_code == 200
        return len(statements), text_of(response)

    board_queries(small)  # warm-up: the login session is touched at most once a minute
    small_count, small_page = board_queries(small)
    large_count, large_page = board_queries(large)
    assert small_page.count('data-testid="board-infusion"') == 5
    assert large_page.count('data-testid="board-infusion"') == 30
    assert all(f"Example, L-{n:02d}" in large_page for n in range(30))
    assert small_count > 0
    assert large_count == small_count


# --- infusion page ---------------------------------------------------------------------------


def test_infusion_page_records_given_in_center_local_time(app, clinic, db_session, settings):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=next_monday()),
        settings,
    )
    infusion = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == clinic.patient.id).order_by(Infusion.id)
    ).first()
    # The nurse records it that evening, as it ran (the test clock moves to after it ended).
    clock.set_now(infusion.ends_at + dt.timedelta(hours=2))
    client = logged_in(app, clinic.nurse)
    url = f"/infusions/{infusion.id}"
    page = client.get(url)
    assert page.status_code == 200
    body = text_of(page)
    assert '<dd data-testid="infusion-status">scheduled</dd>' in body
    fields = form_fields(body, testid="given-form")
    assert fields["version"] == str(infusion.version)
    assert fields["given_grams"] == "82"

    started = infusion.starts_at.astimezone(NEW_YORK).replace(tzinfo=None)
    ended = started + dt.timedelta(minutes=295)
    fields |= {
        "started_at": started.strftime("%Y-%m-%dT%H:%M"),
        "ended_at": ended.strftime("%Y-%m-%dT%H:%M"),
        "lot_numbers": "OCT-7731",
        "max_rate_ml_per_kg_min": "0.04",
    }
    response = client.post(f"{url}/given", data=fields)
    assert response.status_code == 302, text_of(response)
    body = text_of(client.get(url))
    assert '<dd data-testid="infusion-status">given</dd>' in body
    assert "82 g, lots OCT-7731" in body
    assert f"{started:%d %b %H:%M}–{ended:%H:%M}" in body
    assert not has_form(body, "given-form")

    db_session.expire_all()
    stored = db_session.get(Infusion, infusion.id)
    assert stored.status == InfusionStatus.GIVEN
    # The form's wall clock is New York's, whatever the server's zone.
    assert stored.given_started_at == started.replace(tzinfo=NEW_YORK)
    assert stored.given_ended_at == ended.replace(tzinfo=NEW_YORK)


def test_infusion_page_shows_why_a_given_record_was_refused(app, clinic, db_session, settings):
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        regimen_input(starts_on=next_monday()),
        settings,
    )
    infusion = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == clinic.patient.id).order_by(Infusion.id)
    ).first()
    # The nurse records it that evening, as it ran (the test clock moves to after it ended).
    clock.set_now(infusion.ends_at + dt.timedelta(hours=2))
    client = logged_in(app, clinic.nurse)
    url = f"/infusions/{infusion.id}"
    fields = form_fields(text_of(client.get(url)), testid="given-form")
    fields |= {"lot_numbers": "OCT-1", "max_rate_ml_per_kg_min": "0.04", "given_grams": "150"}
    response = client.post(f"{url}/given", data=fields)
    assert response.status_code == 422
    body = text_of(response)
    from tests.web.test_form_errors import seen

    # In the words of the field's label (not given_grams), next to it and above the page.
    why = "150 is outside 0-140 g (the Octagam 10% maximum per day)"
    assert seen(response).errors == {"given_grams": why}
    assert seen(response).listed == [("#given-given_grams", f"Grams given: {why}")]
    assert '<dd data-testid="infusion-status">scheduled</dd>' in body
    assert form_fields(body, testid="given-form")["given_grams"] == "150"


def test_a_form_time_the_clocks_skip_is_refused_not_moved(app):
    # House in order: the form parser took 02:30 on the night New York springs forward and
    # quietly made it 03:30; the scheduler's own conversion refuses it.
    from app.schemas.infusions import RescheduleIn
    from app.services.errors import InvalidInput
    from app.web import forms

    def starts_at(local: str) -> dt.datetime:
        with app.test_request_context(method="POST", data={"chair_id": "1", "starts_at": local}):
            return forms.parse(RescheduleIn, timezone="America/New_York").starts_at

    with pytest.raises(InvalidInput) as caught:
        starts_at("2027-03-14T02:30")
    assert caught.value.field == "starts_at"
    assert "does not exist" in caught.value.message
    assert starts_at("2027-03-14T03:30") == dt.datetime(2027, 3, 14, 7, 30, tzinfo=dt.UTC)
    # The hour that happens twice in November is its first occurrence (EDT, -4).
    assert starts_at("2027-11-07T01:30") == dt.datetime(2027, 11, 7, 5, 30, tzinfo=dt.UTC)


def test_the_regimen_form_starts_on_the_next_cycles_planned_day_even_after_a_move(
    app, clinic, db_session, settings
):
    # House in order: the page computed the next cycle itself (moved date, booked cycles only)
    # while approving a suggestion used the regimen's grid; both now ask one function.
    from app.services import infusions as infusion_service

    monday = next_monday()
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(starts_on=monday), settings
    )
    first = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == clinic.patient.id).order_by(Infusion.id)
    ).first()
    assert first.planned_date == monday and first.day_number == 1
    infusion_service.reschedule(
        db_session,
        clinic.nursing,
        first.id,
        first.chair_id,
        first.starts_at - dt.timedelta(days=3),  # the Friday before: the patient asked
        settings,
    )
    page = text_of(logged_in(app, clinic.physician).get(f"/patients/{clinic.patient.id}"))
    assert form_fields(page, testid="regimen-form")["starts_on"] == monday.isoformat()
