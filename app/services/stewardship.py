"""The stewardship ledger (app.domain.stewardship) of a patient and of the clinic, and the rule
outcomes (app.domain.rule_outcomes): loaded in bulk, in a fixed number of queries."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.domain import reviews as review_rules
from app.domain import rule_outcomes as rule_outcomes_domain
from app.domain import stewardship as ledger_rules
from app.models import (
    Center,
    CourseReview,
    Infusion,
    InfusionStatus,
    Patient,
    Regimen,
    Role,
    Suggestion,
    User,
)
from app.services.errors import InvalidInput, NotFound
from app.services.suggestions import UNDECIDED

#: Infusion statuses whose grams were given.
_GIVEN = (InfusionStatus.GIVEN.value, InfusionStatus.PARTIAL.value)


@dataclasses.dataclass(frozen=True)
class ClinicFilter:
    """Which patients and which period the clinic's ledger covers (all None: everyone, from
    each course's first cycle to today)."""

    center_id: int | None = None
    physician_id: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None


@dataclasses.dataclass(frozen=True)
class PatientLine:
    patient_id: int
    mrn: str
    name: str
    center: str
    physician: str | None
    ledger: ledger_rules.Ledger


@dataclasses.dataclass(frozen=True)
class ClinicLedger:
    filter: ClinicFilter
    as_of: dt.date
    lines: tuple[PatientLine, ...]
    total: ledger_rules.Ledger
    currency: str


def filtered_patients(filt: ClinicFilter) -> sa.Select[int] | None:
    """The filter's patients' ids, or None for every patient (no IN clause at all: the
    database then reads the whole table in one pass)."""
    if filt.center_id is None and filt.physician_id is None:
        return None
    statement = sa.select(Patient.id)
    if filt.center_id is not None:
        statement = statement.where(Patient.home_center_id == filt.center_id)
    if filt.physician_id is not None:
        statement = statement.where(Patient.treating_physician_id == filt.physician_id)
    return statement


def among(
    column: so.InstrumentedAttribute[int], patients: sa.Select[int] | None
) -> sa.ColumnElement[bool]:
    """The column's patient among the filter's (filtered_patients), or true for everyone."""
    return sa.true() if patients is None else column.in_(patients)


