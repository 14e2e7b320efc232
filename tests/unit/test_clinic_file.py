"""The clinic file's reader and writer (app.domain.clinic_file), pure: what a spreadsheet user
gets told about a bad cell, and that what is written reads back the same."""

from __future__ import annotations

import csv
import datetime as dt
import io

from app.csvout import safe_cell
from app.domain import clinic_file as f


def line(**cells: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([cells.get(name, "") for name in f.COLUMNS])
    return out.getvalue()


def read(*rows: str) -> f.Parsed:
    return f.parse(("\r\n".join([",".join(f.COLUMNS), *rows]) + "\r\n").encode())


def problems(parsed: f.Parsed) -> set[tuple[int, str]]:
    return {(p.line, p.column) for p in parsed.problems}


def test_a_written_record_reads_back_to_the_same_values():
    record = {
        "record": "infusion",
        "mrn": "=HYPERLINK(1)",  # a formula a spreadsheet would run: defused, and read back
        "date": dt.date(2026, 3, 2),
        "cycle": 3,
        "day": 2,
        "status": "partial",
        "grams": 37.5,
        "lots": "A1, B2",
        "time": dt.time(9, 30),
        "minutes": 185,
        "reason": 'stopped: "headache"',
    }
    text = f.render([record], safe_cell)
    assert "'=HYPERLINK(1)" in text
    parsed = f.parse(text.encode())
    assert parsed.problems == []
    (row,) = parsed.rows
    assert dict(row.values) == {k: v for k, v in record.items() if k != "record"}
    assert row.line == 2


def test_each_bad_cell_is_named_with_what_it_should_be():
    parsed = read(
        line(record="weight", mrn="A", date="05/01/2026", weight_kg="70,5"),
        line(record="infusion", mrn="A", date="2026-01-05", cycle="0", day="1", status="given"),
        line(
            record="patient",
            mrn="B",
            family_name="X",
            given_name="Y",
            sex="f",
            birth_date="1980-01-01",
            center="C",
            renal_risk="maybe",
        ),
        line(record="visit", mrn="A"),
        line(record="lab", mrn="A", date="2026-01-05", test="ck", value="100", grams="3"),
    )
    reasons = {(p.line, p.column): p.reason for p in parsed.problems}
    assert reasons == {
        (2, "date"): "'05/01/2026' is not a date (YYYY-MM-DD)",
        (2, "weight_kg"): "'70,5' is not a number (use a point for decimals)",
        (3, "cycle"): "0 is outside 1-10000",
        (3, "grams"): "a given infusion needs it",
        (4, "sex"): "'f' is not one of female, male",
        (4, "renal_risk"): "'maybe' is not yes or no",
        (5, "record"): "'visit' is not one of " + ", ".join(f.KINDS),
        (6, "grams"): "a lab row leaves this empty",
    }
    assert parsed.rows == []


def test_a_row_with_missing_cells_and_required_columns_left_empty():
    header = ",".join(f.COLUMNS)
    parsed = f.parse(
        f"{header}\r\nregimen,A,2026-01-05\r\n{line(record='taper', mrn='A')}\r\n".encode()
    )
    assert (2, "") in problems(parsed)
    assert "3 cells" in parsed.problems[0].reason
    assert {(3, "date"), (3, "drug"), (3, "start_mg"), (3, "template"), (3, "reason")} <= problems(
        parsed
    )


def test_the_same_day_twice_in_a_cycle_and_an_empty_file():
    parsed = read(
        line(record="infusion", mrn="A", date="2026-01-05", cycle="1", day="1", status="missed"),
        line(record="infusion", mrn="A", date="2026-01-06", cycle="1", day="1", status="missed"),
    )
    assert problems(parsed) == {(3, "day")}
    assert "line 2" in parsed.problems[0].reason
    assert [p.reason for p in f.parse(b"").problems] == ["the file is empty"]
