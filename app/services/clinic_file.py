"""Import and export of the clinic file (app.domain.clinic_file): a clinic moving in, or out.

The import reads the whole file first and names every bad row (line, column, reason); it
writes nothing until the file is clean. Then it writes everything in one transaction with the
checks the pages use (a patient's fields, dose hard and soft stops, score ranges, plausible lab
values, taper rules), and the therapy-integrity checker judges the history it wrote before
anything commits; a dry run does all of it and rolls back. Each imported patient gets an audit
row naming the file's lines, and the file one with its SHA-256.

Decisions:
- Past infusions are history: recorded (given, partial, missed) without a chair, at the
  regimen's center. Cycles still to come are booked by the horizon job (or the next regimen
  change), not by the import.
- A regimen the dose rules would only allow with a physician's override is refused: the file
  carries no override; the physician sets it on the patient's page.
- Assessments are imported without running the rules engine; the nightly evaluation sees
  them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.csvout import safe_cell
from app.db import Base, utcnow
from app.domain import clinic_file, integrity, schedule, taper
from app.domain.clinic_file import FileProblem, Row
from app.domain.scores import SCORES
from app.models import (
    Assessment,
    Center,
    Infusion,
    InfusionStatus,
    LabResult,
    Patient,
    Regimen,
    Role,
    TaperPlan,
    User,
    WeightMeasurement,
)
from app.services import assessments, audit, labs, patients, regimens, tapers
from app.services import integrity as integrity_service
from app.services.context import Actor, unit_of_work
from app.services.errors import InvalidInput, ServiceError

#: Patients written per flush (and per progress step).
BATCH = 500

#: Service field names that are another column of the file.
_COLUMN_OF: Mapping[str, str] = {
    "home_center_id": "center",
    "treating_physician_id": "physician",
    "measured_on": "date",
    "assessed_on": "date",
    "taken_on": "date",
    "starts_on": "date",
    "override_reason": "dose_g_per_kg",
}

#: (stage, done, total): where a long import is.
Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class ImportReport:
    dry_run: bool
    problems: tuple[FileProblem, ...]
    #: Rows by kind (those a clean file imported, or would).
    counts: Mapping[str, int]
    sha256: str

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def written(self) -> bool:
        return self.ok and not self.dry_run


class _Abandon(Exception):
    """Roll the import's transaction back (a dry run, or problems found while writing)."""


def _column(exc: ServiceError) -> str:
    name = exc.field or ""
    name = _COLUMN_OF.get(name, name)
    return name if name in clinic_file.COLUMNS else ""


def _problem(row: Row, exc: ServiceError) -> FileProblem:
    return FileProblem(row.line, _column(exc), exc.message)


@dataclasses.dataclass
class _Regimen:
    row: Row
    data: regimens.RegimenInput
    weight_kg: float
    result: Any
    center_id: int
    version: int = 0
    saved: Regimen | None = None


@dataclasses.dataclass
class _Plan:
    """One patient's rows as checked: what pass two writes."""

    mrn: str
    rows: list[Row]
    patient: Patient
    created: bool
    regimens: list[_Regimen] = dataclasses.field(default_factory=list)
    #: A taper row's line -> the steps its template makes (checked, written as they are).
    tapers: dict[int, Sequence[taper.StepPlan]] = dataclasses.field(default_factory=dict)


class _Lookups:
    def __init__(self, session: so.Session, mrns: Sequence[str]) -> None:
        self.centers = {c.name: c for c in session.scalars(sa.select(Center))}
        self.physicians = {
            u.email.lower(): u
            for u in session.scalars(
                sa.select(User).where(User.role == Role.PHYSICIAN, User.active.is_(True))
            )
        }
        self.patients: dict[str, Patient] = {}
        for chunk in _chunks(list(mrns), 5000):
            for patient in session.scalars(sa.select(Patient).where(Patient.mrn.in_(chunk))):
                self.patients[patient.mrn] = patient

    def center(self, name: str, column: str) -> Center:
        center = self.centers.get(name)
        if center is None:
            known = ", ".join(sorted(self.centers)) or "none yet"
            raise InvalidInput(f"no center named {name!r} (known: {known})", field=column)
        return center


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: Kinds that are prescriptions, which may start later; the rest is what happened.
_MAY_START_LATER = frozenset({"regimen", "taper"})


