"""Fault matrix: every instrumented library x sync/async x plain/stream x every stage of our pipeline.

Each case breaks one stage of micrometrics (fault injection: the stage's function
raises), makes the same call twice, and checks what the application and its
operators see: the call returns exactly what it returns uninstrumented (or raises
exactly the provider's exception), the fault is counted in
``micrometrics.internal.errors`` by stage, and logged once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

import micrometrics
from micrometrics import emission, internal_errors, monitor_worker, runtime
from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics import metrics as builtin_metrics
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from reliability_libraries import Library, libraries


class InjectedFault(Exception):
    """What a broken stage raises."""


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise InjectedFault("injected by the reliability suite")


class FirstAttemptFails(MicroMetric):
    """A guard that asks for one retry: it fails the first attempt of every call."""

    name = "first_attempt_fails"
    mode = "guard"
    max_retries = 1

    def evaluate(self, call: CallView) -> Result:
        return Result("fail" if call.attempt == 1 else "pass")


class FirstStreamPrefixFails(FirstAttemptFails):
    """The same on a stream's prefix, before the caller sees a chunk."""

    name = "first_stream_prefix_fails"
    stream_prefix_chars = 1


def _break_second_accumulator(lib: Library, mp: Any) -> None:
    """Only the restarted stream's accumulator cannot be built."""
    cls = lib.translator()
    original = cls.accumulator
    built = []  # the attempt is the runtime's, not the record's: every call builds two, the second is the restart's

    def accumulator(self: Any, record: Any, stream: Any) -> Any:
        built.append(None)
        if len(built) % 2 == 0:
            raise InjectedFault("injected by the reliability suite")
        return original(self, record, stream)

    mp.setattr(cls, "accumulator", accumulator)


def _guards(mode: str) -> list[MicroMetric]:
    return [FirstStreamPrefixFails() if "stream" in mode else FirstAttemptFails()]


@dataclass(frozen=True)
class Stage:
    name: str
    reported_as: str  # the stage name micrometrics.internal.errors counts it under
    applies: Callable[[Library, str, bool], bool]  # (library, mode, error call)
    inject: Callable[[Library, Any], None]  # (library, monkeypatch)
    span_survives: bool  # the call's span is still exported
    metrics: Callable[[str], list[MicroMetric]] | None = None  # instrument(metrics=...) by mode; None: defaults
    spans_per_call: int = 1


def _inference(lib: Library) -> bool:
    return lib.evaluated_by == "LanguageMatch"


def _evaluated(lib: Library) -> bool:
    return lib.evaluated_by is not None


def _break_metric(lib: Library, mp: Any) -> None:
    mp.setattr(getattr(builtin_metrics, lib.evaluated_by), "evaluate", _boom)


STAGES = [
    Stage("request_translation", "request", lambda lib, mode, err: True,
          lambda lib, mp: mp.setattr(lib.translator(), "request", _boom), False),
    Stage("span_start", "request", lambda lib, mode, err: True,
          lambda lib, mp: mp.setattr(runtime.Runtime, "start", _boom), False),
    Stage("response_translation", "response", lambda lib, mode, err: not err and "stream" not in mode,
          lambda lib, mp: mp.setattr(lib.translator(), "response", _boom), True),
    Stage("stream_start", "stream_start", lambda lib, mode, err: not err and "stream" in mode,
          lambda lib, mp: mp.setattr(lib.translator(), "accumulator", _boom), True),
    Stage("stream_chunk", "stream_chunk", lambda lib, mode, err: not err and "stream" in mode,
          lambda lib, mp: mp.setattr(lib.accumulator(), "add", _boom), True),
    Stage("stream_end", "response", lambda lib, mode, err: not err and "stream" in mode,
          lambda lib, mp: mp.setattr(lib.accumulator(), "apply", _boom), True),
    Stage("finish", "finish", lambda lib, mode, err: not err,
          lambda lib, mp: mp.setattr(runtime.Runtime, "finish", _boom), True),
    Stage("error_finish", "finish", lambda lib, mode, err: err,
          lambda lib, mp: mp.setattr(runtime.Runtime, "fail", _boom), True),
    Stage("emission", "emission", lambda lib, mode, err: not err and _evaluated(lib),
          lambda lib, mp: mp.setattr(emission.Emitter, "emit", _boom), True),
    Stage("evaluation", "evaluation", lambda lib, mode, err: not err and _evaluated(lib),
          _break_metric, True),
    Stage("evaluation_setup", "evaluation", lambda lib, mode, err: not err and _evaluated(lib),
          lambda lib, mp: mp.setattr(monitor_worker, "CallView", _boom), True),
    Stage("guard_retry", "retry", lambda lib, mode, err: not err and _inference(lib),
          lambda lib, mp: mp.setattr(lib.translator(), "retry", _boom), True, _guards),
    Stage("guard_evaluation", "evaluation", lambda lib, mode, err: not err and _inference(lib),
          lambda lib, mp: mp.setattr(FirstAttemptFails, "evaluate", _boom), True, _guards),
    Stage("guard_emission", "finish", lambda lib, mode, err: not err and _inference(lib) and "stream" not in mode,
          lambda lib, mp: mp.setattr(emission.Emitter, "emit", _boom), True, _guards),
    Stage("guard_restart_stream_start", "stream_start", lambda lib, mode, err: not err and _inference(lib) and "stream" in mode,
          _break_second_accumulator, True, _guards, spans_per_call=2),
]


