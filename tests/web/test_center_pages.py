"""The admin pages that set up infusion centers, through the Flask test client: real login,
real CSRF tokens, and forms read back from the rendered HTML and sent as a browser would."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Center, Chair, Infusion, InfusionStatus, OpeningHours
from app.services import regimens as regimen_service
from tests.db.clinic_fixtures import NEW_YORK, Clinic, at, make_center, make_patient, regimen_input
from tests.web.test_care_pages import csrf_of, form_fields, logged_in, text_of
from tests.web.test_form_errors import seen

#: A Thursday before the first cycle (Monday 2026-10-05): the app's clock in booking tests.
NOW = at(dt.date(2026, 10, 1))


@pytest.fixture
def admin(make_user):
    return make_user("admin")


@pytest.fixture
def clinic(db_session, make_user, settings, set_clock) -> Clinic:
    """A New York center open Mon-Fri 08:00-18:00 with three chairs, and a patient, at NOW."""
    set_clock(NOW)
    center = make_center(db_session)
    holder = Clinic(center, make_user("physician"), make_user("nurse"), None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings)
    return holder


def book(db_session, clinic: Clinic, settings, **changes: object) -> None:
    regimen_service.set_regimen(
        db_session, clinic.doctor, clinic.patient.id, regimen_input(**changes), settings, now=NOW
    )


def upcoming(db_session, patient_id: int) -> list[Infusion]:
    """The patient's infusions from NOW on that are still planned (booked or waiting)."""
    db_session.expire_all()
    return list(
        db_session.scalars(
            sa.select(Infusion)
            .where(
                Infusion.patient_id == patient_id,
                Infusion.planned_date >= NOW.date(),
                Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
            )
            .order_by(Infusion.planned_date, Infusion.day_number)
        )
    )


def counts(db_session) -> list[int]:
    return [
        db_session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Center, Chair, OpeningHours, AuditEvent)
    ]


