"""Micro-metric results as Datadog LLM Observability evaluations, joined to the spans they judged.

Datadog's evaluation API (``POST /api/intake/llm-obs/v2/eval-metric``) takes "external
evaluations"; for OpenTelemetry spans they carry the ``source:otel`` tag and name the span by
``span_id`` and ``trace_id`` as decimal strings. The emitter hands each call's results to
``DatadogEvaluations.submit`` (a deque append); a worker thread batches them, posts them
agentless to ``https://api.<DD_SITE>`` with the API key or through the Agent's EVP proxy,
retries with backoff, and warns once per outage. The mapping functions are pure.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import re
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from micrometrics import internal_errors
from micrometrics.export import outbox
from micrometrics_semconv import attributes as A

logger = logging.getLogger("micrometrics")

#: The evaluation API's path on ``api.<site>`` (agentless).
EVAL_METRIC_PATH = "/api/intake/llm-obs/v2/eval-metric"
#: The same API behind the Datadog Agent's EVP proxy (trace-agent port), which adds the Agent's API key.
AGENT_EVAL_METRIC_PATH = "/evp_proxy/v2" + EVAL_METRIC_PATH
#: The Agent's EVP proxy routes by this header to ``<subdomain>.<site>``.
EVP_SUBDOMAIN_HEADER = "X-Datadog-EVP-Subdomain"
EVP_SUBDOMAIN = "api"
API_KEY_HEADER = "DD-API-KEY"
AGENT_APM_PORT = 8126
#: Datadog joins evaluations to OpenTelemetry spans only with this tag (its OTel instrumentation docs).
SOURCE_OTEL_TAG = "source:otel"
REQUEST_TYPE = "evaluation_metric"
#: Label rules: ASCII letters, digits and underscores, starting with a letter, at most 200 characters.
LABEL_MAX = 200
#: ml_app rules: lowercase; letters, digits, ``_ - : . /``; at most 193 characters; no ``__``, no trailing ``_``.
ML_APP_MAX = 193
SCORE_SUFFIX = "_score"

CAPACITY = 10_000
BATCH = 100
INTERVAL_S = 1.0
TIMEOUT_S = 5.0
#: Quick retries of one request (transient statuses, refused connections) before the outage pause of ExportHealth.
ATTEMPTS = 3
BACKOFF_FIRST_S = 0.25
#: Retrying these may succeed; any other 4xx means the payload is refused as it is.
TRANSIENT_STATUSES = frozenset({408, 429})
BACKEND = "Datadog's LLM Observability evaluation intake"

_NOT_LABEL = re.compile(r"[^A-Za-z0-9_]")
_NOT_ML_APP = re.compile(r"[^a-z0-9_\-:./]")
_UNDERSCORES = re.compile(r"__+")


# ---- pure mapping ----------------------------------------------------------------------------


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def evaluation_label(name: str) -> str:
    """A metric name under Datadog's label rules: accents dropped, other characters as ``_``, a leading letter, <= 200."""
    label = _NOT_LABEL.sub("_", _without_accents(name))
    if not label[:1].isalpha():
        label = "metric_" + label
    return label[:LABEL_MAX]


def ml_app_name(name: str) -> str:
    """An application name under Datadog's naming guidelines (lowercase, ``[a-z0-9_-:./]``, <= 193, no ``__``)."""
    app = _UNDERSCORES.sub("_", _NOT_ML_APP.sub("_", _without_accents(name).lower()))[:ML_APP_MAX].rstrip("_")
    return app or "unknown_service"


def decimal_id(value: int | str) -> str:
    """An OpenTelemetry id (int, or hex as exported) as the decimal string Datadog joins on."""
    return str(int(value, 16) if isinstance(value, str) else int(value))


@dataclass(frozen=True)
class Evaluation:
    """One micro-metric result on one span, as queued: mapped to JSON on the worker thread."""

    trace_id: int
    span_id: int
    name: str
    label: str
    score: float | None
    passed: bool | None
    timestamp_ms: int
    reasoning: str | None = None
    tags: tuple[str, ...] = ()


