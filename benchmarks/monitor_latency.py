"""What the default monitors add to caller-visible latency under load, over micrometrics with ``metrics=[]``.

    python benchmarks/monitor_latency.py [--rounds 30] [--calls 40] [--keep-awake] [--json out.json]

Issue 3's target (a): 8 concurrent callers, a provider that answers after 20 ms (an
in-process transport), the default async metrics must add at most 10 µs to the latency the
caller sees, against micrometrics without metrics in the same run; the total CPU per call,
evaluation included, is reported beside it.

One process, one client per caller. Five arms, switched by ``instrument()`` /
``shutdown()`` between blocks (``ARMS``): ``no-metrics`` (``metrics=[]``, the baseline),
``default`` (the default metrics, on the monitor thread), ``default-process`` (the same in
the evaluator process, ``evaluator="process"``), ``trivial`` (two monitors that decide
nothing: what emitting two results costs without evaluating anything) and ``no-metrics-2``
(``metrics=[]`` again: an A/A control, so the noise of this machine is measured by the same
run). Each round runs one block per arm in a shuffled order; a block is ``--calls`` calls per
caller, all 8 callers at once. Every answer is a different ~300-character text, mostly in
the conversation's language, so the detector does its real work. Per round the block
medians (and means, p90s, CPU) are differenced against ``no-metrics``; reported are the
median of those per-round differences with a bootstrap 95% interval. ``tight_*``: the same
arms with one caller making back-to-back calls (a CPU-bound application).

``--keep-awake`` runs a nice-19 busy loop per CPU: in this VM an idle vCPU takes hundreds of
microseconds to wake, which otherwise makes the arms that keep the CPUs busier look faster.

    python benchmarks/monitor_latency.py --rounds 40 --calls 40 --keep-awake
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload as w  # noqa: E402
from overhead import _load_block  # noqa: E402

TIGHT_FIGURES = ("tight_wall", "tight_app_cpu", "tight_cpu")
FIGURES = ("median", "mean", "p90", "cpu", "app_cpu") + TIGHT_FIGURES
TIGHT_CALLS = 300
THREADS = 8
DELAY_S = 0.020
#: arm -> instrument() options; "no-metrics-2" repeats "no-metrics" as the A/A control.
def _trivial_metrics() -> list[Any]:
    """Two monitors that decide nothing (label ``pass``): what writing two results costs, without evaluation."""
    import micrometrics

    @micrometrics.micro_metric(name="trivial_a")
    def trivial_a(call: Any) -> Any:
        return micrometrics.Result("pass", score=1.0, details={"chars": len(call.output_text)})

    @micrometrics.micro_metric(name="trivial_b")
    def trivial_b(call: Any) -> Any:
        return micrometrics.Result("pass", details={"words": 1})

    return [trivial_a, trivial_b]


#: arm -> instrument() options (a callable value is called per block); "no-metrics-2" repeats
#: "no-metrics" as the A/A control; "trivial" has two monitors that only emit their results.
ARMS = {
    "no-metrics": {"metrics": []},
    "default": {},
    "default-process": {"evaluator": "process"},
    "trivial": {"metrics": _trivial_metrics},
    "no-metrics-2": {"metrics": []},
}


class Arm:
    """Turns one arm's instrumentation on and off (the shared sink stays)."""

    def __init__(self, options: dict[str, Any], sink: Any) -> None:
        self.options = options
        self.sink = sink
        self.handle: Any = None
        self.dropped = 0

    def on(self) -> None:
        import micrometrics

        if self.handle is None:
            self.handle = micrometrics.instrument(
                exporter="none",
                instrumentations=["openai"],
                tracer_provider=self.sink.tracer_provider,
                meter_provider=self.sink.meter_provider,
                logger_provider=self.sink.logger_provider,
                **{k: v() if callable(v) else v for k, v in self.options.items()},
            )

    def off(self) -> None:
        if self.handle is not None:
            self.flush()
            self.dropped += self.handle.runtime.worker.dropped
            self.handle.shutdown()
            self.handle = None

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.runtime.flush(60.0)
        self.sink.flush()


