"""Tried as a physician would on the demo: a patient's course in one picture, their
stewardship ledger, the clinic's ledger and the rule outcomes. Every page passes axe-core."""

from __future__ import annotations

import pytest

from tests.browser.test_clinic_setup_flow import accessible
from tests.browser.test_regimen_flow import log_in

pytestmark = pytest.mark.browser


def test_a_physician_reads_the_course_the_ledger_and_the_rule_outcomes(
    browser, live_server
) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 768}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, live_server, "physician")
    page.get_by_role("link", name="Patients").first.click()
    page.get_by_role("link", name="Brown, Alex").click()
    page.get_by_test_id("timeline-link").click()
    chart = page.get_by_role("img", name="Course of Brown, Alex")
    chart.wait_for()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 600  # drawn across the page
    assert page.locator('[data-marker="infusion"]').count() >= 2  # the demo's given days
    assert page.locator('[data-series="ivig"]').count() >= 1
    accessible(page, "timeline")

    page.get_by_role("link", name="← Patient").click()
    page.get_by_test_id("stewardship-link").click()
    page.get_by_test_id("ledger-summary").wait_for()
    assert page.get_by_test_id("ledger-grams_given").inner_text().endswith(" g")
    accessible(page, "patient ledger")

    page.get_by_role("link", name="Stewardship").first.click()
    page.get_by_test_id("ledger-filter").wait_for()
    accessible(page, "clinic ledger")

    page.goto(live_server + "/reports/rules")
    page.get_by_role("heading").first.wait_for()
    assert (
        page.get_by_test_id("rule-outcomes").count()
        + page.get_by_test_id("rule-outcomes-none").count()
        == 1
    )
    accessible(page, "rule outcomes")
    context.close()
