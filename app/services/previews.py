"""Previews: what a change would do to the booked infusions, shown before it is made, and the
check that confirming applies exactly what was shown.

A change is run for real inside a savepoint, the infusions it touches are compared before and
after, and the savepoint is rolled back: the preview is what the service would do, not a
second guess of it. Confirming runs the change again in its own transaction and compares the
fingerprint of what it did with the one the user saw; if the plan moved in between (someone
booked the slot, the regimen changed) the change is refused with the new preview.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, get_args

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.models import Chair, Infusion, InfusionStatus, Patient
from app.services.context import unit_of_work
from app.services.errors import Conflict

T = TypeVar("T")
Kind = Literal["moved", "waiting", "cancelled", "booked", "dose"]
KINDS: tuple[Kind, ...] = get_args(Kind)
#: What a preview lists at most (the summary counts everything).
MAX_LISTED = 200


@dataclasses.dataclass(frozen=True)
class Slot:
    day: dt.date
    starts_at: dt.datetime | None
    chair: str | None
    grams: float
    minutes: int


@dataclasses.dataclass(frozen=True)
class BookingChange:
    """One cycle of one patient whose booked days change."""

    patient_id: int
    patient_name: str
    cycle_number: int
    kind: Kind
    #: The cycle's booked days before and after, day 1 first (a waiting day has no chair).
    before: tuple[Slot, ...]
    after: tuple[Slot, ...]


@dataclasses.dataclass(frozen=True)
class Preview:
    changes: tuple[BookingChange, ...]
    counts: Mapping[str, int]
    #: Identifies exactly this outcome; confirming with it applies this and nothing else.
    fingerprint: str

    @property
    def patients(self) -> int:
        return len({change.patient_id for change in self.changes})

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "counts": dict(self.counts),
            "patients": self.patients,
            "changes": [dataclasses.asdict(c) for c in self.changes[:MAX_LISTED]],
        }


class PreviewChanged(Conflict):
    """The plan changed since the preview was shown; the new preview comes with the refusal."""

    def __init__(self, preview: Preview) -> None:
        super().__init__(
            "fingerprint: the bookings changed since the preview was shown; "
            "check the new preview and confirm again",
            field="fingerprint",
        )
        self.preview = preview

    def details(self) -> dict[str, object]:
        return {"preview": self.preview.as_dict()}


@dataclasses.dataclass(frozen=True)
class _Row:
    id: int
    patient_id: int
    cycle_number: int
    day_number: int
    status: str
    slot: Slot


def _state(session: so.Session, where: sa.ColumnElement[bool]) -> dict[int, _Row]:
    session.flush()
    rows = session.execute(
        sa.select(
            Infusion.id,
            Infusion.patient_id,
            Infusion.cycle_number,
            Infusion.day_number,
            Infusion.status,
            Infusion.planned_date,
            Infusion.starts_at,
            Chair.name,
            Infusion.planned_grams,
            Infusion.planned_minutes,
        )
        .outerjoin(Chair, Chair.id == Infusion.chair_id)
        .where(where)
    ).all()
    return {
        row[0]: _Row(
            row[0],
            row[1],
            row[2],
            row[3],
            str(row[4]),
            Slot(row[5], row[6], row[7], row[8], row[9]),
        )
        for row in rows
    }


_LIVE = (InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED)


def _cycles(state: dict[int, _Row]) -> dict[tuple[int, int], list[_Row]]:
    cycles: dict[tuple[int, int], list[_Row]] = {}
    for row in state.values():
        if row.status in _LIVE:
            cycles.setdefault((row.patient_id, row.cycle_number), []).append(row)
    return {key: sorted(rows, key=lambda r: r.day_number) for key, rows in cycles.items()}


def _kind(before: list[_Row], after: list[_Row]) -> Kind:
    if not after:
        return "cancelled"
    if any(row.status == InfusionStatus.UNBOOKED for row in after):
        return "waiting"
    if not before:
        return "booked"
    where = [(s.slot.day, s.slot.starts_at, s.slot.chair) for s in before]
    same_place = where == [(s.slot.day, s.slot.starts_at, s.slot.chair) for s in after]
    return "dose" if same_place else "moved"


def _changes(before: dict[int, _Row], after: dict[int, _Row]) -> list[BookingChange]:
    was, now = _cycles(before), _cycles(after)
    found = []
    for key in sorted(was.keys() | now.keys()):
        old, new = was.get(key, []), now.get(key, [])
        slots_before = tuple(row.slot for row in old)
        slots_after = tuple(row.slot for row in new)
        if slots_before != slots_after:
            found.append(
                BookingChange(key[0], "", key[1], _kind(old, new), slots_before, slots_after)
            )
    return found


def _first_day(change: BookingChange) -> dt.date:
    slots = change.before or change.after
    return slots[0].day if slots else dt.date.min


def _preview(
    session: so.Session, before: dict[int, _Row], after: dict[int, _Row], outcome: object = None
) -> Preview:
    found = _changes(before, after)
    names = dict(
        session.execute(
            sa.select(Patient.id, Patient.family_name + ", " + Patient.given_name).where(
                Patient.id.in_({c.patient_id for c in found})
            )
        ).all()
    )
    changes = sorted(
        (dataclasses.replace(c, patient_name=names.get(c.patient_id, "")) for c in found),
        key=lambda c: (_first_day(c), c.patient_name, c.cycle_number),
    )
    counts: dict[str, int] = {kind: sum(c.kind == kind for c in changes) for kind in KINDS}
    # New rows get new ids each time: the fingerprint names what happens, not row ids; with
    # what the change did beside the bookings (a taper's steps), when the caller says it.
    described = [[dataclasses.asdict(c) for c in changes], outcome]
    digest = hashlib.sha256(json.dumps(described, default=str, sort_keys=True).encode()).hexdigest()
    return Preview(tuple(changes), counts, digest[:32])


def dry_run(
    session: so.Session,
    where: sa.ColumnElement[bool],
    change: Callable[[], T],
    outcome: Callable[[T], object] | None = None,
) -> tuple[T, Preview]:
    """Run `change` in a savepoint, report what it did to the infusions matching `where`
    (and `outcome` of its result, in the fingerprint too), and roll it back: nothing is kept.
    What `change` returns must be plain values (the rows it wrote are gone afterwards)."""
    with unit_of_work(session):
        savepoint = session.begin_nested()
        try:
            before = _state(session, where)
            result = change()
            described = outcome(result) if outcome else None
            preview = _preview(session, before, _state(session, where), described)
        finally:
            savepoint.rollback()
    session.expire_all()
    return result, preview


def confirmed(
    session: so.Session,
    where: sa.ColumnElement[bool],
    change: Callable[[], T],
    fingerprint: str | None,
    outcome: Callable[[T], object] | None = None,
) -> tuple[T, Preview]:
    """Run `change` in the caller's transaction; when the user confirmed a preview
    (`fingerprint`), refuse with the new preview unless it did exactly that (`outcome` as
    for `dry_run`)."""
    before = _state(session, where)
    result = change()
    described = outcome(result) if outcome else None
    preview = _preview(session, before, _state(session, where), described)
    if fingerprint is not None and fingerprint != preview.fingerprint:
        raise PreviewChanged(preview)
    return result, preview
