"""Whether a benchmark run counts, shared by every benchmark in ``bench/``.

A figure measured over failed calls, refused requests or lost packets describes an error path,
not lwork: such a run must turn CI red rather than print plausible numbers. Each benchmark
prints its figures through ``Verdict.emit``, states what each figure needs (``require``), and
ends with ``Verdict.conclude``: every problem is written to stderr, one line each, and the
process exits 1. A figure that was promised but never printed is a problem too. Missing a
performance target (``met: false``) is not: that is a result, reported in the figure.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any


class Verdict:
    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.problems: list[str] = []
        self.emitted: list[str] = []

    def emit(self, figure: dict[str, Any]) -> None:
        """One JSON line on stdout, tagged with the benchmark's name."""
        print(json.dumps({"bench": self.bench, **figure}), flush=True)
        self.emitted.append(str(figure.get("figure", "?")))

    def require(self, ok: bool, figure: str, why: str) -> None:
        if not ok:
            self.problems.append(f"{figure}: {why}")

    def none_failed(self, figure: str, what: str, failures: int | Mapping[str, int]) -> None:
        """``failures`` (a count, or counts by reason) must be zero."""
        total = failures if isinstance(failures, int) else sum(failures.values())
        detail = "" if isinstance(failures, int) else f" {dict(failures)}"
        self.require(total == 0, figure, f"{total} {what} failed{detail}")

    def some(self, figure: str, what: str, count: float | None) -> None:
        """``count`` successes must be more than zero (None: the figure could not be taken)."""
        self.require(count is not None and count > 0, figure, f"no {what} ({count})")

    def conclude(self, expected: Iterable[str] = ()) -> None:
        """Exit 1 with the problems on stderr, if there are any; return otherwise."""
        for name in expected:
            self.require(name in self.emitted, name, "figure missing")
        if not self.problems:
            return
        for problem in self.problems:
            print(f"bench {self.bench} FAILED: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(1)
