""" "Optimise the next four weeks": the chair and nurse optimiser run on a center's bookings.

`propose` reads the center's bookings over the horizon, hands them to the pure optimiser
(app.domain.optimise) outside any write transaction, and stores what comes back beside the
current plan (a ScheduleProposal). Nothing moves until the scheduling nurse accepts it:
`accept` then applies the moves as reschedules in one transaction (each audited, calendar
feeds and change notices following from the rows' changes, the therapy checker run at
commit), or refuses when the bookings have changed since the proposal was made.

What the optimiser may move (decisions):
- whole cycles not yet begun whose first day lies in the horizon, at or after the settled
  days ([optimiser] settled_days: the patients have been told, the drug is ordered);
- not a cycle a nurse moved by hand (pinned: that was someone's decision, e.g. the patient's
  wish) nor one with a physician's override of a therapy rule (the override was for where it
  is). Those, begun cycles, and every other booking at the center stay where they are and
  count for the chairs and the nurses;
- a cycle's first day stays within the shift window of the day its interval plans it, and at
  least the interval (less the tolerance) after the patient's cycle before it and before the
  one after it, as the therapy checker requires.
The optimiser's moves are not pinned: they are the schedule's own placement, as first-fit's
are, and a later change of regimen re-plans them the way it re-plans first-fit's bookings.
When the optimiser falls back to first-fit (no plan keeps every hard rule, or none was found
in time) the proposal shows why and offers nothing to accept: first-fit is how the bookings
were made, so the current plan stands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import utcnow
from app.domain import optimise, schedule
from app.domain.integrity import PLANNED, cycle_has_begun
from app.models import Center, Infusion, InfusionStatus, Patient, Regimen, ScheduleProposal
from app.models.infusion import CHAIR_HOLDING
from app.services import audit, clinic, integrity, reviews, scheduling
from app.services.context import Actor, unit_of_work
from app.services.errors import Conflict, NotFound
from app.services.infusions import infusion_view


@dataclasses.dataclass(frozen=True)
class Horizon:
    """The days whose cycles a proposal books, and the days it reads around them."""

    from_on: dt.date
    until_on: dt.date
    #: Bookings are read from here (a cycle begun before the horizon may run into it) ...
    reads_from: dt.date
    #: ... to here (a cycle may shift and run past the horizon).
    reads_until: dt.date

    @classmethod
    def of(cls, settings: Settings, today: dt.date) -> Horizon:
        """The next weeks from today, the settled days left out."""
        from_on = today + dt.timedelta(days=settings.optimiser.settled_days)
        until_on = today + dt.timedelta(weeks=settings.optimiser.horizon_weeks, days=-1)
        return cls.around(settings, from_on, max(from_on, until_on))

    @classmethod
    def around(cls, settings: Settings, from_on: dt.date, until_on: dt.date) -> Horizon:
        # A cycle's first day lies up to a window from its planned start, which may lie a
        # window past the horizon's first days; then five infusion days over a weekend and a
        # closure, at a center open three days a week: two weeks.
        reach = dt.timedelta(days=2 * settings.scheduling.shift_window_days + 14)
        return cls(from_on, until_on, from_on - reach, until_on + reach)


@dataclasses.dataclass(frozen=True)
class _Cycle:
    """One of a patient's cycles: its first day and the interval its regimen asks."""

    patient_id: int
    number: int
    starts_on: dt.date
    min_gap_days: int


@dataclasses.dataclass(frozen=True)
class Movable:
    """A cycle the optimiser may move: its request id and its rows in day order."""

    cycle_id: int
    rows: tuple[Infusion, ...]


@dataclasses.dataclass(frozen=True)
class Gathered:
    """A center's bookings over a horizon as the optimiser's problem."""

    center: Center
    horizon: Horizon
    problem: optimise.Problem
    movable: tuple[Movable, ...]
    fingerprint: str
    #: Cycles in the horizon left where they are, by why ("begun", "moved by hand", ...).
    kept: dict[str, int]