def metric_entries(ev: Evaluation, ml_app: str, tags: Sequence[str]) -> list[dict[str, Any]]:
    """The API's ``EvalMetric`` items for one result: the label as ``categorical``, the score (if any) as ``score``.

    A Datadog label has one type per ml_app: the score goes under ``<label>_score``.
    """
    join = {"span": {"span_id": decimal_id(ev.span_id), "trace_id": decimal_id(ev.trace_id)}}
    all_tags = [SOURCE_OTEL_TAG, *tags, *ev.tags]
    common: dict[str, Any] = {"join_on": join, "ml_app": ml_app, "timestamp_ms": ev.timestamp_ms}
    categorical = {**common, "metric_type": "categorical", "label": evaluation_label(ev.name), "categorical_value": ev.label}
    if ev.passed is not None:
        categorical["assessment"] = "pass" if ev.passed else "fail"
    if ev.reasoning:
        categorical["reasoning"] = ev.reasoning
    categorical["tags"] = all_tags
    out = [categorical]
    if ev.score is not None and isinstance(ev.score, (int, float)) and math.isfinite(ev.score):
        label = evaluation_label(ev.name)[: LABEL_MAX - len(SCORE_SUFFIX)] + SCORE_SUFFIX
        out.append({**common, "metric_type": "score", "label": label, "score_value": float(ev.score), "tags": all_tags})
    return out


def request_body(evaluations: Sequence[Evaluation], ml_app: str, tags: Sequence[str]) -> dict[str, Any]:
    """One ``POST`` body: ``{"data": {"type": "evaluation_metric", "attributes": {"metrics": [...]}}}``."""
    metrics = [entry for ev in evaluations for entry in metric_entries(ev, ml_app, tags)]
    return {"data": {"type": REQUEST_TYPE, "attributes": {"metrics": metrics}}}


def unified_tags(resource: Mapping[str, Any]) -> list[str]:
    """Datadog's unified service tags from the resource the spans carry: ``service``, ``env``, ``version``."""
    tags = []
    for key, tag in ((A.SERVICE_NAME, "service"), (A.DEPLOYMENT_ENVIRONMENT_NAME, "env"), (A.SERVICE_VERSION, "version")):
        value = resource.get(key)
        if isinstance(value, str) and value:
            tags.append(f"{tag}:{value}")
    return tags


# ---- where it goes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The evaluation intake's URL and headers. ``repr`` and ``where`` never show the headers (the API key)."""

    url: str
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)

    @property
    def where(self) -> str:
        return self.url


def agent_base() -> str:
    """The Datadog Agent's APM endpoint, as Datadog's tracers find it: DD_TRACE_AGENT_URL, else DD_AGENT_HOST:DD_TRACE_AGENT_PORT."""
    url = os.environ.get("DD_TRACE_AGENT_URL", "").strip()
    if url:
        return url.rstrip("/")
    host = os.environ.get("DD_AGENT_HOST", "").strip() or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = os.environ.get("DD_TRACE_AGENT_PORT", "").strip() or str(AGENT_APM_PORT)
    return f"http://{host}:{port}"


def target(*, agentless: bool, site: str, api_key: str | None, base: str | None = None) -> Target:
    """Agentless: ``https://api.<site>`` with the API key; else the Agent's EVP proxy. ``base`` replaces the host part."""
    if agentless:
        root = (base or f"https://api.{site}").rstrip("/")
        return Target(root + EVAL_METRIC_PATH, {API_KEY_HEADER: api_key or "", "Content-Type": "application/json"})
    root = (base or agent_base()).rstrip("/")
    return Target(root + AGENT_EVAL_METRIC_PATH, {EVP_SUBDOMAIN_HEADER: EVP_SUBDOMAIN, "Content-Type": "application/json"})


