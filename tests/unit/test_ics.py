"""Calendar feed serializer: round trips through icalendar and Mozilla's ical.js, text, folding.

Two independent parsers read every feed shape: icalendar (Python) and ical.js (the parser inside
Thunderbird, run by node on tests/unit/parse_with_icaljs.mjs). ical.js comes from npm: run
`npm ci` at the repository root. Outside CI its tests skip when it is missing; with CI=true
they fail instead, so a CI run can never pass without them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.domain.ical import FeedCalendar, FeedEvent, escape_text, fold, render

ROOT = Path(__file__).resolve().parents[2]
ICALJS_SCRIPT = Path(__file__).with_name("parse_with_icaljs.mjs")
IN_CI = os.environ.get("CI", "").lower() == "true"

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
PRODID = "-//IVIG Assistant//Feeds 1//EN"
STAMP = dt.datetime(2026, 9, 1, 12, 30, 15, tzinfo=UTC)
NINE_AM = dt.time(9, 0)

FAST = settings(max_examples=150, deadline=None, database=None)
# One node process per example: a few examples, each a calendar of many generated texts.
FEW = settings(max_examples=6, deadline=None, database=None)

Parse = Callable[[bytes], dict[str, Any]]


# --- helpers -------------------------------------------------------------------------------


def timed(uid: str = "appt-1", **fields: Any) -> FeedEvent:
    start = fields.pop("starts_at", dt.datetime(2026, 10, 26, 9, 0, tzinfo=NEW_YORK))
    values: dict[str, Any] = {
        "uid": uid,
        "sequence": 0,
        "dtstamp": STAMP,
        "status": "CONFIRMED",
        "summary": "Infusion appointment",
        "starts_at": start,
        "ends_at": None if start is None else start + dt.timedelta(hours=3),
    }
    values.update(fields)
    return FeedEvent(**values)


def all_day(uid: str = "step-1", **fields: Any) -> FeedEvent:
    values: dict[str, Any] = {
        "uid": uid,
        "sequence": 0,
        "dtstamp": STAMP,
        "status": "CONFIRMED",
        "summary": "Prednisone 20 mg daily",
        "all_day_start": dt.date(2026, 11, 1),
        "all_day_end": dt.date(2026, 11, 8),
    }
    values.update(fields)
    return FeedEvent(**values)


def feed(events: Iterable[FeedEvent], **fields: Any) -> FeedCalendar:
    values: dict[str, Any] = {
        "name": "Infusion appointments",
        "prodid": PRODID,
        "refresh_minutes": 60,
        "events": list(events),
    }
    values.update(fields)
    return FeedCalendar(**values)


def expected_text(value: str) -> str:
    """Return value as the feed documents it: CRLF and CR as LF, control characters gone."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc")


def rfc_unescape(value: str) -> str:
    """Undo RFC 5545 TEXT escaping, for parsers that hand back unknown properties raw."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)


def parse_icalendar(data: bytes) -> icalendar.Calendar:
    calendar = icalendar.Calendar.from_ical(data)
    assert isinstance(calendar, icalendar.Calendar)
    return calendar


def events_of(calendar: icalendar.Calendar) -> list[icalendar.Event]:
    assert [c.name for c in calendar.subcomponents] == ["VEVENT"] * len(calendar.subcomponents)
    return list(calendar.subcomponents)


def assert_well_formed(data: bytes) -> None:
    """Check CRLF lines of at most 75 octets, each valid UTF-8, escapes never split by a fold."""
    assert data.endswith(b"\r\n")
    physical = data.split(b"\r\n")[:-1]
    logical: list[list[str]] = []
    for raw in physical:
        assert b"\r" not in raw and b"\n" not in raw, raw
        assert len(raw) <= 75, raw
        line = raw.decode("utf-8")  # strict: a split character fails here
        if line.startswith(" "):
            assert logical, "a feed cannot start with a continuation line"
            logical[-1].append(line[1:])
        else:
            assert line, "no empty content lines"
            logical.append([line])
    for pieces in logical:
        # In escaped TEXT every backslash opens a two-character unit; folds fall between units.
        whole = "".join(pieces)
        boundaries = set()
        index = 0
        while index < len(whole):
            boundaries.add(index)
            index += 2 if whole[index] == "\\" else 1
        cut = 0
        for piece in pieces[:-1]:
            cut += len(piece)
            assert cut in boundaries, f"fold splits an escape in {whole!r} at {cut}"


def content_names(data: bytes) -> list[str]:
    """Return the property and BEGIN/END names of every logical line, unfolded."""
    text = data.decode("utf-8").replace("\r\n ", "")
    return [re.split(r"[;:]", line, maxsplit=1)[0] for line in text.split("\r\n") if line]


# --- ical.js ---------------------------------------------------------------------------------


def _icaljs_missing() -> str | None:
    """Return why ical.js cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    installed = ROOT / "node_modules" / "ical.js" / "package.json"
    if not installed.is_file():
        return "node_modules/ical.js is missing"
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["ical.js"]
    version = json.loads(installed.read_text())["version"]
    if version != pinned:
        return f"node_modules has ical.js {version}, package.json pins {pinned}"
    return None


