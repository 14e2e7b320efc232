"""Steroid taper plans: preview, versioned plans, and steps that start only when approved."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.config import DRUGS, Settings
from app.db import utcnow
from app.domain import schedule, taper
from app.domain.problems import Problem
from app.models import Patient, StepStatus, Suggestion, TaperPlan, TaperStep
from app.models.taper import TEMPLATES
from app.services import audit, previews, versions
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, InvalidInput, NotFound


@dataclasses.dataclass(frozen=True)
class PlanInput:
    drug: str
    start_mg: float
    template: str
    starts_on: dt.date
    #: banded: {}; fixed: decrement_mg, step_days; percent: percent, step_days;
    #: custom: steps = [{mg_per_day, min_days, alternate_day_mg?}, ...]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    start_days: int | None = None
    reason: str = ""
    based_on_version: int | None = None


def _rejected(problems: Sequence[Problem]) -> InvalidInput:
    return InvalidInput("; ".join(p.message for p in problems), field=problems[0].field)


def _number(params: Mapping[str, Any], name: str) -> float:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name}: give a number for the {name} template parameter", field=name)
    return float(value)


def build_steps(data: PlanInput, settings: Settings) -> list[taper.StepPlan]:
    """Turn a template and its parameters into steps, or raise InvalidInput naming the field."""
    if data.drug not in DRUGS:
        raise InvalidInput(f"drug: one of {', '.join(DRUGS)}", field="drug")
    if data.template not in TEMPLATES:
        raise InvalidInput(f"template: one of {', '.join(TEMPLATES)}", field="template")
    rules = settings.taper_rules()
    start_days = data.start_days or settings.steroids.start_days
    try:
        if data.template == "banded":
            steps = taper.banded_plan(data.drug, data.start_mg, rules, start_days)
        elif data.template == "fixed":
            steps = taper.fixed_plan(
                data.drug,
                data.start_mg,
                _number(data.params, "decrement_mg"),
                int(_number(data.params, "step_days")),
                rules,
                start_days,
            )
        elif data.template == "percent":
            steps = taper.percent_plan(
                data.drug,
                data.start_mg,
                _number(data.params, "percent"),
                int(_number(data.params, "step_days")),
                rules,
                start_days,
            )
        else:
            steps = _custom_steps(data.params.get("steps"))
    except taper.TaperRejected as exc:
        raise _rejected(exc.problems) from exc
    problems = taper.validate_plan(data.drug, steps, rules)
    if problems:
        raise _rejected(problems)
    if steps[0].mg_per_day != data.start_mg:
        raise InvalidInput(
            f"start_mg: the first step ({steps[0].mg_per_day:g} mg) must be the start dose",
            field="start_mg",
        )
    return steps


def _custom_steps(raw: object) -> list[taper.StepPlan]:
    if not isinstance(raw, list) or not raw or len(raw) > 200:
        raise InvalidInput("steps: give 1 to 200 steps for a custom taper", field="steps")
    items = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidInput(
                f"steps[{index}]: give mg_per_day and min_days", field=f"steps[{index}]"
            )
        alternate = item.get("alternate_day_mg")
        items.append(
            (
                _number(item, "mg_per_day"),
                int(_number(item, "min_days")),
                None if alternate is None else _number(item, "alternate_day_mg"),
            )
        )
    steps = taper.custom_plan(items)
    return steps


@dataclasses.dataclass(frozen=True)
class PreviewStep:
    dated: taper.DatedStep
    tablets: tuple[tuple[float, int], ...] | None
    alternate_tablets: tuple[tuple[float, int], ...] | None
    cumulative_prednisone_mg: float  # at the end of this step


def preview(data: PlanInput, settings: Settings) -> list[PreviewStep]:
    """Date a plan and show its tablets and cumulative exposure; saves nothing."""
    steps = build_steps(data, settings)
    return _describe(data.drug, taper.date_steps(steps, data.starts_on), settings)


def _describe(drug: str, dated: Sequence[taper.DatedStep], settings: Settings) -> list[PreviewStep]:
    strengths = settings.steroids.tablets.get(drug, ())
    daily = taper.daily_doses(dated)
    equivalence = settings.steroids.equivalence
    out = []
    for item in dated:
        last_day = item.ends_on - dt.timedelta(days=1)
        out.append(
            PreviewStep(
                dated=item,
                tablets=taper.fewest_tablets(item.step.mg_per_day, strengths),
                alternate_tablets=(
                    taper.fewest_tablets(item.step.alternate_day_mg, strengths)
                    if item.step.alternate_day_mg is not None
                    else None
                ),
                cumulative_prednisone_mg=taper.cumulative_prednisone_mg(
                    drug, daily, equivalence, until=last_day
                ),
            )
        )
    return out


def _step_view(step: TaperStep) -> dict[str, object]:
    return {
        "position": step.position,
        "mg_per_day": step.mg_per_day,
        "alternate_day_mg": step.alternate_day_mg,
        "min_days": step.min_days,
        "status": step.status,
        "earliest_on": step.earliest_on,
        "started_on": step.started_on,
        "ended_on": step.ended_on,
        "status_reason": step.status_reason,
        "cortisol_nmol_l": step.cortisol_nmol_l,
    }


def current_plan(session: so.Session, patient_id: int, lock: bool = False) -> TaperPlan | None:
    return versions.latest_version(session, TaperPlan, patient_id, lock)


def create_plan(
    session: so.Session,
    actor: Actor,
    patient_id: int,
    data: PlanInput,
    settings: Settings,
    today: dt.date,
    steps: Sequence[taper.StepPlan] | None = None,
) -> TaperPlan:
    """Set a new taper plan version; its first step starts now (the physician set it).
    `steps`: what build_steps made of this very input, when the caller checked it already."""
    if not data.reason.strip():
        raise InvalidInput("reason: say why the taper is set or changed", field="reason")
    if data.starts_on < today - dt.timedelta(days=1):
        raise InvalidInput("starts_on: not in the past", field="starts_on")
    steps = build_steps(data, settings) if steps is None else steps
    dated = taper.date_steps(steps, data.starts_on)
    now = utcnow()
    with unit_of_work(session):
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
        previous = current_plan(session, patient_id, lock=True)
        previous_version = previous.version if previous else None
        versions.require_based_on(previous_version, data.based_on_version, "taper")
        if previous is not None:
            for old in previous.steps:
                if old.status == StepStatus.ACTIVE:
                    old.status, old.ended_on = StepStatus.COMPLETED, data.starts_on
                elif old.status in (StepStatus.PLANNED, StepStatus.HELD):
                    old.status = StepStatus.CANCELLED
                    old.status_reason = "Replaced by a new taper plan"
                else:
                    continue
                _touch(old, now)
        plan = TaperPlan(
            patient_id=patient_id,
            version=(previous_version or 0) + 1,
            drug=data.drug,
            start_mg=data.start_mg,
            template=data.template,
            template_params=audit.json_safe(dict(data.params)),
            starts_on=data.starts_on,
            reason=data.reason.strip(),
            created_by_id=actor.user_id,
        )
        for item in dated:
            first = item.index == 0
            plan.steps.append(
                TaperStep(
                    uid=uuid.uuid4().hex,
                    patient_id=patient_id,
                    position=item.index,
                    mg_per_day=item.step.mg_per_day,
                    min_days=item.step.min_days,
                    alternate_day_mg=item.step.alternate_day_mg,
                    requires_cortisol=item.step.requires_cortisol,
                    status=StepStatus.ACTIVE if first else StepStatus.PLANNED,
                    earliest_on=item.starts_on,
                    started_on=item.starts_on if first else None,
                    approved_by_id=actor.user_id if first else None,
                    approved_at=now if first else None,
                    updated_at=now,
                )
            )
        session.add(plan)
        session.flush()
        audit.record(
            session,
            actor,
            "taper.create",
            "taper_plan",
            plan.id,
            before={"version": previous_version} if previous else None,
            after={
                "patient_id": patient_id,
                "version": plan.version,
                "drug": plan.drug,
                "start_mg": plan.start_mg,
                "template": plan.template,
                "steps": [[s.mg_per_day, s.min_days] for s in plan.steps],
            },
        )
    return plan


def _touch(step: TaperStep, now: dt.datetime) -> None:
    step.sequence += 1
    step.version += 1
    step.updated_at = now


def _active_step(steps: Sequence[TaperStep]) -> TaperStep | None:
    return next((s for s in steps if s.status == StepStatus.ACTIVE), None)


def next_step(steps: Sequence[TaperStep]) -> TaperStep | None:
    """Return the step that follows the active one (held counts: it blocks the way)."""
    active = _active_step(steps)
    if active is None:
        return None
    return next(
        (
            s
            for s in steps
            if s.position > active.position and s.status in (StepStatus.PLANNED, StepStatus.HELD)
        ),
        None,
    )


def due_on(steps: Sequence[TaperStep]) -> dt.date | None:
    """Return the date the next step becomes due (earliest date and the active step's days)."""
    active, upcoming = _active_step(steps), next_step(steps)
    if active is None or upcoming is None or active.started_on is None:
        return None
    return max(upcoming.earliest_on, active.started_on + dt.timedelta(days=active.min_days))


def is_due(step: TaperStep, steps: Sequence[TaperStep], today: dt.date) -> bool:
    """A planned step is due when it is next, its date has come and the previous ran its days."""
    if step.status != StepStatus.PLANNED or next_step(steps) is not step:
        return False
    when = due_on(steps)
    return when is not None and when <= today


def _load_step(session: so.Session, step_id: int, expected_version: int | None) -> TaperStep:
    return versions.load_for_change(session, TaperStep, step_id, expected_version, "step_id")


def _plan_steps(session: so.Session, plan_id: int) -> list[TaperStep]:
    return list(
        session.scalars(
            sa.select(TaperStep)
            .where(TaperStep.plan_id == plan_id)
            .order_by(TaperStep.position)
            .with_for_update()
        )
    )


def approve_step(
    session: so.Session,
    actor: Actor,
    step_id: int,
    settings: Settings,
    today: dt.date | None = None,
    expected_version: int | None = None,
    cortisol_nmol_l: float | None = None,
    override_reason: str | None = None,
) -> TaperStep:
    """Approve a due step (physician): it becomes active and the previous one completes."""
    now = utcnow()
    with unit_of_work(session):
        step = _load_step(session, step_id, expected_version)
        if today is None:
            patient = session.get(Patient, step.patient_id)
            assert patient is not None
            today = schedule.local_date(now, patient.home_center.timezone)
        if step.status != StepStatus.PLANNED:
            raise Conflict(
                f"status: the step is {step.status}, not waiting for approval", field="status"
            )
        steps = _plan_steps(session, step.plan_id)
        if not is_due(step, steps, today):
            when = due_on(steps)
            due = when.isoformat() if when else "after the steps before it"
            raise Conflict(f"status: the step is not due yet (due {due})", field="status")
        override = (override_reason or "").strip() or None
        if step.requires_cortisol or step.mg_per_day == 0:
            _check_cortisol(cortisol_nmol_l, override, settings)
            step.cortisol_nmol_l = cortisol_nmol_l
            step.cortisol_override_reason = override
        previous = _active_step(steps)
        before = _step_view(step)
        if previous is not None:
            previous.status, previous.ended_on = StepStatus.COMPLETED, today
            _touch(previous, now)
        step.status = StepStatus.ACTIVE
        step.started_on = today
        step.approved_by_id = actor.user_id
        step.approved_at = now
        _touch(step, now)
        _reflow(steps, step)
        _decide_matching_suggestions(session, actor, step, now)
        audit.record(
            session,
            actor,
            "taper_step.approve",
            "taper_step",
            step.id,
            before=before,
            after=_step_view(step),
        )
    return step


def _decide_matching_suggestions(
    session: so.Session,
    actor: Actor,
    step: TaperStep,
    now: dt.datetime,
    status: str = "approved",
    reason: str = "Step approved from the taper queue",
) -> None:
    """One decision: approving or holding a step decides the suggestion that proposed it."""
    for suggestion in session.scalars(
        sa.select(Suggestion).where(Suggestion.step_id == step.id, Suggestion.status == "pending")
    ):
        suggestion.status = status
        suggestion.decided_by_id = actor.user_id
        suggestion.decided_at = now
        suggestion.decision_reason = reason
        if status == "approved":
            suggestion.applied_step_id = step.id
        suggestion.version += 1
        suggestion.updated_at = now
        audit.record(
            session,
            actor,
            f"suggestion.{'approve' if status == 'approved' else 'reject'}",
            "suggestion",
            suggestion.id,
            after={"kind": suggestion.kind, "via": f"taper_step.{status}", "step_id": step.id},
        )


def _check_cortisol(value: float | None, override: str | None, settings: Settings) -> None:
    problem = taper.cortisol_problem(
        value,
        overridden=bool(override),
        stop_nmol_l=settings.steroids.cortisol_stop_nmol_l,
        recheck_nmol_l=settings.steroids.cortisol_recheck_nmol_l,
    )
    if problem is not None:
        raise InvalidInput(problem.message, field=problem.field)


def _reflow(steps: Sequence[TaperStep], started: TaperStep) -> None:
    """Move later steps' earliest dates after a step started (or was skipped) off-plan."""
    cursor = (started.started_on or started.earliest_on) + dt.timedelta(days=started.min_days)
    for step in steps:
        if step.position > started.position and step.status in (
            StepStatus.PLANNED,
            StepStatus.HELD,
        ):
            if step.earliest_on != cursor:
                step.earliest_on = cursor
                _touch(step, utcnow())
            cursor = cursor + dt.timedelta(days=step.min_days)


def set_step_status(
    session: so.Session,
    actor: Actor,
    step_id: int,
    status: StepStatus,
    reason: str,
    expected_version: int | None = None,
) -> TaperStep:
    """Hold, release (back to planned) or skip a step, with a reason (physician)."""
    if status not in (StepStatus.HELD, StepStatus.PLANNED, StepStatus.SKIPPED):
        raise InvalidInput("status: held, planned or skipped", field="status")
    if not reason.strip() or len(reason) > 500:
        raise InvalidInput("reason: give a reason (at most 500 characters)", field="reason")
    allowed = {
        StepStatus.HELD: (StepStatus.PLANNED,),
        StepStatus.PLANNED: (StepStatus.HELD,),
        StepStatus.SKIPPED: (StepStatus.PLANNED, StepStatus.HELD),
    }[status]
    now = utcnow()
    with unit_of_work(session):
        step = _load_step(session, step_id, expected_version)
        if step.status not in allowed:
            raise Conflict(f"status: a {step.status} step cannot become {status}", field="status")
        if status == StepStatus.SKIPPED and step.requires_cortisol:
            raise Conflict("status: the final stop cannot be skipped", field="status")
        before = _step_view(step)
        step.status = status
        step.status_reason = reason.strip()
        _touch(step, now)
        if status == StepStatus.HELD and actor.user_id is not None:
            _decide_matching_suggestions(
                session, actor, step, now, "rejected", f"Step held: {reason.strip()}"
            )
        if status == StepStatus.SKIPPED:
            # The step after a skipped one may start as soon as the active dose ran its days.
            steps = _plan_steps(session, step.plan_id)
            active = _active_step(steps)
            if active is not None:
                _reflow(steps, active)
        audit.record(
            session,
            actor,
            f"taper_step.{status}",
            "taper_step",
            step.id,
            before=before,
            after=_step_view(step),
        )
    return step


#: Marks an argument the caller did not send (distinct from None, which clears a value).
UNCHANGED = object()


def plan_outcome(session: so.Session, plan_id: int, today: dt.date) -> list[dict[str, Any]]:
    """The plan's live steps as they stand, dated (what a dose change preview compares)."""
    steps = _plan_steps(session, plan_id)
    return [
        {
            "position": dated.index,
            "starts_on": dated.starts_on,
            "ends_on": dated.ends_on,
            "mg_per_day": dated.step.mg_per_day,
            "alternate_day_mg": dated.step.alternate_day_mg,
        }
        for dated in _as_dated(steps, today)
    ]


def _plan_and_today(session: so.Session, step_id: int) -> tuple[int, dt.date]:
    row = session.execute(
        sa.select(TaperStep.plan_id, TaperPlan.patient_id)
        .join(TaperPlan, TaperStep.plan_id == TaperPlan.id)
        .where(TaperStep.id == step_id)
    ).first()
    if row is None:
        raise NotFound(f"step_id: no taper step {step_id}", field="step_id")
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    return row.plan_id, clock.clinic_today(patient.home_center.timezone)


def preview_step_dose(
    session: so.Session,
    actor: Actor,
    step_id: int,
    mg_per_day: float,
    reason: str,
    settings: Settings,
    expected_version: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], previews.Preview]:
    """The plan's steps before and after changing a step's dose; nothing is saved."""
    plan_id, today = _plan_and_today(session, step_id)
    before = plan_outcome(session, plan_id, today)

    def change() -> list[dict[str, Any]]:
        change_step_dose(session, actor, step_id, mg_per_day, reason, settings, expected_version)
        return plan_outcome(session, plan_id, today)

    after, preview = previews.dry_run(session, sa.false(), change, lambda steps: steps)
    return before, after, preview


