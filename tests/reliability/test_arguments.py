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

from typing import Any

import openai
import pytest

from micrometrics import safety
from micrometrics.metrics import LanguageMatch
from micrometrics_semconv import attributes as A
from reliability_libraries import API_KEY, AnthropicMessages, ChromaQuery, GoogleGenerateContent, Outcome, libraries, normal

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
    assert safety.totals == {}


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
    assert safety.totals == {}

    # The same conversation as a list is retried, as configured.
    demo.reset()
    response = client.chat.completions.create(model="gpt-4o-mini", messages=history, stream=stream)
    if stream:
        list(response)
    assert len(demo.requests) == 2
