"""``instrument()`` in an application that has not imported the OpenTelemetry SDK: the SDK is imported and the
providers, exporters and runtime are built on a background thread, and what a user sees is the same as when
it is done before ``instrument()`` returns: the first call is traced, a script that exits at once still exports,
a fork, ``uninstrument()`` or the main thread's end during the set-up lose nothing and break nothing, and a
configuration mistake still raises in ``instrument()``.

Each test runs a fresh interpreter (where the SDK is not imported) exporting over OTLP/HTTP to a loopback
receiver; the application's calls go to the examples' demo server through the real openai client. A meta path
finder in the child records which thread imports each SDK module (it imports nothing itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from otlp_sink import OtlpSink, attributes  # noqa: E402

pytest.importorskip("openai")

PRELUDE = """
import json, os, sys, threading, time
sys.path.insert(0, {examples!r})
SDK_IMPORTS = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("opentelemetry.sdk"):
            SDK_IMPORTS.append((name, threading.current_thread().name))
        return None
sys.meta_path.insert(0, Watch())
from demo_server import DemoServer
srv = DemoServer().start()
import micrometrics

def chat():
    import openai
    answer = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": "Explain what a database index is."}}])
    return answer.choices[0].message.content

def main_thread_sdk_imports():
    return sorted({{name for name, thread in SDK_IMPORTS if thread == "MainThread"}})

def report(**values):
    print("REPORT " + json.dumps(values), flush=True)
