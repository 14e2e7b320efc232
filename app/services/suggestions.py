"""The rules engine's suggestions: evaluated from the facts, decided only by physicians."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.config import PROJECT_ROOT, Settings
from app.db import utcnow
from app.domain import schedule
from app.domain.integrity import GIVEN
from app.domain.rules import engine, facts
from app.models import (
    AdverseEvent,
    Assessment,
    Center,
    Infusion,
    Patient,
    Regimen,
    StepStatus,
    Suggestion,
    TaperPlan,
    TaperStep,
)
from app.services import (
    audit,
    integrity,
    jobruns,
    previews,
    regimens,
    scheduling,
    tapers,
    versions,
)
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound

DEFAULT_RULES = PROJECT_ROOT / "app" / "domain" / "rules" / "default_rules.toml"


def rules_path(settings: Settings) -> Path:
    """The rule file the clinic configured, or the default one."""
    if not settings.rules.file:
        return DEFAULT_RULES
    path = Path(settings.rules.file)
    return path if path.is_absolute() else Path(settings.source).parent / path


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> engine.RuleSet:
    return engine.load_rules(Path(path).read_text(encoding="utf-8"))


def load_ruleset(settings: Settings, path: Path | None = None) -> engine.RuleSet:
    """Load (and cache until the file changes) the rule set; errors name the rule."""
    path = path or rules_path(settings)
    return _load(str(path), path.stat().st_mtime)


def _as_fact(a: Assessment) -> facts.Assessment:
    return facts.Assessment(
        id=a.id,
        assessed_on=a.assessed_on,
        cdasi_activity=a.cdasi_activity,
        cdasi_damage=a.cdasi_damage,
        mmt8=a.mmt8,
        ck=a.ck,
        ck_uln=a.ck_uln,
        physician_global=a.physician_global,
        patient_global=a.patient_global,
        pruritus=a.pruritus,
        haq=a.haq,
        extramuscular_global=a.extramuscular_global,
    )


@dataclasses.dataclass(frozen=True)
class PatientRecord:
    """What the rules read about one patient, loaded from the database."""

    assessments: list[Assessment]
    regimens: list[Regimen]
    #: Each cycle given (a day of it given or partial), as the date of its first day given.
    day_ones_given: list[dt.date]
    adverse_events: list[AdverseEvent]
    taper: tapers.TaperView | None
    #: The home center's time zone: the clinic's dates (a version's decision date) use it.
    timezone: str = "UTC"


def load_record(
    session: so.Session, patient_id: int, settings: Settings, as_of: dt.date
) -> PatientRecord:
    """One patient's record (load_records of one)."""
    return load_records(session, [patient_id], settings, as_of)[patient_id]


def _cycles_given(which: sa.ColumnElement[bool]) -> sa.Select[int, dt.date]:
    """(patient id, first day given) of each cycle with a day given or partial."""
    return (
        sa.select(Infusion.patient_id, sa.func.min(Infusion.planned_date).label("first_given"))
        .where(which, Infusion.status.in_(sorted(GIVEN)))
        .group_by(Infusion.patient_id, Infusion.cycle_number)
    )


#: Patients per IN (...) list when loading many records at once.
_CHUNK = 900


