"""Responses API, embeddings and legacy completions go through the same pipeline."""

from __future__ import annotations

import asyncio

import openai
import pytest

from micrometrics_semconv import attributes as A
from provider_contract import Content, assert_failed_call, assert_inference_call


def clients(demo):
    opts = dict(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    return openai.OpenAI(**opts), openai.AsyncOpenAI(**opts)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_responses_create(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    sync, async_ = clients(demo)
    kwargs = dict(model="gpt-4.1", input="Wo ist meine Bestellung? Ich warte schon seit einer Woche.", instructions="Be brief.", max_output_tokens=200)

    if is_async:
        async def go():
            r = await async_.responses.create(stream=stream, **kwargs)
            if stream:
                return "".join([e.delta async for e in r if e.type == "response.output_text.delta"])
            return r.output_text
        text = asyncio.run(go())
    else:
        r = sync.responses.create(stream=stream, **kwargs)
        text = "".join(e.delta for e in r if e.type == "response.output_text.delta") if stream else r.output_text

    assert_inference_call(
        telemetry, operation="chat", provider="openai", request_model="gpt-4.1", response_model="gpt-4.1-2026-01-01",
        response_id_prefix="resp_", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(
            input_messages=[{"role": "user", "parts": [{"type": "text", "content": kwargs["input"]}]}],
            system_instructions=[{"type": "text", "content": "Be brief."}],
            output_text=text,
        ),
        attributes={A.GEN_AI_REQUEST_MAX_TOKENS: 200},
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_responses_error(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    with pytest.raises(openai.InternalServerError):
        if is_async:
            asyncio.run(async_.responses.create(model="error-500", input="hi"))
        else:
            sync.responses.create(model="error-500", input="hi")
    assert_failed_call(telemetry, "chat error-500", provider="openai", error_type="500")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_embeddings(demo, telemetry, is_async, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    sync, async_ = clients(demo)
    texts = ["Bestellung 1234", "Rückgabe eines Artikels"]
    if is_async:
        r = asyncio.run(async_.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float"))
    else:
        r = sync.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float")
    assert_inference_call(
        telemetry, operation="embeddings", provider="openai", request_model="text-embedding-3-small",
        response_model="text-embedding-3-small", response_id_prefix=None, finish_reasons=None, token_types=("input",),
        server=("127.0.0.1", demo.port), capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]),
        attributes={
            A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(r.data[0].embedding), A.GEN_AI_REQUEST_ENCODING_FORMATS: ("float",),
            A.GEN_AI_USAGE_INPUT_TOKENS: r.usage.prompt_tokens,
        },
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_embeddings_error(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    with pytest.raises(openai.BadRequestError):
        if is_async:
            asyncio.run(async_.embeddings.create(model="error-400", input="x"))
        else:
            sync.embeddings.create(model="error-400", input="x")
    assert_failed_call(telemetry, "embeddings error-400", provider="openai", error_type="400")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_legacy_completions(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    r = sync.completions.create(model="gpt-3.5-turbo-instruct", prompt="Sag hallo bitte", max_tokens=20, stream=stream)
    text = "".join(c.choices[0].text for c in r if c.choices) if stream else r.choices[0].text
    assert_inference_call(
        telemetry, operation="text_completion", provider="openai", request_model="gpt-3.5-turbo-instruct",
        response_model="gpt-3.5-turbo-instruct-2026-01-01", response_id_prefix="cmpl-", server=("127.0.0.1", demo.port),
        token_types=() if stream else ("input", "output"),  # a stream reports usage only when asked (stream_options)
        stream=stream, capture=True,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": "Sag hallo bitte"}]}], output_text=text),
        attributes={A.GEN_AI_REQUEST_MAX_TOKENS: 20},
    )


def test_embeddings_dimensions_come_from_the_request_and_a_compatible_servers_id_is_kept(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    sync.embeddings.create(model="text-embedding-3-small", input=["Bestellung 1234"], dimensions=64)
    # vLLM (OpenAI-compatible) answers embeddings with an id; OpenAI sends none.
    demo.enqueue(json={"id": "embd-vllm-1", "object": "list", "model": "intfloat/e5-mistral-7b-instruct",
                       "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                       "usage": {"prompt_tokens": 3, "total_tokens": 3}})
    sync.embeddings.create(model="intfloat/e5-mistral-7b-instruct", input="Bestellung 1234", encoding_format="float")

    openai_span = telemetry.span("embeddings text-embedding-3-small").attributes
    assert openai_span[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 64
    assert A.GEN_AI_RESPONSE_ID not in openai_span
    vllm_span = telemetry.span("embeddings intfloat/e5-mistral-7b-instruct").attributes
    assert vllm_span[A.GEN_AI_RESPONSE_ID] == "embd-vllm-1"
    assert vllm_span[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 3
    # The conventions define no content attribute for embeddings, capture or not.
    for attrs in (openai_span, vllm_span):
        assert A.GEN_AI_INPUT_MESSAGES not in attrs and not any("Bestellung" in str(v) for v in attrs.values())
