"""The clinic file on a real database: a generated clinic imports, exports and imports again
with no difference; a dry run writes nothing; every bad row is named by line and column and
nothing is imported; the import is audited and judged by the therapy-integrity checker; and
`flask --app wsgi import FILE` / `export FILE` from the shell."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from app import clock
from app.db import make_engine, make_session_factory
from app.domain import clinic_file as file_rules
from app.models import (
    Assessment,
    AuditEvent,
    Infusion,
    LabResult,
    Patient,
    Regimen,
    TaperPlan,
    WeightMeasurement,
)
from app.services import clinic as clinic_service
from app.services import clinic_file, demo, users
from app.services.context import system_actor
from bench.clinic_rows import clinic_file_text
from tests.conftest import PASSWORD
from tests.db.clinic_fixtures import make_center

TODAY = dt.date(2026, 11, 30)
ACTOR = system_actor("test:import")
CARE_TABLES = (Patient, WeightMeasurement, Regimen, TaperPlan, Assessment, LabResult, Infusion)


@pytest.fixture
def clinic(db_session, make_user):
    make_center(db_session, "Riverside")
    make_center(db_session, "Hillcrest")
    doctor = make_user("physician", email="dr.ames@test.clinic")
    return doctor


def counts(session) -> dict[str, int]:
    return {
        table.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in CARE_TABLES
    }


def generated(settings, patients: int = 6) -> str:
    return clinic_file_text(
        settings, patients, TODAY, ["Riverside", "Hillcrest"], ["dr.ames@test.clinic"]
    )


def run(session, settings, text: str | bytes, dry_run: bool = False, today: dt.date = TODAY):
    raw = text.encode() if isinstance(text, str) else text
    return clinic_file.import_file(session, ACTOR, raw, settings, today, dry_run=dry_run)


def test_a_generated_clinic_imports_exports_and_imports_again_with_no_difference(
    db_session, settings, clinic, databases, session_factory
):
    original = generated(settings)
    report = run(db_session, settings, original)
    assert report.ok, report.problems
    assert report.written
    assert report.counts["patient"] == 6
    assert report.counts["infusion"] > 6 * 40  # two years, every four weeks, two days each
    first, rows = clinic_file.export_file(db_session, ACTOR)
    assert first == original
    assert rows == sum(report.counts.values())

    # A second clinic with the same centers and physician, in a database of its own.
    engine, other = other_clinic(
        databases, settings, ["Riverside", "Hillcrest"], "dr.ames@test.clinic"
    )
    try:
        again = run(other, settings, first)
        assert again.ok, again.problems
        second, _ = clinic_file.export_file(other, ACTOR)
        assert second == first
        assert counts(other) == counts(db_session)
    finally:
        other.close()
        engine.dispose()


def other_clinic(databases, settings, centers: list[str], physician: str):
    """An empty clinic in a database of its own: these centers and one physician."""
    engine = make_engine(databases.create())
    other = make_session_factory(engine, settings)()
    for name in centers:
        make_center(other, name)
    users.create_user(
        other,
        ACTOR,
        email=physician,
        full_name="Dr Other",
        role="physician",
        password=PASSWORD,
        settings=settings.auth,
    )
    return engine, other


def test_a_clinic_made_on_the_pages_exports_imports_elsewhere_and_exports_the_same(
    db_session, settings, databases
):
    """The demo clinic, written by the services as the pages write: regimens that start next
    week, doses computed on a weight recorded since, tapers, booked and given infusions."""
    demo.load_demo_data(db_session, settings)
    exported, _rows = clinic_file.export_file(db_session, ACTOR)
    assert "\r\nregimen," in exported
    engine, other = other_clinic(
        databases,
        settings,
        [c.name for c in clinic_service.list_centers(db_session)],
        "physician@demo.clinic",
    )
    try:
        report = run(other, settings, exported, today=clock.clinic_today("America/New_York"))
        assert report.ok, report.problems
        assert report.counts["regimen"] >= 10 and report.counts["infusion"] > 0
        again, _ = clinic_file.export_file(other, ACTOR)
        assert again == exported
    finally:
        other.close()
        engine.dispose()


def test_imported_history_is_what_the_file_says(db_session, settings, clinic):
    assert run(db_session, settings, generated(settings, patients=2)).ok
    patient = db_session.scalar(sa.select(Patient).where(Patient.mrn == "IMP-000002"))
    versions = db_session.scalars(
        sa.select(Regimen).where(Regimen.patient_id == patient.id).order_by(Regimen.version)
    ).all()
    assert [v.dose_g_per_kg for v in versions] == [2.0, 1.5]  # the even patient de-escalated
    infusions = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == patient.id).order_by(Infusion.planned_date)
    ).all()
    assert {i.status for i in infusions} <= {"given", "partial", "missed"}
    assert all(i.chair_id is None for i in infusions)
    after_switch = [i for i in infusions if i.planned_date >= versions[1].starts_on]
    assert after_switch and {i.regimen_id for i in after_switch} == {versions[1].id}
    assert patient.treating_physician_id == clinic.id
    # Audited: a row per patient naming its lines, and one for the file.
    rows = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.like("import.%")).order_by(AuditEvent.id)
    ).all()
    assert [r.action for r in rows] == ["import.patient", "import.patient", "import.file"]
    assert rows[1].after["mrn"] == "IMP-000002" and rows[1].after["rows"]["infusion"] > 40
    assert rows[2].after["patients"] == 2


def test_a_dry_run_checks_everything_and_writes_nothing(db_session, settings, clinic):
    before = counts(db_session)
    report = run(db_session, settings, generated(settings, patients=3), dry_run=True)
    assert report.ok and not report.written
    assert report.counts["patient"] == 3
    assert counts(db_session) == before


def lines_of(text: str) -> list[str]:
    return text.splitlines()


def replace_cell(text: str, line: int, column: str, value: str) -> str:
    """The file with one cell changed (line as a spreadsheet numbers it)."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[line - 1][file_rules.COLUMNS.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def line_of(text: str, record: str, mrn: str, nth: int = 1) -> int:
    seen = 0
    for number, line in enumerate(lines_of(text), start=1):
        if line.startswith(f"{record},{mrn},"):
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"no {record} row {nth} for {mrn}")


