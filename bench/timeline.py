"""`python -m bench.timeline`: a patient's course in one picture over five years (issue 15).

The five-year patient of bench/cds.py (infusions every four weeks, assessments, suggestions,
a taper, adverse events); loading the course and drawing its SVG, as the timeline page does.
Target: at most 100 ms median, in a fixed number of queries. SQLite by default, BENCH_DB for
PostgreSQL. Prints one JSON object.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from app.db import make_engine, make_session_factory, recorded_statements
from app.domain import timeline
from app.services import timeline as timeline_service
from bench.cds import ZONE, _populate
from bench.common import median_ms, settings_for, throwaway_database

TARGET_MS = 100.0


def run(repeat: int = 30) -> dict[str, Any]:
    with throwaway_database() as url:
        settings = settings_for(url)
        engine = make_engine(url)
        factory = make_session_factory(engine, settings)
        today = dt.datetime.now(ZONE).date()
        with factory() as session:
            patient_id = _populate(session, today)

        def draw() -> str:
            with factory() as session:
                course, title = timeline_service.course(session, patient_id, settings, today)
                return timeline.svg(course, title)

        drawn = draw()
        with recorded_statements(engine) as statements:
            draw()
        ms = median_ms(draw, repeat)
        engine.dispose()
    return {
        "database": os.environ.get("BENCH_DB", "sqlite").split("://")[0],
        "timeline_median_ms": round(ms, 2),
        "timeline_queries": len(statements),
        "svg_kilobytes": round(len(drawn.encode()) / 1024, 1),
        "target_ms": TARGET_MS,
        "pass": ms <= TARGET_MS,
    }


def main() -> None:
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
