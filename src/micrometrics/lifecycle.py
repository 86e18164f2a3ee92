"""``instrument()`` / ``uninstrument()`` and the ``Instrumentation`` handle."""

from __future__ import annotations

import atexit
import datetime as _dt
import logging
import threading
import warnings
from typing import Any, Callable, Mapping, Sequence

from micrometrics import config, core, metricsconfig, providers, registry
from micrometrics.attributes import ContentPolicy
from micrometrics.metric import MicroMetric

logger = logging.getLogger("micrometrics")
_lock = threading.RLock()
_handle: "Instrumentation | None" = None


class Instrumentation:
    """What ``instrument()`` returns: flush and shut down what it set up."""

    def __init__(self, settings: config.Settings, runtime: core.Runtime, provs: providers.Providers, instrumentors: list[Any]) -> None:
        self.settings = settings
        self.runtime = runtime
        self.providers = provs
        self._instrumentors = instrumentors
        self._closed = False
        atexit.register(self._at_exit)

    @property
    def instrumentations(self) -> tuple[str, ...]:
        return self.settings.instrumentations

    @property
    def metrics(self) -> tuple[MicroMetric, ...]:
        return tuple(self.settings.metrics)

    @property
    def tracer_provider(self) -> Any:
        return self.providers.tracer_provider

    @property
    def meter_provider(self) -> Any:
        return self.providers.meter_provider

    @property
    def logger_provider(self) -> Any:
        return self.providers.logger_provider

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Finish pending evaluations, then push every span, metric point and log record out."""
        ok = self.runtime.flush(timeout_s)
        for p in (self.providers.tracer_provider, self.providers.meter_provider, self.providers.logger_provider):
            flush = getattr(p, "force_flush", None)
            if flush is None:
                continue
            try:
                ok = bool(flush(int(timeout_s * 1000))) and ok
            except Exception as exc:
                logger.debug("micrometrics: force_flush of %r failed: %s", p, exc)
                ok = False
        return ok

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Restore every wrapped method, finish pending work, shut down the providers we created."""
        global _handle
        with _lock:
            if self._closed:
                return
            self._closed = True
            for inst in self._instrumentors:
                try:
                    inst.uninstrument()
                except Exception as exc:
                    logger.debug("micrometrics: uninstrument of %r failed: %s", inst, exc)
            if core.current() is self.runtime:
                core.set_current(None)
            if _handle is self:
                _handle = None
        self.runtime.shutdown(timeout_s)
        for proc in self.providers.attached:
            try:
                proc.force_flush(int(timeout_s * 1000))
            except Exception:
                pass
        for p in self.providers.owned:
            try:
                p.shutdown()
            except Exception as exc:
                logger.debug("micrometrics: shutdown of %r failed: %s", p, exc)
        try:
            atexit.unregister(self._at_exit)
        except Exception:
            pass

    def _at_exit(self) -> None:
        # Runs before the SDK providers' own exit hooks (registered earlier): pending monitors first.
        if not self._closed:
            self.runtime.flush(self.settings.evaluation_deadline_s + 1.0)

    def __enter__(self) -> "Instrumentation":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<micrometrics.Instrumentation exporter={self.settings.exporter!r} instrumentations={self.instrumentations}>"


def instrument(
    *,
    service_name: str | None = None,
    exporter: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    capture_content: bool | str | None = None,
    instrumentations: Sequence[str] | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    metrics: Sequence[MicroMetric] | None = None,
    redact: Callable[[str], str] | None = None,
    max_content_chars: int | None = None,
    max_queue: int = 10_000,
    evaluation_deadline_s: float = 2.0,
    evaluator: str | None = None,
    datadog_agentless: bool | None = None,
    jaeger_metrics: str = "none",
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
) -> Instrumentation:
    """Instrument every supported LLM and retrieval client, and start the micro metrics.

    One call, once per process: a second call returns the same handle (and warns if
    its options differ). See the README for every option.
    """
    global _handle
    settings = config.resolve(
        service_name=service_name, exporter=exporter, endpoint=endpoint, protocol=protocol, headers=headers,
        capture_content=capture_content, instrumentations=instrumentations, resource_attributes=resource_attributes,
        metrics=metrics, redact=redact, max_content_chars=max_content_chars, max_queue=max_queue,
        evaluation_deadline_s=evaluation_deadline_s, evaluator=evaluator, datadog_agentless=datadog_agentless, jaeger_metrics=jaeger_metrics,
    )
    with _lock:
        if _handle is not None:
            if _handle.settings.comparable() != settings.comparable():
                warnings.warn(
                    "micrometrics.instrument() was already called with other options; the first call's options stay in force. "
                    "Call micrometrics.uninstrument() first to change them.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return _handle
        _warn_overdue(settings.metrics)
        for metric in settings.metrics:
            if metric.mode == "guard":
                metric.prepare()
        provs = providers.build(settings, tracer_provider, meter_provider, logger_provider)
        runtime = core.Runtime(
            tracer_provider=provs.tracer_provider,
            meter_provider=provs.meter_provider,
            logger_provider=provs.logger_provider,
            metrics=settings.metrics,
            capture_content=settings.capture_mode,
            content_policy=ContentPolicy(settings.redact, settings.max_content_chars),
            max_queue=settings.max_queue,
            deadline_s=settings.evaluation_deadline_s,
            evaluator=settings.evaluator,
        )
        core.set_current(runtime)
        instrumentors = []
        for name in settings.instrumentations:
            try:
                inst = registry.instrumentor(name)
                if not inst.is_instrumented_by_opentelemetry:
                    inst.instrument(skip_dep_check=True)
                instrumentors.append(inst)
            except Exception as exc:
                logger.warning("micrometrics: could not instrument %s: %s", name, exc)
        _handle = Instrumentation(settings, runtime, provs, instrumentors)
        return _handle


def uninstrument(timeout_s: float = 5.0) -> None:
    """Undo ``instrument()``: restore every wrapped method, flush, shut down what we created."""
    handle = _handle
    if handle is not None:
        handle.shutdown(timeout_s)


def current() -> Instrumentation | None:
    return _handle


def _warn_overdue(metrics: Sequence[MicroMetric]) -> None:
    today = _dt.date.today()
    for m in metrics:
        if m.review_by is not None and m.review_by < today:
            warnings.warn(
                f"micro metric {m.name!r} (owner: {m.owner or 'unknown'}) was due for review on {m.review_by.isoformat()}: "
                "keep it (set a new review_by) or retire it",
                UserWarning,
                stacklevel=3,
            )


def runtime_for_auto_instrumentation(**kwargs: Any) -> core.Runtime:
    """The runtime behind ``opentelemetry-instrument``: global providers, default metrics."""
    from opentelemetry import _logs, metrics as otel_metrics, trace

    with _lock:
        existing = core.current()
        if existing is not None:
            return existing
        try:
            capture = config.env_capture_mode()
        except ValueError as exc:
            # The loader would blame the first library it instruments: name the variable instead, capture nothing.
            logger.error("micrometrics: %s; exporting no content", exc)
            capture = False
        runtime = core.Runtime(
            tracer_provider=kwargs.get("tracer_provider") or trace.get_tracer_provider(),
            meter_provider=kwargs.get("meter_provider") or otel_metrics.get_meter_provider(),
            logger_provider=kwargs.get("logger_provider") or _logs.get_logger_provider(),
            metrics=metricsconfig.apply_env(config.default_metrics()),
            capture_content=capture,
        )
        core.set_current(runtime)
        atexit.register(runtime.flush, 3.0)
        return runtime
