"""Run inside the Weaviate environment (weaviate_env.py): real ``weaviate-client`` v4 calls, sync and async,
against a loopback Weaviate (its REST ``/v1/meta`` and its gRPC ``weaviate.v1.Weaviate/Search``, served with
grpcio and the client's own generated protobuf classes), instrumented by micrometrics into in-memory
exporters. Prints, as JSON on stdout, what each case's backend received (spans, metric points, log
records), what the application got back, and the search requests the server saw; test_weaviate.py asserts on it.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import sys
import subprocess
import threading
import urllib.request
import uuid
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # tests/retrieval (store_scenario), tests (telemetry_harness)

import grpc  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import RetrievalPrecision  # noqa: E402
from micrometrics_instrumentation.weaviate import WeaviateInstrumentor  # noqa: E402
from store_scenario import DOCUMENTS, QUERY_TEXT, QUERY_VECTOR, RELEVANT_IDS, TOP_K  # noqa: E402
from telemetry_harness import Telemetry  # noqa: E402

COLLECTION = "Docs"
#: A collection whose searches the server refuses (INVALID_ARGUMENT), quoting the query like a real error can.
BROKEN = "Broken"
#: A collection with no objects, and one whose first object has a NaN distance and no properties.
EMPTY, ODD = "Empty", "Odd"
#: A Weaviate version the v4 client accepts (it refuses servers older than 1.27).
SERVER_VERSION = "1.32.0"


def object_uuid(doc_id: str) -> str:
    """The scenario's document ``n`` is the object with uuid ``00000000-0000-0000-0000-00000000000n``."""
    return str(uuid.UUID(int=int(doc_id)))


#: The ``metadata`` (what the query asked to get back) of every search request the gRPC server answered, oldest first.
SEEN: list[dict] = []


class Rest(BaseHTTPRequestHandler):
    """The REST endpoints the client reads when it connects (``/v1/meta``); everything else answers 200 ``{}``.
    ``/test/seen`` (not Weaviate's) hands the scenario the search requests' metadata, and forgets them."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/test/seen":
            body: Any = SEEN[:]
            del SEEN[:]
        else:
            body = {"version": SERVER_VERSION, "hostname": "http://127.0.0.1", "modules": {}} if self.path == "/v1/meta" else {}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def _vector(near_vector: Any) -> list[float]:
    raw = near_vector.vectors[0].vector_bytes if near_vector.vectors else near_vector.vector_bytes
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def servicer(pb: Any, seen: list) -> Any:
    """``weaviate.v1.Weaviate/Search``: the scenario's documents nearest first; the metadata and properties asked for only."""

    class Weaviate(pb.weaviate_pb2_grpc.WeaviateServicer):
        def Search(self, request: Any, context: Any) -> Any:  # noqa: N802
            from google.protobuf.json_format import MessageToDict

            seen.append(MessageToDict(request.metadata))
            if request.collection == BROKEN:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"near_text: vectorizer missing for query {QUERY_TEXT!r}")
            if request.collection == EMPTY:
                return pb.search_get_pb2.SearchReply(took=0.001)
            if request.collection == ODD:
                nan = pb.search_get_pb2.MetadataResult(id_as_bytes=uuid.UUID(object_uuid("4")).bytes, distance=float("nan"), distance_present=True)
                near = pb.search_get_pb2.MetadataResult(id_as_bytes=uuid.UUID(object_uuid("2")).bytes, distance=0.25, distance_present=True)
                props = pb.properties_pb2.Properties(fields={"text": pb.properties_pb2.Value(null_value=0)})
                return pb.search_get_pb2.SearchReply(took=0.001, results=[
                    pb.search_get_pb2.SearchResult(metadata=nan),
                    pb.search_get_pb2.SearchResult(metadata=near, properties=pb.search_get_pb2.PropertiesResult(non_ref_props=props))])
            if request.HasField("near_vector"):
                query = _vector(request.near_vector)
            else:  # near_text, near_object, hybrid, bm25: the scenario's query, as a vector the server "embedded"
                query = QUERY_VECTOR
            ranked = sorted(DOCUMENTS, key=lambda d: -_cosine(query, d[2]))[: request.limit or len(DOCUMENTS)]
            meta, results = request.metadata, []
            for doc_id, text, vector in ranked:
                similarity = _cosine(query, vector)
                m = pb.search_get_pb2.MetadataResult(id_as_bytes=uuid.UUID(object_uuid(doc_id)).bytes)
                if meta.distance:
                    m.distance, m.distance_present = 1 - similarity, True
                if meta.certainty:
                    m.certainty, m.certainty_present = (1 + similarity) / 2, True
                if meta.score:
                    m.score, m.score_present = similarity, True
                props = pb.properties_pb2.Properties(fields={
                    "text": pb.properties_pb2.Value(text_value=text),
                    "doc_id": pb.properties_pb2.Value(text_value=doc_id),
                })
                results.append(pb.search_get_pb2.SearchResult(
                    metadata=m, properties=pb.search_get_pb2.PropertiesResult(non_ref_props=props, target_collection=request.collection)))
            return pb.search_get_pb2.SearchReply(took=0.001, results=results)

    return Weaviate()


