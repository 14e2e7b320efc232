"""Closing a center for a day, as the admin and the nurse see it: a preview first, exactly that
when confirmed, and boards that say the center is closed and why."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Chair, Closure, Infusion, InfusionStatus
from app.services import regimens as regimen_service
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import (
    NEW_YORK,
    Clinic,
    at,
    make_center,
    make_patient,
    regimen_input,
)
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
    assert f"Test Center closed on {monday:%a %d %b %Y}: Staff training" in page


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
    listed = f"<td>{monday:%a %d %b %Y}</td><td>whole center</td><td>Staff training</td>"
    assert listed in text_of(admin.get(f"/admin/centers/{clinic.center.id}"))


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


# --- a chair, a range of days, part of a day ----------------------------------------------------


def booked_rows(db_session, patient_id: int) -> list[Infusion]:
    db_session.expire_all()
    return list(
        db_session.scalars(
            sa.select(Infusion)
            .where(Infusion.patient_id == patient_id, Infusion.status != InfusionStatus.CANCELLED)
            .order_by(Infusion.planned_date)
        )
    )


def close(app, clinic, headers, **body):
    return app.test_client().post(
        f"/api/v1/centers/{clinic.center.id}/closures",
        json={"reason": "Maintenance"} | body,
        headers=headers,
    )


def test_closing_one_chair_moves_its_bookings_to_another_chair_the_same_day(
    app, clinic, db_session, settings, make_user, bearer
):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    first = booked_rows(db_session, clinic.patient.id)[0]
    chair, starts = first.chair_id, first.starts_at
    made = close(
        app,
        clinic,
        bearer(make_user("admin")),
        closed_on=monday.isoformat(),
        chair_id=chair,
        reason="Recliner motor broken",
    )
    assert made.status_code == 201, made.json
    assert made.json["chair_id"] == chair and made.json["closed_until"] == monday.isoformat()
    moved = booked_rows(db_session, clinic.patient.id)[0]
    # The center is open: the day stays, at the same time, on another chair.
    assert moved.planned_date == monday and moved.starts_at == starts
    assert moved.chair_id != chair and moved.status == InfusionStatus.SCHEDULED
    chair_name = db_session.get(Chair, chair).name
    assert moved.status_reason.startswith(f"{chair_name} closed on {monday:%a %d %b %Y}")
    board = text_of(
        logged_in(app, clinic.nurse).get(f"/centers/{clinic.center.id}/day?date={monday}")
    )
    assert "open 08:00–18:00" in board
    assert f"{chair_name} closed all day: Recliner motor broken" in board
    # A nurse cannot move a booking back onto the closed chair.
    back = app.test_client().post(
        f"/api/v1/infusions/{moved.id}/reschedule",
        json={
            "chair_id": chair,
            "starts_at": starts.isoformat(),
            "version": moved.version,
        },
        headers=bearer(clinic.nurse),
    )
    assert back.status_code == 409, back.json
    assert back.json["error"]["field"] == "chair_id"
    assert "closed at that time (Recliner motor broken)" in back.json["error"]["message"]


def test_closing_part_of_a_day_moves_bookings_to_the_open_hours_or_the_queue(
    app, clinic, db_session, settings, make_user, bearer
):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    headers = bearer(make_user("admin"))
    minutes = booked_rows(db_session, clinic.patient.id)[0].planned_minutes
    # The morning closes: the infusion booked at 09:00 starts at or after 12:00 the same day.
    made = close(
        app,
        clinic,
        headers,
        closed_on=monday.isoformat(),
        from_time="08:00",
        until_time="12:00",
        reason="Fire drill",
    )
    assert made.status_code == 201, made.json
    moved = booked_rows(db_session, clinic.patient.id)[0]
    local = moved.starts_at.astimezone(NEW_YORK)
    assert moved.planned_date == monday and local.time() >= dt.time(12)
    day = (
        app.test_client()
        .get(f"/api/v1/centers/{clinic.center.id}/day/{monday}", headers=bearer(clinic.nurse))
        .json
    )
    assert day["part_closures"] == ["Every chair closed 08:00-12:00: Fire drill"]
    # An afternoon too short for the infusion: no day of the cycle stays on Tuesday (the cycle,
    # not begun, moves as a whole within its window), and each moved day says why.
    tuesday = monday + dt.timedelta(days=1)
    latest = (dt.datetime.combine(tuesday, dt.time(18)) - dt.timedelta(minutes=minutes - 30)).time()
    made = close(
        app,
        clinic,
        headers,
        closed_on=tuesday.isoformat(),
        from_time="08:00",
        until_time=latest.strftime("%H:%M"),
        reason="Inspection",
    )
    assert made.status_code == 201, made.json
    cycle = [r for r in booked_rows(db_session, clinic.patient.id) if r.cycle_number == 1]
    assert tuesday not in [r.planned_date for r in cycle if r.status == InfusionStatus.SCHEDULED]
    assert all("Inspection" in (r.status_reason or "") for r in cycle)


def test_a_range_of_closed_days_moves_the_cycle_past_it(
    app, clinic, db_session, settings, make_user, bearer
):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    wednesday = monday + dt.timedelta(days=2)
    made = close(
        app,
        clinic,
        bearer(make_user("admin")),
        closed_on=monday.isoformat(),
        closed_until=wednesday.isoformat(),
        reason="Renovation",
    )
    assert made.status_code == 201, made.json
    first_cycle = [r for r in booked_rows(db_session, clinic.patient.id) if r.cycle_number == 1]
    assert all(r.planned_date > wednesday for r in first_cycle)
    week = text_of(
        logged_in(app, clinic.nurse).get(f"/centers/{clinic.center.id}/week?date={monday}")
    )
    assert week.count("Closed: Renovation") == 3
    listed = (
        app.test_client()
        .get(f"/api/v1/centers/{clinic.center.id}/closures", headers=bearer(clinic.nurse))
        .json["closures"]
    )
    assert [(c["closed_on"], c["closed_until"], c["chair_id"]) for c in listed] == [
        (monday.isoformat(), wednesday.isoformat(), None)
    ]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"closed_until": -1}, 422, "closed_until", "before the first"),
        ({"closed_until": 400}, 422, "closed_until", "at most 366 days"),
        ({"from_time": "09:00"}, 422, "until_time", "give both times"),
        ({"from_time": "13:00", "until_time": "12:00"}, 422, "until_time", "after 13:00"),
        ({"chair_id": 999999}, 404, "chair_id", "no chair 999999"),
    ],
)
def test_a_bad_closure_is_refused_naming_the_field_and_nothing_is_written(
    app, clinic, db_session, settings, make_user, bearer, body, status, field, words
):
    monday = next_monday()
    book(db_session, clinic, settings, monday)
    before = [(r.id, r.chair_id, r.starts_at) for r in booked_rows(db_session, clinic.patient.id)]
    if "closed_until" in body:
        body = body | {
            "closed_until": (monday + dt.timedelta(days=body["closed_until"])).isoformat()
        }
    headers = bearer(make_user("admin"))
    audits = count_rows(db_session, AuditEvent)
    refused = close(app, clinic, headers, closed_on=monday.isoformat(), **body)
    assert refused.status_code == status, refused.json
    assert refused.json["error"]["field"] == field
    assert words in refused.json["error"]["message"]
    assert count_rows(db_session, Closure) == 0
    assert count_rows(db_session, AuditEvent) == audits
    after = [(r.id, r.chair_id, r.starts_at) for r in booked_rows(db_session, clinic.patient.id)]
    assert after == before


def test_a_chair_of_another_center_or_a_closure_already_made_is_refused(
    app, clinic, db_session, settings, make_user, bearer
):
    other = make_center(db_session, name="Other Center")
    db_session.commit()
    headers = bearer(make_user("admin"))
    monday = next_monday()
    foreign = close(app, clinic, headers, closed_on=monday.isoformat(), chair_id=other.chairs[0].id)
    assert foreign.status_code == 404 and foreign.json["error"]["field"] == "chair_id"
    chair = clinic.center.chairs[0].id
    assert (
        close(
            app,
            clinic,
            headers,
            closed_on=monday.isoformat(),
            chair_id=chair,
            from_time="08:00",
            until_time="10:00",
        ).status_code
        == 201
    )
    again = close(
        app,
        clinic,
        headers,
        closed_on=monday.isoformat(),
        chair_id=chair,
        from_time="09:00",
        until_time="11:00",
    )
    assert again.status_code == 409 and again.json["error"]["field"] == "closed_on"
    assert "already closed then" in again.json["error"]["message"]
    # The afternoon of the same chair, and the whole center, are other closures.
    assert (
        close(
            app,
            clinic,
            headers,
            closed_on=monday.isoformat(),
            chair_id=chair,
            from_time="10:00",
            until_time="12:00",
        ).status_code
        == 201
    )
    assert close(app, clinic, headers, closed_on=monday.isoformat()).status_code == 201


def test_the_center_page_lists_closures_and_the_holidays_it_closes_on(
    app, clinic, db_session, settings, make_user
):
    clinic.center.holiday_country = "US"
    db_session.commit()
    admin = logged_in(app, make_user("admin"))
    monday = next_monday()
    page = admin.get(f"/admin/centers/{clinic.center.id}")
    html = text_of(page)
    assert "Public holidays in the next 12 months" in html and "Christmas Day" in html
    form = {
        "csrf_token": csrf_of(admin),
        "closed_on": monday.isoformat(),
        "closed_until": (monday + dt.timedelta(days=1)).isoformat(),
        "chair_id": str(clinic.center.chairs[1].id),
        "from_time": "13:00",
        "until_time": "15:00",
        "reason": "Deep clean",
    }
    preview = admin.post(f"/admin/centers/{clinic.center.id}/closures/preview", data=form)
    assert preview.status_code == 200
    text = text_of(preview)
    assert f"Close Chair 2: {monday:%a %d %b %Y} to " in text and "13:00-15:00" in text
    done = admin.post(f"/admin/centers/{clinic.center.id}/closures", data=confirm_form(text))
    assert done.status_code == 302
    listed = text_of(admin.get(f"/admin/centers/{clinic.center.id}"))
    assert "<td>Chair 2</td><td>Deep clean</td>" in listed
    # A refused closure shows the center page again with what was typed.
    bad = admin.post(
        f"/admin/centers/{clinic.center.id}/closures/preview",
        data=form | {"until_time": "12:00", "reason": "Typed"},
    )
    assert bad.status_code == 422
    assert 'value="Typed"' in text_of(bad) and "after 13:00" in text_of(bad)
