"""House in order: the pages read their forms with the API's input models, so a value one
refuses the other refuses too, in the same words (the page names the field by its label, the
API by its name), and nothing is written."""

from __future__ import annotations

import pytest

from app.models import AuditEvent, Regimen
from tests.conftest import csrf_of
from tests.web.test_care_pages import clinic, count_rows, logged_in, next_monday
from tests.web.test_form_errors import seen

__all__ = ["clinic"]

REGIMEN = {
    "product": "Octagam 10%",
    "dose_g_per_kg": "2",
    "days_per_cycle": "2",
    "interval_weeks": "4",
    "weight_basis": "adjusted",
    "preferred_time": "09:00",
    "reason": "Start of treatment",
}


@pytest.mark.parametrize(
    ("field", "page_value", "api_value", "message"),
    [
        ("dose_g_per_kg", "two", "two", "give a number (got 'two')"),
        ("dose_g_per_kg", "11", 11, "must be at most 10 g/kg (got 11)"),
        ("days_per_cycle", "2.5", 2.5, "give a whole number (got '2.5')"),
        ("interval_weeks", "0", 0, "must be at least 1 week (got 0)"),
        ("preferred_time", "9 o'clock", "9 o'clock", 'give a time as HH:MM (got "9 o\'clock")'),
        ("starts_on", "next week", "next week", "give an ISO 8601 date, e.g. 2026-12-02"),
        ("weight_basis", "lean", "lean", "one of 'actual', 'ideal' or 'adjusted' (got 'lean')"),
        ("reason", " ", " ", "required"),
        ("reason", "x" * 2001, "x" * 2001, "at most 2000 characters"),
    ],
)
def test_a_page_and_the_api_refuse_a_regimen_in_the_same_words(
    app, clinic, db_session, bearer, field, page_value, api_value, message
):
    patient = clinic.patient
    values = REGIMEN | {"starts_on": next_monday().isoformat()}
    page = logged_in(app, clinic.physician)
    page.get(f"/patients/{patient.id}")
    headers = bearer(clinic.physician)
    before = (count_rows(db_session, Regimen), count_rows(db_session, AuditEvent))

    answer = page.post(
        f"/patients/{patient.id}/regimens",
        data=values | {field: page_value, "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 422
    shown = seen(answer)
    assert shown.errors == {field: message}
    assert shown.listed == [(f"#regimen-{field}", f"{shown.labels[f'regimen-{field}']}: {message}")]

    body: dict[str, object] = {k: v for k, v in values.items() if k != "weight_basis"}
    body |= {"dose_g_per_kg": 2, "days_per_cycle": 2, "interval_weeks": 4, field: api_value}
    api = app.test_client().post(
        f"/api/v1/patients/{patient.id}/regimens", json=body, headers=headers
    )
    assert api.status_code == 422
    error = api.get_json()["error"]
    assert error["field"] == field
    # The value as JSON sent it: a number is not quoted.
    assert error["message"] == f"{field}: {message}".replace("'2.5'", "2.5")
    assert (count_rows(db_session, Regimen), count_rows(db_session, AuditEvent)) == before