def audit_events(db_session, action: str) -> list[AuditEvent]:
    return list(
        db_session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def new_center_form(client) -> dict:
    page = client.get("/admin/centers/new")
    assert page.status_code == 200
    return form_fields(text_of(page), testid="center-form")


def two_day_center(fields: dict) -> dict:
    """Lakeside: open Monday 08:00-16:00 (3 nurses) and Wednesday 09:30-14:00 (2 nurses)."""
    for day in (1, 3, 4):
        fields.pop(f"open_{day}")
    return fields | {
        "name": "Lakeside Infusion",
        "address": "Fjordveien 1, Oslo",
        "timezone": "Europe/Oslo",
        "holiday_country": "NO",
        "opens_at_0": "08:00",
        "closes_at_0": "16:00",
        "nurses_0": "3",
        "opens_at_2": "09:30",
        "closes_at_2": "14:00",
        "nurses_2": "2",
        "chair_count": "3",
    }


# --- creating a center -----------------------------------------------------------------------


def listed(response) -> list[str]:
    """The problems listed above a refused form, in the words the user sees."""
    return [text for _link, text in seen(response).listed]


def test_admin_creates_a_center_with_its_week_and_chairs(app, db_session, admin):
    client = logged_in(app, admin)
    index = client.get("/admin/centers")
    assert index.status_code == 200
    assert ">Centers</a>" in text_of(index) and "No centers yet." in text_of(index)

    fields = new_center_form(client)
    assert fields["csrf_token"] == csrf_of(client)
    assert fields["timezone"] == "America/New_York"  # no center yet: the default zone
    assert fields["holiday_country"] == "" and fields["chair_count"] == "3"
    assert [fields.get(f"open_{day}") for day in range(7)] == ["on"] * 5 + [None, None]
    assert fields["opens_at_0"] == "08:00" and fields["closes_at_6"] == "18:00"

    response = client.post("/admin/centers/new", data=two_day_center(fields))
    assert response.status_code == 302, text_of(response)
    center = db_session.scalars(sa.select(Center).where(Center.name == "Lakeside Infusion")).one()
    assert response.headers["Location"].endswith(f"/admin/centers/{center.id}")

    page = text_of(client.get(response.headers["Location"]))
    assert "Created Lakeside Infusion with 3 chairs." in page
    assert (center.timezone, center.address) == ("Europe/Oslo", "Fjordveien 1, Oslo")
    assert (center.holiday_country, center.holiday_subdivision) == ("NO", None)
    assert [(h.weekday, h.opens_at, h.closes_at, h.nurses) for h in center.opening_hours] == [
        (0, dt.time(8), dt.time(16), 3),
        (2, dt.time(9, 30), dt.time(14), 2),
    ]
    assert [(c.name, c.kind, c.active) for c in center.chairs] == [
        (f"Chair {n}", "recliner", True) for n in (1, 2, 3)
    ]
    [event] = audit_events(db_session, "center.create")
    assert event.entity_id == str(center.id)
    assert [h["weekday"] for h in event.after["hours"]] == [0, 2]
    assert len(event.after["chairs"]) == 3

    # The edit page shows it as saved; the list shows its week; a next center takes its zone.
    edit = form_fields(page, testid="center-form")
    assert edit["opens_at_2"] == "09:30" and edit["nurses_0"] == "3"
    assert "open_1" not in edit and edit["holiday_country"] == "NO"
    assert page.count('data-testid="chair-row"') == 3
    listing = text_of(client.get("/admin/centers"))
    assert "Mon 08:00–16:00, 3 nurses" in listing and "Wed 09:30–14:00, 2 nurses" in listing
    assert f'href="/admin/centers/{center.id}"' in listing
    assert new_center_form(client)["timezone"] == "Europe/Oslo"


def test_a_bad_time_zone_is_refused_by_name_and_everything_typed_stays(app, db_session, admin):
    client = logged_in(app, admin)
    fields = two_day_center(new_center_form(client)) | {
        "timezone": "Mars/Olympus",
        "holiday_country": "US",
        "holiday_subdivision": "NY",
        "open_5": "on",
        "opens_at_5": "09:15",
        "closes_at_5": "12:45",
        "nurses_5": "4",
        "chair_count": "7",
    }
    before = counts(db_session)
    response = client.post("/admin/centers/new", data=fields)
    assert response.status_code == 422
    body = text_of(response)
    assert listed(response) == [
        "Time zone (IANA): 'Mars/Olympus' is not an IANA time zone (e.g. America/New_York)"
    ]
    assert seen(response).errors == {
        "timezone": "'Mars/Olympus' is not an IANA time zone (e.g. America/New_York)"
    }
    assert 'role="alert"' in body
    assert 'name="timezone" value="Mars/Olympus"' in body
    assert form_fields(body, testid="center-form") == fields
    assert counts(db_session) == before


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {"open_1": "on", "opens_at_1": "18:00", "closes_at_1": "08:00"},
            "Hours: Tuesday closes (08:00) before it opens (18:00)",
        ),
        (
            {"open_3": "on", "opens_at_3": "25:00", "closes_at_3": "12:00"},
            "Thursday: opens at: give a time as HH:MM (got '25:00')",
        ),
        ({"nurses_2": "0"}, "Wednesday: infusion nurses on shift: must be at least 1 (got 0)"),
        ({"closes_at_0": ""}, "Monday: closes at: required"),
        (
            {"chair_count": "lots"},
            "Chairs to create: give a whole number from 0 to 200 (got 'lots')",
        ),
        (
            {"holiday_country": "", "holiday_subdivision": "NY"},
            "Holiday subdivision (optional): set the holiday country first",
        ),
        ({"name": ""}, "Name: required"),
    ],
)
def test_a_center_that_cannot_work_is_refused_with_422_and_nothing_written(
    app, db_session, admin, changes, words
):
    client = logged_in(app, admin)
    fields = two_day_center(new_center_form(client)) | changes
    before = counts(db_session)
    response = client.post("/admin/centers/new", data=fields)
    assert response.status_code == 422
    body = text_of(response)
    assert words in listed(response)
    assert form_fields(body, testid="center-form") == fields
    assert counts(db_session) == before


