"""A loopback stand-in for Datadog's LLM Observability evaluation intake, for the walkthrough and the tests.

It answers ``POST /api/intake/llm-obs/v2/eval-metric`` (agentless) and the Agent's
``/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric`` as Datadog does (202 and the metrics back),
keeps what it received, and can be out of service (503) or down (connections refused).
``validate`` (a function body -> list of error strings) makes it refuse what Datadog's documented
schema does not allow, with 400, as the real intake would.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable

PATHS = ("/api/intake/llm-obs/v2/eval-metric", "/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric")
#: Also taken (and only counted): OTLP/HTTP, so that one loopback server can stand in for all of Datadog in the walkthrough.
OTLP_PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
#: ``ok`` answers 202; ``unavailable`` answers 503 (an outage of the intake); ``hang`` holds the request unanswered.
MODES = ("ok", "unavailable", "hang")
#: How long a held request is kept at most.
HANG_LIMIT_S = 30.0


@dataclass
class Received:
    path: str
    #: Lower-case names.
    headers: dict[str, str]
    body: bytes
    json: Any
    #: What ``validate`` found wrong (the request was refused with 400), else empty.
    errors: list[str]
    status: int


class EvalIntake:
    """``with EvalIntake() as intake:``, then point ``datadog_evaluations=intake.url`` at it."""

    def __init__(self, validate: Callable[[Any], list[str]] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.validate = validate
        self.host = host
        self.port = port or _free_port(host)
        self.mode = "ok"
        self.received: list[Received] = []
        #: OTLP requests taken, by signal (their protobuf bodies are not decoded here).
        self.otlp: dict[str, int] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}; allowed: {MODES}")
        self.mode = mode
        if mode == "hang":
            self._release.clear()
        else:
            self._release.set()

    def start(self) -> "EvalIntake":
        intake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path in OTLP_PATHS:
                    with intake._lock:
                        intake.otlp[OTLP_PATHS[self.path]] = intake.otlp.get(OTLP_PATHS[self.path], 0) + 1
                    self._answer(200, {}, "application/x-protobuf", b"")
                    return
                if self.path not in PATHS:
                    self._answer(404, {"errors": [f"no route {self.path}"]})
                    return
                if intake.mode == "hang":
                    intake._release.wait(HANG_LIMIT_S)
                status, errors, parsed = 202, [], None
                try:
                    parsed = json.loads(body)
                except ValueError as exc:
                    status, errors = 400, [f"not JSON: {exc}"]
                if intake.mode == "unavailable":
                    status = 503
                elif not errors and intake.validate is not None:
                    errors = intake.validate(parsed)
                    status = 400 if errors else 202
                with intake._lock:
                    intake.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, parsed, errors, status))
                if status == 202:
                    data = dict(parsed["data"], id=str(uuid.uuid4()))
                    self._answer(202, {"data": data})
                else:
                    self._answer(status, {"errors": errors or ["Service Unavailable"]})

            def _answer(self, status: int, payload: Any, content_type: str = "application/json", raw: bytes | None = None) -> None:
                out = json.dumps(payload).encode() if raw is None else raw
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="eval-intake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until ``start()`` again."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "EvalIntake":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status == 202]

    def metrics(self) -> list[dict[str, Any]]:
        """Every evaluation the intake accepted, in arrival order."""
        return [m for r in self.accepted() for m in r.json["data"]["attributes"]["metrics"]]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