class VaryingTransport(w.Transport):
    """The 20 ms provider, answering each call with the next of many distinct texts."""

    def __init__(self, delay_s: float, texts: list[str]) -> None:
        super().__init__(delay_s=delay_s)
        template = json.loads(w.completion_body())
        bodies = []
        for text in texts:
            template["choices"][0]["message"]["content"] = text
            bodies.append(json.dumps(template).encode())
        self._bodies = itertools.cycle(bodies)

    def handle(self, request: Any) -> Any:
        time.sleep(self.delay_s)
        return self._httpx.Response(200, content=next(self._bodies), headers={"content-type": "application/json"})


def _answers(n: int) -> list[str]:
    # A German conversation: most answers German, every eighth in another language (a mismatch).
    german = [t for _, t in w.responses(n, languages=["de"])]
    other = [t for _, t in w.responses(n // 8 + 1, languages=["en", "fr", "es", "it", "pt", "nl"])]
    return [other[i // 8] if i % 8 == 7 else german[i] for i in range(n)]


def _evaluator_cpu() -> float:
    """CPU seconds used so far by micrometrics' evaluator process (0 when there is none)."""
    from micrometrics import evaluator_process

    pid = evaluator_process.evaluator_pid()
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _block(clients: list[Any], calls: int) -> list[float]:
    """All callers at once, ``calls`` each: the caller-visible latencies (overhead.py's load block)."""
    return _load_block(w.chat, clients, calls)


def _ci(values: list[float], rng: random.Random, n: int = 2000) -> tuple[float, float]:
    """Bootstrap 95% interval of the median of ``values``."""
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def _keep_awake() -> list[Any]:
    """One nice-19 busy loop per CPU: no vCPU ever idles, so no arm pays (or is spared) idle wake-ups.

    At nice 19 a spinner gets about 1.5% of a CPU the benchmark wants (CFS weights 15 : 1024).
    """
    import subprocess

    code = "import os\nos.nice(19)\nwhile True: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]


def run(rounds: int, calls: int, log=print, keep_awake: bool = False, arms: list[str] | None = None) -> dict[str, Any]:
    unknown = set(arms or ()) - set(ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; choose from {', '.join(ARMS)}")
    chosen = {name: options for name, options in ARMS.items() if arms is None or name in arms or name == "no-metrics"}
    spinners = _keep_awake() if keep_awake else []
    try:
        return _run(rounds, calls, log, keep_awake, chosen)
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def _run(rounds: int, calls: int, log: Any, keep_awake: bool, arms: dict[str, Any]) -> dict[str, Any]:
    import gc
    import logging

    logging.disable(logging.WARNING)  # re-instrumenting re-creates instruments: the SDK warns
    sink = w.Sink()
    switches = {name: Arm(options, sink) for name, options in arms.items()}
    transport = VaryingTransport(DELAY_S, _answers(997))
    clients = [w.client(transport) for _ in range(THREADS)]

    def use(arm: str) -> None:
        for name, sw in switches.items():
            if name != arm:
                sw.off()
        switches[arm].on()

    def measured(arm: str, settle: Any, work: Any) -> tuple[Any, float, float, float]:
        """Switch to ``arm``, ``settle()``, then time ``work()``: (its result, wall, CPU of this
        process, CPU with the evaluator process's for the arm that uses one), both drained."""
        use(arm)
        settle()
        switches[arm].flush()
        gc.collect()
        cpu0, child0, t0 = time.process_time(), _evaluator_cpu(), time.perf_counter()
        result = work()
        wall = time.perf_counter() - t0
        switches[arm].flush()  # evaluation and export of this block are part of its CPU
        app_cpu = time.process_time() - cpu0
        cpu = app_cpu + (_evaluator_cpu() - child0 if arm == "default-process" else 0.0)
        return result, wall, app_cpu, cpu

    def settle_load() -> None:
        for cl in clients:  # a fresh runtime's first call on each client
            w.chat(cl)

    # Warm up every arm (imports, language profiles, caches).
    for arm in arms:
        use(arm)
        _block(clients, 3)
        switches[arm].flush()

    rng = random.Random(3)
    per_round: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    dropped = 0
    t_start = time.time()
    for r in range(rounds):
        order = list(arms)
        rng.shuffle(order)
        for arm in order:
            lat, _, app_cpu, cpu = measured(arm, settle_load, lambda: _block(clients, calls))
            per_round[arm].append(
                {
                    "median": statistics.median(lat) * 1e6,
                    "mean": statistics.fmean(lat) * 1e6,
                    "p90": statistics.quantiles(lat, n=10)[-1] * 1e6,
                    "cpu": cpu / len(lat) * 1e6,
                    "app_cpu": app_cpu / len(lat) * 1e6,
                }
            )
        if log and (r + 1) % 5 == 0:
            log(f"  round {r + 1}/{rounds}  {time.time() - t_start:5.0f}s")
    # A CPU-bound caller: one thread, back-to-back calls, the provider answering at once. Here
    # the monitors' CPU in the application shows up in full; the evaluator's backlog is drained
    # after each timed block (its CPU counted, its wall time not).
    solo = w.client(VaryingTransport(0.0, _answers(997)))

    def calls_in_a_row(n: int) -> None:
        for _ in range(n):
            w.chat(solo)
    for r in range(min(rounds, max(3, rounds // 4))):
        order = list(arms)
        rng.shuffle(order)
        for arm in order:
            _, wall, app_cpu, cpu = measured(arm, lambda: calls_in_a_row(20), lambda: calls_in_a_row(TIGHT_CALLS))
            per_round[arm][r].update(
                {"tight_wall": wall / TIGHT_CALLS * 1e6, "tight_app_cpu": app_cpu / TIGHT_CALLS * 1e6, "tight_cpu": cpu / TIGHT_CALLS * 1e6}
            )
    for arm in arms:  # rounds without a tight block (there are fewer of those) drop out of its figures
        for k in TIGHT_FIGURES:
            for block in per_round[arm]:
                block.setdefault(k, float("nan"))

    for sw in switches.values():
        sw.off()
        dropped += sw.dropped

    boot = random.Random(11)
    out: dict[str, Any] = {
        "rounds": rounds,
        "calls_per_arm": rounds * calls * THREADS,
        "threads": THREADS,
        "delay_ms": DELAY_S * 1e3,
        "dropped": dropped,
        "keep_awake": keep_awake,
        "arms": list(arms),
        "base": {k: statistics.median(b[k] for b in per_round["no-metrics"] if b[k] == b[k]) for k in FIGURES},  # x == x: not NaN
    }
    for arm in arms:
        if arm == "no-metrics":
            continue
        figures = {}
        for k in FIGURES:
            diffs = [a[k] - b[k] for a, b in zip(per_round[arm], per_round["no-metrics"]) if a[k] - b[k] == a[k] - b[k]]
            lo, hi = _ci(diffs, boot)
            figures[k] = {"added": statistics.median(diffs), "ci95": [lo, hi], "rounds": [round(d, 1) for d in diffs]}
        out[arm] = figures
    return out


def report(data: dict[str, Any]) -> str:
    b = data["base"]
    lines = [
        f"{data['threads']} callers, provider answers after {data['delay_ms']:.0f} ms, {data['rounds']} rounds, "
        f"{data['calls_per_arm']} calls per arm; dropped evaluations: {data['dropped']}"
        + ("; a nice-19 busy loop on every CPU" if data.get("keep_awake") else ""),
        f"micrometrics metrics=[]: latency median {b['median']:.0f} µs, mean {b['mean']:.0f}, p90 {b['p90']:.0f}; CPU {b['cpu']:.0f} µs/call",
        f"tight_*: one caller, {TIGHT_CALLS} back-to-back calls per block, provider answering at once; metrics=[]: {b['tight_wall']:.0f} µs/call",
        f"{'arm':14} {'figure':13} {'added µs':>9}   95% interval",
    ]
    for arm in data.get("arms", ARMS):
        if arm == "no-metrics":
            continue
        label = "A/A" if arm == "no-metrics-2" else arm
        for k in FIGURES:
            f = data[arm][k]
            lines.append(f"{label:14} {k:13} {f['added']:9.1f}   [{f['ci95'][0]:.1f}, {f['ci95'][1]:.1f}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=40, help="calls per caller per block")
    ap.add_argument("--keep-awake", action="store_true", help="a nice-19 busy loop per CPU, so that idle vCPU wake-ups do not favour the busier arms")
    ap.add_argument("--arms", nargs="+", choices=list(ARMS), help="only these arms (no-metrics, the baseline, always runs)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    data = run(args.rounds, args.calls, log=lambda m: print(m, file=sys.stderr), keep_awake=args.keep_awake, arms=args.arms)
    return w.publish(data, args.json, report)


if __name__ == "__main__":
    sys.exit(main())
