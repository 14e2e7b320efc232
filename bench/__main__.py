"""`python -m bench [--quick]` (or `make bench`): every benchmark, one table.

BENCH_DB=postgresql+psycopg://postgres@127.0.0.1:5432/postgres runs them on PostgreSQL.
`--quick` runs smaller sizes (a smoke run: the figures, not the targets, are what it shows).
Each benchmark also runs on its own (`python -m bench.<name>`), printing its details as JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from bench.table import Figure, render


def _num(value: object) -> float:
    """A benchmark's figure (its results are loosely typed JSON-ready dicts)."""
    if not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _board(quick: bool) -> list[Figure]:
    from bench import board

    r = {k: v for k, v in board.day_board(repeat=20 if quick else 100).items()}
    return [
        Figure(
            "day board, 30 chairs x 200 visits",
            _num(r["day_board_200_median_ms"]),
            "<= 50 ms",
            _num(r["day_board_200_median_ms"]) <= 50,
        ),
        Figure(
            f"day board, {r['busy_center']}",
            _num(r["day_board_400_median_ms"]),
            "<= 50 ms",
            _num(r["day_board_400_median_ms"]) <= 50,
        ),
        Figure(
            "day board queries (20, 200, 400 visits)",
            _num(r["day_board_400_queries"]),
            "the same at every size",
            bool(r["queries_fixed"]),
            unit="",
        ),
    ]


def _year(quick: bool) -> list[Figure]:
    from bench import scheduling

    r = scheduling.year_of_infusions(repeat=20 if quick else 100)
    ms = r["year_set_regimen_service_median_ms"]
    return [Figure("set regimen, a year, in a quiet center", ms, "<= 20 ms", ms <= 20)]


def _busy(quick: bool) -> list[Figure]:
    from bench import busy

    r = busy.run(quick=quick, repeat=10 if quick else 30)
    return [
        Figure(
            "set regimen, a year, among 20k bookings",
            r["set_regimen_median_ms"],
            "<= 30 ms",
            r["set_regimen_pass"],
        ),
        Figure(
            f"bulk booking ms/row at {r['bulk_rows']:,} rows",
            r["bulk_ms_per_row_at_end"],
            "<= 1.5x the rate at 2k (linear)",
            r["bulk_pass"],
            floor=r["bulk_ms_per_row_at_2k"],
        ),
    ]