def load_records(
    session: so.Session, patient_ids: Sequence[int], settings: Settings, as_of: dt.date
) -> dict[int, PatientRecord]:
    """Load many patients' records with a fixed number of queries per chunk of patients."""
    records: dict[int, PatientRecord] = {}
    for start in range(0, len(patient_ids), _CHUNK):
        chunk = list(patient_ids[start : start + _CHUNK])
        by: dict[str, dict[int, list[Any]]] = {
            k: defaultdict(list) for k in ("a", "r", "d", "e", "t")
        }
        for a in session.scalars(
            sa.select(Assessment)
            .where(Assessment.patient_id.in_(chunk))
            .order_by(Assessment.assessed_on, Assessment.id)
        ):
            by["a"][a.patient_id].append(a)
        for r in session.scalars(
            sa.select(Regimen).where(Regimen.patient_id.in_(chunk)).order_by(Regimen.version)
        ):
            by["r"][r.patient_id].append(r)
        # A cycle counts as given from its first day given: a cycle missed altogether is no
        # cycle of therapy (its day 1 recorded as missed is not one either).
        for pid, day in session.execute(_cycles_given(Infusion.patient_id.in_(chunk))):
            by["d"][pid].append(day)
        for e in session.scalars(sa.select(AdverseEvent).where(AdverseEvent.patient_id.in_(chunk))):
            by["e"][e.patient_id].append(e)
        zones = dict(
            session.execute(
                sa.select(Patient.id, Center.timezone)
                .join(Center, Patient.home_center_id == Center.id)
                .where(Patient.id.in_(chunk))
            ).all()
        )
        for plan in session.scalars(
            sa.select(TaperPlan)
            .where(TaperPlan.patient_id.in_(chunk))
            .options(so.selectinload(TaperPlan.steps))
            .order_by(TaperPlan.version.desc())
        ):
            by["t"][plan.patient_id].append(plan)
        for pid in chunk:
            plans = by["t"].get(pid)
            records[pid] = PatientRecord(
                assessments=by["a"].get(pid, []),
                regimens=by["r"].get(pid, []),
                day_ones_given=sorted(by["d"].get(pid, [])),
                adverse_events=by["e"].get(pid, []),
                taper=tapers.taper_view(plans, settings, as_of) if plans else None,
                timezone=zones.get(pid, "UTC"),
            )
    return records


def history_of(
    patient_id: int, record: PatientRecord, settings: Settings, as_of: dt.date
) -> facts.History:
    """Turn a loaded record into the plain values the rules engine reads."""
    versions_ = tuple(
        facts.RegimenVersion(
            version=r.version,
            effective_on=scheduling.first_cycle_start(r),
            dose_g_per_kg=r.dose_g_per_kg,
            interval_weeks=r.interval_weeks,
            days_per_cycle=r.days_per_cycle,
            product=r.product,
            set_on=schedule.local_date(r.created_at, record.timezone),
        )
        for r in record.regimens
    )
    taper_fact = None
    view = record.taper
    if view is not None and view.plan is not None:
        equivalence = settings.steroids.equivalence.get(view.plan.drug, 1.0)
        taper_fact = facts.TaperFact(
            current_mg_prednisone=view.active.mg_per_day * equivalence if view.active else None,
            next_step_due=bool(
                view.next
                and view.next_due_on
                and view.next_due_on <= as_of
                and view.next.status == StepStatus.PLANNED
            ),
            floor_mg=settings.steroids.physiological_floor_mg,
        )
    return facts.History(
        patient_id=patient_id,
        as_of=as_of,
        course_started_on=min((v.effective_on for v in versions_), default=None),
        assessments=tuple(_as_fact(a) for a in record.assessments),
        cycles_given=tuple(record.day_ones_given),
        regimens=versions_,
        adverse_events=tuple(
            facts.AdverseEventFact(e.occurred_on, e.event_type, e.serious, e.resolved_on)
            for e in record.adverse_events
        ),
        taper=taper_fact,
    )


def rules_actor(cause: Actor | None) -> Actor:
    """The actor rule-made changes are audited as, linked to the request or job behind them."""
    if cause is None:
        return Actor(label="system:rules")
    return Actor(label=f"system:rules after {cause.label}"[:254], request_id=cause.request_id)


def evaluate_patient(
    session: so.Session,
    patient_id: int,
    settings: Settings,
    as_of: dt.date | None = None,
    cause: Actor | None = None,
) -> list[Suggestion]:
    """Run the rules for one patient and store new suggestions (inside the caller's unit).

    `cause` is who or what brought new evidence (a nurse's entry, the nightly job): the rows
    the rules write carry its request id.
    """
    if as_of is None:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        as_of = clock.clinic_today(patient.home_center.timezone)
    ruleset = load_ruleset(settings)
    record = load_record(session, patient_id, settings, as_of)
    found = _evaluate(ruleset, patient_id, record, settings, as_of)
    return _store(session, ruleset, [found], rules_actor(cause))