@pytest.fixture(scope="session")
def icaljs() -> Parse:
    missing = _icaljs_missing()
    if missing is not None:
        if IN_CI:
            pytest.fail(f"{missing}: CI must run the ical.js checks (run `npm ci` first)")
        pytest.skip(f"{missing}: run `npm ci` at the repository root")
    node = shutil.which("node")
    assert node is not None

    def parse(data: bytes) -> dict[str, Any]:
        result = subprocess.run(
            [node, str(ICALJS_SCRIPT)],
            input=data,
            capture_output=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
        return json.loads(result.stdout)

    return parse


def js_instant(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() == dt.timedelta(0), value
    return parsed


# --- a feed with every shape -----------------------------------------------------------------

MIXED = feed(
    [
        timed(
            "appt-1",
            sequence=3,
            location="Northside Infusion Center, Suite 4; 1200 Main St",
            description="Chair 4.\nBring your medication list.",
        ),
        all_day("step-1", status="TENTATIVE", dtstamp=dt.datetime(2026, 9, 2, tzinfo=UTC)),
        timed(
            "appt-2",
            status="CANCELLED",
            sequence=1,
            starts_at=dt.datetime(2026, 11, 2, 14, 30, tzinfo=UTC),
        ),
    ],
    name="Infusion appointments",
    description="Appointments at Northside",
    refresh_minutes=90,
)


def test_every_property_round_trips_through_icalendar() -> None:
    data = render(MIXED)
    assert_well_formed(data)
    calendar = parse_icalendar(data)

    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == PRODID
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["NAME"]) == str(calendar["X-WR-CALNAME"]) == "Infusion appointments"
    assert calendar.calendar_name == "Infusion appointments"
    assert str(calendar["DESCRIPTION"]) == str(calendar["X-WR-CALDESC"])
    assert str(calendar["DESCRIPTION"]) == "Appointments at Northside"
    refresh = calendar["REFRESH-INTERVAL"]
    assert refresh.params["VALUE"] == "DURATION"
    assert refresh.dt == dt.timedelta(minutes=90)
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT90M"

    events = events_of(calendar)
    assert [str(e["UID"]) for e in events] == [e.uid for e in MIXED.events]
    for parsed, given_event in zip(events, MIXED.events, strict=True):
        assert parsed.subcomponents == []  # no VALARM: subscribed feeds' alarms are ignored
        assert int(parsed["SEQUENCE"]) == given_event.sequence
        assert str(parsed["STATUS"]) == given_event.status
        assert str(parsed["SUMMARY"]) == given_event.summary
        assert parsed.decoded("DTSTAMP") == given_event.dtstamp
        assert parsed.decoded("DTSTAMP").utcoffset() == dt.timedelta(0)
        for name, value in (
            ("LOCATION", given_event.location),
            ("DESCRIPTION", given_event.description),
        ):
            assert (str(parsed[name]) if name in parsed else None) == value

    first, step, cancelled = events
    for parsed, given_event in ((first, MIXED.events[0]), (cancelled, MIXED.events[2])):
        start, end = parsed.decoded("DTSTART"), parsed.decoded("DTEND")
        assert isinstance(start, dt.datetime) and isinstance(end, dt.datetime)
        assert start.utcoffset() == end.utcoffset() == dt.timedelta(0)
        assert (start, end) == (given_event.starts_at, given_event.ends_at)
        assert "TZID" not in parsed["DTSTART"].params
        assert str(parsed["TRANSP"]) == "OPAQUE"
    start, end = step.decoded("DTSTART"), step.decoded("DTEND")
    assert type(start) is dt.date and type(end) is dt.date
    assert (start, end) == (dt.date(2026, 11, 1), dt.date(2026, 11, 8))  # DTEND exclusive
    assert step["DTSTART"].params["VALUE"] == step["DTEND"].params["VALUE"] == "DATE"
    assert str(step["TRANSP"]) == "TRANSPARENT"


def test_every_property_round_trips_through_icaljs(icaljs: Parse) -> None:
    parsed = icaljs(render(MIXED))

    assert parsed["components"] == ["vevent"] * 3
    head = parsed["calendar"]
    assert head["method"] == "PUBLISH"
    assert head["prodid"] == PRODID
    assert head["version"] == "2.0"
    assert head["calscale"] == "GREGORIAN"
    assert head["name"] == head["x-wr-calname"] == "Infusion appointments"
    assert head["description"] == head["x-wr-caldesc"] == "Appointments at Northside"
    assert head["refresh-interval"] == {"value": "PT90M", "type": "duration"}
    assert head["x-published-ttl"] == "PT90M"

    events = parsed["events"]
    assert [e["uid"] for e in events] == [e.uid for e in MIXED.events]
    for got, given_event in zip(events, MIXED.events, strict=True):
        assert got["components"] == []
        assert got["sequence"] == given_event.sequence
        assert got["status"] == given_event.status
        assert got["summary"] == given_event.summary
        assert got["location"] == given_event.location
        assert got["description"] == given_event.description
        assert js_instant(got["dtstamp"]) == given_event.dtstamp

    first, step, cancelled = events
    for got, given_event in ((first, MIXED.events[0]), (cancelled, MIXED.events[2])):
        assert got["startIsDate"] is False and got["endIsDate"] is False
        assert js_instant(got["start"]) == given_event.starts_at
        assert js_instant(got["end"]) == given_event.ends_at
        assert got["transp"] == "OPAQUE"
    assert step["startIsDate"] is True and step["endIsDate"] is True
    assert (step["start"], step["end"]) == ("2026-11-01", "2026-11-08")
    assert step["transp"] == "TRANSPARENT"


def test_layout_is_exactly_as_documented() -> None:
    data = render(
        feed(
            [timed("appt-1", location="Room 2"), all_day("step-1", sequence=2)],
            refresh_minutes=60,
        )
    )
    assert data == (
        b"BEGIN:VCALENDAR\r\n"
        b"VERSION:2.0\r\n"
        b"PRODID:-//IVIG Assistant//Feeds 1//EN\r\n"
        b"CALSCALE:GREGORIAN\r\n"
        b"METHOD:PUBLISH\r\n"
        b"NAME:Infusion appointments\r\n"
        b"X-WR-CALNAME:Infusion appointments\r\n"
        b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n"
        b"X-PUBLISHED-TTL:PT1H\r\n"
        b"BEGIN:VEVENT\r\n"
        b"UID:appt-1\r\n"
        b"DTSTAMP:20260901T123015Z\r\n"
        b"SEQUENCE:0\r\n"
        b"STATUS:CONFIRMED\r\n"
        b"SUMMARY:Infusion appointment\r\n"
        b"DTSTART:20261026T130000Z\r\n"
        b"DTEND:20261026T160000Z\r\n"
        b"LOCATION:Room 2\r\n"
        b"TRANSP:OPAQUE\r\n"
        b"END:VEVENT\r\n"
        b"BEGIN:VEVENT\r\n"
        b"UID:step-1\r\n"
        b"DTSTAMP:20260901T123015Z\r\n"
        b"SEQUENCE:2\r\n"
        b"STATUS:CONFIRMED\r\n"
        b"SUMMARY:Prednisone 20 mg daily\r\n"
        b"DTSTART;VALUE=DATE:20261101\r\n"
        b"DTEND;VALUE=DATE:20261108\r\n"
        b"TRANSP:TRANSPARENT\r\n"
        b"END:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )


@pytest.mark.parametrize(
    ("minutes", "duration"),
    [(1, "PT1M"), (30, "PT30M"), (60, "PT1H"), (90, "PT90M"), (360, "PT6H"), (1440, "PT24H")],
)
def test_refresh_hint_is_an_rfc_duration_not_a_timedelta_string(
    minutes: int, duration: str
) -> None:
    data = render(feed([], refresh_minutes=minutes))
    assert f"REFRESH-INTERVAL;VALUE=DURATION:{duration}\r\n".encode() in data
    assert f"X-PUBLISHED-TTL:{duration}\r\n".encode() in data
    calendar = parse_icalendar(data)
    assert calendar["REFRESH-INTERVAL"].dt == dt.timedelta(minutes=minutes)


# --- daylight saving -------------------------------------------------------------------------

# New York leaves daylight saving time on 2026-11-01: 09:00 is 13:00Z before and 14:00Z after.
DST = feed(
    [
        timed("before", starts_at=dt.datetime(2026, 10, 26, 9, 0, tzinfo=NEW_YORK)),
        timed("after", starts_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=NEW_YORK)),
    ]
)


def test_local_times_survive_a_dst_change_in_icalendar() -> None:
    data = render(DST)
    assert b"DTSTART:20261026T130000Z\r\n" in data
    assert b"DTSTART:20261102T140000Z\r\n" in data
    for parsed in events_of(parse_icalendar(data)):
        local = parsed.decoded("DTSTART").astimezone(NEW_YORK)
        assert local.time() == NINE_AM
        assert parsed.decoded("DTEND").astimezone(NEW_YORK).time() == dt.time(12, 0)
    assert b"VTIMEZONE" not in data and b"TZID" not in data


def test_local_times_survive_a_dst_change_in_icaljs(icaljs: Parse) -> None:
    got = icaljs(render(DST))["events"]
    assert [js_instant(e["start"]).astimezone(NEW_YORK).time() for e in got] == [NINE_AM] * 2
    assert [js_instant(e["start"]).astimezone(NEW_YORK).date() for e in got] == [
        dt.date(2026, 10, 26),
        dt.date(2026, 11, 2),
    ]


def test_the_same_instant_in_any_zone_renders_the_same_bytes() -> None:
    local = timed(starts_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=NEW_YORK))
    utc = timed(starts_at=dt.datetime(2026, 11, 2, 14, 0, tzinfo=UTC))
    assert render(feed([local])) == render(feed([utc]))


