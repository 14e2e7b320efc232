"""Tried as a new user would: an assessment earns a suggestion the physician approves."""

import re

import pytest

from tests.browser.test_regimen_flow import log_in

pytestmark = pytest.mark.browser


def test_nurse_assesses_physician_approves_and_the_day_board_changes(page, live_server):
    log_in(page, live_server, "nurse")
    page.get_by_role("link", name="Patients", exact=True).click()
    page.get_by_role("link", name="Brown, Alex").click()
    page.get_by_text("Record an assessment").click()
    form = page.get_by_test_id("assessment-form")
    form.get_by_label("CDASI activity (0-100)").fill("29")
    form.get_by_role("button", name="Record assessment").click()
    page.get_by_text("Assessment recorded.").wait_for()
    # The next cycle not yet begun: its first day (cycle/day "N/1").
    upcoming = page.get_by_test_id("upcoming").locator('tr[data-day="1"].status-scheduled').first
    assert "82 g" in upcoming.inner_text()
    upcoming.get_by_role("link", name="scheduled").click()
    board_href = page.get_by_role("link", name="Day board").get_attribute("href")
    page.get_by_role("button", name="Log out").click()

    log_in(page, live_server, "physician")
    page.get_by_role("link", name="Suggestions").click()
    card = page.get_by_test_id("suggestion").filter(has_text="Brown, Alex")
    card.wait_for()
    assert re.search(r"2 → 1\.5 g/kg", card.inner_text())
    assert "40" in card.get_by_test_id("suggestion-detail").inner_text()  # the baseline, explained
    card.get_by_role("button", name="Approve…").click()
    preview = page.get_by_test_id("approval-preview")
    assert "62 g" in preview.get_by_test_id("new-grams").inner_text()
    assert "at a new dose on the same days" in preview.inner_text()
    preview.get_by_role("button", name="Approve and apply").click()
    page.get_by_text("Approved and applied.").wait_for()
    page.goto(live_server + board_href)
    slot = page.get_by_test_id("board-infusion").filter(has_text="Brown, Alex").first
    assert "62 g" in slot.inner_text()
