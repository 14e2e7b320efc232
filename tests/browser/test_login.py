"""Tried as a new user would: the demo nurse logs in from the login page."""

import pytest

from app.services.demo import DEMO_LOGINS

pytestmark = pytest.mark.browser
NURSE = next(login for login in DEMO_LOGINS if login.role == "nurse")


def test_demo_nurse_logs_in_and_sees_today(page, live_server):
    page.goto(live_server + "/")
    assert "/login" in page.url
    page.get_by_label("Email").fill(NURSE.email)
    page.get_by_label("Password").fill(NURSE.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Today").wait_for()
    assert page.get_by_test_id("who").inner_text().endswith("nurse")
    assert page.get_by_test_id("center-today").count() == 2  # the day at each center
    assert page.get_by_role("link", name="Audit trail").count() == 0
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()


def test_wrong_password_shows_a_clear_message(page, live_server):
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill(NURSE.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    error = page.get_by_test_id("login-error")
    error.wait_for()
    assert error.inner_text() == "Wrong email or password."
    assert page.get_by_label("Email").input_value() == NURSE.email


def test_tablet_layout_keeps_navigation_reachable(page, live_server):
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill(NURSE.email)
    page.get_by_label("Password").fill(NURSE.password)
    page.get_by_role("button", name="Log in").click()
    patients = page.get_by_role("link", name="Patients")
    patients.click()
    page.get_by_role("heading", name="Patients").wait_for()
    assert page.get_by_role("cell", name="DEMO-0001").count() == 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, "the page scrolls sideways on a tablet"