def domain_settings(settings: Settings) -> optimise.Settings:
    """The clinic's optimiser settings as the domain takes them."""
    mine = settings.optimiser
    return optimise.Settings(
        ratio=mine.nurse_ratio,
        setup_minutes=mine.setup_minutes,
        turnover_minutes=settings.scheduling.turnover_minutes,
        granularity_minutes=settings.scheduling.slot_granularity_minutes,
        time_limit_seconds=mine.time_limit_seconds,
        workers=mine.workers,
        weights=optimise.Weights(**mine.weights.model_dump()),
    )


def _rows_in(session: so.Session, center_id: int, horizon: Horizon) -> list[Infusion]:
    """Every live booking at the center on the days the optimiser reads."""
    return list(
        session.scalars(
            sa.select(Infusion)
            .where(
                Infusion.center_id == center_id,
                Infusion.planned_date >= horizon.reads_from,
                Infusion.planned_date <= horizon.reads_until,
                Infusion.status != InfusionStatus.CANCELLED,
            )
            .order_by(Infusion.id)
            .options(so.joinedload(Infusion.regimen))
            .execution_options(populate_existing=True)
        ).unique()
    )


def fingerprint(rows: Iterable[Infusion]) -> str:
    """The state of the bookings a proposal rests on: their ids and versions."""
    text = ",".join(f"{row.id}:{row.version}" for row in sorted(rows, key=lambda r: r.id))
    return hashlib.sha256(text.encode()).hexdigest()


def _why_kept(
    rows: Sequence[Infusion], horizon: Horizon, now: dt.datetime, today: dt.date
) -> str | None:
    """Why a cycle stays where it is, or None when the optimiser may move it."""
    first = min(r.planned_date for r in rows)
    if cycle_has_begun(rows, now, today) or any(r.status not in PLANNED for r in rows):
        return "begun"
    if first < horizon.from_on:
        return "settled"
    if first > horizon.until_on:
        return "after the horizon"
    if any(r.pinned_by_id is not None for r in rows):
        return "moved by hand"
    if any(r.waived_rules for r in rows):
        return "under a physician's override"
    if len({r.day_number for r in rows}) != len(rows):
        return "days out of order"
    return None


def _patients_cycles(
    session: so.Session, patient_ids: Iterable[int], tolerance_days: int
) -> dict[int, list[_Cycle]]:
    """Each patient's counted cycles (a day not missed) in start order, as the therapy
    checker counts them: a cycle starts on its first live day."""
    ids = sorted(set(patient_ids))
    out: dict[int, list[_Cycle]] = defaultdict(list)
    if not ids:
        return out
    first = (
        sa.select(
            Infusion.patient_id,
            Infusion.cycle_number,
            sa.func.min(Infusion.planned_date).label("starts_on"),
            sa.func.min(Infusion.day_number).label("day"),
        )
        .where(Infusion.patient_id.in_(ids), Infusion.status != InfusionStatus.CANCELLED)
        .group_by(Infusion.patient_id, Infusion.cycle_number)
        .having(sa.func.sum(sa.case((Infusion.status != InfusionStatus.MISSED, 1), else_=0)) > 0)
    ).subquery()
    rows = session.execute(
        sa.select(
            first.c.patient_id, first.c.cycle_number, first.c.starts_on, Regimen.interval_weeks
        )
        .join(
            Infusion,
            sa.and_(
                Infusion.patient_id == first.c.patient_id,
                Infusion.cycle_number == first.c.cycle_number,
                Infusion.day_number == first.c.day,
                Infusion.status != InfusionStatus.CANCELLED,
            ),
        )
        .join(Regimen, Regimen.id == Infusion.regimen_id)
    ).all()
    seen: set[tuple[int, int]] = set()
    for patient_id, number, starts_on, interval_weeks in rows:
        if (patient_id, number) not in seen:
            seen.add((patient_id, number))
            out[patient_id].append(
                _Cycle(patient_id, number, starts_on, interval_weeks * 7 - tolerance_days)
            )
    for cycles in out.values():
        cycles.sort(key=lambda c: (c.starts_on, c.number))
    return out