@FAST
@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [
                UTC,
                NEW_YORK,
                ZoneInfo("Asia/Kolkata"),
                dt.timezone(dt.timedelta(hours=-3, minutes=-7)),
            ]
        ),
    )
)
def test_any_aware_instant_is_written_in_utc_to_the_second(value: dt.datetime) -> None:
    data = render(feed([timed(dtstamp=value)]))
    in_utc = value.astimezone(UTC)
    expected = (
        f"{in_utc.year:04d}{in_utc.month:02d}{in_utc.day:02d}"
        f"T{in_utc.hour:02d}{in_utc.minute:02d}{in_utc.second:02d}Z"
    )
    assert f"\r\nDTSTAMP:{expected}\r\n".encode() in data


def test_fractions_of_a_second_are_dropped_not_rounded() -> None:
    cases = {
        dt.datetime(2026, 1, 1, 8, 59, 59, 999_999, tzinfo=UTC): b"20260101T085959Z",
        dt.datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC): b"19691231T235959Z",
        dt.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC): b"00010101T000000Z",
    }
    for value, text in cases.items():
        assert b"\r\nDTSTAMP:" + text + b"\r\n" in render(feed([timed(dtstamp=value)]))


# --- text: escaping, folding, injection ------------------------------------------------------

# Weighted towards what breaks feeds: TEXT escapes, line breaks, control characters,
# multi-octet characters near fold points, and ordinary characters of any script.
_TRICKY = ",;\\:\"'\n\r\t\x00\x07\x0b\x1b\x7f\x85\u2028\u00e9\u65e5\U0001f600\u200d "
TEXTS = st.text(
    alphabet=st.one_of(st.sampled_from(_TRICKY), st.characters(exclude_categories=("Cs",))),
    max_size=500,
)
UIDS = st.text(
    alphabet=st.one_of(
        st.sampled_from(",;\\:@.-_ \u00e9"),
        st.characters(exclude_categories=("Cs", "Cc")),
    ),
    min_size=1,
    max_size=120,
)

