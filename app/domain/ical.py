"""iCalendar (RFC 5545 / RFC 7986) serializer for subscribed calendar feeds.

Pure functions over plain values: standard library only, no app, database or clock, so the
same rows always give the same bytes (and the feed's ETag stays stable while nothing changes).

What the output looks like, and why (see docs/CALENDAR.md):

- Times are written in UTC ("Z"): no TZID, so no VTIMEZONE for Outlook to get wrong.
- All-day events use VALUE=DATE with an exclusive DTEND strictly after DTSTART; an equal
  DTEND shows as a 00:00 event in Outlook.
- METHOD:PUBLISH (REQUEST breaks Outlook on the web); NAME and X-WR-CALNAME; the refresh hint
  as REFRESH-INTERVAL;VALUE=DURATION and X-PUBLISHED-TTL, both "PT<n>H" or "PT<n>M".
- No VALARM: subscribed-feed alarms are ignored by the major clients.
- Sub-second parts of datetimes are dropped: iCalendar has whole seconds.

Text values (SUMMARY, LOCATION, DESCRIPTION, NAME, PRODID): CRLF and lone CR become LF, then
every Unicode control character (category Cc) except TAB and LF is removed, as are lone
surrogates: TEXT cannot carry them and UTF-8 cannot encode surrogates. Stripping rather than
rejecting keeps one stray character in a free-text note from taking a patient's feed down.
NAME and X-WR-CALNAME are escaped as TEXT, as RFC 5545 and 7986 require; icalendar 7.3 and
ical.js do not know these two properties and return their value still escaped, so calendar
names are best kept free of ",", ";" and "\\".

A UID is an identity, not free text: a control character in it raises ValueError, because
silently editing it could merge two appointments or change a UID between fetches.

Events are validated when a FeedEvent is built, so an invalid one never reaches render().
A large feed takes the light path instead: Writer.timed_texts writes plain tuples (TimedRecord)
a batch at a time, checking what it writes as text but not what the rows already guarantee,
and Body keeps the result as blocks of bytes, nearest first, under a size limit. render()
writes through the same Writer, so both paths give the same bytes.
"""

from __future__ import annotations

import array
import bisect
import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

Status = Literal["CONFIRMED", "TENTATIVE", "CANCELLED"]

_STATUSES: frozenset[str] = frozenset(("CONFIRMED", "TENTATIVE", "CANCELLED"))
_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_DATE = _EPOCH.date()
# Every "THHMM" of a day and every "SSZ" of a minute, so a time of day is two list lookups:
# DTSTAMPs are mostly distinct instants, and formatting six fields each is most of render().
_HOUR_MINUTE: tuple[str, ...] = tuple(f"T{m // 60:02d}{m % 60:02d}" for m in range(24 * 60))
_SECOND_Z: tuple[str, ...] = tuple(f"{s:02d}Z" for s in range(60))
# RFC 5545 INTEGER is 32-bit signed; clients store SEQUENCE in an int32.
_MAX_SEQUENCE = 2**31 - 1
_LINE_OCTETS = 75  # RFC 5545 3.1: physical lines SHOULD NOT exceed 75 octets without CRLF.
_FOLD = "\r\n "
_CRLF = "\r\n"

# One table does all of TEXT escaping in a single C-level pass: the four escapes of RFC 5545
# 3.3.11, a lone CR as a line break (CRLF is collapsed first), and deletion of what TEXT
# cannot carry.
_TEXT_TABLE: dict[int, str | None] = {
    ord("\\"): "\\\\",
    ord(";"): "\\;",
    ord(","): "\\,",
    ord("\n"): "\\n",
    ord("\r"): "\\n",
}
_TEXT_TABLE.update(
    (code, None)
    for code in (*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000))
    if code not in (0x09, 0x0A, 0x0D)
)
_UID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: Distinct start times a Writer remembers (their text and day) before starting over.
_SLOTS_KEPT = 10_000
#: Events encoded and joined into one block of a Body at a time.
_BLOCK_EVENTS = 256