def _cases() -> list[Any]:
    cases = []
    for lib in libraries():
        for mode in lib.all_modes():
            for err in (False, True):
                for stage in STAGES:
                    if stage.applies(lib, mode, err):
                        cid = f"{lib.id}-{mode}-{'error' if err else 'ok'}-{stage.name}"
                        cases.append(pytest.param(lib, mode, err, stage, id=cid))
    return cases


CASES = _cases()


def internal_error_points(telemetry: Any) -> dict[tuple[str, str], int]:
    points = telemetry.metrics().get(M.MICROMETRICS_INTERNAL_ERRORS, [])
    return {(p.attributes[A.MICROMETRICS_STAGE], p.attributes[A.ERROR_TYPE]): p.value for p in points}


@pytest.mark.parametrize("lib, mode, error, stage", CASES)
def test_a_broken_stage_never_changes_the_call(lib, mode, error, stage, demo, telemetry, monkeypatch, debug_log):
    uninstrumented = lib.run(demo, mode, error=error)
    assert uninstrumented.kind == ("error" if error else "stream" if "stream" in mode else "value")

    options = {"metrics": stage.metrics(mode)} if stage.metrics else {}
    telemetry.instrument(instrumentations=[lib.instrumentation], **options)
    stage.inject(lib, monkeypatch)
    first = lib.run(demo, mode, error=error)
    second = lib.run(demo, mode, error=error)
    telemetry.flush()  # the monitors run with the stage still broken
    monkeypatch.undo()

    # The application sees exactly what it sees without micrometrics.
    assert first == uninstrumented
    assert second == uninstrumented

    # Operators see the fault: counted by stage (twice), logged once.
    telemetry.flush()
    assert internal_errors.totals.get(stage.reported_as) == 2, internal_errors.totals
    assert internal_error_points(telemetry) == {(stage.reported_as, "InjectedFault"): 2}
    logged = [r for r in debug_log.records if "internal error at stage" in r.getMessage()]
    assert len(logged) == 1 and repr(stage.reported_as) in logged[0].getMessage()

    # The span is not lost to a fault after it started.
    spans = [s for s in telemetry.spans() if s.name == lib.span(error)]
    assert len(spans) == (2 * stage.spans_per_call if stage.span_survives else 0)
    if error and stage.name != "error_finish":
        assert all(s.attributes[A.ERROR_TYPE] == "500" for s in spans)


def test_the_matrix_covers_every_library_mode_and_stage():
    ids = {p.id for p in CASES}
    assert len(ids) == len(CASES) >= 40
    assert {s.name for s in STAGES} == {p.values[3].name for p in CASES}


@pytest.mark.parametrize(
    "lib, mode",
    [pytest.param(lib, mode, id=f"{lib.id}-{mode}") for lib in libraries() for mode in lib.all_modes()],
)
def test_a_broken_exporter_never_changes_the_call_and_export_resumes(lib, mode, demo, sink, monkeypatch, debug_log):
    """The export stage, with the OTLP pipeline instrument() builds: the exporter itself raises."""
    uninstrumented = lib.run(demo, mode)
    handle = micrometrics.instrument(exporter="otlp", endpoint=sink.url, instrumentations=[lib.instrumentation], metrics=[])
    try:
        monkeypatch.setattr(OTLPSpanExporter, "export", _boom)
        broken = [lib.run(demo, mode), lib.run(demo, mode)]
        handle.force_flush()
        monkeypatch.undo()
        healed = lib.run(demo, mode)
        handle.force_flush()
    finally:
        micrometrics.uninstrument()

    assert broken == [uninstrumented, uninstrumented] and healed == uninstrumented
    assert internal_errors.totals.get("export", 0) >= 1 and set(internal_errors.totals) == {"export"}
    logged = [r for r in debug_log.records if "internal error at stage" in r.getMessage()]
    assert len(logged) == 1
    counted = [(a, v) for a, v in sink.metric_points(M.MICROMETRICS_INTERNAL_ERRORS) if a[A.MICROMETRICS_STAGE] == "export"]
    assert counted and counted[-1][1] == internal_errors.totals["export"]
    # The pipeline is not wedged: the call after the fault is exported.
    assert [s.name for s in sink.spans()] == [lib.span()]