def _local(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone)


def _placement(cycle_id: int, day: int, row: Infusion, zone: ZoneInfo) -> optimise.Placement:
    if row.chair_id is None or row.starts_at is None or row.ends_at is None:
        return optimise.Placement(cycle_id, day, row.planned_date, None, None, None)
    start, end = _local(row.starts_at, zone), _local(row.ends_at, zone)
    return optimise.Placement(
        cycle_id, day, row.planned_date, row.chair_id, start.time(), end.time()
    )


def _booked_minutes(row: Infusion) -> int:
    if row.starts_at is None or row.ends_at is None:
        return row.planned_minutes
    return max(1, round((row.ends_at - row.starts_at).total_seconds() / 60))


def gather(
    session: so.Session,
    center_id: int,
    settings: Settings,
    today: dt.date,
    now: dt.datetime,
) -> Gathered:
    """Read a center's bookings over the horizon as the optimiser's problem (no writes)."""
    center = clinic.get_center(session, center_id)
    horizon = Horizon.of(settings, today)
    zone = ZoneInfo(center.timezone)
    window = settings.scheduling.shift_window_days
    calendar = scheduling.center_calendar(center, settings, horizon.reads_from, horizon.reads_until)
    chairs = set(calendar.chair_ids)
    rows = _rows_in(session, center.id, horizon)
    by_cycle: dict[tuple[int, int], list[Infusion]] = defaultdict(list)
    for row in rows:
        by_cycle[row.patient_id, row.cycle_number].append(row)
    kept: dict[str, int] = defaultdict(int)
    candidates: dict[tuple[int, int], list[Infusion]] = {}
    for key, cycle_rows in by_cycle.items():
        cycle_rows.sort(key=lambda r: (r.day_number, r.planned_date))
        why = _why_kept(cycle_rows, horizon, now, today)
        if why is None:
            candidates[key] = cycle_rows
        elif horizon.from_on <= min(r.planned_date for r in cycle_rows) <= horizon.until_on:
            kept[why] += 1
    history = _patients_cycles(
        session, (p for p, _n in candidates), settings.scheduling.interval_tolerance_days
    )
    limits = _Limits(
        history,
        horizon,
        window,
        calendar,
        {
            pid: tuple((a.starts_on, a.ends_on) for a in course.authorisations)
            for pid, course in reviews.load_courses(session, list(history), None).items()
        },
    )
    requests = _movable_requests(candidates, limits, kept)
    movable = [Movable(r.id, tuple(candidates[key])) for key, r in requests.items()]
    current = [
        _placement(m.cycle_id, n, row, zone) for m in movable for n, row in enumerate(m.rows, 1)
    ]
    fixed = _fixed_requests(
        rows,
        {r.id for m in movable for r in m.rows},
        chairs,
        (horizon.from_on, _reach(requests.values(), calendar)),
        zone,
        first_id=len(requests) + 1,
    )
    problem = optimise.Problem(
        calendar=calendar,
        nurses_by_weekday={h.weekday: h.nurses for h in center.opening_hours},
        cycles=(*requests.values(), *(request for request, _p in fixed)),
        settings=domain_settings(settings),
        current=(*current, *(placement for _r, placement in fixed)),
        fixed_set_the_limit=True,
    )
    return Gathered(center, horizon, problem, tuple(movable), fingerprint(rows), dict(kept))


@dataclasses.dataclass(frozen=True)
class _Limits:
    """What bounds where a cycle may move, beside its shift window."""

    history: dict[int, list[_Cycle]]
    horizon: Horizon
    window: int
    calendar: schedule.CenterCalendar
    #: Each patient's authorisations (first and last day); none: no authorisation scheme.
    authorised: dict[int, tuple[tuple[dt.date, dt.date], ...]]