#: A timed event as plain values, the light record of a large feed: uid, sequence, dtstamp,
#: status, summary, starts_at, ends_at, location, description. Unlike a FeedEvent it is not
#: checked when made: Writer.timed_texts checks what it writes as text (the UID, SEQUENCE and
#: STATUS) but not what the rows already guarantee (start before end, unique UIDs).
TimedRecord = tuple[str, int, Any, str, str, Any, Any, str | None, str | None]


@dataclass(frozen=True)
class FeedEvent:
    """Describe one VEVENT, either timed (starts_at, ends_at) or all-day (all_day_*)."""

    # Opaque and stable across fetches: a changed UID shows as a duplicate, and RFC 7986
    # forbids data that identifies a person in it.
    uid: str
    # The stored revision counter, not a clock: clients compare it to replace their copy.
    sequence: int
    # The row's last change, not "now", so an unchanged feed is byte-identical.
    dtstamp: dt.datetime
    status: Status
    summary: str
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    all_day_start: dt.date | None = None
    all_day_end: dt.date | None = None
    location: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        """Raise ValueError unless this is exactly one well-formed timed or all-day event."""
        self._check_identity()
        if self.status not in _STATUSES:
            raise ValueError(f"status must be one of {sorted(_STATUSES)}, got {self.status!r}")
        if not isinstance(self.summary, str):
            raise ValueError("summary must be a string")
        if not (self.location is None or isinstance(self.location, str)):
            raise ValueError("location must be a string or None")
        if not (self.description is None or isinstance(self.description, str)):
            raise ValueError("description must be a string or None")
        self._check_times()

    def _check_identity(self) -> None:
        uid = self.uid
        if not isinstance(uid, str) or not uid:
            raise ValueError("uid must be a non-empty string")
        # isprintable() is the cheap common case; the search decides for spaces and the like.
        if not uid.isprintable() and _UID_FORBIDDEN.search(uid):
            raise ValueError("uid must not contain control characters, CR/LF or surrogates")
        # bool is an int subclass; SEQUENCE:True is a bug at the caller, not a revision.
        if type(self.sequence) is not int or self.sequence < 0 or self.sequence > _MAX_SEQUENCE:
            raise ValueError(f"sequence must be an int from 0 to {_MAX_SEQUENCE}")
        if not _is_aware(self.dtstamp):
            raise ValueError("dtstamp must be an aware datetime")

    def _check_times(self) -> None:
        starts_at, ends_at = self.starts_at, self.ends_at
        day_start, day_end = self.all_day_start, self.all_day_end
        timed = starts_at is not None or ends_at is not None
        all_day = day_start is not None or day_end is not None
        if timed == all_day:
            raise ValueError(
                "an event is either timed (starts_at, ends_at) or all-day "
                "(all_day_start, all_day_end), exactly one of the two"
            )
        if timed:
            if not (_is_aware(starts_at) and _is_aware(ends_at)):
                raise ValueError("starts_at and ends_at must both be aware datetimes")
            if not ends_at > starts_at:
                raise ValueError("ends_at must be after starts_at")
        else:
            if not (_is_plain_date(day_start) and _is_plain_date(day_end)):
                raise ValueError("all_day_start and all_day_end must both be dates")
            if not day_end > day_start:
                raise ValueError("all_day_end is exclusive and must be after all_day_start")


@dataclass(frozen=True)
class FeedCalendar:
    """Describe one VCALENDAR: its name, product id, refresh hint and events in order."""

    name: str
    prodid: str
    refresh_minutes: int
    events: Sequence[FeedEvent]
    description: str | None = None

    def __post_init__(self) -> None:
        """Raise ValueError for a missing prodid or a refresh interval that is not positive."""
        if not isinstance(self.name, str) or not isinstance(self.prodid, str) or not self.prodid:
            raise ValueError("name must be a string and prodid a non-empty string")
        if type(self.refresh_minutes) is not int or self.refresh_minutes <= 0:
            raise ValueError("refresh_minutes must be a positive int")
        if self.description is not None and not isinstance(self.description, str):
            raise ValueError("description must be a string")


