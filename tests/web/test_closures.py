"""Closing a center for a day, as the admin and the nurse see it: a preview first, exactly that
when confirmed, and boards that say the center is closed and why."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Closure, Infusion, InfusionStatus
from app.services import regimens as regimen_service
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import Clinic, at, make_center, make_patient, regimen_input
from tests.web.test_care_pages import count_rows, logged_in, next_monday, text_of


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings, mrn="CL-1")
    return holder


def book(db_session, clinic: Clinic, settings, starts_on: dt.date, patient=None) -> None:
    regimen_service.set_regimen(
        db_session,
        clinic.doctor,
        (patient or clinic.patient).id,
        regimen_input(starts_on=starts_on),
        settings,
        now=at(starts_on - dt.timedelta(days=7)),
    )


def scheduled_days(db_session, patient_id: int) -> list[dt.date]:
    db_session.expire_all()
    return sorted(
        db_session.scalars(
            sa.select(Infusion.planned_date).where(
                Infusion.patient_id == patient_id, Infusion.status == InfusionStatus.SCHEDULED
            )
        )
    )


def test_a_closed_day_says_so_on_the_boards_and_on_what_moved(
    app, clinic, db_session, settings, make_user, bearer
):
    # Clinic setup: after a closure the day board still said "open 08:00-18:00", the week
    # did not mark it, and the moved infusions gave no reason.
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    answer = app.test_client().post(
        f"/api/v1/centers/{clinic.center.id}/closures",
        json={"closed_on": monday.isoformat(), "reason": "Staff training"},
        headers=bearer(make_user("admin")),
    )
    assert answer.status_code == 201, answer.json
    nurse = logged_in(app, clinic.nurse)
    day = text_of(nurse.get(f"/centers/{clinic.center.id}/day?date={monday.isoformat()}"))
    assert "closed: Staff training" in day and "open 08:00" not in day
    week = text_of(nurse.get(f"/centers/{clinic.center.id}/week?date={monday.isoformat()}"))
    assert "Closed: Staff training" in week
    api_day = app.test_client().get(
        f"/api/v1/centers/{clinic.center.id}/day/{monday.isoformat()}",
        headers=bearer(clinic.nurse),
    )
    assert api_day.json["closure"] == "Staff training" and api_day.json["opens_at"] is None
    moved = db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.cycle_number == 1,
            Infusion.status == InfusionStatus.SCHEDULED,
        )
    ).first()
    assert moved.planned_date != monday
    page = text_of(nurse.get(f"/infusions/{moved.id}"))
    assert f"Test Center closed on {monday.isoformat()}: Staff training" in page


def test_a_holiday_the_center_opted_into_is_named_on_the_board(app, clinic, db_session):
    clinic.center.holiday_country = "US"
    db_session.commit()
    nurse = logged_in(app, clinic.nurse)
    page = text_of(nurse.get(f"/centers/{clinic.center.id}/day?date=2027-09-06"))
    assert "closed: Labor Day" in page


def preview_of(page, center_id: int, day: dt.date, reason: str = "Staff training"):
    return page.post(
        f"/admin/centers/{center_id}/closures/preview",
        data={"csrf_token": csrf_of(page), "closed_on": day.isoformat(), "reason": reason},
    )


def confirm_form(html: str) -> dict[str, str]:
    form = html[html.index('data-testid="closure-preview"') :]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_the_admin_sees_what_a_closure_moves_before_it_is_made(
    app, clinic, db_session, settings, make_user
):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    before_days = scheduled_days(db_session, clinic.patient.id)
    admin = logged_in(app, make_user("admin"))
    before = (count_rows(db_session, Closure), count_rows(db_session, AuditEvent))
    center_page = text_of(admin.get(f"/admin/centers/{clinic.center.id}"))
    assert 'data-testid="closure-form"' in center_page

    shown = preview_of(admin, clinic.center.id, monday)
    assert shown.status_code == 200
    html = text_of(shown)
    assert "1 patient, 1 cycle: 1 moved" in html
    rows = re.findall(r'data-kind="(\w+)">\s*<td>([^<]+)</td><td>(\d+)</td>', html)
    assert rows == [("moved", "Example, CL-1", "1")]
    tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
    now, after = re.findall(r"<td>([^<]+ 09:00, Chair \d · 82 g(?:<br>[^<]+ · 82 g)*)</td>", html)
    slot = "09:00, Chair 1 · 82 g"
    assert now == f"{monday:%a %d %b} {slot}<br>{tuesday:%a %d %b} {slot}"
    assert after.startswith(f"{tuesday:%a %d %b} {slot}<br>{wednesday:%a %d %b} 09:00")
    # Nothing is saved by looking.
    assert scheduled_days(db_session, clinic.patient.id) == before_days
    assert (count_rows(db_session, Closure), count_rows(db_session, AuditEvent)) == before

    done = admin.post(f"/admin/centers/{clinic.center.id}/closures", data=confirm_form(html))
    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"date={monday.isoformat()}")
    assert monday not in scheduled_days(db_session, clinic.patient.id)
    assert count_rows(db_session, Closure) == before[0] + 1
    assert f"{monday:%a %d %b %Y}: Staff training" in text_of(
        admin.get(f"/admin/centers/{clinic.center.id}")
    )


def test_a_stale_preview_is_refused_with_the_new_one(app, clinic, db_session, settings, make_user):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    admin = logged_in(app, make_user("admin"))
    html = text_of(preview_of(admin, clinic.center.id, monday))
    assert "1 patient, 1 cycle: 1 moved" in html
    # Meanwhile a second patient is booked on that day.
    other = make_patient(db_session, clinic.nursing, clinic.center, settings, mrn="CL-2")
    book(db_session, clinic, settings, monday, patient=other)

    refused = admin.post(f"/admin/centers/{clinic.center.id}/closures", data=confirm_form(html))
    assert refused.status_code == 409
    again = text_of(refused)
    assert "The bookings changed since the preview was shown" in again
    assert "2 patients, 2 cycles: 2 moved" in again
    assert count_rows(db_session, Closure) == 0
    assert monday in scheduled_days(db_session, other.id)
    applied = admin.post(f"/admin/centers/{clinic.center.id}/closures", data=confirm_form(again))
    assert applied.status_code == 302
    assert monday not in scheduled_days(db_session, other.id)


def test_the_api_previews_and_confirms_by_fingerprint(
    app, clinic, db_session, settings, make_user, bearer
):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    headers = bearer(make_user("admin"))
    api = app.test_client()
    body = {"closed_on": monday.isoformat(), "reason": "Boiler repair"}
    preview = api.post(
        f"/api/v1/centers/{clinic.center.id}/closures/preview", json=body, headers=headers
    )
    assert preview.status_code == 200, preview.json
    assert preview.json["counts"] == {
        "moved": 1,
        "waiting": 0,
        "cancelled": 0,
        "booked": 0,
        "dose": 0,
    }
    [cycle] = preview.json["changes"]
    assert [slot["day"] for slot in cycle["before"]] == [
        monday.isoformat(),
        (monday + dt.timedelta(days=1)).isoformat(),
    ]
    assert cycle["after"][0]["day"] == (monday + dt.timedelta(days=1)).isoformat()
    assert count_rows(db_session, Closure) == 0
    stale = api.post(
        f"/api/v1/centers/{clinic.center.id}/closures",
        json=body | {"fingerprint": "0" * 32},
        headers=headers,
    )
    assert stale.status_code == 409
    assert stale.json["error"]["field"] == "fingerprint"
    assert stale.json["error"]["preview"]["fingerprint"] == preview.json["fingerprint"]
    assert count_rows(db_session, Closure) == 0
    made = api.post(
        f"/api/v1/centers/{clinic.center.id}/closures",
        json=body | {"fingerprint": preview.json["fingerprint"]},
        headers=headers,
    )
    assert made.status_code == 201 and made.json["replan"]["patients"] == 1