def _movable_requests(
    candidates: dict[tuple[int, int], list[Infusion]],
    limits: _Limits,
    kept: dict[str, int],
) -> dict[tuple[int, int], optimise.CycleRequest]:
    """The cycles to move as requests, each kept apart from its patient's cycles before and
    after by their intervals and inside its authorisation. A cycle that stands where those
    rules would not put it (an override since expired, a closure since) was placed by a
    person: it stays, and the cycles next to it are then kept apart from it in turn."""
    order = sorted(candidates, key=lambda k: (min(r.planned_date for r in candidates[k]), k))
    while True:
        ids = {key: n for n, key in enumerate(order, 1)}
        requests = {key: _request(key, candidates[key], limits, ids) for key in order}
        misplaced = [key for key, request in requests.items() if request is None]
        if not misplaced:
            return {key: request for key, request in requests.items() if request is not None}
        kept["outside its window"] += len(misplaced)
        order = [key for key in order if key not in misplaced]


def _request(
    key: tuple[int, int],
    rows: Sequence[Infusion],
    limits: _Limits,
    ids: dict[tuple[int, int], int],
) -> optimise.CycleRequest | None:
    """One cycle to move, or None when its first day already lies outside its limits."""
    patient_id, number = key
    horizon, window = limits.horizon, limits.window
    cycles = limits.history.get(patient_id, [])
    index = next((i for i, c in enumerate(cycles) if c.number == number), None)
    before = cycles[index - 1] if index else None
    after = cycles[index + 1] if index is not None and index + 1 < len(cycles) else None
    gap = cycles[index].min_gap_days if index is not None else 0
    follows = ids.get((patient_id, before.number)) if before else None
    earliest = horizon.from_on
    if before is not None and follows is None:
        earliest = max(earliest, before.starts_on + dt.timedelta(days=gap))
    latest = None
    if after is not None and (patient_id, after.number) not in ids:
        latest = after.starts_on - dt.timedelta(days=after.min_gap_days)
    target = rows[0].cycle_planned_on
    first = min(r.planned_date for r in rows)
    authorised = _authorised_starts(rows, limits.authorised.get(patient_id, ()), limits)
    if authorised is None:
        return None
    if authorised[0] is not None:
        earliest = max(earliest, authorised[0])
    if authorised[1] is not None:
        latest = min(latest or authorised[1], authorised[1])
    lowest = max(earliest, target - dt.timedelta(days=window))
    highest = min(latest or dt.date.max, target + dt.timedelta(days=window))
    if not lowest <= first <= highest:
        return None
    return optimise.CycleRequest(
        id=ids[key],
        target_start=target,
        minutes=tuple(r.planned_minutes for r in rows),
        preferred_start=rows[0].regimen.preferred_time,
        window_days=window,
        earliest_start=earliest,
        latest_start=latest,
        follows=follows,
        min_gap_days=gap if follows is not None else 0,
    )


def _authorised_starts(
    rows: Sequence[Infusion],
    spans: Sequence[tuple[dt.date, dt.date]],
    limits: _Limits,
) -> tuple[dt.date | None, dt.date | None] | None:
    """The first days a cycle may take inside the authorisation it is booked in (earliest,
    latest; None: no bound), or None when it lies outside every one (it stays). The therapy
    checker's `authorised` rule: every day of it inside one authorisation."""
    if not spans:
        return (None, None)
    first, last = min(r.planned_date for r in rows), max(r.planned_date for r in rows)
    span = next(((a, b) for a, b in spans if a <= first and last <= b), None)
    if span is None:
        return None
    latest_start = rows[0].cycle_planned_on + dt.timedelta(days=limits.window)
    day = latest_start
    while day > first:
        run = schedule.following_open_days(day, len(rows) - 1, limits.calendar)
        if run is not None and (run[-1] if run else day) <= span[1]:
            break
        day -= dt.timedelta(days=1)
    return span[0], day