# ---- the sender --------------------------------------------------------------------------------


class _Refused(Exception):
    """The intake answered with a status that retrying will not change (a 4xx other than 408/429)."""


class DatadogEvaluations:
    """A bounded queue of evaluations and the worker thread that posts them in batches.

    ``submit`` is what the emitter calls per call: it never blocks on the network; past
    ``capacity`` the oldest evaluations are dropped (counted, reported on recovery).
    """

    def __init__(
        self, target: Target, *, capacity: int = CAPACITY, batch: int = BATCH, interval_s: float = INTERVAL_S,
        timeout_s: float = TIMEOUT_S, extra_tags: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.capacity, self.batch, self.interval_s, self.timeout_s = capacity, batch, interval_s, timeout_s
        self.ml_app = "unknown_service"
        self.tags: list[str] = list(extra_tags)
        self.health = outbox.ExportHealth(BACKEND)
        # Its outage is not the OTLP pipeline's: the SDK's queue-full warnings must not be counted against it.
        outbox._live.discard(self.health)
        self.sent = 0
        self.dropped = 0
        self.refused = 0
        self._pending: collections.deque[Evaluation] = collections.deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._force = False
        self._forced_passes = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refusals_logged: set[int] = set()

    def __repr__(self) -> str:
        return f"<DatadogEvaluations to {self.target.where} ml_app={self.ml_app!r}>"

    def describe(self, resource: Mapping[str, Any], ml_app: str | None = None) -> None:
        """The service the spans are exported as: ``ml_app`` (DD_LLMOBS_ML_APP, else the service) and unified tags."""
        service = resource.get(A.SERVICE_NAME)
        chosen = ml_app or os.environ.get("DD_LLMOBS_ML_APP", "").strip() or (service if isinstance(service, str) else "")
        self.ml_app = ml_app_name(chosen or "unknown_service")
        if isinstance(service, str) and service and ml_app_name(service) != self.ml_app:
            # Datadog sets an OpenTelemetry span's ml_app from its service: another ml_app joins to nothing.
            logger.warning(
                "micrometrics: evaluations are sent with ml_app=%r, but Datadog files OpenTelemetry spans under their service "
                "(ml_app=%r): they may not join. Set DD_LLMOBS_ML_APP to the service name, or unset it.",
                self.ml_app, ml_app_name(service),
            )
        self.tags = unified_tags(resource) + [t for t in self.tags if t.split(":", 1)[0] not in ("service", "env", "version")]

    # -- the request path: an append --

    def submit(self, call: Any, results: Iterable[tuple[Any, Any, float]]) -> None:
        """The emitter's hook: one call's results, joined to its span (sampled spans only: others are never exported)."""
        ctx = call.span.get_span_context()
        if not ctx.is_valid or not ctx.trace_flags.sampled:
            return
        now_ms = time.time_ns() // 1_000_000
        self.add(
            Evaluation(ctx.trace_id, ctx.span_id, metric.name, result.label, result.score, result.passed, now_ms, result.explanation)
            for metric, result, _took in results
        )

    def add(self, evaluations: Iterable[Evaluation]) -> None:
        items = list(evaluations)
        if not items:
            return
        with self._lock:
            if self._closed:
                self.dropped += len(items)
                return
            self._pending.extend(items)
            self._trim()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="micrometrics-datadog-evaluations", daemon=True)
                self._thread.start()
        if len(self._pending) >= self.batch:
            self._wake.set()

    # -- lifecycle --

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send what is queued now, retrying an outage at once; True when the queue emptied in time."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if self._thread is None:
                return not self._pending
            done_before = self._forced_passes
            self._force = True
        self._wake.set()
        with self._changed:
            while self._pending or self._in_flight:
                if self._forced_passes > done_before and not self._in_flight:
                    return False  # a pass made for this flush ended with evaluations left: the intake is down
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 2.0) -> bool:
        """Flush within ``timeout_s``, then stop the worker; later evaluations are counted as dropped."""
        ok = self.flush(timeout_s)
        with self._lock:
            self._closed = True
            left = len(self._pending)
            self._pending.clear()
            if left:
                self.dropped += left
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(0.5)
        if left:
            logger.warning("micrometrics: %d evaluations were not delivered to %s before shutdown", left, self.target.where)
        return ok

    # -- the worker --

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._lock:
                forced, self._force = self._force, False
            try:
                self._drain(forced)
            except Exception as exc:  # never let the worker die: the next pass tries again
                internal_errors.report("datadog_evaluations", exc)
            with self._changed:
                if forced:
                    self._forced_passes += 1
                self._changed.notify_all()

    def _drain(self, forced: bool) -> None:
        """Batches until the queue is empty, or the intake is down (then the pause of ExportHealth, unless ``forced``)."""
        while True:
            with self._lock:
                if not self._pending:
                    return
                if not forced and self.health.failing and not self.health.may_attempt():
                    return
                batch = [self._pending.popleft() for _ in range(min(self.batch, len(self._pending)))]
                self._in_flight = len(batch)
            outcome = "retry"  # if _post raises, the batch is kept as in an outage
            try:
                outcome = self._post(batch)
            finally:
                with self._changed:
                    self._in_flight = 0
                    if outcome == "retry":
                        self._requeue(batch)
                    self._changed.notify_all()
            if outcome == "retry":
                return

    def _requeue(self, batch: list[Evaluation]) -> None:
        """Back at the front, in order (after close(): counted as dropped). Called with the lock held."""
        if self._closed:
            self.dropped += len(batch)
            return
        self._pending.extendleft(reversed(batch))
        self._trim()

    def _trim(self) -> None:
        """Past capacity the oldest evaluations go, counted. Called with the lock held."""
        over = len(self._pending) - self.capacity
        for _ in range(max(0, over)):
            self._pending.popleft()
        if over > 0:
            self.dropped += over
            self.health.count_dropped("evaluations", over)

    def _post(self, batch: list[Evaluation]) -> str:
        """``sent``, ``refused`` (dropped: retrying would not help) or ``retry`` (kept: an outage)."""
        body = json.dumps(request_body(batch, self.ml_app, self.tags), separators=(",", ":")).encode()
        pause = BACKOFF_FIRST_S
        reason = ""
        for attempt in range(ATTEMPTS):
            try:
                self._send(body)
            except _Refused as exc:
                status = exc.args[0]
                self.refused += len(batch)
                if status not in self._refusals_logged:
                    self._refusals_logged.add(status)
                    logger.warning(
                        "micrometrics: %s refused %d evaluations with HTTP %s; they are dropped (further refusals with this "
                        "status are not logged)", self.target.where, len(batch), status,
                    )
                return "refused"
            except Exception as exc:  # refused connection, timeout, 5xx, 429
                reason = _reason(exc)
                if attempt + 1 < ATTEMPTS and not self._stop.wait(pause):
                    pause *= 2
                    continue
                self.health.failed("evaluations", self.target.where, reason)
                return "retry"
            self.sent += len(batch)
            self.health.succeeded()
            return "sent"
        return "retry"

    def _send(self, body: bytes) -> None:
        request = urllib.request.Request(self.target.url, data=body, method="POST", headers=dict(self.target.headers))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            if 400 <= exc.code < 500 and exc.code not in TRANSIENT_STATUSES:
                raise _Refused(exc.code) from None
            raise _Unavailable(f"HTTP {exc.code}") from None


class _Unavailable(Exception):
    """A status worth retrying (5xx, 408, 429)."""


def _reason(exc: BaseException) -> str:
    """What went wrong, without the request (whose headers hold the API key)."""
    if isinstance(exc, urllib.error.URLError):
        return f"{type(exc.reason).__name__}: {exc.reason}" if isinstance(exc.reason, BaseException) else str(exc.reason)
    return str(exc) or type(exc).__name__
