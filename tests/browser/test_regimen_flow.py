"""Tried as a new user would: the demo physician sets a regimen, the demo nurse gives it."""

import datetime as dt
import re

import pytest

from app import clock
from app.services.demo import DEMO_LOGINS

pytestmark = pytest.mark.browser
LOGINS = {login.role: login for login in DEMO_LOGINS}


def log_in(page, live_server: str, role: str) -> None:
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill(LOGINS[role].email)
    page.get_by_label("Password").fill(LOGINS[role].password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Today").wait_for()


def test_physician_sets_a_regimen_and_the_nurse_records_it_given(page, live_server):
    log_in(page, live_server, "physician")
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Okafor, James").click()
    page.get_by_role("heading", name="Okafor, James").wait_for()
    form = page.get_by_test_id("regimen-form")
    form.get_by_label("Product").select_option("Octagam 10%")
    form.get_by_label("Dose (g/kg per cycle)").fill("2")
    form.get_by_label("Days per cycle").fill("2")
    form.get_by_label("Interval (weeks)").fill("4")
    form.get_by_label("Weight basis").select_option("adjusted")
    form.get_by_label("Start time").fill("09:00")
    form.get_by_label("Reason", exact=True).fill("Refractory cutaneous DM after MTX")
    form.get_by_role("button", name="Preview regimen").click()
    preview = page.get_by_test_id("regimen-preview")
    assert "82 g = 30 g × 2 + 20 g + 2 g, 295 min" in preview.inner_text()
    preview.get_by_role("button", name="Confirm regimen").click()
    page.get_by_text(re.compile(r"Regimen version 1 set: \d+ infusions booked")).wait_for()
    regimen = page.get_by_test_id("current-regimen").inner_text()
    assert "Octagam 10%" in regimen and "82 g a day" in regimen and "82.28 kg" in regimen
    rows = page.get_by_test_id("upcoming").get_by_test_id("infusion-row")
    assert rows.count() > 10
    first_date_link = page.get_by_test_id("upcoming").get_by_role("link", name="scheduled").first
    first_date_link.click()
    day_board_href = page.get_by_role("link", name="Day board").get_attribute("href")
    page.get_by_role("button", name="Log out").click()

    # The nurse records it when it has run: the app's clock moves to the night after that day.
    day = dt.date.fromisoformat(re.search(r"date=(\d{4}-\d{2}-\d{2})", day_board_href)[1])
    clock.set_now(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(4), tzinfo=dt.UTC))
    log_in(page, live_server, "nurse")
    page.goto(live_server + day_board_href)
    slot = page.get_by_test_id("board-infusion").filter(has_text="Okafor, James").first
    slot.wait_for()
    assert "82 g = 30 g \u00d7 2 + 20 g + 2 g" in slot.inner_text()
    slot.click()
    given = page.get_by_test_id("given-form")
    given.get_by_label("Lot number(s)").fill("OCT-2026-117")
    given.get_by_label("Highest rate (mL/kg/min)").fill("0.04")
    given.get_by_role("button", name="Record given").click()
    page.get_by_text("Saved.").wait_for()
    assert page.get_by_test_id("infusion-status").inner_text() == "given"
    page.get_by_role("link", name="Day board").click()
    slot = page.get_by_test_id("board-infusion").filter(has_text="Okafor, James").first
    assert "given" in slot.inner_text()


def test_nurse_does_not_see_the_regimen_form(page, live_server):
    log_in(page, live_server, "nurse")
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Garcia, Maria").click()
    page.get_by_role("heading", name="Garcia, Maria").wait_for()
    assert page.get_by_test_id("regimen-form").count() == 0
    assert page.get_by_role("button", name="Record weight").count() == 1