def _histories(
    session: so.Session,
    patients: sa.Select[int] | None,
    as_of: dt.date,
    since: dt.date | None = None,
    *,
    summed: bool = False,
) -> dict[int, ledger_rules.History]:
    """Three queries: the regimen versions, the days given in the period (`summed`: summed in
    the database per cycle and per version) and the reviews up to `as_of`."""
    # Plain Core rows (the connection, not the ORM): a clinic has hundreds of thousands.
    connection = session.connection()
    versions: dict[int, int] = {}
    regimens: dict[int, list[ledger_rules.RegimenFact]] = defaultdict(list)
    for (
        rid,
        pid,
        version,
        dose,
        interval,
        days,
        starts_on,
        weight,
        dosing,
        grams,
        minutes,
    ) in connection.execute(
        sa.select(
            Regimen.id,
            Regimen.patient_id,
            Regimen.version,
            Regimen.dose_g_per_kg,
            Regimen.interval_weeks,
            Regimen.days_per_cycle,
            Regimen.starts_on,
            Regimen.weight_kg,
            Regimen.dosing_weight_kg,
            Regimen.grams_per_cycle,
            Regimen.minutes_per_day,
        ).where(among(Regimen.patient_id, patients))
    ).all():
        versions[rid] = version
        regimens[pid].append(
            ledger_rules.RegimenFact(
                version=version,
                dose_g_per_kg=dose,
                interval_weeks=interval,
                days_per_cycle=days,
                starts_on=starts_on,
                weight_kg=weight,
                dosing_weight_kg=dosing,
                # The calculation's grams_per_cycle is this very product (app.domain.dosing.
                # compute_dose); the columns spare reading every calculation's JSON.
                computed_grams_per_cycle=dose * dosing,
                planned_grams_per_cycle=grams,
                minutes_per_day=minutes,
            )
        )
    given_rows = sa.and_(
        among(Infusion.patient_id, patients),
        Infusion.status.in_(_GIVEN),
        Infusion.planned_date <= as_of,
        Infusion.planned_date >= since if since is not None else sa.true(),
    )
    given: dict[int, list[ledger_rules.GivenDay]] = defaultdict(list)
    by_version: dict[int, list[ledger_rules.VersionCycles]] | None = None
    if not summed:
        for pid, cycle, day, rid, grams, minutes in connection.execute(
            sa.select(
                Infusion.patient_id,
                Infusion.cycle_number,
                Infusion.planned_date,
                Infusion.regimen_id,
                sa.func.coalesce(Infusion.given_grams, 0.0),
                Infusion.planned_minutes,
            ).where(given_rows)
        ).all():
            given[pid].append(
                ledger_rules.GivenDay(cycle, day, versions[rid], float(grams), int(minutes))
            )
    else:
        # The database sums the days into cycles and the cycles into versions (as
        # app.domain.stewardship.summarise does): a clinic has hundreds of thousands of days.
        cycles = (
            sa.select(
                Infusion.patient_id.label("patient_id"),
                sa.func.min(Infusion.planned_date).label("starts_on"),
                # Ids grow with versions: the lowest is the version of the cycle's first day.
                sa.func.min(Infusion.regimen_id).label("regimen_id"),
                sa.func.sum(sa.func.coalesce(Infusion.given_grams, 0.0)).label("grams"),
                sa.func.sum(Infusion.planned_minutes).label("minutes"),
            )
            .where(given_rows)
            .group_by(Infusion.patient_id, Infusion.cycle_number)
            .subquery()
        )
        by_version = defaultdict(list)
        for pid, rid, count, first, last, grams, minutes in connection.execute(
            sa.select(
                cycles.c.patient_id,
                cycles.c.regimen_id,
                sa.func.count(),
                sa.func.min(cycles.c.starts_on),
                sa.func.max(cycles.c.starts_on),
                sa.func.sum(cycles.c.grams),
                sa.func.sum(cycles.c.minutes),
            ).group_by(cycles.c.patient_id, cycles.c.regimen_id)
        ).all():
            by_version[pid].append(
                ledger_rules.VersionCycles(
                    versions[rid], int(count), first, last, float(grams), float(minutes)
                )
            )
    decided: dict[int, list[review_rules.ReviewFact]] = defaultdict(list)
    for pid, on, decision in connection.execute(
        sa.select(CourseReview.patient_id, CourseReview.reviewed_on, CourseReview.decision).where(
            among(CourseReview.patient_id, patients), CourseReview.reviewed_on <= as_of
        )
    ).all():
        decided[pid].append(review_rules.ReviewFact(on, decision))
    return {
        pid: ledger_rules.History(
            regimens=tuple(regimens[pid]),
            given=tuple(given[pid]),
            stopped_on=review_rules.course_stopped_on(
                review_rules.CourseFacts({}, tuple(decided[pid]))
            ),
            by_version=None if by_version is None else tuple(by_version[pid]),
        )
        for pid in regimens
    }


def period_end(today: dt.date, until: dt.date | None) -> dt.date:
    """The last day a report covers: today, or the end of its date range if earlier."""
    return min(today, until) if until is not None else today


