"""The visit at the chair on a tablet, in Chromium against a live server: check-in, the check,
premedication, four rate steps with vitals, a grade-1 reaction with slowing, completion with
two lots; the recall search then finds the patient by either lot. Every page passes axe-core.

The clock is frozen at the end of the infusion day, so every time the nurse types is in the
past and nothing times out while the test runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app import clock
from app.models import Infusion
from app.services import regimens as regimen_service
from app.services import users as user_service
from app.services.context import system_actor
from tests.browser.conftest import serve
from tests.browser.test_clinic_setup_flow import accessible, shoot
from tests.db.clinic_fixtures import Clinic, at, make_center, make_patient, regimen_input

NURSE = ("nurse.ola@clinic.test", "nurse-password-9")
MONDAY = dt.date(2026, 10, 5)
NEW_YORK = ZoneInfo("America/New_York")
BOOKED: dict[str, object] = {}


@pytest.fixture(scope="module")
def visit_server(databases) -> Iterator[str]:
    def booked_patient(session, settings) -> None:
        center = make_center(session, name="Harbour Infusion Unit")
        nurse = user_service.create_user(
            session,
            system_actor("cli"),
            email=NURSE[0],
            full_name="Ola Nurse",
            role="nurse",
            password=NURSE[1],
            settings=settings.auth,
        )
        physician = user_service.create_user(
            session,
            system_actor("cli"),
            email="dr.b@clinic.test",
            full_name="Dr B",
            role="physician",
            password="physician-pass-9",
            settings=settings.auth,
        )
        clinic = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
        clinic.patient = make_patient(session, clinic.nursing, center, settings, mrn="H-0042")
        regimen_service.set_regimen(
            session,
            clinic.doctor,
            clinic.patient.id,
            regimen_input(starts_on=MONDAY),
            settings,
            now=at(MONDAY - dt.timedelta(days=7)),
        )
        first = session.scalars(sa.select(Infusion).order_by(Infusion.planned_date)).first()
        BOOKED.update(id=first.id, starts_at=first.starts_at, vials=first.planned_vials)

    yield from serve(databases, booked_patient)


@pytest.fixture
def tablet(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 768, "height": 1024}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
    clock.set_now(None)


def wall(minutes: int) -> str:
    """The booked start plus some minutes, as a datetime-local field takes it."""
    moment = BOOKED["starts_at"] + dt.timedelta(minutes=minutes)  # type: ignore[operator]
    return moment.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M")


def test_a_visit_from_check_in_to_recall_on_a_tablet(tablet, visit_server, tmp_path):
    page = tablet
    clock.set_now(BOOKED["starts_at"] + dt.timedelta(hours=5))  # type: ignore[operator]
    page.goto(visit_server + "/login")
    page.get_by_label("Email").fill(NURSE[0])
    page.get_by_label("Password").fill(NURSE[1])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Today").wait_for()
    page.goto(visit_server + f"/infusions/{BOOKED['id']}/visit")
    assert "MRN H-0042" in page.get_by_test_id("second-id").inner_text()
    accessible(page, "visit, booked")

    checkin = page.get_by_test_id("check-in-form")
    checkin.get_by_label("Arrived at").fill(wall(-20))
    checkin.get_by_role("button", name="Check in").click()
    page.locator(".flash.success", has_text="Checked in.").wait_for()

    check = page.get_by_test_id("check-form")
    check.get_by_label("Today's weight (kg)").fill("100")
    check.get_by_label("Taken at").fill(wall(-15))
    check.get_by_label("Systolic (mmHg)").fill("124")
    check.get_by_label("Diastolic (mmHg)").fill("78")
    check.get_by_label("Pulse (/min)").fill("72")
    check.get_by_label("Temperature (°C)").fill("36.8")
    check.get_by_role("button", name="Record check").click()
    page.locator(".flash.success", has_text="Check recorded.").wait_for()

    premed = page.get_by_test_id("premedication-form")
    premed.get_by_label("Medication").select_option("Paracetamol (acetaminophen)")
    premed.get_by_label("Dose", exact=False).fill("1000")
    premed.get_by_label("Given at").fill(wall(-10))
    premed.get_by_role("button", name="Record premedication").click()
    page.locator(".flash.success", has_text="Premedication recorded.").wait_for()
    accessible(page, "visit, checked in")

    start = page.get_by_test_id("start-form")
    start.get_by_label("Started at").fill(wall(0))
    start.get_by_role("button", name="Start infusion").click()
    page.locator(".flash.success", has_text="Infusion started.").wait_for()

    rows = page.get_by_test_id("rate-plan").locator("tbody tr")
    assert rows.count() >= 4
    rates = [rows.nth(n).locator("td").nth(3).inner_text() for n in range(4)]
    for number, rate in enumerate(rates):
        step = page.get_by_test_id("rate-step-form")
        step.get_by_label("From").fill(wall(30 * number))
        step.get_by_label("Rate (mL/h)").fill(rate)
        step.get_by_label("Pulse (/min)").fill(str(70 + number))
        step.get_by_label("Systolic (mmHg)").fill("120")
        step.get_by_label("Diastolic (mmHg)").fill("80")
        step.get_by_role("button", name="Record rate step").click()
        page.locator(".flash.success", has_text="Rate step recorded.").wait_for()
    accessible(page, "visit, in chair")
    shoot(page, "visit-in-chair", tmp_path)

    reaction = page.get_by_test_id("reaction-form")
    reaction.get_by_label("Type").select_option("headache")
    reaction.get_by_label("CTCAE grade").select_option("1")
    reaction.get_by_label("Action taken").select_option("slowed")
    reaction.get_by_label("Slowed to (mL/h)").fill(rates[1])
    reaction.get_by_label("Outcome").select_option("resolved")
    reaction.get_by_label("At", exact=True).fill(wall(100))
    reaction.get_by_role("button", name="Record reaction").click()
    page.locator(".flash.success", has_text="Reaction recorded.").wait_for()
    steps = page.get_by_test_id("rate-steps").inner_text()
    assert "slowed" in steps and "after headache (grade 1)" in steps

    complete = page.get_by_test_id("complete-form")
    complete.get_by_label("Ended at").fill(wall(240))
    lots = ["hb-2207 a", "HB-3310"]
    for row, (size, count) in enumerate(BOOKED["vials"]):  # type: ignore[arg-type]
        complete.get_by_label(f"Row {row + 1}: lot number").fill(lots[min(row, 1)])
        complete.get_by_label(f"Row {row + 1}: expiry").fill("2027-03-31")
        complete.get_by_label(f"Row {row + 1}: vial size").select_option(f"{size:g}")
        complete.get_by_label(f"Row {row + 1}: vials").fill(str(int(count)))
    complete.get_by_role("button", name="Record end of infusion").click()
    page.locator(".flash.success", has_text="the visit is complete").wait_for()
    given = page.get_by_test_id("vials-given").inner_text()
    assert "lot HB-2207A" in given and "lot HB-3310" in given
    accessible(page, "visit, completed")
    page.get_by_role("link", name="Printable record").click()
    record = page.get_by_test_id("visit-record").inner_text()
    assert "HB-2207A" in record and "headache, grade 1, slowed, resolved" in record
    accessible(page, "visit record")

    for typed in ("hb-2207 a", "HB-3310"):
        page.goto(visit_server + "/recalls")
        page.get_by_label("Lot number").fill(typed)
        page.get_by_label("Lot number").press("Enter")
        page.wait_for_load_state()
        assert "H-0042" in page.locator("main").inner_text(), page.locator("main").inner_text()
        accessible(page, f"recall of {typed}")
