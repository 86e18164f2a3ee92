"""What micrometrics adds to a Chroma (or embedded LanceDB) query: the same queries with and without it, in one run.

Standalone: ``python benchmarks/retrieval_overhead.py [--store chroma|lancedb] [--rounds N] [--queries N]``.
An in-process Chroma collection (``EphemeralClient``, a deterministic hashed
embedding, ``--docs`` documents) answers ``query_texts`` queries, top 5. Two
instrumented modes:

* ``spans``: no micro metrics (span, attributes, duration metric);
* ``default``: the default metrics (RetrievalPrecision, judged lexically on the
  monitor thread while the caller goes on).

``--store lancedb``: an embedded LanceDB table (a temporary directory, the same
documents and embedding) answers ``table.search(vector).limit(5).to_list()``; the
original side runs the same builder through the unwrapped ``to_arrow``.

Each mode is compared with the same store method unwrapped (``query.__wrapped__``,
the original), block against block, alternating within every round, so the noise
of a shared machine hits both sides alike. After each round the monitor queue is
flushed, untimed. Spans, metric points and log records go through the SDK's batch
processors to exporters that drop them: a real pipeline minus the network.

Prints, per mode, the median and p95 latency of both sides, the difference of the
medians, and the median over rounds of the instrumented/original block-time ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
for root in ("src", "semconv", "instrumentation"):
    sys.path.insert(0, str(ROOT / root))

import chromadb  # noqa: E402
from chromadb import Documents, EmbeddingFunction, Embeddings  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import RetrievalPrecision  # noqa: E402

MODES = ("spans", "default")
WORDS = (
    "order shipping refund invoice delivery parcel warranty account password payment card address express "
    "return exchange discount voucher store office germany austria berlin vienna days weeks price euro"
).split()


class HashEmbedding(EmbeddingFunction[Documents]):
    dimension = 128

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - chromadb's parameter name
        out = []
        for text in input:
            v = [0.0] * self.dimension
            for w in re.findall(r"\w+", text.lower()):
                v[int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "big") % self.dimension] += 1.0
            n = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / n for x in v])
        return out

    @staticmethod
    def name() -> str:
        return "benchmark-hash"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashEmbedding":
        return HashEmbedding()


class _DropSpans(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _DropLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def build(docs: int) -> tuple[Any, list[str]]:
    rng = random.Random(7)
    collection = chromadb.EphemeralClient().get_or_create_collection("bench-kb", embedding_function=HashEmbedding())
    ids = [f"doc-{i}" for i in range(docs)]
    for start in range(0, docs, 500):
        collection.upsert(ids=ids[start : start + 500], documents=[sentence(rng, 25) for _ in ids[start : start + 500]])
    queries = [sentence(rng, 6) for _ in range(200)]
    return collection, queries


def run_block(query: Any, queries: list[str], n: int, offset: int) -> list[int]:
    times = []
    for i in range(n):
        text = queries[(offset + i) % len(queries)]
        t0 = time.perf_counter_ns()
        query(query_texts=[text], n_results=5)
        times.append(time.perf_counter_ns() - t0)
    return times


def build_lancedb(docs: int) -> tuple[Any, list[list[float]]]:
    import tempfile

    import lancedb

    rng = random.Random(7)
    embed = HashEmbedding()
    texts = [sentence(rng, 25) for _ in range(docs)]
    rows = [{"id": f"doc-{i}", "text": t, "vector": v} for i, (t, v) in enumerate(zip(texts, embed(texts)))]
    table = lancedb.connect(tempfile.mkdtemp(prefix="bench-lancedb-")).create_table("bench_kb", data=rows)
    return table, embed([sentence(rng, 6) for _ in range(200)])


def lancedb_sides(table: Any) -> tuple[Any, Any]:
    """(instrumented, original): ``to_list`` as the application calls it, and the same through the unwrapped ``to_arrow``."""
    from lancedb.query import LanceVectorQueryBuilder

    unwrapped = LanceVectorQueryBuilder.to_arrow.__wrapped__

    def instrumented(query_texts: list, n_results: int) -> Any:
        return table.search(query_texts[0]).limit(n_results).to_list()

    def original(query_texts: list, n_results: int) -> Any:
        return unwrapped(table.search(query_texts[0]).limit(n_results)).to_pylist()

    return instrumented, original


def instrument_store(store: str, **options: Any) -> Any:
    """``instrument()`` with only the store's instrumentation; hooked by hand until the entry point is installed."""
    from micrometrics import registry

    if store in registry.supported():
        return micrometrics.instrument(exporter="none", instrumentations=[store], **options)
    handle = micrometrics.instrument(exporter="none", instrumentations=[], **options)
    from micrometrics_instrumentation.lancedb import LanceDBInstrumentor

    LanceDBInstrumentor().instrument()
    return handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("chroma", "lancedb"), default="chroma")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--queries", type=int, default=100, help="queries per side per round")
    parser.add_argument("--docs", type=int, default=2000)
    args = parser.parse_args(argv)

    if args.store == "lancedb":
        return main_lancedb(args)
    collection, queries = build(args.docs)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DropSpans()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(_DropLogs()))
    providers = dict(tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider)

    run_block(collection.query, queries, 50, 0)  # warm Chroma's caches before anything is timed
    print(f"Chroma {chromadb.__version__}, {args.docs} documents, query_texts top 5; "
          f"{args.rounds} rounds x {args.queries} queries per side")
    print(f"{'mode':<9}{'original':>10}{'p95':>9}{'with mm':>10}{'p95':>9}{'+median us':>12}{'ratio':>8}")
    for mode in MODES:
        handle = micrometrics.instrument(
            exporter="none", instrumentations=["chromadb"], metrics=[] if mode == "spans" else [RetrievalPrecision()], **providers
        )
        instrumented = collection.query
        original = instrumented.__wrapped__
        run_block(instrumented, queries, 20, 0)
        sides: dict[str, list[int]] = {"original": [], "instrumented": []}
        ratios = []
        for r in range(args.rounds):
            order = (("original", original), ("instrumented", instrumented))
            block = {}
            for side, query in order if r % 2 == 0 else order[::-1]:
                block[side] = run_block(query, queries, args.queries, r * args.queries)
                sides[side] += block[side]
                handle.force_flush()  # untimed: the next block starts with an idle monitor thread
            ratios.append(sum(block["instrumented"]) / sum(block["original"]))
        micrometrics.uninstrument()
        base, ours = sorted(sides["original"]), sorted(sides["instrumented"])
        p95 = lambda xs: xs[int(len(xs) * 0.95)] / 1e3  # noqa: E731
        mb, mo = statistics.median(base), statistics.median(ours)
        print(f"{mode:<9}{mb / 1e3:>10.1f}{p95(base):>9.1f}{mo / 1e3:>10.1f}{p95(ours):>9.1f}{(mo - mb) / 1e3:>12.1f}"
              f"{statistics.median(ratios):>8.3f}")


