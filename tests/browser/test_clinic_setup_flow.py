"""A clinic sets itself up from an empty database, as its people would, in a real browser:
the admin creates a center and staff, the physician a patient and a regimen (preview, confirm),
the admin closes a booked day (preview) and takes the chairs out of use, and the nurse works
the placement queue. Every page on the way is checked with axe-core."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.services import users as user_service
from app.services.context import system_actor
from tests.browser.conftest import serve

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
ADMIN = ("admin@clinic.test", "admin-password-1")
PHYSICIAN = ("dr.ade@clinic.test", "physician-pass-1")
NURSE = ("nia@clinic.test", "nurse-password-1")
#: Where the screenshots go (the note quotes them); a temporary folder unless set.
SHOTS = os.environ.get("SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def empty_server(databases) -> Iterator[str]:
    """A live server on a new database holding one admin account and nothing else."""

    def first_admin(session, settings) -> None:
        user_service.create_user(
            session,
            system_actor("cli"),
            email=ADMIN[0],
            full_name="Ada Admin",
            role="admin",
            password=ADMIN[1],
            settings=settings.auth,
        )

    yield from serve(databases, first_admin)


@pytest.fixture
def tab(browser) -> Iterator[object]:
    # axe is injected as a script, which the app's Content-Security-Policy would refuse.
    context = browser.new_context(viewport={"width": 1024, "height": 768}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())  # "Deactivate ...?" and the like
    yield page
    context.close()


def accessible(page, where: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{where}: {bad}"


def shoot(page, name: str, tmp_path: Path) -> None:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def sign_in(page, server: str, who: tuple[str, str]) -> None:
    page.goto(server + "/login")
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Today").wait_for()


def sign_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()


def next_monday() -> dt.date:
    day = dt.date.today() + dt.timedelta(days=8)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def admin_sets_up_the_center_and_staff(page, server: str) -> None:
    sign_in(page, server, ADMIN)
    assert "set up the first center" in page.get_by_test_id("admin-work").inner_text()
    accessible(page, "admin home")
    page.get_by_role("link", name="Centers").click()
    accessible(page, "centers")
    page.get_by_test_id("new-center").click()
    form = page.get_by_test_id("center-form")
    form.get_by_label("Name").fill("Harbour Infusion Unit")
    form.get_by_label("Time zone (IANA)").fill("America/New_York")
    form.get_by_label("Wednesday: infusion nurses on shift").fill("2")
    form.get_by_label("Saturday: open", exact=True).check()
    form.get_by_label("Saturday: opens at").fill("09:00")
    form.get_by_label("Saturday: closes at").fill("13:00")
    form.get_by_label("Saturday: infusion nurses on shift").fill("1")
    form.get_by_label("Chairs to create").fill("3")
    accessible(page, "new center")
    form.get_by_role("button", name="Create center").click()
    page.get_by_text("Created Harbour Infusion Unit with 3 chairs.").wait_for()
    assert page.get_by_test_id("chair-row").count() == 3
    accessible(page, "center page")

    page.get_by_role("link", name="Users").click()
    for (email, password), name, role in (
        (PHYSICIAN, "Dr Ade Bello", "physician"),
        (NURSE, "Nia Okoro", "nurse"),
    ):
        new = page.locator("form", has=page.get_by_role("button", name="Create user"))
        new.get_by_label("Name").fill(name)
        new.get_by_label("Email").fill(email)
        new.get_by_label("Role").select_option(role)
        new.get_by_label("Initial password").fill(password)
        new.get_by_role("button", name="Create user").click()
        page.get_by_text(f"Created {name} ({role}).").wait_for()
    accessible(page, "users")
    sign_out(page)


def physician_registers_and_sets_a_regimen(page, server: str, tmp_path: Path) -> str:
    sign_in(page, server, PHYSICIAN)
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("MRN").fill("H-0001")
    page.get_by_label("Family name").fill("Okafor")
    page.get_by_label("Given name").fill("James")
    page.get_by_label("Sex").select_option("male")
    page.get_by_label("Birth date").fill("1964-11-02")
    page.get_by_label("Height (cm)").fill("175")
    page.get_by_label("Weight (kg)").fill("100")
    page.get_by_label("Treating physician").select_option(label="Dr Ade Bello")
    accessible(page, "new patient")
    page.get_by_role("button", name="Register patient").click()
    page.get_by_role("heading", name="Okafor, James").wait_for()
    accessible(page, "patient page")

    # A form with four mistakes (the reason left empty): all four at once, each under its
    # field, in its label's words, what was typed kept.
    form = page.get_by_test_id("regimen-form")
    form.get_by_label("Dose (g/kg per cycle)").fill("12")
    form.get_by_label("Days per cycle").fill("0")
    form.get_by_label("Interval (weeks)").fill("four")
    form.get_by_role("button", name="Preview regimen").click()
    problems = page.get_by_test_id("problems")
    problems.wait_for()
    assert problems.get_by_role("listitem").all_inner_texts() == [
        "Dose (g/kg per cycle): must be at most 10 g/kg (got 12)",
        "Days per cycle: must be at least 1 day (got 0)",
        "Interval (weeks): give a whole number (got 'four')",
        "Reason: required",
    ]
    dose = form.get_by_label("Dose (g/kg per cycle)")
    assert dose.input_value() == "12" and dose.get_attribute("aria-invalid") == "true"
    assert page.get_by_test_id("field-error").all_inner_texts()[0] == (
        "must be at most 10 g/kg (got 12)"
    )
    accessible(page, "refused regimen form")
    shoot(page, "form-errors", tmp_path)
    problems.get_by_role("link", name="Interval (weeks)").click()
    assert page.evaluate("document.activeElement.name") == "interval_weeks"

    form.get_by_label("Days per cycle").fill("2")
    form.get_by_label("Interval (weeks)").fill("4")
    form.get_by_label("Dose (g/kg per cycle)").fill("2")
    form.get_by_label("First cycle on").fill(next_monday().isoformat())
    form.get_by_label("Start time").fill("09:00")
    form.get_by_label("Reason", exact=True).fill("Refractory DM after methotrexate")
    form.get_by_role("button", name="Preview regimen").click()
    preview = page.get_by_test_id("regimen-preview")
    assert "82 g = 30 g × 2 + 20 g + 2 g, 295 min" in preview.inner_text()
    assert "newly booked" in page.get_by_test_id("preview-summary").inner_text()
    accessible(page, "regimen preview")
    shoot(page, "regimen-preview", tmp_path)
    preview.get_by_role("button", name="Confirm regimen").click()
    page.get_by_text(re.compile(r"Regimen version 1 set: \d+ infusions booked")).wait_for()
    page.goto(server + f"/centers/1/day?date={next_monday().isoformat()}")
    assert "Okafor, James" in page.locator(".board").inner_text()
    accessible(page, "day board")
    sign_out(page)
    return next_monday().isoformat()


def admin_closes_a_booked_day_and_retires_the_chairs(page, server: str, day: str) -> None:
    sign_in(page, server, ADMIN)
    page.goto(server + "/admin/centers/1")
    closure = page.get_by_test_id("closure-form")
    closure.get_by_label("First day").fill(day)
    closure.get_by_label("Reason").fill("Staff training")
    closure.get_by_role("button", name="Preview closure").click()
    preview = page.get_by_test_id("closure-preview")
    assert "1 patient, 1 cycle: 1 moved" in preview.inner_text()
    assert "Okafor, James" in preview.inner_text()
    accessible(page, "closure preview")
    page.get_by_test_id("confirm-closure").click()
    page.get_by_test_id("closure").wait_for()
    assert "closed: Staff training" in page.get_by_test_id("board-date").inner_text()

    page.goto(server + "/admin/centers/1")
    for number in (1, 2, 3):  # the chairs go for repair
        row = page.get_by_test_id("chair-row").filter(has_text=f"Chair {number}")
        row.get_by_label("In use").uncheck()
        row.get_by_role("button", name=f"Save Chair {number}").click()
        page.get_by_text(re.compile(r"Saved|re-booked")).first.wait_for()
    row = page.get_by_test_id("chair-row").filter(has_text="Chair 1")
    row.get_by_label("In use").check()  # one is back
    row.get_by_role("button", name="Save Chair 1").click()
    sign_out(page)


def nurse_works_the_placement_queue(page, server: str, tmp_path: Path) -> None:
    sign_in(page, server, NURSE)
    assert "waiting for a chair: place them" in page.get_by_test_id("waiting-count").inner_text()
    accessible(page, "nurse home")
    shoot(page, "nurse-home", tmp_path)
    page.get_by_test_id("waiting-count").get_by_role("link").click()
    rows = page.get_by_test_id("waiting")
    before = rows.count()
    assert before > 0
    accessible(page, "placement queue")
    rows.first.get_by_test_id("offer").first.click()
    page.get_by_text(re.compile(r"Placed Okafor, James on")).wait_for()
    assert page.get_by_test_id("waiting").count() == before - 1
    page.goto(server + f"/centers/1/day?date={next_monday() + dt.timedelta(days=1)}")
    accessible(page, "day board after placing")
    shoot(page, "day-board", tmp_path)
    sign_out(page)


def test_a_clinic_sets_itself_up_from_an_empty_database(tab, empty_server, tmp_path):
    admin_sets_up_the_center_and_staff(tab, empty_server)
    day = physician_registers_and_sets_a_regimen(tab, empty_server, tmp_path)
    admin_closes_a_booked_day_and_retires_the_chairs(tab, empty_server, day)
    nurse_works_the_placement_queue(tab, empty_server, tmp_path)
