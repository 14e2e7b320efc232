"""The fewest pieces that make a total: IVIG vials for a day's grams, tablets for a steroid
dose. One algorithm for both, in whole units so that equal totals compare exactly.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence

_EPS = 1e-9
_MAX_DECIMAL_PLACES = 6


def scale_for(sizes: Sequence[float], what: str, minimum: int = 1) -> int:
    """The smallest power of ten, at least `minimum`, that makes every size whole."""
    for places in range(_MAX_DECIMAL_PLACES + 1):
        scale = 10**places
        if scale < minimum:
            continue
        if all(abs(size * scale - round(size * scale)) <= _EPS * scale for size in sizes):
            return int(scale)
    raise ValueError(
        f"{what} must have at most {_MAX_DECIMAL_PLACES} decimal places: {list(sizes)}"
    )


def to_units(amount: float, scale: int) -> int | None:
    """The amount in whole units of 1/scale, or None when it falls between two units."""
    value = amount * scale
    whole = round(value)
    if abs(value - whole) <= _EPS * max(1.0, abs(value)):
        return whole
    return None


def fewest_table(units: Sequence[int], top: int) -> list[int]:
    """The fewest pieces for every total 0..top; top + 1 marks a total no pieces make."""
    unreachable = top + 1
    fewest = [unreachable] * (top + 1)
    fewest[0] = 0
    for total in range(1, top + 1):
        best = unreachable
        for unit in units:
            if unit <= total and fewest[total - unit] + 1 < best:
                best = fewest[total - unit] + 1
        fewest[total] = best
    return fewest


def counts_for(units: Sequence[int], fewest: Sequence[int], total: int) -> list[int]:
    """How many of each size make `total` with the fewest pieces (a makeable total).

    `units` run largest first; of equally few pieces, the larger sizes win (deterministic).
    """
    counts = [0] * len(units)
    remaining = total
    while remaining:
        for index, unit in enumerate(units):
            if unit <= remaining and fewest[remaining - unit] == fewest[remaining] - 1:
                counts[index] += 1
                remaining -= unit
                break
    return counts
