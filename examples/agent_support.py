"""A LangGraph support agent, traced with no change to its code: the incident at turn five, and the guard.

    pip install -e ".[langchain,openai]" langgraph langchain-openai      # from the repository root
    python examples/agent_support.py

A German customer's fifth turn asks about the weather; the agent calls its ``get_weather`` tool, and with the
tool's result the model answers in English. ``LanguageMatch(mode="guard")`` on the model call sees it in
milliseconds, infers German from the conversation, and retries with a corrective instruction: the customer reads
German. The span tree is printed as Jaeger shows it: the agent span, the tool span and every model call under
it, the English attempt labelled ``mismatch`` and its retry (``attempt=2``) ``match``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import contextmanager
from typing import Iterator

from _demo import model, require

require("openai")
_missing = [m for m in ("langgraph", "langchain_openai") if importlib.util.find_spec(m) is None]
if _missing:
    raise SystemExit(f"agent_support.py needs {', '.join(_missing)}. From the repository root: "
                     'pip install -e ".[langchain,openai]" langgraph langchain-openai')

import json  # noqa: E402

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import LanguageMatch  # noqa: E402

SYSTEM = "You are the support agent of an online shop. Be brief and friendly."
HISTORY = [
    ("user", "Hallo, ich habe eine Frage zu meiner Bestellung."),
    ("assistant", "Hallo und herzlich willkommen beim Kundenservice! Wie kann ich Ihnen heute helfen?"),
    ("user", "Meine Bestellnummer ist 12345. Wo ist mein Paket?"),
    ("assistant", "Vielen Dank! Ihre Bestellung wurde gestern verschickt und kommt in zwei bis drei Werktagen an."),
    ("user", "Warum dauert die Lieferung so lange?"),
    ("assistant", "Das tut mir leid. Ich habe eine Nachforschung beim Versanddienstleister gestartet."),
    ("user", "Kann ich die Lieferadresse noch ändern?"),
    ("assistant", "Selbstverständlich können Sie die Lieferadresse noch ändern."),
]
QUESTION = "Wie ist das Wetter in Berlin? Kommt mein Paket bei Regen pünktlich an?"
#: The attributes worth a glance in the tree (the conversation on the root only: every span of the run carries it).
_SHOWN = {
    "gen_ai.conversation.id": "conversation", "gen_ai.tool.call.id": "call", "micrometrics.attempt": "attempt",
    "micrometrics.language_match.label": "language_match", "micrometrics.language_match.expected": "expected",
    "micrometrics.language_match.detected": "detected",
}


@contextmanager
def openai_endpoint() -> Iterator[tuple[str | None, str]]:
    """OpenAI itself with OPENAI_API_KEY, else the local demo server (its model slips at turn five, as in the incident)."""
    if os.environ.get("OPENAI_API_KEY"):
        yield None, os.environ["OPENAI_API_KEY"]
        return
    from demo_server import DemoServer

    with DemoServer() as server:
        print(f"OPENAI_API_KEY is not set: using the local demo server at {server.openai_base_url}\n", file=sys.stderr)
        yield server.openai_base_url, "demo"


def span_tree(spans) -> str:
    """The spans of one trace as Jaeger's timeline lists them: children under their parent, in start order."""
    by_parent: dict = {}
    ids = {s.context.span_id for s in spans}
    for s in spans:
        by_parent.setdefault(s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None, []).append(s)
    lines: list[str] = []

    def walk(parent_id, prefix: str) -> None:
        children = sorted(by_parent.get(parent_id, []), key=lambda s: s.start_time)
        for i, span in enumerate(children):
            last = i == len(children) - 1
            branch = "" if parent_id is None else ("└─ " if last else "├─ ")
            ms = (span.end_time - span.start_time) / 1e6
            keys = [k for k in _SHOWN if k in span.attributes and (k != "gen_ai.conversation.id" or parent_id is None)]
            shown = "  ".join(f"{_SHOWN[k]}={span.attributes[k]}" for k in keys)
            lines.append(f"{prefix}{branch}{span.name:<{44 - len(prefix) - len(branch)}} {ms:8.1f} ms  {shown}".rstrip())
            walk(span.context.span_id, prefix + ("" if parent_id is None else ("   " if last else "│  ")))

    walk(None, "")
    return "\n".join(lines)


def main() -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The application's own provider (here: in memory, to print the tree); exporter="jaeger" would send it to Jaeger.
    handle = micrometrics.instrument(tracer_provider=provider, exporter="none",
                                     metrics=[LanguageMatch(mode="guard", max_retries=1)])

    @tool
    def get_weather(location: str, unit: str = "celsius") -> str:
        """Current weather of a city."""
        return json.dumps({"temperature": 12, "condition": "Regen"})

    with openai_endpoint() as (base_url, api_key):
        llm = ChatOpenAI(model=model(), base_url=base_url, api_key=api_key, max_retries=0).bind_tools([get_weather])

        def agent(state: MessagesState) -> dict:
            return {"messages": [llm.invoke([("system", SYSTEM), *state["messages"]])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        graph.add_node("tools", ToolNode([get_weather]))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        support_agent = graph.compile(name="support_agent")

        result = support_agent.invoke({"messages": [*HISTORY, ("user", QUESTION)]},
                                      config={"configurable": {"thread_id": "conv-support-42"}})
    handle.shutdown()
    print(f"turn 5, what the customer read: {result['messages'][-1].content}\n")
    print(span_tree(exporter.get_finished_spans()))


if __name__ == "__main__":
    main()