def patient_ledger(
    session: so.Session,
    patient_id: int,
    settings: Settings,
    today: dt.date,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> tuple[Patient, ledger_rules.Ledger]:
    """A patient's ledger from the first cycle given (on or after `since`) to today."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
    _check_range(since, until)
    as_of = period_end(today, until)
    price = settings.stewardship.price_per_gram
    history = _histories(
        session, sa.select(Patient.id).where(Patient.id == patient_id), as_of, since
    ).get(patient_id)
    if history is None:
        return patient, ledger_rules.empty(as_of, price, patients=1)
    return patient, ledger_rules.ledger(history, as_of, since, price)


def _check_range(since: dt.date | None, until: dt.date | None) -> None:
    if since is not None and until is not None and since > until:
        raise InvalidInput(
            f"until: {until.isoformat()} is before since ({since.isoformat()})", field="until"
        )


def check_filter(session: so.Session, filt: ClinicFilter) -> None:
    """Refuse a filter naming an unknown center or physician, or an empty date range."""
    if filt.center_id is not None and session.get(Center, filt.center_id) is None:
        raise InvalidInput(f"center: no center {filt.center_id}", field="center")
    if filt.physician_id is not None:
        user = session.get(User, filt.physician_id)
        if user is None or user.role != Role.PHYSICIAN:
            raise InvalidInput(f"physician: no physician {filt.physician_id}", field="physician")
    _check_range(filt.since, filt.until)


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: the values built here hold no reference cycles
    (reference counting frees them), and over a clinic's rows its passes cost a third of the
    ledger's time (bench/reports.py)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def clinic_ledger(
    session: so.Session, filt: ClinicFilter, settings: Settings, today: dt.date
) -> ClinicLedger:
    """Every patient's ledger under the filter, and their total, in a fixed number of queries
    (the filter's check, the patients, then app.services.stewardship._histories' three)."""
    check_filter(session, filt)
    with no_cycle_collection():
        return _clinic_ledger(session, filt, settings, today)


def _clinic_ledger(
    session: so.Session, filt: ClinicFilter, settings: Settings, today: dt.date
) -> ClinicLedger:
    as_of = period_end(today, filt.until)
    price = settings.stewardship.price_per_gram
    patients = filtered_patients(filt)
    people = session.execute(
        sa.select(
            Patient.id,
            Patient.mrn,
            Patient.family_name,
            Patient.given_name,
            Center.name.label("center"),
            User.full_name.label("physician"),
        )
        .join(Center, Center.id == Patient.home_center_id)
        .outerjoin(User, User.id == Patient.treating_physician_id)
        .where(among(Patient.id, patients))
        .order_by(Patient.family_name, Patient.given_name, Patient.id)
    ).all()
    histories = _histories(session, patients, as_of, filt.since, summed=True)
    lines = []
    for person in people:
        history = histories.get(person.id)
        if history is None:
            continue
        figures = ledger_rules.ledger(history, as_of, filt.since, price)
        if not figures.cycles_given:
            continue
        lines.append(
            PatientLine(
                patient_id=person.id,
                mrn=person.mrn,
                name=f"{person.family_name}, {person.given_name}",
                center=person.center,
                physician=person.physician,
                ledger=figures,
            )
        )
    return ClinicLedger(
        filter=filt,
        as_of=as_of,
        lines=tuple(lines),
        total=ledger_rules.total((line.ledger for line in lines), as_of, price),
        currency=settings.stewardship.currency,
    )


def number(value: float | None, places: int = 2) -> str:
    """A figure as the pages and the CSV both write it."""
    if value is None:
        return ""
    shown = round(value, places)
    return f"{shown + 0.0:.{places}f}"


#: The CSV's columns (the clinic ledger; one row per patient, then the total).
CSV_HEADER: tuple[str, ...] = (
    "mrn",
    "patient",
    "center",
    "physician",
    "first_cycle_on",
    "as_of",
    "cycles_given",
    "grams_given",
    "baseline_cycles",
    "baseline_grams",
    "grams_saved",
    *(f"saved_{cause}" for cause in ledger_rules.CAUSES),
    "chair_hours_given",
    "chair_hours_saved",
    "cost_given",
    "cost_saved",
    "currency",
)


def figures(ledger: ledger_rules.Ledger, currency: str) -> list[str]:
    """A ledger's figures, as the CSV and the pages write them (CSV_HEADER from first_cycle_on)."""
    priced = ledger.price_per_gram > 0
    return [
        ledger.first_cycle_on.isoformat() if ledger.first_cycle_on else "",
        ledger.as_of.isoformat(),
        str(ledger.cycles_given),
        number(ledger.grams_given),
        number(ledger.baseline_cycles),
        number(ledger.baseline_grams),
        number(ledger.grams_saved),
        *(number(ledger.saved[cause]) for cause in ledger_rules.CAUSES),
        number(ledger.chair_hours_given),
        number(ledger.chair_hours_saved),
        number(ledger.cost_given) if priced else "",
        number(ledger.cost_saved) if priced else "",
        currency if priced else "",
    ]


def csv_rows(clinic: ClinicLedger) -> Iterator[Sequence[object]]:
    """The clinic ledger as CSV rows: the header, a row per patient, then `TOTAL`."""
    yield CSV_HEADER
    for line in clinic.lines:
        yield [
            line.mrn,
            line.name,
            line.center,
            line.physician or "",
            *figures(line.ledger, clinic.currency),
        ]
    yield [
        "TOTAL",
        f"{clinic.total.patients} patients",
        "",
        "",
        *figures(clinic.total, clinic.currency),
    ]


# --- rule outcomes -----------------------------------------------------------------------------

#: The suggestion kinds an approval may change the value of (app.services.suggestions._approve).
_CHANGEABLE = ("deescalate_ivig",)


def _changed(proposal: object, dose: float | None, interval: int | None) -> bool:
    if not isinstance(proposal, dict) or dose is None or interval is None:
        return False
    to = proposal.get("to")
    if not isinstance(to, int | float):
        return False
    applied = dose if proposal.get("change") == "dose" else float(interval)
    return abs(applied - float(to)) > 1e-9


def rule_outcomes(session: so.Session) -> list[rule_outcomes_domain.RuleOutcome]:
    """Each rule version's outcomes and rejection reasons, in three grouped queries."""
    undecided = sa.and_(
        Suggestion.status == "expired", Suggestion.decision_reason.startswith(UNDECIDED)
    )
    counts: list[rule_outcomes_domain.SuggestionCount] = []
    late_flag = sa.case((undecided, 1), else_=0).label("late")
    for rule_id, version, kind, status, late, count in session.execute(
        sa.select(
            Suggestion.rule_id,
            Suggestion.rule_version,
            Suggestion.kind,
            Suggestion.status,
            late_flag,
            sa.func.count(),
        ).group_by(
            Suggestion.rule_id,
            Suggestion.rule_version,
            Suggestion.kind,
            Suggestion.status,
            late_flag,
        )
    ):
        outcome = "expired_undecided" if late else status
        counts.append(
            rule_outcomes_domain.SuggestionCount(rule_id, version, kind, outcome, int(count))
        )
    # An approval at another value than proposed: its applied version says so.
    for rule_id, version, kind, proposal, dose, interval in session.execute(
        sa.select(
            Suggestion.rule_id,
            Suggestion.rule_version,
            Suggestion.kind,
            Suggestion.proposal,
            Regimen.dose_g_per_kg,
            Regimen.interval_weeks,
        )
        .join(Regimen, Regimen.id == Suggestion.applied_regimen_id)
        .where(Suggestion.status == "approved", Suggestion.kind.in_(_CHANGEABLE))
    ):
        if _changed(proposal, dose, interval):
            counts.append(
                rule_outcomes_domain.SuggestionCount(rule_id, version, kind, "approved", -1)
            )
            counts.append(
                rule_outcomes_domain.SuggestionCount(rule_id, version, kind, "changed", 1)
            )
    reasons = [
        rule_outcomes_domain.ReasonCount(rule_id, version, reason or "(no reason)", int(count))
        for rule_id, version, reason, count in session.execute(
            sa.select(
                Suggestion.rule_id,
                Suggestion.rule_version,
                Suggestion.decision_reason,
                sa.func.count(),
            )
            .where(Suggestion.status == "rejected")
            .group_by(Suggestion.rule_id, Suggestion.rule_version, Suggestion.decision_reason)
        )
    ]
    return rule_outcomes_domain.rule_outcomes(counts, reasons)


#: The rule outcomes CSV: one row per rule version, its counts, then its rejection reasons
#: ("reason (count)", most frequent first, joined by " | ").
RULES_CSV_HEADER: tuple[str, ...] = (
    "rule_id",
    "rule_version",
    "kinds",
    *rule_outcomes_domain.OUTCOMES,
    "total",
    "approved_percent",
    "rejection_reasons",
)


def rules_csv_rows(
    outcomes: Sequence[rule_outcomes_domain.RuleOutcome],
) -> Iterator[Sequence[object]]:
    yield RULES_CSV_HEADER
    for item in outcomes:
        yield [
            item.rule_id,
            item.rule_version,
            " ".join(item.kinds),
            *(item.counts[outcome] for outcome in rule_outcomes_domain.OUTCOMES),
            item.total,
            number(item.approved_percent, 1),
            " | ".join(f"{reason} ({count})" for reason, count in item.reasons),
        ]
