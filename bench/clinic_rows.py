"""A generated clinic file (app.domain.clinic_file): patients with two years of history, as a
clinic moving in would bring them. Deterministic for a seed; used by the import benchmark and
the round-trip tests.

Each patient: a weight, a first regimen (2 g/kg over 2 days every 4 weeks) two years back, for
half of them a lower dose after a year (with a new weight), past infusions every 4 weeks (a few
partial or missed), an assessment every 12 weeks, CK and creatinine every 12 weeks, and a
prednisone taper for a third of them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence

from app.config import Settings
from app.csvout import safe_cell
from app.domain import clinic_file
from app.models import Patient
from app.services import regimens

FAMILY = ("Okafor", "Lindqvist", "García", "Nakamura", "Dubois", "O'Neill", "Kowalski", "Ahmed")
GIVEN = ("Ada", "Björn", "Chiara", "Dev", "Eun-ji", "Farah", "Gustavo", "Hana")


def _grams_per_day(
    settings: Settings, height: float, sex: str, weight: float, dose: float
) -> float:
    person = Patient(height_cm=height, sex=sex, thrombosis_risk=False, renal_risk=False)
    data = regimens.RegimenInput(
        product="Octagam 10%",
        dose_g_per_kg=dose,
        days_per_cycle=2,
        interval_weeks=4,
        weight_basis="adjusted",
        starts_on=dt.date(2000, 1, 1),
        reason="",
    )
    result = regimens.calculate(regimens.dose_request(person, weight, data), settings)
    return float(result.rounding.rounded_g)


def _measures(
    index: int, rng: random.Random, mrn: str, start: dt.date
) -> Iterator[dict[str, object]]:
    """An assessment, CK and creatinine the day before every third cycle."""
    for week in range(0, 104, 12):
        day = start + dt.timedelta(weeks=week) - dt.timedelta(days=1)
        yield {
            "record": "assessment",
            "mrn": mrn,
            "date": day,
            "cdasi_activity": float(max(2, 40 - week // 4 - index % 7)),
            "cdasi_damage": float(3 + index % 4),
            "mmt8": float(min(80, 60 + week // 6)),
            "physician_global": float(max(1, 7 - week // 20)),
            "patient_global": float(max(1, 6 - week // 24)),
            "notes": "imported" if week == 0 else None,
        }
    for week in range(0, 104, 12):
        day = start + dt.timedelta(weeks=week) - dt.timedelta(days=1)
        for test, unit, value, low, high in (
            ("ck", "U/L", float(120 + rng.randrange(0, 400)), None, 192.0),
            ("creatinine", "µmol/L", float(60 + rng.randrange(0, 30)), 45.0, 84.0),
        ):
            yield {
                "record": "lab",
                "mrn": mrn,
                "date": day,
                "test": test,
                "value": value,
                "unit": unit,
                "ref_low": low,
                "ref_high": high,
            }


def _patient(
    index: int,
    rng: random.Random,
    settings: Settings,
    today: dt.date,
    centers: Sequence[str],
    physicians: Sequence[str],
) -> Iterator[dict[str, object]]:
    mrn = f"IMP-{index:06d}"
    sex = rng.choice(("female", "male"))
    height = float(rng.randrange(150, 195))
    weight = float(rng.randrange(55, 110))
    start = today - dt.timedelta(weeks=104)
    start -= dt.timedelta(days=start.weekday())  # a Monday
    yield {
        "record": "patient",
        "mrn": mrn,
        "family_name": FAMILY[index % len(FAMILY)],
        "given_name": GIVEN[(index // len(FAMILY)) % len(GIVEN)],
        "sex": sex,
        "birth_date": dt.date(1950 + index % 50, 1 + index % 12, 1 + index % 28),
        "center": centers[index % len(centers)],
        "physician": physicians[index % len(physicians)] if physicians else None,
        "height_cm": height,
        "dm_subtype": "classic",
        "thrombosis_risk": False,
        "renal_risk": False,
        "iga_deficient": False,
        "allergies": "penicillin" if index % 10 == 0 else None,
    }
    yield {"record": "weight", "mrn": mrn, "date": start, "weight_kg": weight}
    lower = index % 2 == 0
    switch = start + dt.timedelta(weeks=52)
    later_weight = weight - 2.0
    if lower:
        yield {"record": "weight", "mrn": mrn, "date": switch, "weight_kg": later_weight}
    versions = [(start, 2.0, weight)] + ([(switch, 1.5, later_weight)] if lower else [])
    for on, dose, kg in versions:
        yield {
            "record": "regimen",
            "mrn": mrn,
            "date": on,
            "product": "Octagam 10%",
            "dose_g_per_kg": dose,
            "days_per_cycle": 2,
            "interval_weeks": 4,
            "weight_basis": "adjusted",
            "preferred_time": dt.time(9),
            "weight_kg": kg,
            "reason": "first course" if on == start else "de-escalation: stable response",
        }
    if index % 3 == 0:
        yield {
            "record": "taper",
            "mrn": mrn,
            "date": start,
            "drug": "prednisone",
            "start_mg": 40.0,
            "template": "banded",
            "reason": "taper beside IVIG",
        }
    yield from _measures(index, rng, mrn, start)
    cycle = 0
    on = start
    while on + dt.timedelta(days=1) < today:
        cycle += 1
        _version_on, dose, kg = [v for v in versions if v[0] <= on][-1]
        grams = _grams_per_day(settings, height, sex, kg, dose)
        for day in (1, 2):
            status = "given"
            given: float | None = grams
            if rng.random() < 0.03:
                status, given = "missed", None
            elif rng.random() < 0.03:
                status, given = "partial", round(grams / 2)
            yield {
                "record": "infusion",
                "mrn": mrn,
                "date": on + dt.timedelta(days=day - 1),
                "cycle": cycle,
                "day": day,
                "status": status,
                "grams": given,
                "lots": f"LOT-{cycle:03d}" if given else None,
                "time": dt.time(9) if given else None,
                "minutes": 240 if given else None,
                "reason": {"missed": "patient unwell", "partial": "headache: stopped"}.get(status),
            }
        on += dt.timedelta(weeks=4)


def records(
    settings: Settings,
    patients: int,
    today: dt.date,
    centers: Sequence[str],
    physicians: Sequence[str] = (),
    seed: int = 15,
) -> Iterator[dict[str, object]]:
    """The records of a clinic file of `patients` patients, in the export's order."""
    rng = random.Random(seed)
    for index in range(1, patients + 1):
        yield from _patient(index, rng, settings, today, centers, physicians)


def clinic_file_text(
    settings: Settings,
    patients: int,
    today: dt.date,
    centers: Sequence[str],
    physicians: Sequence[str] = (),
    seed: int = 15,
) -> str:
    """The generated clinic file as text (UTF-8 when written)."""
    return clinic_file.render(
        records(settings, patients, today, centers, physicians, seed), safe_cell
    )