"""


def _run(body: str, sink: OtlpSink, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    code = PRELUDE.format(examples=str(ROOT / "examples")) + textwrap.dedent(body).replace("__URL__", sink.url)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MICROMETRICS_", "DD_"))}
    child_env.update(env or {})
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(ROOT), env=child_env)
    reports = {}
    for line in done.stdout.splitlines():
        if line.startswith("REPORT "):
            reports.update(json.loads(line[len("REPORT "):]))
    return done, reports


def _chat_spans(sink: OtlpSink) -> list:
    return [s for s in sink.spans() if s.name == "chat gpt-4o-mini"]


def _no_warnings(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert "micrometrics" not in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def test_instrument_returns_before_the_sdk_is_imported_and_the_first_call_is_traced():
    with OtlpSink() as sink:
        done, got = _run(
            """
            handle = micrometrics.instrument(exporter="otlp", endpoint="__URL__", service_name="bg-setup")
            at_return = main_thread_sdk_imports()
            text = chat()  # at once: it waits for the set-up rather than go untraced
            ok = handle.force_flush(10)
            report(at_return=at_return, ready=handle.ready, flushed=ok, text=text,
                   setup_threads=sorted({t for _, t in SDK_IMPORTS}), provider=type(handle.tracer_provider).__module__)
            handle.shutdown()
            """,
            sink,
        )
        _no_warnings(done)
        assert got["at_return"] == [], "instrument() imported the SDK on the application's thread"
        assert got["setup_threads"] == ["micrometrics-setup"]
        assert got["ready"] is True and got["flushed"] is True
        assert got["provider"].startswith("opentelemetry.sdk.trace")
        spans = _chat_spans(sink)
        assert len(spans) == 1
        attrs = attributes(spans[0])
        assert attrs["gen_ai.provider.name"] == "openai" and attrs["gen_ai.operation.name"] == "chat"
        assert attrs["micrometrics.language_match.label"] == "match"
        assert attrs["micrometrics.response_length.words"] == len(got["text"].split())
        points = sink.metric_points("gen_ai.client.operation.duration")
        assert points and {a["gen_ai.request.model"] for a, _ in points} == {"gpt-4o-mini"}  # cumulative: once per export
        evaluations = [r for r in sink.log_records() if r.event_name == "gen_ai.evaluation.result"]
        assert {attributes(r)["gen_ai.evaluation.name"] for r in evaluations} == {"language_match", "response_length"}


def test_a_script_that_calls_once_and_exits_exports_its_span():
    with OtlpSink() as sink:
        done, _ = _run(
            """
            micrometrics.instrument(exporter="otlp", endpoint="__URL__")
            chat()
            """,
            sink,
        )
        _no_warnings(done)
        spans = _chat_spans(sink)
        assert len(spans) == 1
        assert attributes(spans[0])["micrometrics.language_match.label"] == "match"


def test_a_script_that_exits_during_the_setup_finishes_it_and_exits_cleanly():
    with OtlpSink() as sink:
        done, got = _run(
            """
            handle = micrometrics.instrument(exporter="otlp", endpoint="__URL__")
            report(ready_at_exit=handle.ready)
            """,
            sink,
        )
        _no_warnings(done)
        assert got["ready_at_exit"] is False  # the main thread ended first: the exit waited for the set-up
        assert _chat_spans(sink) == []


def test_a_thread_that_calls_after_the_main_thread_ended_is_traced():
    with OtlpSink() as sink:
        done, _ = _run(
            """
            micrometrics.instrument(exporter="otlp", endpoint="__URL__")
            def later():
                time.sleep(0.3)
                chat()
            threading.Thread(target=later, name="app-worker").start()  # not a daemon: the program waits for it
            """,
            sink,
        )
        _no_warnings(done)
        assert len(_chat_spans(sink)) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_a_fork_during_the_setup_waits_for_it_and_the_child_traces_its_calls():
    with OtlpSink() as sink:
        done, got = _run(
            """
            handle = micrometrics.instrument(exporter="otlp", endpoint="__URL__")
            pid = os.fork()
            if pid == 0:
                try:
                    chat()
                    handle.shutdown(10)
                finally:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            report(child_status=status, ready_after_fork=handle.ready)
            handle.shutdown(10)
            """,
            sink,
        )
        _no_warnings(done)
        assert got == {"child_status": 0, "ready_after_fork": True}
        spans = _chat_spans(sink)
        assert len(spans) == 1  # the child's call; the parent made none
        assert attributes(spans[0])["micrometrics.language_match.label"] == "match"


def test_uninstrument_during_the_setup_restores_the_client_and_traces_nothing():
    with OtlpSink() as sink:
        done, got = _run(
            """
            handle = micrometrics.instrument(exporter="otlp", endpoint="__URL__")
            micrometrics.uninstrument()
            import wrapt
            import openai.resources.chat.completions as chat_module
            text = chat()
            from micrometrics import active
            report(wrapped=isinstance(chat_module.Completions.__dict__["create"], wrapt.ObjectProxy), active=active.installed(), text=text)
            """,
            sink,
        )
        _no_warnings(done)
        assert got["wrapped"] is False and got["active"] is False and got["text"]
        assert _chat_spans(sink) == []


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"DD_SITE": "example.com"}, "DD_SITE='example.com' is not a Datadog site"),
        ({"DD_SITE": "ddog-gov.com"}, "not offered on ddog-gov.com"),
    ],
)
def test_a_configuration_mistake_still_raises_in_instrument(env, needle):
    with OtlpSink() as sink:
        done, got = _run(
            """
            try:
                micrometrics.instrument(exporter="datadog")
            except ValueError as exc:
                report(error=str(exc), sdk=main_thread_sdk_imports())
            """,
            sink,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert needle in got["error"]
        assert got["sdk"] == []


def test_agentless_datadog_without_a_key_still_raises_in_instrument():
    with OtlpSink() as sink:
        done, got = _run(
            """
            try:
                micrometrics.instrument(exporter="datadog", datadog_agentless=True)
            except ValueError as exc:
                report(error=str(exc))
            """,
            sink,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "needs your API key in the DD_API_KEY environment variable" in got["error"]


def test_an_application_that_configured_the_sdk_first_gets_its_providers_used_before_instrument_returns():
    with OtlpSink() as sink:
        done, got = _run(
            """
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
            mine = InMemorySpanExporter()
            tp = TracerProvider()
            tp.add_span_processor(SimpleSpanProcessor(mine))
            trace.set_tracer_provider(tp)
            handle = micrometrics.instrument(exporter="none")
            ready = handle.ready
            chat()
            handle.force_flush(10)
            report(ready=ready, same=handle.tracer_provider is tp, names=[s.name for s in mine.get_finished_spans()])
            handle.shutdown()
            """,
            sink,
        )
        _no_warnings(done)
        assert got == {"ready": True, "same": True, "names": ["chat gpt-4o-mini"]}


def test_a_metric_that_raises_when_read_raises_in_instrument_and_leaves_nothing_active():
    with OtlpSink() as sink:
        done, got = _run(
            """
            class Broken(micrometrics.MicroMetric):
                name = "broken"
                @property
                def reads_retrieved_documents(self):
                    raise RuntimeError("broken metric property")
                def evaluate(self, call):
                    return micrometrics.Result("pass")
            try:
                micrometrics.instrument(exporter="otlp", endpoint="__URL__", metrics=[Broken()])
            except RuntimeError as exc:
                error = str(exc)
            from micrometrics import active
            installed = active.installed()
            handle = micrometrics.instrument(exporter="otlp", endpoint="__URL__", metrics=[])  # a corrected call works
            chat()
            handle.shutdown(10)
            report(error=error, installed_after_error=installed)
            """,
            sink,
        )
        _no_warnings(done)
        assert got == {"error": "broken metric property", "installed_after_error": False}
        assert len(_chat_spans(sink)) == 1


SETUP_PRELUDE = """
import logging, threading
from micrometrics import active, internal_errors
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("micrometrics").addHandler(Keep())
"""


def test_a_setup_that_fails_is_logged_once_and_leaves_nothing_active():
    with OtlpSink() as sink:
        done, got = _run(
            SETUP_PRELUDE + textwrap.dedent("""
            setup = active.Setup(lambda: 1 / 0)
            during = active.installed()
            setup.start()
            first, second = setup.wait(5), active.current()
            report(during=during, first=first, second=second, installed=active.installed(), messages=records,
                   counted=internal_errors.totals.get("setup"))
            """),
            sink,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert got["during"] is True and got["counted"] == 1  # micrometrics.internal.errors, stage "setup"
        assert got["first"] is None and got["second"] is None and got["installed"] is False
        assert got["messages"][0] == "micrometrics: setting up OpenTelemetry failed (ZeroDivisionError: division by zero); calls are not traced"
        assert len([m for m in got["messages"] if "setting up OpenTelemetry failed" in m]) == 1


def test_a_setup_that_outlives_the_wait_is_cancelled_and_what_it_builds_is_discarded():
    with OtlpSink() as sink:
        done, got = _run(
            SETUP_PRELUDE + textwrap.dedent("""
            release = threading.Event()
            discarded = []
            class Built:
                runtime = object()
                def discard(self):
                    discarded.append(True)
            def slow():
                release.wait(10)
                return Built()
            setup = active.Setup(slow)
            setup.start()
            waited = [setup.wait(0.2), setup.wait(0.2)]  # too short: untraced, said once
            setup.cancel()
            release.set()
            setup._thread.join(10)
            report(waited=waited, discarded=discarded, current=active.current(), installed=active.installed(),
                   slow_messages=[m for m in records if "still being set up" in m])
            """),
            sink,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert got["waited"] == [None, None]
        assert got["discarded"] == [True] and got["current"] is None and got["installed"] is False
        assert got["slow_messages"] == ["micrometrics: OpenTelemetry is still being set up after 0.2 s; this call is not traced"]
