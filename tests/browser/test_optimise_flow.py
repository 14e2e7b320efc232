"""Tried as the scheduling nurse would: on the demo's busy Monday six patients start at 09:00
with two nurses on shift. She optimises the next four weeks, reads the figures side by side,
accepts, and the week board shows the starts spread. The pages pass axe-core."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from app.config import Settings
from app.services import demo
from tests.browser.conftest import serve
from tests.browser.test_clinic_setup_flow import accessible
from tests.browser.test_regimen_flow import log_in

pytestmark = pytest.mark.browser


def _quick(settings: Settings) -> Settings:
    """A few seconds of search: the demo center is small, the proposal is found at once."""
    optimiser = settings.optimiser.model_copy(update={"time_limit_seconds": 4.0, "workers": 1})
    return settings.model_copy(update={"optimiser": optimiser})


@pytest.fixture(scope="module")
def demo_server(databases) -> Iterator[str]:
    yield from serve(databases, demo.load_demo_data, _quick)


def figure(page, key: str) -> tuple[str, str]:
    row = page.locator(f'[data-testid="figure"][data-key="{key}"]')
    return (
        row.get_by_test_id("current").inner_text().strip(),
        row.get_by_test_id("proposed").inner_text().strip(),
    )


def test_the_nurse_optimises_the_busy_monday_and_accepts(browser, demo_server) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 768}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    log_in(page, demo_server, "nurse")
    page.get_by_role("link", name="Riverside Infusion Center").first.click()
    page.get_by_role("link", name="Optimise", exact=True).click()
    page.get_by_role("heading", name=re.compile("Optimise the next 4 weeks")).wait_for()
    accessible(page, "optimise page")
    page.get_by_role("button", name="Optimise the next 4 weeks").click()
    page.get_by_test_id("figures").wait_for()
    assert page.get_by_test_id("proposal-state").inner_text().startswith("Proposed")
    # Six setups at once for two nurses as booked; never more than the nurses proposed.
    assert figure(page, "peak_setups") == ("6", "2 better")
    assert figure(page, "days_setups_over_nurses") == ("2", "0 better")
    assert figure(page, "days_unbooked") == ("0", "0")
    assert figure(page, "cycles_on_one_chair") == ("100%", "100%")
    moves = page.get_by_test_id("move")
    count = moves.count()
    assert count >= 4
    assert "Mon" in moves.first.inner_text()
    accessible(page, "proposal page")
    page.get_by_role("button", name=f"Accept: move {count} infusion days").click()
    page.get_by_text(f"Accepted: {count} infusion days moved.").wait_for()
    assert page.get_by_test_id("proposal-state").inner_text().startswith("Accepted")
    assert page.get_by_test_id("accept").count() == 0

    # The busy Monday on the week board: two patients at 09:00 at most, one per nurse.
    monday = demo.busy_monday()
    week = page.get_by_role("link", name="Week").get_attribute("href")
    assert week is not None
    page.goto(demo_server + re.sub(r"date=[\d-]+", f"date={monday.isoformat()}", week))
    day = page.locator("section.card").filter(
        has=page.get_by_role("heading", name=monday.strftime("%a %d %b"))
    )
    listed = day.locator("li").all_inner_texts()
    assert sum(" Chair " in line for line in listed) >= 6, listed
    at_nine = [line for line in listed if line.startswith("09:00")]
    assert 1 <= len(at_nine) <= 2, listed
    context.close()
