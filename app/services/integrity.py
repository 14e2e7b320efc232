"""Therapy integrity in every transaction: the domain checker runs before each commit.

Any transaction that adds or changes an infusion or a regimen version of a patient is checked
with app.domain.integrity before it commits, whatever service made the change: a session hook
takes the patient's violations at the first flush that touches them (the state before the
transaction) and again at commit. A change that adds a violation is refused and rolled back:
hard rules always, soft rules unless a physician gave an override reason, which is stored on
the infusions concerned and audited in the same transaction.

Comparing with the state before keeps a clinic working when its settings change (a wider
shift window, new holidays): what was already there does not block unrelated writes, and
`flask --app wsgi integrity check` lists it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import policy
from app.config import Settings
from app.db import utcnow
from app.domain import integrity, schedule, visit
from app.models import Center, Infusion, Patient, Regimen
from app.services import audit
from app.services.context import Actor
from app.services.errors import Conflict

_STATE = "integrity"
#: Patients checked together (their facts loaded in one set of queries).
_CHECK_BATCH = 500


class TherapyRuleBroken(Conflict):
    """A change that would break a therapy-integrity rule; nothing was written."""

    code = "therapy_rule"

    def __init__(
        self, violations: Sequence[integrity.Violation], field: str | None, overridable: bool
    ) -> None:
        text = "; ".join(v.message for v in violations)
        if overridable:
            text += " (a physician may go ahead with an override reason)"
        super().__init__(text, field=field)
        self.rules = tuple(dict.fromkeys(v.rule for v in violations))
        self.overridable = overridable

    def details(self) -> dict[str, object]:
        """Name the rules broken and whether a physician may override them."""
        return {"rules": list(self.rules), "overridable": self.overridable}


@dataclass
class _Override:
    actor: Actor
    reason: str


@dataclass
class _State:
    #: patient id -> violations before this transaction touched the patient.
    before: dict[int, list[integrity.Violation]] = field(default_factory=dict)
    locked: set[int] = field(default_factory=set)
    override: _Override | None = None
    #: Patients checked sound since this transaction last changed them (commit skips them).
    verified: set[int] = field(default_factory=set)
    #: The request field a refusal names (e.g. starts_at for a reschedule).
    field: str | None = None


def _state(session: so.Session) -> _State:
    state = session.info.get(_STATE)
    if state is None:
        state = session.info[_STATE] = _State()
    return state


def settings_of(session: so.Session) -> Settings:
    """Return the settings the session was made with (make_session_factory puts them there)."""
    settings: Settings | None = session.info.get("settings")
    if settings is None:
        raise RuntimeError(
            "this session has no settings: build it with app.db.make_session_factory(..., "
            "settings=...) so the therapy-integrity check can run"
        )
    return settings


def guard(
    session: so.Session,
    *,
    field: str | None = None,
    actor: Actor | None = None,
    override_reason: str | None = None,
) -> None:
    """Say which field a refusal names, and pass a physician's override for soft rules."""
    state = _state(session)
    if field is not None:
        state.field = field
    reason = (override_reason or "").strip()
    if actor is not None and reason:
        state.override = _Override(actor, reason)


def lock_patient(session: so.Session, patient_id: int) -> None:
    """Serialise therapy changes of one patient (take this first, before any other row lock)."""
    state = _state(session)
    if patient_id in state.locked:
        return
    state.locked.add(patient_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(Patient.id).where(Patient.id == patient_id).with_for_update())


@dataclass(frozen=True)
class PatientFacts:
    versions: list[integrity.VersionFact]
    infusions: list[integrity.InfusionFact]
    calendars: dict[int, schedule.CenterCalendar]


_COLUMNS = (
    Infusion.id,
    Infusion.regimen_id,
    Infusion.center_id,
    Infusion.cycle_number,
    Infusion.day_number,
    Infusion.planned_date,
    Infusion.cycle_planned_on,
    Infusion.status,
    Infusion.planned_grams,
    Infusion.given_grams,
    Infusion.starts_at,
    Infusion.ends_at,
    Infusion.chair_id,
    Infusion.day_grams,
    Infusion.dose_approval,
    Infusion.given_started_at,
    Infusion.given_ended_at,
    Infusion.waived_rules,
)


def load_facts(session: so.Session, patient_id: int, settings: Settings) -> PatientFacts:
    """Load one patient's regimen versions, infusions and center calendars as plain values."""
    return load_many_facts(session, [patient_id], settings)[patient_id]