NASTY = [
    "x\r\nATTENDEE:evil",
    "a\nBEGIN:VALARM\nTRIGGER:-PT5M\nEND:VALARM",
    "\rEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil\r\n",
    "\\n is not a newline, \\, is not a comma, \\\\ is two backslashes",
    "trailing backslash \\",
    "semi;colon, comma: colon \"quoted\" 'single'",
    "  leading and trailing spaces\t ",
    "controls\x00\x01\x07\x0b\x0c\x1b\x7f\x80\x85\x9f gone, tab\tkept",
    "Ελληνικά · русский · العربية · עברית · हिन्दी · 中文 · 日本語 · 한국어",
    "emoji 👩‍⚕️💉🏥 and flags 🇺🇸🇲🇽 " * 8,
    "é" * 100 + "\\" * 37 + ";" * 37,
    ("x" * 73 + "\\n") * 5,
    "",
]


@FAST
@given(uid=UIDS, summary=TEXTS, location=TEXTS, description=TEXTS)
@example(uid="u", summary="x\r\nATTENDEE:evil", location="a;b,c\\d", description="\r\n\r")
def test_any_text_round_trips_through_icalendar(
    uid: str, summary: str, location: str, description: str
) -> None:
    event = timed(uid, summary=summary, location=location, description=description)
    data = render(feed([event]))
    assert_well_formed(data)
    parsed = events_of(parse_icalendar(data))
    assert len(parsed) == 1
    assert set(parsed[0]) == {
        "UID", "DTSTAMP", "SEQUENCE", "STATUS", "SUMMARY", "DTSTART", "DTEND",
        "LOCATION", "DESCRIPTION", "TRANSP",
    }  # fmt: skip
    assert str(parsed[0]["UID"]) == uid
    assert str(parsed[0]["SUMMARY"]) == expected_text(summary)
    assert str(parsed[0]["LOCATION"]) == expected_text(location)
    assert str(parsed[0]["DESCRIPTION"]) == expected_text(description)