def _reach(requests: Iterable[optimise.CycleRequest], calendar: schedule.CenterCalendar) -> dt.date:
    """The last day a cycle to move could take (its latest start, then its days)."""
    last = dt.date.min
    for request in requests:
        start = request.target_start + dt.timedelta(days=request.window_days)
        days = schedule.following_open_days(start, request.days - 1, calendar)
        last = max(last, days[-1] if days else start + dt.timedelta(days=request.days + 4))
    return last


def _fixed_requests(
    rows: Sequence[Infusion],
    moving: set[int],
    chairs: set[int],
    days: tuple[dt.date, dt.date],
    zone: ZoneInfo,
    first_id: int,
) -> list[tuple[optimise.CycleRequest, optimise.Placement]]:
    """Every other booking on the days a cycle to move could take, as a day that stays: it
    holds its chair and counts for the nurses. (Days no cycle can reach are not the
    optimiser's, and stay out of its figures.)"""
    out: list[tuple[optimise.CycleRequest, optimise.Placement]] = []
    for row in rows:
        if (
            row.id in moving
            or row.status not in CHAIR_HOLDING
            or row.chair_id not in chairs
            or not days[0] <= row.planned_date <= days[1]
        ):
            continue
        placement = _placement(first_id + len(out), 1, row, zone)
        if placement.start is None or placement.chair_id is None:
            continue
        day = optimise.FixedDay(1, row.planned_date, placement.chair_id, placement.start)
        request = optimise.CycleRequest(
            id=placement.cycle_id,
            target_start=row.planned_date,
            minutes=(_booked_minutes(row),),
            preferred_start=placement.start,
            window_days=0,
            fixed=(day,),
        )
        out.append((request, placement))
    return out


# --- proposing ---------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def _moves(gathered: Gathered, solution: optimise.Solution) -> list[dict[str, Any]]:
    """Where each moved infusion goes: the proposal's plan against the rows as they are."""
    zone = ZoneInfo(gathered.center.timezone)
    plan = {(p.cycle_id, p.day_number): p for p in solution.plan}
    out: list[dict[str, Any]] = []
    for cycle in gathered.movable:
        for number, row in enumerate(cycle.rows, 1):
            new = plan.get((cycle.cycle_id, number))
            if new is None or not new.booked or new.start is None:
                continue
            starts_at = dt.datetime.combine(new.date, new.start, tzinfo=zone).astimezone(dt.UTC)
            if row.chair_id == new.chair_id and row.starts_at == starts_at:
                continue
            out.append(
                {
                    "infusion_id": row.id,
                    "version": row.version,
                    "patient_id": row.patient_id,
                    "cycle_number": row.cycle_number,
                    "day_number": row.day_number,
                    "from_chair_id": row.chair_id,
                    "from_starts_at": row.starts_at.isoformat() if row.starts_at else None,
                    "from_date": row.planned_date.isoformat(),
                    "chair_id": new.chair_id,
                    "starts_at": starts_at.isoformat(),
                    "date": new.date.isoformat(),
                    "first_date": min(
                        p.date for (cid, _n), p in plan.items() if cid == cycle.cycle_id
                    ).isoformat(),
                }
            )
    return out


