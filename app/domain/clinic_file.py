"""The clinic file: a clinic's patients and their history in one CSV, to move in and to take out.

One file, one header, one row per record. The `record` column says what a row is; each kind
uses some of the columns and leaves the others empty:

- patient: mrn, family_name, given_name, sex, birth_date, center (a center's name),
  physician (a physician's e-mail), height_cm, dm_subtype, thrombosis_risk, renal_risk,
  iga_deficient (yes/no), allergies
- weight: mrn, date, weight_kg
- regimen: mrn, date (its first cycle), product, dose_g_per_kg, days_per_cycle, interval_weeks,
  weight_basis, preferred_weekday (0 Monday to 6 Sunday), preferred_time (HH:MM), center
  (empty: the patient's), weight_kg (the weight it was dosed on; empty: the latest weight row
  on or before its date), reason; it may start in the future
- taper: mrn, date (its first step), drug, start_mg, template (banded, fixed: decrement_mg and
  step_days, percent: percent and step_days), reason; it may start in the future
- assessment: mrn, date, the scores (cdasi_activity ... extramuscular_global), notes
- lab: mrn, date, test, value, unit, ref_low, ref_high
- infusion (a past one): mrn, date, cycle, day, status (given, partial, missed), grams (given),
  lots, time (HH:MM it started, local), minutes, reason

This module is pure: it reads the text into typed rows and names every problem by line and
column (the line as a spreadsheet numbers it: the header is line 1), and writes rows back in
one canonical form, so a file the clinic exported reads back to the same rows. Clinical limits
(dose hard stops, score ranges, plausible lab values) are the services' own checks, applied
when the rows are imported (app/services/clinic_file.py).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain.scores import SCORES

#: Every column, in the order the file has them.
COLUMNS: tuple[str, ...] = (
    "record",
    "mrn",
    "date",
    "family_name",
    "given_name",
    "sex",
    "birth_date",
    "center",
    "physician",
    "height_cm",
    "dm_subtype",
    "thrombosis_risk",
    "renal_risk",
    "iga_deficient",
    "allergies",
    "weight_kg",
    "product",
    "dose_g_per_kg",
    "days_per_cycle",
    "interval_weeks",
    "weight_basis",
    "preferred_weekday",
    "preferred_time",
    "drug",
    "start_mg",
    "template",
    "decrement_mg",
    "percent",
    "step_days",
    *SCORES,
    "test",
    "value",
    "unit",
    "ref_low",
    "ref_high",
    "cycle",
    "day",
    "status",
    "grams",
    "lots",
    "time",
    "minutes",
    "reason",
    "notes",
)


#: Past infusions the file carries: what a nurse recorded (planned ones follow the regimen).
INFUSION_STATUSES: tuple[str, ...] = ("given", "partial", "missed")


@dataclass(frozen=True)
class Kind:
    """A record kind: the columns it must fill, those it may, and what makes a row unique
    (empty: versions, several a day; then only a row repeated cell for cell is a duplicate)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    key: tuple[str, ...] = ("mrn", "date")

    @functools.cached_property
    def columns(self) -> frozenset[str]:
        return frozenset({"record", *self.required, *self.optional})


KINDS: Mapping[str, Kind] = {
    "patient": Kind(
        required=("mrn", "family_name", "given_name", "sex", "birth_date", "center"),
        optional=(
            "physician",
            "height_cm",
            "dm_subtype",
            "thrombosis_risk",
            "renal_risk",
            "iga_deficient",
            "allergies",
        ),
        key=("mrn",),
    ),
    "weight": Kind(required=("mrn", "date", "weight_kg")),
    "regimen": Kind(
        required=(
            "mrn",
            "date",
            "product",
            "dose_g_per_kg",
            "days_per_cycle",
            "interval_weeks",
            "weight_basis",
            "reason",
        ),
        optional=("preferred_weekday", "preferred_time", "center", "weight_kg"),
        key=(),
    ),
    "taper": Kind(
        required=("mrn", "date", "drug", "start_mg", "template", "reason"),
        optional=("decrement_mg", "percent", "step_days"),
        key=(),
    ),
    "assessment": Kind(required=("mrn", "date"), optional=(*SCORES, "notes")),
    "lab": Kind(
        required=("mrn", "date", "test", "value"),
        optional=("unit", "ref_low", "ref_high"),
        key=("mrn", "date", "test"),
    ),
    "infusion": Kind(
        required=("mrn", "date", "cycle", "day", "status"),
        optional=("grams", "lots", "time", "minutes", "reason"),
    ),
}

#: The order a patient's rows are written in (and applied in, within a patient).
KIND_ORDER: tuple[str, ...] = tuple(KINDS)

