"""The incident, on every provider: a German chat answered in English at turn five.

One test body for OpenAI, Anthropic, Google Gen AI, Amazon Bedrock (boto3's Converse and InvokeModel with an
Anthropic body, and Anthropic's own Bedrock client), Mistral, Cohere, Ollama, Groq and LiteLLM (its OpenAI and
Anthropic routes): ``LanguageMatch`` as a guard
sees the English answer, retries the call with a corrective system instruction (put
where each provider takes it), and the user only ever reads the German answer. The
backend shows two attempt spans, the first labelled ``mismatch``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

import anthropic
import boto3
import cohere
import groq
import litellm_registration  # noqa: F401  (LiteLLM reads its price map locally, before it is imported)
import litellm
import ollama
import openai
import pytest
from botocore.config import Config
from mistralai.client import Mistral
from demo_server import INCIDENT_REPLY, _DE_REPLIES
from google import genai
from opentelemetry.trace import StatusCode

from micrometrics import GuardError, internal_errors
from micrometrics.metrics import language
from micrometrics.metrics.language_match import LanguageMatch
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V

#: Five German user turns; the demo model slips into English on the fifth.
USER_TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Meine Bestellnummer ist 12345. Wo ist mein Paket?",
    "Warum dauert die Lieferung so lange?",
    "Kann ich die Lieferadresse noch ändern?",
    "Danke. Wann bekomme ich mein Geld zurück?",
]
GERMAN_ANSWER = _DE_REPLIES[4]


@pytest.fixture(autouse=True)
def _language_profiles_loaded():
    # Loading the profiles takes longer than a guard's budget: this test is about providers, not cold starts.
    language.prepare()


def _turns() -> list[tuple[str, str]]:
    """(role, text) of the conversation so far: user turns with the bot's German answers between them."""
    out: list[tuple[str, str]] = []
    for i, text in enumerate(USER_TURNS):
        if i:
            out.append(("assistant", _DE_REPLIES[i - 1]))
        out.append(("user", text))
    return out


async def _join_async(stream: Any, text_of: Callable[[Any], str]) -> str:
    return "".join([text_of(chunk) async for chunk in stream])


@dataclass
class Driver:
    """How one provider's client holds the same conversation."""

    provider: str
    span_name: str
    call: Callable[[Any, bool, str], str]  # (demo server, is_async, mode) -> the text the user reads
    instruction_of: Callable[[dict], str]  # request body -> where the corrective instruction went
    has_async: bool = True  # boto3 has no async client


# ---- OpenAI ---------------------------------------------------------------------------


