"""A staff account's home center (issue 12): an admin sets it on the users page or the API, and
a nurse's home page opens on that center's day, with every center a click away."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Center, Patient, User
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import NEW_YORK, Clinic, make_center, make_patient
from tests.web.test_care_pages import count_rows, logged_in, text_of
from tests.web.test_closures import book
from tests.web.test_taper_pages import plan_in_past

MONDAY = dt.date(2027, 3, 1)


@dataclass
class TwoCenters:
    clinic: Clinic
    #: A second center, with a patient of its own.
    other: Center
    other_patient: Patient


@pytest.fixture
def centers(db_session, make_user, settings) -> TwoCenters:
    main = make_center(db_session, "Main Street")
    other = make_center(db_session, "Harbor")
    physician, nurse = make_user("physician"), make_user("nurse")
    clinic = Clinic(center=main, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    clinic.patient = make_patient(db_session, clinic.nursing, main, settings, mrn="MAIN-1")
    other_patient = make_patient(db_session, clinic.nursing, other, settings, mrn="HARB-1")
    for patient in (clinic.patient, other_patient):
        patient.treating_physician_id = physician.id
    db_session.commit()
    return TwoCenters(clinic, other, other_patient)


def post(client, path: str, **fields: str):
    return client.post(path, data={"csrf_token": csrf_of(client), **fields})


def home_center_of(db_session, user_id: int) -> int | None:
    db_session.expire_all()
    return db_session.get(User, user_id).home_center_id


def home_center_events(db_session, user_id: int) -> list[tuple[dict, dict]]:
    rows = db_session.execute(
        sa.select(AuditEvent.before, AuditEvent.after)
        .where(AuditEvent.action == "user.home_center", AuditEvent.entity_id == str(user_id))
        .order_by(AuditEvent.id)
    )
    return [(before, after) for before, after in rows]


# --- setting it --------------------------------------------------------------------------------


def test_an_admin_sets_and_clears_a_home_center_on_the_users_page(
    app, centers, db_session, make_user
):
    nurse, main = centers.clinic.nurse, centers.clinic.center
    page = logged_in(app, make_user("admin"))
    listing = text_of(page.get("/admin/users"))
    assert f'action="/admin/users/{nurse.id}/home-center"' in listing
    assert f'<option value="{main.id}" >Main Street</option>' in listing
    assert '<option value="" selected>Every center</option>' in listing

    done = post(page, f"/admin/users/{nurse.id}/home-center", home_center_id=str(main.id))
    assert done.status_code == 302
    assert "home page opens on their home center" in text_of(page.get("/admin/users"))
    assert home_center_of(db_session, nurse.id) == main.id
    assert f'<option value="{main.id}" selected>Main Street</option>' in text_of(
        page.get("/admin/users")
    )

    cleared = post(page, f"/admin/users/{nurse.id}/home-center", home_center_id="")
    assert cleared.status_code == 302
    assert home_center_of(db_session, nurse.id) is None
    assert home_center_events(db_session, nurse.id) == [
        ({"home_center_id": None}, {"home_center_id": main.id}),
        ({"home_center_id": main.id}, {"home_center_id": None}),
    ]


def test_the_api_sets_and_clears_a_home_center(app, centers, db_session, make_user, bearer):
    nurse, other = centers.clinic.nurse, centers.other
    headers = bearer(make_user("admin"))
    api = app.test_client()
    path = f"/api/v1/users/{nurse.id}/home-center"
    put = api.put(path, json={"home_center_id": other.id}, headers=headers)
    assert put.status_code == 200 and put.json["home_center_id"] == other.id
    listed = api.get("/api/v1/users", headers=headers).json["users"]
    assert {u["id"]: u["home_center_id"] for u in listed}[nurse.id] == other.id
    again = api.put(path, json={"home_center_id": other.id}, headers=headers)
    assert again.status_code == 200  # no change, no second audit row
    cleared = api.put(path, json={"home_center_id": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.json["home_center_id"] is None
    assert home_center_of(db_session, nurse.id) is None
    assert home_center_events(db_session, nurse.id) == [
        ({"home_center_id": None}, {"home_center_id": other.id}),
        ({"home_center_id": other.id}, {"home_center_id": None}),
    ]
    missing = api.put(path, json={}, headers=headers)
    assert missing.status_code == 422 and missing.json["error"]["field"] == "home_center_id"


def test_an_unknown_center_is_refused_by_name_and_nothing_is_written(
    app, centers, db_session, make_user, bearer
):
    nurse, main = centers.clinic.nurse, centers.clinic.center
    admin = make_user("admin")
    headers = bearer(admin)
    page = logged_in(app, admin)
    before = count_rows(db_session, AuditEvent)

    api = app.test_client().put(
        f"/api/v1/users/{nurse.id}/home-center", json={"home_center_id": 999_999}, headers=headers
    )
    assert api.status_code == 404
    assert api.json["error"]["field"] == "home_center_id"
    assert "no center 999999" in api.json["error"]["message"]
    refused = post(page, f"/admin/users/{nurse.id}/home-center", home_center_id="999999")
    assert refused.status_code == 404
    assert "no center 999999" in text_of(refused)
    bad = post(page, f"/admin/users/{nurse.id}/home-center", home_center_id="Harbor")
    assert bad.status_code == 422 and "home_center_id" in text_of(bad)
    nobody = app.test_client().put(
        "/api/v1/users/999999/home-center", json={"home_center_id": main.id}, headers=headers
    )
    assert nobody.status_code == 404 and nobody.json["error"]["field"] == "user_id"

    assert home_center_of(db_session, nurse.id) is None
    assert count_rows(db_session, AuditEvent) == before


def test_a_new_user_may_start_at_a_home_center(app, centers, db_session, make_user, bearer):
    main = centers.clinic.center
    admin = make_user("admin")
    headers = bearer(admin)
    page = logged_in(app, admin)
    assert 'name="home_center_id"' in text_of(page.get("/admin/users"))
    form = {"full_name": "Nia", "email": "nia@test.clinic", "role": "nurse"}
    made = post(
        page, "/admin/users", **form, password="long-enough-pw", home_center_id=str(main.id)
    )
    assert made.status_code == 302
    nia = db_session.scalar(sa.select(User).where(User.email == "nia@test.clinic"))
    assert nia.home_center_id == main.id
    # One audit row: the account as created, at its home center.
    created_row = db_session.scalar(
        sa.select(AuditEvent.after).where(
            AuditEvent.action == "user.create", AuditEvent.entity_id == str(nia.id)
        )
    )
    assert created_row["home_center_id"] == main.id
    plain = post(
        page, "/admin/users", **form | {"email": "ola@test.clinic"}, password="pw-long-one"
    )
    assert plain.status_code == 302
    ola = db_session.scalar(sa.select(User).where(User.email == "ola@test.clinic"))
    assert ola.home_center_id is None

    api = app.test_client()
    body = {"email": "ama@test.clinic", "full_name": "Ama", "role": "nurse", "password": "x" * 12}
    created = api.post("/api/v1/users", json=body | {"home_center_id": main.id}, headers=headers)
    assert created.status_code == 201 and created.json["home_center_id"] == main.id

    users, events = count_rows(db_session, User), count_rows(db_session, AuditEvent)
    refused = api.post(
        "/api/v1/users",
        json=body | {"email": "kofi@test.clinic", "home_center_id": 999_999},
        headers=headers,
    )
    assert refused.status_code == 404 and refused.json["error"]["field"] == "home_center_id"
    on_page = post(
        page,
        "/admin/users",
        **form | {"email": "kofi@test.clinic"},
        password="long-enough-pw",
        home_center_id="999999",
    )
    assert on_page.status_code == 404
    assert "Home center</a>: no center 999999" in text_of(on_page)
    assert (count_rows(db_session, User), count_rows(db_session, AuditEvent)) == (users, events)
    assert db_session.scalar(sa.select(User.id).where(User.email == "kofi@test.clinic")) is None


# --- the nurse's home page ---------------------------------------------------------------------


def infusion_rows(page: str) -> list[str]:
    """The MRNs of today's infusions, in the order the page lists them."""
    return [
        part.split("MRN ", 1)[1].split("<", 1)[0]
        for part in page.split('data-testid="today-infusion"')[1:]
    ]


