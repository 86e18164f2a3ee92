"""Paired blocks: the original call and the instrumented one timed block against block, the order alternating every
round, so the noise of a shared machine hits both sides alike. The one timing loop the overhead scripts share
(retrieval_overhead.py, bedrock_overhead.py, langchain_overhead.py, integrations.py)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

#: A timed call: gets the index of the call within its side (to rotate queries), returns what the library returned.
Call = Callable[[int], Any]


def _nothing() -> None:
    pass


@dataclass
class Paired:
    """Per-call times (ns) of both sides over all rounds, and per round the block medians and the block-time ratio."""

    rounds: int
    calls: int
    original: list[int] = field(default_factory=list)
    instrumented: list[int] = field(default_factory=list)
    original_cpu: list[int] = field(default_factory=list)
    instrumented_cpu: list[int] = field(default_factory=list)
    original_medians: list[float] = field(default_factory=list)
    instrumented_medians: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    @property
    def original_us(self) -> float:
        """Median over rounds of the original block's median call."""
        return statistics.median(self.original_medians) / 1e3

    @property
    def instrumented_us(self) -> float:
        return statistics.median(self.instrumented_medians) / 1e3

    @property
    def added_us(self) -> float:
        """Median over rounds of (instrumented block median - original block median): the paired difference."""
        return statistics.median(i - o for i, o in zip(self.instrumented_medians, self.original_medians)) / 1e3

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def added_cpu_us(self) -> float:
        """Calling thread CPU: the steadier figure on a busy machine (pooled medians)."""
        return (statistics.median(self.instrumented_cpu) - statistics.median(self.original_cpu)) / 1e3

    def p95_us(self, side: str) -> float:
        xs = sorted(getattr(self, side))
        return xs[int(len(xs) * 0.95)] / 1e3

    def figures(self) -> dict[str, float]:
        return {"original_us": self.original_us, "instrumented_us": self.instrumented_us, "added_us": self.added_us,
                "ratio": self.ratio, "added_cpu_us": self.added_cpu_us, "original_p95_us": self.p95_us("original"),
                "instrumented_p95_us": self.p95_us("instrumented"), "rounds": self.rounds, "calls_per_side": self.rounds * self.calls}

    def line(self, label: str, width: int = 9) -> str:
        """The row the standalone scripts print: medians and p95 of both sides (pooled), added median, ratio."""
        mb, mo = statistics.median(self.original) / 1e3, statistics.median(self.instrumented) / 1e3
        return (f"{label:<{width}}{mb:>10.1f}{self.p95_us('original'):>9.1f}{mo:>10.1f}{self.p95_us('instrumented'):>9.1f}"
                f"{mo - mb:>12.1f}{self.ratio:>8.3f}")


def block(call: Call, n: int, offset: int = 0) -> tuple[list[int], list[int]]:
    """Wall and calling-thread CPU time of each of ``n`` calls."""
    wall, cpu = [], []
    for i in range(offset, offset + n):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        call(i)
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - t0)
    return wall, cpu


def compare(original: Call, instrumented: Call, *, rounds: int, calls: int, settle: Callable[[], None] = _nothing,
            enter: Callable[[], None] = _nothing, leave: Callable[[], None] = _nothing) -> Paired:
    """``rounds`` rounds of one block of ``calls`` per side, original first in even rounds, instrumented first in odd.

    Untimed: ``enter`` before and ``leave`` after each instrumented block (``instrument()`` / ``uninstrument()`` when the
    original is the library alone), ``settle`` after every block (flush the monitor queue, so the next block starts
    with an idle monitor thread)."""
    out = Paired(rounds, calls)
    sides = (("original", original), ("instrumented", instrumented))
    for r in range(rounds):
        totals = {}
        for side, call in sides if r % 2 == 0 else sides[::-1]:
            if side == "instrumented":
                enter()
            wall, cpu = block(call, calls, r * calls)
            settle()
            if side == "instrumented":
                leave()
            getattr(out, side).extend(wall)
            getattr(out, f"{side}_cpu").extend(cpu)
            getattr(out, f"{side}_medians").append(statistics.median(wall))
            totals[side] = sum(wall)
        out.ratios.append(totals["instrumented"] / totals["original"])
    return out
