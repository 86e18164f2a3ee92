"""A user (or a gateway such as LiteLLM) calls the OpenAI client's low-level ``post``: what their backend shows.

``client.post("/chat/completions", body=..., cast_to=..., stream=..., stream_cls=...)`` is traced like
``chat.completions.create`` (and ``/responses``, ``/embeddings`` like theirs); ``create``, which goes
through ``post`` itself, still gives one span; other paths go straight through.
"""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from provider_contract import Content, assert_failed_call, assert_inference_call

GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]
KEY = "sk-post-secret-key"


def clients(demo):
    opts = dict(base_url=demo.openai_base_url, api_key=KEY, max_retries=0)
    return openai.OpenAI(**opts), openai.AsyncOpenAI(**opts)


def post(demo, is_async: bool, path: str, body: dict, cast_to: type, stream: bool = False, chunk: type | None = None):
    """``post`` as LiteLLM calls it; a stream is read to its end, and its chunks returned."""
    sync, async_ = clients(demo)
    if not is_async:
        r = sync.post(path, body=body, cast_to=cast_to, stream=stream, stream_cls=openai.Stream[chunk] if stream else None)
        return list(r) if stream else r

    async def go():
        r = await async_.post(path, body=body, cast_to=cast_to, stream=stream, stream_cls=openai.AsyncStream[chunk] if stream else None)
        return [c async for c in r] if stream else r

    return asyncio.run(go())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_post_chat_completions_is_traced_like_create(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    body = {"model": "gpt-4o-mini", "messages": GERMAN, "temperature": 0.2, "max_tokens": 100, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    r = post(demo, is_async, "/chat/completions", body, ChatCompletion, stream, ChatCompletionChunk)
    text = "".join(c.choices[0].delta.content or "" for c in r if c.choices) if stream else r.choices[0].message.content
    assert text.startswith("Hallo")
    assert_inference_call(
        telemetry, operation="chat", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2026-01-01",
        response_id_prefix="chatcmpl-", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN[0]["content"]}]}], output_text=text),
        secret=KEY, attributes={A.GEN_AI_REQUEST_TEMPERATURE: 0.2, A.GEN_AI_REQUEST_MAX_TOKENS: 100, A.OPENAI_API_TYPE: "chat_completions"},
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_post_responses_is_traced_like_create(demo, telemetry, is_async, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    body = {"model": "gpt-4.1", "input": "Wo ist meine Bestellung? Ich warte schon seit einer Woche.", "instructions": "Be brief.", "stream": stream}
    r = post(demo, is_async, "/responses", body, Response, stream, ResponseStreamEvent)
    text = "".join(e.delta for e in r if e.type == "response.output_text.delta") if stream else r.output_text
    assert_inference_call(
        telemetry, operation="chat", provider="openai", request_model="gpt-4.1", response_model="gpt-4.1-2026-01-01",
        response_id_prefix="resp_", server=("127.0.0.1", demo.port), stream=stream, capture=True,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": body["input"]}]}],
                        system_instructions=[{"type": "text", "content": "Be brief."}], output_text=text),
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_post_embeddings_is_traced_like_create(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    texts = ["Wo ist mein Paket?", "Rückerstattung beantragen"]
    r = post(demo, is_async, "/embeddings", {"model": "text-embedding-3-small", "input": texts}, CreateEmbeddingResponse)
    assert_inference_call(
        telemetry, operation="embeddings", provider="openai", request_model="text-embedding-3-small", response_model="text-embedding-3-small",
        response_id_prefix=None, finish_reasons=None, token_types=("input",), server=("127.0.0.1", demo.port),
        attributes={A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(r.data[0].embedding)},
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_post_raw_response_as_litellm_asks_for_it(demo, telemetry, is_async):
    """LiteLLM asks ``post`` for the raw response (``X-Stainless-Raw-Response``): the span reads the parsed body."""
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    options = {"headers": {"X-Stainless-Raw-Response": "true"}}
    body = {"model": "gpt-4o-mini", "messages": GERMAN}
    if is_async:
        raw = asyncio.run(async_.post("/chat/completions", body=body, cast_to=ChatCompletion, options=options))
    else:
        raw = sync.post("/chat/completions", body=body, cast_to=ChatCompletion, options=options)
    completion = raw.parse()
    if asyncio.iscoroutine(completion):
        completion = asyncio.run(completion)
    attrs = telemetry.span("chat gpt-4o-mini").attributes
    assert attrs[A.GEN_AI_RESPONSE_ID] == completion.id
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_create_over_post_gives_one_span(demo, telemetry, is_async, stream):
    """``create`` calls ``post``: the outer call's scope suppresses the inner one (one span, one duration point)."""
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    kwargs = dict(model="gpt-4o-mini", messages=GERMAN, stream=stream)
    if is_async:
        async def go():
            r = await async_.chat.completions.create(**kwargs)
            _ = [c async for c in r] if stream else r
            await async_.embeddings.create(model="text-embedding-3-small", input="Paket")
        asyncio.run(go())
    else:
        r = sync.chat.completions.create(**kwargs)
        list(r) if stream else r
        sync.embeddings.create(model="text-embedding-3-small", input="Paket")
    assert sorted(s.name for s in telemetry.spans()) == ["chat gpt-4o-mini", "embeddings text-embedding-3-small"]
    assert sorted(p.attributes[A.GEN_AI_OPERATION_NAME] for p in telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]) == ["chat", "embeddings"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_post_errors_propagate_and_quote_no_prompt(demo, telemetry, is_async):
    """The demo's 400 quotes the request; without capture nothing of it reaches the span or the log."""
    telemetry.instrument(metrics=[])
    secret = "Meine Kundennummer ist 4711-GEHEIM"
    with pytest.raises(openai.BadRequestError):
        post(demo, is_async, "/chat/completions", {"model": "error-400", "messages": [{"role": "user", "content": secret}]}, ChatCompletion)
    span = assert_failed_call(telemetry, "chat error-400", provider="openai", error_type="400")
    assert secret not in repr(span.attributes) + repr([e.attributes for e in span.events])
    assert all(secret not in repr(r.attributes) for r in telemetry.logs())


def test_other_paths_go_straight_through(demo, telemetry):
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    # A path we do not trace (any the SDK has: here a models listing over post's sibling, and a file-like path).
    with pytest.raises(openai.APIStatusError):
        sync.post("/files", body={"purpose": "batch"}, cast_to=object)
    assert telemetry.spans() == []
    assert M.GEN_AI_CLIENT_OPERATION_DURATION not in telemetry.metrics()


def test_post_with_a_body_we_cannot_read_still_gets_a_span(demo, telemetry):
    """An attacker-shaped body (not a mapping): the call goes through unchanged, the span says what it can."""
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    raw = json.dumps({"model": "gpt-4o-mini", "messages": GERMAN}).encode()
    r = sync.post("/chat/completions", content=raw, cast_to=ChatCompletion, options={"headers": {"Content-Type": "application/json"}})
    assert r.choices[0].message.content.startswith("Hallo")
    (span,) = telemetry.spans()
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "chat" and A.GEN_AI_REQUEST_MODEL not in span.attributes
    assert span.attributes[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2026-01-01"


def test_other_paths_cost_nothing_measurable(demo, telemetry):
    """The wrapper of a path we do not trace is one dict lookup: well under the HTTP call itself."""
    from openai._base_client import SyncAPIClient

    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    wrapper = SyncAPIClient.__dict__["post"]._self_wrapper
    calls = []

    def stand_in(*args, **kwargs):
        calls.append(1)

    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        wrapper(stand_in, sync, ("/files",), {"body": None, "cast_to": object})
    per_call = (time.perf_counter() - start) / n
    assert len(calls) == n
    assert per_call < 20e-6, per_call  # a loopback HTTP call takes ~1 ms