def _infusion_fact(row: Any) -> integrity.InfusionFact:
    return integrity.InfusionFact(
        id=row.id,
        regimen_id=row.regimen_id,
        center_id=row.center_id,
        cycle_number=row.cycle_number,
        day_number=row.day_number,
        planned_date=row.planned_date,
        cycle_planned_on=row.cycle_planned_on,
        status=row.status,
        planned_grams=row.planned_grams,
        given_grams=row.given_grams,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        chair_id=row.chair_id,
        day_grams=(
            visit.visit_grams(row.planned_grams, row.day_grams, row.dose_approval)
            if row.day_grams is not None
            else None
        ),
        given_started_at=row.given_started_at,
        given_ended_at=row.given_ended_at,
        waived=frozenset(row.waived_rules or ()),
    )


def load_many_facts(
    session: so.Session, patient_ids: Sequence[int], settings: Settings
) -> dict[int, PatientFacts]:
    """Load patients' facts in three queries and a calendar per center: each center's calendar
    spans every date of these patients (a wider calendar answers each date the same)."""
    from app.services import scheduling

    facts = {pid: PatientFacts([], [], {}) for pid in patient_ids}
    for r in session.execute(
        sa.select(
            Regimen.patient_id,
            Regimen.id,
            Regimen.version,
            Regimen.starts_on,
            Regimen.preferred_weekday,
            Regimen.grams_per_day,
            Regimen.grams_per_cycle,
            Regimen.days_per_cycle,
            Regimen.interval_weeks,
        ).where(Regimen.patient_id.in_(patient_ids))
    ):
        facts[r.patient_id].versions.append(
            integrity.VersionFact(
                id=r.id,
                version=r.version,
                effective_on=schedule.first_cycle_start(r.starts_on, r.preferred_weekday),
                grams_per_day=r.grams_per_day,
                grams_per_cycle=r.grams_per_cycle,
                days_per_cycle=r.days_per_cycle,
                interval_weeks=r.interval_weeks,
            )
        )
    spans: dict[int, tuple[dt.date, dt.date]] = {}
    for row in session.execute(
        sa.select(Infusion.patient_id, *_COLUMNS).where(Infusion.patient_id.in_(patient_ids))
    ):
        facts[row.patient_id].infusions.append(_infusion_fact(row))
        low, high = spans.get(row.center_id, (row.planned_date, row.planned_date))
        spans[row.center_id] = (min(low, row.planned_date), max(high, row.planned_date))
    calendars: dict[int, schedule.CenterCalendar] = {}
    for center_id, (low, high) in spans.items():
        # The session's own copy: a re-plan or a closure in this transaction loaded it.
        center = session.get(Center, center_id)
        assert center is not None
        week = dt.timedelta(days=7)
        calendars[center_id] = scheduling.center_calendar(center, settings, low - week, high + week)
    for patient in facts.values():
        for center_id in {i.center_id for i in patient.infusions}:
            patient.calendars[center_id] = calendars[center_id]
    return facts


CourseLimits = integrity.CourseLimits


def check_patient(
    session: so.Session, patient_id: int, settings: Settings, now: dt.datetime | None = None
) -> list[integrity.Violation]:
    """Return the rules a patient's booked therapy breaks now (empty when sound)."""
    return check_patients(session, [patient_id], settings, now)[patient_id]


def check_patients(
    session: so.Session,
    patient_ids: Sequence[int],
    settings: Settings,
    now: dt.datetime | None = None,
) -> dict[int, list[integrity.Violation]]:
    """Return each patient's broken rules now (empty lists when sound), in a fixed number of
    queries for the lot."""
    from app.services import reviews

    now = now or utcnow()
    facts = load_many_facts(session, patient_ids, settings)
    starts: dict[int, dict[int, dt.date]] = {}
    for patient_id, patient in facts.items():
        if not patient.infusions:
            continue
        firsts = starts[patient_id] = {}
        for infusion in patient.infusions:
            if infusion.live:
                first = firsts.get(infusion.cycle_number)
                if first is None or infusion.planned_date < first:
                    firsts[infusion.cycle_number] = infusion.planned_date
    courses = reviews.load_courses(session, list(starts), starts) if starts else {}
    limits = settings.integrity_limits()
    return {
        patient_id: integrity.check(
            patient.versions,
            patient.infusions,
            patient.calendars,
            now,
            limits,
            reviews.integrity_limits(courses[patient_id]) if patient_id in courses else None,
        )
        for patient_id, patient in facts.items()
    }


