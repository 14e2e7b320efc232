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
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeGuard

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
    out: list[str] = [
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",
        _text_line("PRODID:", calendar.prodid),
        "CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n",
        _text_line("NAME:", calendar.name),
        _text_line("X-WR-CALNAME:", calendar.name),
    ]
    if calendar.description is not None:
        out.append(_text_line("DESCRIPTION:", calendar.description))
        out.append(_text_line("X-WR-CALDESC:", calendar.description))
    refresh = _duration(calendar.refresh_minutes)
    out.append(f"REFRESH-INTERVAL;VALUE=DURATION:{refresh}\r\nX-PUBLISHED-TTL:{refresh}\r\n")

    # A feed repeats a handful of summaries, locations, days and times of day thousands of
    # times: escape, fold and format each distinct one once per render.
    summaries: dict[str, str] = {}
    locations: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    stamps = _Stamps()
    utc_stamp = stamps.utc
    date_stamp = stamps.date
    seen_uids: set[str] = set()
    append = out.append
    for event in calendar.events:
        uid = event.uid
        if uid in seen_uids:
            # Without RECURRENCE-ID a repeated UID is one event twice: clients keep either.
            raise ValueError(f"duplicate uid in calendar: {uid!r}")
        seen_uids.add(uid)

        summary = summaries.get(event.summary)
        if summary is None:
            summary = summaries[event.summary] = _text_line("SUMMARY:", event.summary)
        starts_at, ends_at = event.starts_at, event.ends_at
        if starts_at is not None and ends_at is not None:
            when = f"DTSTART:{utc_stamp(starts_at)}\r\nDTEND:{utc_stamp(ends_at)}\r\n"
            transp = "TRANSP:OPAQUE\r\n"
        else:
            day_start, day_end = event.all_day_start, event.all_day_end
            # FeedEvent.__post_init__ guarantees the all-day pair when the timed one is absent.
            assert day_start is not None and day_end is not None
            when = (
                f"DTSTART;VALUE=DATE:{date_stamp(day_start)}\r\n"
                f"DTEND;VALUE=DATE:{date_stamp(day_end)}\r\n"
            )
            # An all-day step must not block the patient's day as busy time.
            transp = "TRANSP:TRANSPARENT\r\n"
        extra = ""
        if event.location is not None:
            location = locations.get(event.location)
            if location is None:
                location = locations[event.location] = _text_line("LOCATION:", event.location)
            extra = location
        if event.description is not None:
            description = descriptions.get(event.description)
            if description is None:
                description = descriptions[event.description] = _text_line(
                    "DESCRIPTION:", event.description
                )
            extra += description
        append(
            f"BEGIN:VEVENT\r\n{_text_line('UID:', uid)}"
            f"DTSTAMP:{utc_stamp(event.dtstamp)}\r\n"
            f"SEQUENCE:{event.sequence}\r\nSTATUS:{event.status}\r\n"
            f"{summary}{when}{extra}{transp}END:VEVENT\r\n"
        )
    append("END:VCALENDAR\r\n")
    return "".join(out).encode("utf-8")


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
