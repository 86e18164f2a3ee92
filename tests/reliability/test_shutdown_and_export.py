"""However the application ends, nothing is lost and nothing of ours makes it wait.

Issue 14, items 8, 13, 14, 18, 19 and part of 31: the console exporter on a stderr nobody reads,
exit and ``uninstrument()`` with a backlog of evaluations, shutdown and flush against a backend
that is down or never answers, token counts OTLP cannot carry, event timestamps, one series per
guard for ``micrometrics.guard.retries``. Processes that must exit are real subprocesses; the
backend is a loopback OTLP receiver (``otlp_sink.py``) or a socket that accepts and never answers.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest

import micrometrics
from micrometrics import internal_errors
from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V
from otlp_sink import OtlpSink, attributes

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Wie spät ist es?"}]
#: Hang items: what "not blocked for seconds" allows beyond the timeout on a loaded 2-core machine.
SLACK_S = 3.0
#: What exit gives the exporters once evaluations are done (installation.EXIT_EXPORT_S).
EXIT_EXPORT_S = 2.0


class Slow(MicroMetric):
    """A monitor that takes its time: calls queue up behind it."""

    name = "slow_monitor"

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def evaluate(self, call: CallView) -> Result:
        threading.Event().wait(self.seconds)
        return Result("pass")


def _env() -> dict[str, str]:
    paths = ("src", "semconv", "instrumentation", "examples", "tests", "tests/reliability")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in paths), "PYTHONUNBUFFERED": "1"}


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


class Silent:
    """A loopback TCP server that accepts connections and never answers (a hung collector)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._held.append(conn)

    def __enter__(self) -> "Silent":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop = True
        self._thread.join()
        for c in self._held:
            c.close()
        self._sock.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def client(demo: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="test", max_retries=0)


# ---- item 8: the console exporter never blocks the app ----------------------------------------

CONSOLE_SCRIPT = """
    import sys, openai, micrometrics
    micrometrics.instrument(exporter="console", instrumentations=["openai"], max_queue=4)
    client = openai.OpenAI(base_url=sys.argv[1], api_key="test", max_retries=0)
    for i in range(int(sys.argv[2])):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Wie spät ist es?"}])
    print("calls done", flush=True)
"""


