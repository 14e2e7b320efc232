"""Clinical facts for the rule engine: response, regimen, taper and safety facts as of a date.

Pure functions over plain values. The caller loads a patient's history and the rule file's
settings and passes them in, so every fact can be tested without an app or a database.

Decisions:
- Only assessments on or before `as_of` count, and only regimen versions effective on or
  before it, so a simulation can replay any past date from the full history.
- Activity facts use the assessments that record a CDASI activity score; one without it
  neither counts nor breaks a run. The course window is the baseline and everything after.
- An assessment belongs to the regimen version whose effective_on is strictly before it and
  whose successor's effective_on is on or after it: a visit on the day of a change reflects
  the regimen given until then.
- The current version is the newest one decided by `as_of`, even before its first cycle: a
  flare seen after a de-escalation was approved, before the lower dose is first given, is a
  flare after that de-escalation (and returns to the version that controlled it).
- Derived differences and percentages are rounded to 6 decimal places (float hygiene only),
  so 40 - 35 and a 5-point MCID compare exactly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# Unit definitions and float hygiene only: no clinical meaning.
_DAYS_PER_MONTH = 30.44
_DAYS_PER_WEEK = 7
_EPS = 1e-9
_PLACES = 6

# The six core measures of the 2016 ACR/EULAR Total Improvement Score (a definition).
TIS_MEASURES: tuple[str, ...] = (
    "physician_global",
    "patient_global",
    "mmt8",
    "haq",
    "enzyme",
    "extramuscular_global",
)
# Measures where a higher score is better; for the others lower is better.
_HIGHER_IS_BETTER = frozenset({"mmt8"})

FactValue = float | int | bool | None
TisTable = Mapping[str, tuple[tuple[float, float], ...]]


@dataclass(frozen=True)
class Assessment:
    """One visit's scores; a score not measured is None."""

    id: int
    assessed_on: dt.date
    cdasi_activity: float | None = None
    cdasi_damage: float | None = None
    mmt8: float | None = None
    ck: float | None = None
    ck_uln: float | None = None
    physician_global: float | None = None
    patient_global: float | None = None
    pruritus: float | None = None
    haq: float | None = None
    extramuscular_global: float | None = None


@dataclass(frozen=True)
class RegimenVersion:
    """One version of the IVIG regimen, in force from its first cycle date."""

    version: int
    effective_on: dt.date
    dose_g_per_kg: float
    interval_weeks: int
    days_per_cycle: int
    product: str
    #: Date the version was decided (set or approved); None = its effective date.
    set_on: dt.date | None = None

    @property
    def decided_on(self) -> dt.date:
        """Return the date from which the version governs the course (decided, or in force)."""
        return self.effective_on if self.set_on is None else min(self.set_on, self.effective_on)


@dataclass(frozen=True)
class AdverseEventFact:
    """An adverse event as the rules see it."""

    occurred_on: dt.date
    event_type: str
    serious: bool
    resolved_on: dt.date | None


@dataclass(frozen=True)
class TaperFact:
    """The state of the patient's steroid taper, in prednisone-equivalent mg."""

    current_mg_prednisone: float | None
    next_step_due: bool
    floor_mg: float


@dataclass(frozen=True)
class History:
    """Everything the rules may know about one patient's current IVIG course."""

    patient_id: int
    as_of: dt.date
    course_started_on: dt.date | None
    assessments: tuple[Assessment, ...]
    cycles_given: tuple[dt.date, ...]
    regimens: tuple[RegimenVersion, ...]
    adverse_events: tuple[AdverseEventFact, ...] = ()
    taper: TaperFact | None = None


def check_tis_table(table: TisTable) -> None:
    """Raise ValueError unless the table gives ascending thresholds for exactly the six measures."""
    missing = [m for m in TIS_MEASURES if m not in table]
    unknown = sorted(set(table) - set(TIS_MEASURES))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        raise ValueError(
            f"TIS table must have exactly {', '.join(TIS_MEASURES)}: {'; '.join(parts)}"
        )
    for measure in TIS_MEASURES:
        _check_tis_rows(measure, table[measure])


