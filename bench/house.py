"""House-keeping numbers of a checkout: modules over 400 lines, functions over 60 lines, the
places that turn an instant into the clinic's date themselves, and role tests outside the
policy module.

    .venv/bin/python -m bench.house [ROOT]     # ROOT: another checkout, default this one
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from bench.common import ROOT

#: An instant turned into a local date by hand (schedule.local_date is the one that may).
_INLINE_DATE = re.compile(r"astimezone\([^)]*\)\.date\(\)")
#: Wrappers around the clock that a caller could use instead of the clock itself.
_DATE_WRAPPER = re.compile(r"^def (local_today|_today)\(timezone")
#: A permission decided by testing a role, outside app/policy.py.
_ROLE_TEST = re.compile(
    r"\.role\s*(==|!=|in\b|not in\b)|\brole\s*(==|!=)\s*Role\."
    r"|role in \(Role|current_user\.role\s*=="
)


def main() -> None:
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    code = sorted(p for folder in ("app", "scheduler") for p in (root / folder).rglob("*.py"))
    templates = sorted((root / "app").rglob("*.html"))

    def where(path: Path, line: int) -> str:
        return f"{path.relative_to(root)}:{line}"

    long_modules = sorted(
        (
            (n, str(p.relative_to(root)))
            for p in code
            if (n := len(p.read_text().splitlines())) > 400
        ),
        reverse=True,
    )
    long_functions = sorted(
        (
            (node.end_lineno - node.lineno + 1, f"{p.relative_to(root)}:{node.name}")
            for p in code
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > 60
        ),
        reverse=True,
    )
    dates = [
        where(p, i)
        for p in code
        if not str(p).endswith("domain/schedule.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if _INLINE_DATE.search(line) or _DATE_WRAPPER.search(line.strip())
    ]
    roles = [
        f"{where(p, i)}: {line.strip()[:80]}"
        for p in [*code, *templates]
        if not str(p).endswith("app/policy.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if _ROLE_TEST.search(line)
    ]
    print(f"modules over 400 lines: {len(long_modules)}")
    for n, name in long_modules:
        print(f"  {n:4d} {name}")
    print(f"functions over 60 lines: {len(long_functions)}")
    for n, name in long_functions:
        print(f"  {n:4d} {name}")
    print(f"the clinic's date computed by hand: {len(dates)}")
    for place in dates:
        print(f"  {place}")
    print(f"role tests outside app/policy.py: {len(roles)}")
    for place in roles:
        print(f"  {place}")


if __name__ == "__main__":
    main()
