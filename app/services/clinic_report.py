"""The clinic reports (app.domain.clinic_report) under the ledger's filters, loaded in bulk in a
fixed number of queries, and their CSV."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import ReportSettings, Settings
from app.domain import clinic_report as report_rules
from app.domain import reviews as review_rules
from app.domain.rules import facts
from app.models import (
    AdverseEvent,
    Assessment,
    CourseReview,
    Infusion,
    InfusionStatus,
    Regimen,
    Suggestion,
    TaperPlan,
    TaperStep,
)
from app.services import suggestions
from app.services.stewardship import (
    ClinicFilter,
    among,
    check_filter,
    filtered_patients,
    no_cycle_collection,
    number,
    period_end,
)
from app.services.timeline import prednisone_steps, taper_steps_select

#: Infusion statuses whose grams were given, and those still to give (booked on a chair or
#: waiting for one, the patient arrived or in the chair).
_GIVEN = (InfusionStatus.GIVEN.value, InfusionStatus.PARTIAL.value)
_PLANNED = (
    InfusionStatus.SCHEDULED.value,
    InfusionStatus.UNBOOKED.value,
    InfusionStatus.CHECKED_IN.value,
    InfusionStatus.IN_CHAIR.value,
)
#: The rule file's action asking for a review of non-response (default_rules.toml).
_NONRESPONSE = "review_nonresponse"
#: The scores of an assessment, in facts.Assessment's order (after its id and date).
_SCORES = tuple(field.name for field in dataclasses.fields(facts.Assessment))[2:]


@dataclasses.dataclass(frozen=True)
class Steroids:
    #: (band label, patients) for the current prednisone-equivalent mg/day.
    bands: tuple[tuple[str, int], ...]
    current_mg_per_day: report_rules.Spread
    cumulative_mg: report_rules.Spread


@dataclasses.dataclass(frozen=True)
class ClinicReport:
    filter: ClinicFilter
    as_of: dt.date
    thresholds: report_rules.Thresholds
    reference: ReportSettings
    grams: tuple[report_rules.MonthGrams, ...]
    responses: report_rules.ResponseSummary
    adverse_events: tuple[report_rules.EventCount, ...]
    steroids: Steroids

    @property
    def products(self) -> tuple[str, ...]:
        return tuple(sorted({row.product for row in self.grams}))

    @property
    def months(self) -> tuple[str, ...]:
        return tuple(sorted({row.month for row in self.grams}))


def clinic_report(
    session: so.Session, filt: ClinicFilter, settings: Settings, today: dt.date
) -> ClinicReport:
    """Every report under the filter, in a fixed number of queries (the filter's check, then
    seven: grams, cycles given, assessments, reviews, approved reviews of non-response, adverse
    events, taper steps)."""
    check_filter(session, filt)
    as_of = period_end(today, filt.until)
    patients = filtered_patients(filt)
    rule_settings = suggestions.load_ruleset(settings).settings
    thresholds = report_rules.Thresholds(
        mcid_points=rule_settings.mcid_points,
        responder_min_percent=rule_settings.responder_min_percent,
        responder_tis=rule_settings.responder_tis,
        remission_activity_max=rule_settings.remission_activity_max,
        window_weeks=settings.reports.response_window_weeks,
        week=settings.reports.reference_week,
        week_tis=settings.reports.reference_week_tis,
    )
    # Plain Core rows (the connection, not the ORM): a clinic has hundreds of thousands.
    connection = session.connection()
    grams = report_rules.grams_by_month(_grams(connection, filt, patients))
    recorded = _events(connection, patients, as_of)
    with no_cycle_collection():
        courses = _courses(connection, patients, as_of, filt.since, recorded)
        responses = report_rules.summarise(
            (
                report_rules.response(course, as_of, rule_settings, thresholds)
                for course in courses.values()
            ),
            thresholds.week_tis,
        )
    events = report_rules.adverse_event_counts(
        (pid, kind, grade, serious)
        for pid, on, kind, grade, serious, _resolved in recorded
        if filt.since is None or on >= filt.since
    )
    return ClinicReport(
        filter=filt,
        as_of=as_of,
        thresholds=thresholds,
        reference=settings.reports,
        grams=grams,
        responses=responses,
        adverse_events=events,
        steroids=_steroids(connection, patients, as_of, filt.since, settings),
    )


def _grams(
    connection: sa.Connection, filt: ClinicFilter, patients: sa.Select[int] | None
) -> list[report_rules.DayGrams]:
    """Grams given and still planned per day and product, summed in the database."""
    given = sa.case(
        (Infusion.status.in_(_GIVEN), sa.func.coalesce(Infusion.given_grams, 0.0)), else_=0.0
    )
    planned = sa.case((Infusion.status.in_(_PLANNED), Infusion.planned_grams), else_=0.0)
    return [
        report_rules.DayGrams(on, product, float(given_grams), float(planned_grams))
        for on, product, given_grams, planned_grams in connection.execute(
            sa.select(
                Infusion.planned_date, Regimen.product, sa.func.sum(given), sa.func.sum(planned)
            )
            .join(Regimen, Regimen.id == Infusion.regimen_id)
            .where(
                among(Infusion.patient_id, patients),
                Infusion.status.in_(_GIVEN + _PLANNED),
                Infusion.planned_date >= filt.since if filt.since is not None else sa.true(),
                Infusion.planned_date <= filt.until if filt.until is not None else sa.true(),
            )
            .group_by(Infusion.planned_date, Regimen.product)
        )
    ]


def _events(
    connection: sa.Connection, patients: sa.Select[int] | None, as_of: dt.date
) -> Sequence[sa.Row[int, dt.date, str, int, bool, dt.date | None]]:
    """The adverse events up to as_of: patient, day, type, grade, serious, resolved on."""
    return connection.execute(
        sa.select(
            AdverseEvent.patient_id,
            AdverseEvent.occurred_on,
            AdverseEvent.event_type,
            AdverseEvent.grade,
            AdverseEvent.serious,
            AdverseEvent.resolved_on,
        ).where(among(AdverseEvent.patient_id, patients), AdverseEvent.occurred_on <= as_of)
    ).all()


def _courses(
    connection: sa.Connection,
    patients: sa.Select[int] | None,
    as_of: dt.date,
    since: dt.date | None,
    recorded: Sequence[sa.Row[int, dt.date, str, int, bool, dt.date | None]],
) -> dict[int, report_rules.Course]:
    """Each patient's course up to as_of, for those with a cycle begun in the period."""
    cycles = (
        sa.select(
            Infusion.patient_id.label("patient_id"),
            sa.func.min(Infusion.planned_date).label("starts_on"),
        )
        .where(
            among(Infusion.patient_id, patients),
            Infusion.status.in_(_GIVEN),
            Infusion.planned_date <= as_of,
        )
        .group_by(Infusion.patient_id, Infusion.cycle_number)
        .subquery()
    )
    # One row a patient, the first days of the cycles joined (ISO dates, in no order): a
    # clinic has hundreds of thousands of cycles, and rows cost more than the dates.
    starts: dict[int, list[dt.date]] = {
        pid: [dt.date.fromisoformat(day) for day in joined.split(",")]
        for pid, joined in connection.execute(
            sa.select(
                cycles.c.patient_id,
                sa.func.aggregate_strings(sa.cast(cycles.c.starts_on, sa.String), ","),
            ).group_by(cycles.c.patient_id)
        )
    }
    assessed: dict[int, list[facts.Assessment]] = defaultdict(list)
    for row in connection.execute(
        sa.select(
            Assessment.patient_id,
            Assessment.id,
            Assessment.assessed_on,
            *(getattr(Assessment, name) for name in _SCORES),
        ).where(among(Assessment.patient_id, patients), Assessment.assessed_on <= as_of)
    ):
        assessed[row[0]].append(facts.Assessment(*row[1:]))
    decided: dict[int, list[review_rules.ReviewFact]] = defaultdict(list)
    for pid, on, decision in connection.execute(
        sa.select(CourseReview.patient_id, CourseReview.reviewed_on, CourseReview.decision).where(
            among(CourseReview.patient_id, patients), CourseReview.reviewed_on <= as_of
        )
    ):
        decided[pid].append(review_rules.ReviewFact(on, decision))
    confirmed: dict[int, list[dt.date]] = defaultdict(list)
    for pid, at in connection.execute(
        sa.select(Suggestion.patient_id, Suggestion.decided_at).where(
            among(Suggestion.patient_id, patients),
            Suggestion.kind == _NONRESPONSE,
            Suggestion.status == "approved",
        )
    ):
        if at is not None:
            confirmed[pid].append(at.date())
    events: dict[int, list[facts.AdverseEventFact]] = defaultdict(list)
    for pid, on, kind, _grade, serious, resolved in recorded:
        events[pid].append(facts.AdverseEventFact(on, kind, bool(serious), resolved))
    courses = {}
    for pid, days in starts.items():
        days.sort()
        if since is not None and days[-1] < since:
            continue
        courses[pid] = report_rules.Course(
            patient_id=pid,
            cycle_starts=tuple(days),
            assessments=tuple(assessed[pid]),
            reviews=tuple(decided[pid]),
            adverse_events=tuple(events[pid]),
            nonresponse_confirmed_on=tuple(confirmed[pid]),
        )
    return courses