def _openai_call(demo: Any, is_async: bool, mode: str) -> str:
    opts = dict(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    kwargs = dict(model="gpt-4o-mini", messages=[{"role": r, "content": t} for r, t in _turns()])
    stream = mode == "stream"

    def text(chunk: Any) -> str:
        return (chunk.choices[0].delta.content or "") if chunk.choices else ""

    if not is_async:
        r = openai.OpenAI(**opts).chat.completions.create(stream=stream, **kwargs)
        return "".join(text(c) for c in r) if stream else r.choices[0].message.content

    async def go() -> str:
        r = await openai.AsyncOpenAI(**opts).chat.completions.create(stream=stream, **kwargs)
        return await _join_async(r, text) if stream else r.choices[0].message.content

    return asyncio.run(go())


def _openai_instruction(body: dict) -> str:
    return " ".join(m["content"] for m in body["messages"] if m["role"] == "system")


# ---- Anthropic --------------------------------------------------------------------------


def _anthropic_call(demo: Any, is_async: bool, mode: str) -> str:
    opts = dict(base_url=demo.anthropic_base_url, api_key="test", max_retries=0)
    kwargs = dict(model="claude-sonnet-5-5", max_tokens=400, system="Du bist der Kundenservice eines Onlineshops.",
                  messages=[{"role": r, "content": t} for r, t in _turns()])

    def text(event: Any) -> str:
        return event.delta.text if event.type == "content_block_delta" and event.delta.type == "text_delta" else ""

    if not is_async:
        client = anthropic.Anthropic(**opts)
        if mode == "helper":
            with client.messages.stream(**kwargs) as s:
                answer = "".join(s.text_stream)
                assert s.get_final_message().content[0].text == answer
                return answer
        r = client.messages.create(stream=mode == "stream", **kwargs)
        return "".join(text(e) for e in r) if mode == "stream" else r.content[0].text

    async def go() -> str:
        client = anthropic.AsyncAnthropic(**opts)
        if mode == "helper":
            async with client.messages.stream(**kwargs) as s:
                answer = "".join([t async for t in s.text_stream])
                assert (await s.get_final_message()).content[0].text == answer
                return answer
        r = await client.messages.create(stream=mode == "stream", **kwargs)
        return await _join_async(r, text) if mode == "stream" else r.content[0].text

    return asyncio.run(go())


def _anthropic_instruction(body: dict) -> str:
    system = body.get("system")
    return system if isinstance(system, str) else " ".join(b["text"] for b in system or ())


# ---- Google Gen AI ------------------------------------------------------------------------


def _google_call(demo: Any, is_async: bool, mode: str) -> str:
    client = genai.Client(api_key="test", http_options={"base_url": demo.google_base_url})
    contents = [{"role": "model" if r == "assistant" else "user", "parts": [{"text": t}]} for r, t in _turns()]
    kwargs = dict(model="gemini-2.0-flash", contents=contents, config={"temperature": 0.2})

    def text(chunk: Any) -> str:
        return chunk.text or ""

    if not is_async:
        if mode == "stream":
            return "".join(text(c) for c in client.models.generate_content_stream(**kwargs))
        return client.models.generate_content(**kwargs).text

    async def go() -> str:
        if mode == "stream":
            return await _join_async(await client.aio.models.generate_content_stream(**kwargs), text)
        return (await client.aio.models.generate_content(**kwargs)).text

    return asyncio.run(go())


def _google_instruction(body: dict) -> str:
    si = body.get("systemInstruction") or {}
    return " ".join(p.get("text", "") for p in si.get("parts", ()))


# ---- Amazon Bedrock (boto3) ------------------------------------------------------------------

BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


def _bedrock_client(demo: Any) -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=demo.base_url, region_name="eu-central-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))


def _bedrock_call(demo: Any, is_async: bool, mode: str) -> str:
    """Converse: the system prompt and the turns as content blocks."""
    kwargs = dict(modelId=BEDROCK_MODEL, system=[{"text": "Du bist der Kundenservice eines Onlineshops."}],
                  messages=[{"role": r, "content": [{"text": t}]} for r, t in _turns()])
    client = _bedrock_client(demo)
    if mode == "stream":
        events = client.converse_stream(**kwargs)["stream"]
        return "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    return "".join(b.get("text", "") for b in client.converse(**kwargs)["output"]["message"]["content"])


def _bedrock_instruction(body: dict) -> str:
    return " ".join(b.get("text", "") for b in body.get("system") or ())


def _bedrock_invoke_call(demo: Any, is_async: bool, mode: str) -> str:
    """InvokeModel with the Anthropic Messages body: the guard's instruction goes into the body's ``system``."""
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 400, "system": "Du bist der Kundenservice eines Onlineshops.",
                       "messages": [{"role": r, "content": t} for r, t in _turns()]})
    client = _bedrock_client(demo)
    if mode == "stream":
        chunks = (json.loads(e["chunk"]["bytes"]) for e in client.invoke_model_with_response_stream(modelId=BEDROCK_MODEL, body=body)["body"])
        return "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    return json.loads(client.invoke_model(modelId=BEDROCK_MODEL, body=body)["body"].read())["content"][0]["text"]


def _anthropic_bedrock_call(demo: Any, is_async: bool, mode: str) -> str:
    """Anthropic's own Bedrock client: the Messages API over Bedrock's InvokeModel routes, streams in AWS event-stream framing."""
    opts = dict(aws_access_key="test", aws_secret_key="test", aws_region="eu-central-1", base_url=demo.base_url, max_retries=0)
    kwargs = dict(model=BEDROCK_MODEL, max_tokens=400, system="Du bist der Kundenservice eines Onlineshops.",
                  messages=[{"role": r, "content": t} for r, t in _turns()])

    def text(event: Any) -> str:
        return event.delta.text if event.type == "content_block_delta" and event.delta.type == "text_delta" else ""

    if not is_async:
        r = anthropic.AnthropicBedrock(**opts).messages.create(stream=mode == "stream", **kwargs)
        return "".join(text(e) for e in r) if mode == "stream" else r.content[0].text

    async def go() -> str:
        r = await anthropic.AsyncAnthropicBedrock(**opts).messages.create(stream=mode == "stream", **kwargs)
        return await _join_async(r, text) if mode == "stream" else r.content[0].text

    return asyncio.run(go())