@FEW
@given(st.lists(st.tuples(UIDS, TEXTS, TEXTS, TEXTS), min_size=1, max_size=25))
def test_any_text_round_trips_through_icaljs(
    icaljs: Parse, texts: list[tuple[str, str, str, str]]
) -> None:
    events = [
        timed(f"{index}/{uid}", summary=summary, location=location, description=description)
        for index, (uid, summary, location, description) in enumerate(texts)
    ]
    data = render(feed(events))
    assert_well_formed(data)
    parsed = icaljs(data)
    assert parsed["components"] == ["vevent"] * len(events)
    for got, event in zip(parsed["events"], events, strict=True):
        assert got["uid"] == event.uid
        assert got["summary"] == expected_text(event.summary)
        assert got["location"] == expected_text(event.location or "")
        assert got["description"] == expected_text(event.description or "")


NASTY_NAME = "Infusions, Northside; \\ clinic\r\nMETHOD:REQUEST"
NASTY_FEED = feed(
    [
        timed(f"nasty-{index}", summary=text, location=text, description=text)
        for index, text in enumerate(NASTY)
    ],
    name=NASTY_NAME,
    description=NASTY[0],
)
EVENT_PROPERTIES = ["UID", "DTSTAMP", "SEQUENCE", "STATUS", "SUMMARY", "DTSTART", "DTEND"]
EVENT_PROPERTIES += ["LOCATION", "DESCRIPTION", "TRANSP"]


