"""The `make bench` table: one row per figure, whatever benchmark measured it.

figure, measured, floor (what it is compared with, if anything: the plain-driver fetch, the
bulk load, first-fit), ratio (measured / floor), target, pass or FAIL. Ratios are measured in
one run, so a busy machine slows the figure and its floor alike; the absolute times are
what a quiet machine would do only roughly (the header says how busy this one was).
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the table."""

    figure: str
    measured: float
    target: str
    passed: bool
    floor: float | None = None
    unit: str = "ms"

    @property
    def ratio(self) -> float | None:
        return self.measured / self.floor if self.floor else None

    @classmethod
    def from_row(cls, row: dict[str, object]) -> Figure:
        """A row as a benchmark printed it (its `as_dict`)."""
        floor = row.get("floor")
        return cls(
            figure=str(row["figure"]),
            measured=float(row["measured"]),  # type: ignore[arg-type]
            target=str(row["target"]),
            passed=row.get("result") == "pass",
            floor=None if floor is None else float(floor),  # type: ignore[arg-type]
            unit=str(row.get("unit", "ms")),
        )


def _cell(value: float, unit: str) -> str:
    return f"{value:.2f} {unit}".rstrip() if unit else f"{value:.2f}"


def render(figures: list[Figure], database: str) -> str:
    """The table as text, with a header naming the database and the machine's load."""
    header = ("figure", "measured", "floor", "ratio", "target", "result")
    lines = [header]
    for f in figures:
        lines.append(
            (
                f.figure,
                _cell(f.measured, f.unit),
                "-" if f.floor is None else _cell(f.floor, f.unit),
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                f.target,
                "pass" if f.passed else "FAIL",
            )
        )
    widths = [max(len(line[n]) for line in lines) for n in range(len(header))]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    out = [f"benchmarks on {database}; load average {load} on {os.cpu_count()} cores"]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)