def test_every_bad_row_is_named_by_line_and_column_and_nothing_is_imported(
    db_session, settings, clinic
):
    text = generated(settings, patients=3)
    regimen = line_of(text, "regimen", "IMP-000001")
    assessment = line_of(text, "assessment", "IMP-000002", 2)
    lab = line_of(text, "lab", "IMP-000003")
    infusion = line_of(text, "infusion", "IMP-000003", 5)
    bad = replace_cell(text, regimen, "dose_g_per_kg", "9")  # past the hard stop
    bad = replace_cell(bad, assessment, "date", "2026-13-01")  # not a date
    bad = replace_cell(bad, lab, "value", "900000")  # CK past the plausible range
    bad = replace_cell(bad, infusion, "status", "done")  # not a status
    stranger = {"record": "weight", "mrn": "NOBODY-1", "date": "2026-01-05", "weight_kg": "70"}
    bad += ",".join(stranger.get(name, "") for name in file_rules.COLUMNS) + "\r\n"
    before = counts(db_session)
    report = run(db_session, settings, bad)
    assert not report.ok and not report.written
    found = {(p.line, p.column) for p in report.problems}
    unknown_line = len(lines_of(bad))
    assert found == {
        (regimen, "dose_g_per_kg"),
        (assessment, "date"),
        (lab, "value"),
        (infusion, "status"),
        (unknown_line, "mrn"),
    }
    by_line = {p.line: p.reason for p in report.problems}
    assert "2026-13-01" in by_line[assessment] and "YYYY-MM-DD" in by_line[assessment]
    assert "NOBODY-1" in by_line[unknown_line]
    assert "900000" in by_line[lab]
    assert counts(db_session) == before