def _check_tis_rows(measure: str, rows: Sequence[tuple[float, float]]) -> None:
    """One measure's (threshold, points) rows: finite, not negative, thresholds ascending and
    points never falling."""
    if not rows:
        raise ValueError(f"TIS table for {measure} is empty")
    for threshold, points in rows:
        if not (math.isfinite(threshold) and math.isfinite(points)):
            raise ValueError(f"TIS table for {measure}: values must be finite")
        if threshold < 0 or points < 0:
            raise ValueError(f"TIS table for {measure}: values must not be negative")
    if any(b[0] <= a[0] for a, b in itertools.pairwise(rows)):
        raise ValueError(f"TIS table for {measure}: thresholds must strictly ascend")
    if any(b[1] < a[1] for a, b in itertools.pairwise(rows)):
        raise ValueError(f"TIS table for {measure}: points must not decrease")


@dataclass(frozen=True)
class FactSettings:
    """The clinic's response definitions and IVIG ladders, read from the rule file."""

    mcid_points: float
    responder_min_percent: float
    responder_tis: float
    remission_activity_max: float
    dose_ladder_g_per_kg: tuple[float, ...]
    interval_ladder_weeks: tuple[int, ...]
    tis_table: TisTable

    def __post_init__(self) -> None:
        """Refuse settings the facts cannot be computed from."""
        for name in (
            "mcid_points",
            "responder_min_percent",
            "responder_tis",
            "remission_activity_max",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.mcid_points <= 0:
            raise ValueError(f"mcid_points must be positive, got {self.mcid_points!r}")
        doses, intervals = self.dose_ladder_g_per_kg, self.interval_ladder_weeks
        if not doses or any(not math.isfinite(d) or d <= 0 for d in doses):
            raise ValueError("dose_ladder_g_per_kg must list positive doses")
        if any(b >= a for a, b in itertools.pairwise(doses)):
            raise ValueError("dose_ladder_g_per_kg must strictly descend")
        if not intervals or any(w <= 0 for w in intervals):
            raise ValueError("interval_ladder_weeks must list positive whole weeks")
        if any(b <= a for a, b in itertools.pairwise(intervals)):
            raise ValueError("interval_ladder_weeks must strictly ascend")
        check_tis_table(self.tis_table)
        frozen = {
            m: tuple((float(t), float(p)) for t, p in rows) for m, rows in self.tis_table.items()
        }
        object.__setattr__(self, "tis_table", MappingProxyType(frozen))


# Every fact compute_facts returns; conditions and explanations may name only these.
_FACT_ORDER: tuple[str, ...] = (
    "cycles_given",
    "activity",
    "activity_baseline",
    "activity_improvement",
    "activity_improvement_percent",
    "activity_change_since_previous",
    "activity_nadir",
    "activity_above_nadir",
    "worse_twice",
    "consecutive_stable",
    "weeks_since_regimen_change",
    "assessments_since_regimen_change",
    "dose_g_per_kg",
    "interval_weeks",
    "at_lowest_dose",
    "at_longest_interval",
    "next_dose_g_per_kg",
    "next_interval_weeks",
    "open_serious_events",
    "tis",
    "responder",
    "remission",
    "months_in_remission",
    "taper_step_due",
    "taper_mg",
    "taper_at_floor",
    "last_controlled_version",
    "days_since_last_assessment",
)
FACT_NAMES: frozenset[str] = frozenset(_FACT_ORDER)

#: What each fact rests on. A suggestion a physician rejected comes back only when something
#: its rule reads changed: a newer assessment, a new regimen version, a different set of open
#: serious events, another taper step. Counters that time moves on (cycles given, weeks,
#: months, days) are thresholds, not evidence.
EVIDENCE: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "activity",
                "activity_baseline",
                "activity_improvement",
                "activity_improvement_percent",
                "activity_change_since_previous",
                "activity_nadir",
                "activity_above_nadir",
                "worse_twice",
                "consecutive_stable",
                "tis",
                "responder",
                "remission",
            ),
            frozenset({"assessment"}),
        ),
        "assessments_since_regimen_change": frozenset({"assessment", "regimen"}),
        "last_controlled_version": frozenset({"assessment", "regimen"}),
        **dict.fromkeys(
            (
                "weeks_since_regimen_change",
                "dose_g_per_kg",
                "interval_weeks",
                "at_lowest_dose",
                "at_longest_interval",
                "next_dose_g_per_kg",
                "next_interval_weeks",
            ),
            frozenset({"regimen"}),
        ),
        "open_serious_events": frozenset({"adverse_events"}),
        **dict.fromkeys(("taper_step_due", "taper_mg", "taper_at_floor"), frozenset({"taper"})),
        **dict.fromkeys(
            ("cycles_given", "months_in_remission", "days_since_last_assessment"), frozenset()
        ),
    }
)
assert set(EVIDENCE) == FACT_NAMES, "every fact names what it rests on"


