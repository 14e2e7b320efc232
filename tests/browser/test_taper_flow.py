"""Tried as a new user would: the demo physician approves a due taper step."""

import pytest

from app.services.demo import DEMO_LOGINS
from tests.browser.test_regimen_flow import log_in

pytestmark = pytest.mark.browser
assert DEMO_LOGINS


def test_physician_approves_a_due_step_and_the_patient_page_shows_the_new_dose(page, live_server):
    log_in(page, live_server, "physician")
    page.get_by_role("link", name="Approvals").click()
    card = page.get_by_test_id("due-step").filter(has_text="Lindqvist, Eva")
    card.wait_for()
    assert "50 mg prednisone" in card.inner_text()
    assert "1 × 50 mg" in card.inner_text()
    card.get_by_role("button", name="Approve").click()
    page.get_by_text("Approved: 50 mg/day from today.").wait_for()
    assert page.get_by_test_id("due-step").filter(has_text="Lindqvist, Eva").count() == 0
    page.get_by_role("link", name="Patients", exact=True).click()
    page.get_by_role("link", name="Lindqvist, Eva").click()
    dose = page.get_by_test_id("current-dose").inner_text()
    assert "50 mg prednisone" in dose and "1 × 50 mg" in dose
    assert "40 mg/day" in page.get_by_test_id("next-step").inner_text()


def test_a_nurse_sees_the_dose_but_cannot_approve(page, live_server):
    log_in(page, live_server, "nurse")
    assert page.get_by_role("link", name="Approvals").count() == 0
    page.goto(live_server + "/approvals")
    assert "role does not allow" in page.get_by_test_id("error-message").inner_text()
    page.goto(live_server + "/patients")
    page.get_by_role("link", name="Lindqvist, Eva").click()
    assert "mg prednisone" in page.get_by_test_id("current-dose").inner_text()
    assert page.get_by_test_id("taper-form").count() == 0
