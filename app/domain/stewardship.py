"""The stewardship ledger: grams of IVIG given, and grams saved against the starting regimen.

Pure: the service loads each patient's regimen versions, the infusion days given and the day a
review stopped the course as plain values; nothing here reads a session or a clock.

DOMAIN.md ("Reviews, authorisations, stewardship"): stewardship programmes report IVIG saved
(Saskatchewan over 20% less; rounding to the vial at Mayo); Ontario asks for the lowest
effective dose and the longest interval, and to stop without benefit.

The period
    From the first cycle given (the earliest day of a cycle with an infusion given or partly
    given, on or after `since` when one is set) to `as_of` (today; or the end of a date range),
    both days included. Cycles and days after `as_of` do not count.

The counterfactual ("the baseline")
    Staying on the patient's starting regimen (regimen version 1) from the first cycle given
    to `as_of`, dosed on the actual weight it was set with (its `weight_kg`, not its dosing
    weight) and hung as computed (no rounding to vials), never stopped and never missed:
    ``baseline cycles = 1 + days / (7 x i1)`` (the first cycle, then one per interval, part of
    an interval counting in proportion: the starting regimen's cycles per year), each of
    ``d1 x a1`` grams (d: g/kg per cycle, a: actual weight kg, i: interval weeks, of version 1).

Stretches
    The period is cut at each cycle given: the stretch before a given cycle (from the one
    given before it) belongs to that cycle's regimen version (an approval sets the new
    version's first cycle one new interval after the last one given); the last stretch, from
    the last cycle given to `as_of`, belongs to the newest version starting by `as_of`. A
    stretch of g days under a version of interval i holds ``g / (7 x i)`` expected cycles of
    that version, the given cycle at its end among them (the first given cycle is one expected
    cycle of its own version). A cycle is the version's that planned its first day given, and
    a version's cycles follow those of the versions before it (a new version re-plans the
    cycles after it), so the stretches of a version add up to the days from the last cycle
    before its cycles to its last one: the figures need only each version's cycles summed
    (`summarise`; the clinic's loader sums them in the database).

Causes (each a step of one chain, in this order, so the steps add up to the total saved:
baseline grams minus grams given):
    interval_widening
        Per stretch, the baseline's cycles minus the expected ones, ``g/7 x (1/i1 - 1/i)``,
        each at the baseline's grams ``d1 x a1``: fewer cycles per year. A narrower interval
        (a flare's return) counts negative.
    de_escalation
        Per expected cycle, ``(d1 - d) x a1``: the lower g/kg of the version, on the starting
        weight. A flare's return to a higher dose counts negative.
    weight_change
        Per expected cycle, ``d x (a1 - a)``: the patient weighed less (or more) when the
        version was set than when the starting regimen was.
    weight_basis
        Per expected cycle, ``d x a - computed``: dosing on the version's dosing weight (ideal or
        adjusted) instead of its actual weight; computed is the version's computed grams per
        cycle before rounding (its calculation's grams_per_cycle, ``d x dosing weight``).
    vial_rounding
        Per expected cycle, ``computed - planned``: planned is the version's grams per cycle in
        whole vials (app.domain.dosing.round_to_vials, per day, times the days); rounding up
        counts negative.
    stopping
        A review's decision to stop (app.domain.reviews.course_stopped_on, reviews up to
        `as_of`): the last stretch's expected cycles from the last due date on or before the
        stop (the last cycle given, or a later one due and not given) to `as_of`, each at the
        version's planned grams.
    not_given
        What remains between planned and given: expected cycles with no infusion given (late
        or missed cycles, a hold; and in the last stretch, the part of an interval that has
        run since the last cycle of a course not stopped, counted in proportion), each at its
        version's planned grams; and, per cycle given, its version's planned grams minus the
        grams recorded (a day missed, an infusion stopped early, the day's recalculated dose).

Chair hours
    The baseline's cycles times version 1's days per cycle times its minutes per day (the
    rate is per kg of dosing weight, so minutes hardly depend on the weight), against the
    planned minutes of the infusion days given.

Cost is grams times the clinic's price per gram (config.toml [stewardship]).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The causes of grams saved, in the order of the chain (and of every page and CSV).
CAUSES: tuple[str, ...] = (
    "interval_widening",
    "de_escalation",
    "weight_change",
    "weight_basis",
    "vial_rounding",
    "stopping",
    "not_given",
)
#: How pages name the causes.
CAUSE_LABELS: Mapping[str, str] = {
    "interval_widening": "Interval widening",
    "de_escalation": "Dose de-escalation",
    "weight_change": "Weight change",
    "weight_basis": "Dosing weight basis",
    "vial_rounding": "Vial rounding",
    "stopping": "Stopping",
    "not_given": "Not given as planned",
}
_DAYS_PER_WEEK = 7


@dataclass(frozen=True)
class RegimenFact:
    """One regimen version, as set."""

    version: int
    dose_g_per_kg: float
    interval_weeks: int
    days_per_cycle: int
    starts_on: dt.date
    #: The actual weight the version was set with, and the weight it was dosed on.
    weight_kg: float
    dosing_weight_kg: float
    #: Grams per cycle before rounding (d x dosing weight) and in whole vials.
    computed_grams_per_cycle: float
    planned_grams_per_cycle: float
    minutes_per_day: int


@dataclass(frozen=True)
class GivenDay:
    """An infusion day given or partly given."""

    cycle_number: int
    planned_date: dt.date
    #: The version (number) of the regimen that planned it.
    regimen_version: int
    given_grams: float
    planned_minutes: int


@dataclass(frozen=True)
class VersionCycles:
    """The cycles of one regimen version given in the period (a cycle is its first day's)."""

    version: int
    cycles: int
    #: The first day of its first and of its last cycle given.
    first_start: dt.date
    last_start: dt.date
    grams: float
    planned_minutes: float


@dataclass(frozen=True)
class History:
    regimens: Sequence[RegimenFact]
    #: The infusion days given (any period: `ledger` keeps those in its period) ...
    given: Sequence[GivenDay] = ()
    #: The day the last review (up to as_of) stopped the course, or None.
    stopped_on: dt.date | None = None
    #: ... or, in their place, the cycles given in the period already summed per version
    #: (`summarise`; a clinic's loader sums them in the database).
    by_version: Sequence[VersionCycles] | None = None


@dataclass(frozen=True)
class Ledger:
    first_cycle_on: dt.date | None
    as_of: dt.date
    cycles_given: int
    grams_given: float
    baseline_cycles: float
    baseline_grams: float
    #: Grams saved per cause (CAUSES order); they add up to grams_saved.
    saved: Mapping[str, float]
    chair_minutes_given: float
    baseline_chair_minutes: float
    price_per_gram: float = 0.0
    patients: int = 1

    @property
    def grams_saved(self) -> float:
        return self.baseline_grams - self.grams_given

    @property
    def saved_percent(self) -> float | None:
        if self.baseline_grams <= 0:
            return None
        return self.grams_saved / self.baseline_grams * 100

    @property
    def chair_hours_given(self) -> float:
        return self.chair_minutes_given / 60

    @property
    def chair_hours_saved(self) -> float:
        return (self.baseline_chair_minutes - self.chair_minutes_given) / 60

    @property
    def cost_given(self) -> float:
        return self.grams_given * self.price_per_gram

    @property
    def cost_saved(self) -> float:
        return self.grams_saved * self.price_per_gram


def empty(as_of: dt.date, price_per_gram: float = 0.0, patients: int = 0) -> Ledger:
    """A ledger with nothing given."""
    return Ledger(
        first_cycle_on=None,
        as_of=as_of,
        cycles_given=0,
        grams_given=0.0,
        baseline_cycles=0.0,
        baseline_grams=0.0,
        saved=dict.fromkeys(CAUSES, 0.0),
        chair_minutes_given=0.0,
        baseline_chair_minutes=0.0,
        price_per_gram=price_per_gram,
        patients=patients,
    )


def summarise(
    given: Iterable[GivenDay], as_of: dt.date, since: dt.date | None = None
) -> tuple[VersionCycles, ...]:
    """Sum the days given in the period into cycles (each the version of its first day given),
    and the cycles into versions, by first cycle."""
    by_number: dict[int, list[Any]] = {}
    for day in given:
        if day.planned_date > as_of or (since is not None and day.planned_date < since):
            continue
        found = by_number.get(day.cycle_number)
        if found is None:
            by_number[day.cycle_number] = [
                day.planned_date,
                day.regimen_version,
                day.given_grams,
                day.planned_minutes,
            ]
            continue
        if day.planned_date < found[0]:
            found[0], found[1] = day.planned_date, day.regimen_version
        found[2] += day.given_grams
        found[3] += day.planned_minutes
    blocks: dict[int, VersionCycles] = {}
    for on, version, grams, minutes in sorted(by_number.values(), key=lambda c: (c[0], c[1])):
        seen = blocks.get(version)
        blocks[version] = (
            VersionCycles(version, 1, on, on, grams, minutes)
            if seen is None
            else VersionCycles(
                version,
                seen.cycles + 1,
                seen.first_start,
                on,
                seen.grams + grams,
                seen.planned_minutes + minutes,
            )
        )
    return tuple(sorted(blocks.values(), key=lambda b: (b.first_start, b.version)))


def _tail_version(
    regimens: Sequence[RegimenFact], last: RegimenFact, as_of: dt.date
) -> RegimenFact:
    later = [r for r in regimens if r.version > last.version and r.starts_on <= as_of]
    return max(later, key=lambda r: r.version) if later else last


def ledger(
    history: History,
    as_of: dt.date,
    since: dt.date | None = None,
    price_per_gram: float = 0.0,
) -> Ledger:
    """Compute a patient's ledger over the period (see the module docstring)."""
    versions = {r.version: r for r in history.regimens}
    if not versions:
        return empty(as_of, price_per_gram, patients=1)
    start = versions[min(versions)]
    blocks = sorted(
        summarise(history.given, as_of, since)
        if history.by_version is None
        else history.by_version,
        key=lambda b: (b.first_start, b.version),
    )
    if not blocks:
        return empty(as_of, price_per_gram, patients=1)

    saved = dict.fromkeys(CAUSES, 0.0)
    i1 = start.interval_weeks * _DAYS_PER_WEEK
    level0 = start.dose_g_per_kg * start.weight_kg
    first_on = blocks[0].first_start
    #: Expected cycles per version (the level steps of the chain are taken once per version).
    weights: dict[int, float] = {blocks[0].version: 1.0}
    widening_cycles = 0.0
    not_given = 0.0
    before = first_on
    for index, block in enumerate(blocks):
        # The stretches before a version's cycles (after the first cycle of all) add up to the
        # days from the last cycle before them to its last one: a version's cycles follow
        # those of the versions before it (a new version re-plans the cycles after it).
        span = (block.last_start - before).days
        stretches = block.cycles - (1 if index == 0 else 0)
        before = block.last_start
        version = versions[block.version]
        expected = span / (version.interval_weeks * _DAYS_PER_WEEK)
        widening_cycles += span / i1 - expected
        weights[block.version] = weights.get(block.version, 0.0) + expected
        not_given += (expected - stretches) * version.planned_grams_per_cycle
        not_given += block.cycles * version.planned_grams_per_cycle - block.grams

    last_on = blocks[-1].last_start
    version = _tail_version(history.regimens, versions[blocks[-1].version], as_of)
    interval = version.interval_weeks * _DAYS_PER_WEEK
    gap = (as_of - last_on).days
    stopped_days = 0
    if history.stopped_on is not None and history.stopped_on <= as_of:
        # From the last due date on or before the stop: the first cycle stopping saved is the
        # one due next after it.
        due = max(0, math.floor((history.stopped_on - last_on).days / interval))
        stopped_days = max(0, gap - due * interval)
    expected = gap / interval
    baseline_cycles = 1 + (as_of - first_on).days / i1
    widening_cycles += gap / i1 - expected
    weights[version.version] = weights.get(version.version, 0.0) + expected
    saved["stopping"] = stopped_days / interval * version.planned_grams_per_cycle
    saved["not_given"] = not_given + (gap - stopped_days) / interval * (
        version.planned_grams_per_cycle
    )
    saved["interval_widening"] = widening_cycles * level0

    d1, a1 = start.dose_g_per_kg, start.weight_kg
    for number, cycles_expected in weights.items():
        at = versions[number]
        d, a, computed = at.dose_g_per_kg, at.weight_kg, at.computed_grams_per_cycle
        saved["de_escalation"] += cycles_expected * (d1 - d) * a1
        saved["weight_change"] += cycles_expected * d * (a1 - a)
        saved["weight_basis"] += cycles_expected * (d * a - computed)
        saved["vial_rounding"] += cycles_expected * (computed - at.planned_grams_per_cycle)

    return Ledger(
        first_cycle_on=first_on,
        as_of=as_of,
        cycles_given=sum(b.cycles for b in blocks),
        grams_given=sum(b.grams for b in blocks),
        baseline_cycles=baseline_cycles,
        baseline_grams=baseline_cycles * level0,
        saved=dict(saved),
        chair_minutes_given=sum(b.planned_minutes for b in blocks),
        baseline_chair_minutes=baseline_cycles * start.days_per_cycle * start.minutes_per_day,
        price_per_gram=price_per_gram,
    )


def total(ledgers: Iterable[Ledger], as_of: dt.date, price_per_gram: float = 0.0) -> Ledger:
    """Add patients' ledgers up (the clinic's); counts only patients with a cycle given."""
    counted = [item for item in ledgers if item.cycles_given]
    if not counted:
        return empty(as_of, price_per_gram)
    starts = [item.first_cycle_on for item in counted if item.first_cycle_on is not None]
    return Ledger(
        first_cycle_on=min(starts) if starts else None,
        as_of=as_of,
        cycles_given=sum(item.cycles_given for item in counted),
        grams_given=sum(item.grams_given for item in counted),
        baseline_cycles=sum(item.baseline_cycles for item in counted),
        baseline_grams=sum(item.baseline_grams for item in counted),
        saved={cause: sum(item.saved[cause] for item in counted) for cause in CAUSES},
        chair_minutes_given=sum(item.chair_minutes_given for item in counted),
        baseline_chair_minutes=sum(item.baseline_chair_minutes for item in counted),
        price_per_gram=price_per_gram,
        patients=len(counted),
    )
