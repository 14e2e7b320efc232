"""The light path of the feed serializer (issue 18): Writer.timed_texts writes what render()
writes for the same events, and Body cuts a body where the feeds always did."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.ical import FOOTER, Body, FeedCalendar, FeedEvent, Writer, render

FAST = settings(max_examples=150, deadline=None, database=None)
NEW_YORK = ZoneInfo("America/New_York")
STAMP = dt.datetime(2026, 10, 1, 12, 30, 15, 999_999, tzinfo=dt.UTC)
texts = st.text(st.characters(codec="utf-8"), max_size=120)


def header(writer: Writer) -> str:
    return writer.header("Infusions", "-//Test//EN", 60)


@FAST
@given(
    summary=texts,
    location=st.none() | texts,
    description=st.none() | texts,
    uid=st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1),
    sequence=st.integers(0, 2**31 - 1),
    status=st.sampled_from(["CONFIRMED", "TENTATIVE", "CANCELLED"]),
    minutes=st.integers(-(10**6), 10**6),
)
def test_timed_texts_write_what_render_writes(
    summary, location, description, uid, sequence, status, minutes
):
    starts = dt.datetime(2026, 11, 1, 9, 0, tzinfo=NEW_YORK) + dt.timedelta(minutes=minutes)
    ends = starts + dt.timedelta(hours=3, seconds=7)
    event = FeedEvent(
        uid=uid + "@feeds",
        sequence=sequence,
        dtstamp=STAMP,
        status=status,
        summary=summary,
        starts_at=starts,
        ends_at=ends,
        location=location,
        description=description,
    )
    whole = render(FeedCalendar("Infusions", "-//Test//EN", 60, [event])).decode()
    record = (uid, sequence, STAMP, status, summary, starts, ends, location, description)
    writer = Writer()
    (text,), (day,) = writer.timed_texts([record], uid_suffix="@feeds")
    assert header(writer) + text + FOOTER == whole
    assert day == int(starts.astimezone(dt.UTC).strftime("%Y%m%d"))
    # SQLite hands the times back as UTC text: the same event.
    as_text = [
        value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        for value in (STAMP, starts, ends)
    ]
    iso = (
        uid,
        sequence,
        as_text[0],
        status,
        summary,
        as_text[1],
        as_text[2],
        location,
        description,
    )
    (again,), _ = Writer().timed_texts([iso], uid_suffix="@feeds", iso_text=True)
    assert again == text


@pytest.mark.parametrize(
    "record",
    [
        ("a\x00b", 0, STAMP, "CONFIRMED", "x", STAMP, STAMP, None, None),
        ("", 0, STAMP, "CONFIRMED", "x", STAMP, STAMP, None, None),
        ("a", -1, STAMP, "CONFIRMED", "x", STAMP, STAMP, None, None),
        ("a", True, STAMP, "CONFIRMED", "x", STAMP, STAMP, None, None),
        ("a", 0, STAMP, "BOOKED", "x", STAMP, STAMP, None, None),
    ],
)
def test_timed_texts_refuse_what_cannot_be_written(record):
    with pytest.raises(ValueError):
        Writer().timed_texts([record])


def old_cut(head: str, events: list[str], limit: int) -> bytes:
    """What the feeds did: render, and scale down by the bytes an event takes until it fits."""
    keep = len(events)
    while True:
        body = (head + "".join(events[:keep]) + FOOTER).encode()
        if len(body) <= limit or keep == 0:
            return body
        keep = min(keep - 1, int(keep * limit / len(body) * 0.98))


@FAST
@given(
    events=st.lists(st.text(st.characters(codec="utf-8"), max_size=400), max_size=600),
    limit=st.integers(0, 60_000),
)
def test_body_cuts_where_the_feeds_always_cut(events, limit):
    head = "BEGIN:VCALENDAR\r\n"
    body = Body(head, limit)
    for text in events:
        body.add(text)
    blocks, size = body.finish()
    whole = b"".join(blocks)
    assert whole == old_cut(head, events, limit)
    assert size == len(whole)


@FAST
@given(
    days=st.lists(st.integers(20260101, 20260131), max_size=300).map(sorted),
    today=st.integers(20260101, 20260131),
)
def test_body_puts_today_on_first_then_the_past_latest_first(days, today):
    texts = [f"{n}:{day}\n" for n, day in enumerate(days)]
    body = Body("", 10**9)
    half = len(texts) // 2
    body.add_in_time_order(texts[:half], days[:half], today)
    body.add_in_time_order(texts[half:], days[half:], today)
    blocks, _ = body.finish()
    order = sorted(
        range(len(days)), key=lambda n: (0, days[n]) if days[n] >= today else (1, -days[n])
    )
    assert b"".join(blocks).decode() == "".join(texts[n] for n in order) + FOOTER