def _not_future(row: Row, today: dt.date, birth: dt.date) -> None:
    day: dt.date = row.get("date")
    if day > today and row.kind not in _MAY_START_LATER:
        raise InvalidInput(f"{day} is in the future (today is {today})", field="date")
    if day < birth:
        raise InvalidInput(f"{day} is before the patient's birth date ({birth})", field="date")


def _patient(row: Row, found: _Lookups, settings: Settings, today: dt.date) -> Patient:
    center = found.center(row.get("center"), "center")
    physician_id = None
    if row.get("physician"):
        doctor = found.physicians.get(str(row.get("physician")).lower())
        if doctor is None:
            raise InvalidInput(
                f"no active physician with e-mail {row.get('physician')!r}", field="physician"
            )
        physician_id = doctor.id
    data = patients.PatientInput(
        mrn=row.mrn,
        family_name=row.get("family_name"),
        given_name=row.get("given_name"),
        sex=row.get("sex"),
        birth_date=row.get("birth_date"),
        home_center_id=center.id,
        height_cm=row.get("height_cm"),
        dm_subtype=row.get("dm_subtype") or "classic",
        treating_physician_id=physician_id,
        thrombosis_risk=bool(row.get("thrombosis_risk")),
        renal_risk=bool(row.get("renal_risk")),
        allergies=row.get("allergies"),
        iga_deficient=bool(row.get("iga_deficient")),
    )
    patients.check_fields(data, settings)
    patients.check_birth_date(data.birth_date, today)
    if row.mrn in found.patients:
        raise InvalidInput(f"a patient with MRN {row.mrn} exists already", field="mrn")
    patient, _weight = patients.new_patient(data)
    patient.home_center = center
    return patient


def _regimen_input(row: Row) -> regimens.RegimenInput:
    return regimens.RegimenInput(
        product=row.get("product"),
        dose_g_per_kg=row.get("dose_g_per_kg"),
        days_per_cycle=row.get("days_per_cycle"),
        interval_weeks=row.get("interval_weeks"),
        weight_basis=row.get("weight_basis"),
        starts_on=row.get("date"),
        reason=row.get("reason"),
        preferred_weekday=row.get("preferred_weekday"),
        preferred_time=row.get("preferred_time"),
    )


def _taper_input(row: Row) -> tapers.PlanInput:
    params = {
        name: row.get(name)
        for name in ("decrement_mg", "percent", "step_days")
        if row.get(name) is not None
    }
    if row.get("template") == "custom":
        raise InvalidInput(
            "a custom taper is not in the clinic file; enter it on the patient's page",
            field="template",
        )
    return tapers.PlanInput(
        drug=row.get("drug"),
        start_mg=row.get("start_mg"),
        template=row.get("template"),
        starts_on=row.get("date"),
        params=params,
        reason=row.get("reason"),
    )


def _scores(row: Row) -> dict[str, float | None]:
    return {name: row.get(name) for name in SCORES}


def _lab_input(row: Row) -> labs.LabInput:
    return labs.LabInput(
        test=row.get("test"),
        value=row.get("value"),
        taken_on=row.get("date"),
        unit=row.get("unit"),
        ref_low=row.get("ref_low"),
        ref_high=row.get("ref_high"),
    )


@dataclasses.dataclass
class _Checking:
    """What checking one patient's rows carries from row to row."""

    plan: _Plan
    found: _Lookups
    settings: Settings
    today: dt.date
    #: A regimen row of this patient has a problem: its infusions are not judged without it.
    regimen_failed: bool = False
    #: Steps of each taper input seen (a clinic's tapers repeat: the same start, template).
    steps_of: dict[tuple[object, ...], Sequence[taper.StepPlan]] = dataclasses.field(
        default_factory=dict
    )
    weights: list[tuple[dt.date, float]] = dataclasses.field(default_factory=list)


def _check_weight(row: Row, at: _Checking) -> None:
    patients.check_weight(row.get("weight_kg"), at.settings)
    at.weights.append((row.get("date"), row.get("weight_kg")))


def _check_regimen(row: Row, at: _Checking) -> None:
    patient = at.plan.patient
    data = _regimen_input(row)
    if not data.reason.strip():
        raise InvalidInput("say why the regimen was set", field="reason")
    known = [kg for day, kg in at.weights if day <= data.starts_on]
    weight = row.get("weight_kg") or (known[-1] if known else None)
    if weight is None:
        raise InvalidInput(
            f"no weight on or before {data.starts_on}: give the regimen's weight_kg or add a "
            "weight row",
            field="weight_kg",
        )
    patients.check_weight(weight, at.settings)
    result = regimens.calculate(regimens.dose_request(patient, weight, data), at.settings)
    if result.soft_stops:
        warnings = "; ".join(problem.message for problem in result.soft_stops)
        raise InvalidInput(
            f"{warnings} (needs a physician's override: set this regimen on the patient's page)",
            field=result.soft_stops[0].field,
        )
    center = at.found.center(row.get("center"), "center") if row.get("center") else None
    center_id = center.id if center else patient.home_center_id
    at.plan.regimens.append(_Regimen(row, data, weight, result, center_id))


