"""What micrometrics adds to a Chroma (or embedded LanceDB, or pgvector) query: the same queries with and without it, in one run.

Standalone: ``python benchmarks/retrieval_overhead.py [--store chroma|lancedb|pgvector] [--rounds N] [--queries N]``.
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

``--store pgvector``: a real PostgreSQL with pgvector (the ``pgserver`` wheel, loopback TCP, a fresh data
directory deleted at the end: tests/retrieval/postgres_server.py), ``--docs`` rows of 128-dimensional vectors, psycopg 3's
``Cursor.execute`` + ``fetchall``, instrumented against the original ``execute``
(``Cursor.__dict__["execute"].__wrapped__``) on the same connection:

* ``knn spans`` / ``knn default``: ``SELECT id, content, embedding <=> %s AS distance ...
  ORDER BY distance LIMIT 5`` (a sequential scan: no index), span only / default metrics;
* ``other sql``: ``SELECT id, content FROM items WHERE id = %s``, a statement that is not a
  vector search: what every other query of the application pays (a regex scan).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
for root in ("src", "semconv", "instrumentation", "benchmarks"):
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
from paired import compare  # noqa: E402
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
    parser.add_argument("--store", choices=("chroma", "lancedb", "pgvector"), default="chroma")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--queries", type=int, default=100, help="queries per side per round")
    parser.add_argument("--docs", type=int, default=2000)
    args = parser.parse_args(argv)

    if args.store == "lancedb":
        return main_lancedb(args)
    if args.store == "pgvector":
        return pgvector(args)
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
        _compare(mode, handle, instrumented, instrumented.__wrapped__, queries, args)
        micrometrics.uninstrument()


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

    def side(query: Any) -> Any:
        return lambda i: query(query_texts=[queries[i % len(queries)]], n_results=5)

    paired = compare(side(original), side(instrumented), rounds=args.rounds, calls=args.queries,
                     settle=handle.force_flush)  # untimed: the next block starts with an idle monitor thread
    print(paired.line(mode))


def _instrument_psycopg(metrics: list[Any], providers: dict[str, Any]) -> Any:
    """micrometrics with its psycopg instrumentation (by its entry point once installed, else directly)."""
    from micrometrics import registry

    if "psycopg" in registry.supported():
        return micrometrics.instrument(exporter="none", instrumentations=["psycopg"], metrics=metrics, **providers)
    from micrometrics_instrumentation.pgvector import PsycopgInstrumentor

    handle = micrometrics.instrument(exporter="none", instrumentations=[], metrics=metrics, **providers)
    PsycopgInstrumentor().instrument(skip_dep_check=True)
    return handle


def _uninstrument_psycopg() -> None:
    micrometrics.uninstrument()
    from micrometrics_instrumentation.pgvector import PsycopgInstrumentor

    PsycopgInstrumentor().uninstrument()


PG_KNN = "SELECT id, content, embedding <=> %s AS distance FROM items ORDER BY distance LIMIT 5"
PG_POINT = "SELECT id, content FROM items WHERE id = %s"


def pg_items(conn: Any, docs: int) -> tuple[int, list[str]]:
    """Table ``items`` of ``docs`` rows (text, 128-dimensional unit vector, no index); (rows, 200 query vectors)."""
    rng = random.Random(7)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute("DROP TABLE IF EXISTS items")
    conn.execute("CREATE TABLE items (id text PRIMARY KEY, content text, embedding vector(128))")

    def vector() -> str:
        v = [rng.gauss(0, 1) for _ in range(128)]
        n = math.sqrt(sum(x * x for x in v))
        return "[" + ",".join(f"{x / n:.6f}" for x in v) + "]"

    with conn.cursor() as cur:
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s)", [(f"doc-{i}", sentence(rng, 25), vector()) for i in range(docs)])
    return docs, [vector() for _ in range(200)]


def pgvector(args: argparse.Namespace) -> None:
    try:
        import pgserver  # noqa: F401 - the server the benchmark starts
        import psycopg
    except ImportError as exc:
        print(f"pgvector: skipped ({exc}; pip install -e '.[dev]')")
        return
    import shutil
    import tempfile

    sys.path.insert(0, str(ROOT / "tests" / "retrieval"))
    from postgres_server import start  # the tests' server: pgserver's PostgreSQL + pgvector on loopback TCP

    base_dir = Path(tempfile.mkdtemp(prefix="mm-bench-pg-"))
    pg, stop = start(base_dir)
    try:
        conn = psycopg.connect(pg.dsn, autocommit=True)
        rows, vectors = pg_items(conn, args.docs)
        knn, point = PG_KNN, PG_POINT
        workloads = (
            ("knn spans", knn, lambda i: (vectors[i % len(vectors)],), []),
            ("knn default", knn, lambda i: (vectors[i % len(vectors)],), [RetrievalPrecision()]),
            ("other sql", point, lambda i: (f"doc-{i % args.docs}",), []),
        )
        cur = conn.cursor()

        def block(execute: Any, sql: str, params: Any, n: int, offset: int) -> list[int]:
            times = []
            for i in range(offset, offset + n):
                t0 = time.perf_counter_ns()
                execute(cur, sql, params(i))
                cur.fetchall()
                times.append(time.perf_counter_ns() - t0)
            return times

        providers = _providers()
        original = psycopg.Cursor.__dict__["execute"]
        block(original, knn, workloads[0][2], 30, 0)  # warm the table into shared buffers
        server_version = conn.execute("SHOW server_version").fetchone()[0]
        vector_version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        print(f"pgvector: PostgreSQL {server_version} + pgvector {vector_version} (pgserver, loopback TCP), psycopg {psycopg.__version__}, "
              f"{args.docs} rows x 128 dims, no index; {args.rounds} rounds x {args.queries} queries per side")
        print(f"{'mode':<12}{'original':>10}{'p95':>9}{'with mm':>10}{'p95':>9}{'+median us':>12}{'ratio':>8}")
        for mode, sql, params, metrics in workloads:
            handle = _instrument_psycopg(metrics, providers)
            wrapped = psycopg.Cursor.__dict__["execute"]
            instrumented = lambda c, q, p: wrapped.__get__(c, type(c))(q, p)  # noqa: E731 - the wrapper, bound like a method
            block(instrumented, sql, params, 20, 0)

            def side(execute: Any, sql: str = sql, params: Any = params) -> Any:
                def call(i: int) -> Any:
                    execute(cur, sql, params(i))
                    return cur.fetchall()
                return call

            paired = compare(side(original), side(instrumented), rounds=args.rounds, calls=args.queries, settle=handle.force_flush)
            _uninstrument_psycopg()
            print(paired.line(mode, width=12))
        cur.close()
        conn.close()
    finally:
        stop()
        shutil.rmtree(base_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