def _tidy(value: float) -> float:
    return round(value, _PLACES)


def _measure(assessment: Assessment, measure: str, normalise_ck: bool) -> float | None:
    if measure != "enzyme":
        value: float | None = getattr(assessment, measure)
        return value
    if assessment.ck is None:
        return None
    if normalise_ck and assessment.ck_uln is not None:
        # Both visits give a ULN: compare CK as a multiple of it, so a lab change is neutral.
        return assessment.ck / assessment.ck_uln
    return assessment.ck


def _percent_improvement(measure: str, baseline: float, current: float) -> float:
    if baseline <= 0:
        # Nothing to improve on a lower-is-better score of 0; any strength gained from 0 is total.
        if measure in _HIGHER_IS_BETTER and current > 0:
            return math.inf
        return 0.0
    if measure in _HIGHER_IS_BETTER:
        change = (current - baseline) / baseline * 100
    else:
        change = (baseline - current) / baseline * 100
    return max(0.0, _tidy(change))


def _points(rows: Sequence[tuple[float, float]], percent: float) -> float:
    points = 0.0
    for threshold, row_points in rows:
        if percent >= threshold:
            points = row_points
    return points


def total_improvement_score(
    baseline: Assessment, current: Assessment, table: TisTable
) -> float | None:
    """Return the Total Improvement Score of current against baseline, None if a measure is missing.

    Each measure's percent improvement earns the points of the highest threshold it reaches;
    a worsening earns 0. The muscle enzyme is CK, taken as a multiple of the lab's ULN when
    both visits record one.
    """
    normalise_ck = bool(baseline.ck_uln and current.ck_uln)
    total = 0.0
    for measure in TIS_MEASURES:
        before = _measure(baseline, measure, normalise_ck)
        after = _measure(current, measure, normalise_ck)
        if before is None or after is None:
            return None
        total += _points(table[measure], _percent_improvement(measure, before, after))
    return _tidy(total)


def _kleene_or(left: bool | None, right: bool | None) -> bool | None:
    if left is True or right is True:
        return True
    if left is None or right is None:
        return None
    return False


def _responder(
    activity_baseline: float | None,
    activity: float | None,
    tis: float | None,
    settings: FactSettings,
) -> bool | None:
    by_activity: bool | None = None
    if activity_baseline is not None and activity is not None:
        improvement = _tidy(activity_baseline - activity)
        percent = _tidy(improvement / activity_baseline * 100) if activity_baseline > 0 else None
        by_activity = (
            improvement >= settings.mcid_points
            and percent is not None
            and percent >= settings.responder_min_percent
        )
    by_tis = None if tis is None else tis >= settings.responder_tis
    return _kleene_or(by_activity, by_tis)


