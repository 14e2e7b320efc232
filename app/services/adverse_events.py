"""Reactions and adverse events: recorded by nurses, resolved by physicians."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.db import utcnow
from app.models import AdverseEvent, Infusion, Patient
from app.models.infusion import ADVERSE_EVENT_TYPES, REACTION_ACTIONS, REACTION_OUTCOMES
from app.services import audit
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound

#: Adverse events that are serious by nature (DOMAIN.md: boxed warning and other reactions).
SERIOUS_TYPES = frozenset(
    {"anaphylaxis", "thrombosis", "renal_injury", "hemolysis", "aseptic_meningitis"}
)


#: What runs in the same unit after a record (the rules engine's evaluation).
AfterRecord = Callable[[so.Session, int, dt.date, Actor], object]


@dataclasses.dataclass(frozen=True)
class AdverseEventInput:
    event_type: str
    grade: int
    occurred_on: dt.date
    serious: bool | None = None
    description: str = ""
    #: At the chair: what the nurse did (REACTION_ACTIONS) and how it ended.
    action_taken: str | None = None
    outcome: str | None = None


def open_serious(session: so.Session, patient_id: int) -> list[AdverseEvent]:
    """The patient's serious adverse events not yet resolved (they hold IVIG), oldest first."""
    return list(
        session.scalars(
            sa.select(AdverseEvent)
            .where(
                AdverseEvent.patient_id == patient_id,
                AdverseEvent.serious.is_(True),
                AdverseEvent.resolved_on.is_(None),
            )
            .order_by(AdverseEvent.occurred_on, AdverseEvent.id)
        )
    )


def record_adverse_event(
    session: so.Session,
    actor: Actor,
    infusion_id: int,
    data: AdverseEventInput,
    today: dt.date,
    after_record: AfterRecord | None = None,
) -> AdverseEvent:
    """Record a reaction or adverse event; `after_record` (the rules engine) runs in the unit."""
    if data.event_type not in ADVERSE_EVENT_TYPES:
        raise InvalidInput(
            f"event_type: one of {', '.join(ADVERSE_EVENT_TYPES)}", field="event_type"
        )
    if not 1 <= data.grade <= 5:
        raise InvalidInput(f"grade: 1 to 5 (got {data.grade})", field="grade")
    if data.occurred_on > today:
        raise InvalidInput("occurred_on: not in the future", field="occurred_on")
    if len(data.description) > 2000:
        raise InvalidInput("description: at most 2000 characters", field="description")
    if data.action_taken is not None and data.action_taken not in REACTION_ACTIONS:
        raise InvalidInput(
            f"action_taken: one of {', '.join(REACTION_ACTIONS)}", field="action_taken"
        )
    if data.outcome is not None and data.outcome not in REACTION_OUTCOMES:
        raise InvalidInput(f"outcome: one of {', '.join(REACTION_OUTCOMES)}", field="outcome")
    serious = data.serious
    if serious is None:
        serious = data.event_type in SERIOUS_TYPES or data.grade >= 3
    with unit_of_work(session):
        infusion = session.get(Infusion, infusion_id)
        if infusion is None:
            raise NotFound(f"infusion_id: no infusion {infusion_id}", field="infusion_id")
        event = AdverseEvent(
            patient_id=infusion.patient_id,
            infusion_id=infusion.id,
            occurred_on=data.occurred_on,
            event_type=data.event_type,
            grade=data.grade,
            serious=serious,
            description=data.description.strip(),
            action_taken=data.action_taken,
            outcome=data.outcome,
            recorded_by_id=actor.user_id,
        )
        session.add(event)
        session.flush()
        audit.record(
            session,
            actor,
            "adverse_event.record",
            "adverse_event",
            event.id,
            after=dataclasses.asdict(data) | {"serious": serious, "infusion_id": infusion.id},
        )
        if after_record is not None:
            after_record(session, infusion.patient_id, today, actor)
    return event


def resolve_adverse_event(
    session: so.Session,
    actor: Actor,
    event_id: int,
    resolved_on: dt.date,
    note: str,
    today: dt.date | None = None,
    after_record: Callable[[so.Session, int, dt.date, Actor], object] | None = None,
) -> AdverseEvent:
    """Mark an adverse event resolved (physician): the safety hold it caused lifts.

    Without `today`, the date is the wall-clock date at the patient's home center.
    """
    note = note.strip()
    if not note or len(note) > 2000:
        raise InvalidInput("note: say how it resolved (at most 2000 characters)", field="note")
    with unit_of_work(session):
        event = session.get(AdverseEvent, event_id, with_for_update=True)
        if event is None:
            raise NotFound(f"event_id: no adverse event {event_id}", field="event_id")
        if today is None:
            patient = session.get(Patient, event.patient_id)
            assert patient is not None
            today = clock.clinic_today(patient.home_center.timezone)
        if resolved_on > today:
            raise InvalidInput("resolved_on: not in the future", field="resolved_on")
        if event.resolved_on is not None:
            raise Conflict(
                f"resolved_on: already resolved on {event.resolved_on}", field="resolved_on"
            )
        if resolved_on < event.occurred_on:
            raise InvalidInput(
                f"resolved_on: not before the event ({event.occurred_on})", field="resolved_on"
            )
        event.resolved_on = resolved_on
        event.resolution_note = note
        event.resolved_by_id = actor.user_id
        event.resolved_at = utcnow()
        audit.record(
            session,
            actor,
            "adverse_event.resolve",
            "adverse_event",
            event.id,
            before={"resolved_on": None},
            after={"resolved_on": resolved_on, "note": note},
        )
        if after_record is not None:
            after_record(session, event.patient_id, today, actor)
    return event


def adverse_events_of(session: so.Session, patient_id: int) -> list[AdverseEvent]:
    """A patient's adverse events, open ones first, newest first within each."""
    events = session.scalars(
        sa.select(AdverseEvent)
        .where(AdverseEvent.patient_id == patient_id)
        .order_by(AdverseEvent.occurred_on.desc(), AdverseEvent.id.desc())
    )
    return sorted(events, key=lambda e: e.resolved_on is not None)
