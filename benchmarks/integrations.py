"""What micrometrics adds per call to every integration: one table, one row per integration (and call).

    python benchmarks/integrations.py [--quick] [--json out.json] [--only anthropic chromadb ...]

Each row times the library alone against the same call instrumented, in paired blocks alternating within every
round (benchmarks/paired.py), first with micrometrics' spans only (``metrics=[]``), then with the default metrics.
The original side is the unwrapped method (``__wrapped__``) where the instrumentation wraps a method the benchmark
can reach, else the library with micrometrics uninstrumented (``instrument()`` / ``uninstrument()`` between
blocks, untimed). Figures: the original's median µs per call (median over rounds of the block medians), the added
µs (median over rounds of the paired differences of block medians) and the block-time ratio, per mode; the calls
timed per side; the spans exported per instrumented call, counted over the instrumented blocks only (the library's own
OpenTelemetry spans included: elasticsearch makes one of its own; 0 would mean the instrumented side was not traced).

The parts are the tests' own: the scripted wire-format demo server on loopback (examples/demo_server.py, in a process of
its own, so that its request handling does not compete with the measured calls for the interpreter lock) for the model
providers, the loopback REST fakes of tests/retrieval/store_servers.py for Pinecone, Elasticsearch and
OpenSearch, embedded Chroma / LanceDB / Qdrant (``:memory:``) / milvus-lite, pgserver's PostgreSQL + pgvector on
loopback, the MCP weather server over stdio. Spans, points and logs go through the SDK's batch processors to
exporters that count and drop them. An integration whose parts are missing gets a row saying why, not a number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for root in ("src", "semconv", "instrumentation", "examples", "tests", "tests/retrieval", "tests/frameworks", "benchmarks"):
    sys.path.insert(0, str(ROOT / root))

import micrometrics  # noqa: E402
from paired import Call, block, compare  # noqa: E402

MODES = ("spans", "default")
#: Untimed calls after instrument(): the first calls build what the wrapper caches.
WARM = 3


@dataclass
class Workload:
    """What one row times. ``sides``: called after ``instrument()``, (original, instrumented) when the original is the
    unwrapped method; without it the original is ``call`` with micrometrics uninstrumented."""

    call: Call
    sides: Callable[[], tuple[Call, Call]] | None = None


@dataclass
class Case:
    integration: str  # the instrumentation's name, as instrument(instrumentations=[...]) takes it
    what: str  # what one call is
    library: str  # the distribution whose version the row names
    make: Callable[[contextlib.ExitStack], Workload] | None = None
    scale: float = 1.0  # calls per block relative to the others (slow calls: fewer)
    skip: str = ""  # why the row is not measured here
    traced: bool = True  # False: a call the integration deliberately leaves without a span


@dataclass
class Row:
    integration: str
    what: str
    library: str
    modes: dict[str, dict[str, float]] = field(default_factory=dict)
    spans_per_call: dict[str, float] = field(default_factory=dict)
    note: str = ""


# ---- the workloads ---------------------------------------------------------------------------------

SYSTEM = "Du bist der freundliche Kundenservice eines Onlineshops."
GERMAN = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": GERMAN}]
_shared: dict[str, Any] = {}


class DemoProcess:
    """``examples/demo_server.py`` in a process of its own. On a thread of the measured process its request handling
    competed with the calls for the interpreter lock and moved the provider rows by several times between runs (anthropic
    +35 and +298 µs on the same code); in its own process it costs the measured calls only the loopback round trip."""

    def __init__(self) -> None:
        from demo_server import DemoServer

        cmd = [sys.executable, str(ROOT / "examples" / "demo_server.py"), "--port", "0", "--quiet", "--chunk-delay", "0"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        found = re.search(r"http://([^\s:/]+):(\d+)", line)
        if found is None:
            self.close()
            raise RuntimeError(f"the demo server did not start: {line!r}")
        #: Not started here: its URL properties for this host and port (openai_base_url, anthropic_base_url, ...).
        self.urls = DemoServer(found.group(1), int(found.group(2)))

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def demo(stack: contextlib.ExitStack) -> Any:
    """The scripted provider server on loopback, in a process of its own, one for every provider row: its URLs."""
    if "demo" not in _shared:
        server = DemoProcess()
        stack.callback(server.close)
        _shared["demo"] = server.urls
    return _shared["demo"]


def store_server(stack: contextlib.ExitStack, flavor: str) -> Any:
    from store_servers import StoreServer

    server = StoreServer(flavor)  # with TCP_NODELAY: a delayed ACK (~40 ms a call) would drown the figures
    stack.callback(server.close)
    return server


def anthropic_chat(stack: contextlib.ExitStack) -> Workload:
    import anthropic

    client = anthropic.Anthropic(base_url=demo(stack).anthropic_base_url, api_key="sk-ant-bench", max_retries=0)
    return Workload(lambda i: client.messages.create(model="claude-sonnet-5-5", max_tokens=300, system=SYSTEM,
                                                     messages=[{"role": "user", "content": GERMAN}]))


def google_generate(stack: contextlib.ExitStack) -> Workload:
    from google import genai

    client = genai.Client(api_key="google-bench", http_options={"base_url": demo(stack).google_base_url})
    return Workload(lambda i: client.models.generate_content(model="gemini-2.0-flash", contents=GERMAN))


def mistral_chat(stack: contextlib.ExitStack) -> Workload:
    from mistralai.client import Mistral

    client = Mistral(api_key="mistral-bench", server_url=demo(stack).mistral_base_url)
    return Workload(lambda i: client.chat.complete(model="mistral-small-latest", messages=MESSAGES))


def cohere_chat(stack: contextlib.ExitStack) -> Workload:
    import cohere

    client = cohere.ClientV2(api_key="co-bench", base_url=demo(stack).cohere_base_url)
    return Workload(lambda i: client.chat(model="command-a-03-2025", messages=MESSAGES))


def ollama_chat(stack: contextlib.ExitStack) -> Workload:
    import ollama

    client = ollama.Client(host=demo(stack).ollama_host)
    return Workload(lambda i: client.chat("llama3.2", MESSAGES))


def groq_chat(stack: contextlib.ExitStack) -> Workload:
    import groq

    client = groq.Groq(api_key="gsk-bench", base_url=demo(stack).groq_base_url, max_retries=0)
    return Workload(lambda i: client.chat.completions.create(model="llama-3.3-70b-versatile", messages=MESSAGES))


def _bedrock(operation: str) -> Callable[[contextlib.ExitStack], Workload]:
    def make(stack: contextlib.ExitStack) -> Workload:
        import bedrock_overhead as bo
        from botocore.client import BaseClient

        client = bo.make_client()

        return Workload(bo._timed(bo._bound, client, operation), sides=lambda: (bo._timed(vars(BaseClient)["_make_api_call"].__wrapped__, client, operation), bo._timed(bo._bound, client, operation)))
    return make


def chroma_query(stack: contextlib.ExitStack) -> Workload:
    import retrieval_overhead as ro

    collection, queries = ro.build(_shared["docs"])

    def call(query: Callable[..., Any]) -> Call:
        return lambda i: query(query_texts=[queries[i % len(queries)]], n_results=5)

    return Workload(call(collection.query), sides=lambda: (call(collection.query.__wrapped__), call(collection.query)))


def lancedb_search(stack: contextlib.ExitStack) -> Workload:
    import retrieval_overhead as ro

    table, vectors = ro.build_lancedb(_shared["docs"])

    def sides() -> tuple[Call, Call]:
        instrumented, original = ro.lancedb_sides(table)
        return (lambda i: original([vectors[i % len(vectors)]], 5)), (lambda i: instrumented([vectors[i % len(vectors)]], 5))

    return Workload(lambda i: table.search(vectors[i % len(vectors)]).limit(5).to_list(), sides=sides)


def _pgvector(statement: str) -> Callable[[contextlib.ExitStack], Workload]:
    def make(stack: contextlib.ExitStack) -> Workload:
        import pgserver  # noqa: F401 - the server the rows start (its absence: a row saying so)
        import psycopg

        import retrieval_overhead as ro

        if "pg" not in _shared:
            from postgres_server import start

            base = Path(tempfile.mkdtemp(prefix="mm-bench-pg-"))
            stack.callback(shutil.rmtree, base, ignore_errors=True)
            pg, stop = start(base)
            stack.callback(stop)
            conn = psycopg.connect(pg.dsn, autocommit=True)
            stack.callback(conn.close)
            rows, vectors = ro.pg_items(conn, _shared["docs"])
            _shared["pg"] = (conn, vectors)
        conn, vectors = _shared["pg"]
        cur = conn.cursor()
        if statement == "knn":
            sql, params = ro.PG_KNN, (lambda i: (vectors[i % len(vectors)],))
        else:
            sql, params = ro.PG_POINT, (lambda i: (f"doc-{i % _shared['docs']}",))

        def call(i: int) -> Any:
            cur.execute(sql, params(i))
            return cur.fetchall()

        return Workload(call)
    return make


def _scenario_qdrant(stack: contextlib.ExitStack) -> Workload:
    from qdrant_client import QdrantClient, models
    from store_scenario import DIMENSION, DOCUMENTS, QUERY_VECTOR, TOP_K

    client = QdrantClient(":memory:")
    stack.callback(client.close)
    client.create_collection("kb", vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
    client.upsert("kb", points=[models.PointStruct(id=int(i), vector=v, payload={"text": t}) for i, t, v in DOCUMENTS])
    return Workload(lambda i: client.query_points("kb", query=QUERY_VECTOR, limit=TOP_K))


def milvus_search(stack: contextlib.ExitStack) -> Workload:
    import milvus_lite  # noqa: F401 - the embedded server
    from pymilvus import MilvusClient
    from store_scenario import DIMENSION, DOCUMENTS, QUERY_VECTOR, TOP_K

    folder = Path(tempfile.mkdtemp(prefix="mm-bench-milvus-"))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    client = MilvusClient(str(folder / "kb.db"))
    stack.callback(client.close)
    client.create_collection("kb", dimension=DIMENSION, metric_type="COSINE")
    client.insert("kb", [{"id": int(i), "vector": v, "text": t} for i, t, v in DOCUMENTS])
    return Workload(lambda i: client.search("kb", data=[QUERY_VECTOR], limit=TOP_K))


def pinecone_query(stack: contextlib.ExitStack) -> Workload:
    from pinecone import Index
    from store_scenario import QUERY_VECTOR, TOP_K

    server = store_server(stack, "pinecone")
    # The client binds ``query`` per instance when it is made: one made before instrument() is the original.
    before = Index(host=server.url, api_key="pcsk-bench")
    stack.callback(before.close)

    def sides() -> tuple[Call, Call]:
        after = Index(host=server.url, api_key="pcsk-bench")
        stack.callback(after.close)
        return (lambda i: before.query(vector=QUERY_VECTOR, top_k=TOP_K)), (lambda i: after.query(vector=QUERY_VECTOR, top_k=TOP_K))

    return Workload(lambda i: before.query(vector=QUERY_VECTOR, top_k=TOP_K), sides=sides)


def elasticsearch_knn(stack: contextlib.ExitStack) -> Workload:
    from elasticsearch import Elasticsearch
    from store_scenario import QUERY_VECTOR, TOP_K

    client = Elasticsearch(store_server(stack, "elasticsearch").url, max_retries=0)
    stack.callback(client.close)
    knn = {"field": "vector", "query_vector": QUERY_VECTOR, "k": TOP_K, "num_candidates": 10}
    return Workload(lambda i: client.search(index="kb", knn=knn))


def opensearch_knn(stack: contextlib.ExitStack) -> Workload:
    from opensearchpy import OpenSearch
    from store_scenario import QUERY_VECTOR, TOP_K

    server = store_server(stack, "opensearch")
    client = OpenSearch(hosts=[{"host": "127.0.0.1", "port": server.port}], max_retries=0)
    stack.callback(client.close)
    body = {"size": TOP_K, "query": {"knn": {"vector": {"vector": QUERY_VECTOR, "k": TOP_K}}}}
    return Workload(lambda i: client.search(index="kb", body=body))


def _langchain(name: str) -> Callable[[contextlib.ExitStack], Workload]:
    def make(stack: contextlib.ExitStack) -> Workload:
        import langchain_overhead as lo

        call = lo.WORKLOADS[name]()
        return Workload(lambda i: call())
    return make


def _llama_index(name: str) -> Callable[[contextlib.ExitStack], Workload]:
    def make(stack: contextlib.ExitStack) -> Workload:
        import llama_index_overhead as lio

        call = lio.make_calls()[name]
        return Workload(lambda i: call())
    return make


def agents_run(stack: contextlib.ExitStack) -> Workload:
    import agents
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
    from openai import AsyncOpenAI

    from agent_scenario import AGENT_NAME, MODEL, QUESTION, SYSTEM as AGENT_SYSTEM, TOOL_NAME, history, weather

    agents.set_trace_processors([])  # no exporter to OpenAI's backend

    @function_tool(name_override=TOOL_NAME)
    def get_weather(location: str, unit: str = "celsius") -> str:
        """Current weather of a city."""
        return weather(location, unit)

    client = AsyncOpenAI(base_url=demo(stack).openai_base_url, api_key="sk-bench", max_retries=0)
    agent = Agent(name=AGENT_NAME, instructions=AGENT_SYSTEM, tools=[get_weather],
                  model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client))
    conversation = [*history(), {"role": "user", "content": QUESTION}]
    return Workload(lambda i: Runner.run_sync(agent, conversation))


def mcp_call_tool(stack: contextlib.ExitStack) -> Workload:
    """An initialized stdio session held by one task on a loop thread; each call is a ``call_tool`` submitted to it."""
    import mcp  # noqa: F401 - its absence: a row saying so

    from mcp_scenario import session

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ready: asyncio.Future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, result=None), loop)
    ready.result()
    holder: dict[str, Any] = {}
    done = threading.Event()
    spans_file = Path(tempfile.mkdtemp(prefix="mm-bench-mcp-")) / "server.jsonl"

    async def hold() -> None:
        async with session("stdio", None, spans_file) as client:
            holder["client"] = client
            holder["stop"] = asyncio.Event()
            done.set()
            await holder["stop"].wait()

    held = asyncio.run_coroutine_threadsafe(hold(), loop)
    if not done.wait(30):
        raise RuntimeError("the MCP stdio server did not start within 30 s")

    def close() -> None:
        loop.call_soon_threadsafe(holder["stop"].set)
        held.result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        shutil.rmtree(spans_file.parent, ignore_errors=True)

    stack.callback(close)
    client = holder["client"]
    return Workload(lambda i: asyncio.run_coroutine_threadsafe(
        client.call_tool("get_weather", {"location": "Berlin", "unit": "celsius"}), loop).result(30))


CASES: list[Case] = [
    Case("openai", "chat.completions.create", "openai", skip="measured against the peers in the overhead table (`overhead.py`)"),
    Case("litellm", "litellm.completion", "litellm", skip="measured in the overhead table (`overhead.py`, row micrometrics-litellm)"),
    Case("anthropic", "messages.create (loopback demo server)", "anthropic", anthropic_chat),
    Case("google_genai", "models.generate_content (loopback)", "google-genai", google_generate),
    Case("mistral", "chat.complete (loopback)", "mistralai", mistral_chat),
    Case("cohere", "ClientV2.chat (loopback)", "cohere", cohere_chat),
    Case("ollama", "Client.chat (loopback)", "ollama", ollama_chat),
    Case("groq", "chat.completions.create (loopback)", "groq", groq_chat),
    Case("bedrock", "Converse (botocore, in-process answer)", "boto3", _bedrock("Converse")),
    Case("bedrock", "ConverseStream, 50 deltas read to the end", "boto3", _bedrock("ConverseStream")),
    Case("chromadb", "Chroma query_texts top 5 (embedded)", "chromadb", chroma_query),
    Case("lancedb", "search(vector).limit(5).to_list() (embedded)", "lancedb", lancedb_search),
    Case("psycopg", "pgvector kNN SELECT + fetchall (loopback PostgreSQL)", "psycopg", _pgvector("knn")),
    Case("psycopg", "other SQL (not a vector search) + fetchall", "psycopg", _pgvector("point"), traced=False),
    Case("psycopg2", "pgvector kNN over psycopg2", "psycopg2-binary", skip="same statements and server as the psycopg rows; not measured separately"),
    Case("qdrant", "query_points top 3 (`:memory:`)", "qdrant-client", _scenario_qdrant),
    Case("milvus", "MilvusClient.search top 3 (milvus-lite)", "pymilvus", milvus_search),
    Case("pinecone", "Index.query top 3 (loopback REST fake)", "pinecone", pinecone_query),
    Case("elasticsearch", "search knn top 3 (loopback REST fake)", "elasticsearch", elasticsearch_knn),
    Case("opensearch", "search knn top 3 (loopback REST fake)", "opensearch-py", opensearch_knn),
    Case("weaviate", "collection.query.near_vector", "weaviate-client",
         skip="its client needs a venv of its own (grpcio/protobuf/httpx pins, tests/retrieval/weaviate_env.py); not measured in this process"),
    Case("langchain", "LCEL chain invoke (prompt | fake model | parser)", "langchain-core", _langchain("lcel")),
    Case("langchain", "LangGraph agent: model -> tool -> model", "langgraph", _langchain("graph")),
    Case("llama_index", "MockLLM.chat", "llama-index-core", _llama_index("chat")),
    Case("llama_index", "VectorStoreIndex retriever top 3", "llama-index-core", _llama_index("retrieve")),
    Case("llama_index", "FunctionTool.call", "llama-index-core", _llama_index("tool")),
    Case("openai_agents", "Runner.run_sync: tool call + answer (loopback)", "openai-agents", agents_run, scale=0.1),
    Case("mcp", "ClientSession.call_tool over stdio", "mcp", mcp_call_tool, scale=0.3),
]


# ---- measuring --------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def measure(case: Case, work: Workload, mode: str, rounds: int, calls: int, sink: Any) -> tuple[dict[str, float], float]:
    """(figures, spans per instrumented call) of one mode."""
    options = dict(exporter="none", instrumentations=[case.integration], tracer_provider=sink.tracer_provider,
                   meter_provider=sink.meter_provider, logger_provider=sink.logger_provider, **({"metrics": []} if mode == "spans" else {}))
    counted = {"spans": 0, "calls": 0}

    def count_from() -> None:
        sink.flush()
        counted["before"] = sink.spans.count

    def count_to(calls_in_block: int) -> None:
        sink.flush()  # only the instrumented blocks' spans: the library's own (if any) come on both sides
        counted["spans"] += sink.spans.count - counted["before"]
        counted["calls"] += calls_in_block

    if work.sides:
        handle = micrometrics.instrument(**options)
        try:
            original, instrumented = work.sides()
            block(instrumented, WARM)
            paired = compare(original, instrumented, rounds=rounds, calls=calls, settle=handle.force_flush,
                             enter=count_from, leave=lambda: count_to(calls))
            handle.force_flush()
        finally:
            micrometrics.uninstrument()
    else:
        state: dict[str, Any] = {}

        def enter() -> None:
            state["handle"] = micrometrics.instrument(**options)
            count_from()
            block(work.call, WARM)  # untimed: what the wrapper builds on its first calls

        def leave() -> None:
            state["handle"].force_flush()
            count_to(calls + WARM)
            micrometrics.uninstrument()

        paired = compare(work.call, work.call, rounds=rounds, calls=calls, enter=enter, leave=leave)
    return paired.figures(), counted["spans"] / counted["calls"]


def run(only: list[str] | None, rounds: int, calls: int, docs: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    from workload import Sink

    warnings.simplefilter("ignore")
    _shared.clear()
    _shared["docs"] = docs
    sink = Sink()
    rows: list[Row] = []
    t0 = time.time()
    with contextlib.ExitStack() as stack:
        for case in CASES:
            if only and case.integration not in only:
                continue
            row = Row(case.integration, case.what, f"{case.library} {_version(case.library)}")
            rows.append(row)
            if case.skip or case.make is None:
                row.note = f"not measured: {case.skip}"
                log(f"{case.integration}: {row.note}")
                continue
            n = max(5, int(calls * case.scale))
            started = time.time()
            try:
                work = case.make(stack)
                block(work.call, WARM * 3)  # untimed: the library's own caches, before anything is timed
                for mode in MODES:
                    row.modes[mode], row.spans_per_call[mode] = measure(case, work, mode, rounds, n, sink)
                if case.traced and not all(row.spans_per_call.values()):
                    row.note = "the instrumented side exported no span: not traced"
                elif not case.traced:
                    row.note = "not a vector search: no span by design, the cost is the statement check"
            except ImportError as exc:
                row.note = f"not measured: {exc.name or exc} is not installed"
                row.modes.clear()
            except Exception as exc:  # a row that failed says so; the others still run
                row.note = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
                row.modes.clear()
                with contextlib.suppress(Exception):
                    micrometrics.uninstrument()
            log(f"{case.integration}: {case.what}: {time.time() - started:.0f} s" + (f" ({row.note})" if row.note else ""))
    return {"rounds": rounds, "calls": calls, "docs": docs, "seconds": time.time() - t0, "rows": [row.__dict__ for row in rows]}


def report(data: dict[str, Any]) -> str:
    """The Markdown table."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| integration | call | library | alone µs/call | `metrics=[]`: +µs | ratio | default: +µs | ratio | calls per side | spans/call | note |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in data["rows"]:
        s, d = r["modes"].get("spans"), r["modes"].get("default")
        if not s or not d:
            lines.append(f"| {r['integration']} | {cell(r['what'])} | {r['library']} | - | - | - | - | - | - | - | {r['note']} |")
            continue
        spans = r["spans_per_call"]
        spans_txt = f"{spans['spans']:.1f}" if abs(spans["spans"] - spans["default"]) < 0.05 else f"{spans['spans']:.1f} / {spans['default']:.1f}"
        lines.append(f"| {r['integration']} | {cell(r['what'])} | {r['library']} | {s['original_us']:,.1f} | {s['added_us']:+,.1f} | {s['ratio']:.3f} | "
                     f"{d['added_us']:+,.1f} | {d['ratio']:.3f} | {s['calls_per_side']:,} | {spans_txt} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds and calls (about 3 minutes on 2 cores)")
    parser.add_argument("--rounds", type=int, help="rounds per mode (default 10, quick 3)")
    parser.add_argument("--calls", type=int, help="calls per side per round (default 60, quick 15)")
    parser.add_argument("--only", nargs="*", help="only these integrations: " + ", ".join(sorted({c.integration for c in CASES})))
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    known = {c.integration for c in CASES}
    if args.only and (bad := [n for n in args.only if n not in known]):
        parser.error(f"unknown integration(s) {bad}; known: {sorted(known)}")
    rounds = args.rounds or (3 if args.quick else 10)
    calls = args.calls or (15 if args.quick else 60)
    data = run(args.only, rounds, calls, 500 if args.quick else 2000, log=lambda m: print(m, file=sys.stderr, flush=True))
    data["quick"] = args.quick
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    print(report(data))
    print(f"\n{rounds} rounds per mode, {calls} calls per side per round (fewer for slow calls); {data['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
