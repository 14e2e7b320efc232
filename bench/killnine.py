"""kill -9 under writes: every write the server acknowledged survives, the audit chain holds.

    .venv/bin/python -m bench.killnine [--rounds 5] [--writers 8] [--root PATH]

Each round, writers record assessments and change regimens against gunicorn (4 workers,
production mode, PostgreSQL); after a random 2-5 s the master and every worker get SIGKILL
at once. With the server down, `flask audit verify` and `flask integrity check` must pass;
then the server restarts for the next round. At the end every acknowledged write (a 201 the
client read) is looked up again. Prints JSON; exits 1 if a write was lost or a check failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.stack import Stack, assessment_body, regimen_change_body, request, running_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    with running_stack(args.root, patients=12) as stack:
        result = run(stack, args.rounds, args.writers, random.Random(args.seed))
    result["root"] = str(args.root)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


def run(stack: Stack, rounds: int, writers: int, rng: random.Random) -> dict[str, Any]:
    assessments: list[tuple[int, int]] = []  # (patient id, assessment id) acknowledged
    regimens: list[tuple[int, int]] = []  # (patient id, version) acknowledged
    unanswered = 0
    checks: list[dict[str, Any]] = []
    lock = threading.Lock()
    for round_number in range(1, rounds + 1):
        stop = threading.Event()

        def writer(number: int, stop: threading.Event = stop, seed: int = round_number) -> None:
            nonlocal unanswered
            local = random.Random(seed * 1000 + number)
            while not stop.is_set():
                patient = local.choice(stack.patients)
                try:
                    ack = _one_write(stack, patient, local)
                except (OSError, http.client.HTTPException):
                    with lock:
                        unanswered += 1  # the server died under it: never acknowledged
                    time.sleep(0.05)
                    continue
                with lock:
                    if ack and ack[0] == "assessment":
                        assessments.append(ack[1:])
                    elif ack:
                        regimens.append(ack[1:])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(2, 5))
        stack.kill()
        stop.set()
        for thread in threads:
            thread.join()
        verify = stack.flask("audit", "verify")
        integrity = stack.flask("integrity", "check")
        checks.append(
            {
                "round": round_number,
                "acknowledged_so_far": len(assessments) + len(regimens),
                "audit_verify_exit": verify.returncode,
                "audit_verify": verify.stdout.strip().splitlines()[-1:],
                "integrity_check_exit": integrity.returncode,
            }
        )
        stack.start()
    lost = _lost(stack, assessments, regimens)
    passed = not lost and all(
        c["audit_verify_exit"] == 0 and c["integrity_check_exit"] == 0 for c in checks
    )
    return {
        "rounds": rounds,
        "writers": writers,
        "acknowledged_assessments": len(assessments),
        "acknowledged_regimen_changes": len(regimens),
        "requests_cut_by_the_kill": unanswered,
        "acknowledged_writes_lost": len(lost),
        "lost": lost[:10],
        "checks_after_each_kill": checks,
        "passed": passed,
    }


def _one_write(
    stack: Stack, patient: dict[str, Any], rng: random.Random
) -> tuple[str, int, int] | None:
    pid = patient["id"]
    if rng.random() < 0.6:
        status, body = request(
            stack.port,
            "POST",
            f"/api/v1/patients/{pid}/assessments",
            assessment_body(rng),
            token=stack.tokens["nurse"],
            timeout=30,
        )
        return ("assessment", pid, body["id"]) if status == 201 else None
    physician = stack.tokens["physician"]
    status, detail = request(stack.port, "GET", f"/api/v1/patients/{pid}", token=physician)
    current = detail.get("current_regimen") if status == 200 else None
    if not current:
        return None
    status, body = request(
        stack.port,
        "POST",
        f"/api/v1/patients/{pid}/regimens",
        regimen_change_body(current, rng, "kill -9 benchmark"),
        token=physician,
        timeout=30,
    )
    return ("regimen", pid, body["regimen"]["version"]) if status == 201 else None


def _lost(
    stack: Stack, assessments: list[tuple[int, int]], regimens: list[tuple[int, int]]
) -> list[str]:
    nurse = stack.tokens["nurse"]
    lost = []
    for pid in {p for p, _ in assessments} | {p for p, _ in regimens}:
        _, listed = request(stack.port, "GET", f"/api/v1/patients/{pid}/assessments", token=nurse)
        have = {a["id"] for a in listed["assessments"]}
        lost += [f"assessment {a}" for p, a in assessments if p == pid and a not in have]
        _, listed = request(stack.port, "GET", f"/api/v1/patients/{pid}/regimens", token=nurse)
        versions = {r["version"] for r in listed["regimens"]}
        lost += [f"regimen v{v} of {p}" for p, v in regimens if p == pid and v not in versions]
    return lost


if __name__ == "__main__":
    main()