def check_everyone(session: so.Session, settings: Settings) -> dict[int, list[integrity.Violation]]:
    """Return every patient's violations (for `flask integrity check`); writes nothing."""
    found = {}
    everyone = list(session.scalars(sa.select(Patient.id).order_by(Patient.id)))
    for start in range(0, len(everyone), _CHECK_BATCH):
        batch = everyone[start : start + _CHECK_BATCH]
        for patient_id, violations in check_patients(session, batch, settings).items():
            if violations:
                found[patient_id] = violations
    return found


def _touched(objects: Any) -> set[int]:
    return {
        obj.patient_id
        for obj in objects
        if isinstance(obj, Infusion | Regimen) and obj.patient_id is not None
    }


@sa.event.listens_for(so.Session, "before_flush")
def _snapshot(session: so.Session, _context: Any, _instances: Any) -> None:
    """Record each patient's violations before this transaction first changes them."""
    patients = _touched((*session.new, *session.dirty, *session.deleted))
    if not patients:
        return
    state = _state(session)
    state.verified -= patients
    fresh = sorted(patients - state.before.keys())
    if not fresh:
        return
    settings = settings_of(session)
    with session.no_autoflush:
        for patient_id in fresh:
            lock_patient(session, patient_id)
        state.before.update(check_patients(session, fresh, settings))


def fresh_patients(session: so.Session, patient_ids: Sequence[int]) -> None:
    """Patients this transaction created had no violations before it: nothing to look up."""
    state = _state(session)
    for patient_id in patient_ids:
        state.before.setdefault(patient_id, [])
        state.locked.add(patient_id)


def added_violations(
    session: so.Session, remember: bool = False
) -> dict[int, list[integrity.Violation]]:
    """Each patient this transaction touched, with the violations it would add (none: left
    out), in patient order. With `remember`, the patients found sound are not checked again
    at commit unless a later flush changes their infusions or regimens through the session
    (a caller writing in bulk after this must check again)."""
    session.flush()  # changes not yet flushed take their "before" snapshot now
    state = session.info.get(_STATE)
    if state is None or not state.before:
        return {}
    settings = settings_of(session)
    found = {}
    waiting = sorted(pid for pid in state.before if pid not in state.verified)
    for start in range(0, len(waiting), _CHECK_BATCH):
        batch = waiting[start : start + _CHECK_BATCH]
        for patient_id, now in check_patients(session, batch, settings).items():
            added = integrity.new_violations(state.before[patient_id], now)
            if added:
                found[patient_id] = added
            elif remember:
                state.verified.add(patient_id)
    return found


def verify_commit(session: so.Session) -> None:
    """Refuse the commit if it adds a violation (soft ones pass with a physician's override)."""
    if session.in_nested_transaction():
        return
    state = session.info.get(_STATE)
    for patient_id, added in added_violations(session).items():
        assert state is not None
        hard = [v for v in added if v.hard]
        if hard:
            raise TherapyRuleBroken(hard, state.field, overridable=False)
        override = state.override
        if override is None or not policy.can(override.actor.role, policy.Action.OVERRIDE_RULE):
            raise TherapyRuleBroken(added, state.field, overridable=True)
        _waive(session, patient_id, added, override)
    session.flush()


def _waive(
    session: so.Session,
    patient_id: int,
    violations: Sequence[integrity.Violation],
    override: _Override,
) -> None:
    """Store a physician's override on the infusions concerned, with an audit row."""
    by_id: dict[int, set[str]] = {}
    for violation in violations:
        for infusion_id in violation.infusion_ids:
            by_id.setdefault(infusion_id, set()).add(violation.rule)
    for infusion in session.scalars(sa.select(Infusion).where(Infusion.id.in_(by_id))):
        infusion.waived_rules = sorted({*(infusion.waived_rules or ()), *by_id[infusion.id]})
        infusion.waiver_reason = override.reason[:2000]
    audit.record(
        session,
        override.actor,
        "integrity.override",
        "patient",
        patient_id,
        after={
            "reason": override.reason,
            "rules": [{"rule": v.rule, "message": v.message} for v in violations],
            "infusion_ids": sorted(by_id),
        },
    )


@sa.event.listens_for(so.Session, "after_transaction_end")
def _forget(session: so.Session, transaction: so.SessionTransaction) -> None:
    """A finished transaction (committed or rolled back) leaves nothing for the next one."""
    if transaction.parent is None:
        session.info.pop(_STATE, None)
