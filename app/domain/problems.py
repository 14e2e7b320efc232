"""Hard and soft stops shared by the domain modules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True)
class Problem:
    """One hard or soft stop, tied to the request field it concerns."""

    field: str
    message: str
    code: str


class Rejected(ValueError):
    """A request that hits one or more hard stops; `problems` lists every one."""

    problems: tuple[Problem, ...]

    def __init__(self, problems: Sequence[Problem]) -> None:
        problems = tuple(problems)
        if not problems:
            raise ValueError(f"{type(self).__name__} needs at least one problem")
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))

    def __reduce__(self) -> tuple[type[Self], tuple[tuple[Problem, ...]]]:
        # The default reduce would rebuild from the joined message and lose the problems.
        return (type(self), (self.problems,))
