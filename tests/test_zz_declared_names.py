"""Every attribute key, metric name and event name emitted across the suite is declared in micrometrics_semconv.

Named to run last: it reads what the other tests saw exported (tests/telemetry_harness.py).
It also runs a call of its own, so it checks something when run alone.
"""

from __future__ import annotations

import openai

import micrometrics_semconv as semconv
from micrometrics.metrics import LanguageMatch, ResponseLength
from telemetry_harness import emitted_names

# Keys the OpenTelemetry SDK adds itself (span.record_exception).
SDK_KEYS = {"exception.type", "exception.message", "exception.stacktrace", "exception.escaped"}
# Keys the tests' user code adds through micrometrics.context(attributes=...).
USER_KEYS_PREFIX = "app."


def test_every_emitted_name_is_declared(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[LanguageMatch(), ResponseLength()])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hallo, wo ist meine Bestellung bitte?"}])
    telemetry.spans(), telemetry.logs(), telemetry.metrics()

    undeclared_attrs = sorted(
        k for k in emitted_names["attributes"]
        if not semconv.is_declared_attribute(k) and k not in SDK_KEYS and not k.startswith(USER_KEYS_PREFIX)
    )
    undeclared_metrics = sorted(emitted_names["metrics"] - semconv.METRIC_NAMES)
    undeclared_events = sorted(emitted_names["events"] - semconv.EVENT_NAMES - {"exception"})
    assert emitted_names["attributes"] and emitted_names["metrics"] and emitted_names["events"]
    assert undeclared_attrs == []
    assert undeclared_metrics == []
    assert undeclared_events == []
