"""Micro metrics in Datadog LLM Observability's Evaluations, joined to their spans: what arrives, as text.

    pip install -e ".[openai]"      # from the repository root
    python examples/datadog/evaluations.py

Offline by design: a German customer's fifth turn is answered in English by the local demo
server, and a loopback server stands in for Datadog (OTLP intake and evaluation API), so the
walkthrough prints the exact ``POST /api/intake/llm-obs/v2/eval-metric`` that Datadog would get:
``language_match`` = ``mismatch``, joined to the chat span by its ids as decimal strings, with
``source:otel``. Against your Datadog account, drop ``endpoint=`` and ``datadog_evaluations=``
and set DD_API_KEY and DD_SITE (see README.md here).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/, for _demo
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo import model, openai_client, require  # noqa: E402

require("openai")

import micrometrics  # noqa: E402
from eval_intake import EvalIntake  # noqa: E402

TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Die Bestellnummer ist 4711, bitte prüfen Sie den Status.",
    "Danke. Wann kommt das Paket denn an?",
    "Kann ich die Lieferadresse noch ändern?",
    "Und wie lange dauert die Rücksendung, wenn mir etwas nicht passt?",
]
DEMO_KEY = "demo-api-key-not-a-real-one"

# The walkthrough talks to the loopback Datadog below, whatever the environment says about a real one.
for name in ("DD_SITE", "DD_LLMOBS_ML_APP", "DD_TRACE_AGENT_URL", "DD_AGENT_HOST"):
    os.environ.pop(name, None)
os.environ["DD_API_KEY"] = DEMO_KEY
os.environ.setdefault("DD_ENV", "demo")
os.environ.setdefault("DD_VERSION", "1.4.2")

with EvalIntake() as datadog:
    # Agentless, as to https://otlp.datadoghq.com and https://api.datadoghq.com: here both are the loopback server.
    handle = micrometrics.instrument(
        service_name="support-bot", exporter="datadog", datadog_agentless=True,
        endpoint=datadog.url, datadog_evaluations=datadog.url,
    )
    with openai_client() as client:
        messages = [{"role": "system", "content": "You are the support assistant of an online shop."}]
        messages += [{"role": "user", "content": turn} for turn in TURNS]
        answer = client.chat.completions.create(model=model(), messages=messages).choices[0].message.content
    print(f"turn 5, the customer wrote German and read: {answer}\n")
    handle.shutdown()  # sends what is queued: spans, metrics, logs, and the evaluations

    print(f"OTLP requests Datadog's intake took: {dict(sorted(datadog.otlp.items()))}\n")
    for request in datadog.received:
        shown = {k: ("***" if k == "dd-api-key" else v) for k, v in request.headers.items() if k in ("dd-api-key", "content-type")}
        print(f"POST {request.path}  -> {request.status}")
        print(f"headers: {shown}")
        print(json.dumps(request.json, indent=2, ensure_ascii=False))
        for metric in request.json["data"]["attributes"]["metrics"]:
            span = metric["join_on"]["span"]
            value = metric.get("categorical_value", metric.get("score_value"))
            print(
                f"  {metric['label']} = {value!r} on span {int(span['span_id']):016x} of trace {int(span['trace_id']):032x}"
                " (the ids LLM Observability shows, in hex)"
            )
