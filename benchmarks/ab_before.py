"""Issue 21's changes timed against the code before them, in one process, blocks interleaved.

    python benchmarks/ab_before.py [--against f75039f] [--rounds 15]

On a shared machine two runs minutes apart are not comparable; here the old module (loaded from
``git show <against>:<path>``) and the current one alternate block by block, and the figures are
medians of thread-CPU per item:

- the language detector, ``detect_language`` on 1,000 distinct ~300-character answers in seven
  languages (the benchmarks' corpus; the token cache warm, as in a running service);
- the OpenAI stream accumulator, ``ChatAccumulator.add`` on the 52 chunks of the benchmark's
  streamed answer, parsed by openai into ``ChatCompletionChunk`` objects.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "src"), str(REPO / "instrumentation"), str(REPO / "semconv"), str(HERE)]

BASELINE = "f75039f"


def load_before(ref: str, path: str, name: str) -> Any:
    source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    file = Path(tempfile.mkdtemp()) / (name.rsplit(".", 1)[-1] + ".py")
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def interleaved(fns: dict[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """µs of thread CPU per item, median over rounds; each function returns how many items it did."""
    got: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(rounds):
        order = list(fns) if i % 2 == 0 else list(reversed(fns))
        for k in order:
            t0 = time.thread_time()
            n = fns[k]()
            got[k].append((time.thread_time() - t0) / n * 1e6)
    return {k: statistics.median(v) for k, v in got.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default=BASELINE)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)

    import workload as w
    from micrometrics.metrics import language as new_language

    old_language = load_before(args.against, "src/micrometrics/metrics/language.py", "micrometrics.metrics.language_before")
    texts = [t for _, t in w.responses(1000)]
    for module in (old_language, new_language):
        for t in texts:
            module.detect_language(t)
    detector = interleaved({
        "before": lambda: sum(1 for t in texts if old_language.detect_language(t)),
        "now": lambda: sum(1 for t in texts if new_language.detect_language(t)),
    }, args.rounds)

    from openai.types.chat import ChatCompletionChunk

    from micrometrics.records import InferenceRecord
    from micrometrics_instrumentation.openai import translators as new_translators

    old_translators = load_before(args.against, "instrumentation/micrometrics_instrumentation/openai/translators.py",
                                  "micrometrics_instrumentation.openai.translators_before")
    body = w.stream_body().decode()
    chunks = [ChatCompletionChunk.model_validate(json.loads(line[6:])) for line in body.split("\n") if line.startswith("data: {")]

    def feed(module: Any) -> Callable[[], int]:
        def run() -> int:
            for _ in range(40):
                acc = module.ChatAccumulator(InferenceRecord(operation="chat", provider="openai", model=w.MODEL))
                for c in chunks:
                    acc.add(c)
            return 40 * len(chunks)
        return run

    accumulator = interleaved({"before": feed(old_translators), "now": feed(new_translators)}, args.rounds)

    print(f"against {args.against}, {args.rounds} interleaved rounds, µs of thread CPU per item (median)")
    print(f"detect_language, 1,000 distinct ~300-character answers: before {detector['before']:.1f}, now {detector['now']:.1f} "
          f"({detector['now'] / detector['before']:.2f}x)")
    print(f"ChatAccumulator.add, per streamed chunk: before {accumulator['before']:.2f}, now {accumulator['now']:.2f} "
          f"({accumulator['now'] / accumulator['before']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
