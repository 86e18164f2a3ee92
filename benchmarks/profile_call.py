"""Where micrometrics' microseconds go on a non-streamed OpenAI chat call, thread by thread.

    python benchmarks/profile_call.py [--calls 1500] [--rounds 3] [--json out.json]

One process, the workload of overhead.py (in-process transport, one BatchSpanProcessor into memory),
blocks of calls uninstrumented, with ``metrics=[]`` and with the default metrics, in rounds. Each
block's process CPU time after draining the monitor worker and the batch processors is the
*all-threads* figure of overhead.py; the calling thread's CPU is the *request path*. The parts are
measured by wrapping our own functions with a thread-CPU clock (about 0.3 µs per wrapped call,
included in the figures): on the calling thread the request translation and span start
(``calls._begin``) and the response translation, pricing and hand-off (``calls._complete``); on the
monitor thread the response attributes and metric points (``Emitter.write``), the cost attributes
(``Emitter.charge``), each metric's evaluation, the results' span attributes, events, log records and
points (``Emitter.emit``), the span end, and the naps at its yield points (``time.sleep``, CPU of the
system calls). What is left of the all-threads figure ran in the exporters' threads (the batch span
and log processors) or is the cost of a second busy thread in the process.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload as w  # noqa: E402

PARTS: dict[str, float] = {}


def _clocked(name: str, fn: Callable, clock: Callable[[], float] = time.thread_time) -> Callable:
    def clocked(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            PARTS[name] = PARTS.get(name, 0.0) + clock() - t0

    clocked.__wrapped__ = fn  # type: ignore[attr-defined]
    return clocked


def _install_clocks() -> None:
    """Wraps our functions (only in this benchmark's process) with thread-CPU clocks."""
    from micrometrics import calls, emission, metric, spans
    from micrometrics.metrics import language_match, text

    calls._begin = _clocked("caller: translate request, start span", calls._begin)
    calls._complete = _clocked("caller: translate response, price, hand off", calls._complete)
    emission.Emitter.write = _clocked("worker: response attributes, metric points", emission.Emitter.write)
    emission.Emitter.charge = _clocked("worker: cost attributes and point", emission.Emitter.charge)
    emission.Emitter.emit = _clocked("worker: results (span attributes, events, logs, points)", emission.Emitter.emit)
    spans.Spans.end = _clocked("worker: span end", spans.Spans.end)
    language_match.LanguageMatch.evaluate = _clocked("worker: LanguageMatch", language_match.LanguageMatch.evaluate)
    language_match.detect_language = _clocked("worker: LanguageMatch: detect_language", language_match.detect_language)
    text.ResponseLength.evaluate = _clocked("worker: ResponseLength", text.ResponseLength.evaluate)
    metric.time = _Time()  # the naps at yield points


class _Time:
    """``time`` for micrometrics.metric: its ``sleep`` (the yield points' nap) clocked."""

    def __init__(self) -> None:
        self.sleep = _clocked("worker: naps at yield points (system calls)", time.sleep)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def measure(calls: int, rounds: int) -> dict[str, Any]:
    import micrometrics

    logging.disable(logging.WARNING)
    _install_clocks()
    sink = w.Sink()
    client = w.client(w.Transport())
    arms = {"none": None, "metrics=[]": [], "default": None}
    figures: dict[str, dict[str, list[float]]] = {arm: {} for arm in arms}
    for _ in range(rounds):
        for arm, metrics in arms.items():
            handle = None
            if arm != "none":
                handle = micrometrics.instrument(
                    exporter="none", instrumentations=["openai"], metrics=metrics,
                    tracer_provider=sink.tracer_provider, meter_provider=sink.meter_provider, logger_provider=sink.logger_provider,
                )
            for _ in range(200):
                w.chat(client)
            if handle is not None:
                handle.runtime.flush(60)
            sink.flush()
            PARTS.clear()
            cpu0, thread0 = time.process_time(), time.thread_time()
            for _ in range(calls):
                w.chat(client)
            thread = time.thread_time() - thread0
            if handle is not None:
                handle.runtime.flush(60)
            sink.flush()
            cpu = time.process_time() - cpu0
            got = figures[arm]
            got.setdefault("all threads", []).append(cpu / calls * 1e6)
            got.setdefault("calling thread", []).append(thread / calls * 1e6)
            for name, seconds in PARTS.items():
                got.setdefault(name, []).append(seconds / calls * 1e6)
            if handle is not None:
                handle.shutdown()
    medians = {arm: {k: statistics.median(v) for k, v in got.items()} for arm, got in figures.items()}
    return {"calls": calls, "rounds": rounds, "medians": medians}


def report(r: dict[str, Any]) -> str:
    m = r["medians"]
    base = m["none"]
    lines = [f"µs per call (median of {r['rounds']} rounds of {r['calls']:,} calls); added = over the uninstrumented client of the same run", ""]
    lines.append(f"| part | `metrics=[]` | default metrics | default over `metrics=[]` |")
    lines.append("|---|---:|---:|---:|")
    names = ["all threads", "calling thread"] + sorted({k for arm in ("metrics=[]", "default") for k in m[arm]} - {"all threads", "calling thread"})
    for name in names:
        a, b = m["metrics=[]"].get(name), m["default"].get(name)
        if name in ("all threads", "calling thread"):
            a, b = a - base[name], b - base[name]
            label = f"**{name}, added**"
        else:
            label = name
        fa = "-" if a is None else f"{a:,.1f}"
        fb = "-" if b is None else f"{b:,.1f}"
        fd = "-" if a is None and b is None else f"{(b or 0) - (a or 0):+,.1f}"
        lines.append(f"| {label} | {fa} | {fb} | {fd} |")
    for arm in ("metrics=[]", "default"):
        nested = ("detect_language", "naps")  # inside LanguageMatch and the other worker parts: counted there
        parts = sum(v for k, v in m[arm].items() if k.startswith(("worker", "caller")) and not any(n in k for n in nested))
        rest = (m[arm]["all threads"] - base["all threads"]) - parts
        lines.append(f"| {arm}: rest (exporter threads, the second busy thread, unclocked code) | | | {rest:,.1f} |" if arm == "default" else
                     f"| {arm}: rest (exporter threads, the second busy thread, unclocked code) | {rest:,.1f} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    return w.publish(measure(args.calls, args.rounds), args.json, report)


if __name__ == "__main__":
    sys.exit(main())
