"""One inference span per LangChain model call, whatever the order: ``instrument()`` before the application imports
LangChain and the openai SDK, or after it imported them and made (and used) its model. The span is the SDK's
(it has the server address the framework's would not), under the chain's workflow span. Each order runs in a fresh
interpreter, where nothing is imported yet."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
    import sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from demo_server import DemoServer
    import micrometrics

    exporter = InMemorySpanExporter()
    tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exporter)); trace.set_tracer_provider(tp)

    def report():
        # The monitor worker ends a call's span after the call returned: wait for it, as an exporter would.
        import micrometrics.installation
        micrometrics.installation.current().force_flush()
        spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
        by_id = {s.context.span_id: s.name for s in spans}
        for s in spans:
            parent = by_id.get(s.parent.span_id) if s.parent else None
            print(s.name, "<", parent, "|", s.attributes.get("server.address"), s.attributes.get("gen_ai.provider.name"))
"""

CHAIN = """
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
"""


def _run(*pieces: str) -> list[str]:
    script = "".join(textwrap.dedent(p) for p in pieces)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(PRELUDE) + script], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


ONE_SDK_SPAN = ["invoke_workflow RunnableSequence < None | None langchain", "chat gpt-4o-mini < invoke_workflow RunnableSequence | 127.0.0.1 openai"]


@pytest.mark.parametrize("order", ["instrument_then_import", "import_and_use_then_instrument"])
def test_one_inference_span_the_sdks_in_either_order(order):
    if order == "instrument_then_import":
        script = ("""
            micrometrics.instrument(metrics=[])
            assert "langchain_core" not in sys.modules and "openai" not in sys.modules
            from langchain_openai import ChatOpenAI
        """, CHAIN, """
            with DemoServer() as srv:
                chain = prompt | ChatOpenAI(model="gpt-4o-mini", base_url=srv.openai_base_url, api_key="k", max_retries=0) | StrOutputParser()
                chain.invoke({"q": "Hallo"})
            report()
        """)
    else:
        script = ("""
            from langchain_openai import ChatOpenAI
        """, CHAIN, """
            with DemoServer() as srv:
                chain = prompt | ChatOpenAI(model="gpt-4o-mini", base_url=srv.openai_base_url, api_key="k", max_retries=0) | StrOutputParser()
                chain.invoke({"q": "warm up: the clients are made and cached before instrument()"})
                micrometrics.instrument(metrics=[])
                chain.invoke({"q": "Hallo"})
            report()
        """)
    assert _run(*script) == ONE_SDK_SPAN
