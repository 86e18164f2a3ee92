"""User-visible latency of a chat call while the telemetry backend is down, hanging or failing, vs. live.

Each scenario runs in its own process (same demo LLM server, same client, same preset):

* ``live``  an OTLP receiver that accepts everything;
* ``down``  nothing listens on the endpoint (connection refused);
* ``hang``  the receiver accepts the connection and never answers;
* ``fail``  the receiver answers every export with HTTP 500 / gRPC INTERNAL.

After a warm-up, chat calls are timed for a fixed wall-clock window while the batch processors
and the metric reader keep trying to export (their schedule is shortened to 200 ms / 1 s so that
attempts happen inside the window). Scenarios are
interleaved over rounds, and the ratios are over ``live`` of the same run.

    .venv/bin/python benchmarks/backend_down.py [--preset datadog|jaeger] [--protocol http/protobuf|grpc]
        [--seconds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("live", "down", "hang", "fail")


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def run_scenario(scenario: str, preset: str, protocol: str, seconds: float) -> dict:
    """One process, one scenario: returns latencies (ms) and memory."""
    sys.path.insert(0, str(ROOT / "examples"))
    sys.path.insert(0, str(ROOT / "tests" / "backends"))
    import openai
    from demo_server import DemoServer
    from otlp_receiver import OtlpReceiver

    import micrometrics

    receiver = OtlpReceiver(protocol)
    if scenario != "down":
        receiver.set_mode("ok" if scenario == "live" else scenario)
        receiver.start()
    with DemoServer() as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-bench", max_retries=0)
        messages = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung bitte"}]
        handle = micrometrics.instrument(exporter=preset, endpoint=receiver.endpoint, protocol=protocol, service_name="bench")
        for _ in range(20):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        # Let the batch processors make their first export attempt (the schedule is 200 ms here).
        time.sleep(1.0)
        rss_before = rss_kib()
        latencies = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            latencies.append((time.perf_counter() - t0) * 1000)
        rss_after = rss_kib()
        if scenario == "live":
            handle.force_flush()
    return {
        "scenario": scenario,
        "latencies_ms": latencies,
        "rss_growth_kib": rss_after - rss_before,
        "spans_received": len(receiver.spans()) if scenario == "live" else 0,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="datadog", choices=("datadog", "jaeger"))
    parser.add_argument("--protocol", default="http/protobuf", choices=("http/protobuf", "grpc"))
    parser.add_argument("--seconds", type=float, default=4.0, help="timed window per scenario and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = run_scenario(args.child, args.preset, args.protocol, args.seconds)
        print(json.dumps(result), flush=True)
        # The measurement is done: do not wait for exporters that cannot reach their backend.
        os._exit(0)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DD_"))}
    # The SDK's schedule (5 s) would let a short window pass without any export attempt.
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    env["OTEL_BLRP_SCHEDULE_DELAY"] = "200"
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "1000"
    collected: dict[str, list[dict]] = {s: [] for s in SCENARIOS}
    for round_ in range(args.rounds):
        for scenario in SCENARIOS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", scenario, "--preset", args.preset, "--protocol", args.protocol,
                 "--seconds", str(args.seconds)],
                env=env, capture_output=True, text=True, timeout=120,
            )
            if out.returncode != 0:
                sys.exit(f"scenario {scenario} failed:\n{out.stderr[-3000:]}")
            collected[scenario].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {round_ + 1}/{args.rounds}: {scenario} done", file=sys.stderr)

    live = [x for r in collected["live"] for x in r["latencies_ms"]]
    live_p50, live_p95 = statistics.median(live), percentile(live, 0.95)
    print(f"preset={args.preset} protocol={args.protocol} window={args.seconds:.0f}s x {args.rounds} rounds, chat calls to the demo server")
    print(f"{'backend':8} {'calls':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50/live':>9} {'p95/live':>9} {'RSS +KiB':>9}")
    for scenario in SCENARIOS:
        runs = collected[scenario]
        lat = [x for r in runs for x in r["latencies_ms"]]
        p50, p95 = statistics.median(lat), percentile(lat, 0.95)
        rss = max(r["rss_growth_kib"] for r in runs)
        print(
            f"{scenario:8} {len(lat):6d} {p50:8.2f} {p95:8.2f} {percentile(lat, 0.99):8.2f} {max(lat):8.1f} "
            f"{p50 / live_p50:9.2f} {p95 / live_p95:9.2f} {rss:9d}"
        )
    print("live runs exported spans:", [r["spans_received"] for r in collected["live"]])


if __name__ == "__main__":
    main()