def plain_name(value: str) -> str:
    """Return a calendar name without `,;\\`: clients read their escapes back literally."""
    for char, replacement in ((",", " ·"), (";", " ·"), ("\\", "/")):
        value = value.replace(char, replacement)
    return " ".join(value.split())


def escape_text(value: str) -> str:
    """Escape value as RFC 5545 TEXT, turning line breaks into \\n and dropping control chars."""
    # Backslash, semicolon and comma get a backslash; CRLF, CR and LF become the two
    # characters backslash-n; other Unicode control characters (category Cc, TAB kept) and
    # lone surrogates are removed, since TEXT cannot carry them and UTF-8 cannot encode them.
    # Fast path for the usual UID or summary: control characters, line breaks and surrogates
    # are all non-printable, so a printable value only needs the three escapes checked.
    if value.isprintable() and "\\" not in value and ";" not in value and "," not in value:
        return value
    if "\r\n" in value:
        value = value.replace("\r\n", "\n")
    return value.translate(_TEXT_TABLE)


def fold(line: str) -> str:
    """Fold an escaped content line into physical lines of at most 75 octets each."""
    # Continuation lines start with one space, which counts towards their 75 octets. A fold
    # never splits a UTF-8 character, nor a backslash from the character it escapes: some
    # clients unescape physical lines before unfolding (Google dropped events on a split
    # backslash-n). Every backslash is taken to open an escape pair, as in escaped TEXT.
    if line.isascii():
        if len(line) <= _LINE_OCTETS:
            return line
        return _fold_ascii(line)
    # surrogatepass: only the length is wanted, and fold must not crash on what it is given.
    if len(line.encode("utf-8", "surrogatepass")) <= _LINE_OCTETS:
        return line
    return _fold_unicode(line)


def render(calendar: FeedCalendar) -> bytes:
    """Render calendar as UTF-8 iCalendar bytes with CRLF line ends."""
    # Same calendar, same bytes: nothing here reads a clock, a locale or a hash order. A UID
    # repeated within the calendar raises ValueError.
    writer = Writer()
    out: list[str] = [
        writer.header(
            calendar.name, calendar.prodid, calendar.refresh_minutes, calendar.description
        )
    ]
    utc = writer.utc
    seen_uids: set[str] = set()
    append = out.append
    for event in calendar.events:
        uid = event.uid
        if uid in seen_uids:
            # Without RECURRENCE-ID a repeated UID is one event twice: clients keep either.
            raise ValueError(f"duplicate uid in calendar: {uid!r}")
        seen_uids.add(uid)
        starts_at, ends_at = event.starts_at, event.ends_at
        if starts_at is not None and ends_at is not None:
            append(
                writer.timed(
                    uid,
                    event.sequence,
                    utc(event.dtstamp),
                    event.status,
                    event.summary,
                    utc(starts_at),
                    utc(ends_at),
                    event.location,
                    event.description,
                )
            )
        else:
            # FeedEvent.__post_init__ guarantees the all-day pair when the timed one is absent.
            assert event.all_day_start is not None and event.all_day_end is not None
            append(
                writer.all_day(
                    uid,
                    event.sequence,
                    utc(event.dtstamp),
                    event.status,
                    event.summary,
                    event.all_day_start,
                    event.all_day_end,
                    event.location,
                    event.description,
                )
            )
    append(FOOTER)
    return "".join(out).encode("utf-8")


#: The calendar's last line (Writer.header opens it).
FOOTER = "END:VCALENDAR\r\n"