def propose(
    session: so.Session,
    actor: Actor,
    center_id: int,
    settings: Settings,
    now: dt.datetime | None = None,
) -> ScheduleProposal:
    """Run the optimiser on a center's next weeks and store what it proposes (moves nothing).

    The solver runs after the read transaction ends, so no lock is held while it thinks."""
    now = now or utcnow()
    center = clinic.get_center(session, center_id)
    today = schedule.local_date(now, center.timezone)
    gathered = gather(session, center_id, settings, today, now)
    session.commit()  # end the read (it wrote nothing): nothing is held while it solves
    solution = optimise.optimise(gathered.problem)
    current = optimise.figures(gathered.problem, gathered.problem.current)
    moves = [] if solution.fallback else _moves(gathered, solution)
    with unit_of_work(session):
        for earlier in session.scalars(
            sa.select(ScheduleProposal).where(
                ScheduleProposal.center_id == center_id, ScheduleProposal.state == "proposed"
            )
        ):
            earlier.state = "stale"
        proposal = ScheduleProposal(
            center_id=center_id,
            from_on=gathered.horizon.from_on,
            until_on=gathered.horizon.until_on,
            state="proposed",
            method=solution.method,
            solver_status=solution.status,
            reason=solution.reason,
            objective=solution.objective,
            bound=solution.bound,
            solve_seconds=round(solution.solve_seconds, 3),
            current=_jsonable(current),
            proposed=_jsonable(solution.figures),
            summary={
                **_jsonable(solution.moves),
                "cycles": len(gathered.movable),
                "kept": gathered.kept,
                "gap": solution.gap,
                "notes": list(solution.notes),
            },
            moves=moves,
            fingerprint=gathered.fingerprint,
            created_by_id=actor.user_id,
            created_at=now,
        )
        session.add(proposal)
        session.flush()
        audit.record(
            session,
            actor,
            "schedule.propose",
            "center",
            center_id,
            after={
                "proposal_id": proposal.id,
                "method": solution.method,
                "status": solution.status,
                "moves": len(moves),
                "from_on": gathered.horizon.from_on,
                "until_on": gathered.horizon.until_on,
            },
        )
    return proposal


def get_proposal(session: so.Session, center_id: int, proposal_id: int) -> ScheduleProposal:
    """The proposal at the center, or NotFound naming the field."""
    proposal = session.get(ScheduleProposal, proposal_id)
    if proposal is None or proposal.center_id != center_id:
        raise NotFound(
            f"proposal_id: no proposal {proposal_id} at this center", field="proposal_id"
        )
    return proposal


def patient_names(session: so.Session, proposal: ScheduleProposal) -> dict[int, str]:
    """The names of the patients a proposal moves, by id (the page lists them)."""
    ids = {move["patient_id"] for move in proposal.moves}
    return {
        p.id: p.display_name for p in session.scalars(sa.select(Patient).where(Patient.id.in_(ids)))
    }


def latest_proposal(session: so.Session, center_id: int) -> ScheduleProposal | None:
    """The center's newest proposal, whatever became of it."""
    return session.scalar(
        sa.select(ScheduleProposal)
        .where(ScheduleProposal.center_id == center_id)
        .order_by(ScheduleProposal.id.desc())
        .limit(1)
    )


# --- deciding ----------------------------------------------------------------------------


class StaleProposal(Conflict):
    """The bookings changed since the proposal was made: optimise again."""


def _require_open(proposal: ScheduleProposal) -> None:
    if proposal.state != "proposed":
        raise Conflict(
            f"proposal_id: proposal {proposal.id} is {proposal.state}; optimise again",
            field="proposal_id",
        )