def test_a_second_center_of_the_same_name_answers_409_and_keeps_the_form(
    app, db_session, admin, clinic
):
    client = logged_in(app, admin)
    fields = two_day_center(new_center_form(client)) | {"name": "test center"}
    assert fields["csrf_token"]
    response = client.post("/admin/centers/new", data=fields)
    assert response.status_code == 409
    assert listed(response) == ["Name: a center is already called 'test center'"]
    assert form_fields(text_of(response), testid="center-form")["name"] == "test center"


# --- editing a center: hours that no longer hold a booking re-book it ------------------------


def test_shorter_hours_on_the_center_page_rebook_what_no_longer_fits(
    app, db_session, admin, clinic, settings
):
    book(db_session, clinic, settings, preferred_time=dt.time(12, 30))  # 295 min: to 17:25
    before = upcoming(db_session, clinic.patient.id)
    assert before and max(i.ends_at.astimezone(NEW_YORK).time() for i in before) > dt.time(16)
    client = logged_in(app, admin)
    url = f"/admin/centers/{clinic.center.id}"

    # A change that touches no booking says so.
    fields = form_fields(text_of(client.get(url)), testid="center-form")
    assert [fields.get(f"closes_at_{day}") for day in range(5)] == ["18:00"] * 5
    assert "open_5" not in fields and fields["timezone"] == "America/New_York"
    response = client.post(url, data=fields | {"address": "1 Main St"})
    assert response.status_code == 302 and response.headers["Location"].endswith(url)
    assert "Saved. No bookings were affected." in text_of(client.get(url))

    fields = form_fields(text_of(client.get(url)), testid="center-form")
    assert fields["address"] == "1 Main St"
    fields |= {f"closes_at_{day}": "16:00" for day in range(5)}
    response = client.post(url, data=fields)
    assert response.status_code == 302, text_of(response)
    body = text_of(client.get(url))

    event = audit_events(db_session, "center.update")[-1]
    totals = event.after["replan"]
    assert event.before["hours"][0]["closes_at"] == "18:00:00"
    assert totals["patients"] == 1 and totals["moved"] + totals["unbooked"] > 0
    assert "Saved. 1 patient re-booked: " in body
    if totals["moved"] and not (totals["created"] or totals["cancelled"] or totals["unbooked"]):
        assert f"Saved. 1 patient re-booked: {totals['moved']} moved." in body
    if totals["moved"]:
        assert f"{totals['moved']} moved" in body
    if totals["unbooked"]:
        assert f"{totals['unbooked']} waiting for a chair" in body
    after = upcoming(db_session, clinic.patient.id)
    assert len(after) == len(before)
    for infusion in after:
        if infusion.status == InfusionStatus.SCHEDULED:
            assert infusion.ends_at.astimezone(NEW_YORK).time() <= dt.time(16)
        else:
            assert infusion.chair_id is None and infusion.starts_at is None
    assert {h.closes_at for h in clinic.center.opening_hours} == {dt.time(16)}


def test_changing_the_time_zone_while_booked_is_refused_and_the_form_kept(
    app, db_session, admin, clinic, settings
):
    book(db_session, clinic, settings)
    client = logged_in(app, admin)
    url = f"/admin/centers/{clinic.center.id}"
    fields = form_fields(text_of(client.get(url)), testid="center-form")
    fields |= {"timezone": "America/Chicago", "name": "Renamed Center"}
    before = counts(db_session)
    response = client.post(url, data=fields)
    assert response.status_code == 409
    body = text_of(response)
    assert any(
        text.startswith("Time zone (IANA): Test Center has infusions booked on its clock")
        for text in listed(response)
    )
    assert form_fields(body, testid="center-form") == fields
    assert counts(db_session) == before
    db_session.expire_all()
    assert (clinic.center.name, clinic.center.timezone) == ("Test Center", "America/New_York")


# --- chairs ----------------------------------------------------------------------------------