@dataclasses.dataclass(frozen=True)
class _Evaluation:
    """What the rules say about one patient on a date, with the record they read."""

    patient_id: int
    as_of: dt.date
    record: PatientRecord
    fact_values: Any
    proposals: tuple[Any, ...]


def _evaluate(
    ruleset: engine.RuleSet,
    patient_id: int,
    record: PatientRecord,
    settings: Settings,
    as_of: dt.date,
) -> _Evaluation:
    fact_values, proposals = engine.evaluate_history(
        ruleset, history_of(patient_id, record, settings, as_of)
    )
    return _Evaluation(patient_id, as_of, record, fact_values, tuple(proposals))


def _sources(found: _Evaluation) -> dict[str, object]:
    """The evidence a suggestion's dedupe key names: the same evidence, the same key."""
    record, as_of = found.record, found.as_of
    evidence = [a.id for a in record.assessments if a.assessed_on <= as_of][-3:]
    next_step = record.taper.next if record.taper else None
    return {
        "assessment": evidence[-1] if evidence else 0,
        "regimen": max((r.version for r in record.regimens), default=0),
        "adverse_events": "-".join(
            str(e.id)
            for e in sorted(record.adverse_events, key=lambda e: e.id)
            if e.serious
            and e.occurred_on <= as_of
            and (e.resolved_on is None or e.resolved_on > as_of)
        )
        or 0,
        "taper": next_step.id if next_step else 0,
    }


def _key(ruleset: engine.RuleSet, found: _Evaluation, proposal: Any) -> str:
    rule = ruleset.rule(proposal.rule_id)
    sources = _sources(found)
    reads = rule.evidence if rule else frozenset(sources)
    return ":".join(
        [str(found.patient_id), proposal.rule_id, str(proposal.rule_version)]
        + [f"{name}={sources[name]}" for name in sorted(reads)]
    )


def _store(
    session: so.Session,
    ruleset: engine.RuleSet,
    evaluations: Sequence[_Evaluation],
    system: Actor,
) -> list[Suggestion]:
    """Store what the rules said about some patients, with a fixed number of queries for all
    of them: their pending suggestions and the ones their proposals would repeat are read
    at once, the new ones written in one flush (one by one only if a concurrent evaluation
    stored one of them first)."""
    ids = [found.patient_id for found in evaluations]
    pending: dict[int, list[Suggestion]] = defaultdict(list)
    for row in session.scalars(
        sa.select(Suggestion)
        .where(Suggestion.patient_id.in_(ids), Suggestion.status == "pending")
        .order_by(Suggestion.id)
    ):
        pending[row.patient_id].append(row)
    keys = {
        (found.patient_id, index): _key(ruleset, found, proposal)
        for found in evaluations
        for index, proposal in enumerate(found.proposals)
    }
    existing = {
        row.dedupe_key: row
        for row in session.scalars(
            sa.select(Suggestion).where(Suggestion.dedupe_key.in_(set(keys.values())))
        )
    }
    now = utcnow()
    created: list[Suggestion] = []
    new: list[tuple[_Evaluation, Any, Suggestion]] = []
    for found in evaluations:
        _expire_stale(found, pending[found.patient_id], now)
        for index, proposal in enumerate(found.proposals):
            key = keys[found.patient_id, index]
            same = existing.get(key)
            if same is not None:
                if same.status == "expired" and not (same.decision_reason or "").startswith(
                    UNDECIDED
                ):
                    # What blocked it has gone (a resolved event): it stands again, and
                    # supersedes a pending one of its kind as a new suggestion would.
                    _revive(session, same, now, system)
                    _supersede_others(pending[found.patient_id], same, ruleset, now)
                    pending[found.patient_id].append(same)
                    created.append(same)
                continue
            suggestion = _new_suggestion(found, proposal, key, now)
            existing[key] = suggestion  # the same proposal twice stores one suggestion
            new.append((found, proposal, suggestion))
    stored = _insert(session, [suggestion for _f, _p, suggestion in new])
    for found, proposal, suggestion in new:
        if suggestion not in stored:
            continue  # a concurrent evaluation stored the same suggestion first
        _supersede_others(pending[found.patient_id], suggestion, ruleset, now)
        pending[found.patient_id].append(suggestion)
        if proposal.action == "hold_taper":
            # Holding keeps today's dose: safe to do at once; a physician releases it.
            _hold_next_step(session, system, found.patient_id, suggestion.summary)
        audit.record(
            session,
            system,
            "suggestion.create",
            "suggestion",
            suggestion.id,
            after={
                "patient_id": found.patient_id,
                "rule": proposal.rule_id,
                "summary": suggestion.summary,
            },
        )
        created.append(suggestion)
    return created


