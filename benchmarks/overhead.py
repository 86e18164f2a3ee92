"""Per-call client-side cost of OpenAI chat calls: micrometrics and the peers, against no instrumentation.

    python benchmarks/overhead.py [--quick] [--rounds N] [--only PEER ...] [--json out.json]

Each mode runs in its own process (the peers in their own venvs, see environments.py),
the processes interleaved over several rounds; medians over rounds are reported. Inside a
process, blocks of calls alternate between the client uninstrumented and instrumented
(``instrument()`` / ``uninstrument()`` between blocks), so every added cost is a paired
difference against the same client, same venv, same minute of a shared machine. Through an
in-process transport (workload.py), per block:

* ``call``: caller-visible µs per non-streamed call in a tight loop (our evaluation
  worker, when it has work, competes for the GIL and shows up here);
* ``call_thread_cpu``: CPU µs per call of the calling thread alone (the request path);
* ``call_cpu``: CPU µs per call of all threads, after draining our evaluation worker and
  the batch span processor (evaluation and export included);
* ``stream*``: the same per streamed call of 50 content chunks (added / 50 = per chunk);
* the ``micrometrics-litellm`` row makes the same calls through ``litellm.completion`` (LiteLLM's OpenAI
  route, on the same client): its baseline is LiteLLM alone, its added cost ours over LiteLLM;
* ``load_*``: median, mean and p90 caller-visible latency with 8 concurrent callers and a
  transport answering after 20 ms (the GIL is shared by the callers and our worker: waiting
  for it after the provider answered is part of the latency), and CPU per call.
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
from workload import STREAM_CHUNKS, publish  # noqa: E402

#: Per process: warm-up calls; pairs of (uninstrumented, instrumented) blocks and calls per block,
#: for non-streamed calls, streamed calls, and the 8-caller load (calls per caller per block).
FULL = dict(warmup=200, pairs=10, block=120, stream_pairs=8, stream_block=10, load_pairs=5, load_block=12)
QUICK = dict(warmup=100, pairs=4, block=80, stream_pairs=3, stream_block=8, load_pairs=2, load_block=6)
LOAD_THREADS = 8
LOAD_DELAY_S = 0.020
#: Untimed calls after each switch (fresh runtime, caches, worker thread).
SETTLE = 3


# ---- one mode, in its own process -----------------------------------------------------------


def _load_block(chat: Any, clients: list[Any], calls: int) -> list[float]:
    """One thread per client, ``calls`` each, all at once: the caller-visible latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(clients))

    def caller(cl: Any) -> None:
        mine = []
        start.wait()
        for _ in range(calls):
            t0 = time.perf_counter()
            chat(cl)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller, args=(cl,)) for cl in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def measure(mode: str, sizes: dict[str, int]) -> dict[str, Any]:
    """Alternate uninstrumented and instrumented blocks; per figure, the median paired difference."""
    import gc
    import logging

    import workload as w

    logging.disable(logging.WARNING)  # re-instrumenting re-creates instruments: the SDK warns
    sink = w.Sink()
    switch = w.Switch(mode, sink)
    out: dict[str, Any] = {"mode": mode, "versions": w.versions(mode), "python": sys.version.split()[0]}
    c = w.client(w.Transport())
    slow = w.Transport(delay_s=LOAD_DELAY_S)
    clients = [w.client(slow) for _ in range(LOAD_THREADS)]
    chat, chat_streamed = w.calls(mode)

    switch.on()
    assert len(chat(c).choices[0].message.content) > 250
    assert chat_streamed(c) >= w.STREAM_CHUNKS
    switch.flush()
    spans_before = sink.spans.count
    assert spans_before >= 2 or mode == "none", f"{mode} exported no span"
    for state in ("on", "off"):
        switch.set(state)
        for _ in range(sizes["warmup"]):
            chat(c)
        for _ in range(max(1, sizes["warmup"] // 10)):
            chat_streamed(c)
    switch.flush()
    gc.collect()

    samples: dict[str, dict[str, list[float]]] = {}

    def add(figure: str, state: str, value: float) -> None:
        samples.setdefault(figure, {"on": [], "off": []})[state].append(value)

    def settle(state: str, fn: Any) -> None:
        switch.set(state)
        for _ in range(SETTLE):
            fn(c)
        switch.flush()

    for kind, fn, pairs, n in (("call", chat, sizes["pairs"], sizes["block"]), ("stream", chat_streamed, sizes["stream_pairs"], sizes["stream_block"])):
        for i in range(pairs):
            for state in ("off", "on") if i % 2 == 0 else ("on", "off"):
                settle(state, fn)
                cpu0, t0, c0 = time.process_time(), time.perf_counter(), time.thread_time()
                for _ in range(n):
                    fn(c)
                wall, thread = time.perf_counter() - t0, time.thread_time() - c0
                switch.flush()  # the evaluation worker and the exporter finish their share
                cpu = time.process_time() - cpu0
                add(kind, state, wall / n)
                add(f"{kind}_thread_cpu", state, thread / n)
                add(f"{kind}_cpu", state, cpu / n)

    for i in range(sizes["load_pairs"]):
        for state in ("off", "on") if i % 2 == 0 else ("on", "off"):
            switch.set(state)
            for cl in clients:
                chat(cl)
            switch.flush()
            cpu0 = time.process_time()
            latencies = _load_block(chat, clients, sizes["load_block"])
            switch.flush()
            cpu = time.process_time() - cpu0
            add("load_latency", state, statistics.median(latencies))
            add("load_latency_mean", state, statistics.fmean(latencies))
            add("load_latency_p90", state, statistics.quantiles(latencies, n=10)[-1])
            add("load_cpu", state, cpu / len(latencies))

    switch.set("on")
    out["dropped"] = switch.dropped
    switch.off()
    out["spans"] = sink.spans.count
    for figure, by in samples.items():
        on, off = by["on"], by["off"]
        out[figure] = statistics.median(on) * 1e6
        out[f"{figure}_base"] = statistics.median(off) * 1e6
        out[f"{figure}_added"] = statistics.median(a - b for a, b in zip(on, off)) * 1e6
    return out


# ---- orchestration ---------------------------------------------------------------------------

FIGURES = ("call", "call_thread_cpu", "call_cpu", "stream", "stream_thread_cpu", "stream_cpu", "load_latency", "load_latency_mean", "load_latency_p90", "load_cpu")


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
            got = samples[(env.name, mode)][-1]
            log(f"  round {r + 1}/{rounds} {env.name:18} {mode:24} {time.time() - t0:5.1f}s  +{got['call_added']:7.1f} µs/call (uninstrumented {got['call_base']:7.1f})")
    results = []
    for (env_name, mode), got in samples.items():
        row: dict[str, Any] = {"env": env_name, "mode": mode, "versions": got[0]["versions"], "python": got[0]["python"], "rounds": len(got)}
        for f in FIGURES:
            for suffix in ("", "_base", "_added"):
                row[f + suffix] = statistics.median(g[f + suffix] for g in got)
            row[f + "_added_rounds"] = [round(g[f + "_added"], 2) for g in got]
        row["dropped"] = max(g["dropped"] for g in got)
        results.append(row)
    return {"rounds": rounds, "quick": quick, "sizes": QUICK if quick else FULL, "notes": notes, "results": results}


def added(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per instrumented mode: what it adds over the uninstrumented client of the same process."""
    rows = []
    for r in data["results"]:
        rows.append(
            {
                "env": r["env"],
                "mode": r["mode"],
                "versions": r["versions"],
                "call": r["call_added"],
                "call_thread_cpu": r["call_thread_cpu_added"],
                "cpu": r["call_cpu_added"],
                "chunk": r["stream_added"] / STREAM_CHUNKS,
                "chunk_thread_cpu": r["stream_thread_cpu_added"] / STREAM_CHUNKS,
                "stream_cpu_chunk": r["stream_cpu_added"] / STREAM_CHUNKS,
                "load_latency": r["load_latency_added"],
                "load_latency_mean": r["load_latency_mean_added"],
                "load_latency_p90": r["load_latency_p90_added"],
                "load_latency_rounds": r["load_latency_added_rounds"],
                "load_cpu": r["load_cpu_added"],
                "dropped": r["dropped"],
                "base_call": r["call_base"],
                "base_stream": r["stream_base"],
                "base_load": r["load_latency_base"],
                "call_rounds": r["call_added_rounds"],
                "call_thread_cpu_rounds": r["call_thread_cpu_added_rounds"],
            }
        )
    return rows


def report(data: dict[str, Any]) -> str:
    rows = added(data)
    lines = [
        f"{'venv':18} {'mode':24} {'+call µs':>9} {'+thread':>8} {'+cpu':>8} {'+µs/chunk':>9} {'+thr/chunk':>10} {'+lat@8':>8} {'+mean@8':>8} {'+p90@8':>9} {'+cpu@8':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r['env']:18} {r['mode']:24} {r['call']:9.1f} {r['call_thread_cpu']:8.1f} {r['cpu']:8.1f} {r['chunk']:9.2f} {r['chunk_thread_cpu']:10.2f} "
            f"{r['load_latency']:8.1f} {r['load_latency_mean']:8.1f} {r['load_latency_p90']:9.1f} {r['load_cpu']:8.1f}"
        )
    for r in rows:
        ratio = (r["base_call"] + r["call"]) / r["base_call"] if r["base_call"] > 0 else float("nan")
        lines.append(f"  uninstrumented in {r['env']}/{r['mode']}: {r['base_call']:.1f} µs/call ({ratio:.3f}x instrumented), {r['base_stream']:.1f} µs/streamed call, "
                     f"openai {r['versions']['openai']}{', litellm ' + r['versions']['litellm'] if 'litellm' in r['versions'] else ''}; +call by round {r['call_rounds']}")
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
    return publish(data, args.json, report)


if __name__ == "__main__":
    sys.exit(main())
