"""The day board as a chairside tablet shows it (issue 13): gridlines per chair and hour, the
time now on today's board, each visit's state in words beside its colour, doses with their
units, a second identifier beside the name, the placement queue beside the grid; and a query
count that does not grow with the visits or their documentation."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
import sqlalchemy.orm as so

from app.domain.dosing import describe_vials
from app.models import Center, Infusion, InfusionStatus
from bench.rows import Vitals, booked_patient, document_visit
from tests.db.clinic_fixtures import NEW_YORK, make_center
from tests.web.test_care_pages import logged_in, text_of

DAY = dt.date(2027, 3, 3)  # a Wednesday; the test center opens 08:00-18:00 on weekdays
#: Each state, and the words the board says it in.
LABELS = {
    InfusionStatus.SCHEDULED: "scheduled",
    InfusionStatus.CHECKED_IN: "checked in",
    InfusionStatus.IN_CHAIR: "in chair",
    InfusionStatus.GIVEN: "given",
    InfusionStatus.PARTIAL: "stopped early",
    InfusionStatus.MISSED: "missed",
    InfusionStatus.CANCELLED: "cancelled",
    InfusionStatus.UNBOOKED: "waiting for a chair",
}
#: Minutes a given (or stopped early) visit ran.
GIVEN = {InfusionStatus.GIVEN: 50, InfusionStatus.PARTIAL: 20}
_mrns = itertools.count()


def visits(
    session: so.Session,
    center: Center,
    count: int,
    statuses: list[str] | None = None,
    day: dt.date = DAY,
    documented: bool = False,
) -> list[Infusion]:
    """`count` visits on `day`, one an hour a chair from 08:00, with the states given in turn
    (scheduled by default); with `documented`, each with vials, premedication, rate steps,
    vital signs, and every third with an adverse event. Set the clock after the last visit
    recorded given first: nothing is recorded before it happened."""
    statuses = statuses or [InfusionStatus.SCHEDULED]
    chairs = center.chairs
    made = []
    for n in range(count):
        status = statuses[n % len(statuses)]
        starts = dt.datetime.combine(day, dt.time(8), tzinfo=NEW_YORK) + dt.timedelta(
            hours=n // len(chairs)
        )
        on_chair = status != InfusionStatus.UNBOOKED
        infusion = booked_patient(
            session,
            center,
            mrn=f"{center.name[:2].upper()}-{next(_mrns):03d}",
            family_name=f"Family{n:03d}",
            given_name="Tab",
            birth_date=dt.date(1960, 1, 1) + dt.timedelta(days=n),
            day=day,
            starts_at=starts if on_chair else None,
            chair_id=chairs[n % len(chairs)].id if on_chair else None,
            grams=82,
            minutes=50,
            turnover_minutes=10,
            vials=[[30, 2], [20, 1], [2, 1]],
            status=status,
            preferred_time=dt.time(8),
            reason="tablet test",
            given_grams={"given": 82, "partial": 50}.get(status),
            given_for=dt.timedelta(minutes=GIVEN[status]) if status in GIVEN else None,
        )
        if documented:
            # What a nurse writes at the chair (a visit waiting for a chair too, at its hour).
            document_visit(
                session,
                infusion,
                lot_number=f"L{infusion.id}",
                expires_on=DAY + dt.timedelta(days=300),
                started_at=starts,
                premedications=(("paracetamol", 1000, "mg", "PO"), ("cetirizine", 10, "mg", "PO")),
                premedicated_before=dt.timedelta(minutes=30),
                rate_steps=((0, 60), (15, 120), (30, 240)),
                vitals=Vitals(120, 80, 72, 36.8),
                vitals_at=(0, 15, 45),
                adverse_event=n % 3 == 0,
            )
        made.append(infusion)
    session.flush()
    return made


def slots(page: str) -> list[str]:
    """The text of each booking block on the board, tags dropped."""
    blocks = re.findall(r'<a class="slot [^>]*data-testid="board-infusion".*?</a>', page, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", b).split()) for b in blocks]


@pytest.fixture
def center(db_session) -> Center:
    return make_center(db_session, "Tablet Center", chairs=8)


@pytest.fixture
def nurse_at(app, make_user, set_clock):
    """A nurse's browser, logged in with the app's clock at a moment of the board's day."""

    def _at(at: dt.time, day: dt.date = DAY):
        set_clock(dt.datetime.combine(day, at, tzinfo=NEW_YORK))
        return logged_in(app, make_user("nurse"))

    return _at


def board(nurse, center: Center, day: dt.date = DAY) -> str:
    response = nurse.get(f"/centers/{center.id}/day?date={day.isoformat()}")
    assert response.status_code == 200
    return text_of(response)


def test_todays_board_has_gridlines_and_the_now_line_where_the_time_is(
    nurse_at, center, db_session
):
    nurse = nurse_at(dt.time(10, 30))
    visits(db_session, center, 3)
    page = board(nurse, center)
    assert page.count('data-testid="grid-chair"') == 8
    assert page.count('data-testid="grid-hour"') == 10  # 08:00 to 17:00, open until 18:00
    line = re.search(r'<div class="now-line[^>]*>', page)
    assert line is not None and " hidden" not in line[0]
    assert 'data-minute="630.0"' in line[0] and 'data-opens="480" data-closes="1080"' in line[0]
    assert "now 10:30" in " ".join(re.sub(r"<[^>]+>", " ", page).split())
    # Placed by the server (25% of 08:00-18:00), in the page's nonce'd style: right without JS.
    style = re.search(r'<style nonce="[^"]+">(.*?)</style>', page, re.S)
    assert style is not None and ".now-line { top: 25.0%; }" in style[1]
    assert "(today)" in page


