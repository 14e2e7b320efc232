"""A patient's course in one picture: what app.domain.timeline draws, loaded in a fixed
number of queries (the rules' record of the patient, then the given days, the suggestions,
the reviews and the taper steps)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.config import Settings
from app.domain import timeline
from app.domain.rules import facts
from app.models import (
    Assessment,
    CourseReview,
    Infusion,
    Patient,
    Suggestion,
    TaperPlan,
    TaperStep,
)
from app.models.infusion import InfusionStatus
from app.services import suggestions
from app.services.errors import NotFound

_GIVEN = (InfusionStatus.GIVEN, InfusionStatus.PARTIAL)


def course(
    session: so.Session, patient_id: int, settings: Settings, today: dt.date | None = None
) -> tuple[timeline.Course, str]:
    """The patient's course from the first thing recorded to today (at their home center),
    and the chart's title."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
    today = today or clock.clinic_today(patient.home_center.timezone)
    record = suggestions.load_record(session, patient_id, settings, today)
    history = suggestions.history_of(patient_id, record, settings, today)
    ruleset = suggestions.load_ruleset(settings)
    scored = [a for a in record.assessments if a.assessed_on <= today]
    given = session.execute(
        sa.select(
            Infusion.planned_date, Infusion.cycle_number, Infusion.day_number, Infusion.given_grams
        )
        .where(Infusion.patient_id == patient_id, Infusion.status.in_([s.value for s in _GIVEN]))
        .order_by(Infusion.planned_date)
    ).all()
    decided = session.execute(
        sa.select(Suggestion.created_at, Suggestion.status, Suggestion.summary)
        .where(Suggestion.patient_id == patient_id)
        .order_by(Suggestion.id)
    ).all()
    reviewed = session.execute(
        sa.select(CourseReview.reviewed_on, CourseReview.decision)
        .where(CourseReview.patient_id == patient_id)
        .order_by(CourseReview.reviewed_on)
    ).all()
    steps = session.execute(
        taper_steps_select()
        .where(TaperStep.patient_id == patient_id)
        .order_by(TaperPlan.version, TaperStep.position)
    ).all()
    markers = [
        timeline.Marker(day, "infusion", f"Cycle {cycle} day {number}: {grams:g} g given on {day}")
        for day, cycle, number, grams in given
    ]
    markers += [
        timeline.Marker(
            e.occurred_on,
            "reaction",
            f"{e.event_type.replace('_', ' ')}, grade {e.grade}, on {e.occurred_on}",
        )
        for e in record.adverse_events
    ]
    markers += [
        timeline.Marker(at.date(), "suggestion", f"{summary} ({status})", status)
        for at, status, summary in decided
    ]
    markers += [
        timeline.Marker(day, "review", f"Course review on {day}: {decision}")
        for day, decision in reviewed
    ]
    prednisone = prednisone_steps(steps, settings.steroids.equivalence)
    ivig = [
        timeline.Step(
            v.effective_on,
            v.dose_g_per_kg,
            f"{v.dose_g_per_kg:g} g/kg every {v.interval_weeks} weeks",
        )
        for v in history.regimens
    ]
    dates = [
        *(a.assessed_on for a in scored),
        *(m.on for m in markers),
        *(s.since for s in ivig),
        *(s.since for s in prednisone),
    ]
    first = min(dates, default=today)
    last = max([today, *dates])
    drawn = timeline.Course(
        first=first,
        last=last,
        cdasi_activity=_points(scored, "cdasi_activity"),
        cdasi_damage=_points(scored, "cdasi_damage"),
        mmt8=_points(scored, "mmt8"),
        tis=tuple(
            timeline.Point(day, value) for day, value in facts.tis_series(history, ruleset.settings)
        ),
        ivig=tuple(ivig),
        prednisone=tuple(prednisone),
        markers=tuple(markers),
    )
    return drawn, f"Course of {patient.display_name}, {first} to {last}"


def taper_steps_select() -> sa.Select[int, str, float, str, dt.date | None, dt.date]:
    """A patient's taper steps as prednisone_steps reads them (plan version, drug, mg/day,
    status, started on, earliest on); the caller adds which patients and the order (plan
    version, then position)."""
    return sa.select(
        TaperPlan.version,
        TaperPlan.drug,
        TaperStep.mg_per_day,
        TaperStep.status,
        TaperStep.started_on,
        TaperStep.earliest_on,
    ).join(TaperPlan, TaperPlan.id == TaperStep.plan_id)


def prednisone_steps(
    rows: Iterable[Sequence[Any]], equivalence: Mapping[str, float], *, planned: bool = True
) -> list[timeline.Step]:
    """One patient's prednisone-equivalent mg/day as steps, by start: every step started, and
    (`planned`) the newest plan's steps not started yet, from their earliest day."""
    rows = list(rows)
    latest_plan = max((row[0] for row in rows), default=None)
    steps = [
        timeline.Step(
            started or earliest,
            mg * equivalence.get(drug, 1.0),
            f"{mg * equivalence.get(drug, 1.0):g} mg/day" + ("" if started else " (planned)"),
        )
        for version, drug, mg, _status, started, earliest in rows
        if started is not None or (planned and version == latest_plan)
    ]
    return sorted(steps, key=lambda s: s.since)


def _points(assessments: Sequence[Assessment], name: str) -> tuple[timeline.Point, ...]:
    return tuple(
        timeline.Point(a.assessed_on, float(getattr(a, name)))
        for a in assessments
        if getattr(a, name) is not None
    )
