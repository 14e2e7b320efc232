"""Rules engine over a cohort: 10,000 patients with two years of history each.

Target (issue 5): evaluating the default rules takes at most 3x the time of only loading the
rows, with a number of queries that does not grow per patient and peak memory under 500 MB.
Issue 18: the nightly job (`evaluate_everyone`) over the same cohort, half of whom get a
suggestion (the other half responded and had their dose lowered four weeks ago), on its first
night and the next: at most 3x the bulk load.
BENCH_PATIENTS changes the cohort size.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time

import sqlalchemy as sa

from app import create_app
from app.db import recorded_statements
from app.models import Assessment, Center, Infusion, Patient, Regimen
from app.services import suggestions
from bench.common import settings_for, throwaway_database

TODAY = dt.date(2026, 11, 24)


def _populate(session: sa.orm.Session, patients: int) -> list[int]:
    center = Center(name="Cohort Center", timezone="America/New_York")
    session.add(center)
    session.flush()
    start = TODAY - dt.timedelta(weeks=100)
    session.execute(
        sa.insert(Patient),
        [
            {
                "mrn": f"C-{n:06d}",
                "family_name": f"F{n}",
                "given_name": "G",
                "sex": "female",
                "birth_date": dt.date(1970, 1, 1),
                "home_center_id": center.id,
                "height_cm": 165.0,
            }
            for n in range(patients)
        ],
    )
    ids = list(session.scalars(sa.select(Patient.id).order_by(Patient.id)))
    session.execute(
        sa.insert(Regimen),
        [
            {
                "patient_id": pid,
                "version": 1,
                "product": "Octagam 10%",
                "dose_g_per_kg": 2.0,
                "days_per_cycle": 1,
                "interval_weeks": 4,
                "weight_basis": "actual",
                "starts_on": start,
                "preferred_time": dt.time(9),
                "center_id": center.id,
                "weight_kg": 60.0,
                "height_cm": 165.0,
                "dosing_weight_kg": 60.0,
                "grams_per_day": 120.0,
                "grams_per_cycle": 120.0,
                "minutes_per_day": 300,
                "calculation": {},
                "soft_stops": [],
                "reason": "bench",
            }
            for pid in ids
        ],
    )
    # Half the cohort (odd positions) respond and had their dose lowered four weeks ago: too
    # soon for another step, so no rule fires for them (issue 18: half get a suggestion).
    changed = start + dt.timedelta(weeks=96)
    session.execute(
        sa.insert(Regimen),
        [
            {
                "patient_id": pid,
                "version": 2,
                "product": "Octagam 10%",
                "dose_g_per_kg": 1.5,
                "days_per_cycle": 1,
                "interval_weeks": 4,
                "weight_basis": "actual",
                "starts_on": changed,
                "preferred_time": dt.time(9),
                "center_id": center.id,
                "weight_kg": 60.0,
                "height_cm": 165.0,
                "dosing_weight_kg": 60.0,
                "grams_per_day": 90.0,
                "grams_per_cycle": 90.0,
                "minutes_per_day": 240,
                "calculation": {},
                "soft_stops": [],
                "reason": "bench: lowered",
            }
            for pid in ids[1::2]
        ],
    )
    regimen_of = {
        (row.patient_id, row.version): row.id
        for row in session.execute(sa.select(Regimen.patient_id, Regimen.version, Regimen.id))
    }
    batch: list[dict[str, object]] = []
    assessments: list[dict[str, object]] = []
    for index, pid in enumerate(ids):
        lowered = index % 2 == 1
        for cycle in range(25):
            day = start + dt.timedelta(weeks=4 * cycle)
            version = 2 if lowered and day >= changed else 1
            grams = 90.0 if version == 2 else 120.0
            batch.append(
                {
                    "uid": f"{pid:08d}{cycle:04d}".ljust(32, "0"),
                    "patient_id": pid,
                    "regimen_id": regimen_of[(pid, version)],
                    "cycle_number": cycle + 1,
                    "day_number": 1,
                    "planned_date": day,
                    "cycle_planned_on": day,
                    "center_id": center.id,
                    "status": "given",
                    "planned_grams": grams,
                    "planned_vials": [[30, 4]] if version == 1 else [[30, 3]],
                    "planned_minutes": 300 if version == 1 else 240,
                    "given_grams": grams,
                    "sequence": 0,
                    "version": 1,
                    "shift_days": 0,
                }
            )
            # Activity falls from 40, with a patient-specific pace (some respond, some do not).
            pace = 2 if lowered else index % 5
            activity = max(0.0, 40 - cycle * pace * 0.6)
            assessments.append(
                {
                    "patient_id": pid,
                    "assessed_on": day - dt.timedelta(days=1),
                    "cdasi_activity": activity,
                    "mmt8": 70.0,
                    "notes": "",
                }
            )
        if len(batch) >= 20_000:
            session.execute(sa.insert(Infusion), batch)
            session.execute(sa.insert(Assessment), assessments)
            batch, assessments = [], []
    if batch:
        session.execute(sa.insert(Infusion), batch)
        session.execute(sa.insert(Assessment), assessments)
    session.commit()
    return ids


def cohort() -> dict[str, float]:
    patients = int(os.environ.get("BENCH_PATIENTS", "10000"))
    with throwaway_database() as url:
        settings = settings_for(url)
        app = create_app(settings)
        state = app.extensions["ivig"]
        session = state.session_factory()
        started = time.perf_counter()
        ids = _populate(session, patients)
        populate_s = time.perf_counter() - started
        ruleset = suggestions.load_ruleset(settings)

        def load_only() -> None:
            for start in range(0, len(ids), suggestions._CHUNK):
                suggestions.load_records(
                    session, ids[start : start + suggestions._CHUNK], settings, TODAY
                )
                session.expunge_all()

        def evaluate() -> int:
            fired = 0
            for start in range(0, len(ids), suggestions._CHUNK):
                chunk = ids[start : start + suggestions._CHUNK]
                records = suggestions.load_records(session, chunk, settings, TODAY)
                for pid in chunk:
                    history = suggestions.history_of(pid, records[pid], settings, TODAY)
                    fired += bool(suggestions.engine.evaluate_history(ruleset, history)[1])
                session.expunge_all()
            return fired

        timings: dict[str, list[float]] = {"load": [], "evaluate": []}
        fired = 0
        for _ in range(3):
            for name, run in (("load", load_only), ("evaluate", evaluate)):
                with recorded_statements(state.engine) as statements:
                    t0 = time.perf_counter()
                    result = run()
                    timings[name].append(time.perf_counter() - t0)
                if name == "evaluate":
                    fired = int(result or 0)
                    queries = len(statements)
        load_s = sorted(timings["load"])[1]
        evaluate_s = sorted(timings["evaluate"])[1]
        # The nightly job as the scheduler runs it (it writes what fires): the first night,
        # then the next, when the suggestions already stand.
        nights = []
        for _night in range(2):
            with recorded_statements(state.engine) as statements:
                t0 = time.perf_counter()
                made = suggestions.evaluate_everyone(session, settings, as_of=TODAY)
                nights.append((time.perf_counter() - t0, len(statements), made))
            session.expunge_all()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        session.close()
        state.engine.dispose()
        return {
            "rules_patients": patients,
            "rules_populate_s": populate_s,
            "rules_load_only_median_s": load_s,
            "rules_evaluate_median_s": evaluate_s,
            "rules_ratio_evaluate_to_load": evaluate_s / load_s,
            "rules_queries_per_evaluation": queries,
            "rules_patients_with_a_suggestion": fired,
            "nightly_first_s": nights[0][0],
            "nightly_first_queries": nights[0][1],
            "nightly_first_suggestions": nights[0][2],
            "nightly_first_ratio_to_load": nights[0][0] / load_s,
            "nightly_next_s": nights[1][0],
            "nightly_next_queries": nights[1][1],
            "nightly_next_ratio_to_load": nights[1][0] / load_s,
            "nightly_target_ratio": 3.0,
            "rules_peak_rss_mb": peak_mb,
        }


if __name__ == "__main__":
    import json

    print(json.dumps(cohort(), indent=2))
