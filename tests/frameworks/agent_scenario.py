"""The one agent scenario every framework runs (LangGraph, LlamaIndex, the OpenAI Agents SDK, ...).

A German support agent, turn five: the user asks whether the weather in Berlin delays the parcel; the model
calls the ``get_weather`` tool; with the tool's result the demo model slips into English (the incident);
``LanguageMatch`` as a guard on the model call retries it with a corrective instruction, and the user reads
German. In the backend: one ``invoke_agent`` span, the tool span and every model call under it, the English
attempt labelled ``mismatch`` and its retry ``match``; nothing doubled.

A framework's test builds its agent with ``SYSTEM``, ``history()`` + ``QUESTION`` and the tool
``get_weather`` (its body: ``weather(location)``) over the demo server's OpenAI endpoint (``demo.openai_base_url``,
model ``MODEL``), runs it with ``telemetry.instrument(metrics=[guard()])``, and calls ``assert_agent_run``.
"""

from __future__ import annotations

import json
from typing import Any

from demo_server import _DE_REPLIES

from micrometrics.metrics.language_match import LanguageMatch

MODEL = "gpt-4o-mini"
AGENT_NAME = "support_agent"
TOOL_NAME = "get_weather"
#: No "German" in it: the demo model answers German conversations in German only while told to.
SYSTEM = "You are the support agent of an online shop. Be brief and friendly."
EARLIER_TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Meine Bestellnummer ist 12345. Wo ist mein Paket?",
    "Warum dauert die Lieferung so lange?",
    "Kann ich die Lieferadresse noch ändern?",
]
QUESTION = "Wie ist das Wetter in Berlin? Kommt mein Paket bei Regen pünktlich an?"
TOOL_RESULT = {"temperature": 12, "condition": "Regen"}
CONVERSATION_ID = "conv-support-42"


def history() -> list[dict[str, str]]:
    """The four earlier turns as OpenAI-style messages (the bot's German answers between the user's)."""
    out: list[dict[str, str]] = []
    for i, text in enumerate(EARLIER_TURNS):
        out.append({"role": "user", "content": text})
        out.append({"role": "assistant", "content": _DE_REPLIES[i]})
    return out


def weather(location: str, unit: str = "celsius") -> str:
    """The tool's body: what the weather service says (JSON text, as most tools return). The demo model
    calls it with ``{"location": "Berlin", "unit": "celsius"}``."""
    return json.dumps(TOOL_RESULT)


def guard() -> LanguageMatch:
    return LanguageMatch(mode="guard", max_retries=1)


def _ancestors(span: Any, by_id: dict[int, Any]) -> list[Any]:
    out = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        span = by_id[parent.span_id]
        out.append(span)
        parent = span.parent
    return out


def assert_agent_run(telemetry: Any, answer: str, *, agent_name: str = AGENT_NAME, model_calls: int = 3) -> dict[str, Any]:
    """What the backend shows for one run of the scenario; returns the spans by role.

    ``answer``: the text the application got (German). ``model_calls``: inference spans expected (the tool
    call, the English answer, its German retry).
    """
    spans = telemetry.spans()
    by_id = {s.context.span_id: s for s in spans}
    agents = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "invoke_agent"]
    assert len(agents) == 1, [s.name for s in spans]
    agent = agents[0]
    assert agent.name == f"invoke_agent {agent_name}", agent.name
    assert agent.attributes.get("gen_ai.agent.name") == agent_name

    tools = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool"]
    assert len(tools) == 1, [s.name for s in spans]
    tool = tools[0]
    assert tool.name == f"execute_tool {TOOL_NAME}" and tool.attributes["gen_ai.tool.name"] == TOOL_NAME
    assert agent in _ancestors(tool, by_id), "the tool span sits under the agent span"

    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(chats) == model_calls, ("one inference span per model call, never two", [(s.name, s.instrumentation_scope.name) for s in chats])
    for chat in chats:
        assert agent in _ancestors(chat, by_id), f"{chat.name} sits under the agent span"
    labels = [c.attributes.get("micrometrics.language_match.label") for c in sorted(chats, key=lambda s: s.start_time)]
    assert "mismatch" in labels, labels
    mismatch = next(c for c in chats if c.attributes.get("micrometrics.language_match.label") == "mismatch")
    assert mismatch.attributes["micrometrics.language_match.expected"] == "de"
    retry = next(c for c in chats if c.attributes.get("micrometrics.attempt") == 2)
    assert retry.attributes["micrometrics.language_match.label"] == "match"
    assert retry.start_time >= mismatch.end_time or retry.start_time >= mismatch.start_time

    assert "Wetterdienst" in answer, answer  # the German answer, not the English one
    return {"agent": agent, "tool": tool, "chats": chats, "mismatch": mismatch, "retry": retry}