def _steroids(
    connection: sa.Connection,
    patients: sa.Select[int] | None,
    as_of: dt.date,
    since: dt.date | None,
    settings: Settings,
) -> Steroids:
    rows: dict[int, list[Sequence[Any]]] = defaultdict(list)
    for version, drug, mg, status, started, earliest, pid in connection.execute(
        taper_steps_select()
        .add_columns(TaperStep.patient_id)
        .where(among(TaperStep.patient_id, patients))
        .order_by(TaperStep.patient_id, TaperPlan.version, TaperStep.position)
    ):
        rows[pid].append((version, drug, mg, status, started, earliest))
    equivalence = settings.steroids.equivalence
    exposures = [
        found
        for found in (
            report_rules.exposure(prednisone_steps(steps, equivalence, planned=False), as_of, since)
            for steps in rows.values()
        )
        if found is not None
    ]
    bands = report_rules.dose_bands(band.above_mg for band in settings.steroids.bands)
    counts = report_rules.band_counts((e.current_mg_per_day for e in exposures), bands)
    return Steroids(
        bands=tuple(
            (label, count) for (label, _low, _high), count in zip(bands, counts, strict=True)
        ),
        current_mg_per_day=report_rules.spread(e.current_mg_per_day for e in exposures),
        cumulative_mg=report_rules.spread(e.cumulative_mg for e in exposures),
    )


