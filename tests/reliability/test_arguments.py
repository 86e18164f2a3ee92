"""Arguments we read before the library does: one-shot iterators must reach the library intact.

The client libraries type ``messages``, ``tools``, ``contents`` as iterables, so an
application may pass a generator. micrometrics reads the request before the library
does; reading a generator would hand the library an exhausted one (the call would go
out with no messages), and a copy (a list, an ``itertools.tee``) is not the same
object either: google-genai treats a tee differently from a generator. So the library
gets the application's own objects and we leave one-shot iterators unread: the span
has no input messages, and a guard cannot replay such a call (it reports instead).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from micrometrics import internal_errors
from micrometrics.metrics import LanguageMatch
from micrometrics_semconv import attributes as A
from reliability_libraries import API_KEY, AnthropicMessages, ChromaQuery, GoogleGenerateContent, Outcome, libraries, loop, normal

PROMPT = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
#: The demo server slips into English at the 5th user turn: a language guard retries it.
TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Die Bestellnummer ist 4711, bitte prüfen Sie den Status.",
    "Danke. Wann kommt das Paket denn an?",
    "Kann ich die Lieferadresse noch ändern?",
    "Und wie lange dauert die Rücksendung, wenn mir etwas nicht passt?",
]
AVAILABLE = {lib.instrumentation for lib in libraries()}


def conversation() -> list[dict]:
    msgs: list[dict] = []
    for text in TURNS:
        if msgs:
            msgs.append({"role": "assistant", "content": "Gern, ich helfe Ihnen weiter."})
        msgs.append({"role": "user", "content": text})
    return msgs


def outcome(call: Any) -> Outcome:
    try:
        return Outcome("value", normal(call()))
    except Exception as exc:
        return Outcome.of_error(exc)


def openai_chat(demo: Any) -> Any:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=(m for m in [{"role": "user", "content": PROMPT}]),
        tools=(t for t in [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]),
    )


def openai_responses(demo: Any) -> Any:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    return client.responses.create(model="gpt-4o-mini", input=(m for m in [{"role": "user", "content": PROMPT}]))


def anthropic_messages(demo: Any) -> Any:
    lib = AnthropicMessages()
    return lib.shared_client(demo, False).messages.create(
        model=lib.ok_model, max_tokens=300, messages=(m for m in [{"role": "user", "content": PROMPT}]),
        system=(b for b in [{"type": "text", "text": "Du bist der Kundenservice."}]),
    )


def google_contents(demo: Any) -> Any:
    lib = GoogleGenerateContent()
    return lib.shared_client(demo, False).models.generate_content(model=lib.ok_model, contents=(c for c in [PROMPT]))


def chroma_query_texts(demo: Any) -> Any:
    # Chroma takes a list only: a generator is an error, and must stay the same error.
    return ChromaQuery().shared_client(demo, False).query(query_texts=(q for q in ["Versand nach Deutschland"]), n_results=1)


CALLS = {
    "openai-chat": ("openai", openai_chat),
    "openai-responses": ("openai", openai_responses),
    "anthropic-messages": ("anthropic", anthropic_messages),
    "google_genai-generate_content": ("google_genai", google_contents),
    "chromadb-query": ("chromadb", chroma_query_texts),
}


@pytest.mark.parametrize("name", [n for n, (inst, _) in CALLS.items() if inst in AVAILABLE])
def test_generator_arguments_reach_the_library_intact(name, demo, telemetry):
    instrumentation, call = CALLS[name]
    uninstrumented = outcome(lambda: call(demo))
    sent = demo.requests[-1].body if demo.requests else None
    telemetry.instrument(instrumentations=[instrumentation], capture_content=True)
    assert outcome(lambda: call(demo)) == uninstrumented
    if sent is not None:
        assert demo.requests[-1].body == sent  # the same request went out
    spans = telemetry.spans()
    assert len(spans) == 1
    assert PROMPT not in spans[0].attributes.get(A.GEN_AI_INPUT_MESSAGES, "")  # left unread
    assert internal_errors.totals == {}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_guard_does_not_replay_a_consumed_generator(stream, demo, telemetry):
    """The incident turn answers English; a list would be retried, a generator cannot be: one request, as sent."""
    guard = LanguageMatch(mode="guard", expected="de", stream_prefix_chars=40)
    telemetry.instrument(instrumentations=["openai"], metrics=[guard])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    history = conversation()
    demo.reset()
    response = client.chat.completions.create(model="gpt-4o-mini", messages=(m for m in history), stream=stream)
    text = "".join(c.choices[0].delta.content or "" for c in response if c.choices) if stream else response.choices[0].message.content
    assert text
    (request,) = demo.requests
    assert request.body["messages"] == history
    (span,) = telemetry.spans()
    assert span.attributes["micrometrics.language_match.label"] == "mismatch"  # reported, not acted on
    assert internal_errors.totals == {}

    # The same conversation as a list is retried, as configured.
    demo.reset()
    response = client.chat.completions.create(model="gpt-4o-mini", messages=history, stream=stream)
    if stream:
        list(response)
    assert len(demo.requests) == 2


# ---- one-shot iterators nested at every level the client libraries type as Iterable ----------------


def _gen(items: list) -> Any:
    return (x for x in items)


_LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
_CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"order\": 4711}"}}
_TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"order": 4711}}
_ANTHROPIC_TOOL = {"name": "lookup", "description": "Find an order.", "input_schema": {"type": "object"}}

#: name -> (instrumentation, method, fresh keyword arguments, a text the request must carry)
NESTED: dict[str, tuple[str, str, Any, str]] = {
    "openai-chat-content-parts": ("openai", "chat", lambda: dict(
        model="gpt-4o-mini", messages=[{"role": "user", "content": _gen([{"type": "text", "text": PROMPT}])}]), PROMPT),
    "openai-chat-tool_calls-and-tool-content": ("openai", "chat", lambda: dict(
        model="gpt-4o-mini", tools=[_LOOKUP], messages=_gen([
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": None, "tool_calls": _gen([_CALL])},
            {"role": "tool", "tool_call_id": "call_1", "content": _gen([{"type": "text", "text": "geliefert 4711"}])},
        ])), "geliefert 4711"),
    "anthropic-content-blocks-and-tools": ("anthropic", "messages", lambda: dict(
        model="claude-sonnet-5-5", max_tokens=300, tools=_gen([_ANTHROPIC_TOOL]),
        messages=[{"role": "user", "content": _gen([{"type": "text", "text": PROMPT}])}]), PROMPT),
    "anthropic-tool_result-content": ("anthropic", "messages", lambda: dict(
        model="claude-sonnet-5-5", max_tokens=300, tools=[_ANTHROPIC_TOOL], messages=[
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": _gen([_TOOL_USE])},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": _gen([{"type": "text", "text": "geliefert 4711"}])}]},
        ]), "geliefert 4711"),
    "google_genai-content-parts": ("google_genai", "generate_content", lambda: dict(
        model="gemini-2.0-flash", contents=[{"role": "user", "parts": _gen([{"text": PROMPT}])}]), PROMPT),
    "google_genai-parts-of-every-turn": ("google_genai", "generate_content", lambda: dict(
        model="gemini-2.0-flash", contents=[
            {"role": "user", "parts": _gen([{"text": "Wo ist Bestellung 4711?"}])},
            {"role": "model", "parts": _gen([{"function_call": {"name": "lookup", "args": {"order": 4711}}}])},
            {"role": "user", "parts": _gen([{"function_response": {"name": "lookup", "response": {"status": "geliefert 4711"}}}])},
        ]), "geliefert 4711"),
}


def _nested_call(demo: Any, instrumentation: str, method: str, kwargs: dict, aio: bool) -> Any:
    if instrumentation == "openai":
        client = (openai.AsyncOpenAI if aio else openai.OpenAI)(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
        create = client.chat.completions.create
    elif instrumentation == "anthropic":
        create = AnthropicMessages().shared_client(demo, aio).messages.create
    else:
        client = GoogleGenerateContent().shared_client(demo, False)
        create = (client.aio.models if aio else client.models).generate_content
    return loop().run_until_complete(create(**kwargs)) if aio else create(**kwargs)


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", [n for n, case in NESTED.items() if case[0] in AVAILABLE])
def test_nested_generator_content_reaches_the_provider(name, aio, demo, telemetry):
    """A generator inside a message (content parts, tool calls, tool results, Google parts) is the
    library's to read: the request that goes out is the one that goes out without us."""
    instrumentation, method, make, carried = NESTED[name]
    uninstrumented = outcome(lambda: _nested_call(demo, instrumentation, method, make(), aio))
    sent = demo.requests[-1].body
    assert carried in json.dumps(sent, ensure_ascii=False)  # the case is a real one: the library sends it
    telemetry.instrument(instrumentations=[instrumentation], capture_content=True)
    assert outcome(lambda: _nested_call(demo, instrumentation, method, make(), aio)) == uninstrumented
    assert demo.requests[-1].body == sent
    (span,) = telemetry.spans()
    assert carried not in span.attributes.get(A.GEN_AI_INPUT_MESSAGES, "")  # left unread
    assert internal_errors.totals == {}


def test_a_guard_does_not_replay_a_call_with_a_nested_generator(demo, telemetry):
    """The retry rule holds at any depth: a generator inside one message makes the call one-shot."""
    guard = LanguageMatch(mode="guard", expected="de")
    telemetry.instrument(instrumentations=["openai"], metrics=[guard])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    history = conversation()
    demo.reset()
    messages = [*history[:-1], {"role": "user", "content": _gen([{"type": "text", "text": history[-1]["content"]}])}]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content
    (request,) = demo.requests
    assert request.body["messages"][-1]["content"] == [{"type": "text", "text": history[-1]["content"]}]
    assert internal_errors.totals == {}
