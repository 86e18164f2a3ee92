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
        truth = positive_tag in row.tags
        predicted = predicted_positive(result_of(metric, row))
        if truth and predicted:
            s.tp += 1
        elif predicted:
            s.fp += 1
            s.misses.append(f"false positive {row.id}")
        elif truth:
            s.fn += 1
            s.misses.append(f"false negative {row.id}")
        else:
            s.tn += 1
    return s