_TEXT_LIMITS: Mapping[str, int] = {
    "mrn": 40,
    "family_name": 100,
    "given_name": 100,
    "center": 120,
    "physician": 254,
    "dm_subtype": 20,
    "allergies": 500,
    "product": 60,
    "weight_basis": 10,
    "drug": 30,
    "template": 10,
    "test": 30,
    "unit": 20,
    "lots": 200,
    "reason": 2000,
    "notes": 4000,
}
_DATES = frozenset({"date", "birth_date"})
_TIMES = frozenset({"preferred_time", "time"})
_BOOLS = frozenset({"thrombosis_risk", "renal_risk", "iga_deficient"})
_INTS: Mapping[str, tuple[int, int]] = {
    "days_per_cycle": (1, 5),
    "interval_weeks": (1, 52),
    "preferred_weekday": (0, 6),
    "cycle": (1, 10_000),
    "day": (1, 5),
    "minutes": (1, 24 * 60),
    "step_days": (1, 365),
}
_NUMBERS = frozenset(
    {
        "height_cm",
        "weight_kg",
        "dose_g_per_kg",
        "start_mg",
        "decrement_mg",
        "percent",
        *SCORES,
        "value",
        "ref_low",
        "ref_high",
        "grams",
    }
)
_CHOICES: Mapping[str, tuple[str, ...]] = {
    "record": tuple(KINDS),
    "sex": ("female", "male"),
    "status": INFUSION_STATUSES,
}
#: What a text cell may start with once the export put a quote before it.
_DEFUSED = ("=", "+", "-", "@")
_YES, _NO = ("yes", "true", "1", "y"), ("no", "false", "0", "n")

#: Bytes that say a file was saved in UTF-16 (a spreadsheet's "Unicode text").
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class FileProblem:
    """One thing wrong with the file: where (line; column, or "" for the whole line) and why."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Row:
    """One record, its cells parsed: text, date, time, int, float or bool; absent: None."""

    line: int
    kind: str
    values: Mapping[str, Any]

    @property
    def mrn(self) -> str:
        return str(self.values["mrn"])

    def get(self, name: str) -> Any:
        return self.values.get(name)

    @property
    def key(self) -> tuple[object, ...]:
        names = KINDS[self.kind].key or tuple(sorted(self.values))
        return (self.kind, *((name, self.values.get(name)) for name in names))


@dataclass
class Parsed:
    """The rows read well, and the problems of the others; `failed`: the (mrn, kind) of each
    row with a problem, so that rows depending on it (a patient's, a regimen's) are not
    blamed for it."""

    rows: list[Row] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    failed: set[tuple[str, str]] = field(default_factory=set)
    #: The header was wrong or the text unreadable: no row could be read.
    unreadable: bool = False


def _text(raw: bytes) -> tuple[str | None, FileProblem | None]:
    """The file's text: UTF-8, with or without the byte-order mark a spreadsheet adds."""
    if raw.startswith(_UTF16_BOMS):
        return None, FileProblem(
            1, "", "the file is UTF-16; save it as CSV UTF-8 (comma delimited)"
        )
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, FileProblem(
            line,
            "",
            f"byte 0x{raw[exc.start]:02x} is not UTF-8 (the file is in another encoding, "
            "e.g. Windows-1252); save it as CSV UTF-8",
        )


def _header(names: Sequence[str]) -> list[FileProblem]:
    problems = []
    if len(names) == 1 and any(mark in names[0] for mark in (";", "\t", "|")):
        mark = next(m for m in (";", "\t", "|") if m in names[0])
        return [
            FileProblem(
                1, "", f"the columns are separated by {mark!r}; the clinic file uses commas"
            )
        ]
    unknown = [name for name in names if name not in COLUMNS]
    for name in unknown:
        problems.append(FileProblem(1, name, "not a column of the clinic file"))
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(FileProblem(1, name, "this column is there twice"))
        seen.add(name)
    for name in COLUMNS:
        if name not in seen:
            problems.append(FileProblem(1, name, "this column is missing"))
    return problems


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date (YYYY-MM-DD)") from None


def _time(raw: str) -> dt.time:
    try:
        parsed = dt.time.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a time (HH:MM)") from None
    if parsed.second or parsed.microsecond or parsed.tzinfo:
        raise ValueError(f"{raw!r} is not a time (HH:MM)")
    return parsed


def _int(name: str, raw: str) -> int:
    low, high = _INTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}-{high}")
    return value


def _number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        hint = " (use a point for decimals)" if "," in raw else ""
        raise ValueError(f"{raw!r} is not a number{hint}") from None
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a number")
    return value


def _bool(raw: str) -> bool:
    if raw.lower() in _YES:
        return True
    if raw.lower() in _NO:
        return False
    raise ValueError(f"{raw!r} is not yes or no")


def _cell(name: str, raw: str) -> object:
    if name in _DATES:
        return _date(raw)
    if name in _TIMES:
        return _time(raw)
    if name in _INTS:
        return _int(name, raw)
    if name in _NUMBERS:
        return _number(raw)
    if name in _BOOLS:
        return _bool(raw)
    if name in _CHOICES and raw not in _CHOICES[name]:
        raise ValueError(f"{raw!r} is not one of {', '.join(_CHOICES[name])}")
    if raw.startswith("'") and raw[1:2] in _DEFUSED:
        raw = raw[1:]  # a cell the export defused for spreadsheets (app.csvout.safe_cell)
    limit = _TEXT_LIMITS.get(name)
    if limit is not None and len(raw) > limit:
        raise ValueError(f"at most {limit} characters")
    return raw