def _baseline_index(assessments: Sequence[Assessment], course_started_on: dt.date | None) -> int:
    if course_started_on is not None:
        before = [i for i, a in enumerate(assessments) if a.assessed_on <= course_started_on]
        if before:
            return before[-1]
    return 0


def _on_ladder_below(ladder: Iterable[float], dose: float) -> float | None:
    lower = [rung for rung in ladder if rung < dose - _EPS]
    return max(lower) if lower else None


def _on_ladder_above(ladder: Iterable[int], interval: int) -> int | None:
    longer = [rung for rung in ladder if rung > interval]
    return min(longer) if longer else None


def _more_intensive(candidate: RegimenVersion, current: RegimenVersion) -> bool:
    not_weaker = (
        candidate.dose_g_per_kg >= current.dose_g_per_kg - _EPS
        and candidate.interval_weeks <= current.interval_weeks
    )
    stronger = (
        candidate.dose_g_per_kg > current.dose_g_per_kg + _EPS
        or candidate.interval_weeks < current.interval_weeks
    )
    return not_weaker and stronger


def _activity_facts(
    scored: Sequence[Assessment], history: History, settings: FactSettings
) -> dict[str, FactValue]:
    none: dict[str, FactValue] = dict.fromkeys(
        (
            "activity",
            "activity_baseline",
            "activity_improvement",
            "activity_improvement_percent",
            "activity_change_since_previous",
            "activity_nadir",
            "activity_above_nadir",
            "worse_twice",
            "consecutive_stable",
            "remission",
            "months_in_remission",
        )
    )
    if not scored:
        return none
    series = [float(a.cdasi_activity) for a in scored if a.cdasi_activity is not None]
    start = _baseline_index(scored, history.course_started_on)
    window = series[start:]
    baseline, latest = series[start], series[-1]
    improvement = _tidy(baseline - latest)
    nadir = min(window)

    stable = 0
    for index in range(len(window) - 1, 0, -1):
        if window[index] - window[index - 1] >= settings.mcid_points - _EPS:
            break
        stable += 1

    remission = latest <= settings.remission_activity_max + _EPS
    months: float = 0.0
    if remission:
        first = len(window) - 1
        while first > 0 and window[first - 1] <= settings.remission_activity_max + _EPS:
            first -= 1
        since = scored[start + first].assessed_on
        months = _tidy((history.as_of - since).days / _DAYS_PER_MONTH)

    return {
        "activity": latest,
        "activity_baseline": baseline,
        "activity_improvement": improvement,
        "activity_improvement_percent": (
            _tidy(improvement / baseline * 100) if baseline > 0 else None
        ),
        "activity_change_since_previous": (
            _tidy(series[-1] - series[-2]) if len(series) >= 2 else None
        ),
        "activity_nadir": nadir,
        "activity_above_nadir": _tidy(latest - nadir),
        "worse_twice": len(window) >= 3 and window[-1] > window[-2] > window[-3],
        "consecutive_stable": stable,
        "remission": remission,
        "months_in_remission": months,
    }


def _last_controlled_version(
    regimens: Sequence[RegimenVersion],
    visible: Sequence[Assessment],
    baseline: Assessment | None,
    activity_baseline: float | None,
    settings: FactSettings,
) -> int | None:
    """Return the newest earlier version, more intensive than the current, that made a responder.

    Decision: a flare should never send the patient to a weaker or identical regimen, so only
    versions with a higher dose or a shorter interval (and neither weaker) qualify.
    """
    if len(regimens) < 2 or baseline is None:
        return None
    current = regimens[-1]
    for index in range(len(regimens) - 2, -1, -1):
        version = regimens[index]
        if not _more_intensive(version, current):
            continue
        ends_on = regimens[index + 1].effective_on
        for assessment in visible:
            if not version.effective_on < assessment.assessed_on <= ends_on:
                continue
            tis = total_improvement_score(baseline, assessment, settings.tis_table)
            if _responder(activity_baseline, assessment.cdasi_activity, tis, settings):
                return version.version
    return None