def _expire_stale(found: _Evaluation, pending: Sequence[Suggestion], now: dt.datetime) -> None:
    """The facts no longer call for a pending suggestion of a rule that did not fire (a flare
    settled, an event resolved): it expires, so nobody approves a change the record no
    longer supports."""
    fired = {proposal.rule_id for proposal in found.proposals}
    for stale in pending:
        if stale.rule_id not in fired and stale.status == "pending":
            stale.status = "expired"
            stale.decision_reason = f"No longer indicated on {found.as_of}: the facts changed"
            stale.updated_at = now
            stale.version += 1


def _new_suggestion(found: _Evaluation, proposal: Any, key: str, now: dt.datetime) -> Suggestion:
    record, as_of = found.record, found.as_of
    evidence = [a.id for a in record.assessments if a.assessed_on <= as_of][-3:]
    next_step = record.taper.next if record.taper else None
    params = dict(proposal.params)
    step_id = None
    if proposal.action == "taper_step" and next_step is not None:
        params |= {"step_id": next_step.id, "to_mg": next_step.mg_per_day}
        step_id = next_step.id
    return Suggestion(
        patient_id=found.patient_id,
        dedupe_key=key,
        kind=proposal.action,
        rule_id=proposal.rule_id,
        rule_version=proposal.rule_version,
        indicator=proposal.indicator,
        summary=proposal.summary[:139],
        detail=proposal.detail,
        proposal=audit.json_safe(params),
        facts=audit.json_safe(dict(found.fact_values)),
        evidence=evidence,
        step_id=step_id,
        created_at=now,
        updated_at=now,
    )


def _insert(session: so.Session, rows: Sequence[Suggestion]) -> list[Suggestion]:
    """Write new suggestions in one flush; on a duplicate key (a concurrent evaluation got
    there first) again one by one, keeping the others."""
    if not rows:
        return []
    try:
        with session.begin_nested():
            session.add_all(rows)
            session.flush()
        return list(rows)
    except sa.exc.IntegrityError:
        pass
    stored = []
    for row in rows:
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            stored.append(row)
        except sa.exc.IntegrityError:
            continue
    return stored


def _supersede_others(
    pending: Sequence[Suggestion], suggestion: Suggestion, ruleset: engine.RuleSet, now: dt.datetime
) -> None:
    """Same kind: the newer one supersedes the pending one; a kind this rule blocks (the
    safety hold blocks de-escalation) expires. `pending`: the patient's pending suggestions."""
    rule = ruleset.rule(suggestion.rule_id)
    blocks = rule.blocks if rule else ()
    for older in pending:
        if (
            older is not suggestion
            and older.status == "pending"
            and older.kind in (suggestion.kind, *blocks)
        ):
            older.status = "superseded" if older.kind == suggestion.kind else "expired"
            older.updated_at = now
            older.version += 1