class Writer:
    """Write a calendar a part at a time: its header, one VEVENT at a time; then FOOTER.

    The light path for feeds of many events: plain values in, text out, and each distinct
    summary, location, description, time pair and SEQUENCE/STATUS escaped or formatted
    once per writer. render() writes every FeedEvent through it, so both give the same bytes.
    It checks what it writes as text (a UID, a SEQUENCE, a STATUS) but not what the caller's
    rows already guarantee and FeedEvent checks: a start before its end, unique UIDs, and that
    the stamps came from utc() or utc_text().
    """

    __slots__ = (
        "_descriptions",
        "_heads",
        "_locations",
        "_slots",
        "_stamps",
        "_states",
        "_summaries",
        "_tails",
        "_whens",
    )

    def __init__(self) -> None:
        self._stamps = _Stamps()
        self._summaries: dict[str, str] = {}
        self._locations: dict[str, str] = {}
        self._descriptions: dict[str, str] = {}
        self._states: dict[tuple[int, str], str] = {}
        self._whens: dict[tuple[str, str], str] = {}
        self._slots: dict[Any, tuple[Any, str, int]] = {}
        self._heads: dict[str, dict[int, dict[str, str]]] = {}
        self._tails: dict[str | None, dict[str | None, str]] = {}

    def header(
        self, name: str, prodid: str, refresh_minutes: int, description: str | None = None
    ) -> str:
        """Return the VCALENDAR's opening lines, up to its first VEVENT."""
        out = [
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",
            _text_line("PRODID:", prodid),
            "CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n",
            _text_line("NAME:", name),
            _text_line("X-WR-CALNAME:", name),
        ]
        if description is not None:
            out.append(_text_line("DESCRIPTION:", description))
            out.append(_text_line("X-WR-CALDESC:", description))
        refresh = _duration(refresh_minutes)
        out.append(f"REFRESH-INTERVAL;VALUE=DURATION:{refresh}\r\nX-PUBLISHED-TTL:{refresh}\r\n")
        return "".join(out)

    def utc(self, value: dt.datetime) -> str:
        """Return an aware datetime as a UTC DATE-TIME (YYYYMMDDTHHMMSSZ), seconds floored."""
        return self._stamps.utc(value)

    @staticmethod
    def utc_text(value: str) -> str:
        """Return an ISO 8601 UTC time as text ("YYYY-MM-DD HH:MM:SS[.ffffff]", a space or a
        T between, no offset: how SQLite keeps them) as a UTC DATE-TIME, seconds floored."""
        if len(value) < 19 or value[4] != "-" or value[13] != ":" or value[10] not in " T":
            raise ValueError(f"not an ISO 8601 date and time: {value!r}")
        return value[:19].replace("-", "").replace(":", "").replace(" ", "T") + "Z"

    def timed_texts(
        self, records: Iterable[TimedRecord], *, uid_suffix: str = "", iso_text: bool = False
    ) -> tuple[list[str], list[int]]:
        """Each record's VEVENT text, and the UTC day it starts on (as YYYYMMDD), in order.

        The loop of a large feed, a batch of light records at a time (see TimedRecord): the
        times are aware datetimes, or with iso_text UTC text as SQLite keeps it ("YYYY-MM-DD
        HH:MM:SS[.ffffff]", as UTCDateTime writes it); the UID is uid + uid_suffix.
        """
        if not (uid_suffix.isascii() and uid_suffix.isprintable()) or any(
            char in uid_suffix for char in "\\;,"
        ):
            raise ValueError("uid_suffix must be plain ASCII text")
        stamp = self.utc_text if iso_text else self._stamps.utc
        uid_room = _LINE_OCTETS - len("UID:") - len(uid_suffix)
        slots, heads, tails = self._slots, self._heads, self._tails
        texts: list[str] = []
        days: list[int] = []
        add_text, add_day = texts.append, days.append
        for (
            uid,
            sequence,
            dtstamp,
            status,
            summary,
            starts_at,
            ends_at,
            location,
            description,
        ) in records:
            # Start times repeat day after day (chair slots): each one's text and day once.
            slot = slots.get(starts_at)
            if slot is None or slot[0] != ends_at:
                slot = self._slot(starts_at, ends_at, stamp)
            # SEQUENCE, STATUS and SUMMARY lines, made once per distinct three.
            by_sequence = heads.get(status)
            if by_sequence is None:
                by_sequence = heads[status] = {}
            by_summary = by_sequence.get(sequence)
            if by_summary is None:
                by_summary = by_sequence[sequence] = {}
            head = by_summary.get(summary)
            if head is None:
                head = by_summary[summary] = self._head(sequence, status, summary)
            # LOCATION and DESCRIPTION lines, made once per distinct pair.
            by_description = tails.get(location)
            if by_description is None:
                by_description = tails[location] = {}
            tail = by_description.get(description)
            if tail is None:
                tail = by_description[description] = self._tail(location, description)
            # A UID of letters and digits (what the database makes) needs no escape or fold.
            uid_line = (
                f"UID:{uid}{uid_suffix}\r\n"
                if uid.isalnum() and uid.isascii() and len(uid) <= uid_room
                else _uid_line(uid + uid_suffix)
            )
            if iso_text:
                # As utc_text, inline: this is the one time that differs on every row.
                dtstamp = dtstamp[:19].replace("-", "").replace(":", "").replace(" ", "T") + "Z"
            else:
                dtstamp = stamp(dtstamp)
            add_text(
                f"BEGIN:VEVENT\r\n{uid_line}DTSTAMP:{dtstamp}\r\n{head}{slot[1]}{tail}"
                "TRANSP:OPAQUE\r\nEND:VEVENT\r\n"
            )
            add_day(slot[2])
        return texts, days

    def remembered(self) -> int:
        """How many texts the writer keeps: one that serves many renders is replaced past a
        bound (every text is keyed by the values it is made of, so none goes stale)."""
        heads = sum(len(by_summary) for s in self._heads.values() for by_summary in s.values())
        return (
            heads
            + sum(len(by_description) for by_description in self._tails.values())
            + len(self._slots)
            + len(self._summaries)
            + len(self._locations)
            + len(self._descriptions)
            + len(self._whens)
        )

    def _slot(self, starts_at: Any, ends_at: Any, stamp: Any) -> tuple[Any, str, int]:
        """Remember a start time's end, DTSTART and DTEND lines and UTC day (YYYYMMDD)."""
        if len(self._slots) > _SLOTS_KEPT:
            self._slots.clear()
        start = stamp(starts_at)
        slot = self._slots[starts_at] = (
            ends_at,
            f"DTSTART:{start}\r\nDTEND:{stamp(ends_at)}\r\n",
            int(start[:8]),
        )
        return slot

    @staticmethod
    @functools.lru_cache(maxsize=32_768)
    def _head(sequence: int, status: str, summary: str) -> str:
        # Kept per process: a feed names each patient once per render, and the next render
        # (any feed, any worker request) names the same patients again.
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {sorted(_STATUSES)}, got {status!r}")
        return _state(sequence, status) + _text_line("SUMMARY:", summary)

    @staticmethod
    @functools.lru_cache(maxsize=4_096)
    def _tail(location: str | None, description: str | None) -> str:
        tail = "" if location is None else _text_line("LOCATION:", location)
        return tail if description is None else tail + _text_line("DESCRIPTION:", description)

    def timed(
        self,
        uid: str,
        sequence: int,
        dtstamp: str,
        status: Status,
        summary: str,
        starts_at: str,
        ends_at: str,
        location: str | None = None,
        description: str | None = None,
    ) -> str:
        """Return one timed VEVENT; dtstamp, starts_at and ends_at as utc() returns them."""
        when = self._whens.get((starts_at, ends_at))
        if when is None:
            when = self._whens[(starts_at, ends_at)] = f"DTSTART:{starts_at}\r\nDTEND:{ends_at}\r\n"
        return self._event(
            uid, sequence, dtstamp, status, summary, when, location, description, "OPAQUE"
        )

    def all_day(
        self,
        uid: str,
        sequence: int,
        dtstamp: str,
        status: Status,
        summary: str,
        first_day: dt.date,
        end_day: dt.date,
        location: str | None = None,
        description: str | None = None,
    ) -> str:
        """Return one all-day VEVENT; end_day is exclusive (the day after the last)."""
        date = self._stamps.date
        when = f"DTSTART;VALUE=DATE:{date(first_day)}\r\nDTEND;VALUE=DATE:{date(end_day)}\r\n"
        # An all-day step must not block the patient's day as busy time.
        return self._event(
            uid, sequence, dtstamp, status, summary, when, location, description, "TRANSPARENT"
        )

    def _event(
        self,
        uid: str,
        sequence: int,
        dtstamp: str,
        status: Status,
        summary: str,
        when: str,
        location: str | None,
        description: str | None,
        transp: str,
    ) -> str:
        state = self._states.get((sequence, status))
        if state is None:
            if status not in _STATUSES:
                raise ValueError(f"status must be one of {sorted(_STATUSES)}, got {status!r}")
            state = self._states[(sequence, status)] = _state(sequence, status)
        summary_line = self._summaries.get(summary)
        if summary_line is None:
            summary_line = self._summaries[summary] = _text_line("SUMMARY:", summary)
        extra = ""
        if location is not None:
            extra = self._locations.get(location)  # type: ignore[assignment]
            if extra is None:
                extra = self._locations[location] = _text_line("LOCATION:", location)
        if description is not None:
            line = self._descriptions.get(description)
            if line is None:
                line = self._descriptions[description] = _text_line("DESCRIPTION:", description)
            extra += line
        return (
            f"BEGIN:VEVENT\r\n{_uid_line(uid)}DTSTAMP:{dtstamp}\r\n{state}{summary_line}{when}{extra}"
            f"TRANSP:{transp}\r\nEND:VEVENT\r\n"
        )