# ---- Mistral ---------------------------------------------------------------------------


def _mistral_call(demo: Any, is_async: bool, mode: str) -> str:
    client = Mistral(api_key="test", server_url=demo.mistral_base_url)
    kwargs = dict(model="mistral-small-latest", messages=[{"role": r, "content": t} for r, t in _turns()])

    def text(event: Any) -> str:
        return (event.data.choices[0].delta.content or "") if event.data.choices else ""

    if not is_async:
        if mode == "stream":
            return "".join(text(e) for e in client.chat.stream(**kwargs))
        return client.chat.complete(**kwargs).choices[0].message.content

    async def go() -> str:
        if mode == "stream":
            return await _join_async(await client.chat.stream_async(**kwargs), text)
        return (await client.chat.complete_async(**kwargs)).choices[0].message.content

    return asyncio.run(go())


def _system_messages(body: dict) -> str:
    """Mistral, Cohere and Ollama take the instruction in a system message (first); OpenAI and Groq last."""
    return " ".join(m["content"] for m in body["messages"] if m["role"] == "system")


# ---- Cohere (v2) ------------------------------------------------------------------------


def _cohere_call(demo: Any, is_async: bool, mode: str) -> str:
    kwargs = dict(model="command-a-03-2025", messages=[{"role": r, "content": t} for r, t in _turns()])

    def text(event: Any) -> str:
        return (event.delta.message.content.text or "") if event.type == "content-delta" else ""

    if not is_async:
        client = cohere.ClientV2(api_key="test", base_url=demo.cohere_base_url, max_retries=0)
        if mode == "stream":
            return "".join(text(e) for e in client.chat_stream(**kwargs))
        return client.chat(**kwargs).message.content[0].text

    async def go() -> str:
        client = cohere.AsyncClientV2(api_key="test", base_url=demo.cohere_base_url, max_retries=0)
        if mode == "stream":
            return await _join_async(client.chat_stream(**kwargs), text)  # an async generator, not awaited
        return (await client.chat(**kwargs)).message.content[0].text

    return asyncio.run(go())


# ---- Ollama ------------------------------------------------------------------------------


def _ollama_call(demo: Any, is_async: bool, mode: str) -> str:
    messages = [{"role": r, "content": t} for r, t in _turns()]
    stream = mode == "stream"

    def text(chunk: Any) -> str:
        return chunk.message.content or ""

    if not is_async:  # the model and messages positionally, as Ollama's examples pass them
        r = ollama.Client(host=demo.ollama_host).chat("llama3.2", messages, stream=stream)
        return "".join(text(c) for c in r) if stream else r.message.content

    async def go() -> str:
        r = await ollama.AsyncClient(host=demo.ollama_host).chat("llama3.2", messages, stream=stream)
        return await _join_async(r, text) if stream else r.message.content

    return asyncio.run(go())


# ---- Groq ----------------------------------------------------------------------------------


def _groq_call(demo: Any, is_async: bool, mode: str) -> str:
    opts = dict(base_url=demo.groq_base_url, api_key="gsk-test", max_retries=0)
    kwargs = dict(model="llama-3.3-70b-versatile", messages=[{"role": r, "content": t} for r, t in _turns()])
    stream = mode == "stream"

    def text(chunk: Any) -> str:
        return (chunk.choices[0].delta.content or "") if chunk.choices else ""

    if not is_async:
        r = groq.Groq(**opts).chat.completions.create(stream=stream, **kwargs)
        return "".join(text(c) for c in r) if stream else r.choices[0].message.content

    async def go() -> str:
        r = await groq.AsyncGroq(**opts).chat.completions.create(stream=stream, **kwargs)
        return await _join_async(r, text) if stream else r.choices[0].message.content

    return asyncio.run(go())