def test_another_days_board_has_gridlines_and_no_now_line(nurse_at, center, db_session):
    nurse = nurse_at(dt.time(10, 30), DAY - dt.timedelta(days=1))
    visits(db_session, center, 3)
    page = board(nurse, center)
    assert page.count('data-testid="grid-chair"') == 8
    assert page.count('data-testid="grid-hour"') == 10
    assert 'data-testid="now-line"' not in page and ".now-line {" not in page
    assert "(today)" not in page


def test_before_opening_the_now_line_waits_hidden(nurse_at, center):
    line = re.search(r'<div class="now-line[^>]*>', board(nurse_at(dt.time(6, 45)), center))
    assert line is not None and line[0].endswith(" hidden>")


def test_a_closed_day_has_no_grid(nurse_at, center):
    saturday = DAY + dt.timedelta(days=3)
    page = board(nurse_at(dt.time(10), saturday), center, saturday)
    assert 'data-testid="grid-hour"' not in page and 'data-testid="now-line"' not in page
    assert 'data-testid="board-queue"' in page


def test_each_state_is_written_beside_its_colour(nurse_at, center, db_session):
    nurse = nurse_at(dt.time(10, 30))
    made = visits(db_session, center, len(LABELS), list(LABELS))
    page = board(nurse, center)
    on_chairs = [s for s in LABELS if s not in (InfusionStatus.CANCELLED, InfusionStatus.UNBOOKED)]
    blocks = re.findall(r'<a class="slot [^>]*data-status="(\w+)"(.*?)</a>', page, re.S)
    assert len(blocks) == len(on_chairs) == len(slots(page))
    for status, (shown, block) in zip(on_chairs, blocks, strict=True):
        assert shown == status
        assert f'class="state state-{status}" data-testid="state">{LABELS[status]}</span>' in block
    # Cancelled visits hold no chair: they are listed beside the grid, with their label.
    cancelled = made[list(LABELS).index(InfusionStatus.CANCELLED)]
    side = page[page.index('data-testid="board-queue"') :]
    assert cancelled.patient.display_name in side and '"state state-cancelled"' in side
    assert ">cancelled</span>" in side and ">waiting for a chair</span>" in side


def test_the_week_says_each_state_in_words(nurse_at, center, db_session):
    nurse = nurse_at(dt.time(10, 30))
    made = visits(db_session, center, len(LABELS), list(LABELS))
    week = text_of(nurse.get(f"/centers/{center.id}/week?date={DAY.isoformat()}"))
    for status in (InfusionStatus.CHECKED_IN, InfusionStatus.IN_CHAIR, InfusionStatus.PARTIAL):
        assert f"({LABELS[status]})</a>" in week
    assert f"waiting for a chair: {made[-1].patient.display_name}" in week


def test_the_dose_is_written_with_its_units(nurse_at, center, db_session):
    nurse = nurse_at(dt.time(10, 30))
    visits(db_session, center, 1)
    (block,) = slots(board(nurse, center))
    assert "82 g = 30 g × 2 + 20 g + 2 g" in block
    assert "2×30" not in block


def test_one_function_writes_every_vial_breakdown():
    assert describe_vials([[30.0, 2], [20.0, 1], [2.0, 1]], 82.0) == "82 g = 30 g × 2 + 20 g + 2 g"
    assert describe_vials(((10.0, 3), (2.5, 1))) == "10 g × 3 + 2.5 g"
    assert describe_vials([], 5) == "5 g"


def test_each_block_names_the_patient_and_a_second_identifier(nurse_at, center, db_session):
    nurse = nurse_at(dt.time(10, 30))
    first, second = visits(db_session, center, 2)
    second.patient.mrn = ""
    db_session.flush()
    blocks = slots(board(nurse, center))
    assert blocks[0].startswith(f"{first.patient.display_name} MRN {first.patient.mrn} ")
    assert blocks[1].startswith(f"{second.patient.display_name} born 1960-01-02 ")


def test_the_placement_queue_is_beside_the_grid(nurse_at, center, db_session):
    nurse = nurse_at(dt.time(7))
    waiting = visits(db_session, center, 3, [InfusionStatus.UNBOOKED])
    visits(db_session, center, 2, [InfusionStatus.UNBOOKED], day=DAY + dt.timedelta(days=1))
    page = board(nurse, center)
    side = page[page.index('data-testid="board-queue"') :]
    assert side.count('data-testid="unbooked"') == 3
    assert all(w.patient.display_name in side for w in waiting)
    assert f"MRN {waiting[0].patient.mrn}" in side and "82 g = 30 g × 2 + 20 g + 2 g" in side
    assert "5 days waiting at this center from today: place them" in side
    assert f'href="/centers/{center.id}/placements"' in side
    # The grid comes first, the queue beside it.
    assert page.index('data-testid="board"') < page.index('data-testid="board-queue"')


def test_the_board_runs_the_same_queries_for_20_or_200_documented_visits(
    nurse_at, db_session, count_queries
):
    small = make_center(db_session, "Small", chairs=30)
    large = make_center(db_session, "Large", chairs=30)
    # 200 visits end by 14:50; at 15:00 each one given has been given.
    nurse = nurse_at(dt.time(15))
    states = list(LABELS)
    visits(db_session, small, 20, states, documented=True)
    visits(db_session, large, 200, states, documented=True)

    def queries(center: Center) -> tuple[int, str]:
        with count_queries() as statements:
            page = board(nurse, center)
        return len(statements), page

    queries(small)  # warm-up: the login session is touched at most once a minute
    few, few_page = queries(small)
    many, many_page = queries(large)
    # Two states of eight hold no chair: they wait beside the grid.
    assert len(slots(few_page)) == 16 and len(slots(many_page)) == 150
    assert many_page.count('data-testid="unbooked"') == 25
    assert few > 0
    assert many == few
