"""Compare two run reports: per metric, the pass-rate change with its interval, and the rows that flipped.

Runs over the same rows (matched by row id) are compared paired: each row is its own
control, which is what a prompt change on a fixed evaluation set is. Runs with no row in
common (e.g. last week's traffic against this week's) are compared as independent samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from micrometrics.offline.stats import Difference, newcombe_paired, newcombe_unpaired
from micrometrics.offline.terminal import Painter, percent, table

SCHEMA = "micrometrics.compare/1"
#: Float noise must not turn "exactly the threshold" into a regression.
_EPSILON = 1e-9


@dataclass
class Flip:
    id: str
    baseline: str
    candidate: str
    explanation: str | None


@dataclass
class MetricChange:
    name: str
    baseline_rate: float | None
    baseline_n: int
    candidate_rate: float | None
    candidate_n: int
    difference: Difference | None
    paired_rows: int
    regressed: list[Flip] = field(default_factory=list)
    fixed: list[Flip] = field(default_factory=list)
    baseline_cost: float | None = None
    candidate_cost: float | None = None
    currency: str | None = None
    regression: bool = False
    note: str | None = None


@dataclass
class Comparison:
    baseline: str
    candidate: str
    max_regression: float
    confidence: float
    require_significant: bool
    metrics: list[MetricChange]

    @property
    def regressions(self) -> list[str]:
        return [m.name for m in self.metrics if m.regression]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "max_regression": self.max_regression,
            "confidence": self.confidence,
            "require_significant": self.require_significant,
            "regressions": self.regressions,
            "passed": not self.regressions,
            "metrics": [asdict(m) for m in self.metrics],
        }


def _determinate(row: Mapping[str, Any], name: str) -> bool | None:
    r = row["results"].get(name)
    return None if r is None else r["passed"]


def compare(
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    *,
    max_regression: float = 0.0,
    confidence: float = 0.95,
    require_significant: bool = False,
    baseline_name: str = "baseline",
    candidate_name: str = "candidate",
) -> Comparison:
    """Each metric regresses when its pass rate drops by more than ``max_regression``
    (and, with ``require_significant``, when the whole interval lies below zero)."""
    if not 0.0 <= max_regression <= 1.0:
        raise ValueError(f"max_regression={max_regression!r} is a fraction of pass rate between 0 and 1 (0.02 = 2 points)")
    names = list(baseline["summary"])
    names += [n for n in candidate["summary"] if n not in names]
    base_rows = {r["id"]: r for r in baseline["rows"]}
    cand_rows = {r["id"]: r for r in candidate["rows"]}
    shared = [i for i in base_rows if i in cand_rows]
    changes = []
    for name in names:
        bs, cs = baseline["summary"].get(name), candidate["summary"].get(name)
        change = MetricChange(
            name=name,
            baseline_rate=bs["pass_rate"] if bs else None,
            baseline_n=(bs["passed"] + bs["failed"]) if bs else 0,
            candidate_rate=cs["pass_rate"] if cs else None,
            candidate_n=(cs["passed"] + cs["failed"]) if cs else 0,
            difference=None,
            paired_rows=0,
            baseline_cost=bs["cost"]["total"] if bs else None,
            candidate_cost=cs["cost"]["total"] if cs else None,
            currency=(cs or bs)["cost"]["currency"],
        )
        changes.append(change)
        if bs is None or cs is None:
            change.note = f"only in the {'candidate' if bs is None else 'baseline'} run"
            continue
        table2 = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
        for row_id in shared:
            b, c = _determinate(base_rows[row_id], name), _determinate(cand_rows[row_id], name)
            if b is None or c is None:
                continue
            table2[(b, c)] += 1
            if b and not c:
                r = cand_rows[row_id]["results"][name]
                change.regressed.append(Flip(row_id, base_rows[row_id]["results"][name]["label"], r["label"], r.get("explanation")))
            elif c and not b:
                r = cand_rows[row_id]["results"][name]
                change.fixed.append(Flip(row_id, base_rows[row_id]["results"][name]["label"], r["label"], r.get("explanation")))
        change.paired_rows = sum(table2.values())
        if change.paired_rows:
            change.baseline_rate = (table2[(True, True)] + table2[(True, False)]) / change.paired_rows
            change.candidate_rate = (table2[(True, True)] + table2[(False, True)]) / change.paired_rows
            change.baseline_n = change.candidate_n = change.paired_rows
            change.difference = newcombe_paired(table2[(True, True)], table2[(True, False)], table2[(False, True)], table2[(False, False)], confidence)
        elif change.baseline_n and change.candidate_n:
            change.difference = newcombe_unpaired(bs["passed"], change.baseline_n, cs["passed"], change.candidate_n, confidence)
        else:
            change.note = "no determinate result to compare"
            continue
        d = change.difference
        change.regression = d.delta < -(max_regression + _EPSILON) and (not require_significant or d.high < 0)
    return Comparison(baseline_name, candidate_name, max_regression, confidence, require_significant, changes)


def _pp(value: float) -> str:
    return f"{value * 100:+.1f}"


def render(comparison: Comparison, colour: bool = False, flips: int = 20) -> str:
    paint = Painter(colour)
    bold, red, green, dim = "\033[1m", "\033[31m", "\033[32m", "\033[2m"
    conf = f"{comparison.confidence * 100:g}%"
    gate = f"a drop of more than {comparison.max_regression * 100:g} points" + (" whose interval excludes 0" if comparison.require_significant else "")
    lines = [
        paint("micrometrics compare", bold) + f" · {comparison.baseline} -> {comparison.candidate}",
        paint(f"change = candidate - baseline pass rate, in points, with its {conf} interval (Newcombe; paired on shared rows). Gate: {gate}.", dim),
        "",
    ]
    rows = []
    for m in comparison.metrics:
        if m.difference is None:
            rows.append([m.name, percent(m.baseline_rate), percent(m.candidate_rate), "-", "-", "-", "-", m.note or "-"])
            continue
        d = m.difference
        cost = "-"
        if m.baseline_cost is not None and m.candidate_cost is not None:
            cost = f"{m.candidate_cost - m.baseline_cost:+.2f} {m.currency}"
        verdict = paint("REGRESSION", red) if m.regression else paint("ok", green)
        rows.append([
            m.name, f"{percent(m.baseline_rate)} ({m.baseline_n})", f"{percent(m.candidate_rate)} ({m.candidate_n})",
            _pp(d.delta), f"[{_pp(d.low)}, {_pp(d.high)}]", f"{len(m.regressed)} down, {len(m.fixed)} up", cost, verdict,
        ])
    lines += table(["metric", "baseline", "candidate", "change", f"{conf} CI", "flipped rows", "cost change", "verdict"], rows, [False, True, True, True, True, True, True, False])
    for m in comparison.metrics:
        if not m.regressed and not m.fixed:
            continue
        lines += ["", paint(f"{m.name}: rows that flipped", bold)]
        for f in (m.regressed + m.fixed)[:flips]:
            arrow = paint(f"{f.baseline} -> {f.candidate}", red if f in m.regressed else green)
            lines.append(f"  {f.id:<12} {arrow}  {f.explanation or ''}".rstrip())
        extra = len(m.regressed) + len(m.fixed) - flips
        if extra > 0:
            lines.append(paint(f"  ... {extra} more (see --json)", dim))
    lines.append("")
    if comparison.regressions:
        lines.append(paint(f"FAIL: {', '.join(comparison.regressions)} regressed beyond {comparison.max_regression * 100:g} points", red))
    else:
        lines.append(paint("PASS: no metric regressed beyond the threshold", green))
    return "\n".join(lines) + "\n"
