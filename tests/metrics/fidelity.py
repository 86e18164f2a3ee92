"""Scoring a metric on its labelled dataset (``tests/data/<metric>.jsonl``): precision and recall.

The datasets are ``micrometrics eval`` datasets (one conversation per line); the truth is a tag
(e.g. ``refused`` / ``answered``), so ``micrometrics eval --tag`` can split them the same way.
Rows are turned into calls by the offline runner's own code (``micrometrics.offline.dataset``),
so the metric sees what it would see online.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from micrometrics.evaluation import evaluate
from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics.offline.dataset import Row, calls, read_jsonl

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def add(self, row_id: str, truth: bool, predicted: bool) -> None:
        """One row: a true/false positive/negative; the wrong ones named in ``misses``."""
        if truth and predicted:
            self.tp += 1
        elif predicted:
            self.fp += 1
            self.misses.append(f"false positive {row_id}")
        elif truth:
            self.fn += 1
            self.misses.append(f"false negative {row_id}")
        else:
            self.tn += 1

    def __str__(self) -> str:
        return f"precision {self.precision:.3f} recall {self.recall:.3f} (tp {self.tp} fp {self.fp} fn {self.fn} tn {self.tn})"


def rows(name: str) -> list[Row]:
    return read_jsonl(DATA / f"{name}.jsonl")


def result_of(metric: MicroMetric, row: Row) -> Result | None:
    call = calls(row)[-1]
    result, _ = evaluate(metric, CallView(call.record, call))
    return result


def score(
    metric: MicroMetric, rows: list[Row], positive_tag: str, predicted_positive: Callable[[Result | None], bool]
) -> Score:
    """Counts of the metric's positives against the rows tagged ``positive_tag``."""
    s = Score()
    for row in rows:
        s.add(row.id, positive_tag in row.tags, predicted_positive(result_of(metric, row)))
    return s


def count_kinds(per_kind: dict[str, Score], found: set[str], truth: set[str]) -> None:
    """Per-kind counts of a metric that names what it found (PII kinds, degenerate checks) against a row's truth."""
    for kind, s in per_kind.items():
        s.tp += kind in found and kind in truth
        s.fp += kind in found and kind not in truth
        s.fn += kind in truth and kind not in found
