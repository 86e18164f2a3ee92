"""Concurrency and process lifecycle: threads, asyncio tasks, instrument cycles, fork, interpreter exit.

Every call returns what it returns uninstrumented, every call gets exactly its own
span (the span's response id is the one the caller got: no cross-talk), and nothing
of ours is left behind: no threads, no wrappers, no exit hooks, no lost spans.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

import micrometrics
from micrometrics import internal_errors
from micrometrics_semconv import attributes as A
from reliability_libraries import Library, Outcome, libraries, loop
from telemetry_harness import Telemetry

ROOT = Path(__file__).resolve().parents[2]
#: The demo-server libraries the mixes draw from (one adapter per provider and operation).
HTTP = [lib for lib in libraries() if lib.http]


@pytest.fixture(scope="module")
def busy_demo() -> Any:
    """A demo server whose listen backlog takes 500 connections at once (the default queue is 5)."""
    import demo_server

    default = demo_server._HTTPServer.request_queue_size
    demo_server._HTTPServer.request_queue_size = 1024
    try:
        server = demo_server.DemoServer().start()
    finally:
        demo_server._HTTPServer.request_queue_size = default
    yield server
    server.stop()


def mix(n: int, flavour: str) -> list[tuple[Library, str, str]]:
    """``n`` calls cycling through libraries, modes of one flavour (sync/async) and prompts."""
    prompts = ["Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir.",
               "Hello there, where is my order please?",
               "Bonjour, où est ma commande s'il vous plaît ?"]
    plan = [(lib, mode) for lib in HTTP for mode in lib.all_modes() if mode.startswith(flavour)]
    return [(*plan[i % len(plan)], prompts[i % len(prompts)]) for i in range(n)]


def baselines(demo: Any, calls: list[tuple[Library, str, str]]) -> dict[tuple[str, str, str], Outcome]:
    out = {}
    for lib, mode, prompt in calls:
        key = (lib.id, mode, prompt)
        if key not in out:
            out[key] = lib.run(demo, mode, prompt=prompt)
    return out


def assert_one_span_per_call(telemetry: Telemetry, calls: list[tuple[Library, str, str]]) -> None:
    spans = telemetry.spans()
    expected = Counter(lib.span() for lib, _, _ in calls)
    assert Counter(s.name for s in spans) == expected
    ids = [s.attributes.get(A.GEN_AI_RESPONSE_ID) for s in spans if s.attributes.get(A.GEN_AI_RESPONSE_ID)]
    assert len(ids) == len(set(ids)), "two spans carry the same response id: calls crossed"
    assert internal_errors.totals == {}


def test_32_threads_mixing_providers(busy_demo, telemetry):
    demo = busy_demo
    calls = mix(32 * 6, "sync")
    expected = baselines(demo, calls)
    telemetry.instrument(instrumentations=sorted({lib.instrumentation for lib, _, _ in calls}))
    barrier = threading.Barrier(32)

    def worker(index: int) -> list[tuple[tuple[str, str, str], Outcome]]:
        barrier.wait()
        mine = calls[index::32]
        return [((lib.id, mode, prompt), lib.run(demo, mode, prompt=prompt)) for lib, mode, prompt in mine]

    with ThreadPoolExecutor(32) as pool:
        results = [r for chunk in pool.map(worker, range(32)) for r in chunk]
    assert len(results) == len(calls)
    for key, outcome in results:
        assert outcome == expected[key], key
    assert_one_span_per_call(telemetry, calls)


def test_500_asyncio_tasks_mixing_providers(busy_demo, telemetry):
    demo = busy_demo
    calls = mix(500, "async")
    expected = baselines(demo, calls)
    telemetry.instrument(instrumentations=sorted({lib.instrumentation for lib, _, _ in calls}))

    async def everything() -> list[Outcome]:
        return await asyncio.gather(*(lib.arun(demo, mode, prompt=prompt) for lib, mode, prompt in calls))

    outcomes = loop().run_until_complete(everything())
    for (lib, mode, prompt), outcome in zip(calls, outcomes):
        assert outcome == expected[(lib.id, mode, prompt)], (lib.id, mode)
    assert_one_span_per_call(telemetry, calls)


def test_100_instrument_uninstrument_cycles_leave_nothing_behind(demo):
    lib = HTTP[0]
    create = openai.resources.chat.completions.Completions.create
    threads_before = {t.ident for t in threading.enumerate()}
    gone: list[weakref.ref] = []
    for i in range(100):
        if i % 10 == 0:  # every tenth cycle with the test's exporters, to see the spans
            telemetry = Telemetry()
            telemetry.instrument(instrumentations=[lib.instrumentation])
            assert lib.run(demo, "sync").kind == "value"
            assert len(telemetry.spans()) == 1
            telemetry.close()
        else:  # the others with the providers micrometrics builds and owns
            handle = micrometrics.instrument(exporter="none", instrumentations=[lib.instrumentation])
            assert openai.resources.chat.completions.Completions.create is not create
            assert lib.run(demo, "sync").kind == "value"
            gone += [weakref.ref(handle), weakref.ref(handle.runtime), weakref.ref(handle.tracer_provider),
                     weakref.ref(handle.meter_provider), weakref.ref(handle.logger_provider)]
            del handle
            micrometrics.uninstrument()
        assert openai.resources.chat.completions.Completions.create is create
    # Uninstrumented again: the call is the library's own, and nothing of ours runs.
    assert lib.run(demo, "sync").kind == "value"
    gc.collect()
    # The OpenTelemetry API keeps the first global providers for good (it allows setting them once).
    from opentelemetry import _logs, metrics as otel_metrics, trace

    globals_ = {id(trace.get_tracer_provider()), id(otel_metrics.get_meter_provider()), id(_logs.get_logger_provider())}
    alive = [obj for ref in gone if (obj := ref()) is not None and id(obj) not in globals_]
    assert alive == [], f"{len(alive)} objects of past instrument() calls are still alive: {alive[:3]}"
    leftover = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.name.startswith("micrometrics")]
    assert len(leftover) <= 2, leftover  # at most the last cycle's worker and watchdog, winding down
    assert internal_errors.totals == {}


def _run_script(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("src", "semconv", "instrumentation", "examples", "tests", "tests/reliability"))}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


FORK_SCRIPT = """
    import json, os, sys
    from reliability_libraries import OpenAIChat
    from telemetry_harness import Telemetry

    class Server:  # the parent test's demo server
        openai_base_url = sys.argv[1]

    lib, server = OpenAIChat(), Server()
    telemetry = Telemetry()
    telemetry.instrument(instrumentations=["openai"])
    assert lib.run(server, "sync").kind == "value"  # the parent's monitor worker is running
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            from reliability_libraries import _CLIENTS
            _CLIENTS.clear()  # connections are not shared across processes
            telemetry.span_exporter.clear()  # what the parent had exported before the fork
            outcome = lib.run(server, "sync")
            spans = telemetry.spans()
            report = {"kind": outcome.kind, "spans": [dict(s.attributes) for s in spans],
                      "threads": [t.name for t in __import__("threading").enumerate()]}
        except BaseException as exc:
            report = {"error": repr(exc)}
        os.write(write, json.dumps(report, default=str).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.waitpid(pid, 0)
    child = json.loads(data)
    assert lib.run(server, "sync").kind == "value"  # the parent goes on, too
    parent_spans = telemetry.spans()
    print(json.dumps({"child": child, "parent_spans": len(parent_spans)}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_fork_after_instrument_the_child_traces_and_evaluates(demo):
    result = _run_script(FORK_SCRIPT, demo.openai_base_url)
    assert result.returncode == 0, result.stderr[-3000:]
    report = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    child = report["child"]
    assert "error" not in child, child
    assert child["kind"] == "value"
    # The child's span: its own call, evaluated by a monitor worker started in the child.
    (after_fork,) = child["spans"]
    assert after_fork["micrometrics.language_match.label"] == "match"
    assert "micrometrics-monitors" in child["threads"]
    assert report["parent_spans"] == 2


EXIT_SCRIPT = """
    import sys, time
    import micrometrics
    from micrometrics import MicroMetric, Result
    from reliability_libraries import AnthropicMessages, OpenAIChat

    class Server:
        openai_base_url, anthropic_base_url = sys.argv[1], sys.argv[2]

    class Slow(MicroMetric):
        name = "slow_monitor"
        def evaluate(self, call):
            time.sleep(0.05)  # still evaluating when the interpreter exits
            return Result("pass")

    micrometrics.instrument(exporter="otlp", endpoint=sys.argv[3], metrics=[Slow()], instrumentations=["openai", "anthropic"])
    server = Server()
    n = 0
    for lib in (OpenAIChat(), AnthropicMessages()):
        for mode in ("sync", "sync-stream", "async", "async-stream"):
            assert lib.run(server, mode).kind != "error"
            n += 1
    print(n, flush=True)
    # No shutdown, no flush: the interpreter exits with monitors and batches pending.
"""


def test_interpreter_exit_with_work_pending_exports_every_completed_call(demo, sink):
    result = _run_script(EXIT_SCRIPT, demo.openai_base_url, demo.anthropic_base_url, sink.url)
    assert result.returncode == 0, result.stderr[-3000:]
    completed = int(result.stdout.strip().splitlines()[-1])
    spans = sink.spans()
    assert len(spans) == completed == 8
    from otlp_sink import attributes

    assert all(attributes(s).get("micrometrics.slow_monitor.label") == "pass" for s in spans), "monitors were flushed at exit"
    assert "micrometrics.evaluations" in sink.metric_names()
