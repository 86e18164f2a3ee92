"""Resident memory over 100,000 instrumented calls with the default metrics, the exporter live and down.

    python benchmarks/memory.py [--quick] [--calls N] [--json out.json]

Each scenario runs in a fresh process: ``micrometrics.instrument(exporter="otlp", endpoint=...)``
exactly as a user would, default metrics, OpenAI chat calls through the in-process transport
(distinct answers in seven languages and distinct user turns, so no cache can hold them all),
the provider answering after 1 ms.
"live": the OTLP/HTTP endpoint is a loopback receiver in another process that answers 200;
"down": the endpoint is a closed loopback port (every export fails). RSS (the application's
plus its evaluator process's, see README "Where monitors run") is sampled after
1,000 calls and then regularly; the target is RSS after 100,000 within 50 MB of after 1,000.
"""

from __future__ import annotations

import argparse
import gc
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload as w  # noqa: E402

TARGET_MB = 50.0
#: The provider answers after 1 ms (a real one takes 100+): the callers are I/O-bound, as in an
#: application, so the evaluation thread keeps up; a caller that never waits starves it of the GIL
#: and fills the queue (bounded by max_queue; what a full queue weighs is in evaluator.py).
PROVIDER_DELAY_S = 0.001


def evaluator_rss_mb() -> float:
    """Resident memory of micrometrics' evaluator process (0 when monitors run in-thread)."""
    from micrometrics import evaluator_process

    pid = evaluator_process.evaluator_pid()
    if pid is None:
        return 0.0
    try:
        return rss_mb(f"/proc/{pid}/status")
    except OSError:
        return 0.0


def rss_mb(status: str = "/proc/self/status") -> float:
    with open(status) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource  # pragma: no cover - not Linux: peak instead of current

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a loopback OTLP/HTTP receiver that accepts everything ------------------------------------


class _Accept(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        _Accept.received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve(port_file: str) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    Path(port_file).write_text(str(server.server_address[1]))
    # Bounded: stops by itself after an hour at the latest.
    threading.Timer(3600, server.shutdown).start()
    server.serve_forever()


# ---- one scenario, in its own process ------------------------------------------------------------


class VariedTransport(w.Transport):
    """Answers with a different response each call (the same sequence in every run)."""

    def __init__(self, count: int = 500, delay_s: float = 0.0) -> None:
        super().__init__(delay_s=delay_s)
        body = json.loads(w.completion_body())
        self.bodies = []
        for _, text in w.responses(count):
            body["choices"][0]["message"]["content"] = text
            self.bodies.append(json.dumps(body).encode())
        self.i = 0

    def handle(self, request: Any) -> Any:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.i += 1
        return self._httpx.Response(200, content=self.bodies[self.i % len(self.bodies)], headers={"content-type": "application/json"})


def measure(endpoint: str, calls: int, sample_every: int) -> dict[str, Any]:
    import logging

    import micrometrics

    logging.disable(logging.WARNING)  # the exporter-down scenario would log every failed export
    handle = micrometrics.instrument(exporter="otlp", endpoint=endpoint, instrumentations=["openai"], service_name="memory-bench")
    transport = VariedTransport(delay_s=PROVIDER_DELAY_S)
    client = w.client(transport)
    langs = list(w.QUESTIONS)
    samples: list[tuple[int, float]] = []
    pending: list[tuple[int, int]] = []  # calls whose monitors wait in the queue, when sampled
    t0 = time.perf_counter()
    for i in range(1, calls + 1):
        lang = langs[i % len(langs)]
        client.chat.completions.create(model=w.MODEL, messages=[{"role": "user", "content": f"{w.QUESTIONS[lang]} (Ticket {i})"}])
        if i == 1000 or i % sample_every == 0:
            gc.collect()
            samples.append((i, rss_mb() + evaluator_rss_mb()))  # the application and its evaluator process
            pending.append((i, handle.runtime.worker.pending))
    elapsed = time.perf_counter() - t0
    worker = handle.runtime.worker
    out = {
        "calls": calls,
        "seconds": elapsed,
        "samples": samples,
        "rss_1000": dict(samples)[1000],
        "rss_end": samples[-1][1],
        "pending_at_end": worker.pending,
        "pending": pending,
        "monitors_dropped": worker.dropped,
    }
    out["growth"] = out["rss_end"] - out["rss_1000"]
    handle.shutdown(timeout_s=5)
    return out


def run_scenario(scenario: str, calls: int, sample_every: int) -> dict[str, Any]:
    receiver = None
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"micrometrics-bench-receiver-{os.getpid()}"
    try:
        if scenario == "live":
            receiver = subprocess.Popen([sys.executable, __file__, "--receiver", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(200):
                if tmp.exists() and tmp.read_text():
                    break
                time.sleep(0.05)
            port = int(tmp.read_text())
        else:
            port = free_port()  # nothing listens there
        cmd = [sys.executable, __file__, "--worker", f"http://127.0.0.1:{port}", "--calls", str(calls), "--every", str(sample_every)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(HERE))
        if done.returncode != 0:
            raise RuntimeError(f"memory scenario {scenario} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["scenario"] = scenario
        return result
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(10)
        tmp.unlink(missing_ok=True)


def run(calls: int, log=print) -> dict[str, Any]:
    every = max(1000, calls // 10)
    out = {}
    for scenario in ("live", "down"):
        log(f"  memory: {calls} calls, exporter {scenario} ...")
        out[scenario] = run_scenario(scenario, calls, every)
        log(f"  memory: exporter {scenario}: {out[scenario]['rss_1000']:.1f} MB after 1,000 calls, {out[scenario]['rss_end']:.1f} MB after {calls:,} ({out[scenario]['seconds']:.0f}s)")
    return out


def report(data: dict[str, Any]) -> str:
    lines = []
    for scenario, r in data.items():
        ok = "met" if r["growth"] <= TARGET_MB else "NOT met"
        curve = ", ".join(f"{n // 1000}k: {mb:.0f}" for n, mb in r["samples"])
        lines.append(f"exporter {scenario}: RSS {r['rss_1000']:.1f} MB after 1,000 calls -> {r['rss_end']:.1f} MB after {r['calls']:,} (+{r['growth']:.1f} MB, target <= {TARGET_MB:.0f}: {ok}); MB by calls: {curve}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 calls instead of 100,000")
    ap.add_argument("--calls", type=int)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--every", type=int, default=10_000, help=argparse.SUPPRESS)
    ap.add_argument("--receiver", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.receiver:
        serve(args.receiver)
        return 0
    calls = args.calls or (10_000 if args.quick else 100_000)
    if args.worker:
        print(json.dumps(measure(args.worker, calls, args.every)))
        return 0
    data = run(calls, log=lambda m: print(m, file=sys.stderr))
    return w.publish(data, args.json, report)


if __name__ == "__main__":
    sys.exit(main())