# ---- LiteLLM ---------------------------------------------------------------------------------


def _litellm_call(route: str) -> Callable[[Any, bool, str], str]:
    """LiteLLM's OpenAI route (the ``openai`` client's ``post``) or its Anthropic route (its own HTTP client)."""

    def call(demo: Any, is_async: bool, mode: str) -> str:
        if route == "openai":
            target = dict(model="gpt-4o-mini", api_base=demo.openai_base_url)
        else:
            target = dict(model="anthropic/claude-sonnet-5-5", api_base=demo.anthropic_base_url)
        kwargs = dict(messages=[{"role": r, "content": t} for r, t in _turns()], api_key="sk-test", num_retries=0, max_retries=0, **target)
        stream = mode == "stream"

        def text(chunk: Any) -> str:
            return (chunk.choices[0].delta.content or "") if chunk.choices else ""

        if not is_async:
            r = litellm.completion(stream=stream, **kwargs)
            return "".join(text(c) for c in r) if stream else r.choices[0].message.content

        async def go() -> str:
            r = await litellm.acompletion(stream=stream, **kwargs)
            return await _join_async(r, text) if stream else r.choices[0].message.content

        return asyncio.run(go())

    return call


@pytest.fixture(autouse=True)
def _litellm_registered(request, monkeypatch):
    """LiteLLM's drivers need its instrumentation (its entry point, until the package is reinstalled); the others run without it."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and str(callspec.params.get("name", "")).startswith("litellm"):
        litellm_registration.register(monkeypatch)


DRIVERS = {
    "openai": Driver("openai", "chat gpt-4o-mini", _openai_call, _openai_instruction),
    "anthropic": Driver("anthropic", "chat claude-sonnet-5-5", _anthropic_call, _anthropic_instruction),
    "google_genai": Driver("gcp.gemini", "generate_content gemini-2.0-flash", _google_call, _google_instruction),
    "bedrock": Driver("aws.bedrock", f"chat {BEDROCK_MODEL}", _bedrock_call, _bedrock_instruction, has_async=False),
    "bedrock_invoke": Driver("aws.bedrock", f"chat {BEDROCK_MODEL}", _bedrock_invoke_call, _anthropic_instruction, has_async=False),
    "anthropic_bedrock": Driver("aws.bedrock", f"chat {BEDROCK_MODEL}", _anthropic_bedrock_call, _anthropic_instruction),
    "mistral": Driver("mistral_ai", "chat mistral-small-latest", _mistral_call, _system_messages),
    "cohere": Driver("cohere", "chat command-a-03-2025", _cohere_call, _system_messages),
    "ollama": Driver("ollama", "chat llama3.2", _ollama_call, _system_messages),
    "groq": Driver("groq", "chat llama-3.3-70b-versatile", _groq_call, _system_messages),
    "litellm": Driver("openai", "chat gpt-4o-mini", _litellm_call("openai"), _openai_instruction),
    "litellm_anthropic": Driver("anthropic", "chat claude-sonnet-5-5", _litellm_call("anthropic"), _anthropic_instruction),
}
CASES = [
    ("openai", "plain"), ("openai", "stream"),
    ("anthropic", "plain"), ("anthropic", "stream"), ("anthropic", "helper"),
    ("google_genai", "plain"), ("google_genai", "stream"),
    ("bedrock", "plain"), ("bedrock", "stream"),
    ("bedrock_invoke", "plain"), ("bedrock_invoke", "stream"),
    ("anthropic_bedrock", "plain"), ("anthropic_bedrock", "stream"),
    ("mistral", "plain"), ("mistral", "stream"),
    ("cohere", "plain"), ("cohere", "stream"),
    ("ollama", "plain"), ("ollama", "stream"),
    ("groq", "plain"), ("groq", "stream"),
    ("litellm", "plain"), ("litellm", "stream"),
    ("litellm_anthropic", "plain"), ("litellm_anthropic", "stream"),
]
#: Every case, sync and (where the client has it) async.
RUNS = [(n, m, a) for n, m in CASES for a in (False, True) if DRIVERS[n].has_async or not a]
RUN_IDS = [f"{n}-{m}-{'async' if a else 'sync'}" for n, m, a in RUNS]


@pytest.mark.parametrize("name,mode,is_async", RUNS, ids=RUN_IDS)
def test_language_guard_retries_in_the_conversation_language(demo, telemetry, name, mode, is_async):
    driver = DRIVERS[name]
    telemetry.instrument(metrics=[LanguageMatch(mode="guard")])

    answer = driver.call(demo, is_async, mode)

    # The user reads German only: the English attempt never reached them, not even a prefix.
    assert answer == GERMAN_ANSWER
    first_request, retried_request = demo.requests
    assert "German" not in driver.instruction_of(first_request.body)
    assert "Answer only in German (de)" in driver.instruction_of(retried_request.body)

    spans = sorted((s for s in telemetry.spans() if s.name == driver.span_name), key=lambda s: s.start_time)
    assert len(spans) == 2, [s.name for s in telemetry.spans(False)]
    first, second = (s.attributes for s in spans)
    assert first[A.GEN_AI_PROVIDER_NAME] == second[A.GEN_AI_PROVIDER_NAME] == driver.provider
    assert first.get(A.MICROMETRICS_ATTEMPT, 1) == 1 and second[A.MICROMETRICS_ATTEMPT] == 2
    assert first["micrometrics.language_match.label"] == "mismatch"
    assert first["micrometrics.language_match.passed"] is False
    assert first["micrometrics.language_match.expected"] == "de"
    assert first["micrometrics.language_match.detected"] == "en"
    assert second["micrometrics.language_match.label"] == "match"
    assert second["micrometrics.language_match.detected"] == "de"
    assert A.MICROMETRICS_GUARD_FAILED not in second
    assert [e.name for e in spans[0].events] == [E.MICROMETRICS_EVALUATION_EVENT]

    points = telemetry.metrics()
    [retry] = points[M.MICROMETRICS_GUARD_RETRIES]
    assert retry.value == 1 and retry.attributes[A.GEN_AI_PROVIDER_NAME] == driver.provider
    assert retry.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match"
    labels = {p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]: p.value for p in points[M.MICROMETRICS_EVALUATIONS]}
    assert labels == {"mismatch": 1, "match": 1}

    results = [r for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT]
    assert sorted(r.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] for r in results) == ["match", "mismatch"]
    assert {r.attributes[A.GEN_AI_PROVIDER_NAME] for r in results} == {driver.provider}


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_without_the_guard_the_incident_reaches_the_user(demo, telemetry, name):
    """The same conversation, monitored only: one span, labelled mismatch, English answer."""
    driver = DRIVERS[name]
    telemetry.instrument(metrics=[LanguageMatch()])

    assert driver.call(demo, False, "plain") == INCIDENT_REPLY

    span = telemetry.span(driver.span_name)
    assert span.attributes["micrometrics.language_match.label"] == "mismatch"
    assert A.MICROMETRICS_ATTEMPT not in span.attributes
    assert len(demo.requests) == 1


# ---- issue 14, item 3: a failed guard retry never turns an answer into an error ----------------------


def _attempt_spans(telemetry: Any, driver: Driver) -> list[Any]:
    return sorted((s for s in telemetry.spans() if s.name == driver.span_name), key=lambda s: s.start_time)


@pytest.mark.parametrize("name,mode,is_async", RUNS, ids=RUN_IDS)
def test_a_failed_guard_retry_returns_the_answer_it_replaced(demo, telemetry, name, mode, is_async):
    """The retry gets a 429: the app reads the answer it already had, as without us; the spans say what happened."""
    driver = DRIVERS[name]
    internal_errors.reset_for_tests()
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=1, on_fail="return")])
    demo.enqueue()  # the incident: the fifth answer is in English
    demo.enqueue(status=429)

    assert driver.call(demo, is_async, mode) == INCIDENT_REPLY

    assert len(demo.requests) == 2
    first, retry = _attempt_spans(telemetry, driver)
    assert first.attributes["micrometrics.language_match.label"] == "mismatch"
    assert retry.attributes[A.MICROMETRICS_ATTEMPT] == 2
    assert retry.status.status_code == StatusCode.ERROR
    assert "RateLimitError" in retry.attributes[A.ERROR_TYPE] or "429" in retry.attributes[A.ERROR_TYPE]
    assert retry.attributes[A.MICROMETRICS_GUARD_FALLBACK] == V.GUARD_FALLBACK_PREVIOUS
    assert internal_errors.totals == {}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_a_failed_guard_retry_with_on_fail_raise_raises_guard_error_carrying_the_answer(demo, telemetry, mode, is_async):
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=1, on_fail="raise")])
    demo.enqueue()
    demo.enqueue(status=429)

    with pytest.raises(GuardError) as caught:
        DRIVERS["openai"].call(demo, is_async, mode)

    assert isinstance(caught.value.__cause__, openai.RateLimitError)
    assert caught.value.results["language_match"].label == "mismatch"
    response = caught.value.response
    if mode == "plain":
        assert response.choices[0].message.content == INCIDENT_REPLY
    else:  # the stream the guard held back, not yet read by anyone
        assert response is not None
    first, retry = _attempt_spans(telemetry, DRIVERS["openai"])
    assert retry.attributes[A.MICROMETRICS_GUARD_FALLBACK] == V.GUARD_FALLBACK_ERROR


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("on_fail", ["return", "raise"])
def test_a_restarted_stream_that_breaks_before_the_app_saw_it_gives_the_stream_it_replaced(demo, telemetry, on_fail, is_async):
    """The retried stream fails mid-prefix (nothing of it reached the app): the app reads the held original to its end
    (``on_fail="raise"``: a GuardError carrying it, from the retry's error)."""
    driver = DRIVERS["openai"]
    internal_errors.reset_for_tests()
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=1, on_fail=on_fail)])
    demo.enqueue()
    demo.enqueue(sse=["{not json"])

    if on_fail == "return":
        assert driver.call(demo, is_async, "stream") == INCIDENT_REPLY
    else:
        with pytest.raises(GuardError) as caught:
            driver.call(demo, is_async, "stream")
        assert caught.value.__cause__ is not None and caught.value.response is not None

    first, retry = _attempt_spans(telemetry, driver)
    assert retry.status.status_code == StatusCode.ERROR
    fallback = V.GUARD_FALLBACK_PREVIOUS if on_fail == "return" else V.GUARD_FALLBACK_ERROR
    assert retry.attributes[A.MICROMETRICS_GUARD_FALLBACK] == fallback
    assert first.status.status_code != StatusCode.ERROR
    assert internal_errors.totals == {}