def _state(sequence: int, status: str) -> str:
    """Return the SEQUENCE and STATUS lines."""
    # bool is an int subclass; SEQUENCE:True is a bug at the caller, not a revision.
    if type(sequence) is not int or not 0 <= sequence <= _MAX_SEQUENCE:
        raise ValueError(f"sequence must be an int from 0 to {_MAX_SEQUENCE}")
    return f"SEQUENCE:{sequence}\r\nSTATUS:{status}\r\n"


def _uid_line(uid: str) -> str:
    """Return the UID line; a UID is an identity, so a control character in it raises."""
    if not uid or (not uid.isprintable() and _UID_FORBIDDEN.search(uid)):
        raise ValueError("uid must be a non-empty string without control characters")
    return _text_line("UID:", uid)


class Body:
    """A calendar's bytes, event by event in the order served, cut to a size limit.

    Events that do not fit are left out from the end: the longest prefix the feeds always
    kept (scaling down by the bytes an event takes, with a margin, until the body fits), found
    from each event's length rather than by rendering again. An event past the limit is
    measured but not kept, so a capped body never holds more than the limit. The body comes
    out as blocks of bytes, never joined into one copy.
    """

    __slots__ = ("_fixed", "_lengths", "_limit", "_past", "_pending", "_room", "_total", "blocks")

    def __init__(self, header: str, limit: int) -> None:
        self.blocks: list[bytes] = [header.encode("utf-8")]
        self._fixed = len(self.blocks[0]) + len(FOOTER)
        self._limit = limit
        self._room = limit - self._fixed
        self._lengths = array.array("q")
        self._total = 0
        self._pending: list[str] = []
        #: Days before today, each with its events in order, until finish().
        self._past: list[tuple[int, list[str]]] = []

    def add(self, text: str) -> None:
        """Append one event's text."""
        # isascii() is O(1) on CPython strings: only non-ASCII text is encoded to be measured.
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        self._lengths.append(size)
        self._total += size
        if self._total <= self._room:
            self._pending.append(text)
            if len(self._pending) >= _BLOCK_EVENTS:
                self._flush()

    def add_in_time_order(self, texts: list[str], days: list[int], today: int) -> None:
        """Append events that come in time order (over every call), with the day each is on
        (YYYYMMDD), nearest first: from today on as they come; the days before today go last,
        from the latest back, when the body is finished."""
        first = bisect.bisect_left(days, today)
        past = self._past
        start = 0
        while start < first:
            # One day's events at a time (the days are in order).
            day = days[start]
            end = bisect.bisect_right(days, day, start, first)
            if past and past[-1][0] == day:
                past[-1][1].extend(texts[start:end])
            else:
                past.append((day, texts[start:end]))
            start = end
        if first == 0:
            self._add_all(texts)
        elif first < len(texts):
            self._add_all(texts[first:])

    def _add_all(self, texts: list[str]) -> None:
        """Append many events at once (what add() does to each, a block at a time)."""
        self._flush()
        joined = "".join(texts)
        data = joined.encode("utf-8")
        if self._total + len(data) > self._room:
            for text in texts:
                self.add(text)
            return
        # Only a block with multi-octet characters has its events encoded one by one.
        self._lengths.extend(
            map(len, texts) if len(data) == len(joined) else (len(t.encode()) for t in texts)
        )
        self._total += len(data)
        self.blocks.append(data)

    def finish(self) -> tuple[list[bytes], int]:
        """Return the body's blocks (header and footer included) and its size in bytes."""
        for _, texts in reversed(self._past):
            self._add_all(texts)
        self._past.clear()
        self._flush()
        blocks = self.blocks
        if self._fixed + self._total > self._limit:
            blocks = _prefix(blocks, len(blocks[0]) + self._kept_bytes())
        blocks.append(FOOTER.encode("utf-8"))
        return blocks, sum(len(block) for block in blocks)

    def _flush(self) -> None:
        if self._pending:
            self.blocks.append("".join(self._pending).encode("utf-8"))
            self._pending.clear()

    def _kept_bytes(self) -> int:
        sums = array.array("q", itertools.accumulate(self._lengths, initial=0))
        keep = len(self._lengths)
        while True:
            size = self._fixed + sums[keep]
            if size <= self._limit or keep == 0:
                return sums[keep]
            # Scale down by the bytes an event takes, with a margin; rarely more than twice.
            keep = min(keep - 1, int(keep * self._limit / size * 0.98))