def main_lancedb(args: argparse.Namespace) -> None:
    import lancedb

    table, vectors = build_lancedb(args.docs)
    providers = _providers()
    queries = [[v] for v in vectors]  # run_block passes query_texts=[one query]; here the one query is a vector
    print(f"LanceDB {lancedb.__version__} (embedded), {args.docs} documents, vector search top 5, to_list(); "
          f"{args.rounds} rounds x {args.queries} queries per side")
    print(f"{'mode':<9}{'original':>10}{'p95':>9}{'with mm':>10}{'p95':>9}{'+median us':>12}{'ratio':>8}")
    for mode in MODES:
        handle = instrument_store("lancedb", metrics=[] if mode == "spans" else [RetrievalPrecision()], **providers)
        instrumented, original = lancedb_sides(table)
        _compare(mode, handle, instrumented, original, [q[0] for q in queries], args)
        micrometrics.uninstrument()
        from micrometrics_instrumentation.lancedb import LanceDBInstrumentor

        LanceDBInstrumentor().uninstrument()


def _providers() -> dict[str, Any]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DropSpans()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(_DropLogs()))
    return dict(tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider)


def _compare(mode: str, handle: Any, instrumented: Any, original: Any, queries: list, args: argparse.Namespace) -> None:
    run_block(instrumented, queries, 20, 0)
    sides: dict[str, list[int]] = {"original": [], "instrumented": []}
    ratios = []
    for r in range(args.rounds):
        order = (("original", original), ("instrumented", instrumented))
        block = {}
        for side, query in order if r % 2 == 0 else order[::-1]:
            block[side] = run_block(query, queries, args.queries, r * args.queries)
            sides[side] += block[side]
            handle.force_flush()  # untimed: the next block starts with an idle monitor thread
        ratios.append(sum(block["instrumented"]) / sum(block["original"]))
    base, ours = sorted(sides["original"]), sorted(sides["instrumented"])
    p95 = lambda xs: xs[int(len(xs) * 0.95)] / 1e3  # noqa: E731
    mb, mo = statistics.median(base), statistics.median(ours)
    print(f"{mode:<9}{mb / 1e3:>10.1f}{p95(base):>9.1f}{mo / 1e3:>10.1f}{p95(ours):>9.1f}{(mo - mb) / 1e3:>12.1f}"
          f"{statistics.median(ratios):>8.3f}")


if __name__ == "__main__":
    main()