def _check_infusion(row: Row, at: _Checking) -> None:
    if at.regimen_failed:
        return
    if not at.plan.regimens:
        raise InvalidInput(
            f"no regimen row of this patient in force on {row.get('date')}", field="date"
        )
    grams = row.get("grams")
    if row.get("status") == "missed" and grams is not None:
        raise InvalidInput("a missed infusion gives no grams: leave it empty", field="grams")
    if grams is not None and grams <= 0:
        raise InvalidInput(f"{grams:g} g: more than 0", field="grams")


def _check_taper(row: Row, at: _Checking) -> None:
    data = _taper_input(row)
    key = (data.drug, data.start_mg, data.template, tuple(sorted(data.params.items())))
    steps = at.steps_of.get(key)
    if steps is None:
        steps = at.steps_of[key] = tapers.build_steps(data, at.settings)
    at.plan.tapers[row.line] = steps


_CHECKS: Mapping[str, Callable[[Row, _Checking], object]] = {
    "weight": _check_weight,
    "regimen": _check_regimen,
    "taper": _check_taper,
    "assessment": lambda row, _at: assessments.check_scores(_scores(row)),
    "lab": lambda row, at: labs.check_lab(_lab_input(row), at.settings.labs, at.today),
    "infusion": _check_infusion,
}


def _check_row(row: Row, at: _Checking) -> None:
    """The page's checks of one row (a patient row is checked before the others)."""
    _not_future(row, at.today, at.plan.patient.birth_date)
    _CHECKS[row.kind](row, at)


def _check(
    groups: Mapping[str, list[Row]],
    failed: set[tuple[str, str]],
    found: _Lookups,
    settings: Settings,
    today: dt.date,
    progress: Progress | None,
) -> tuple[list[_Plan], list[FileProblem]]:
    plans, problems = [], []
    steps_of: dict[tuple[object, ...], Sequence[taper.StepPlan]] = {}
    for done, (mrn, rows) in enumerate(groups.items(), start=1):
        head = rows[0]
        if (mrn, "patient") in failed:
            continue  # its patient row has a problem: the rest cannot be checked against it
        patient: Patient | None
        try:
            if head.kind == "patient":
                patient = _patient(head, found, settings, today)
            else:
                patient = found.patients.get(mrn)
                if patient is None:
                    raise InvalidInput(f"no patient with MRN {mrn}: add a patient row", field="mrn")
        except ServiceError as exc:
            problems.append(_problem(head, exc))
            continue
        plan = _Plan(mrn, rows, patient, created=head.kind == "patient")
        checking = _Checking(plan, found, settings, today, (mrn, "regimen") in failed, steps_of)
        for row in rows[1:] if plan.created else rows:
            try:
                _check_row(row, checking)
            except ServiceError as exc:
                problems.append(_problem(row, exc))
                checking.regimen_failed |= row.kind == "regimen"
        plans.append(plan)
        if progress is not None and (done % BATCH == 0 or done == len(groups)):
            progress("checking", done, len(groups))
    return plans, problems