def test_the_console_exporter_never_blocks_the_app_when_nobody_reads_stderr(demo):
    # 1,500 lines of ~150 bytes: more than twice what a pipe holds (64 KiB); with the monitor queue full the
    # spans end on the app's thread, and the old exporter wrote there, blocking forever.
    proc = subprocess.Popen(
        _script(CONSOLE_SCRIPT) + [demo.openai_base_url, "1500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT,
    )
    try:
        proc.wait(timeout=120)  # stderr is never read
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the app hung on a stderr nobody reads")
    finally:
        out = proc.stdout.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0 and "calls done" in out


# ---- item 13: exit with a backlog ends every span ----------------------------------------------

EXIT_SCRIPT = """
    import sys, threading, openai, micrometrics
    from micrometrics.metric import MicroMetric, Result

    class Slow(MicroMetric):
        name = "slow_monitor"
        def evaluate(self, call):
            threading.Event().wait(0.05)
            return Result("pass")

    micrometrics.instrument(exporter="otlp", endpoint=sys.argv[2], instrumentations=["openai"], metrics=[Slow()],
                            evaluation_deadline_s=0.5)
    client = openai.OpenAI(base_url=sys.argv[1], api_key="test", max_retries=0)
    for i in range(int(sys.argv[3])):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Wie spät ist es?"}])
    print("calls done", flush=True)
"""


def test_exit_with_a_backlog_ends_every_span_and_counts_what_it_skipped(demo, sink):
    calls = 200  # 200 x 50 ms of evaluation = 10 s of backlog; exit gives evaluations 1.5 s (deadline + 1)
    out = subprocess.run(
        _script(EXIT_SCRIPT) + [demo.openai_base_url, sink.url, str(calls)],
        capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=180,
    )
    assert out.returncode == 0, out.stderr
    spans = [s for s in sink.spans() if s.name == "chat gpt-4o-mini"]
    assert len(spans) == calls  # every span, not just every result
    labels = [attributes(s).get("micrometrics.slow_monitor.label") for s in spans]
    skipped = labels.count(V.LABEL_SKIPPED)
    assert 0 < skipped < calls and labels.count("pass") == calls - skipped
    # Skipped spans still carry the response.
    assert all(attributes(s).get(A.GEN_AI_USAGE_OUTPUT_TOKENS) for s in spans)
    dropped = [(a, v) for a, v in sink.metric_points(M.MICROMETRICS_EVALUATIONS_DROPPED) if a.get(A.MICROMETRICS_DROP_REASON) == V.DROP_REASON_SHUTDOWN]
    assert sum(v for _, v in dropped) == skipped


# ---- item 14: uninstrument that times out still ends every span -----------------------------


def test_uninstrument_that_times_out_still_ends_every_span_once_the_handle_is_dropped(demo, sink):
    calls = 40  # 40 x 50 ms of evaluation, far more than the 0.5 s uninstrument gives
    handle = micrometrics.instrument(exporter="otlp", endpoint=sink.url, instrumentations=["openai"], metrics=[Slow(0.05)])
    c = client(demo)
    for _ in range(calls):
        c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    started = time.monotonic()
    micrometrics.uninstrument(timeout_s=0.5)
    elapsed = time.monotonic() - started
    del handle
    gc.collect()
    time.sleep(0.3)  # whatever the monitor thread still held is done by now
    spans = [s for s in sink.spans() if s.name == "chat gpt-4o-mini"]
    assert len(spans) == calls
    labels = [attributes(s).get("micrometrics.slow_monitor.label") for s in spans]
    assert V.LABEL_SKIPPED in labels and set(labels) <= {"pass", V.LABEL_SKIPPED}
    assert elapsed <= 0.5 + SLACK_S
    assert internal_errors.totals == {}


# ---- item 18: shutdown and flush honour their timeouts and tell the truth -------------------


def test_uninstrument_honours_its_timeout_against_a_collector_that_never_answers(demo):
    with Silent() as collector:
        micrometrics.instrument(exporter="otlp", endpoint=collector.url, instrumentations=["openai"], metrics=[])
        client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        started = time.monotonic()
        micrometrics.uninstrument(timeout_s=1)
        elapsed = time.monotonic() - started
    assert elapsed <= 1 + SLACK_S  # was 20 s


@pytest.mark.parametrize("backend", ["closed port", "never answers"])
def test_force_flush_honours_its_timeout_and_says_false_when_nothing_arrived(demo, backend, caplog):
    caplog.set_level(logging.WARNING)
    silent = Silent()
    url = closed_port_url() if backend == "closed port" else silent.__enter__().url
    try:
        handle = micrometrics.instrument(exporter="otlp", endpoint=url, instrumentations=["openai"], metrics=[])
        for _ in range(3):
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        started = time.monotonic()
        delivered = handle.force_flush(timeout_s=2)
        elapsed = time.monotonic() - started
        micrometrics.uninstrument(timeout_s=1)
    finally:
        if backend == "never answers":
            silent.__exit__()
    assert delivered is False  # was True
    assert elapsed <= 2 + SLACK_S  # was 7-27 s
    # Plain otlp has the presets' policy: none of the SDK's retry lines (the one warning: the next test).
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if w.startswith("micrometrics: cannot export") and url in w]) <= 1
    assert all(w.startswith("micrometrics:") for w in warnings), warnings


def test_plain_otlp_says_once_that_the_collector_is_down_and_prints_none_of_the_sdks_retry_lines(demo):
    caplog_records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caplog_records.append(record)

    keep = Keep(level=logging.WARNING)
    logging.getLogger().addHandler(keep)
    try:
        with OtlpSink() as sink:
            port = int(sink.url.rsplit(":", 1)[1])
        # The sink is gone: its port is closed. Calls go on; one warning.
        handle = micrometrics.instrument(exporter="otlp", endpoint=f"http://127.0.0.1:{port}", instrumentations=["openai"], metrics=[])
        for _ in range(3):
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert handle.force_flush(timeout_s=2) is False
        # The exporter gives up on its own clock (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s): wait for the verdict.
        waited = time.monotonic() + 30
        while not any(r.getMessage().startswith("micrometrics: cannot export") and f":{port}/" in r.getMessage() for r in caplog_records) \
                and time.monotonic() < waited:
            time.sleep(0.1)
        for _ in range(3):
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert handle.force_flush(timeout_s=1) is False
        micrometrics.uninstrument(timeout_s=1)
    finally:
        logging.getLogger().removeHandler(keep)
    messages = [r.getMessage() for r in caplog_records]
    assert all(m.startswith("micrometrics:") for m in messages), messages  # none of the SDK's retry lines
    cannot = [m for m in messages if m.startswith("micrometrics: cannot export") and f":{port}/" in m]  # not an earlier test's
    assert len(cannot) == 1 and "the OTLP collector" in cannot[0], messages


EXIT_DOWN_SCRIPT = """
    import sys, openai, micrometrics
    micrometrics.instrument(exporter="otlp", endpoint=sys.argv[2], instrumentations=["openai"])
    client = openai.OpenAI(base_url=sys.argv[1], api_key="test", max_retries=0)
    for i in range(5):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Wie spät ist es?"}])
    print("calls done", flush=True)
"""