def test_retiring_a_chair_moves_its_bookings_off_it(app, db_session, admin, clinic, settings):
    book(db_session, clinic, settings)
    before = upcoming(db_session, clinic.patient.id)
    chair_id = before[0].chair_id
    assert chair_id is not None
    on_it = [i.id for i in before if i.chair_id == chair_id]
    chair = db_session.get(Chair, chair_id)
    client = logged_in(app, admin)
    url = f"/admin/centers/{clinic.center.id}"

    fields = form_fields(text_of(client.get(url)), testid=f"chair-form-{chair_id}")
    assert fields == {
        "csrf_token": csrf_of(client),
        "name": chair.name,
        "kind": "recliner",
        "notes": "",
        "active": "on",
    }
    del fields["active"]  # unticked: the browser leaves it out
    fields |= {"notes": "Recline motor broken", "kind": "chair"}
    response = client.post(f"{url}/chairs/{chair_id}", data=fields)
    assert response.status_code == 302, text_of(response)
    assert response.headers["Location"].endswith(f"{url}#chairs")
    body = text_of(client.get(url))

    db_session.expire_all()
    chair = db_session.get(Chair, chair_id)
    assert (chair.active, chair.kind, chair.notes) == (False, "chair", "Recline motor broken")
    after = upcoming(db_session, clinic.patient.id)
    assert len(after) == len(before)
    assert not [i for i in after if i.chair_id == chair_id]
    for infusion_id in on_it:  # each moved to another chair, or cancelled on this one
        row = db_session.get(Infusion, infusion_id)
        assert row.chair_id != chair_id or row.status == InfusionStatus.CANCELLED
    totals = audit_events(db_session, "chair.update")[-1].after["replan"]
    assert totals["patients"] == 1
    assert f"{chair.name} saved. 1 patient re-booked: " in body
    # The table says so, and the chair's form shows it retired.
    assert "retired" in body
    assert "active" not in form_fields(body, testid=f"chair-form-{chair_id}")


def test_adding_a_chair_and_a_taken_name_keeps_what_was_typed(app, db_session, admin, clinic):
    client = logged_in(app, admin)
    url = f"/admin/centers/{clinic.center.id}"
    fields = form_fields(text_of(client.get(url)), testid="add-chair-form")
    assert fields["active"] == "on" and fields["kind"] == "recliner"
    response = client.post(f"{url}/chairs", data=fields | {"name": "Bed A", "kind": "bed"})
    assert response.status_code == 302
    assert "Added Bed A." in text_of(client.get(url))
    db_session.expire_all()
    assert [(c.name, c.kind) for c in clinic.center.chairs][-1] == ("Bed A", "bed")
    assert len(audit_events(db_session, "chair.create")) == 1

    before = counts(db_session)
    typed = fields | {"name": "chair 2", "notes": "by the window"}
    response = client.post(f"{url}/chairs", data=typed)
    assert response.status_code == 409
    body = text_of(response)
    assert listed(response) == ["Name: Test Center already has a chair called 'Chair 2'"]
    assert form_fields(body, testid="add-chair-form") == typed
    assert counts(db_session) == before


def test_a_chair_of_another_center_is_not_found_here(app, db_session, admin, clinic):
    other = make_center(db_session, name="Other Center", chairs=1)
    client = logged_in(app, admin)
    chair_id = other.chairs[0].id
    response = client.post(
        f"/admin/centers/{clinic.center.id}/chairs/{chair_id}",
        data={"csrf_token": csrf_of(client), "name": "Taken", "kind": "bed"},
    )
    assert response.status_code == 404
    db_session.expire_all()
    assert db_session.get(Chair, chair_id).name == "Chair 1"


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["nurse", "physician"])
def test_nurses_and_physicians_get_403_on_the_center_pages(
    app, db_session, make_user, clinic, role
):
    client = logged_in(app, make_user(role))
    assert ">Centers</a>" not in text_of(client.get("/"))
    url = f"/admin/centers/{clinic.center.id}"
    chair_id = clinic.center.chairs[0].id
    for path in ("/admin/centers", "/admin/centers/new", url):
        assert client.get(path).status_code == 403, path
    before = counts(db_session)
    data = {"csrf_token": csrf_of(client), "name": "Mine", "timezone": "UTC", "chair_count": "1"}
    for path in ("/admin/centers/new", url, f"{url}/chairs", f"{url}/chairs/{chair_id}"):
        assert client.post(path, data=data).status_code == 403, path
    assert counts(db_session) == before
