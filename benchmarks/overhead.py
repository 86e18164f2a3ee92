"""Per-call client-side cost of OpenAI chat calls: uninstrumented, micrometrics, and the peers.

    python benchmarks/overhead.py [--quick] [--rounds N] [--json out.json]

Each mode runs in its own process (the peers in their own venvs, see environments.py),
the processes interleaved over several rounds; medians over rounds are reported. A
process measures, through an in-process transport (workload.py):

* ``call``: caller-visible µs per non-streamed call in a tight loop, steady state
  (our evaluation worker, when it has work, competes for the GIL and shows up here);
* ``call_thread_cpu``: CPU µs per call of the calling thread alone (the request path);
* ``cpu``: CPU µs per call of all threads, after draining our evaluation worker and
  the batch span processor (evaluation and export included);
* ``stream``: µs per streamed call of 50 content chunks (added cost / 50 = per chunk);
* ``load``: median caller-visible latency with 8 concurrent callers and a transport
  answering after 20 ms, and its client-side part (latency minus the 20 ms wait).

Added costs are always against the uninstrumented client in the same venv.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import environments  # noqa: E402
from workload import STREAM_CHUNKS  # noqa: E402

#: (warm-up calls, batches, calls per batch, streamed batches, streamed calls per batch, calls per load thread)
FULL = dict(warmup=300, batches=12, batch=150, stream_batches=10, stream_batch=12, load_calls=40)
QUICK = dict(warmup=150, batches=6, batch=100, stream_batches=5, stream_batch=8, load_calls=15)
LOAD_THREADS = 8
LOAD_DELAY_S = 0.020


# ---- one mode, in its own process -----------------------------------------------------------


def _median_per_call(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def measure(mode: str, sizes: dict[str, int]) -> dict[str, Any]:
    import gc

    import workload as w

    sink = w.Sink()
    flush = w.setup(mode, sink)
    out: dict[str, Any] = {"mode": mode, "versions": w.versions(mode), "python": sys.version.split()[0]}

    c = w.client(w.Transport())
    assert len(w.chat(c).choices[0].message.content) > 250
    assert w.chat_streamed(c) >= w.STREAM_CHUNKS
    for _ in range(sizes["warmup"]):
        w.chat(c)
    for _ in range(max(1, sizes["warmup"] // 10)):
        w.chat_streamed(c)
    flush()
    gc.collect()

    # Non-streamed tight loop: wall per call per batch, caller-thread CPU, all-thread CPU incl. draining.
    per_call, thread_cpu = [], []
    n = sizes["batch"]
    cpu0 = time.process_time()
    for _ in range(sizes["batches"]):
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(n):
            w.chat(c)
        per_call.append((time.perf_counter() - t0) / n)
        thread_cpu.append((time.thread_time() - c0) / n)
    flush()
    calls = sizes["batches"] * n
    out["call"] = _median_per_call(per_call)
    out["call_thread_cpu"] = _median_per_call(thread_cpu)
    out["cpu"] = (time.process_time() - cpu0) / calls * 1e6

    # Streamed tight loop.
    per_stream, stream_thread = [], []
    n = sizes["stream_batch"]
    cpu0 = time.process_time()
    for _ in range(sizes["stream_batches"]):
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(n):
            w.chat_streamed(c)
        per_stream.append((time.perf_counter() - t0) / n)
        stream_thread.append((time.thread_time() - c0) / n)
    flush()
    out["stream"] = _median_per_call(per_stream)
    out["stream_thread_cpu"] = _median_per_call(stream_thread)
    out["stream_cpu"] = (time.process_time() - cpu0) / (sizes["stream_batches"] * n) * 1e6

    # Realistic load: 8 callers, the provider answers after 20 ms.
    slow = w.Transport(delay_s=LOAD_DELAY_S)
    clients = [w.client(slow) for _ in range(LOAD_THREADS)]
    for cl in clients:
        w.chat(cl)
    flush()
    latencies: list[float] = []
    client_side: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(LOAD_THREADS)

    def caller(cl: Any) -> None:
        mine, mine_client = [], []
        start.wait()
        for _ in range(sizes["load_calls"]):
            waited = slow.waited
            t0 = time.perf_counter()
            w.chat(cl)
            took = time.perf_counter() - t0
            mine.append(took)
            mine_client.append(took - (slow.waited - waited))
        with lock:
            latencies.extend(mine)
            client_side.extend(mine_client)

    cpu0 = time.process_time()
    threads = [threading.Thread(target=caller, args=(cl,)) for cl in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flush()
    out["load_latency"] = statistics.median(latencies) * 1e6
    out["load_client"] = statistics.median(client_side) * 1e6
    out["load_client_p90"] = statistics.quantiles(client_side, n=10)[-1] * 1e6
    out["load_cpu"] = (time.process_time() - cpu0) / len(latencies) * 1e6

    from micrometrics import core

    runtime = core.current()
    out["dropped"] = runtime.worker.dropped if runtime is not None else 0
    out["spans"] = sink.spans.count
    return out


# ---- orchestration ---------------------------------------------------------------------------

FIGURES = ("call", "call_thread_cpu", "cpu", "stream", "stream_thread_cpu", "stream_cpu", "load_latency", "load_client", "load_client_p90", "load_cpu", "dropped", "spans")


def run_one(python: str, mode: str, quick: bool) -> dict[str, Any]:
    cmd = [python, str(Path(__file__).resolve()), "--worker", mode] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(HERE), env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode != 0:
        raise RuntimeError(f"{mode} in {python} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(rounds: int, quick: bool, latest: bool = False, only: list[str] | None = None, log=print) -> dict[str, Any]:
    envs = [environments.ours()] + environments.peer_environments()
    if only:
        envs = [e for e in envs if e.name in only or e.name == "micrometrics"]
    notes: dict[str, str] = {}
    for env in envs:
        if env.name != "micrometrics":
            environments.prepare(env, latest=latest, log=log)
        if env.note:
            notes[env.name] = env.note
    jobs = [(env, mode) for env in envs for mode in env.modes]
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {(e.name, m): [] for e, m in jobs}
    rng = random.Random(7)
    for r in range(rounds):
        order = jobs[:]
        rng.shuffle(order)
        for env, mode in order:
            t0 = time.time()
            samples[(env.name, mode)].append(run_one(env.python, mode, quick))
            log(f"  round {r + 1}/{rounds} {env.name:18} {mode:24} {time.time() - t0:5.1f}s  call {samples[(env.name, mode)][-1]['call']:8.1f} µs")
    results = []
    for (env_name, mode), got in samples.items():
        row = {"env": env_name, "mode": mode, "versions": got[0]["versions"], "python": got[0]["python"], "rounds": len(got)}
        for f in FIGURES:
            row[f] = statistics.median(g[f] for g in got)
        results.append(row)
    return {"rounds": rounds, "quick": quick, "sizes": QUICK if quick else FULL, "notes": notes, "results": results}


def added(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for each instrumented mode: costs minus the same venv's uninstrumented figures."""
    base = {r["env"]: r for r in data["results"] if r["mode"] == "none"}
    rows = []
    for r in data["results"]:
        if r["mode"] == "none":
            continue
        b = base[r["env"]]
        rows.append(
            {
                "env": r["env"],
                "mode": r["mode"],
                "versions": r["versions"],
                "call": r["call"] - b["call"],
                "call_thread_cpu": r["call_thread_cpu"] - b["call_thread_cpu"],
                "cpu": r["cpu"] - b["cpu"],
                "chunk": (r["stream"] - b["stream"]) / STREAM_CHUNKS,
                "chunk_thread_cpu": (r["stream_thread_cpu"] - b["stream_thread_cpu"]) / STREAM_CHUNKS,
                "stream_cpu_chunk": (r["stream_cpu"] - b["stream_cpu"]) / STREAM_CHUNKS,
                "load_latency": r["load_latency"] - b["load_latency"],
                "load_client": r["load_client"] - b["load_client"],
                "load_cpu": r["load_cpu"] - b["load_cpu"],
                "dropped": r["dropped"],
                "base_call": b["call"],
                "base_stream": b["stream"],
            }
        )
    return rows


