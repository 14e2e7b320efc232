"""The day board on a tablet, in a real browser (issue 13): the grid with its gridlines and the
"now" line laid out under the app's Content-Security-Policy, each visit's state in words, and
no serious or critical axe-core violation, in landscape and portrait."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import clock
from app.models import InfusionStatus as S
from app.services import users as user_service
from app.services.context import system_actor
from tests.browser.conftest import serve
from tests.browser.test_clinic_setup_flow import accessible, shoot
from tests.db.clinic_fixtures import NEW_YORK, make_center
from tests.web.test_day_board_tablet import DAY, LABELS, visits

pytestmark = pytest.mark.browser

NURSE = ("tablet.nurse@clinic.test", "tablet-password-1")
CHAIRS = 12
#: The clock while the board is looked at: mid-morning of its day.
NOW = dt.datetime.combine(DAY, dt.time(10, 20), tzinfo=NEW_YORK)
#: One visit an hour a chair from 08:00: the first two hours done, the third under way.
STATES = (
    [S.GIVEN] * 8 + [S.PARTIAL, S.PARTIAL, S.MISSED, S.CANCELLED]
    + [S.GIVEN] * 10 + [S.PARTIAL, S.MISSED]
    + [S.IN_CHAIR] * 9 + [S.CHECKED_IN] * 3
    + [S.SCHEDULED] * 8 + [S.CHECKED_IN, S.UNBOOKED, S.UNBOOKED, S.UNBOOKED]
)  # fmt: skip


@pytest.fixture(scope="module")
def tablet_server(databases) -> Iterator[str]:
    """A live server with a 12-chair center's busy day and a nurse."""

    def busy_day(session, settings) -> None:
        with clock.frozen_at(NOW):  # nothing is recorded before it happened
            center = make_center(session, "Harbour Infusion Unit", chairs=CHAIRS)
            visits(session, center, len(STATES), STATES)
            user_service.create_user(
                session,
                system_actor("test"),
                email=NURSE[0],
                full_name="Tabitha Nurse",
                role="nurse",
                password=NURSE[1],
                settings=settings.auth,
            )
            session.commit()

    yield from serve(databases, busy_day)


def open_board(page, server: str) -> None:
    page.goto(server + "/login")
    page.get_by_label("Email").fill(NURSE[0])
    page.get_by_label("Password").fill(NURSE[1])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Today").wait_for()
    page.goto(server + f"/centers/1/day?date={DAY.isoformat()}")
    page.get_by_test_id("board").wait_for()


@pytest.mark.parametrize("viewport", [(1024, 768), (768, 1024)], ids=["landscape", "portrait"])
def test_the_board_is_laid_out_for_a_tablet_and_passes_axe(
    browser, tablet_server, set_clock, tmp_path: Path, viewport: tuple[int, int]
):
    set_clock(NOW)
    width, height = viewport
    # First as the app serves it, Content-Security-Policy and all: the layout is the nonce'd
    # style's, and nothing is refused.
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.clock.install()  # the page's timers, so the now line's minutes can be run on
    open_board(page, tablet_server)
    board = page.get_by_test_id("board")
    columns = board.evaluate("b => getComputedStyle(b).gridTemplateColumns.split(' ').length")
    assert columns == 1 + CHAIRS
    assert page.get_by_test_id("grid-chair").count() == CHAIRS
    assert page.get_by_test_id("grid-hour").count() == 10
    blocks = page.get_by_test_id("board-infusion")
    assert blocks.count() == len(STATES) - 4  # one cancelled, three waiting for a chair
    for status in (S.GIVEN, S.PARTIAL, S.MISSED, S.IN_CHAIR, S.CHECKED_IN, S.SCHEDULED):
        block = page.locator(f'[data-testid="board-infusion"][data-status="{status}"]').first
        assert block.get_by_test_id("state").inner_text() == LABELS[status]
    first = blocks.first.inner_text()
    assert "MRN " in first and "82 g = 30 g × 2 + 20 g + 2 g" in first
    queue = page.get_by_test_id("board-queue")
    assert queue.get_by_test_id("unbooked").count() == 3
    assert "3 days waiting at this center from today" in queue.inner_text()
    # The now line sits between the rows of 10:00 and 11:00, a third of the way down the hour.
    line = page.get_by_test_id("now-line")
    assert line.is_visible() and "now 10:20" in line.inner_text()
    ten, eleven = (
        page.locator(".board .time.hour", has_text=at).bounding_box() for at in ("10:00", "11:00")
    )
    at = line.bounding_box()
    assert ten and eleven and at
    third = ten["y"] + (eleven["y"] - ten["y"]) / 3
    assert abs(at["y"] - third) < 3, (at["y"], ten["y"], eleven["y"])
    # Half an hour on, app.js has moved it to 10:50; past closing it hides.
    page.clock.run_for("30:00")
    assert "now 10:50" in line.inner_text()
    moved = line.bounding_box()
    assert moved and abs(moved["y"] - (ten["y"] + (eleven["y"] - ten["y"]) * 5 / 6)) < 3
    page.clock.run_for("08:00:00")
    assert not line.is_visible()
    assert refused == []
    context.close()

    # Then with the policy bypassed, because axe-core is injected as a script.
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    open_board(page, tablet_server)
    accessible(page, f"day board {width}x{height}")
    shoot(page, f"day-board-tablet-{width}x{height}", tmp_path)
    context.close()