def test_a_file_whose_header_is_wrong_names_each_column(db_session, settings, clinic):
    text = generated(settings, patients=1)
    header, rest = text.split("\r\n", 1)
    wrong = header.replace("cdasi_activity", "cdasi").replace(",lots,", ",lot,")
    report = run(db_session, settings, wrong + "\r\n" + rest)
    found = {(p.line, p.column, p.reason) for p in report.problems}
    assert found == {
        (1, "cdasi", "not a column of the clinic file"),
        (1, "lot", "not a column of the clinic file"),
        (1, "cdasi_activity", "this column is missing"),
        (1, "lots", "this column is missing"),
    }


def test_another_encoding_or_delimiter_is_named_and_nothing_imported(db_session, settings, clinic):
    text = generated(settings, patients=1)
    before = counts(db_session)
    latin = run(db_session, settings, text.encode("cp1252"))  # García, µmol/L
    assert len(latin.problems) == 1 and not latin.ok
    problem = latin.problems[0]
    assert "not UTF-8" in problem.reason and "Windows-1252" in problem.reason
    assert problem.line == next(
        n for n, line in enumerate(lines_of(text), start=1) if not line.isascii()
    )
    semicolons = run(db_session, settings, text.replace(",", ";"))
    assert [(p.line, p.reason) for p in semicolons.problems] == [
        (1, "the columns are separated by ';'; the clinic file uses commas")
    ]
    utf16 = run(db_session, settings, text.encode("utf-16"))
    assert "UTF-16" in utf16.problems[0].reason
    # A spreadsheet's UTF-8 with a byte-order mark is fine.
    assert run(db_session, settings, text.encode("utf-8-sig"), dry_run=True).ok
    assert counts(db_session) == before


def test_duplicate_rows_and_a_known_mrn_are_refused(db_session, settings, clinic):
    text = generated(settings, patients=2)
    assessment = lines_of(text)[line_of(text, "assessment", "IMP-000001") - 1]
    doubled = text + assessment + "\r\n"
    report = run(db_session, settings, doubled)
    assert [(p.line, p.column) for p in report.problems] == [(len(lines_of(doubled)), "")]
    assert "the same assessment (mrn, date) as line" in report.problems[0].reason
    assert run(db_session, settings, text).ok
    again = run(db_session, settings, text)
    assert {(p.line, p.column) for p in again.problems} == {
        (line_of(text, "patient", "IMP-000001"), "mrn"),
        (line_of(text, "patient", "IMP-000002"), "mrn"),
    }
    assert "exists already" in again.problems[0].reason


def test_history_the_integrity_checker_refuses_is_named_by_line(db_session, settings, clinic):
    text = generated(settings, patients=1)
    infusion = line_of(text, "infusion", "IMP-000001", 3)  # cycle 2 day 1
    too_much = replace_cell(text, infusion, "grams", "400")
    before = counts(db_session)
    report = run(db_session, settings, too_much)
    assert not report.ok
    assert [p.line for p in report.problems] == [infusion]
    assert report.problems[0].reason.startswith("grams_in_window:")
    assert counts(db_session) == before


def test_a_regimen_needing_an_override_is_refused_with_the_reason(db_session, settings, clinic):
    text = generated(settings, patients=1)
    regimen = line_of(text, "regimen", "IMP-000001")
    soft = replace_cell(text, regimen, "days_per_cycle", "1")  # 2 g/kg in a day: a soft stop
    report = run(db_session, settings, soft)
    # Only the regimen is named: its infusions are not blamed for it.
    assert [(p.line, p.column) for p in report.problems] == [(regimen, "days_per_cycle")]
    assert "override" in report.problems[0].reason


def test_the_shell_imports_with_a_dry_run_first_and_exports(app, settings, clinic, tmp_path):
    path = tmp_path / "clinic.csv"
    path.write_text(generated(settings, patients=2), encoding="utf-8", newline="")
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["import", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would import patient 2" in dry.output
    done = runner.invoke(args=["import", str(path)])
    assert done.exit_code == 0, done.output
    assert "imported patient 2" in done.output
    refused = runner.invoke(args=["import", str(path)])
    assert refused.exit_code == 1
    assert "exists already" in refused.output and "nothing was imported" in refused.output
    out = tmp_path / "out.csv"
    exported = runner.invoke(args=["export", str(out)])
    assert exported.exit_code == 0, exported.output
    assert out.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