def accept(
    session: so.Session,
    actor: Actor,
    center_id: int,
    proposal_id: int,
    settings: Settings,
    now: dt.datetime | None = None,
) -> ScheduleProposal:
    """Apply a proposal's moves as reschedules, all or none, if nothing changed since."""
    now = now or utcnow()
    proposal = get_proposal(session, center_id, proposal_id)
    _require_open(proposal)
    if proposal.method != "cp-sat" or not proposal.moves:
        raise Conflict(
            "proposal_id: this proposal moves nothing; the bookings stay as they are",
            field="proposal_id",
        )
    stale: str | None = None
    with unit_of_work(session):
        for patient_id in sorted({m["patient_id"] for m in proposal.moves}):
            integrity.lock_patient(session, patient_id)  # patients first, as everywhere
        scheduling.lock_chairs(session, center_id)
        proposal = session.scalars(
            sa.select(ScheduleProposal)
            .where(ScheduleProposal.id == proposal_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        _require_open(proposal)
        center = clinic.get_center(session, center_id)
        today = schedule.local_date(now, center.timezone)
        horizon = Horizon.around(settings, proposal.from_on, proposal.until_on)
        if proposal.created_at.astimezone(ZoneInfo(center.timezone)).date() != today:
            stale = "it was made on an earlier day"
        elif fingerprint(_rows_in(session, center_id, horizon)) != proposal.fingerprint:
            stale = "the bookings at this center have changed since it was made"
        if stale is not None:
            proposal.state = "stale"
            proposal.decided_by_id, proposal.decided_at = actor.user_id, now
        else:
            _apply(session, actor, proposal, settings, now)
    if stale is not None:
        raise StaleProposal(f"proposal_id: {stale}; optimise again", field="proposal_id")
    return proposal


def _apply(
    session: so.Session,
    actor: Actor,
    proposal: ScheduleProposal,
    settings: Settings,
    now: dt.datetime,
) -> None:
    turnover = dt.timedelta(minutes=settings.scheduling.turnover_minutes)
    rows = {
        row.id: row
        for row in session.scalars(
            sa.select(Infusion)
            .where(Infusion.id.in_([m["infusion_id"] for m in proposal.moves]))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    befores = {row_id: infusion_view(row) for row_id, row in rows.items()}
    # Days may move onto each other's old slots: release them all first, so the database's
    # no-double-booking guard never sees a slot held twice.
    for row in rows.values():
        row.chair_id = row.starts_at = row.ends_at = row.occupied_until = None
        row.status = InfusionStatus.UNBOOKED
    session.flush()
    for move in proposal.moves:
        row = rows[move["infusion_id"]]
        starts_at = dt.datetime.fromisoformat(move["starts_at"])
        row.chair_id = move["chair_id"]
        row.starts_at = starts_at
        row.ends_at = starts_at + dt.timedelta(minutes=row.planned_minutes)
        row.occupied_until = row.ends_at + turnover
        row.planned_date = dt.date.fromisoformat(move["date"])
        row.shift_days = (dt.date.fromisoformat(move["first_date"]) - row.cycle_planned_on).days
        row.status = InfusionStatus.SCHEDULED
        row.status_reason = f"Schedule optimised (proposal {proposal.id})"
        row.mark_changed(now, significant=True)
        audit.record(
            session,
            actor,
            "infusion.optimise",
            "infusion",
            row.id,
            before=befores[row.id],
            after={**infusion_view(row), "proposal_id": proposal.id},
        )
    proposal.state = "accepted"
    proposal.decided_by_id, proposal.decided_at = actor.user_id, now
    audit.record(
        session,
        actor,
        "schedule.accept",
        "center",
        proposal.center_id,
        after={"proposal_id": proposal.id, "moves": len(proposal.moves)},
    )
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise StaleProposal(
            "proposal_id: a chair it uses was just taken; optimise again", field="proposal_id"
        ) from exc


def discard(
    session: so.Session,
    actor: Actor,
    center_id: int,
    proposal_id: int,
    now: dt.datetime | None = None,
) -> ScheduleProposal:
    """Set a proposal aside: nothing moves."""
    with unit_of_work(session):
        get_proposal(session, center_id, proposal_id)
        # Locked and read afresh, as accept reads it: an acceptance under way wins.
        proposal = session.scalars(
            sa.select(ScheduleProposal)
            .where(ScheduleProposal.id == proposal_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        _require_open(proposal)
        proposal.state = "discarded"
        proposal.decided_by_id, proposal.decided_at = actor.user_id, now or utcnow()
        audit.record(
            session,
            actor,
            "schedule.discard",
            "center",
            center_id,
            after={"proposal_id": proposal.id},
        )
    return proposal