def change_step_dose(
    session: so.Session,
    actor: Actor,
    step_id: int,
    mg_per_day: float,
    reason: str,
    settings: Settings,
    expected_version: int | None = None,
    alternate_day_mg: float | object | None = UNCHANGED,
    fingerprint: str | None = None,
) -> TaperStep:
    """Change a not-yet-approved step's dose (physician, with a reason); the plan stays valid;
    with the `fingerprint` of a preview, only if the steps come out as it showed.

    The alternate-day dose stays as it is unless `alternate_day_mg` is given (None clears it).
    """

    def change() -> TaperStep:
        return _change_step_dose(
            session,
            actor,
            step_id,
            mg_per_day,
            reason,
            settings,
            expected_version,
            alternate_day_mg,
        )

    if fingerprint is None:
        return change()
    plan_id, today = _plan_and_today(session, step_id)
    with unit_of_work(session):
        step, _preview = previews.confirmed(
            session,
            sa.false(),
            change,
            fingerprint,
            lambda _step: plan_outcome(session, plan_id, today),
        )
    return step


def _change_step_dose(
    session: so.Session,
    actor: Actor,
    step_id: int,
    mg_per_day: float,
    reason: str,
    settings: Settings,
    expected_version: int | None = None,
    alternate_day_mg: float | object | None = UNCHANGED,
) -> TaperStep:
    if not reason.strip():
        raise InvalidInput("reason: say why the dose changes", field="reason")
    now = utcnow()
    with unit_of_work(session):
        step = _load_step(session, step_id, expected_version)
        if step.status not in (StepStatus.PLANNED, StepStatus.HELD):
            raise Conflict(
                f"status: a {step.status} step cannot be edited (only planned or held steps)",
                field="status",
            )
        steps = _plan_steps(session, step.plan_id)
        alternate = (
            step.alternate_day_mg
            if alternate_day_mg is UNCHANGED
            else cast("float | None", alternate_day_mg)
        )
        live = [s for s in steps if s.status not in (StepStatus.SKIPPED, StepStatus.CANCELLED)]
        candidate = [
            taper.StepPlan(
                mg_per_day=mg_per_day if s.id == step.id else s.mg_per_day,
                min_days=s.min_days,
                alternate_day_mg=alternate if s.id == step.id else s.alternate_day_mg,
                requires_cortisol=s.requires_cortisol,
            )
            for s in live
        ]
        problems = taper.validate_plan(step.plan.drug, candidate, settings.taper_rules())
        if problems:
            index = next(i for i, s in enumerate(live) if s.id == step.id)
            mine = [p for p in problems if f"steps[{index}]" in p.field] or problems
            raise InvalidInput("; ".join(p.message for p in mine), field="mg_per_day")
        before = _step_view(step)
        step.mg_per_day = mg_per_day
        step.alternate_day_mg = alternate
        step.status_reason = reason.strip()
        _touch(step, now)
        audit.record(
            session,
            actor,
            "taper_step.change_dose",
            "taper_step",
            step.id,
            before=before,
            after=_step_view(step),
        )
    return step