@pytest.mark.parametrize("backend", ["closed port", "never answers"])
def test_exit_is_bounded_when_the_collector_is_down(demo, backend):
    silent = Silent()
    url = closed_port_url() if backend == "closed port" else silent.__enter__().url
    try:
        proc = subprocess.Popen(_script(EXIT_DOWN_SCRIPT) + [demo.openai_base_url, url], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        assert proc.stdout.readline().strip() == "calls done"
        done = time.monotonic()
        _, err = proc.communicate(timeout=60)
        exit_took = time.monotonic() - done
    finally:
        if backend == "never answers":
            silent.__exit__()
    assert proc.returncode == 0, err
    # No backlog: evaluations are done at once; the exporters get EXIT_EXPORT_S (was 8-16 s).
    assert exit_took <= EXIT_EXPORT_S + SLACK_S
    assert "Transient error" not in err and "Failed to export" not in err


# ---- item 19: a token count OTLP cannot carry ---------------------------------------------------


def test_a_token_count_beyond_int64_is_dropped_and_the_apps_own_metric_points_arrive(demo, sink):
    handle = micrometrics.instrument(exporter="otlp", endpoint=sink.url, instrumentations=["openai"], metrics=[])
    try:
        app_counter = handle.meter_provider.get_meter("the-app").create_counter("app.orders")
        app_counter.add(3)
        demo.enqueue(json={
            "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Es ist zehn Uhr."}}],
            "usage": {"prompt_tokens": 2**63, "completion_tokens": 7, "total_tokens": 2**63 + 7},
        })
        answer = client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert answer.usage.prompt_tokens == 2**63  # the app sees what the provider sent
        assert handle.force_flush(timeout_s=5) is True
    finally:
        micrometrics.uninstrument()
    assert [v for _, v in sink.metric_points("app.orders")] and sink.metric_points("app.orders")[-1][1] == 3
    tokens = {a[A.GEN_AI_TOKEN_TYPE]: v for a, v in sink.metric_points(M.GEN_AI_CLIENT_TOKEN_USAGE)}
    assert set(tokens) == {V.TOKEN_TYPE_OUTPUT}  # the out-of-range input count is left out, the output count kept
    (span,) = sink.spans()
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in attributes(span) and attributes(span)[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert internal_errors.totals == {"response": 1}
    errors = [(a, v) for a, v in sink.metric_points(M.MICROMETRICS_INTERNAL_ERRORS) if a[A.MICROMETRICS_STAGE] == "response"]
    assert errors and errors[-1][1] == 1 and errors[-1][0][A.ERROR_TYPE] == "OverflowError"


# ---- item 31 (part) -------------------------------------------------------------------------------


def test_evaluation_events_are_stamped_no_later_than_their_span_ends(demo, telemetry):
    telemetry.instrument(instrumentations=["openai"], capture_content=True)
    c = client(demo)
    c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    for chunk in c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass
    telemetry.flush()
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        events = [e for e in span.events if e.name == "micrometrics.evaluation"]
        assert events and all(e.timestamp <= span.end_time for e in events)
    logs = [r for r in telemetry.logs() if r.event_name == "gen_ai.evaluation.result"]
    ends = {s.context.span_id: s.end_time for s in spans}
    assert logs and all(r.timestamp <= ends[r.span_id] for r in logs)


STREAM_SCRIPT = """
    import sys, threading, time, openai, micrometrics
    from micrometrics.metric import MicroMetric, Result

    class Slow(MicroMetric):
        name = "slow_monitor"
        def evaluate(self, call):
            threading.Event().wait(0.3)
            return Result("pass")

    micrometrics.instrument(exporter="console", instrumentations=["openai"], metrics=[Slow()])
    client = openai.OpenAI(base_url=sys.argv[1], api_key="test", max_retries=0)
    messages = [{"role": "user", "content": "Wie spät ist es?"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # its line comes 0.3 s later
    print("<STREAM>", end="", flush=True)
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        time.sleep(0.05)
    print("<END>", flush=True)
"""


def test_console_lines_never_land_in_the_middle_of_streamed_text(demo):
    out = subprocess.run(
        _script(STREAM_SCRIPT) + [demo.openai_base_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**_env(), "NO_COLOR": "1"}, cwd=ROOT, timeout=120,
    )
    assert out.returncode == 0, out.stdout
    before, rest = out.stdout.split("<STREAM>")
    streamed, after = rest.split("<END>")
    assert "[micrometrics]" not in streamed, out.stdout
    assert len([l for l in (before + after).splitlines() if l.startswith("[micrometrics] chat gpt-4o-mini")]) == 2, out.stdout
