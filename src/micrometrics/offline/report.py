"""The run report: one JSON document that the terminal table, the HTML page and ``compare`` read.

Its shape is ``report.schema.json`` beside this module (``schema``: ``micrometrics.eval/1``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from micrometrics import pricing as pricing_mod
from micrometrics.metric import MicroMetric, Result
from micrometrics.offline.dataset import Row, calls
from micrometrics.offline.runner import Evaluated
from micrometrics.records import InferenceRecord, message_text
from micrometrics_semconv import values as V

SCHEMA = "micrometrics.eval/1"
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
HISTOGRAM_BINS = 10
LABELS_ORDER = ("pass", "match", "fail", "mismatch", "undetermined", "error", "timeout")


class ReportError(ValueError):
    """A file that is not a micrometrics run report."""


def metric_info(m: MicroMetric, today: _dt.date | None = None) -> dict[str, Any]:
    today = today or _dt.date.today()
    return {
        "name": m.name,
        "class": type(m).__name__,
        "mode": m.mode,
        "sample_rate": m.sample_rate,
        "applies_to": list(m.applies_to),
        "owner": m.owner,
        "review_by": m.review_by.isoformat() if m.review_by else None,
        "overdue": bool(m.review_by and m.review_by < today),
        "cost_per_failure": m.cost_per_failure,
        "currency": m.currency,
    }


def _result(r: Result) -> dict[str, Any]:
    out: dict[str, Any] = {"label": r.label, "passed": r.passed, "score": r.score}
    if r.explanation:
        # An offline report stays on the developer's machine: the metric's exception text helps, and leaks nowhere.
        out["explanation"] = f"{r.explanation}: {r.error_message}" if r.error_message else r.explanation
    if r.details:
        out["details"] = {k: v if isinstance(v, (str, bool, int, float)) or v is None else str(v) for k, v in r.details.items()}
    if r.cost is not None:
        out["cost"] = r.cost
    return out


_UNKNOWN_PROVIDER = "unknown"


def row_cost(row: Row, prices: pricing_mod.PriceTable) -> tuple[bool, float | None]:
    """(whether the row stands for an LLM call, what it cost in USD): the cost its span recorded, else its usage
    priced now; None without usage or a price."""
    if row.error is not None:
        return True, None
    for call in calls(row):
        record = call.record
        if not isinstance(record, InferenceRecord):
            continue
        if row.recorded_cost is not None:
            return True, row.recorded_cost
        if record.provider == _UNKNOWN_PROVIDER:
            record.provider = prices.provider_of(record.response_model, record.model) or _UNKNOWN_PROVIDER
        cost = prices.cost(record)
        return True, float(cost) if cost is not None else None
    return False, None


def run_cost(rows: Sequence[Mapping[str, Any]], prices: pricing_mod.PriceTable) -> dict[str, Any]:
    """What the run's LLM calls cost, and what the metrics spent judging them (their LLM judges' calls)."""
    calls_cost = [r["cost"] for r in rows if "cost" in r]
    priced = [c for c in calls_cost if c is not None]
    judged = [res["cost"] for r in rows for res in r["results"].values() if res.get("cost") is not None]
    return {
        "currency": V.COST_CURRENCY_USD,
        "total": round(math.fsum(priced), 10) if priced else None,
        "calls": len(calls_cost),
        "priced_calls": len(priced),
        "evaluation": round(math.fsum(judged), 10) if judged else None,
        "prices_date": prices.date,
    }


def _rate(passed: int, failed: int) -> float | None:
    return passed / (passed + failed) if passed + failed else None


def _counts(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    labels: Counter[str] = Counter()
    passed = failed = 0
    for r in results:
        labels[r["label"]] += 1
        if r["passed"] is True:
            passed += 1
        elif r["passed"] is False:
            failed += 1
    return {"evaluated": sum(labels.values()), "passed": passed, "failed": failed, "pass_rate": _rate(passed, failed), "labels": dict(labels)}


def histogram(scores: Sequence[float], bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Counts over [min(0, lowest), max(1, highest)] in equal bins: scores are mostly 0..1."""
    if not scores:
        return {"low": 0.0, "high": 1.0, "counts": [0] * bins}
    low, high = min(0.0, min(scores)), max(1.0, max(scores))
    width = (high - low) / bins
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int((s - low) / width))] += 1
    return {"low": low, "high": high, "counts": counts}