@dataclasses.dataclass(frozen=True)
class TaperView:
    plan: TaperPlan | None
    steps: list[TaperStep]
    active: TaperStep | None
    next: TaperStep | None
    next_due_on: dt.date | None
    active_tablets: tuple[tuple[float, int], ...] | None
    daily: list[tuple[dt.date, float]]
    #: The current plan's live steps with their dates as they stand (for the printout).
    dated: list[taper.DatedStep]
    cumulative_to_date_mg: float
    cumulative_projected_mg: float
    history: list[TaperPlan]


def patient_taper(
    session: so.Session, patient_id: int, settings: Settings, today: dt.date
) -> TaperView:
    """The patient's current taper: today's dose in tablets, the next step, exposure."""
    plans = list(
        session.scalars(
            sa.select(TaperPlan)
            .where(TaperPlan.patient_id == patient_id)
            .options(so.selectinload(TaperPlan.steps), so.joinedload(TaperPlan.created_by))
            .order_by(TaperPlan.version.desc())
        ).unique()
    )
    return taper_view(plans, settings, today)


def tablets(
    settings: Settings, drug: str, mg_per_day: float
) -> tuple[tuple[float, int], ...] | None:
    """The fewest of the clinic's tablets that make this dose (None: they cannot)."""
    return taper.fewest_tablets(mg_per_day, settings.steroids.tablets.get(drug, ()))


