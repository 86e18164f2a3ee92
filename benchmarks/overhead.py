"""Per-call client-side cost of OpenAI chat calls: micrometrics and the peers, against no instrumentation.

    python benchmarks/overhead.py [--quick] [--method paired|process|both] [--rounds N] [--only PEER ...] [--json out.json]

Two methods, published side by side (``--method both``, the default). Both run every mode in its
own process (the peers in their own venvs, see environments.py), the processes interleaved over
several rounds; medians over rounds are reported.

*paired*: inside a process, blocks of calls alternate between the client uninstrumented and
instrumented (``instrument()`` / ``uninstrument()`` between blocks), so every added cost is a paired
difference against the same client, same venv, same minute of a shared machine.

*process* (what a user sees): one process instruments once at start-up, as a user would (before
the client exists and before any call: ``micrometrics.instrument(...)``, a peer's
``OpenAIInstrumentor().instrument(...)`` as its docs say) and never uninstruments; another
process of the same venv never instruments (it does not even import the instrumentation). The
two run next to each other in every round, their order alternating from round to round, so the
machine's drift hits both; added cost = instrumented process minus uninstrumented process of the
same venv and round, median over rounds. It also counts what an instrumentation does at import /
instrument time and leaves behind (wrappers that stay, imports, hooks), which toggling hides.
In the micrometrics venv an uninstrumented process is compared with another uninstrumented one
too (the ``none`` row): the process-to-process noise floor.

Through an in-process transport (workload.py), per block of calls:

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

JSON (``--json``, and ``results["overhead"]`` in run_all.py's RESULTS.json)::

    {"method": "both", "quick": bool, "notes": {venv: note},
     "rounds": N, "sizes": {...}, "results": [row, ...],        # the paired method (empty if not run)
     "process": {"rounds": N, "sizes": {...}, "results": [row, ...]}}   # the per-process method (absent if not run)

Each row (both methods): ``env``, ``mode``, ``versions``, ``python``, ``rounds``, ``dropped`` and,
per figure above, ``<figure>`` (instrumented, µs), ``<figure>_base`` (uninstrumented),
``<figure>_added`` (median over rounds of the per-round added cost) and ``<figure>_added_rounds``.
``added(data, "paired" | "process")`` turns either into the per-mode added costs.
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
#: (Sized so that both methods, 13 paired workers and 15 per-process workers a round, take ~15 minutes in 5 rounds on 2 cores.)
FULL = dict(warmup=150, pairs=7, block=100, stream_pairs=5, stream_block=10, load_pairs=4, load_block=10)
QUICK = dict(warmup=60, pairs=3, block=60, stream_pairs=2, stream_block=6, load_pairs=2, load_block=5)
LOAD_THREADS = 8
LOAD_DELAY_S = 0.020
#: Untimed calls after each switch (fresh runtime, caches, worker thread).
SETTLE = 3
#: The per-process method, per process (one state for good): warm-up calls, then blocks of calls
#: (the process's figure is the median over its blocks): non-streamed, streamed, the 8-caller load.
PROCESS_FULL = dict(warmup=150, blocks=5, block=100, stream_blocks=3, stream_block=8, load_blocks=3, load_block=8)
PROCESS_QUICK = dict(warmup=40, blocks=2, block=50, stream_blocks=2, stream_block=5, load_blocks=2, load_block=5)
METHODS = ("paired", "process")


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


def _timed_block(kind: str, fn: Any, c: Any, n: int, flush: Any) -> dict[str, float]:
    """``n`` calls in a row: wall, calling-thread CPU and all-threads CPU per call (s), the last after ``flush`` drained the worker and exporters."""
    cpu0, t0, c0 = time.process_time(), time.perf_counter(), time.thread_time()
    for _ in range(n):
        fn(c)
    wall, thread = time.perf_counter() - t0, time.thread_time() - c0
    flush()  # the evaluation worker and the exporter finish their share
    cpu = time.process_time() - cpu0
    return {kind: wall / n, f"{kind}_thread_cpu": thread / n, f"{kind}_cpu": cpu / n}


def _load_figures(chat: Any, clients: list[Any], calls: int, flush: Any) -> dict[str, float]:
    """One block of the 8-caller load (each client warmed first): latency median, mean, p90 and CPU per call (s)."""
    for cl in clients:
        chat(cl)
    flush()
    cpu0 = time.process_time()
    latencies = _load_block(chat, clients, calls)
    flush()
    cpu = time.process_time() - cpu0
    return {
        "load_latency": statistics.median(latencies),
        "load_latency_mean": statistics.fmean(latencies),
        "load_latency_p90": statistics.quantiles(latencies, n=10)[-1],
        "load_cpu": cpu / len(latencies),
    }


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
                for figure, value in _timed_block(kind, fn, c, n, switch.flush).items():
                    add(figure, state, value)

    for i in range(sizes["load_pairs"]):
        for state in ("off", "on") if i % 2 == 0 else ("on", "off"):
            switch.set(state)
            for figure, value in _load_figures(chat, clients, sizes["load_block"], switch.flush).items():
                add(figure, state, value)

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


def measure_fixed(mode: str, state: str, sizes: dict[str, int]) -> dict[str, Any]:
    """One state for the life of the process: ``on`` instruments at start-up as a user would, ``off`` never does.

    The figures are medians over this process's blocks; run() subtracts the ``off`` process of the
    same venv and round. ``off`` does not import the instrumentation at all (``mode`` then only says
    how the calls are made: LiteLLM's row calls through LiteLLM).
    """
    import gc
    import logging

    import workload as w

    logging.disable(logging.WARNING)
    chat, chat_streamed = w.calls(mode)  # imports nothing (LiteLLM's row: no price-map download when it is imported)
    sink = w.Sink()  # the application's OpenTelemetry SDK, set up first in both states
    flush = sink.flush
    switch = None
    if state == "on":
        # Instrumentation before the client exists and before any call, never undone.
        switch = w.Switch(mode, sink)
        switch.on()
        flush = switch.flush
    c = w.client(w.Transport())
    slow = w.Transport(delay_s=LOAD_DELAY_S)
    clients = [w.client(slow) for _ in range(LOAD_THREADS)]
    out: dict[str, Any] = {"mode": mode, "state": state, "versions": w.versions(mode), "python": sys.version.split()[0]}

    assert len(chat(c).choices[0].message.content) > 250
    assert chat_streamed(c) >= w.STREAM_CHUNKS
    flush()
    if state == "on" and mode != "none":
        assert sink.spans.count >= 2, f"{mode} exported no span"
    else:
        assert sink.spans.count == 0, f"uninstrumented {mode} exported {sink.spans.count} spans"
    for _ in range(sizes["warmup"]):
        chat(c)
    for _ in range(max(1, sizes["warmup"] // 10)):
        chat_streamed(c)
    flush()
    gc.collect()

    samples: dict[str, list[float]] = {}
    for kind, fn, blocks, n in (("call", chat, sizes["blocks"], sizes["block"]), ("stream", chat_streamed, sizes["stream_blocks"], sizes["stream_block"])):
        for _ in range(blocks):
            for _ in range(SETTLE):
                fn(c)
            flush()
            for figure, value in _timed_block(kind, fn, c, n, flush).items():
                samples.setdefault(figure, []).append(value)

    for _ in range(sizes["load_blocks"]):
        for figure, value in _load_figures(chat, clients, sizes["load_block"], flush).items():
            samples.setdefault(figure, []).append(value)

    out["dropped"] = switch.dropped if switch else 0
    flush()
    out["spans"] = sink.spans.count
    for figure, values in samples.items():
        out[figure] = statistics.median(values) * 1e6
    return out


# ---- orchestration ---------------------------------------------------------------------------

FIGURES = ("call", "call_thread_cpu", "call_cpu", "stream", "stream_thread_cpu", "stream_cpu", "load_latency", "load_latency_mean", "load_latency_p90", "load_cpu")


def run_one(python: str, mode: str, quick: bool, fixed: str | None = None) -> dict[str, Any]:
    """One worker process: the paired method, or (``fixed`` on/off) one state of the per-process method."""
    cmd = [python, str(Path(__file__).resolve()), "--worker", mode] + (["--fixed", fixed] if fixed else []) + (["--quick"] if quick else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(HERE), env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode != 0:
        raise RuntimeError(f"{mode}{' ' + fixed if fixed else ''} in {python} failed (exit code {done.returncode}):\n{done.stderr[-3000:]}\nstdout: {done.stdout[-300:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_of(mode: str) -> str:
    """The uninstrumented process a mode is compared with: the same calls, nothing instrumented."""
    import workload as w

    return w.LITELLM if mode == w.LITELLM else "none"


def process_groups(env: environments.Environment) -> list[tuple[str, list[str]]]:
    """(baseline, instrumented modes) per kind of call in ``env``; ``none`` against ``none`` in our venv (the noise floor)."""
    groups: dict[str, list[str]] = {}
    for mode in env.modes:
        if mode != "none" or env.name == "micrometrics":
            groups.setdefault(baseline_of(mode), []).append(mode)
    return list(groups.items())


def _row(env_name: str, mode: str, got: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds of one mode's figures (``got``: one dict per round with the three values per figure)."""
    row: dict[str, Any] = {"env": env_name, "mode": mode, "versions": got[0]["versions"], "python": got[0]["python"], "rounds": len(got)}
    for f in FIGURES:
        for suffix in ("", "_base", "_added"):
            row[f + suffix] = statistics.median(g[f + suffix] for g in got)
        row[f + "_added_rounds"] = [round(g[f + "_added"], 2) for g in got]
    row["dropped"] = max(g["dropped"] for g in got)
    return row


def run(rounds: int, quick: bool, latest: bool = False, only: list[str] | None = None, log=print,
        method: str = "both", process_rounds: int | None = None) -> dict[str, Any]:
    """Both methods (or one), their processes interleaved in every round: see the module docstring for the result."""
    if method not in METHODS + ("both",):
        raise ValueError(f"unknown method {method!r}; one of paired, process, both")
    methods = METHODS if method == "both" else (method,)
    envs = [environments.ours()] + environments.peer_environments()
    if only:
        envs = [e for e in envs if e.name in only or e.name == "micrometrics"]
    notes: dict[str, str] = {}
    for env in envs:
        if env.name != "micrometrics":
            environments.prepare(env, latest=latest, log=log)
        if env.note:
            notes[env.name] = env.note
    p_rounds = (process_rounds or rounds) if "process" in methods else 0
    a_rounds = rounds if "paired" in methods else 0
    jobs = [(env, mode) for env in envs for mode in env.modes]
    groups = [(env, base, modes) for env in envs for base, modes in process_groups(env)]
    paired: dict[tuple[str, str], list[dict[str, Any]]] = {(e.name, m): [] for e, m in jobs}
    fixed: dict[tuple[str, str], list[dict[str, Any]]] = {(e.name, m): [] for e, _, modes in groups for m in modes}
    rng = random.Random(7)
    for r in range(max(a_rounds, p_rounds)):
        units: list[tuple[Any, ...]] = []
        if r < a_rounds:
            units += [("paired", env, mode) for env, mode in jobs]
        if r < p_rounds:
            units += [("process", env, base, modes) for env, base, modes in groups]
        rng.shuffle(units)
        for unit in units:
            if unit[0] == "paired":
                _, env, mode = unit
                t0 = time.time()
                got = run_one(env.python, mode, quick)
                paired[(env.name, mode)].append(got)
                log(f"  round {r + 1} paired  {env.name:18} {mode:24} {time.time() - t0:5.1f}s  +{got['call_added']:7.1f} µs/call (uninstrumented {got['call_base']:7.1f})")
                continue
            _, env, base, modes = unit
            # The baseline first in even rounds, last in odd ones: A, B, ... then ..., B, A.
            order = [(base, "off")] + [(m, "on") for m in modes]
            if r % 2:
                order.reverse()
            seen: dict[tuple[str, str], dict[str, Any]] = {}
            for mode, state in order:
                t0 = time.time()
                seen[(mode, state)] = got = run_one(env.python, mode, quick, fixed=state)
                log(f"  round {r + 1} process {env.name:18} {mode + ' ' + state:24} {time.time() - t0:5.1f}s  {got['call']:7.1f} µs/call")
            off = seen[(base, "off")]
            for mode in modes:
                on = seen[(mode, "on")]
                merged = {"versions": on["versions"], "python": on["python"], "dropped": on["dropped"]}
                for f in FIGURES:
                    merged.update({f: on[f], f + "_base": off[f], f + "_added": on[f] - off[f]})
                fixed[(env.name, mode)].append(merged)
    data: dict[str, Any] = {"method": method, "quick": quick, "notes": notes, "rounds": a_rounds, "sizes": QUICK if quick else FULL,
                            "results": [_row(e, m, got) for (e, m), got in paired.items() if got]}
    if p_rounds:
        data["process"] = {"rounds": p_rounds, "sizes": PROCESS_QUICK if quick else PROCESS_FULL,
                           "results": [_row(e, m, got) for (e, m), got in fixed.items() if got]}
    return data


def added(data: dict[str, Any], method: str = "paired") -> list[dict[str, Any]]:
    """Per instrumented mode: what it adds over the uninstrumented client (same process, or same venv and round)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    source = data if method == "paired" else data.get("process", {})
    rows = []
    for r in source.get("results", []):
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
                "cpu_rounds": r["call_cpu_added_rounds"],
            }
        )
    return rows


def lightest(rows: list[dict[str, Any]], figure: str) -> dict[str, Any] | None:
    """The peer (not ours, not the control) adding the least on ``figure``."""
    import workload as w

    peers = [r for r in rows if r["mode"] in w.PEERS]
    return min(peers, key=lambda r: r[figure]) if peers else None


def _ratio(r: dict[str, Any], light: dict[str, Any] | None, figure: str) -> str:
    if r["mode"] == "none" or light is None or light[figure] <= 0:
        return "-"
    return f"{r[figure] / light[figure]:.2f}"


def report(data: dict[str, Any]) -> str:
    """Both methods' tables (ratios to the lightest peer on the same figure), then the uninstrumented figures."""
    lines: list[str] = []
    for method in METHODS:
        rows = added(data, method)
        if not rows:
            continue
        lw, lt, lc = lightest(rows, "call"), lightest(rows, "call_thread_cpu"), lightest(rows, "cpu")
        title = ("paired: instrumented and uninstrumented blocks alternating in one process" if method == "paired"
                 else "per process: instrumented at start-up for good vs a process that never instruments (same venv, same round)")
        lines += [
            f"{method.upper()} -- {title}; ratios to the lightest peer (wall {lw['mode'] if lw else '-'}, "
            f"thread {lt['mode'] if lt else '-'}, cpu {lc['mode'] if lc else '-'})",
            f"{'venv':18} {'mode':24} {'+call µs':>9} {'ratio':>6} {'+thread':>8} {'ratio':>6} {'+cpu':>8} {'ratio':>6} {'+µs/chunk':>9} {'+thr/chunk':>10} "
            f"{'+lat@8':>8} {'+mean@8':>8} {'+p90@8':>9} {'+cpu@8':>8}",
        ]
        for r in rows:
            lines.append(
                f"{r['env']:18} {r['mode']:24} {r['call']:9.1f} {_ratio(r, lw, 'call'):>6} {r['call_thread_cpu']:8.1f} {_ratio(r, lt, 'call_thread_cpu'):>6} "
                f"{r['cpu']:8.1f} {_ratio(r, lc, 'cpu'):>6} {r['chunk']:9.2f} {r['chunk_thread_cpu']:10.2f} "
                f"{r['load_latency']:8.1f} {r['load_latency_mean']:8.1f} {r['load_latency_p90']:9.1f} {r['load_cpu']:8.1f}"
            )
        for r in rows:
            ratio = (r["base_call"] + r["call"]) / r["base_call"] if r["base_call"] > 0 else float("nan")
            lines.append(f"  uninstrumented in {r['env']}/{r['mode']}: {r['base_call']:.1f} µs/call ({ratio:.3f}x instrumented), {r['base_stream']:.1f} µs/streamed call, "
                         f"openai {r['versions']['openai']}{', litellm ' + r['versions']['litellm'] if 'litellm' in r['versions'] else ''}; +call by round {r['call_rounds']}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _f(x: float, nd: int = 1) -> str:
    return f"{x:,.{nd}f}"


def _rank(r: dict[str, Any]) -> tuple:
    """Ours first, then the peers, the controls last."""
    return (r["mode"] == "none", r["env"] != "micrometrics", not r["mode"].startswith("micrometrics"), r["call"])


def table_markdown(rows: list[dict[str, Any]], names: dict[str, str], none_label: str) -> list[str]:
    """Either method's table for RESULTS.md: the added figures, each with its ratio to the lightest peer on it."""
    lw, lt, lc = lightest(rows, "call"), lightest(rows, "call_thread_cpu"), lightest(rows, "cpu")
    lines = [
        "| mode | venv | +µs/call, tight loop (wall) | ratio | +µs/call, calling thread CPU (request path) | ratio | +µs/call, all threads CPU | ratio | "
        "+µs/chunk, streamed (wall) | +µs/chunk, calling thread CPU | +µs latency at 8 callers, 20 ms provider: median | mean | p90 | +µs CPU/call at that load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=_rank):
        name = none_label if r["mode"] == "none" else names.get(r["mode"], r["mode"])
        lines.append(
            f"| {name} | {r['env']} | {_f(r['call'])} | {_ratio(r, lw, 'call')} | {_f(r['call_thread_cpu'])} | {_ratio(r, lt, 'call_thread_cpu')} | "
            f"{_f(r['cpu'])} | {_ratio(r, lc, 'cpu')} | {_f(r['chunk'], 2)} | {_f(r['chunk_thread_cpu'], 2)} | "
            f"{_f(r['load_latency'])} | {_f(r['load_latency_mean'])} | {_f(r['load_latency_p90'])} | {_f(r['load_cpu'])} |"
        )
    return lines


def process_markdown(data: dict[str, Any], names: dict[str, str] | None = None) -> list[str]:
    """The per-process method's Markdown section for RESULTS.md (empty when it was not run): the paired table's columns."""
    rows = added(data, "process")
    if not rows:
        return []
    names = names or {}
    p = data["process"]
    sizes = p["sizes"]
    lw, lt, lc = lightest(rows, "call"), lightest(rows, "call_thread_cpu"), lightest(rows, "cpu")
    lines = [
        "### Per process: instrumented once at start-up, never undone (what a user sees)",
        "",
        "One process instruments at start-up as a user would (before the client exists and before any call: "
        "`micrometrics.instrument(...)`, a peer's `OpenAIInstrumentor().instrument(...)`) and keeps it; another process of the same venv never "
        "instruments (nor imports the instrumentation). They run next to each other in each round, the order alternating from round to round. "
        f"Added cost = instrumented process minus uninstrumented process of the same venv and round, median over {p['rounds']} rounds "
        f"(per process: {sizes['blocks']} blocks of {sizes['block']} non-streamed calls, {sizes['stream_blocks']} of {sizes['stream_block']} streamed, "
        f"{sizes['load_blocks']} of 8 threads x {sizes['load_block']} calls at load; median over blocks). Unlike the paired figures, this counts what an "
        "instrumentation does at import and `instrument()` time and leaves behind, and also the process-to-process noise "
        "(the `none` row: an uninstrumented process against another). Ratios are to the lightest peer on the same figure "
        f"(tight-loop wall: {lw['mode'] if lw else '-'}; calling-thread CPU: {lt['mode'] if lt else '-'}; all threads CPU: {lc['mode'] if lc else '-'}).",
        "",
    ]
    lines += table_markdown(rows, names, "none (A/A control: two uninstrumented processes)")
    lines += ["", "+µs/call (tight-loop wall) by round: " + "; ".join(f"{r['env']}/{r['mode']} {r['call_rounds']}" for r in sorted(rows, key=_rank)) + ".", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", metavar="MODE", help=argparse.SUPPRESS)
    ap.add_argument("--fixed", choices=("on", "off"), help=argparse.SUPPRESS)  # a per-process worker: this state for good
    ap.add_argument("--method", choices=METHODS + ("both",), default="both", help="paired blocks in one process, one process per state, or both (default)")
    ap.add_argument("--process-rounds", type=int, default=None, help="rounds of the per-process method (default: --rounds)")
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds (a smoke run, noisy)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 2)")
    ap.add_argument("--only", nargs="*", help="peer venvs to include (default: all)")
    ap.add_argument("--latest", action="store_true", help="newest peer releases instead of the pinned ones")
    ap.add_argument("--json", type=Path, help="write the raw medians here")
    args = ap.parse_args(argv)
    if args.worker:
        got = measure_fixed(args.worker, args.fixed, PROCESS_QUICK if args.quick else PROCESS_FULL) if args.fixed else measure(args.worker, QUICK if args.quick else FULL)
        print(json.dumps(got), flush=True)
        # The figures are out: no interpreter teardown with the worker, exporter and LiteLLM threads still running
        # (a LiteLLM process instrumented for good once died of SIGSEGV in libpython there, after measuring).
        os._exit(0)
    data = run(args.rounds or (2 if args.quick else 5), args.quick, latest=args.latest, only=args.only, log=lambda m: print(m, file=sys.stderr),
               method=args.method, process_rounds=args.process_rounds)
    return publish(data, args.json, report)


if __name__ == "__main__":
    sys.exit(main())
