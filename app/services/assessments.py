"""Response assessments: recorded by nurses and physicians, then read by the rules engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.domain.scores import SCORE_RANGES, SCORES
from app.models import Assessment, Patient
from app.services import audit
from app.services.context import Actor, unit_of_work
from app.services.errors import InvalidInput, NotFound


@dataclasses.dataclass(frozen=True)
class AssessmentInput:
    assessed_on: dt.date
    scores: dict[str, float | None]
    notes: str = ""


def check_scores(scores: dict[str, float | None]) -> dict[str, float | None]:
    """Return the scores, or raise InvalidInput naming the first field out of its range."""
    unknown = set(scores) - set(SCORES)
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"{name}: not a score; known: {', '.join(SCORES)}", field=name)
    for name, low, high in SCORE_RANGES:
        value = scores.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput(f"{name}: give a number", field=name)
        if not low <= value <= high:
            raise InvalidInput(f"{name}: {value:g} is outside {low:g}-{high:g}", field=name)
    if all(scores.get(name) is None for name in SCORES):
        raise InvalidInput("cdasi_activity: record at least one score", field="cdasi_activity")
    if (scores.get("ck") is None) != (scores.get("ck_uln") is None):
        raise InvalidInput(
            "ck_uln: give CK together with the lab's upper limit of normal", field="ck_uln"
        )
    return scores


def record_assessment(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: AssessmentInput,
    today: dt.date,
    after_record: Callable[[so.Session, int, dt.date, Actor], object] | None = None,
) -> Assessment:
    """Record an assessment; `after_record` (the rules engine) runs in the same transaction."""
    scores = check_scores(dict(data.scores))
    if data.assessed_on > today:
        raise InvalidInput("assessed_on: not in the future", field="assessed_on")
    if len(data.notes) > 4000:
        raise InvalidInput("notes: at most 4000 characters", field="notes")
    with unit_of_work(session):
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
        if data.assessed_on < patient.birth_date:
            raise InvalidInput(
                f"assessed_on: not before the patient's birth date ({patient.birth_date})",
                field="assessed_on",
            )
        assessment = Assessment(
            patient_id=patient_id,
            assessed_on=data.assessed_on,
            notes=data.notes.strip(),
            recorded_by_id=actor.user_id,
            **{name: scores.get(name) for name in SCORES},
        )
        session.add(assessment)
        session.flush()
        audit.record(
            session,
            actor,
            "assessment.record",
            "assessment",
            assessment.id,
            after={"patient_id": patient_id, "assessed_on": data.assessed_on, **scores},
        )
        if after_record is not None:
            after_record(session, patient_id, today, actor)
    return assessment


def list_assessments(session: so.Session, patient_id: int) -> list[Assessment]:
    """A patient's assessments, newest first."""
    return list(
        session.scalars(
            sa.select(Assessment)
            .where(Assessment.patient_id == patient_id)
            .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
        )
    )