class Server:
    def __init__(self) -> None:
        import weaviate.proto.v1 as pb  # the client's own generated classes, for its protobuf version

        self.seen = SEEN
        self.rest = ThreadingHTTPServer(("127.0.0.1", 0), Rest)
        threading.Thread(target=self.rest.serve_forever, daemon=True).start()
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb.weaviate_pb2_grpc.add_WeaviateServicer_to_server(servicer(pb, self.seen), self.grpc)
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")
        self.grpc.start()
        self.http_port = self.rest.server_address[1]

    def close(self) -> None:
        self.grpc.stop(None)
        self.rest.shutdown()


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def backend(telemetry: Telemetry) -> dict:
    """What the case's backend received: spans, metric points' attributes, log records."""
    spans = [{
        "name": s.name, "kind": s.kind.name, "status": s.status.status_code.name, "parent": s.parent is not None,
        "attributes": {k: _value(v) for k, v in s.attributes.items()},
        "events": [{"name": e.name, "attributes": {k: _value(v) for k, v in e.attributes.items()}} for e in s.events],
    } for s in telemetry.spans()]
    metrics = {name: [dict(p.attributes) for p in points] for name, points in telemetry.metrics().items()}
    logs = [{"event_name": r.event_name, "severity": r.severity_text, "attributes": {k: _value(v) for k, v in (r.attributes or {}).items()}}
            for r in telemetry.logs()]
    return {"spans": spans, "metrics": metrics, "logs": logs}


def got(response: Any) -> list[dict]:
    """What the application got back: each object's uuid, scores and text."""
    return [{"uuid": str(o.uuid), "distance": o.metadata.distance, "certainty": o.metadata.certainty, "score": o.metadata.score,
             "text": o.properties.get("text")} for o in response.objects]


def instrumented(**options: Any) -> Telemetry:
    telemetry = Telemetry()
    telemetry.instrument(**options)
    WeaviateInstrumentor().instrument()  # its entry point is not installed in this environment
    return telemetry


def finish(telemetry: Telemetry, **extra: Any) -> dict:
    out = {**backend(telemetry), **extra}
    WeaviateInstrumentor().uninstrument()
    telemetry.close()
    return out


