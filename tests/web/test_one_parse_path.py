"""House in order: the pages read their forms with the API's input models, so a value one
refuses the other refuses too, in the same words, and nothing is written."""

from __future__ import annotations

import pytest

from app.models import AuditEvent, Regimen
from tests.conftest import csrf_of
from tests.web.test_care_pages import clinic, count_rows, logged_in, next_monday, text_of

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
        ("dose_g_per_kg", "two", "two", "dose_g_per_kg: give a number (got 'two')"),
        ("dose_g_per_kg", "11", 11, "dose_g_per_kg: must be at most 10 (got 11)"),
        ("days_per_cycle", "2.5", 2.5, "days_per_cycle: give a whole number"),
        ("interval_weeks", "0", 0, "interval_weeks: must be at least 1 (got 0)"),
        ("preferred_time", "9 o'clock", "9 o'clock", "preferred_time: give a time as HH:MM"),
        ("starts_on", "next week", "next week", "starts_on: give an ISO 8601 date"),
        ("weight_basis", "lean", "lean", "weight_basis: one of 'actual', 'ideal' or 'adjusted'"),
        ("reason", " ", " ", "reason: required"),
        ("reason", "x" * 2001, "x" * 2001, "reason: at most 2000 characters"),
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
    assert message in text_of(answer)

    body: dict[str, object] = {k: v for k, v in values.items() if k != "weight_basis"}
    body |= {"dose_g_per_kg": 2, "days_per_cycle": 2, "interval_weeks": 4, field: api_value}
    api = app.test_client().post(
        f"/api/v1/patients/{patient.id}/regimens", json=body, headers=headers
    )
    assert api.status_code == 422
    error = api.get_json()["error"]
    assert error["field"] == field
    assert message in error["message"]
    assert (count_rows(db_session, Regimen), count_rows(db_session, AuditEvent)) == before
