"""Loopback servers speaking the wire formats of remote vector stores (Elasticsearch, OpenSearch, Pinecone's REST
data plane), for the real client libraries to talk to.

Each one ranks the shared scenario's ``DOCUMENTS`` (store_scenario.py) by cosine similarity to the query vector, as
a real store over those vectors would (ids 1, 2, 3 for the scenario's query), with the store's own score for a
cosine index. ``enqueue`` scripts the next response instead (errors, null fields, malformed bodies); ``requests``
records what the client sent.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from store_scenario import DOCUMENTS, cosine


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def ranked(documents: list, vector: list[float], k: int) -> list[tuple[str, str, float]]:
    """``(id, text, cosine)`` of the k documents nearest to ``vector``, nearest first."""
    scored = sorted(((i, t, cosine(v, vector)) for i, t, v in documents), key=lambda d: -d[2])
    return scored[:k]


def _knn_of(query: Any) -> Any:
    if not isinstance(query, dict):
        return None
    if isinstance(query.get("knn"), dict):
        return query["knn"]
    for clauses in (query.get("bool") or {}).values():
        for clause in clauses if isinstance(clauses, list) else [clauses]:
            found = _knn_of(clause)
            if found is not None:
                return found
    return None


class StoreServer:
    """``flavor``: ``elasticsearch``, ``opensearch`` or ``pinecone``; ``documents``: ``(id, text, vector)``, the
    shared scenario's by default."""

    def __init__(self, flavor: str, documents: list | None = None) -> None:
        self.flavor = flavor
        self.documents = list(DOCUMENTS if documents is None else documents)
        self.requests: list[Recorded] = []
        self._scripted: list[Scripted] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Keep-alive answers otherwise wait for the client's delayed ACK (about 40 ms each).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def do_HEAD(self) -> None:
                server._handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def enqueue(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """The next request gets this response (a dict is sent as JSON, bytes as they are)."""
        with self._lock:
            self._scripted.append(Scripted(status, body, headers or {}))

    def reset(self) -> None:
        with self._lock:
            self._scripted.clear()
            self.requests.clear()

    # ---- the stores ---------------------------------------------------------------------------

    def _product_headers(self) -> dict[str, str]:
        if self.flavor == "elasticsearch":
            # The client refuses a server that does not say it is Elasticsearch.
            return {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/vnd.elasticsearch+json;compatible-with=9"}
        return {"Content-Type": "application/json"}

    def _answer(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        size = {"size": int(query["size"][0])} if "size" in query else {}  # the query string's size wins, as on a cluster
        if self.flavor == "pinecone":
            if path == "/query" and isinstance(body, dict):
                return 200, self._pinecone_query(body)
            return 404, {"code": 5, "message": f"Not Found: {path}", "details": []}
        if method in ("GET", "HEAD") and path == "/":
            return 200, {"name": "loopback", "cluster_name": "loopback", "version": {"number": "9.1.0" if self.flavor == "elasticsearch" else "2.19.0", "distribution": self.flavor}, "tagline": "You Know, for Search"}
        if path.endswith("/_search") and isinstance(body, (dict, type(None))):
            index = path.split("/")[1]
            if index.startswith("missing"):
                reason = f"no such index [{index}]"
                error = {"type": "index_not_found_exception", "reason": reason, "index": index}
                return 404, {"error": {"root_cause": [error], **error}, "status": 404}
            return 200, self._search(index, {**(body or {}), **size})
        return 404, {"error": f"no route {method} {path}", "status": 404}

    def _search(self, index: str, body: dict) -> dict:
        knn = body.get("knn")
        if isinstance(knn, list):
            knn = knn[0]
        size = int(body.get("size", 10))
        if self.flavor == "elasticsearch":
            knn = knn if isinstance(knn, dict) else _knn_of(body.get("query"))
            vector, k = (knn or {}).get("query_vector"), (knn or {}).get("k", size)
        else:
            clause = _knn_of(body.get("query")) or {}
            inner = next(iter(clause.values()), {}) if clause else {}
            vector, k = inner.get("vector"), inner.get("k", size)
        if vector is None:  # not a vector search: every document, unranked, score 1
            found = [(i, t, 1.0) for i, t, _ in self.documents][:size]
            scores = [1.0 for _ in found]
        else:
            found = ranked(self.documents, vector, min(k, size))
            # A cosine index's score: Elasticsearch (and OpenSearch's lucene engine) map cosine to (1 + cos) / 2.
            scores = [(1 + c) / 2 for _, _, c in found]
        hits = [{"_index": index, "_id": i, "_score": s, "_source": {"text": t}} for (i, t, _), s in zip(found, scores)]
        return {"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": max(scores, default=None), "hits": hits}}

    def _pinecone_query(self, body: dict) -> dict:
        matches = [
            {"id": i, "score": c, "values": [], **({"metadata": {"text": t}} if body.get("includeMetadata") else {})}
            for i, t, c in ranked(self.documents, body.get("vector") or [], int(body.get("topK", 10)))
        ]
        return {"results": [], "matches": matches, "namespace": body.get("namespace", ""), "usage": {"readUnits": 5}}

    # ---- HTTP -----------------------------------------------------------------------------------

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(Recorded(handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body))
            scripted = self._scripted.pop(0) if self._scripted else None
        headers = self._product_headers()
        if scripted is not None:
            status, payload = scripted.status, scripted.body
            headers.update(scripted.headers)
        else:
            status, payload = self._answer(handler.command, path, urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query), body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
