"""Tried as a clinic lead (a physician) would on the demo: the clinic reports show every
response status the demo's courses reach, the figures beside the published cohorts, a filter
that narrows them, and a CSV saying the same; the page passes axe-core."""

from __future__ import annotations

import csv
import io

import pytest

from tests.browser.test_clinic_setup_flow import accessible
from tests.browser.test_regimen_flow import log_in

pytestmark = pytest.mark.browser


def figure(page, name: str) -> str:
    return page.locator(f'[data-figure="{name}"]').inner_text().strip()


def test_a_physician_reads_the_clinic_reports_on_the_demo(browser, live_server) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, live_server, "physician")
    page.get_by_role("link", name="Clinic reports").first.click()
    page.get_by_role("heading", name="Clinic reports").wait_for()
    # The demo's courses: Moreau in remission, Brown a responder, Silva stopped after a
    # thrombosis, Berg no response after 20 weeks, Achebe six weeks in.
    for status in ("responder", "non_responder", "in_review", "remission", "stopped"):
        assert figure(page, f"response_status|{status}|patients") == "1", status
    assert figure(page, "response_status|all|patients") == "5"
    assert figure(page, "shares|stopped_for_adverse_events|patients") == "1"
    references = page.get_by_test_id("clinic-shares").inner_text()
    assert "80.0" in references and "14.3" in references and "78.7" in references
    assert "1.82" in page.get_by_test_id("clinic-time-to-response").inner_text()
    assert page.get_by_test_id("clinic-grams").locator("tbody tr").count() >= 10  # months
    assert figure(page, "adverse_events|thrombosis|grade_3") == "1"
    assert page.get_by_test_id("clinic-steroid-bands").is_visible()
    accessible(page, "clinic reports")

    # One center: Hilltop's four courses with history, not Riverside's responder.
    page.get_by_label("Center").select_option(label="Hilltop Infusion Suite")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/reports/clinic?*center=*")
    assert figure(page, "response_status|all|patients") == "4"
    assert figure(page, "response_status|responder|patients") == "0"
    shown = {
        name: page.locator(f'[data-figure="{name}"]').inner_text().strip()
        for name in page.locator("[data-figure]").evaluate_all(
            "cells => cells.map(c => c.dataset.figure)"
        )
    }
    href = page.get_by_test_id("clinic-csv").get_attribute("href")
    download = page.request.get(live_server + href)
    assert download.ok and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text())))
    assert {"|".join(row[:3]): row[3] for row in rows[1:]} == shown
    accessible(page, "clinic reports, one center")
    context.close()
