"""instrument(): options, environment, idempotence, uninstrument, coexistence, faults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import openai
import pytest
import wrapt

import micrometrics
from micrometrics import internal_errors
from micrometrics.metrics import BannedPhrases, ContextUtilization, LanguageMatch, ResponseLength, RetrievalPrecision
from micrometrics_instrumentation.openai.translators import ChatTranslator
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Hallo, wo ist meine Bestellung? Ich warte seit Tagen darauf."}]


def client(demo):
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize(
    "options,error,needle",
    [
        ({"exporter": "bogus"}, ValueError, "'console', 'otlp', 'jaeger', 'datadog', 'none'"),
        ({"protocol": "thrift"}, ValueError, "'http/protobuf', 'grpc'"),
        ({"instrumentations": ["openai", "cohere"]}, ValueError, "'cohere'"),
        ({"metrics": [LanguageMatch]}, TypeError, "pass an instance"),
        ({"metrics": ["language_match"]}, TypeError, "is not a metric"),
        ({"metrics": LanguageMatch()}, TypeError, "list of micrometrics.MicroMetric"),
        ({"evaluation_deadline_s": float("inf")}, ValueError, "finite positive number"),
        ({"evaluation_deadline_s": float("nan")}, ValueError, "finite positive number"),
        ({"evaluation_deadline_s": True}, ValueError, "finite positive number"),
        ({"instrumentations": {"openai": True}}, TypeError, "takes a list of library names"),
        ({"evaluator": "subprocess"}, ValueError, "'thread', 'process'"),
        ({"metrics": [LanguageMatch(), LanguageMatch()]}, ValueError, "two metrics are named 'language_match'"),
        ({"endpoint": "localhost:4317"}, ValueError, "must be a URL"),
        ({"capture_content": "yes"}, ValueError, "SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT"),
        ({"capture_content": 1}, TypeError, "NO_CONTENT"),
        ({"max_content_chars": 0}, ValueError, "positive int"),
    ],
)
def test_bad_options_raise_at_instrument_time_naming_value_and_allowed(options, error, needle):
    with pytest.raises(error) as info:
        micrometrics.instrument(**options)
    assert needle in str(info.value)
    assert micrometrics.installation.current() is None


@pytest.mark.parametrize(
    "build, needle",
    [
        (lambda: LanguageMatch(mode="gaurd"), "mode='gaurd' is not allowed; use one of 'async', 'guard'"),
        (lambda: LanguageMatch(sample_rate=-0.1), "sample_rate=-0.1"),
        (lambda: LanguageMatch(budget_s=float("nan")), "budget_s=nan must be a finite positive number"),
        (lambda: LanguageMatch(on_fail="ignore"), "'return', 'raise'"),
        (lambda: LanguageMatch(cost_per_failure=float("inf")), "cost_per_failure=inf"),
        (lambda: ResponseLength(max_words=0), "max_words=0 must be an int >= 1"),
        (lambda: ResponseLength(min_words=5, max_words=2), "min_words=5 is above max_words=2"),
        (lambda: RetrievalPrecision(k=0), "k=0"),
        (lambda: ContextUtilization(min_fraction=2), "min_fraction=2"),
        (lambda: BannedPhrases(phrases=[""]), "non-empty strings"),
    ],
)
def test_a_bad_builtin_metric_option_raises_in_its_constructor(build, needle):
    """Where the mistake is made, naming the value and what is allowed; not later, at instrument()."""
    with pytest.raises(ValueError) as info:
        build()
    assert needle in str(info.value)


def test_evaluator_is_case_insensitive_like_every_choice_option():
    from micrometrics import settings

    assert settings.resolve(evaluator="Process", exporter="none", metrics=[]).evaluator == "process"


def test_an_explicit_noop_tracer_provider_is_respected_not_replaced(demo, caplog):
    """The app said "no tracing": no span is recorded anywhere, the call works, and we say so once."""
    from opentelemetry.trace import NoOpTracerProvider
    from telemetry_harness import Telemetry

    t = Telemetry()
    noop = NoOpTracerProvider()
    try:
        with caplog.at_level("WARNING", logger="micrometrics"):
            handle = micrometrics.instrument(
                tracer_provider=noop, meter_provider=t.meter_provider, logger_provider=t.logger_provider, exporter="none", metrics=[LanguageMatch()]
            )
        assert handle.tracer_provider is noop
        r = client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert r.choices[0].message.content
        handle.force_flush()
        assert t.span_exporter.get_finished_spans() == ()
        assert M.GEN_AI_CLIENT_OPERATION_DURATION in t.metrics()  # metrics still go where the app asked
        assert [m for m in caplog.messages if "TracerProvider is a no-op" in m]
    finally:
        t.close()


def test_bogus_exporter_lists_the_allowed_exporters():
    with pytest.raises(ValueError, match="exporter='bogus'.*'console', 'otlp'.*'none'"):
        micrometrics.instrument(exporter="bogus")


def test_second_instrument_returns_same_handle_and_warns_on_different_options(telemetry):
    first = telemetry.instrument(metrics=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert telemetry.instrument(metrics=[]) is first  # same options: silent
    with pytest.warns(RuntimeWarning, match="already called with other options"):
        assert micrometrics.instrument(exporter="none", capture_content=True) is first


def test_uninstrument_restores_every_wrapped_method(demo, telemetry):
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.embeddings import Embeddings
    from openai.resources.responses import Responses

    originals = {c: c.__dict__["create"] for c in (Completions, AsyncCompletions, Embeddings, Responses)}
    telemetry.instrument(metrics=[])
    assert all(isinstance(c.__dict__["create"], wrapt.FunctionWrapper) for c in originals)
    client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(telemetry.spans()) == 1
    micrometrics.uninstrument()
    assert all(c.__dict__["create"] is original for c, original in originals.items())
    client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(telemetry.spans(flush=False)) == 1


def test_environment_is_honoured_and_explicit_arguments_win(monkeypatch, telemetry):
    monkeypatch.setenv("MICROMETRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-bot")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    from micrometrics import settings

    s = settings.resolve()
    assert (s.exporter, s.service_name, s.capture_content) == ("none", "support-bot", True)
    s = settings.resolve(exporter="console", service_name="other", capture_content=False)
    assert (s.exporter, s.service_name, s.capture_content) == ("console", "other", False)
    monkeypatch.delenv("MICROMETRICS_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert settings.resolve().exporter == "otlp"
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert settings.resolve().exporter == "console"


def test_a_fault_inside_our_translator_leaves_the_call_unchanged(demo, telemetry, monkeypatch):
    telemetry.instrument(metrics=[])
    internal_errors.reset_for_tests()
    expected = client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)

    def broken(self, record, response):
        raise RuntimeError("translator bug")

    monkeypatch.setattr(ChatTranslator, "response", broken)
    got = client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
    assert got.choices[0].message.content == expected.choices[0].message.content
    assert type(got) is type(expected)
    assert internal_errors.totals == {"response": 1}
    (point,) = telemetry.metrics()[M.MICROMETRICS_INTERNAL_ERRORS]
    assert point.value == 1 and point.attributes[A.MICROMETRICS_STAGE] == "response"
    assert len(telemetry.spans()) == 2  # the call is still traced, with what we could read


def test_a_fault_building_the_request_record_calls_straight_through(demo, telemetry, monkeypatch):
    telemetry.instrument(metrics=[])
    internal_errors.reset_for_tests()
    monkeypatch.setattr(ChatTranslator, "request", lambda *a: 1 / 0)
    r = client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.choices[0].message.content
    assert internal_errors.totals == {"request": 1}
    assert telemetry.spans() == []


def test_console_exporter_prints_one_line_per_span(demo, telemetry, capsys):
    telemetry.instrument(exporter="console")
    client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    telemetry.flush()
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("[micrometrics]")]
    assert len(lines) == 1
    assert "chat gpt-4o-mini" in lines[0] and "tokens in=" in lines[0] and "finish=stop" in lines[0]
    assert "language_match=match" in lines[0] and "response_length=pass" in lines[0]
    assert "\033[" not in lines[0]  # no colour when stderr is not a terminal


def _run(script: str, env: dict | None = None, args: list[str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "examples"), **(env or {})}
    cmd = (args or [sys.executable]) + ["-c", textwrap.dedent(script)]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=120)


APP_WITH_PROVIDERS = """
    from opentelemetry import trace, metrics
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import openai, micrometrics
    from demo_server import DemoServer

    exporter = InMemorySpanExporter()
    app_tp = TracerProvider()
    app_tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(app_tp)
    with DemoServer() as srv:
        handle = micrometrics.instrument(metrics=[])
        assert trace.get_tracer_provider() is app_tp, "replaced the app's provider"
        assert handle.tracer_provider is app_tp
        openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        handle.shutdown()
    print([s.name for s in exporter.get_finished_spans()])