def report(data: dict[str, Any]) -> str:
    rows = added(data)
    lines = [
        f"{'venv':18} {'mode':24} {'+call µs':>9} {'+thread':>8} {'+cpu':>8} {'+µs/chunk':>9} {'+lat@8':>8} {'+client@8':>9} {'+cpu@8':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r['env']:18} {r['mode']:24} {r['call']:9.1f} {r['call_thread_cpu']:8.1f} {r['cpu']:8.1f} {r['chunk']:9.2f} "
            f"{r['load_latency']:8.1f} {r['load_client']:9.1f} {r['load_cpu']:8.1f}"
        )
    for r in data["results"]:
        if r["mode"] == "none":
            lines.append(f"baseline in {r['env']}: {r['call']:.1f} µs/call, {r['stream']:.1f} µs/streamed call, openai {r['versions']['openai']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", metavar="MODE", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds (a smoke run, noisy)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 2)")
    ap.add_argument("--only", nargs="*", help="peer venvs to include (default: all)")
    ap.add_argument("--latest", action="store_true", help="newest peer releases instead of the pinned ones")
    ap.add_argument("--json", type=Path, help="write the raw medians here")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, QUICK if args.quick else FULL)))
        return 0
    data = run(args.rounds or (2 if args.quick else 5), args.quick, latest=args.latest, only=args.only, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    print(report(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
