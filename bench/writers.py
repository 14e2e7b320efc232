"""50 parallel writers for 60 s against gunicorn on PostgreSQL: reschedules, regimen changes
and assessments mixed, on shared centers and chairs.

    .venv/bin/python -m bench.writers [--writers 50] [--seconds 60] [--root PATH]

`--root` runs another checkout (an older commit) the same way, to compare throughput. Prints
JSON: requests, writes per second, statuses by kind, server errors, PostgreSQL deadlocks.
A 409 (stale version, contested slot, a therapy rule) or 422 is a correct answer; a 5xx or a
deadlock is a failure.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.client
import json
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.stack import Stack, assessment_body, regimen_change_body, request, running_stack

KINDS = ("reschedule", "regimen", "assessment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    with running_stack(args.root) as stack:
        result = run(stack, args.writers, args.seconds, args.seed)
    result["root"] = str(args.root)
    print(json.dumps(result, indent=2))


def run(stack: Stack, writers: int, seconds: float, seed: int) -> dict[str, Any]:
    statuses: dict[str, collections.Counter[int]] = {k: collections.Counter() for k in KINDS}
    latencies: list[float] = []
    errors: list[str] = []
    refusals: dict[str, str] = {}
    lock = threading.Lock()
    deadlocks_before = stack.deadlocks()
    deadline = time.monotonic() + seconds

    def writer(number: int) -> None:
        rng = random.Random(seed + number)
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=120)
        try:
            while time.monotonic() < deadline:
                kind = rng.choice(KINDS)
                patient = rng.choice(stack.patients)
                start = time.perf_counter()
                try:
                    status, body = _write(stack, conn, kind, patient, rng)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=120)
                    status, body = 0, repr(exc)
                elapsed = time.perf_counter() - start
                if status is None:
                    continue  # nothing to write for this patient (no regimen, nothing booked)
                with lock:
                    statuses[kind][status] += 1
                    latencies.append(elapsed * 1000)
                    if status >= 500 or status == 0:
                        errors.append(f"{kind} {status} {str(body)[:300]}")
                    elif status >= 400:
                        message = (body or {}).get("error", {}).get("message", "")
                        refusals.setdefault(f"{kind} {status}", message[:200])
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    total = sum(sum(c.values()) for c in statuses.values())
    accepted = sum(n for c in statuses.values() for s, n in c.items() if 200 <= s < 300)
    server_errors = sum(n for c in statuses.values() for s, n in c.items() if s >= 500 or s == 0)
    log = stack.log.read_text(errors="replace")
    return {
        "writers": writers,
        "seconds": round(wall, 1),
        "requests": total,
        "requests_per_second": round(total / wall, 1),
        "accepted_writes": accepted,
        "accepted_writes_per_second": round(accepted / wall, 1),
        "median_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(statistics.quantiles(latencies, n=20)[-1], 1) if latencies else None,
        "statuses": {k: dict(sorted(c.items())) for k, c in statuses.items()},
        "server_errors": server_errors,
        "postgresql_deadlocks": stack.deadlocks() - deadlocks_before,
        "deadlocks_in_log": log.count("deadlock detected"),
        "first_errors": errors[:5],
        "a_refusal_of_each_kind": refusals,
    }


def _write(
    stack: Stack, conn: http.client.HTTPConnection, kind: str, patient: dict, rng: random.Random
) -> tuple[int | None, Any]:
    """One write of `kind` for the patient: read what the write needs, then write it."""
    nurse, physician = stack.tokens["nurse"], stack.tokens["physician"]
    pid = patient["id"]
    if kind == "assessment":
        return request(
            stack.port,
            "POST",
            f"/api/v1/patients/{pid}/assessments",
            assessment_body(rng),
            token=nurse,
            connection=conn,
        )
    if kind == "regimen":
        status, detail = request(
            stack.port, "GET", f"/api/v1/patients/{pid}", token=physician, connection=conn
        )
        current = (detail or {}).get("current_regimen") if status == 200 else None
        if current is None:
            return (None if status == 200 else status), detail
        return request(
            stack.port,
            "POST",
            f"/api/v1/patients/{pid}/regimens",
            regimen_change_body(current, rng, "stress benchmark: de-escalation"),
            token=physician,
            connection=conn,
        )
    status, listed = request(
        stack.port, "GET", f"/api/v1/patients/{pid}/infusions", token=nurse, connection=conn
    )
    booked = [
        i
        for i in (listed or {}).get("infusions", [])
        if i["status"] == "scheduled" and i["starts_at"] and i["starts_at"] > _now_iso()
    ]
    if status != 200 or not booked:
        return (None if status == 200 else status), listed
    infusion = rng.choice(booked[:6])
    starts = dt.datetime.fromisoformat(infusion["starts_at"]) + dt.timedelta(
        hours=rng.choice((-1, 0, 0, 1))
    )
    return request(
        stack.port,
        "POST",
        f"/api/v1/infusions/{infusion['id']}/reschedule",
        {
            "chair_id": rng.choice(patient["chairs"]),
            "starts_at": starts.isoformat(),
            "version": infusion.get("version"),
        },
        token=nurse,
        connection=conn,
    )


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


if __name__ == "__main__":
    main()
