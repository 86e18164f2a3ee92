"""What one more streamed chunk costs: the slope of the added cost over the stream's length.

    python benchmarks/stream_chunks.py [--rounds 8] [--calls 20] [--short 50] [--long 250] [--json out.json]

overhead.py reports a streamed call's whole added cost divided by its 50 chunks: that figure
includes what every call costs (the span, the translation, the hand-off, the evaluation), so
it says little about the chunks themselves. Here the same OpenAI chat stream (workload.py's
in-process transport, the answer cut into ``--short`` or ``--long`` content chunks) is read
uninstrumented and instrumented, blocks alternating within each round; per chunk =
(added cost of the long stream - added cost of the short one) / (long - short): what
micrometrics does per chunk, per-call costs cancelled. Figures per mode (``metrics=[]`` and
the default metrics): the calling thread's CPU (the proxy's accumulation, on the caller's
path) and all threads' CPU after draining the monitor worker and the exporters (the per-chunk
``time_per_output_chunk`` point and the streaming metrics included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload as w  # noqa: E402

FIGURES = ("thread_cpu", "cpu", "wall")


class _Stream:
    """A transport whose stream holds ``chunks`` content chunks."""

    def __init__(self, chunks: int) -> None:
        self.client = w.client(w.Transport(stream_chunks=chunks))


def _block(switch: Any, client: Any, calls: int) -> dict[str, float]:
    cpu0, t0, c0 = time.process_time(), time.perf_counter(), time.thread_time()
    for _ in range(calls):
        w.chat_streamed(client)
    wall, thread = time.perf_counter() - t0, time.thread_time() - c0
    switch.flush()
    return {"wall": wall / calls * 1e6, "thread_cpu": thread / calls * 1e6, "cpu": (time.process_time() - cpu0) / calls * 1e6}


def measure(mode: str, rounds: int, calls: int, short: int, long: int) -> dict[str, float]:
    """Median over rounds of the per-chunk slope of the added cost, per figure."""
    import logging

    logging.disable(logging.WARNING)
    sink = w.Sink()
    switch = w.Switch(mode, sink)
    streams = {n: _Stream(n) for n in (short, long)}
    for state in ("on", "off"):
        switch.set(state)
        for s in streams.values():
            for _ in range(5):
                assert w.chat_streamed(s.client) >= min(streams)
    slopes: dict[str, list[float]] = {f: [] for f in FIGURES}
    for r in range(rounds):
        added: dict[int, dict[str, float]] = {}
        for n, s in streams.items():
            got: dict[str, dict[str, float]] = {}
            for state in ("off", "on") if r % 2 == 0 else ("on", "off"):
                switch.set(state)
                for _ in range(2):  # settle: caches, the worker
                    w.chat_streamed(s.client)
                switch.flush()
                got[state] = _block(switch, s.client, calls)
            added[n] = {f: got["on"][f] - got["off"][f] for f in FIGURES}
        for f in FIGURES:
            slopes[f].append((added[long][f] - added[short][f]) / (long - short))
    switch.set("off")
    return {f: statistics.median(v) for f, v in slopes.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--calls", type=int, default=20, help="streamed calls per block")
    ap.add_argument("--short", type=int, default=50)
    ap.add_argument("--long", type=int, default=250)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not 1 <= args.short < args.long:
        ap.error(f"--short {args.short} must be >= 1 and below --long {args.long}")
    out: dict[str, Any] = {"rounds": args.rounds, "calls": args.calls, "short": args.short, "long": args.long}
    print(f"OpenAI chat streams of {args.short} and {args.long} content chunks, {args.rounds} rounds x {args.calls} calls per block")
    print(f"{'mode':28s} {'caller CPU µs/chunk':>20s} {'all threads CPU':>16s} {'wall':>8s}")
    for mode in ("micrometrics-no-metrics", "micrometrics-default"):
        got = measure(mode, args.rounds, args.calls, args.short, args.long)
        out[mode] = got
        print(f"{mode:28s} {got['thread_cpu']:20.2f} {got['cpu']:16.2f} {got['wall']:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