def test_nasty_texts_round_trip_through_icalendar() -> None:
    data = render(NASTY_FEED)
    assert_well_formed(data)
    head = ["BEGIN", "VERSION", "PRODID", "CALSCALE", "METHOD", "NAME", "X-WR-CALNAME"]
    head += ["DESCRIPTION", "X-WR-CALDESC", "REFRESH-INTERVAL", "X-PUBLISHED-TTL"]
    vevent = ["BEGIN", *EVENT_PROPERTIES, "END"]
    assert content_names(data) == head + vevent * len(NASTY) + ["END"]

    calendar = parse_icalendar(data)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["DESCRIPTION"]) == expected_text(NASTY[0])
    # icalendar does not know NAME and X-WR-CALNAME as TEXT and returns them still escaped.
    for key in ("NAME", "X-WR-CALNAME"):
        assert rfc_unescape(str(calendar[key])) == expected_text(NASTY_NAME)
    for parsed, text in zip(events_of(calendar), NASTY, strict=True):
        assert list(parsed) == EVENT_PROPERTIES
        assert parsed.subcomponents == []
        for key in ("SUMMARY", "LOCATION", "DESCRIPTION"):
            assert str(parsed[key]) == expected_text(text)


def test_nasty_texts_round_trip_through_icaljs(icaljs: Parse) -> None:
    parsed = icaljs(render(NASTY_FEED))
    assert parsed["properties"][:5] == ["version", "prodid", "calscale", "method", "name"]
    assert parsed["calendar"]["method"] == "PUBLISH"
    assert parsed["calendar"]["description"] == expected_text(NASTY[0])
    # ical.js, like icalendar, returns NAME and X-WR-CALNAME still escaped.
    for key in ("name", "x-wr-calname"):
        assert rfc_unescape(parsed["calendar"][key]) == expected_text(NASTY_NAME)
    assert parsed["components"] == ["vevent"] * len(NASTY)
    for got, text in zip(parsed["events"], NASTY, strict=True):
        assert got["properties"] == [name.lower() for name in EVENT_PROPERTIES]
        assert got["components"] == []
        assert got["summary"] == got["location"] == got["description"] == expected_text(text)


def test_an_injected_line_break_creates_no_property() -> None:
    data = render(feed([timed(summary="x\r\nATTENDEE:evil")]))
    assert b"SUMMARY:x\\nATTENDEE:evil\r\n" in data
    assert b"\r\nATTENDEE" not in data


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ("comma, only", "comma\\, only"),
        ("semicolon; only", "semicolon\\; only"),
        ("backslash \\ only", "backslash \\\\ only"),
        ("a,b;c\\d", "a\\,b\\;c\\\\d"),
        ("one\r\ntwo\rthree\nfour", "one\\ntwo\\nthree\\nfour"),
        ("\r\n\r\n", "\\n\\n"),
        ("\n\r", "\\n\\n"),
        ("tab\tkept", "tab\tkept"),
        ("nul\x00bel\x07esc\x1bdel\x7fnel\x85gone", "nulbelescdelnelgone"),
        ('colon: and "quotes"', 'colon: and "quotes"'),
        ("\\n stays literal", "\\\\n stays literal"),
        ("ünïcödé 日本 😀", "ünïcödé 日本 😀"),
        ("lone\ud800surrogate", "lonesurrogate"),
    ],
)
def test_escape_text(value: str, escaped: str) -> None:
    assert escape_text(value) == escaped


# RFC 5545 3.3.11 TEXT: any character but CONTROL (TAB allowed), backslash, semicolon and
# comma, or an ESCAPED-CHAR. C1 controls are excluded as well, since the feed strips them.
_RFC_TEXT = re.compile(r"(?:[^\\;,\x00-\x08\x0a-\x1f\x7f-\x9f]|\\[\\;,n])*")


@FAST
@given(TEXTS)
def test_escaped_text_is_rfc_text_that_unescapes_to_the_normalised_input(value: str) -> None:
    escaped = escape_text(value)
    assert _RFC_TEXT.fullmatch(escaped), escaped
    assert rfc_unescape(escaped) == expected_text(value)


def test_fold_leaves_lines_of_75_octets_alone() -> None:
    assert fold("x" * 75) == "x" * 75
    assert fold("é" * 37 + "x") == "é" * 37 + "x"  # 75 octets
    assert fold("x" * 76) == "x" * 75 + "\r\n x"
    assert fold("é" * 38) == "é" * 37 + "\r\n é"