def _prefix(blocks: list[bytes], size: int) -> list[bytes]:
    """The first `size` bytes of the blocks' concatenation, as blocks."""
    out = []
    for block in blocks:
        if size <= 0:
            break
        out.append(block if len(block) <= size else block[:size])
        size -= len(block)
    return out


def _is_aware(value: object) -> TypeGuard[dt.datetime]:
    """Tell whether value is an aware datetime that has a UTC equivalent."""
    if not isinstance(value, dt.datetime):
        return False
    # Rows come back in UTC: skip the utcoffset() call for the common case.
    if value.tzinfo is not dt.UTC and value.utcoffset() is None:
        return False
    # Only the first and last day of the calendar can leave it when moved to UTC
    # (0001-01-01T00:00+05:00 falls in year 0), so only they pay for the conversion.
    if value.year == 1 or value.year == 9999:
        try:
            value.astimezone(_UTC)
        except OverflowError:
            return False
    return True


def _is_plain_date(value: object) -> TypeGuard[dt.date]:
    """Tell whether value is a date and not a datetime."""
    # datetime is a date subclass: a datetime here would silently lose its time of day.
    return type(value) is dt.date


def _text_line(prefix: str, value: str) -> str:
    """Return one escaped, folded TEXT content line ending in CRLF."""
    line = prefix + escape_text(value)
    # Short ASCII lines are the common case: skip fold() and its checks.
    if len(line) > _LINE_OCTETS or not line.isascii():
        line = fold(line)
    return line + _CRLF


