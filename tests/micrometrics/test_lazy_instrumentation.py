"""``instrument()`` imports no client library: each is wrapped when the application imports it.

Each test runs in a fresh interpreter, where nothing has imported the libraries yet.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _installed_instrumentations() -> dict[str, str]:
    """name -> library module, for the instrumentations pyproject.toml declares whose library is installed."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["opentelemetry_instrumentor"]
    found = {}
    for entry, target in declared.items():
        module, cls = target.split(":")
        library = getattr(importlib.import_module(module), cls).library  # our package only, not the library
        if importlib.util.find_spec(library.split(".")[0]) is not None and importlib.util.find_spec(library) is not None:
            found[entry.removeprefix("micrometrics_")] = library
    return found


INSTALLED = _installed_instrumentations()

PRELUDE = """
    import sys, wrapt
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from demo_server import DemoServer
    import micrometrics

    LIBRARIES = __LIBRARIES__
    exporter = InMemorySpanExporter()
    tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exporter)); trace.set_tracer_provider(tp)

    def chat(srv):
        import openai
        openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    def spans():
        return [s.name for s in exporter.get_finished_spans()]
"""


def _run(script: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE).replace("__LIBRARIES__", repr(tuple(INSTALLED.values()))) + textwrap.dedent(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def test_instrument_imports_no_client_library_and_traces_one_the_app_imports_later():
    lines = _run("""
        handle = micrometrics.instrument(metrics=[])
        print("IMPORTED", [m for m in LIBRARIES if m in sys.modules])
        print("INSTRUMENTED", sorted(handle.instrumentations))
        print("PENDING", sorted(getattr(handle, "pending", ["<no handle.pending>"])))
        with DemoServer() as srv:
            chat(srv)  # the app imports openai only now
        handle.force_flush()  # the monitor thread ends the span after the call returned
        print("SPANS", spans())
        print("PENDING", sorted(getattr(handle, "pending", ["<no handle.pending>"])))
    """)
    assert lines[0] == "IMPORTED []"
    everything = str(sorted(INSTALLED))
    assert lines[1] == "INSTRUMENTED " + everything  # hooked: traced from the moment the app imports them
    assert lines[2] == "PENDING " + everything
    assert lines[3] == "SPANS ['chat gpt-4o-mini']"
    assert lines[4] == "PENDING " + str(sorted(set(INSTALLED) - {"openai"}))


def test_uninstrument_removes_pending_hooks_and_reinstrumenting_wraps_once():
    lines = _run("""
        micrometrics.instrument(metrics=[])
        micrometrics.uninstrument()
        from openai.resources.chat.completions import Completions
        print("AFTER UNINSTRUMENT", type(Completions.__dict__["create"]).__name__)
        handle = micrometrics.instrument(metrics=[])  # openai is imported by now: wrapped at once
        print("AFTER INSTRUMENT", type(Completions.__dict__["create"]).__name__, sorted(getattr(handle, "pending", ["<no handle.pending>"])))
        with DemoServer() as srv:
            chat(srv)
            micrometrics.uninstrument()
            print("RESTORED", type(Completions.__dict__["create"]).__name__)
            chat(srv)
        print("SPANS", spans())
    """)
    assert lines[0] == "AFTER UNINSTRUMENT function"
    assert lines[1] == "AFTER INSTRUMENT FunctionWrapper " + str(sorted(set(INSTALLED) - {"openai"}))
    assert lines[2] == "RESTORED function"
    assert lines[3] == "SPANS ['chat gpt-4o-mini']"  # one span for the traced call: wrapped once, not per hook
