"""The clinic's "today" is its center's wall-clock date, on either side of midnight, in New York
and in Sydney, wherever the server's clock is (UTC here)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.models import Center
from app.services.context import system_actor
from tests.db.clinic_fixtures import make_center, make_patient


@pytest.fixture
def two_cities(db_session, settings, make_user, bearer):
    nurse = make_user("nurse")
    patients = {}
    for city, zone in (("new_york", "America/New_York"), ("sydney", "Australia/Sydney")):
        center: Center = make_center(db_session, f"{city} center")
        center.timezone = zone
        db_session.flush()
        patients[city] = make_patient(
            db_session, system_actor("test"), center, settings, mrn=f"MID-{city}"
        )
    db_session.commit()
    return patients, bearer(nurse)


def assessment_on(client, headers, patient, day: dt.date) -> int:
    response = client.post(
        f"/api/v1/patients/{patient.id}/assessments",
        headers=headers,
        json={"assessed_on": day.isoformat(), "cdasi_activity": 20},
    )
    return response.status_code


@pytest.mark.parametrize(
    ("utc", "new_york_today", "sydney_today"),
    [
        # 08:30 on 2 Dec in New York is 00:30 on 3 Dec in Sydney (AEDT, +11).
        (
            dt.datetime(2026, 12, 2, 13, 30, tzinfo=dt.UTC),
            dt.date(2026, 12, 2),
            dt.date(2026, 12, 3),
        ),
        # 23:30 on 2 Dec in New York (EST, -5) is already 3 Dec in UTC and 10:30 on 3 Dec in Sydney.
        (
            dt.datetime(2026, 12, 3, 4, 30, tzinfo=dt.UTC),
            dt.date(2026, 12, 2),
            dt.date(2026, 12, 3),
        ),
        # 00:30 on 3 Dec in New York; 16:30 on 3 Dec in Sydney.
        (
            dt.datetime(2026, 12, 3, 5, 30, tzinfo=dt.UTC),
            dt.date(2026, 12, 3),
            dt.date(2026, 12, 3),
        ),
    ],
)
def test_today_is_the_centers_date_on_both_sides_of_midnight(
    client, two_cities, set_clock, utc, new_york_today, sydney_today
):
    patients, headers = two_cities
    set_clock(utc)
    for city, today in (("new_york", new_york_today), ("sydney", sydney_today)):
        patient = patients[city]
        # Today's assessment is taken; tomorrow's is in the future there and refused.
        assert assessment_on(client, headers, patient, today) == 201, city
        assert assessment_on(client, headers, patient, today + dt.timedelta(days=1)) == 422, city