#: How an expiry for want of a decision begins (housekeeping): such a suggestion does not come
#: back; new evidence makes a new one (DOMAIN.md: unapproved orders expire).
UNDECIDED = "Not decided within"


def expire_undecided(
    session: so.Session, settings: Settings, now: dt.datetime, system: Actor
) -> int:
    """Expire pending suggestions older than the configured days, a batch per transaction."""
    days = settings.notices.suggestion_expiry_days
    cutoff = now - dt.timedelta(days=days)

    def one_batch() -> int:
        statement = (
            sa.select(Suggestion)
            .where(Suggestion.status == "pending", Suggestion.created_at < cutoff)
            .order_by(Suggestion.id)
            .limit(settings.scheduler.batch_size)
        )
        if session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        batch = list(session.scalars(statement))
        for suggestion in batch:
            suggestion.status = "expired"
            suggestion.decision_reason = f"{UNDECIDED} {days} days"
            suggestion.updated_at = now
            suggestion.version += 1
            audit.record(
                session,
                system,
                "suggestion.expire",
                "suggestion",
                suggestion.id,
                after={"status": "expired", "reason": suggestion.decision_reason},
            )
        return len(batch)

    expired = 0
    while made := jobruns.in_batch(session, one_batch):
        expired += made
    return expired


def _revive(session: so.Session, suggestion: Suggestion, now: dt.datetime, system: Actor) -> None:
    suggestion.status = "pending"
    suggestion.decision_reason = None
    suggestion.updated_at = now
    suggestion.version += 1
    audit.record(
        session,
        system,
        "suggestion.revive",
        "suggestion",
        suggestion.id,
        after={"rule": suggestion.rule_id, "summary": suggestion.summary},
    )


def evaluation_hook(
    settings: Settings,
) -> Callable[[so.Session, int, dt.date, Actor], object]:
    """The function the assessment and adverse-event services call after new evidence."""

    def run(session: so.Session, patient_id: int, as_of: dt.date, cause: Actor) -> object:
        return evaluate_patient(session, patient_id, settings, as_of, cause)

    return run


def _decided(suggestion: Suggestion, actor: Actor, status: str, reason: str | None) -> None:
    now = utcnow()
    suggestion.status = status
    suggestion.decided_by_id = actor.user_id
    suggestion.decided_at = now
    suggestion.decision_reason = reason
    suggestion.version += 1
    suggestion.updated_at = now


def _pending(session: so.Session, suggestion_id: int, expected_version: int | None) -> Suggestion:
    suggestion = versions.load_for_change(
        session, Suggestion, suggestion_id, expected_version, "suggestion_id"
    )
    if suggestion.status != "pending":
        raise Conflict(f"status: the suggestion is already {suggestion.status}", field="status")
    return suggestion


