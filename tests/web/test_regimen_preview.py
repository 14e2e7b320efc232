"""Setting a regimen from the page shows first what it does; confirming applies exactly that."""

from __future__ import annotations

import re

from app.models import AuditEvent, Infusion, Regimen
from tests.db.clinic_fixtures import make_patient
from tests.web.test_care_pages import (
    count_rows,
    form_fields,
    logged_in,
    next_monday,
    text_of,
)
from tests.web.test_closures import book, clinic

__all__ = ["clinic"]


def regimen_fields(client, patient_url: str, **changes: str) -> dict[str, str]:
    fields = form_fields(text_of(client.get(patient_url)), testid="regimen-form")
    return (
        fields
        | {
            "product": "Octagam 10%",
            "starts_on": next_monday().isoformat(),
            "preferred_time": "09:00",
            "reason": "Refractory cutaneous DM",
        }
        | changes
    )


def confirm_fields(html: str) -> dict[str, str]:
    form = html[html.index('data-testid="regimen-preview"') :]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_the_physician_sees_the_regimen_and_its_bookings_before_confirming(app, clinic, db_session):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    fields = regimen_fields(client, patient_url)
    action = re.search(
        r'<form method="post" action="([^"]+)"[^>]*data-testid="regimen-form"',
        text_of(client.get(patient_url)),
    ).group(1)
    assert action == f"{patient_url}/regimens/preview"
    before = [count_rows(db_session, m) for m in (Regimen, Infusion, AuditEvent)]

    shown = client.post(action, data=fields)
    assert shown.status_code == 200
    html = text_of(shown)
    assert "Set the regimen of Example, CL-1?" in html
    assert "82 g = 30 g × 2 + 20 g + 2 g, 295 min" in html
    cycles = re.findall(r'data-kind="(\w+)"', html)
    assert cycles and set(cycles) == {"booked"}
    assert f"{next_monday():%a %d %b} 09:00, Chair 1" in html
    assert [count_rows(db_session, m) for m in (Regimen, Infusion, AuditEvent)] == before

    done = client.post(f"{patient_url}/regimens", data=confirm_fields(html))
    assert done.status_code == 302
    assert count_rows(db_session, Regimen) == 1
    assert "Regimen version 1 set" in text_of(client.get(patient_url))

    # A change shows old beside new, and the bookings that move.
    fields = regimen_fields(client, patient_url, dose_g_per_kg="1.5", reason="Stable: lower")
    change = text_of(client.post(action, data=fields))
    assert "Change the regimen of Example, CL-1?" in change
    assert "Now (version 1)" in change and "New (version 2)" in change
    assert ">82 g</td>" in change and "62 g = " in change
    assert "Chair 1 · 82 g<br>" in change and "Chair 1 · 62 g<br>" in change
    assert set(re.findall(r'data-kind="(\w+)"', change)) == {"dose"}


def test_a_preview_overtaken_by_another_booking_is_shown_again(app, clinic, db_session, settings):
    client = logged_in(app, clinic.physician)
    patient_url = f"/patients/{clinic.patient.id}"
    html = text_of(
        client.post(f"{patient_url}/regimens/preview", data=regimen_fields(client, patient_url))
    )
    assert f"{next_monday():%a %d %b} 09:00, Chair 1" in html
    other = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn="CL-9")
    book(db_session, clinic, settings, next_monday(), patient=other)  # takes Chair 1 at 09:00

    refused = client.post(f"{patient_url}/regimens", data=confirm_fields(html))
    assert refused.status_code == 409
    again = text_of(refused)
    assert "The bookings changed since the preview was shown" in again
    assert f"{next_monday():%a %d %b} 09:00, Chair 2" in again
    assert count_rows(db_session, Regimen) == 1  # only the other patient's
    applied = client.post(f"{patient_url}/regimens", data=confirm_fields(again))
    assert applied.status_code == 302 and count_rows(db_session, Regimen) == 2


def test_the_api_previews_a_regimen(app, clinic, bearer, db_session):
    body = {
        "product": "Octagam 10%",
        "dose_g_per_kg": 2,
        "days_per_cycle": 2,
        "interval_weeks": 4,
        "starts_on": next_monday().isoformat(),
        "preferred_time": "09:00",
        "reason": "Refractory cutaneous DM",
    }
    headers = bearer(clinic.physician)
    api = app.test_client()
    url = f"/api/v1/patients/{clinic.patient.id}/regimens"
    preview = api.post(f"{url}/preview", json=body, headers=headers)
    assert preview.status_code == 200, preview.json
    assert preview.json["old"] is None and preview.json["new"]["grams_per_day"] == 82
    assert preview.json["new"]["vials_per_day"] == [[30, 2], [20, 1], [2, 1]]
    assert preview.json["preview"]["counts"]["booked"] == preview.json["replan"]["created"] // 2
    assert count_rows(db_session, Regimen) == 0
    stale = api.post(url, json=body | {"fingerprint": "f" * 32}, headers=headers)
    assert stale.status_code == 409 and "preview" in stale.json["error"]
    made = api.post(
        url, json=body | {"fingerprint": preview.json["preview"]["fingerprint"]}, headers=headers
    )
    assert made.status_code == 201