# ---- issue 14, item 29: every retry links to the attempt it replaces --------------------------------


@pytest.mark.parametrize("name,mode,is_async", RUNS, ids=RUN_IDS)
def test_a_guard_retry_links_to_the_attempt_it_replaces(demo, telemetry, name, mode, is_async):
    """Without a parent span each attempt is its own trace: the retry's span link joins them, saying why."""
    driver = DRIVERS[name]
    telemetry.instrument(metrics=[LanguageMatch(mode="guard")])

    assert driver.call(demo, is_async, mode) == GERMAN_ANSWER

    first, retry = _attempt_spans(telemetry, driver)
    assert first.parent is None and retry.parent is None  # the app has no span of its own here
    assert first.links == ()
    (link,) = retry.links
    assert link.context.trace_id == first.context.trace_id and link.context.span_id == first.context.span_id
    assert link.attributes[A.MICROMETRICS_RETRY_OF] == 1
    assert link.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match"


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_guard_retries_of_plain_and_streamed_calls_are_one_series(demo, telemetry, name):
    """A stream's guard decides on its prefix, before the response model is known: the retry counter must not
    split into a series with ``gen_ai.response.model`` and one without."""
    driver = DRIVERS[name]
    telemetry.instrument(metrics=[LanguageMatch(mode="guard")])
    assert driver.call(demo, False, "plain") == GERMAN_ANSWER
    assert driver.call(demo, False, "stream") == GERMAN_ANSWER
    [retry] = telemetry.metrics()[M.MICROMETRICS_GUARD_RETRIES]
    assert retry.value == 2 and retry.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match"
    assert A.GEN_AI_RESPONSE_MODEL not in retry.attributes
