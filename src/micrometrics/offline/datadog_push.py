"""``micrometrics eval --traces FILE --push-datadog``: offline results onto the production spans in Datadog.

Rows read from exported traces keep their span's ids; each result goes to LLM Observability's
evaluation API as the online ones do (same labels, so a re-evaluation shows beside, or in place of,
the online result), tagged ``micrometrics_run:offline``. Configured by the environment as
``exporter="datadog"`` is: ``MICROMETRICS_DATADOG_AGENTLESS`` with ``DD_API_KEY``/``DD_SITE``, else the Agent.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Sequence

from micrometrics.export import datadog_evaluations as dde
from micrometrics.offline.runner import Evaluated
from micrometrics_semconv import attributes as A

OFFLINE_TAG = "micrometrics_run:offline"


@dataclass
class Pushed:
    evaluations: int
    spans: int
    #: Rows that name no recorded span (a dataset row, a replay): nothing to join to.
    unjoined: int
    delivered: bool
    where: str


def _target() -> dde.Target:
    """Where the environment says ``exporter="datadog"`` sends evaluations; ValueError as ``instrument()`` raises it."""
    from micrometrics.export import presets
    from micrometrics.settings import BY_NAME

    agentless = BY_NAME["datadog_agentless"].resolve(None, {})
    value = BY_NAME["datadog_evaluations"].resolve(None, {})
    if value is False:
        raise ValueError("MICROMETRICS_DATADOG_EVALUATIONS turns Datadog evaluations off; unset it to push")
    site = presets.datadog_site()
    api_key = os.environ.get("DD_API_KEY", "").strip()
    if agentless and not api_key:
        raise ValueError("pushing to Datadog agentless (MICROMETRICS_DATADOG_AGENTLESS) needs your API key in DD_API_KEY")
    return dde.target(agentless=agentless, site=site, api_key=api_key, base=value if isinstance(value, str) else None)


def push(evaluated: Sequence[Evaluated], timeout_s: float = 30.0) -> Pushed:
    """Every result of every row read from a span, to Datadog; waits up to ``timeout_s`` for delivery."""
    target = _target()
    senders: dict[str, dde.DatadogEvaluations] = {}
    now_ms = time.time_ns() // 1_000_000
    count = spans = unjoined = 0
    for item in evaluated:
        row = item.row
        if row.span_ids is None:
            unjoined += 1
            continue
        service = row.service or "unknown_service"
        sender = senders.get(service)
        if sender is None:
            sender = senders[service] = dde.DatadogEvaluations(target)
            sender.describe({A.SERVICE_NAME: service})
        trace_id, span_id = (int(h, 16) for h in row.span_ids)
        batch = [
            dde.Evaluation(trace_id, span_id, name, r.label, r.score, r.passed, now_ms, r.explanation, (OFFLINE_TAG,))
            for name, r in item.results.items()
        ]
        sender.add(batch)
        count += len(batch)
        spans += 1 if batch else 0
    deadline = time.monotonic() + timeout_s
    delivered = all([s.close(max(0.0, deadline - time.monotonic())) for s in senders.values()])
    return Pushed(count, spans, unjoined, delivered, target.where)