def _next_cycle_start(
    session: so.Session, patient_id: int, today: dt.date, interval_weeks: int
) -> dt.date:
    """Where a changed regimen starts: the next planned cycle, but never sooner than the new
    interval after the last cycle given (widening 4 to 6 weeks moves the next cycle out)."""
    cycles = _cycles_given(Infusion.patient_id == patient_id).subquery()
    last_given = session.scalar(sa.select(sa.func.max(cycles.c.first_given)))
    earliest = last_given + dt.timedelta(weeks=interval_weeks) if last_given else today
    return max(scheduling.next_planned_start(session, patient_id, today), earliest)


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the physician decides on a suggestion: its version, a different value and why."""

    expected_version: int | None = None
    value: float | None = None
    reason: str | None = None


def _patient_of(session: so.Session, suggestion_id: int) -> int:
    patient_id = session.scalar(
        sa.select(Suggestion.patient_id).where(Suggestion.id == suggestion_id)
    )
    if patient_id is None:
        raise NotFound(f"suggestion_id: no suggestion {suggestion_id}", field="suggestion_id")
    return patient_id


def approve(
    session: so.Session,
    actor: Actor,
    suggestion_id: int,
    settings: Settings,
    expected_version: int | None = None,
    value: float | None = None,
    reason: str | None = None,
    fingerprint: str | None = None,
) -> Suggestion:
    """Approve a suggestion and apply it: regimen, re-planned infusions, taper, audit: one unit;
    with the `fingerprint` of a preview, only if the bookings change exactly as it showed."""
    patient_id = _patient_of(session, suggestion_id)
    decision = Decision(expected_version, value, reason)
    with unit_of_work(session):
        suggestion, _preview = previews.confirmed(
            session,
            Infusion.patient_id == patient_id,
            lambda: _approve(session, actor, suggestion_id, settings, decision),
            fingerprint,
        )
    return suggestion


def preview_approval(
    session: so.Session,
    actor: Actor,
    suggestion_id: int,
    settings: Settings,
    decision: Decision,
) -> tuple[dict[str, Any], previews.Preview]:
    """What approving would do: the regimen before and after (or the taper step, or the
    hold) and the bookings that change; nothing is saved."""
    patient_id = _patient_of(session, suggestion_id)

    def change() -> dict[str, Any]:
        before = regimens.regimen_view(regimens.current_regimen(session, patient_id))
        suggestion = _approve(session, actor, suggestion_id, settings, decision)
        applied = (
            session.get(Regimen, suggestion.applied_regimen_id)
            if suggestion.applied_regimen_id
            else None
        )
        step = (
            session.get(TaperStep, suggestion.applied_step_id)
            if suggestion.applied_step_id
            else None
        )
        return {
            "kind": suggestion.kind,
            "summary": suggestion.summary,
            "old": before if applied else None,
            "new": regimens.regimen_view(applied),
            "step_mg_per_day": step.mg_per_day if step else None,
        }

    return previews.dry_run(session, Infusion.patient_id == patient_id, change)


def _approve(
    session: so.Session,
    actor: Actor,
    suggestion_id: int,
    settings: Settings,
    decision: Decision,
) -> Suggestion:
    expected_version, value = decision.expected_version, decision.value
    reason = (decision.reason or "").strip() or None
    if value is not None and reason is None:
        raise InvalidInput("reason: say why you change the proposed value", field="reason")
    with unit_of_work(session):
        patient_id = session.scalar(
            sa.select(Suggestion.patient_id).where(Suggestion.id == suggestion_id)
        )
        if patient_id is not None:
            integrity.lock_patient(session, patient_id)  # first, as every therapy change
        suggestion = _pending(session, suggestion_id, expected_version)
        patient = session.get(Patient, suggestion.patient_id)
        assert patient is not None
        today = clock.clinic_today(patient.home_center.timezone)
        params = suggestion.proposal
        _decided(suggestion, actor, "approved", reason)
        if suggestion.kind in ("deescalate_ivig", "flare_return"):
            current = regimens.current_regimen(session, patient.id, lock=True)
            if current is None:
                raise Conflict("status: the patient has no regimen to change", field="status")
            changes: dict[str, object] = {}
            if suggestion.kind == "deescalate_ivig":
                target = value if value is not None else params["to"]
                field = "dose_g_per_kg" if params["change"] == "dose" else "interval_weeks"
                changes[field] = target if field == "dose_g_per_kg" else int(target)
            else:
                back = session.scalar(
                    sa.select(Regimen).where(
                        Regimen.patient_id == patient.id, Regimen.version == params["to_version"]
                    )
                )
                if back is None:
                    raise Conflict("status: the regimen to return to is gone", field="status")
                changes = {
                    "dose_g_per_kg": back.dose_g_per_kg,
                    "interval_weeks": back.interval_weeks,
                    "days_per_cycle": back.days_per_cycle,
                    "product": back.product,
                }
                _hold_next_step(session, actor, patient.id, f"Flare (suggestion #{suggestion.id})")
            interval_weeks = int(changes.get("interval_weeks", current.interval_weeks))  # type: ignore[call-overload]
            data = regimens.RegimenInput(
                product=str(changes.get("product", current.product)),
                dose_g_per_kg=float(changes.get("dose_g_per_kg", current.dose_g_per_kg)),  # type: ignore[arg-type]
                days_per_cycle=int(changes.get("days_per_cycle", current.days_per_cycle)),  # type: ignore[call-overload]
                interval_weeks=interval_weeks,
                weight_basis=current.weight_basis,
                starts_on=_next_cycle_start(session, patient.id, today, interval_weeks),
                preferred_weekday=current.preferred_weekday,
                preferred_time=current.preferred_time,
                center_id=current.center_id,
                reason=f"Suggestion #{suggestion.id}: {suggestion.summary}"
                + (f" (changed: {reason})" if reason else ""),
                override_reason=reason,
                based_on_version=current.version,
                decided_suggestion=True,
            )
            regimen, _plan = regimens.set_regimen(session, actor, patient.id, data, settings)
            suggestion.applied_regimen_id = regimen.id
        elif suggestion.kind == "taper_step":
            step = tapers.approve_step(session, actor, int(params["step_id"]), settings)
            suggestion.applied_step_id = step.id
        elif suggestion.kind == "hold_taper":
            _hold_next_step(session, actor, patient.id, f"Suggestion #{suggestion.id}")
        elif suggestion.kind == "safety_hold":
            held = scheduling.hold_future(
                session, patient.id, f"IVIG held: {suggestion.summary}", today
            )
            params = {**params, "cancelled_infusions": held, "cancelled_count": len(held)}
        audit.record(
            session,
            actor,
            "suggestion.approve",
            "suggestion",
            suggestion.id,
            after={"kind": suggestion.kind, "proposal": params, "value": value, "reason": reason},
        )
    return suggestion


def _hold_next_step(session: so.Session, actor: Actor, patient_id: int, reason: str) -> None:
    plan = tapers.current_plan(session, patient_id)
    if plan is None:
        return
    upcoming = tapers.next_step(plan.steps)
    if upcoming is not None and upcoming.status == StepStatus.PLANNED:
        tapers.set_step_status(session, actor, upcoming.id, StepStatus.HELD, reason)


def reject(
    session: so.Session,
    actor: Actor,
    suggestion_id: int,
    reason: str,
    expected_version: int | None = None,
) -> Suggestion:
    """Reject a suggestion with a reason; the same evidence will not raise it again."""
    if not reason.strip() or len(reason) > 2000:
        raise InvalidInput("reason: say why (at most 2000 characters)", field="reason")
    with unit_of_work(session):
        suggestion = _pending(session, suggestion_id, expected_version)
        _decided(suggestion, actor, "rejected", reason.strip())
        if suggestion.kind == "taper_step" and suggestion.step_id is not None:
            # One decision: rejecting the proposed step holds it, with the physician's reason.
            step = session.get(TaperStep, suggestion.step_id)
            if step is not None and step.status == StepStatus.PLANNED:
                tapers.set_step_status(
                    session,
                    actor,
                    step.id,
                    StepStatus.HELD,
                    f"Suggestion #{suggestion.id} rejected: {reason.strip()}"[:500],
                )
        audit.record(
            session,
            actor,
            "suggestion.reject",
            "suggestion",
            suggestion.id,
            after={"reason": reason.strip()},
        )
    return suggestion


def queue(session: so.Session, physician_id: int | None = None) -> list[Suggestion]:
    """Pending suggestions: critical first, then warnings, then by date."""
    order = sa.case({"critical": 0, "warning": 1}, value=Suggestion.indicator, else_=2)
    statement = (
        sa.select(Suggestion)
        .where(Suggestion.status == "pending")
        .order_by(order, Suggestion.created_at, Suggestion.id)
    )
    if physician_id is not None:
        statement = statement.join(Patient, Suggestion.patient_id == Patient.id).where(
            Patient.treating_physician_id == physician_id
        )
    return list(session.scalars(statement))


def pending_for_steps(session: so.Session, step_ids: Sequence[int]) -> dict[int, Suggestion]:
    """The pending suggestion behind each of these taper steps (one query)."""
    if not step_ids:
        return {}
    return {
        s.step_id: s
        for s in session.scalars(
            sa.select(Suggestion).where(
                Suggestion.step_id.in_(list(step_ids)), Suggestion.status == "pending"
            )
        )
        if s.step_id is not None
    }


def for_patient(session: so.Session, patient_id: int) -> list[Suggestion]:
    """Every suggestion for a patient, newest first."""
    return list(
        session.scalars(
            sa.select(Suggestion)
            .where(Suggestion.patient_id == patient_id)
            .order_by(Suggestion.created_at.desc(), Suggestion.id.desc())
        )
    )


@dataclasses.dataclass(frozen=True)
class SimulatedSuggestion:
    patient_id: int
    as_of: dt.date
    proposal: engine.Proposal


def simulate(
    session: so.Session,
    settings: Settings,
    ruleset: engine.RuleSet,
    patient_ids: list[int] | None = None,
) -> list[SimulatedSuggestion]:
    """Replay a rule set over patients' histories, as of each assessment date; saves nothing."""
    if patient_ids is None:
        patient_ids = list(session.scalars(sa.select(Patient.id).order_by(Patient.id)))
    out = []
    for patient_id in patient_ids:
        dates = sorted(
            set(
                session.scalars(
                    sa.select(Assessment.assessed_on).where(Assessment.patient_id == patient_id)
                )
            )
        )
        if not dates:
            continue
        record = load_record(session, patient_id, settings, dates[-1])
        seen: set[tuple[str, int]] = set()
        for as_of in dates:
            _facts, proposals = engine.evaluate_history(
                ruleset, history_of(patient_id, record, settings, as_of)
            )
            for proposal in proposals:
                key = (
                    proposal.rule_id,
                    max(a.id for a in record.assessments if a.assessed_on <= as_of),
                )
                if key not in seen:
                    seen.add(key)
                    out.append(SimulatedSuggestion(patient_id, as_of, proposal))
    return out