# --- what the page and the CSV both write ----------------------------------------------------

#: The CSV's columns: each figure is one row, named by its section, group and item; reference
#: holds the published figure it stands beside (config.toml [reports]), where there is one.
CSV_HEADER: tuple[str, ...] = ("section", "group", "item", "value", "reference")
_SPREAD = ("count", "mean", "minimum", "lower_quartile", "median", "upper_quartile", "maximum")


def _spread_rows(
    section: str, group: str, values: report_rules.Spread, places: int, mean_reference: str = ""
) -> Iterator[tuple[str, str, str, str, str]]:
    for item in _SPREAD:
        value = getattr(values, item)
        shown = str(value) if item == "count" else number(value, places)
        yield section, group, item, shown, mean_reference if item == "mean" else ""


def _share_rows(
    group: str, part: int, whole: int, percent: float | None, reference: Sequence[str]
) -> Iterator[tuple[str, str, str, str, str]]:
    yield "shares", group, "patients", str(part), reference[0]
    yield "shares", group, "of", str(whole), reference[1]
    yield "shares", group, "percent", number(percent, 1), reference[2]


def figures(report: ClinicReport) -> Iterator[tuple[str, str, str, str, str]]:
    """Every figure of the report as (section, group, item, value, reference), in page order."""
    for row in report.grams:
        yield "grams_given", row.month, row.product, number(row.given_grams), ""
        yield "grams_planned", row.month, row.product, number(row.planned_grams), ""
    summary, ref = report.responses, report.reference
    for status in report_rules.STATUSES:
        yield "response_status", status, "patients", str(summary.by_status[status]), ""
    yield "response_status", "all", "patients", str(summary.patients), ""
    yield from _spread_rows(
        "time_to_response",
        "cycles",
        summary.cycles_to_response,
        2,
        number(ref.reference_cycles_to_response),
    )
    yield from _spread_rows("time_to_response", "weeks", summary.weeks_to_response, 1)
    yield from _share_rows(
        "improved",
        summary.improved,
        summary.judged,
        summary.improved_percent,
        ("", "", number(ref.reference_improved_percent, 1)),
    )
    yield from _share_rows(
        "stopped_for_adverse_events",
        summary.stopped_for_adverse_events,
        summary.patients,
        summary.stopped_for_adverse_events_percent,
        (
            str(ref.reference_stopped_for_adverse_events),
            str(ref.reference_patients),
            number(ref.reference_stopped_percent, 1),
        ),
    )
    yield from _share_rows(
        f"tis_at_week_{report.thresholds.week}",
        summary.week_responded,
        summary.week_scored,
        summary.week_percent,
        ("", "", number(ref.reference_week_percent, 1)),
    )
    for count in report.adverse_events:
        for grade, events in zip(report_rules.GRADES, count.by_grade, strict=True):
            yield "adverse_events", count.event_type, f"grade_{grade}", str(events), ""
        yield "adverse_events", count.event_type, "events", str(count.events), ""
        yield "adverse_events", count.event_type, "patients", str(count.patients), ""
        yield "adverse_events", count.event_type, "serious", str(count.serious), ""
    for label, patients in report.steroids.bands:
        yield "steroids_current", label, "patients", str(patients), ""
    yield from _spread_rows("steroids_current", "mg_per_day", report.steroids.current_mg_per_day, 1)
    yield from _spread_rows("steroids_cumulative", "mg", report.steroids.cumulative_mg, 0)


def figure_map(report: ClinicReport) -> Mapping[tuple[str, str, str], tuple[str, str]]:
    """The figures by (section, group, item): (value, reference), as the page reads them."""
    return {(s, g, i): (value, ref) for s, g, i, value, ref in figures(report)}


def csv_rows(report: ClinicReport) -> Iterator[Sequence[object]]:
    """The report as CSV rows: the header, then a row per figure."""
    yield CSV_HEADER
    yield from figures(report)