def summarize(rows: Sequence[Mapping[str, Any]], metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per metric: labels, pass rate, scores, cost; and the same by model and by tag."""
    names = [m["name"] for m in metrics]
    for row in rows:
        for name in row["results"]:
            if name not in names:
                names.append(name)  # a metric that ran on two operations: "name@operation"
    info = {m["name"]: m for m in metrics}
    out: dict[str, Any] = {}
    for name in names:
        results = [(row, row["results"][name]) for row in rows if name in row["results"]]
        summary = _counts(r for _, r in results)
        scores = [r["score"] for _, r in results if r["score"] is not None]
        summary["score"] = {
            "count": len(scores),
            "mean": sum(scores) / len(scores) if scores else None,
            "min": min(scores) if scores else None,
            "max": max(scores) if scores else None,
            "histogram": histogram(scores),
        }
        m = info.get(name.split("@")[0], {})
        per_failure = m.get("cost_per_failure")
        summary["cost"] = {
            "per_failure": per_failure,
            "currency": m.get("currency"),
            "total": round(summary["failed"] * per_failure, 6) if per_failure is not None else None,
        }
        by_model: dict[str, list] = {}
        by_tag: dict[str, list] = {}
        for row, r in results:
            by_model.setdefault(row.get("model") or "(unknown)", []).append(r)
            for tag in row.get("tags") or ():
                by_tag.setdefault(tag, []).append(r)
        summary["by_model"] = {k: _counts(v) for k, v in sorted(by_model.items())}
        summary["by_tag"] = {k: _counts(v) for k, v in sorted(by_tag.items())}
        out[name] = summary
    return out


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build(
    evaluated: Sequence[Evaluated], metrics: Sequence[MicroMetric], source: Mapping[str, Any], prices: pricing_mod.PriceTable | None = None
) -> dict[str, Any]:
    """``prices``: what the rows' calls are priced with (default: the shipped table under ``MICROMETRICS_CONFIG``)."""
    from micrometrics import __version__

    prices = prices if prices is not None else pricing_mod.resolve()
    rows = []
    for e in evaluated:
        r = e.row
        last_user = next((message_text(m) for m in reversed(r.messages) if m.get("role") == "user"), None)
        is_call, cost = row_cost(r, prices)
        rows.append(
            {
                "id": r.id,
                "source": r.source,
                "model": r.model,
                "tags": list(r.tags),
                "expected_language": r.expected_language,
                "user_turns": r.user_turns,
                "messages": [{"role": m.get("role"), "content": message_text(m)} for m in r.messages],
                "last_user_message": last_user,
                "response": r.response,
                "error": r.error,
                "online_labels": dict(r.online_labels),
                "results": {name: _result(res) for name, res in e.results.items()},
            }
        )
        if is_call:
            rows[-1]["cost"] = cost
    infos = [metric_info(m) for m in metrics]
    return {
        "schema": SCHEMA,
        "created_at": _utc_now(),
        "micrometrics_version": __version__,
        "source": dict(source),
        "metrics": infos,
        "summary": summarize(rows, infos),
        "cost": run_cost(rows, prices),
        "rows": rows,
    }


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: a metric's odd score is written as null rather than break the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def dumps(report: Mapping[str, Any]) -> str:
    return json.dumps(_finite(report), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def load(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ReportError(f"{path}: not JSON ({exc}); write a report with `micrometrics eval ... --json {path}`") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ReportError(f"{path}: not a micrometrics run report (expected \"schema\": {SCHEMA!r}); write one with `micrometrics eval ... --json FILE`")
    for key in ("metrics", "summary", "rows"):
        if key not in data:
            raise ReportError(f"{path}: the report has no {key!r}")
    return data


def overdue(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in report["metrics"] if m.get("overdue")]


def label_order(labels: Iterable[str]) -> list[str]:
    return sorted(labels, key=lambda label: (LABELS_ORDER.index(label) if label in LABELS_ORDER else len(LABELS_ORDER), label))