"""


def test_existing_application_providers_are_used_and_not_replaced():
    out = _run(APP_WITH_PROVIDERS)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['chat gpt-4o-mini']"
    assert "[micrometrics]" not in out.stderr  # no console exporter attached: exporter was not passed


AUTO = """
    import openai, wrapt
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from demo_server import DemoServer

    exporter = InMemorySpanExporter()
    tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exporter)); trace.set_tracer_provider(tp)
    from openai.resources.chat.completions import Completions
    print("wrapped" if isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper) else "plain")
    with DemoServer() as srv:
        openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello, where is my order? It has been a week."}])
    import micrometrics.runtime as runtime
    if runtime.current() is not None:
        runtime.current().flush(5)
    print(sorted({k for s in exporter.get_finished_spans() for k in s.attributes if k.endswith(".label")}))
    print([s.name for s in exporter.get_finished_spans()])
"""


def test_opentelemetry_instrument_picks_up_the_openai_instrumentor():
    tool = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    out = _run(AUTO, env, [str(tool), sys.executable])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "wrapped"
    assert lines[1] == "['micrometrics.language_match.label', 'micrometrics.response_length.label']"
    assert lines[2] == "['chat gpt-4o-mini']"

    # Our entry point is micrometrics_openai: a bare `openai` turns off other packages' openai instrumentors only.
    off = _run(AUTO, {**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "requests, micrometrics_openai"}, [str(tool), sys.executable])
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip().splitlines()[0] == "plain"
    assert off.stdout.strip().splitlines()[2] == "[]"
    other = _run(AUTO, {**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai"}, [str(tool), sys.executable])
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip().splitlines()[2] == "['chat gpt-4o-mini']"


def test_a_bad_capture_variable_under_zero_code_is_logged_naming_it_and_the_calls_are_traced():
    """Not a crash the loader blames on the first library it instruments (anthropic, say)."""
    tool = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "EVENTS",
           "PYTHONPATH": os.pathsep.join(str(ROOT / d) for d in ("examples", "src", "semconv", "instrumentation"))}  # this tree, not an install
    out = _run(AUTO, env, [str(tool), sys.executable])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[2] == "['chat gpt-4o-mini']"
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'EVENTS' is not a content capture mode" in out.stderr
    assert "Instrumenting of" not in out.stderr


# ---- issue 14: expected_language forms, context() typos, one service name ---------------------------


def _german_answer(demo):
    demo.enqueue(json={"id": "chatcmpl-de", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
         "content": "Ihre Bestellung wurde gestern verschickt und kommt voraussichtlich morgen bei Ihnen an."}}]})


@pytest.mark.parametrize("language", ["German", "german", "deu", "ger", "de", "de-AT", "DE_de"])
@pytest.mark.parametrize("where", ["context", "metric"])
def test_expected_language_accepts_codes_tags_and_english_names(language, where, demo, telemetry):
    telemetry.instrument(metrics=[LanguageMatch(expected=language) if where == "metric" else LanguageMatch()])
    _german_answer(demo)
    if where == "context":
        with micrometrics.context(expected_language=language):
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    else:
        client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = telemetry.span().attributes
    assert attrs["micrometrics.language_match.label"] == "match"
    assert attrs["micrometrics.language_match.expected"] == "de"


@pytest.mark.parametrize("language", ["xx", "Klingon", "de-", "", 7])
def test_an_unknown_expected_language_is_rejected_where_it_is_given(language):
    with pytest.raises(ValueError, match=r"expected.*(ISO 639|BCP 47).*German"):
        LanguageMatch(expected=language)
    with pytest.raises(ValueError, match=r"context\(expected_language=\.\.\.\).*(ISO 639|BCP 47)"):
        with micrometrics.context(expected_language=language):
            pass


def test_a_context_key_no_active_metric_reads_warns_once(demo, telemetry):
    from micrometrics import callcontext

    callcontext._warned.discard("expected_languages")
    telemetry.instrument(metrics=[LanguageMatch()])
    with pytest.warns(UserWarning, match=r"context\(expected_languages=\.\.\.\): no active metric reads 'expected_languages'.*expected_language"):
        with micrometrics.context(expected_languages="de"):
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with micrometrics.context(expected_languages="de"):  # once per name
            pass
        with micrometrics.context(expected_language="de", conversation_id="c-1", attributes={"app.tier": "gold"}):
            pass  # keys that are read: silent


def test_the_providers_we_create_report_the_apps_service_and_say_so(demo, caplog):
    """The app's TracerProvider says service "shop": our metrics and logs say "shop" too, not service_name=."""
    import sys

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    sys.path.insert(0, str(ROOT / "tests" / "reliability"))
    from otlp_sink import OtlpSink

    app = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    with OtlpSink() as sink:
        with caplog.at_level("WARNING", logger="micrometrics"):
            handle = micrometrics.instrument(
                tracer_provider=app, exporter="otlp", endpoint=sink.url, service_name="llm-app", capture_content=True,
                instrumentations=["openai"], metrics=[LanguageMatch()],
            )
        try:
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            handle.force_flush()
        finally:
            micrometrics.uninstrument()
            app.shutdown()
        services = set()
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        for signal, request, field in (("traces", trace_service_pb2.ExportTraceServiceRequest, "resource_spans"),
                                       ("metrics", metrics_service_pb2.ExportMetricsServiceRequest, "resource_metrics"),
                                       ("logs", logs_service_pb2.ExportLogsServiceRequest, "resource_logs")):
            bodies = sink.raw(signal)
            assert bodies, signal
            for body in bodies:
                for block in getattr(request.FromString(body), field):
                    services.update((signal, kv.value.string_value) for kv in block.resource.attributes if kv.key == "service.name")
    assert services == {("traces", "shop"), ("metrics", "shop"), ("logs", "shop")}
    assert len([m for m in caplog.messages if "service_name='llm-app' cannot be applied" in m]) == 1


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_an_otlp_endpoint_variable_without_a_scheme_is_an_error_naming_it(variable, monkeypatch):
    """Not accepted and then failing on every export; not guessed either (http:// could send in clear text)."""
    monkeypatch.setenv(variable, "localhost:4318")
    with pytest.raises(ValueError, match=rf"{variable}='localhost:4318' has no scheme.*'http://localhost:4318'"):
        micrometrics.instrument(exporter="otlp", metrics=[])
    assert micrometrics.installation.current() is None