def taper_view(plans: Sequence[TaperPlan], settings: Settings, today: dt.date) -> TaperView:
    """Summarise a patient's loaded plans (newest version first) as of a date."""
    plans = list(plans)
    equivalence = settings.steroids.equivalence
    daily_all: list[tuple[dt.date, float]] = []
    to_date = projected = 0.0
    for plan in reversed(plans):
        dated = _as_dated(plan.steps, today)
        daily = taper.daily_doses(dated) if dated else []
        later = plans.index(plan) > 0
        if later:
            cutoff = plans[plans.index(plan) - 1].starts_on
            daily = [(d, mg) for d, mg in daily if d < cutoff]
        daily_all.extend(daily)
        to_date += taper.cumulative_prednisone_mg(plan.drug, daily, equivalence, until=today)
        projected += taper.cumulative_prednisone_mg(plan.drug, daily, equivalence)
    newest = plans[0] if plans else None
    steps = list(newest.steps) if newest else []
    active = _active_step(steps)
    current = _as_dated(steps, today) if newest else []
    return TaperView(
        plan=newest,
        steps=steps,
        active=active,
        next=next_step(steps),
        next_due_on=due_on(steps),
        active_tablets=tablets(settings, newest.drug, active.mg_per_day)
        if newest and active
        else None,
        daily=daily_all,
        dated=current,
        cumulative_to_date_mg=to_date,
        cumulative_projected_mg=projected,
        history=plans,
    )