def center_headings(page: str) -> list[str]:
    return [
        part.split(">", 2)[2].split("</a>", 1)[0]
        for part in page.split('data-testid="center-today">')[1:]
    ]


@pytest.fixture
def booked(centers, db_session, settings, set_clock) -> TwoCenters:
    book(db_session, centers.clinic, settings, MONDAY)
    book(db_session, centers.clinic, settings, MONDAY, patient=centers.other_patient)
    set_clock(dt.datetime.combine(MONDAY, dt.time(7), tzinfo=NEW_YORK))
    return centers


def set_home(db_session, user: User, center: Center | None) -> None:
    user.home_center_id = center.id if center else None
    db_session.commit()


def test_a_nurse_with_a_home_center_sees_only_its_day_unless_she_asks_for_all(
    app, booked, db_session
):
    nurse = booked.clinic.nurse
    set_home(db_session, nurse, booked.clinic.center)
    browser = logged_in(app, nurse)
    home = text_of(browser.get("/"))
    assert center_headings(home) == ["Main Street"]
    assert infusion_rows(home) == ["MAIN-1"]
    assert "Your center, Main Street" in home and 'href="/?center=all"' in home

    everything = text_of(browser.get("/?center=all"))
    assert center_headings(everything) == ["Main Street", "Harbor"]  # the home center first
    assert infusion_rows(everything) == ["MAIN-1", "HARB-1"]
    assert "Only Main Street" in everything and 'href="/"' in everything


def test_a_nurse_without_a_home_center_sees_every_center(app, booked):
    for path in ("/", "/?center=all"):
        home = text_of(logged_in(app, booked.clinic.nurse).get(path))
        assert center_headings(home) == ["Harbor", "Main Street"], path
        assert sorted(infusion_rows(home)) == ["HARB-1", "MAIN-1"], path
        assert 'data-testid="center-choice"' not in home


def test_a_home_center_without_other_centers_offers_no_choice(app, db_session, make_user):
    only = make_center(db_session, "Solo")
    nurse = make_user("nurse")
    set_home(db_session, nurse, only)
    home = text_of(logged_in(app, nurse).get("/"))
    assert center_headings(home) == ["Solo"] and 'data-testid="center-choice"' not in home


def test_a_physicians_counts_ignore_the_home_center(app, centers, db_session, settings):
    plan_in_past(db_session, settings, centers.clinic, patient=centers.other_patient)
    physician = centers.clinic.physician
    set_home(db_session, physician, centers.clinic.center)
    home = text_of(logged_in(app, physician).get("/"))
    assert 'data-testid="due-count">1<' in home  # the step is at the other center
