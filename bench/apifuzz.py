"""schemathesis with every check, as each role, against gunicorn (4 workers, production mode)
on PostgreSQL: the long version of tests/web/test_schemathesis.py.

    .venv/bin/python -m bench.apifuzz [--examples 100] [--roles nurse,physician,admin]

Prints, per role, the test cases schemathesis generated, the requests gunicorn answered, the
5xx among them and schemathesis's failures; exits 1 if any role failed a check.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT
from bench.stack import ROLES, running_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--out", default=".", help="where each role's full report goes")
    args = parser.parse_args()
    results = {}
    with running_stack(args.root, patients=5) as stack:
        for role in args.roles.split(","):
            before = _answered(stack.log)
            done = subprocess.run(
                [
                    str(ROOT / ".venv/bin/st"),
                    "--config-file",
                    str(ROOT / "schemathesis.toml"),
                    "run",
                    f"{stack.base}/api/v1/openapi.json",
                    "-H",
                    f"Authorization: Bearer {stack.tokens[role]}",
                    "--checks",
                    "all",
                    "--max-examples",
                    str(args.examples),
                    "--seed",
                    "20261202",
                    "--workers",
                    "1",  # more threads crash schemathesis itself (CPython 3.11 AST race)
                    "--no-color",
                ],
                capture_output=True,
                text=True,
                cwd=stack.log.parent,
                check=False,
            )
            after = _answered(stack.log)
            (Path(args.out) / f"schemathesis-{role}.txt").write_text(done.stdout)
            generated = re.search(r"(\d+) generated", done.stdout)
            failures = re.search(r"(\d+) found (\d+) unique failure", done.stdout)
            results[role] = {
                "exit": done.returncode,
                "test_cases_generated": int(generated.group(1)) if generated else None,
                "requests_answered": after["total"] - before["total"],
                "server_errors_5xx": after["5xx"] - before["5xx"],
                "failures": int(failures.group(2)) if failures else 0,
            }
    print(json.dumps(results, indent=2))
    sys.exit(0 if all(r["exit"] == 0 for r in results.values()) else 1)


def _answered(log: Path) -> dict[str, int]:
    """Requests in gunicorn's access log so far, and the 5xx among them."""
    statuses = re.findall(r'" (\d{3}) ', log.read_text(errors="replace"))
    return {"total": len(statuses), "5xx": sum(s.startswith("5") for s in statuses)}


if __name__ == "__main__":
    main()