def evaluate_everyone(
    session: so.Session,
    settings: Settings,
    as_of: dt.date | None = None,
    cause: Actor | None = None,
) -> int:
    """Nightly: evaluate every patient with a regimen; loads in bulk, writes only what fires.

    Without `as_of`, each patient is evaluated as of the date at their home center.
    """
    ruleset = load_ruleset(settings)
    patient_ids = scheduling.patients_with_regimens(session)
    zones = dict(
        session.execute(
            sa.select(Patient.id, Center.timezone).join(Center, Patient.home_center_id == Center.id)
        ).all()
    )
    now = utcnow()
    system = rules_actor(cause)
    made = 0
    for start in range(0, len(patient_ids), _CHUNK):
        chunk = patient_ids[start : start + _CHUNK]
        dates = {pid: as_of or schedule.local_date(now, zones[pid]) for pid in chunk}
        by_date: dict[dt.date, list[int]] = defaultdict(list)
        for pid in chunk:
            by_date[dates[pid]].append(pid)
        records: dict[int, PatientRecord] = {}
        for day, ids in by_date.items():  # one day, or two where centers' dates differ
            records |= load_records(session, ids, settings, day)
        pending = set(
            session.scalars(
                sa.select(Suggestion.patient_id).where(
                    Suggestion.patient_id.in_(chunk), Suggestion.status == "pending"
                )
            )
        )
        # Patients with something new to say, and those whose pending cards may have expired:
        # the records just loaded serve them too, and the batch is stored at once.
        evaluations = [_evaluate(ruleset, pid, records[pid], settings, dates[pid]) for pid in chunk]
        firing = [e for e in evaluations if e.proposals or e.patient_id in pending]
        if firing:
            made += len(
                jobruns.in_batch(
                    session, functools.partial(_store, session, ruleset, firing, system)
                )
            )
    return made
