"""``instrument()`` / ``uninstrument()`` and the ``Instrumentation`` handle."""

from __future__ import annotations

import atexit
import datetime as _dt
import functools
import logging
import os
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from micrometrics import active, export, import_hooks, internal_errors, registry
from micrometrics.settings import OPTIONS, Settings, from_environment, resolve
from micrometrics.attributes import ContentPolicy
from micrometrics.evaluation import MetricSuite
from micrometrics.metric import MicroMetric

if TYPE_CHECKING:
    from micrometrics.runtime import Runtime

logger = logging.getLogger("micrometrics")
_lock = threading.RLock()
_handle: "Instrumentation | None" = None
#: ``shutdown(timeout_s)``: the share of the time pending evaluations get before the rest end unevaluated.
EVALUATION_SHARE = 0.5
#: At exit, after the evaluations' time: what the exporters get to deliver (a backend that is down must not hold the exit).
EXIT_EXPORT_S = 2.0


#: The SDK modules whose presence means the application may have configured OpenTelemetry itself: then
#: ``instrument()`` reads and builds the providers before it returns, as the application expects.
_SDK_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.sdk.metrics", "opentelemetry.sdk._logs")


class _Built:
    """The OpenTelemetry side of one ``instrument()``: the providers (the application's or ours) and the runtime."""

    __slots__ = ("providers", "runtime")

    def __init__(self, providers: Any, runtime: "Runtime") -> None:
        self.providers = providers
        self.runtime = runtime

    def discard(self) -> None:
        """Built after ``uninstrument()`` stopped waiting for it: stop its worker, shut down the providers it created."""
        self.runtime.shutdown(0.0)
        _within(time.monotonic() + 1.0, [(p, p.shutdown) for p in self.providers.owned], flushing=False)


