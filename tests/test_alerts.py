"""docs/alerts.md: every Prometheus rule and Datadog monitor parses, and names only metrics and labels we emit.

The Prometheus names are the OTel metric names as Prometheus writes them (dots to underscores, the
unit as a suffix, ``_total`` on counters, ``_bucket``/``_sum``/``_count`` on histograms); the units and
instrument kinds the test assumes are checked against what a real instrumented call exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import openai
import pytest

import micrometrics_semconv as semconv
from micrometrics.metrics import LanguageMatch
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

yaml = pytest.importorskip("yaml", reason="the Prometheus rules are YAML (pyyaml is a dev dependency)")

DOC = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"

#: The instrument kind and unit of every metric the alerts may name (checked against a live export below).
INSTRUMENTS = {
    M.GEN_AI_CLIENT_OPERATION_DURATION: ("histogram", "s"),
    M.GEN_AI_CLIENT_INFERENCE_DURATION: ("histogram", "s"),
    M.GEN_AI_CLIENT_TOKEN_USAGE: ("histogram", "{token}"),
    M.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK: ("histogram", "s"),
    M.MICROMETRICS_EVALUATIONS: ("counter", "{evaluation}"),
    M.MICROMETRICS_SCORE_HISTOGRAM: ("histogram", "1"),
    M.MICROMETRICS_EVALUATION_DURATION: ("histogram", "s"),
    M.MICROMETRICS_EVALUATIONS_DROPPED: ("counter", "{call}"),
    M.MICROMETRICS_GUARD_RETRIES: ("counter", "{retry}"),
    M.MICROMETRICS_INTERNAL_ERRORS: ("counter", "{error}"),
}
_UNIT_SUFFIX = {"s": "_seconds", "By": "_bytes", "ms": "_milliseconds"}


def prometheus_names(name: str, kind: str, unit: str) -> set[str]:
    """The series names Prometheus writes for an OTel metric (UnderscoreEscapingWithSuffixes)."""
    base = name.replace(".", "_") + _UNIT_SUFFIX.get(unit, "")
    return {base + "_total"} if kind == "counter" else {base + s for s in ("_bucket", "_sum", "_count")}


PROMETHEUS_METRICS = {n for name, (kind, unit) in INSTRUMENTS.items() for n in prometheus_names(name, kind, unit)}
PROMETHEUS_LABELS = {d.replace(".", "_") for d in A.METRIC_DIMENSIONS} | {"le"}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def _balanced(expr: str) -> bool:
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for ch in re.sub(r'"[^"]*"', '""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack


def test_the_instrument_kinds_and_units_are_those_exported(demo, telemetry):
    # One chat call, one failing call, one guard retry: the metrics the rules read, as a backend receives them.
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=1, expected="de")])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello, where is my parcel please?"}])
    with pytest.raises(openai.APIError):
        client.chat.completions.create(model="error-500", messages=[{"role": "user", "content": "Hallo"}])
    telemetry.flush()
    seen = {}
    for rm in telemetry.metric_reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = "histogram" if type(m.data).__name__ == "Histogram" else "counter" if getattr(m.data, "is_monotonic", False) else "other"
                seen[m.name] = (kind, m.unit)
    for name in (M.GEN_AI_CLIENT_OPERATION_DURATION, M.MICROMETRICS_EVALUATIONS, M.MICROMETRICS_GUARD_RETRIES, M.MICROMETRICS_EVALUATION_DURATION):
        assert seen[name] == INSTRUMENTS[name], name
    points = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert any(p.attributes.get(A.ERROR_TYPE) for p in points)  # the error-rate rule's error_type label exists


def test_every_prometheus_rule_parses_and_names_emitted_metrics_and_labels():
    (block,) = _blocks("yaml")
    doc = yaml.safe_load(block)
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {"LLMErrorRateHigh", "LLMLatencyP95High", "GuardRetryRateHigh", "LanguageMismatchRateHigh", "MicrometricsEvaluationsDropped"}
    for rule in rules:
        expr = rule["expr"]
        assert rule["labels"]["severity"] in ("page", "warn") and rule["annotations"]["summary"], rule["alert"]
        assert _balanced(expr), rule["alert"]
        metrics = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[])", expr))
        assert metrics and metrics <= PROMETHEUS_METRICS, (rule["alert"], metrics - PROMETHEUS_METRICS)
        labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
        for group in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
            labels |= {x.strip() for x in group.split(",") if x.strip()}
        labels |= set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
        assert labels <= PROMETHEUS_LABELS, (rule["alert"], labels - PROMETHEUS_LABELS)


def test_every_datadog_monitor_parses_and_names_emitted_metrics_and_tags():
    (block,) = _blocks("json")
    monitors = json.loads(block)
    assert len(monitors) >= 5
    for monitor in monitors:
        assert monitor["type"] == "query alert" and monitor["message"] and "critical" in monitor["options"]["thresholds"]
        query = monitor["query"]
        assert _balanced(query), monitor["name"]
        threshold = float(re.search(r"[<>]=?\s*([0-9.]+)\s*$", query).group(1))
        assert threshold == monitor["options"]["thresholds"]["critical"]
        found = re.findall(r"(?:sum|avg|min|max|count|p\d{2}):([\w.]+)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?", query)
        assert found, monitor["name"]
        for name, filters, by in found:
            assert name in semconv.METRIC_NAMES, name
            keys = {f.split(":", 1)[0] for f in filters.split(",") if f and f != "*"} | {b for b in by.split(",") if b}
            assert keys <= A.METRIC_DIMENSIONS, (monitor["name"], keys - A.METRIC_DIMENSIONS)
        for var in re.findall(r"\{\{([\w.]+)\.name\}\}", monitor["name"]):
            assert var in A.METRIC_DIMENSIONS, var
