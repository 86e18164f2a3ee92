"""What sending micro-metric results to Datadog's evaluation API costs: the enqueue, and the caller's latency
while the evaluation intake is live, out of service (503) or down (connections refused).

Each scenario runs in its own process: the demo LLM server, ``exporter="datadog"`` agentless with
spans, metrics and logs to a live loopback OTLP receiver, and the evaluations to a loopback intake
(examples/datadog/eval_intake.py) in the scenario's state, or turned off (``off``). Chat calls are
timed for a fixed window after a warm-up; the ratios are over the first ``off``, which runs again last
(their spread is the noise of the machine).

    .venv/bin/python benchmarks/datadog_evaluations.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("off", "live", "unavailable", "down")


def enqueue_cost(n: int = 100_000) -> float:
    """µs per call of ``DatadogEvaluations.submit`` with two results (what the emitter adds per call)."""
    from opentelemetry.sdk.trace import TracerProvider

    from micrometrics.export import datadog_evaluations as dde
    from micrometrics.metric import Result
    from micrometrics.metrics import LanguageMatch, ResponseLength

    span = TracerProvider().get_tracer("bench").start_span("chat")
    call = types.SimpleNamespace(span=span)
    results = [
        (LanguageMatch(), Result(label="mismatch", score=0.01, passed=False, explanation="expected de"), 0.001),
        (ResponseLength(), Result(label="pass", passed=True), 0.0),
    ]
    target = dde.target(agentless=True, site="datadoghq.com", api_key="k", base="http://127.0.0.1:9")
    sender = dde.DatadogEvaluations(target, capacity=10 * n, interval_s=3600, batch=10 * n)  # never sends here
    start = time.perf_counter()
    for _ in range(n):
        sender.submit(call, results)
    return (time.perf_counter() - start) / n * 1e6


def run_scenario(scenario: str, seconds: float) -> dict:
    sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "examples" / "datadog"), str(ROOT / "tests" / "backends")]
    import os

    import openai
    from demo_server import DemoServer
    from eval_intake import EvalIntake
    from otlp_receiver import OtlpReceiver

    import micrometrics

    os.environ["DD_API_KEY"] = "bench-key"
    intake = EvalIntake()
    if scenario != "down":
        intake.start()
        if scenario == "unavailable":
            intake.set_mode("unavailable")
    with DemoServer() as server, OtlpReceiver("http/protobuf") as otlp:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-bench", max_retries=0)
        messages = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung bitte"}]
        handle = micrometrics.instrument(
            exporter="datadog", datadog_agentless=True, endpoint=otlp.endpoint, service_name="bench",
            datadog_evaluations=False if scenario == "off" else intake.url,
        )
        for _ in range(20):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        time.sleep(1.5)  # the evaluation worker has tried (and, down, failed) at least once
        latencies = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            latencies.append((time.perf_counter() - t) * 1000)
        handle.force_flush(3.0)
        spans = len(otlp.spans())
        micrometrics.uninstrument(2.0)
    intake.stop()
    latencies.sort()
    return {
        "scenario": scenario, "calls": len(latencies), "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1], "spans_received": spans,
        "evaluations_accepted": len(intake.metrics()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--scenario", choices=SCENARIOS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.seconds)))
        return
    print(f"enqueue (DatadogEvaluations.submit, 2 results): {enqueue_cost():.2f} µs per call")
    rows = []
    # "off" first and last: on a shared machine the spread between the two is the noise floor.
    for scenario in (*SCENARIOS, "off"):
        out = subprocess.run(
            [sys.executable, __file__, "--scenario", scenario, "--seconds", str(args.seconds)],
            capture_output=True, text=True, check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["p50_ms"]
    print("| evaluation intake | calls | p50 ms | p99 ms | p50 / off | spans received | evaluations accepted |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['calls']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['p50_ms'] / base:.2f} "
            f"| {r['spans_received']} | {r['evaluations_accepted']} |"
        )


if __name__ == "__main__":
    main()