def _as_dated(steps: Sequence[TaperStep], today: dt.date) -> list[taper.DatedStep]:
    """Date the live steps as they stand: actual dates where known, planned after that.

    The active step lasts at least through today: the next dose starts only when approved.
    """
    live = [s for s in steps if s.status not in (StepStatus.SKIPPED, StepStatus.CANCELLED)]
    dated = []
    cursor: dt.date | None = None
    for index, s in enumerate(live):
        start = s.started_on or max(s.earliest_on, cursor or s.earliest_on)
        days = s.min_days
        if s.ended_on is not None and s.started_on is not None:
            days = max(1, (s.ended_on - s.started_on).days)
        elif s.status == StepStatus.ACTIVE:
            days = max(days, (today - start).days + 1)
        end = start + dt.timedelta(days=days)
        dated.append(
            taper.DatedStep(
                index=index,
                starts_on=start,
                ends_on=end,
                step=taper.StepPlan(s.mg_per_day, days, s.alternate_day_mg, s.requires_cortisol),
            )
        )
        cursor = end
    return dated


def due_queue(
    session: so.Session, today: dt.date | None = None, physician_id: int | None = None
) -> list[TaperStep]:
    """Steps waiting for a physician's approval, oldest due first.

    Without `today`, each patient's date is the wall-clock date at their home center.
    """
    now = utcnow()
    statement = (
        sa.select(TaperStep)
        .join(TaperPlan, TaperStep.plan_id == TaperPlan.id)
        .join(Patient, TaperPlan.patient_id == Patient.id)
        .where(TaperStep.status.in_([StepStatus.PLANNED, StepStatus.ACTIVE, StepStatus.HELD]))
        .options(
            so.contains_eager(TaperStep.plan)
            .joinedload(TaperPlan.patient)
            .joinedload(Patient.home_center)
        )
        .order_by(TaperStep.plan_id, TaperStep.position)
    )
    if physician_id is not None:
        statement = statement.where(Patient.treating_physician_id == physician_id)
    by_plan: dict[int, list[TaperStep]] = {}
    for step in session.scalars(statement).unique():
        by_plan.setdefault(step.plan_id, []).append(step)
    latest = set(
        session.scalars(sa.select(sa.func.max(TaperPlan.id)).group_by(TaperPlan.patient_id))
    )
    due = []
    for plan_id, steps in by_plan.items():
        if plan_id not in latest:
            continue
        upcoming = next_step(steps)
        if upcoming is None:
            continue
        zone = upcoming.plan.patient.home_center.timezone
        if is_due(upcoming, steps, today or schedule.local_date(now, zone)):
            due.append(upcoming)
    return sorted(due, key=lambda s: (due_on(by_plan[s.plan_id]) or dt.date.max, s.id))
