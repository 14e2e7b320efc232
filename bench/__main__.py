"""`python -m bench` (or `make bench`): run every benchmark and print medians.

The calendar feed benchmark also serves its feed through gunicorn and compares it with
Radicale (installed by `make bench` from the bench extra).

BENCH_DB=postgresql+psycopg://postgres@127.0.0.1:5432/postgres runs them on PostgreSQL.
"""

from __future__ import annotations

import json
import os

from bench import feeds, rules, scheduling


def main() -> None:
    results = {"database": os.environ.get("BENCH_DB", "sqlite").split("://")[0]}
    results |= scheduling.day_board()
    results |= scheduling.year_of_infusions()
    results |= feeds.calendar_feed()
    results |= rules.cohort()
    print(
        json.dumps(
            {k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