def run(server: "ServerProcess") -> dict:
    from_ids = [object_uuid(i) for i in RELEVANT_IDS]
    cases: dict[str, dict] = {}

    # Instrumented before the application imports weaviate: the post-import hook wraps it on import.
    assert "weaviate" not in sys.modules
    telemetry = instrumented(metrics=[RetrievalPrecision()])
    import weaviate
    from weaviate.classes.query import MetadataQuery

    client = weaviate.connect_to_local(port=server.http_port, grpc_port=server.grpc_port, skip_init_checks=True)
    docs = client.collections.get(COLLECTION)
    with micrometrics.context(relevant_document_ids=from_ids):
        response = docs.query.near_vector(QUERY_VECTOR, limit=TOP_K, return_metadata=MetadataQuery(distance=True))
    cases["scenario"] = finish(telemetry, got=got(response))

    for capture in (False, True):
        telemetry = instrumented(capture_content=capture)
        response = docs.query.near_text(QUERY_TEXT, limit=TOP_K)
        cases[f"near_text_capture_{str(capture).lower()}"] = finish(telemetry, got=got(response))

    searches = {
        "near_vector_certainty": lambda: docs.query.near_vector(QUERY_VECTOR, limit=3, return_metadata=MetadataQuery(certainty=True)),
        "near_vector_both": lambda: docs.query.near_vector(QUERY_VECTOR, limit=3, return_metadata=MetadataQuery(certainty=True, distance=True)),
        "hybrid_score": lambda: docs.query.hybrid(QUERY_TEXT, limit=3, alpha=0.5, return_metadata=MetadataQuery(score=True)),
        "bm25_score": lambda: docs.query.bm25(query=QUERY_TEXT, limit=2, return_metadata=MetadataQuery.full()),
        "near_object_distance": lambda: docs.query.near_object(object_uuid("1"), limit=3, return_metadata=MetadataQuery(distance=True)),
    }
    for name, search in searches.items():
        telemetry = instrumented(capture_content=True)
        response = search()
        cases[name] = finish(telemetry, got=got(response))

    # Odd answers: no objects; a NaN distance and a null text; concepts as a list and no limit.
    telemetry = instrumented(capture_content=True)
    empty = client.collections.get(EMPTY).query.near_vector(QUERY_VECTOR, limit=3, return_metadata=MetadataQuery(distance=True))
    odd = client.collections.get(ODD).query.near_vector(QUERY_VECTOR, limit=3, return_metadata=MetadataQuery(distance=True))
    concepts = docs.query.near_text(["refund", "return"])
    cases["odd"] = finish(telemetry, got_empty=got(empty), got_odd=[{"uuid": str(o.uuid), "distance": repr(o.metadata.distance), "properties": o.properties} for o in odd.objects],
                          got_concepts=got(concepts))

    # No metadata asked for: the request the server sees is the one it sees without us.
    telemetry = instrumented(capture_content=True)
    server.seen  # noqa: B018 - forgets the earlier requests
    response = docs.query.near_vector(QUERY_VECTOR, limit=3)
    (instrumented_request,) = server.seen
    case = finish(telemetry, got=got(response))
    plain = docs.query.near_vector(QUERY_VECTOR, limit=3)
    (plain_request,) = server.seen
    cases["near_vector_no_metadata"] = {**case, "request": instrumented_request, "request_without_us": plain_request, "got_without_us": got(plain)}

    # A refused search: the same exception with and without us; uninstrument() restores every method.
    telemetry = instrumented()
    broken = client.collections.get(BROKEN)
    errors = []
    try:
        broken.query.near_text(QUERY_TEXT, limit=3)
    except Exception as exc:  # noqa: BLE001 - reported to the test as the application saw it
        errors.append({"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)})
    case = finish(telemetry)
    try:
        broken.query.near_text(QUERY_TEXT, limit=3)
    except Exception as exc:  # noqa: BLE001
        errors.append({"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)})
    cases["error"] = {**case, "errors": errors, "wrapped_after_uninstrument": wrapped_methods()}
    telemetry = instrumented(capture_content=True)
    try:
        broken.query.near_text(QUERY_TEXT, limit=3)
    except Exception:  # noqa: BLE001 - the same error as above; what the backend got with capture on
        pass
    cases["error_capture"] = finish(telemetry)
    client.close()

    cases["async"] = asyncio.run(run_async(server, from_ids))
    return cases


def wrapped_methods() -> list[str]:
    """The query methods that are still a wrapper (ours or anyone's)."""
    import importlib
    import inspect

    import wrapt

    from micrometrics_instrumentation.weaviate.translators import SEARCHES

    left = []
    for method, cls in SEARCHES.items():
        for module, name in ((f"weaviate.collections.queries.{method}.query.sync", cls), (f"weaviate.collections.queries.{method}.query.async_", f"{cls}Async")):
            owner = getattr(importlib.import_module(module), name)
            if isinstance(inspect.getattr_static(owner, method), wrapt.ObjectProxy):
                left.append(f"{name}.{method}")
    return left


async def run_async(server: "ServerProcess", relevant: list[str]) -> dict:
    import weaviate
    from weaviate.classes.query import MetadataQuery

    telemetry = instrumented(capture_content=True, metrics=[RetrievalPrecision()])
    async with weaviate.use_async_with_local(port=server.http_port, grpc_port=server.grpc_port, skip_init_checks=True) as client:
        docs = client.collections.get(COLLECTION)
        with micrometrics.context(relevant_document_ids=relevant):
            response = await docs.query.near_vector(QUERY_VECTOR, limit=TOP_K, return_metadata=MetadataQuery(distance=True))
        hybrid = await docs.query.hybrid(QUERY_TEXT, limit=2, return_metadata=MetadataQuery(score=True))
    return finish(telemetry, got=got(response), got_hybrid=got(hybrid))


class ServerProcess:
    """The server in a process of its own: the application's process imports weaviate only after instrumenting."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the loopback Weaviate did not start")
        self.http_port, self.grpc_port = map(int, line.split())

    @property
    def seen(self) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/test/seen", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.stdin.close()  # the server stops when its input ends
        self.proc.wait(timeout=30)


def serve() -> None:
    server = Server()
    print(server.http_port, server.grpc_port, flush=True)
    sys.stdin.read()
    server.close()


def main() -> None:
    server = ServerProcess()
    try:
        cases = run(server)
    finally:
        server.close()
    out = {"weaviate_client": sys.modules["weaviate"].__version__, "grpc_port": server.grpc_port, "cases": cases}
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    serve() if sys.argv[1:] == ["--serve"] else main()
