"""Tried as a new user would: the demo nurse creates a feed and its URL serves a calendar."""

import urllib.request

import icalendar
import pytest

from tests.browser.test_regimen_flow import log_in

pytestmark = pytest.mark.browser


def test_nurse_creates_a_center_feed_and_the_url_serves_a_valid_calendar(page, live_server):
    log_in(page, live_server, "nurse")
    page.get_by_role("link", name="Calendar feeds").click()
    form = page.get_by_test_id("feed-form")
    form.locator("select[name=scope]").select_option("center")
    form.locator("select[name=center_id]").select_option(label="Riverside Infusion Center")
    form.get_by_role("button", name="Create feed").click()
    url = page.get_by_test_id("feed-url").input_value()
    assert url.startswith(live_server + "/feeds/") and url.endswith(".ics") and len(url) < 256
    assert page.get_by_role("img", name="QR code of the feed address").count() == 1
    assert page.get_by_test_id("feed-row").count() == 1
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback test server)
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        calendar = icalendar.Calendar.from_ical(response.read())
    assert str(calendar["X-WR-CALNAME"]).startswith("Riverside Infusion Center")
    assert str(calendar["METHOD"]) == "PUBLISH"
    page.goto(live_server + "/account/feeds")
    assert "never" not in page.get_by_test_id("feed-row").inner_text()  # last fetch is shown