def test_otlp_protocol_http_json_is_sent_as_protobuf_to_the_same_endpoint_with_a_warning(demo, monkeypatch, caplog):
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "reliability"))
    from otlp_sink import OtlpSink

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with OtlpSink() as sink:
        with caplog.at_level("WARNING", logger="micrometrics"):
            handle = micrometrics.instrument(exporter="otlp", endpoint=sink.url, instrumentations=["openai"], metrics=[])
        try:
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            handle.force_flush()
        finally:
            micrometrics.uninstrument()
        assert [s.name for s in sink.spans()] == ["chat gpt-4o-mini"]
    assert handle.settings.protocol == "http/protobuf"
    assert len([m for m in caplog.messages if "'http/json' is not supported by the installed" in m]) == 1


def test_every_instrument_option_has_a_row_in_the_readme_options_table():
    import inspect
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## `instrument()` options", 1)[1].split("\n\n", 2)[1]
    rows = {name for line in table.splitlines() for name in re.findall(r"`(\w+)`", line.split("|")[1] if line.startswith("|") else "")}
    missing = [p for p in inspect.signature(micrometrics.instrument).parameters if p not in rows]
    assert missing == []
    for mode in ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"):
        assert mode in table


def test_a_context_key_a_custom_metric_declares_does_not_warn(demo, telemetry):
    @micrometrics.micro_metric(name="tenant_seen", context_keys=["tenant"])
    def tenant_seen(call):
        return micrometrics.Result("pass" if call.context.get("tenant") else "fail")

    telemetry.instrument(metrics=[tenant_seen])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with micrometrics.context(tenant="acme"):
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert telemetry.span().attributes["micrometrics.tenant_seen.label"] == "pass"