def tis_series(history: History, settings: FactSettings) -> list[tuple[dt.date, float]]:
    """The Total Improvement Score of each assessment up to history.as_of against the
    course's baseline (the one compute_facts scores the latest against), where it scores."""
    visible = sorted(
        (a for a in history.assessments if a.assessed_on <= history.as_of),
        key=lambda a: (a.assessed_on, a.id),
    )
    if not visible:
        return []
    start = _baseline_index(visible, history.course_started_on)
    baseline = visible[start]
    out = []
    for assessment in visible[start:]:
        tis = total_improvement_score(baseline, assessment, settings.tis_table)
        if tis is not None:
            out.append((assessment.assessed_on, tis))
    return out


def compute_facts(history: History, settings: FactSettings) -> dict[str, FactValue]:
    """Compute every fact in FACT_NAMES for the history as of history.as_of; None if unknown."""
    as_of = history.as_of
    visible = sorted(
        (a for a in history.assessments if a.assessed_on <= as_of),
        key=lambda a: (a.assessed_on, a.id),
    )
    scored = [a for a in visible if a.cdasi_activity is not None]
    regimens = sorted(
        (r for r in history.regimens if r.decided_on <= as_of), key=lambda r: r.version
    )
    current = regimens[-1] if regimens else None

    facts: dict[str, FactValue] = dict.fromkeys(_FACT_ORDER)
    facts["cycles_given"] = sum(1 for day in history.cycles_given if day <= as_of)
    facts.update(_activity_facts(scored, history, settings))

    baseline = visible[_baseline_index(visible, history.course_started_on)] if visible else None
    latest = visible[-1] if visible else None
    tis = (
        total_improvement_score(baseline, latest, settings.tis_table)
        if baseline is not None and latest is not None
        else None
    )
    facts["tis"] = tis
    activity_baseline = (
        scored[_baseline_index(scored, history.course_started_on)].cdasi_activity
        if scored
        else None
    )
    activity = scored[-1].cdasi_activity if scored else None
    facts["responder"] = _responder(activity_baseline, activity, tis, settings)
    facts["days_since_last_assessment"] = (as_of - latest.assessed_on).days if latest else None

    if current is not None:
        facts["weeks_since_regimen_change"] = (as_of - current.effective_on).days // _DAYS_PER_WEEK
        facts["assessments_since_regimen_change"] = sum(
            1 for a in scored if a.assessed_on > current.decided_on
        )
        facts["dose_g_per_kg"] = current.dose_g_per_kg
        facts["interval_weeks"] = current.interval_weeks
        facts["at_lowest_dose"] = current.dose_g_per_kg <= settings.dose_ladder_g_per_kg[-1] + _EPS
        facts["at_longest_interval"] = current.interval_weeks >= settings.interval_ladder_weeks[-1]
        facts["next_dose_g_per_kg"] = _on_ladder_below(
            settings.dose_ladder_g_per_kg, current.dose_g_per_kg
        )
        facts["next_interval_weeks"] = _on_ladder_above(
            settings.interval_ladder_weeks, current.interval_weeks
        )
    facts["last_controlled_version"] = _last_controlled_version(
        regimens, visible, baseline, activity_baseline, settings
    )

    facts["open_serious_events"] = sum(
        1
        for event in history.adverse_events
        if event.serious
        and event.occurred_on <= as_of
        and (event.resolved_on is None or event.resolved_on > as_of)
    )

    taper = history.taper
    if taper is None:
        facts["taper_step_due"] = False
        facts["taper_mg"] = None
        facts["taper_at_floor"] = True
    else:
        mg = taper.current_mg_prednisone
        facts["taper_step_due"] = taper.next_step_due
        facts["taper_mg"] = mg
        facts["taper_at_floor"] = None if mg is None else mg <= taper.floor_mg + _EPS
    return facts
