"""The one place audit rows are written, and the admin's view of them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from pydantic_core import to_jsonable_python

from app.models import (
    AdverseEvent,
    Assessment,
    AuditEvent,
    AuditLink,
    Infusion,
    LabResult,
    Regimen,
    Suggestion,
    TaperPlan,
    TaperStep,
)
from app.services.context import Actor

#: Advisory lock id that orders the chain's links on PostgreSQL (SQLite serialises writers).
_CHAIN_LOCK = 480_178
_GENESIS = "0" * 64


def json_safe(value: Any) -> Any:
    """A value as plain JSON (pydantic's rules: ISO times, enum values, dataclasses as objects);
    anything else as its text."""
    return to_jsonable_python(value, fallback=str)


def record(
    session: so.Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object | None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the caller's transaction (it commits or rolls back with it)."""
    event = AuditEvent(
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before=json_safe(before) if before is not None else None,
        after=json_safe(after) if after is not None else None,
        request_id=actor.request_id,
    )
    session.add(event)
    return event


def canonical(event: AuditEvent) -> str:
    """The event as the chain hashes it: every column, in a fixed JSON form."""
    occurred = event.occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(
        [
            event.id,
            occurred,
            event.actor_user_id,
            event.actor_label,
            event.action,
            event.entity_type,
            event.entity_id,
            event.before,
            event.after,
            event.request_id,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def link_hash(previous: str, event: AuditEvent) -> str:
    return hashlib.sha256(f"{previous}|{canonical(event)}".encode()).hexdigest()


@sa.event.listens_for(so.Session, "after_flush")
def _remember_new_events(session: so.Session, _context: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if new:
        session.info.setdefault("audit_unsealed", []).extend(new)


def seal(session: so.Session) -> None:
    """Chain this transaction's audit rows, in id order, after the last link (at commit)."""
    session.flush()
    # Rows written in a savepoint that was rolled back (a preview's dry run) are gone.
    events = [e for e in session.info.pop("audit_unsealed", ()) if sa.inspect(e).persistent]
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    last = session.execute(
        sa.select(AuditLink.seq, AuditLink.hash).order_by(AuditLink.seq.desc()).limit(1)
    ).first()
    seq, previous = (last.seq, last.hash) if last else (0, _GENESIS)
    rows = []
    for event in sorted(events, key=lambda e: e.id):
        seq += 1
        previous = link_hash(previous, event)
        rows.append({"seq": seq, "event_id": event.id, "hash": previous})
    session.execute(sa.insert(AuditLink), rows)


@sa.event.listens_for(so.Session, "after_transaction_end")
def _forget_unsealed(session: so.Session, transaction: so.SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop("audit_unsealed", None)


@dataclasses.dataclass(frozen=True)
class ChainBreak:
    """Where the chain first fails, in words an administrator can act on."""

    seq: int | None
    event_id: int | None
    problem: str


def verify_chain(session: so.Session, batch: int = 5000) -> ChainBreak | None:
    """Walk the whole chain; return its first broken link, or None when it holds."""
    previous, expected_seq = _GENESIS, 1
    chained = 0
    for link, event in _links(session, batch):
        if link.seq != expected_seq:
            return ChainBreak(expected_seq, None, f"link {expected_seq} is missing")
        if event is None:
            return ChainBreak(link.seq, link.event_id, "its event is gone")
        if link_hash(previous, event) != link.hash:
            return ChainBreak(link.seq, event.id, "the event or the link before it was changed")
        previous, expected_seq, chained = link.hash, expected_seq + 1, chained + 1
    total = session.scalar(sa.select(sa.func.count(AuditEvent.id))) or 0
    if total != chained:
        loose = session.scalar(
            sa.select(sa.func.min(AuditEvent.id)).where(
                ~sa.exists().where(AuditLink.event_id == AuditEvent.id)
            )
        )
        return ChainBreak(None, loose, "an event was added outside the chain")
    return None


def _links(session: so.Session, batch: int) -> Iterator[tuple[Any, Any | None]]:
    """The chain in order, a page at a time, as plain rows (nothing kept in the session)."""
    columns = [
        AuditEvent.id,
        AuditEvent.occurred_at,
        AuditEvent.actor_user_id,
        AuditEvent.actor_label,
        AuditEvent.action,
        AuditEvent.entity_type,
        AuditEvent.entity_id,
        AuditEvent.before,
        AuditEvent.after,
        AuditEvent.request_id,
    ]
    after = 0
    while True:
        page = session.execute(
            sa.select(AuditLink.seq, AuditLink.event_id, AuditLink.hash, *columns)
            .outerjoin(AuditEvent, AuditEvent.id == AuditLink.event_id)
            .where(AuditLink.seq > after)
            .order_by(AuditLink.seq)
            .limit(batch)
        ).all()
        if not page:
            return
        for row in page:
            yield row, (row if row.id is not None else None)
        after = page[-1].seq


@dataclasses.dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    #: The patient's own rows and those of their regimens, infusions, tapers, assessments,
    #: suggestions and adverse events.
    patient_id: int | None = None


@dataclasses.dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


#: Rows a CSV export holds at most (narrow the filters for more).
EXPORT_LIMIT = 50_000


@dataclasses.dataclass(frozen=True)
class FieldChange:
    field: str
    before: object
    after: object


def field_changes(event: AuditEvent) -> list[FieldChange]:
    """What an audit row changed, field by field (a field only before or only after too)."""
    before, after = event.before or {}, event.after or {}
    fields = list(dict.fromkeys([*before, *after]))
    return [
        FieldChange(name, before.get(name), after.get(name))
        for name in fields
        if before.get(name) != after.get(name) or name not in before or name not in after
    ]


def _conditions(filters: AuditFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.actor:
        conditions.append(AuditEvent.actor_label.ilike(f"%{filters.actor}%"))
    if filters.action:
        conditions.append(AuditEvent.action.startswith(filters.action))
    if filters.entity_type:
        conditions.append(AuditEvent.entity_type == filters.entity_type)
    if filters.entity_id:
        conditions.append(AuditEvent.entity_id == filters.entity_id)
    if filters.since:
        conditions.append(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        conditions.append(AuditEvent.occurred_at < filters.until)
    if filters.patient_id is not None:
        conditions.append(_of_patient(filters.patient_id))
    return conditions


def _of_patient(patient_id: int) -> sa.ColumnElement[bool]:
    """Audit rows about a patient or about a record that belongs to them."""
    owned: list[tuple[str, sa.Select[Any]]] = [
        ("patient", sa.select(sa.literal(patient_id))),
        *(
            (name, sa.select(model.id).where(model.patient_id == patient_id))
            for name, model in (
                ("infusion", Infusion),
                ("regimen", Regimen),
                ("assessment", Assessment),
                ("suggestion", Suggestion),
                ("adverse_event", AdverseEvent),
                ("lab_result", LabResult),
                ("taper_plan", TaperPlan),
            )
        ),
        (
            "taper_step",
            sa.select(TaperStep.id)
            .join(TaperPlan, TaperStep.plan_id == TaperPlan.id)
            .where(TaperPlan.patient_id == patient_id),
        ),
    ]
    return sa.or_(
        *(
            sa.and_(
                AuditEvent.entity_type == name,
                AuditEvent.entity_id.in_(sa.select(sa.cast(ids.subquery().c[0], sa.String(60)))),
            )
            for name, ids in owned
        )
    )


def list_events(
    session: so.Session, filters: AuditFilter, page: int = 1, page_size: int = 50
) -> AuditPage:
    """Return one page of audit rows, newest first, matching every given filter."""
    conditions = _conditions(filters)
    total = session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(*conditions)) or 0
    page = max(1, page)
    events = session.scalars(
        sa.select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return AuditPage(events=list(events), page=page, page_size=page_size, total=total)


def export_rows(session: so.Session, filters: AuditFilter) -> Iterator[list[str]]:
    """The matching audit rows as CSV rows (a header first), newest first, one per changed
    field so a spreadsheet can filter on it."""
    yield ["occurred_at_utc", "actor", "action", "entity", "entity_id", "field", "before", "after"]
    events = session.scalars(
        sa.select(AuditEvent)
        .where(*_conditions(filters))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(EXPORT_LIMIT)
    )
    for event in events:
        head = [
            event.occurred_at.isoformat(),
            event.actor_label,
            event.action,
            event.entity_type,
            event.entity_id or "",
        ]
        changes = field_changes(event)
        if not changes:
            yield [*head, "", "", ""]
        for change in changes:
            yield [*head, change.field, _cell(change.before), _cell(change.after)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