def _rules(quick: bool) -> list[Figure]:
    from bench import rules

    before = os.environ.get("BENCH_PATIENTS")
    if quick and before is None:
        os.environ["BENCH_PATIENTS"] = "2000"
    try:
        r = rules.cohort()
    finally:
        if before is None:
            os.environ.pop("BENCH_PATIENTS", None)
    load = r["rules_load_only_median_s"]
    n = r["rules_patients"]
    return [
        Figure(
            f"rules over {n:,} patients (engine)",
            r["rules_evaluate_median_s"],
            "<= 3x",
            r["rules_ratio_evaluate_to_load"] <= 3,
            floor=load,
            unit="s",
        ),
        Figure(
            f"nightly rule job, first night ({r['nightly_first_suggestions']:,} new)",
            r["nightly_first_s"],
            "<= 3x the bulk load",
            r["nightly_first_ratio_to_load"] <= 3,
            floor=load,
            unit="s",
        ),
        Figure(
            "nightly rule job, next night",
            r["nightly_next_s"],
            "<= 3x the bulk load",
            r["nightly_next_ratio_to_load"] <= 3,
            floor=load,
            unit="s",
        ),
        Figure(
            "nightly rule job, next night, queries",
            r["nightly_next_queries"],
            "fixed per batch",
            r["nightly_next_queries"] < 10 * (n // 900 + 1) + 20,
            unit="",
        ),
        Figure(
            "rules peak memory",
            r["rules_peak_rss_mb"],
            "< 500 MB",
            r["rules_peak_rss_mb"] < 500,
            unit="MB",
        ),
    ]


def _feeds(quick: bool) -> list[Figure]:
    from bench import feeds

    return [Figure.from_row(row) for row in feeds.rows(quick=quick)]


def _reminders(quick: bool) -> list[Figure]:
    """The jobs' times (their peak memory is the process's high-water mark: measured alone by
    `python -m bench.reminders`, not in this table after the other benchmarks)."""
    from bench import reminders

    r = reminders.measure()
    t = r["targets"]
    return [
        Figure(
            f"review job over {r['patients']:,} patients",
            r["review_due"]["seconds"],
            "<= 10 s",
            t["review_due_under_10_s"],
            unit="s",
        ),
        Figure(
            "reminder sweep",
            r["send_reminders"]["seconds"],
            "<= 10 s",
            t["send_reminders_under_10_s"],
            unit="s",
        ),
    ]


def _optimise(quick: bool) -> list[Figure]:
    from bench import optimise

    r = optimise.run(seconds=5.0 if quick else 20.0)
    o, f, g = r["optimiser"], r["first_fit"], r["goal"]
    return [
        Figure(
            "optimiser: minutes past closing",
            o["minutes_past_closing"],
            ">= 30% fewer",
            g["at_least_30_percent_fewer"],
            floor=f["minutes_past_closing"],
            unit="min",
        ),
        Figure(
            "optimiser: peak setups at once",
            o["peak_concurrent_setups"],
            "<= nurses on shift",
            g["peak_setups_within_nurses"],
            floor=f["peak_concurrent_setups"],
            unit="",
        ),
        Figure(
            "optimiser: solve time", o["solve_seconds"], "<= 30 s", g["solve_within_30_s"], unit="s"
        ),
    ]


def _cds(quick: bool) -> list[Figure]:
    from bench import cds

    r = cds.measure()
    return [
        Figure(
            "CDS patient-view, five years of history",
            r["patient_view"]["median_ms"],
            "< 500 ms",
            r["patient_view"]["median_ms"] < 500,
        ),
        Figure(
            "CDS order-sign",
            r["order_sign"]["median_ms"],
            "< 500 ms",
            r["order_sign"]["median_ms"] < 500,
        ),
    ]


def _recall(quick: bool) -> list[Figure]:
    from bench import recall

    r = recall.lot_recall(repeat=100 if quick else 500)
    ms = _num(r["recall_service_median_ms"])
    return [
        Figure(
            f"lot recall over {_num(r['recall_vials']):,.0f} vials",
            ms,
            # One SELECT over the vial records, one over short-form lots text: fixed.
            "<= 50 ms, 2 queries",
            ms <= 50 and r["recall_selects"] == 2,
        ),
    ]


def _timeline(quick: bool) -> list[Figure]:
    from bench import timeline

    r = timeline.run(repeat=10 if quick else 30)
    return [Figure("patient timeline, five years", r["timeline_median_ms"], "<= 100 ms", r["pass"])]


def _reports(quick: bool) -> list[Figure]:
    from bench import reports

    r = reports.run(patients=1000 if quick else reports.PATIENTS)
    n, met = r["patients"], r["targets"]
    return [
        Figure(
            f"stewardship ledger, {n:,} patients",
            _num(r["clinic_ledger"]["median_ms"]),
            "<= 1000 ms, fixed queries",
            bool(met["clinic_ledger_at_most_1_s"] and met["fixed_ledger_queries"]),
        ),
        Figure(
            "rule outcomes",
            _num(r["rule_outcomes"]["median_ms"]),
            "<= 1000 ms, fixed queries",
            bool(met["rule_outcomes_at_most_1_s"] and met["fixed_rule_queries"]),
        ),
        Figure(
            f"clinic reports, {n:,} patients",
            _num(r["clinic_report"]["median_ms"]),
            "<= 1000 ms, fixed queries",
            bool(met["clinic_report_at_most_1_s"] and met["fixed_report_queries"]),
        ),
    ]


def _clinic_import(quick: bool) -> list[Figure]:
    from bench import clinic_import

    r = clinic_import.run(patients=500 if quick else clinic_import.TARGET_PATIENTS)
    return [
        Figure(
            f"import a clinic file, {r['patients']:,} patients ({r['rows']:,} rows)",
            _num(r["import_seconds"]),
            "<= 60 s at 10k patients, export identical",
            bool(r["pass"]),
            unit="s",
        )
    ]


BENCHES: dict[str, Callable[[bool], list[Figure]]] = {
    "recall": _recall,
    "board": _board,
    "year": _year,
    "busy": _busy,
    "rules": _rules,
    "feeds": _feeds,
    "reminders": _reminders,
    "optimise": _optimise,
    "cds": _cds,
    "timeline": _timeline,
    "reports": _reports,
    "import": _clinic_import,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument("only", nargs="*", choices=[*BENCHES, []], help="run only these")
    args = parser.parse_args()
    figures: list[Figure] = []
    for name, bench in BENCHES.items():
        if not args.only or name in args.only:
            figures += bench(args.quick)
    database = os.environ.get("BENCH_DB", "sqlite").split("://")[0]
    print(render(figures, database))
    sys.exit(0 if all(f.passed for f in figures) else 1)


if __name__ == "__main__":
    main()