def _given_times(
    row: Row, regimen: Regimen, zone: ZoneInfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    if row.get("status") == "missed":
        return None, None
    at: dt.time = row.get("time") or regimen.preferred_time
    started = dt.datetime.combine(row.get("date"), at, tzinfo=zone).astimezone(dt.UTC)
    minutes = row.get("minutes") or regimen.minutes_per_day
    return started, started + dt.timedelta(minutes=minutes)


def _infusions(plan: _Plan, zones: Mapping[int, ZoneInfo]) -> list[dict[str, object]]:
    """The patient's past infusions, each in the regimen version in force when its cycle began."""
    versions = [
        integrity.VersionFact(
            id=index,
            version=item.version,
            effective_on=schedule.first_cycle_start(
                item.data.starts_on, item.data.preferred_weekday
            ),
            grams_per_day=0.0,
            grams_per_cycle=0.0,
            days_per_cycle=item.data.days_per_cycle,
            interval_weeks=item.data.interval_weeks,
        )
        for index, item in enumerate(plan.regimens)
    ]
    rows = [row for row in plan.rows if row.kind == "infusion"]
    first_days = {row.get("cycle"): row.get("date") for row in rows if row.get("day") == 1}
    made = []
    now = utcnow()
    for row in rows:
        cycle_start = first_days.get(row.get("cycle")) or row.get("date") - dt.timedelta(
            days=row.get("day") - 1
        )
        fact = integrity.version_in_force(versions, cycle_start) or versions[0]
        regimen = plan.regimens[fact.id].saved
        assert regimen is not None
        started, ended = _given_times(row, regimen, zones[regimen.center_id])
        made.append(
            {
                "uid": uuid.uuid4().hex,
                "patient_id": plan.patient.id,
                "regimen_id": regimen.id,
                "cycle_number": row.get("cycle"),
                "day_number": row.get("day"),
                "planned_date": row.get("date"),
                "cycle_planned_on": cycle_start,
                "center_id": regimen.center_id,
                "status": row.get("status"),
                "planned_grams": regimen.grams_per_day,
                "planned_vials": regimen.calculation["rounding"]["vials"],
                "planned_minutes": regimen.minutes_per_day,
                "given_grams": row.get("grams"),
                "lot_numbers": row.get("lots"),
                "given_started_at": started,
                "given_ended_at": ended,
                "status_reason": row.get("reason"),
                "waived_rules": [],
                "sequence": 0,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    return made


def _write(
    session: so.Session,
    actor: Actor,
    plans: Sequence[_Plan],
    settings: Settings,
    progress: Progress | None,
) -> None:
    """Write every checked plan, a batch of patients at a time: the patients and regimen
    versions as objects (their ids are needed), the history rows in bulk."""
    zones = {c.id: ZoneInfo(c.timezone) for c in session.scalars(sa.select(Center))}
    for done_batch, batch in enumerate(_chunks(plans, BATCH), start=1):
        session.add_all([plan.patient for plan in batch if plan.created])
        session.flush()
        integrity_service.fresh_patients(session, [p.patient.id for p in batch if p.created])
        rows: dict[type[Base], list[dict[str, object]]] = defaultdict(list)
        for plan in batch:
            _versions(session, actor, plan, settings)
            for model, values in _history(plan, actor, settings):
                rows[model].append(values)
        session.flush()
        for plan in batch:
            rows[Infusion].extend(_infusions(plan, zones))
        for model, values_list in rows.items():
            # Core, not the ORM: nothing here needs an object or an id back.
            session.execute(sa.insert(cast(sa.Table, model.__table__)), values_list)
        for plan in batch:
            for row in plan.rows:
                if row.kind == "taper":
                    data = _taper_input(row)
                    tapers.create_plan(
                        session,
                        actor,
                        plan.patient.id,
                        data,
                        settings,
                        data.starts_on,
                        plan.tapers[row.line],
                    )
            _audit_patient(session, actor, plan)
        session.flush()
        if progress is not None:
            progress("writing", min(done_batch * BATCH, len(plans)), len(plans))


def _versions(session: so.Session, actor: Actor, plan: _Plan, settings: Settings) -> None:
    patient_id = plan.patient.id
    version = (
        session.scalar(
            sa.select(sa.func.max(Regimen.version)).where(Regimen.patient_id == patient_id)
        )
        if not plan.created
        else None
    ) or 0
    for item in plan.regimens:
        version += 1
        item.version = version
        item.saved = regimens.build_version(
            plan.patient,
            version,
            item.data,
            item.weight_kg,
            item.result,
            (),
            None,
            item.center_id,
            settings,
            actor,
        )
        session.add(item.saved)


def _history(
    plan: _Plan, actor: Actor, settings: Settings
) -> Iterator[tuple[type[Base], dict[str, object]]]:
    """The weights, assessments and lab results of a patient, as rows to insert."""
    patient_id = plan.patient.id
    now = utcnow()
    for row in plan.rows:
        if row.kind == "weight":
            yield (
                WeightMeasurement,
                {
                    "patient_id": patient_id,
                    "measured_on": row.get("date"),
                    "weight_kg": row.get("weight_kg"),
                    "recorded_by_id": actor.user_id,
                    "created_at": now,
                },
            )
        elif row.kind == "assessment":
            yield (
                Assessment,
                {
                    "patient_id": patient_id,
                    "assessed_on": row.get("date"),
                    "notes": (row.get("notes") or "").strip(),
                    "recorded_by_id": actor.user_id,
                    "created_at": now,
                    **_scores(row),
                },
            )
        elif row.kind == "lab":
            known, value = labs.check_lab(_lab_input(row), settings.labs, row.get("date"))
            given_range = row.get("ref_low") is not None or row.get("ref_high") is not None
            yield (
                LabResult,
                {
                    "patient_id": patient_id,
                    "test": row.get("test"),
                    "value": value,
                    "unit": known.unit,
                    "ref_low": row.get("ref_low") if given_range else known.ref_low,
                    "ref_high": row.get("ref_high") if given_range else known.ref_high,
                    "taken_on": row.get("date"),
                    "recorded_by_id": actor.user_id,
                    "created_at": now,
                },
            )


def _audit_patient(session: so.Session, actor: Actor, plan: _Plan) -> None:
    counts = Counter(row.kind for row in plan.rows)
    audit.record(
        session,
        actor,
        "import.patient",
        "patient",
        plan.patient.id,
        after={
            "mrn": plan.mrn,
            "created": plan.created,
            "lines": sorted(row.line for row in plan.rows),
            "rows": dict(sorted(counts.items())),
            "regimens": [regimens.regimen_view(item.saved) for item in plan.regimens if item.saved],
        },
    )


def _violations(session: so.Session, plans: Sequence[_Plan]) -> list[FileProblem]:
    """What the therapy-integrity checker refuses in the written history, by line."""
    found = integrity_service.added_violations(session, remember=True)
    if not found:
        return []
    line_of = {
        (plan.patient.id, row.get("cycle"), row.get("day")): row.line
        for plan in plans
        if plan.patient.id in found
        for row in plan.rows
        if row.kind == "infusion"
    }
    ids = {i for violations in found.values() for v in violations for i in v.infusion_ids}
    where = {
        r.id: line_of.get((r.patient_id, r.cycle_number, r.day_number))
        for r in session.execute(
            sa.select(
                Infusion.id, Infusion.patient_id, Infusion.cycle_number, Infusion.day_number
            ).where(Infusion.id.in_(ids))
        )
    }
    problems = []
    for violations in found.values():
        for violation in violations:
            at = [line for i in violation.infusion_ids if (line := where.get(i)) is not None]
            problems.append(FileProblem(min(at) if at else 0, "", violation.message))
    return problems


def import_file(
    session: so.Session,
    actor: Actor,
    raw: bytes,
    settings: Settings,
    today: dt.date,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a clinic file in one transaction, or nothing: every problem is reported."""
    sha = hashlib.sha256(raw).hexdigest()
    parsed = clinic_file.parse(raw)
    counts = dict(Counter(row.kind for row in parsed.rows))
    if parsed.unreadable:
        return ImportReport(dry_run, tuple(parsed.problems), {}, sha)
    groups = clinic_file.by_patient(parsed.rows)
    problems: list[FileProblem] = []
    try:
        with unit_of_work(session):
            found = _Lookups(session, list(groups))
            plans, problems = _check(groups, parsed.failed, found, settings, today, progress)
            problems += parsed.problems
            if problems:
                raise _Abandon
            _write(session, actor, plans, settings, progress)
            if progress is not None:
                progress("checking therapy", 0, 1)
            problems = _violations(session, plans)
            if progress is not None:
                progress("checking therapy", 1, 1)
            if problems or dry_run:
                raise _Abandon
            audit.record(
                session,
                actor,
                "import.file",
                "clinic_file",
                sha[:16],
                after={"sha256": sha, "patients": len(plans), "rows": counts},
            )
    except _Abandon:
        pass
    except ServiceError as exc:
        # A check the pages make while writing (a taper rule, say) that the row checks did
        # not foresee: nothing was written; name what refused.
        problems = [FileProblem(0, _column(exc), exc.message)]
    problems.sort(key=lambda p: (p.line, p.column))
    return ImportReport(dry_run, tuple(problems), counts if not problems else {}, sha)


# --- export -------------------------------------------------------------------------------


def _records(session: so.Session) -> Iterator[dict[str, object]]:
    centers = {c.id: c for c in session.scalars(sa.select(Center))}
    emails = {row.id: row.email for row in session.execute(sa.select(User.id, User.email))}
    children: dict[int, list[tuple[int, dt.date, Any, dict[str, object]]]] = defaultdict(list)

    def add(
        kind: str, patient_id: int, day: dt.date, order: object, values: dict[str, object]
    ) -> None:
        children[patient_id].append(
            (clinic_file.KIND_ORDER.index(kind), day, order, {"record": kind, **values})
        )

    for w in session.scalars(sa.select(WeightMeasurement)):
        add(
            "weight",
            w.patient_id,
            w.measured_on,
            w.id,
            {"date": w.measured_on, "weight_kg": w.weight_kg},
        )
    regimen_by_id: dict[int, Regimen] = {}
    home = {
        row.id: row.home_center_id
        for row in session.execute(sa.select(Patient.id, Patient.home_center_id))
    }
    for r in session.scalars(sa.select(Regimen)):
        regimen_by_id[r.id] = r
        add(
            "regimen",
            r.patient_id,
            r.starts_on,
            r.version,
            {
                "date": r.starts_on,
                "product": r.product,
                "dose_g_per_kg": r.dose_g_per_kg,
                "days_per_cycle": r.days_per_cycle,
                "interval_weeks": r.interval_weeks,
                "weight_basis": r.weight_basis,
                "preferred_weekday": r.preferred_weekday,
                "preferred_time": r.preferred_time,
                "center": None if r.center_id == home[r.patient_id] else centers[r.center_id].name,
                "weight_kg": r.weight_kg,
                "reason": r.reason,
            },
        )
    for t in session.scalars(sa.select(TaperPlan)):
        add(
            "taper",
            t.patient_id,
            t.starts_on,
            t.version,
            {
                "date": t.starts_on,
                "drug": t.drug,
                "start_mg": t.start_mg,
                "template": t.template,
                **{k: t.template_params.get(k) for k in ("decrement_mg", "percent", "step_days")},
                "reason": t.reason,
            },
        )
    for a in session.scalars(sa.select(Assessment)):
        add(
            "assessment",
            a.patient_id,
            a.assessed_on,
            a.id,
            {
                "date": a.assessed_on,
                **{n: getattr(a, n) for n in SCORES},
                "notes": a.notes or None,
            },
        )
    for lab in session.scalars(sa.select(LabResult)):
        add(
            "lab",
            lab.patient_id,
            lab.taken_on,
            lab.test,
            {
                "date": lab.taken_on,
                "test": lab.test,
                "value": lab.value,
                "unit": lab.unit,
                "ref_low": lab.ref_low,
                "ref_high": lab.ref_high,
            },
        )
    recorded = [
        s.value for s in (InfusionStatus.GIVEN, InfusionStatus.PARTIAL, InfusionStatus.MISSED)
    ]
    for i in session.scalars(sa.select(Infusion).where(Infusion.status.in_(recorded))):
        zone = ZoneInfo(centers[i.center_id].timezone)
        started, ended = i.given_started_at, i.given_ended_at
        add(
            "infusion",
            i.patient_id,
            i.planned_date,
            i.day_number,
            {
                "date": i.planned_date,
                "cycle": i.cycle_number,
                "day": i.day_number,
                "status": i.status,
                "grams": i.given_grams,
                "lots": i.lot_numbers,
                "time": started.astimezone(zone).time() if started else None,
                "minutes": round((ended - started).total_seconds() / 60)
                if started and ended
                else None,
                "reason": i.status_reason,
            },
        )
    for p in session.scalars(sa.select(Patient).order_by(Patient.mrn)):
        yield {
            "record": "patient",
            "mrn": p.mrn,
            "family_name": p.family_name,
            "given_name": p.given_name,
            "sex": p.sex,
            "birth_date": p.birth_date,
            "center": centers[p.home_center_id].name,
            "physician": emails.get(p.treating_physician_id) if p.treating_physician_id else None,
            "height_cm": p.height_cm,
            "dm_subtype": p.dm_subtype,
            "thrombosis_risk": p.thrombosis_risk,
            "renal_risk": p.renal_risk,
            "iga_deficient": p.iga_deficient,
            "allergies": p.allergies,
        }
        for _kind, _day, _order, values in sorted(children.pop(p.id, []), key=lambda c: c[:3]):
            yield {"mrn": p.mrn, **values}


def export_file(session: so.Session, actor: Actor) -> tuple[str, int]:
    """Every patient and their recorded history as a clinic file (what the import reads), and
    its number of rows; the export is audited (it carries every patient's record)."""
    records = list(_records(session))
    text = clinic_file.render(records, safe_cell)
    with unit_of_work(session):
        audit.record(
            session,
            actor,
            "export.clinic_file",
            "clinic_file",
            None,
            after={
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "rows": dict(Counter(str(r["record"]) for r in records)),
            },
        )
    return text, len(records)
