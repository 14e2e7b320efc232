"""`python -m bench.clinic_import [--patients N]`: a clinic moving in (issue 15).

Imports a generated clinic file (bench/clinic_rows.py: two years of history per patient:
regimens, past infusions every four weeks, assessments, labs, some tapers) through
`app.services.clinic_file.import_file`, the path `flask --app wsgi import FILE` takes, into an
empty database, then exports it and checks the export is the file it imported. Target: 10,000
patients in at most 60 s. One run (it is minutes, not milliseconds): the figure is the wall time
of the import's one transaction, the file already read. SQLite by default, BENCH_DB for
PostgreSQL. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from typing import Any

from app.db import make_engine, make_session_factory
from app.services import clinic_file
from app.services.context import system_actor
from bench.clinic_rows import clinic_file_text
from bench.common import settings_for, throwaway_database
from bench.rows import center_with_chairs

TARGET_S = 60.0
TARGET_PATIENTS = 10_000


def run(patients: int = TARGET_PATIENTS) -> dict[str, Any]:
    today = dt.date.today()
    with throwaway_database() as url:
        settings = settings_for(url)
        engine = make_engine(url)
        factory = make_session_factory(engine, settings)
        with factory() as session:
            names = []
            for n in range(2):
                center = center_with_chairs(
                    session, f"Import Center {n + 1}", chairs=4, timezone="America/New_York"
                )
                names.append(center.name)
            session.commit()
        text = clinic_file_text(settings, patients, today, names)
        raw = text.encode()
        actor = system_actor("bench:import")
        with factory() as session:
            start = time.perf_counter()
            report = clinic_file.import_file(session, actor, raw, settings, today)
            seconds = time.perf_counter() - start
        if not report.ok:
            raise SystemExit(f"the generated file did not import: {report.problems[:5]}")
        with factory() as session:
            start = time.perf_counter()
            exported, _rows = clinic_file.export_file(session, actor)
            export_seconds = time.perf_counter() - start
        engine.dispose()
    rows = sum(report.counts.values())
    scaled = seconds * TARGET_PATIENTS / patients
    return {
        "database": os.environ.get("BENCH_DB", "sqlite").split("://")[0],
        "patients": patients,
        "rows": rows,
        "file_megabytes": round(len(raw) / 1e6, 1),
        "import_seconds": round(seconds, 2),
        "import_ms_per_row": round(seconds * 1000 / rows, 3),
        "export_seconds": round(export_seconds, 2),
        "round_trip_identical": exported == text,
        "target_seconds_at_10k": TARGET_S,
        "pass": scaled <= TARGET_S and exported == text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=TARGET_PATIENTS)
    args = parser.parse_args()
    print(json.dumps(run(args.patients), indent=2))


if __name__ == "__main__":
    main()