#: Each column's reader of a cell (raises ValueError saying what is wrong).
_CONVERT: Mapping[str, Callable[[str], object]] = {
    name: functools.partial(_cell, name) for name in COLUMNS
}


def _row(line: int, filled: Mapping[str, str], problems: list[FileProblem]) -> Row | None:
    """A row of its filled cells (stripped), or None with its problems noted."""
    kind = filled.get("record", "")
    if kind not in KINDS:
        reason = "empty" if not kind else f"{kind!r} is not one of {', '.join(KINDS)}"
        problems.append(FileProblem(line, "record", reason))
        return None
    spec = KINDS[kind]
    values: dict[str, Any] = {}
    before = len(problems)
    for name in spec.required:
        if name not in filled:
            problems.append(FileProblem(line, name, f"a {kind} row needs this"))
    for name, raw in filled.items():
        if name == "record":
            continue
        if name not in spec.columns:
            problems.append(FileProblem(line, name, f"a {kind} row leaves this empty"))
            continue
        try:
            values[name] = _CONVERT[name](raw)
        except ValueError as exc:
            problems.append(FileProblem(line, name, str(exc)))
    if (
        kind == "infusion"
        and values.get("status") in ("given", "partial")
        and "grams" not in values
    ):
        problems.append(FileProblem(line, "grams", f"a {values['status']} infusion needs it"))
    if len(problems) > before:
        return None
    return Row(line, kind, values)


def _reader(raw: bytes, parsed: Parsed) -> tuple[Any, list[str]] | None:
    """A CSV reader past a sound header, or None with the problems noted."""
    text, problem = _text(raw)
    if text is None:
        assert problem is not None
        parsed.problems.append(problem)
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        parsed.problems.append(FileProblem(1, "", f"not CSV: {exc}"))
        return None
    if header is None:
        parsed.problems.append(FileProblem(1, "", "the file is empty"))
        return None
    names = [name.strip() for name in header]
    parsed.problems.extend(_header(names))
    return (reader, names) if not parsed.problems else None


def _rows(reader: Any, names: Sequence[str], parsed: Parsed) -> None:
    seen: dict[tuple[object, ...], int] = {}
    for cells in reader:
        line = reader.line_num
        filled = {
            name: raw for name, cell in zip(names, cells, strict=False) if (raw := cell.strip())
        }
        if not filled and not any(cells[len(names) :]):
            continue
        if len(cells) != len(names):
            parsed.problems.append(
                FileProblem(line, "", f"{len(cells)} cells; the header has {len(names)}")
            )
            continue
        row = _row(line, filled, parsed.problems)
        if row is None:
            parsed.failed.add((filled.get("mrn", ""), filled.get("record", "")))
            continue
        first = seen.setdefault(row.key, line)
        if first != line:
            what = ", ".join(KINDS[row.kind].key) or "every cell"
            parsed.problems.append(
                FileProblem(line, "", f"the same {row.kind} ({what}) as line {first}")
            )
            continue
        parsed.rows.append(row)


def parse(raw: bytes) -> Parsed:
    """Read a clinic file, naming every problem by line and column."""
    parsed = Parsed()
    opened = _reader(raw, parsed)
    if opened is None:
        parsed.unreadable = True
        return parsed
    reader, names = opened
    try:
        _rows(reader, names, parsed)
    except csv.Error as exc:
        parsed.problems.append(FileProblem(reader.line_num, "", f"not CSV: {exc}"))
    _check_patients(parsed)
    return parsed


def _check_patients(parsed: Parsed) -> None:
    """Within the file: one infusion a day per patient, each cycle day once."""
    days: dict[tuple[str, int, int], int] = {}
    for row in parsed.rows:
        if row.kind != "infusion":
            continue
        first = days.setdefault((row.mrn, row.get("cycle"), row.get("day")), row.line)
        if first != row.line:
            parsed.problems.append(
                FileProblem(
                    row.line, "day", f"cycle {row.get('cycle')} has this day on line {first}"
                )
            )


def by_patient(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Each MRN's rows in the order they are applied: by kind, then by date (file order)."""
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.mrn, []).append(row)
    for rows_of in grouped.values():
        rows_of.sort(key=lambda r: (KIND_ORDER.index(r.kind), r.get("date") or dt.date.min, r.line))
    return grouped


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def render(rows: Iterable[Mapping[str, object]], safe: Callable[[object], object]) -> str:
    """The clinic file of these records (each a kind's values, with "record"), canonical: one
    way to write each value, so what was imported exports as it came. `safe` defuses text a
    spreadsheet would run as a formula (app.csvout.safe_cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for record in rows:
        writer.writerow([safe(_format(record.get(name))) for name in COLUMNS])
    return buffer.getvalue()