def test_fold_keeps_escapes_and_characters_whole() -> None:
    assert fold("x" * 74 + "\\n") == "x" * 74 + "\r\n \\n"
    assert fold("x" * 73 + "\\\\n") == "x" * 73 + "\\\\" + "\r\n n"
    assert fold("x" * 74 + "😀") == "x" * 74 + "\r\n 😀"
    assert fold("é" * 37 + "x\\,") == "é" * 37 + "x" + "\r\n \\,"
    assert fold("é" * 37 + "\\,") == "é" * 37 + "\r\n \\,"


@FAST
@given(
    prefix=st.sampled_from(["SUMMARY:", "X-WR-CALNAME:", "DESCRIPTION;LANGUAGE=en:"]), text=TEXTS
)
def test_fold_unfolds_to_its_input_within_the_limits(prefix: str, text: str) -> None:
    line = prefix + escape_text(text)
    folded = fold(line)
    assert folded.replace("\r\n ", "") == line
    assert_well_formed(folded.encode("utf-8") + b"\r\n")


# --- empty feeds, determinism ----------------------------------------------------------------


def test_an_empty_calendar_is_accepted_by_icalendar() -> None:
    data = render(feed([]))
    assert_well_formed(data)
    calendar = parse_icalendar(data)
    # Calendar.validate() would refuse a calendar without components; parsing accepts it, as
    # clients do, and a patient with no appointments still needs a working feed.
    assert calendar.subcomponents == []
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert calendar.calendar_name == "Infusion appointments"


def test_an_empty_calendar_is_accepted_by_icaljs(icaljs: Parse) -> None:
    parsed = icaljs(render(feed([])))
    assert parsed["name"] == "vcalendar"
    assert parsed["components"] == [] and parsed["events"] == []
    assert parsed["calendar"]["method"] == "PUBLISH"


def test_render_is_deterministic() -> None:
    first = render(MIXED)
    assert render(MIXED) == first
    copy = feed(
        list(MIXED.events), name=MIXED.name, description=MIXED.description, refresh_minutes=90
    )
    assert render(copy) == first


# --- validation ------------------------------------------------------------------------------

_NAIVE = dt.datetime(2026, 10, 26, 9, 0)
_START = dt.datetime(2026, 10, 26, 13, 0, tzinfo=UTC)
_DAY = dt.date(2026, 11, 1)


@pytest.mark.parametrize(
    "fields",
    [
        {"starts_at": _NAIVE, "ends_at": _NAIVE + dt.timedelta(hours=1)},
        {"starts_at": _START, "ends_at": _START},
        {"starts_at": _START, "ends_at": _START - dt.timedelta(seconds=1)},
        {"starts_at": _START, "ends_at": None},
        {"starts_at": None, "ends_at": _START},
        {"starts_at": None, "ends_at": None},
        {"all_day_start": _DAY, "all_day_end": _DAY + dt.timedelta(days=1)},
        {"starts_at": dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))},
        {"dtstamp": _NAIVE},
        {"dtstamp": _DAY},
        {"status": "confirmed"},
        {"status": "NEEDS-ACTION"},
        {"sequence": -1},
        {"sequence": 2**31},
        {"sequence": True},
        {"uid": ""},
        {"uid": "abc\r\nATTENDEE:evil"},
        {"uid": "abc\x00"},
        {"uid": "abc\x85"},
        {"summary": None},
        {"location": 3},
    ],
)
def test_invalid_timed_events_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        timed(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"all_day_end": _DAY},
        {"all_day_end": _DAY - dt.timedelta(days=1)},
        {"all_day_end": None},
        {"all_day_start": None},
        {"all_day_start": dt.datetime(2026, 11, 1, tzinfo=UTC)},
        {"all_day_end": dt.datetime(2026, 11, 8, tzinfo=UTC)},
    ],
)
def test_invalid_all_day_events_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        all_day(**fields)


@pytest.mark.parametrize(
    "fields", [{"refresh_minutes": 0}, {"refresh_minutes": -5}, {"prodid": ""}]
)
def test_invalid_calendars_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        feed([], **fields)


def test_a_repeated_uid_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate uid"):
        render(feed([timed("same"), all_day("same")]))