class _Stamps:
    """Format RFC 5545 UTC DATE-TIMEs and DATEs, remembering each day seen in one render."""

    __slots__ = ("_dates", "_days")

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._dates: dict[dt.date, str] = {}

    def utc(self, value: dt.datetime) -> str:
        """Return value as YYYYMMDDTHHMMSSZ in UTC, dropping any fraction of a second."""
        # Subtracting the epoch converts to UTC exactly, and the normalised timedelta's days and
        # seconds floor away the microseconds: two ints to look up instead of six to format.
        delta = value - _EPOCH
        days = delta.days
        day = self._days.get(days)
        if day is None:
            day = self._days[days] = _date_stamp(_EPOCH_DATE + dt.timedelta(days=days))
        seconds = delta.seconds
        return day + _HOUR_MINUTE[seconds // 60] + _SECOND_Z[seconds % 60]

    def date(self, value: dt.date) -> str:
        """Return value as YYYYMMDD."""
        text = self._dates.get(value)
        if text is None:
            text = self._dates[value] = _date_stamp(value)
        return text


def _date_stamp(value: dt.date) -> str:
    """Format a date as an RFC 5545 DATE (YYYYMMDD)."""
    # Explicit widths: strftime("%Y") does not zero-pad years before 1000 on glibc.
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _duration(minutes: int) -> str:
    """Format whole minutes as an RFC 5545 DURATION, in hours when they divide evenly."""
    # Not str(timedelta): "1:00:00" is not a DURATION, and clients ignore it.
    if minutes % 60 == 0:
        return f"PT{minutes // 60}H"
    return f"PT{minutes}M"


def _fold_ascii(line: str) -> str:
    """Fold an all-ASCII line, where one character is one octet."""
    parts: list[str] = []
    start = 0
    end = len(line)
    width = _LINE_OCTETS
    while end - start > width:
        cut = start + width
        if line[cut - 1] == "\\":
            # start is never inside an escape pair, so the backslashes in a run from start on
            # pair up: an odd run means the last one opens a pair and must move down a line.
            run_start = cut - 1
            while run_start > start and line[run_start - 1] == "\\":
                run_start -= 1
            if (cut - run_start) % 2:
                cut -= 1
        parts.append(line[start:cut])
        start = cut
        width = _LINE_OCTETS - 1  # a continuation line spends one octet on its leading space
    parts.append(line[start:])
    return _FOLD.join(parts)


def _fold_unicode(line: str) -> str:
    """Fold a line with multi-octet characters, breaking only between whole characters."""
    parts: list[str] = []
    start = 0
    used = 0
    limit = _LINE_OCTETS
    index = 0
    end = len(line)
    while index < end:
        char = line[index]
        # A backslash and the character it escapes are one unit, kept on one physical line.
        if char == "\\" and index + 1 < end:
            size = 2
            octets = 1 + _utf8_octets(line[index + 1])
        else:
            size = 1
            octets = _utf8_octets(char)
        if used + octets > limit:
            parts.append(line[start:index])
            start = index
            used = 0
            limit = _LINE_OCTETS - 1
        used += octets
        index += size
    parts.append(line[start:])
    return _FOLD.join(parts)


def _utf8_octets(char: str) -> int:
    """Return how many octets char takes in UTF-8."""
    code = ord(char)
    if code < 0x80:
        return 1
    if code < 0x800:
        return 2
    if code < 0x10000:
        return 3
    return 4
