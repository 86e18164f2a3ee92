"""Responses API, embeddings and legacy completions go through the same pipeline."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from opentelemetry.trace import StatusCode

from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M


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

    span = telemetry.span("chat gpt-4.1")
    attrs = span.attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[A.GEN_AI_REQUEST_MAX_TOKENS] == 200
    assert attrs[A.GEN_AI_RESPONSE_ID].startswith("resp_")
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] > 0 and attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    if capture:
        assert json.loads(attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
        assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
    else:
        assert A.GEN_AI_SYSTEM_INSTRUCTIONS not in attrs and A.GEN_AI_OUTPUT_MESSAGES not in attrs


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_responses_error(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    with pytest.raises(openai.InternalServerError):
        if is_async:
            asyncio.run(async_.responses.create(model="error-500", input="hi"))
        else:
            sync.responses.create(model="error-500", input="hi")
    span = telemetry.span()
    assert span.status.status_code == StatusCode.ERROR and span.attributes[A.ERROR_TYPE] == "500"


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
    span = telemetry.span("embeddings text-embedding-3-small")
    attrs = span.attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(r.data[0].embedding)
    assert tuple(attrs[A.GEN_AI_REQUEST_ENCODING_FORMATS]) == ("float",)
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == r.usage.prompt_tokens
    assert ("Bestellung 1234" in repr(dict(attrs))) is capture
    tokens = telemetry.metrics()[M.GEN_AI_CLIENT_TOKEN_USAGE]
    assert [p.attributes[A.GEN_AI_TOKEN_TYPE] for p in tokens] == ["input"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_embeddings_error(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    with pytest.raises(openai.BadRequestError):
        if is_async:
            asyncio.run(async_.embeddings.create(model="error-400", input="x"))
        else:
            sync.embeddings.create(model="error-400", input="x")
    assert telemetry.span().attributes[A.ERROR_TYPE] == "400"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_legacy_completions(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    r = sync.completions.create(model="gpt-3.5-turbo-instruct", prompt="Sag hallo bitte", max_tokens=20, stream=stream)
    text = "".join(c.choices[0].text for c in r if c.choices) if stream else r.choices[0].text
    attrs = telemetry.span("text_completion gpt-3.5-turbo-instruct").attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "text_completion"
    assert attrs[A.GEN_AI_REQUEST_MAX_TOKENS] == 20
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