def _build(settings: Settings, suite: MetricSuite, tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> _Built:
    """The providers (see ``export.build``) and the runtime on them: what imports and builds the OpenTelemetry SDK."""
    from micrometrics.runtime import Runtime

    provs = export.build(settings, tracer_provider, meter_provider, logger_provider)
    runtime = Runtime(
        tracer_provider=provs.tracer_provider,
        meter_provider=provs.meter_provider,
        logger_provider=provs.logger_provider,
        metrics=settings.metrics,
        capture_content=settings.capture_mode,
        content_policy=ContentPolicy(settings.redact, settings.max_content_chars),
        max_queue=settings.max_queue,
        deadline_s=settings.evaluation_deadline_s,
        evaluator=settings.evaluator,
        pricing=settings.pricing,
        conventions=settings.conventions,
        evaluation_sink=provs.evaluations.submit if provs.evaluations is not None else None,
        suite=suite,
    )
    return _Built(provs, runtime)


def _in_background(tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> bool:
    """Set up on a background thread: no provider was passed and the application has not imported the SDK, so it
    has configured none (it may still do so before the set-up reads the global providers: then they are used)."""
    if tracer_provider is not None or meter_provider is not None or logger_provider is not None:
        return False
    return not any(name in sys.modules for name in _SDK_MODULES)


class Instrumentation:
    """What ``instrument()`` returns: flush and shut down what it set up."""

    def __init__(self, settings: Settings, setup: "_Built | active.Setup", instrumentors: Mapping[str, Any]) -> None:
        self.settings = settings
        self._setup = setup
        self._by_name = dict(instrumentors)
        self._instrumentors = list(self._by_name.values())
        self._closed = False
        atexit.register(self._at_exit)

    @property
    def instrumentations(self) -> tuple[str, ...]:
        """The libraries whose calls are traced: installed and hooked, whether or not the app imported them yet."""
        return tuple(self._by_name)

    @property
    def pending(self) -> tuple[str, ...]:
        """Of ``instrumentations``, those the application has not imported yet: wrapped when it does."""
        return tuple(name for name, inst in self._by_name.items() if getattr(inst, "waiting", False))

    @property
    def metrics(self) -> tuple[MicroMetric, ...]:
        return tuple(self.settings.metrics)

    def _built(self, timeout_s: float = active.WAIT_S) -> _Built | None:
        """What the set-up built, waiting up to ``timeout_s`` for it; None if it failed or is not done."""
        setup = self._setup
        if isinstance(setup, _Built):
            return setup
        setup.wait(timeout_s)
        if setup.result is not None:
            self._setup = setup.result
        return setup.result

    @property
    def ready(self) -> bool:
        """The OpenTelemetry side is set up (``instrument()`` may build it on a background thread; calls wait for it)."""
        return isinstance(self._setup, _Built) or self._setup.result is not None

    @property
    def runtime(self) -> "Runtime | None":
        built = self._built()
        return built.runtime if built is not None else None

    @property
    def providers(self) -> Any:
        built = self._built()
        return built.providers if built is not None else None

    def _provider(self, kind: str) -> Any:
        built = self._built()
        if built is not None:
            return getattr(built.providers, f"{kind}_provider")
        # The set-up failed (logged): what the OpenTelemetry API hands out.
        from opentelemetry import _logs, metrics as otel_metrics, trace

        return {"tracer": trace.get_tracer_provider, "meter": otel_metrics.get_meter_provider, "logger": _logs.get_logger_provider}[kind]()

    @property
    def tracer_provider(self) -> Any:
        return self._provider("tracer")

    @property
    def meter_provider(self) -> Any:
        return self._provider("meter")

    @property
    def logger_provider(self) -> Any:
        return self._provider("logger")

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Finish pending evaluations, then push every span, metric point and log record out, within ``timeout_s``.

        True only when everything was evaluated and the exporters report it delivered.
        """
        deadline = time.monotonic() + timeout_s
        built = self._built(timeout_s)
        if built is None:
            return False
        ok = built.runtime.flush(max(0.0, deadline - time.monotonic()))
        provs = (built.providers.tracer_provider, built.providers.meter_provider, built.providers.logger_provider)
        calls = [(p, getattr(p, "force_flush", None)) for p in provs]
        evaluations = built.providers.evaluations
        if evaluations is not None:
            # Beside the providers, not before them: a hanging evaluation intake must not hold the spans back.
            calls.append((evaluations, lambda millis: evaluations.flush(millis / 1000)))
        return _within(deadline, [(p, f) for p, f in calls if f is not None], flushing=True) and ok

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Restore every wrapped method, finish pending work, shut down the providers we created, within ``timeout_s``.

        Half the time goes to pending evaluations; calls still queued then end unevaluated (``skipped``), so that
        every span is exported; the rest goes to the exporters.
        """
        self._finish(timeout_s, timeout_s * EVALUATION_SHARE)

    def _finish(self, timeout_s: float, evaluation_s: float, export_s: float | None = None) -> None:
        """Within ``timeout_s``: evaluations for up to ``evaluation_s``, then the exporters (for at most ``export_s``)."""
        global _handle
        deadline = time.monotonic() + timeout_s
        with _lock:
            if self._closed:
                return
            self._closed = True
            for inst in self._instrumentors:
                try:
                    inst.uninstrument()
                except Exception as exc:
                    logger.debug("micrometrics: uninstrument of %r failed: %s", inst, exc)
            # A set-up still running gets the time left (the set-up never takes _lock); one not done by then is
            # cancelled: what it builds later is discarded.
            built = self._built(max(0.0, deadline - time.monotonic()))
            setup = self._setup
            if built is None and not isinstance(setup, _Built):
                setup.cancel()
            if built is not None and active.current() is built.runtime:
                active.set_current(None)
            if _handle is self:
                _handle = None
        try:
            atexit.unregister(self._at_exit)
        except Exception:
            pass
        if built is None:
            return
        tp = built.providers.tracer_provider
        push = getattr(tp, "force_flush", None)
        try:
            built.runtime.shutdown(evaluation_s, push=(lambda: _within(deadline, [(tp, push)], flushing=True)) if push else None)
        except Exception as exc:  # shutdown runs in the app's exit path: never raise there
            internal_errors.report("finish", exc)
        if export_s is not None:
            deadline = min(deadline, time.monotonic() + export_s)
        work = [(proc, proc.force_flush) for proc in built.providers.attached]
        work += [(p, p.shutdown) for p in built.providers.owned]
        evaluations = built.providers.evaluations
        if evaluations is not None:
            # Every result is enqueued by now: sent beside the exporters, within the same deadline.
            work.append((evaluations, lambda: evaluations.close(max(0.0, deadline - time.monotonic() - 0.05))))
        _within(deadline, work, flushing=False)

    def _at_exit(self) -> None:
        # Runs before the SDK providers' own exit hooks (registered earlier; ours are off): evaluations get their
        # deadline and a second, the exporters a bounded time, and every span ends either way.
        if not self._closed:
            evaluation_s = self.settings.evaluation_deadline_s + 1.0
            self._finish(evaluation_s + EXIT_EXPORT_S, evaluation_s, EXIT_EXPORT_S)

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
    pricing: Mapping[str, Mapping[str, Any]] | str | os.PathLike[str] | None = None,
    datadog_agentless: bool | None = None,
    datadog_evaluations: bool | str | None = None,
    jaeger_metrics: str = "none",
    conventions: str | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
) -> Instrumentation:
    """Instrument every supported LLM and retrieval client, and start the micro metrics.

    One call, once per process: a second call returns the same handle (and warns if
    its options differ). Every option is declared, checked and documented in
    ``micrometrics.settings.OPTIONS``; see the README for the table.
    """
    global _handle
    arguments = dict(locals())  # first statement: the arguments and nothing else
    settings = resolve(**{option.name: arguments[option.name] for option in OPTIONS})
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
        _prepare_guards(settings.metrics)
        export.check(settings)  # what the pipeline would raise on the application's configuration, raised here
        suite = MetricSuite(settings.metrics)  # and what reading the metrics raises
        build = functools.partial(_build, settings, suite, tracer_provider, meter_provider, logger_provider)
        setup: _Built | active.Setup
        if _in_background(tracer_provider, meter_provider, logger_provider):
            # The SDK is imported and built on a thread (most of this call's time otherwise); calls wait for it.
            setup = active.Setup(build, settings.metrics)
        else:
            setup = build()
            active.set_current(setup.runtime)
        try:
            _handle = Instrumentation(settings, setup, _instrument_libraries(settings.instrumentations))
        except BaseException:
            if isinstance(setup, active.Setup):
                setup.cancel()
            raise
        if isinstance(setup, active.Setup):
            setup.start()  # last: the build does not share the interpreter with the hooking above
        return _handle


def _instrument_libraries(names: Sequence[str]) -> dict[str, Any]:
    """Hook each installed library by its module's name: its instrumentation loads and wraps when the app imports it (at once if it has)."""
    instrumentors: dict[str, Any] = {}
    for name in names:
        if not registry.installed(name):
            # The default selection holds installed libraries only: this one was asked for by name.
            warnings.warn(
                f"micrometrics.instrument(instrumentations=[..., {name!r}, ...]): {registry.library(name)} is not "
                f"installed, so it is not instrumented; install it with: pip install \"micrometrics[{registry.extra(name)}]\"",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        try:
            hooked = import_hooks.Deferred(name, registry.library(name))
            if hooked.active:
                instrumentors[name] = hooked
            else:
                hooked.uninstrument()
        except Exception as exc:
            logger.warning("micrometrics: could not instrument %s: %s", name, exc)
    return instrumentors


def uninstrument(timeout_s: float = 5.0) -> None:
    """Undo ``instrument()``: restore every wrapped method, flush, shut down what we created."""
    handle = _handle
    if handle is not None:
        handle.shutdown(timeout_s)


def _within(deadline: float, work: list[tuple[Any, Callable[..., Any]]], *, flushing: bool) -> bool:
    """Run each call (a provider's force_flush or shutdown) on its own daemon thread and wait until ``deadline`` at most.

    The SDK's force_flush ignores its timeout and an exporter's request can hang: the caller must not. True when every
    call finished in time and none reported failure.
    """
    results: list[bool] = []
    threads = []
    for target, call in work:
        def run(call: Callable[..., Any] = call, target: Any = target) -> None:
            try:
                if flushing:
                    results.append(bool(call(max(1, int((deadline - time.monotonic()) * 1000)))))
                else:
                    call()
                    results.append(True)
            except Exception as exc:
                logger.debug("micrometrics: %s of %r failed: %s", "force_flush" if flushing else "shutdown", target, exc)
                results.append(False)

        t = threading.Thread(target=run, name="micrometrics-flush", daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return len(results) == len(threads) and all(results)


def current() -> Instrumentation | None:
    return _handle


def _prepare_guards(metrics: Sequence[MicroMetric]) -> None:
    """Load what guards need now, so that the first guarded call is not spent loading (and timed out)."""
    for metric in metrics:
        if metric.mode == "guard":
            metric.prepare()


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


def runtime_for_auto_instrumentation(**kwargs: Any) -> "Runtime":
    """The runtime behind ``opentelemetry-instrument``: global providers, the options the environment sets."""
    from opentelemetry import _logs, metrics as otel_metrics, trace

    from micrometrics import runtime as runtimes

    with _lock:
        existing = runtimes.current()
        if existing is not None:
            return existing
        options = from_environment()
        _prepare_guards(options["metrics"])
        runtime = runtimes.Runtime(
            tracer_provider=kwargs.get("tracer_provider") or trace.get_tracer_provider(),
            meter_provider=kwargs.get("meter_provider") or otel_metrics.get_meter_provider(),
            logger_provider=kwargs.get("logger_provider") or _logs.get_logger_provider(),
            metrics=options["metrics"],
            capture_content=options["capture_content"],
            content_policy=ContentPolicy(options["redact"], options["max_content_chars"]),
            max_queue=options["max_queue"],
            deadline_s=options["evaluation_deadline_s"],
            evaluator=options["evaluator"],
            pricing=options["pricing"],
            conventions=options["conventions"],
        )
        runtimes.set_current(runtime)
        atexit.register(runtime.shutdown, 3.0)  # evaluations get 3 s; every span still ends (skipped, counted)
        return runtime
