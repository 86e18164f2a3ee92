"""A user instruments an app that calls OpenAI chat: what their backend shows."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import warnings

import openai
import pytest

import micrometrics
from opentelemetry.trace import StatusCode

from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V
from provider_contract import Content, assert_failed_call, assert_inference_call

GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]


def clients(demo, **kw):
    opts = dict(base_url=demo.openai_base_url, api_key="sk-test-secret-key", max_retries=0, **kw)
    return openai.OpenAI(**opts), openai.AsyncOpenAI(**opts)


def call_chat(demo, is_async: bool, stream: bool, **kwargs):
    sync, async_ = clients(demo)
    kwargs.setdefault("model", "gpt-4o-mini")
    kwargs.setdefault("messages", GERMAN)
    if stream:
        kwargs["stream"] = True

    if not is_async:
        result = sync.chat.completions.create(**kwargs)
        return "".join(c.choices[0].delta.content or "" for c in result if c.choices) if stream else result.choices[0].message.content

    async def go():
        result = await async_.chat.completions.create(**kwargs)
        if stream:
            return "".join([c.choices[0].delta.content or "" async for c in result if c.choices])
        return result.choices[0].message.content

    return asyncio.run(go())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_chat_call_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    extra = {"stream_options": {"include_usage": True}} if stream else {}
    text = call_chat(demo, is_async, stream, temperature=0.2, max_tokens=100, top_p=0.9, seed=7, stop=["\n\n"], **extra)
    assert text.startswith("Hallo")

    assert_inference_call(
        telemetry, operation="chat", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2026-01-01",
        response_id_prefix="chatcmpl-", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN[0]["content"]}]}], output_text=text),
        secret="sk-test-secret-key",  # the API key never reaches telemetry
        attributes={
            A.GEN_AI_REQUEST_TEMPERATURE: 0.2, A.GEN_AI_REQUEST_MAX_TOKENS: 100, A.GEN_AI_REQUEST_TOP_P: 0.9,
            A.GEN_AI_REQUEST_SEED: 7, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("\n\n",),
        },
    )


def test_stream_without_usage_still_records_the_answer(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    text = call_chat(demo, False, True)
    attrs = telemetry.span().attributes
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    "model,exc_type,error_type",
    [
        ("error-400", openai.BadRequestError, "400"),
        ("error-429", openai.RateLimitError, "429"),
        ("error-500", openai.InternalServerError, "500"),
    ],
)
def test_api_errors_propagate_and_mark_the_span(demo, telemetry, is_async, stream, model, exc_type, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(exc_type):
        call_chat(demo, is_async, stream, model=model)
    assert_failed_call(telemetry, f"chat {model}", provider="openai", error_type=error_type)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_timeout_is_an_error_with_the_exception_class(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    demo.enqueue(delay=2.0)
    with pytest.raises(openai.APITimeoutError):
        sync, async_ = clients(demo, timeout=0.3)
        if is_async:
            asyncio.run(async_.chat.completions.create(model="gpt-4o-mini", messages=GERMAN))
        else:
            sync.chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    assert_failed_call(telemetry, "chat gpt-4o-mini", provider="openai", error_type="openai.APITimeoutError")


def test_tool_calls_map_to_tool_call_finish_reason(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = sync.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "What is the weather in Berlin?"}], tools=tools)
    assert r.choices[0].finish_reason == "tool_calls"
    attrs = telemetry.span().attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (message,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    call = [p for p in message["parts"] if p["type"] == "tool_call"][0]
    assert call["name"] == "get_weather" and call["id"] == r.choices[0].message.tool_calls[0].id
    assert isinstance(call["arguments"], dict)
    # The conventions' tool definition, not OpenAI's nesting under "function".
    assert json.loads(attrs[A.GEN_AI_TOOL_DEFINITIONS]) == [{"type": "function", "name": "get_weather", "parameters": tools[0]["function"]["parameters"]}]


def test_inline_images_are_blob_parts_and_linked_images_uri_parts(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAIAAQDiIbwzAAAAAElFTkSuQmCC"
    sync.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Was ist auf diesen Bildern?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/katze.png"}},
    ]}])
    (message,) = json.loads(telemetry.span().attributes[A.GEN_AI_INPUT_MESSAGES])
    assert message["parts"][1:] == [
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": png},
        {"type": "uri", "modality": "image", "uri": "https://example.com/katze.png"},
    ]


def test_request_doubles_are_doubles_even_when_the_app_passes_ints(demo, telemetry):
    telemetry.instrument(metrics=[])
    call_chat(demo, False, False, temperature=1, top_p=1, frequency_penalty=0, presence_penalty=0, max_tokens=50)
    attrs = telemetry.span().attributes
    for key in (A.GEN_AI_REQUEST_TEMPERATURE, A.GEN_AI_REQUEST_TOP_P, A.GEN_AI_REQUEST_FREQUENCY_PENALTY, A.GEN_AI_REQUEST_PRESENCE_PENALTY):
        assert type(attrs[key]) is float, key
    assert type(attrs[A.GEN_AI_REQUEST_MAX_TOKENS]) is int


def test_streamed_tool_calls_are_assembled(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    for _ in sync.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "weather in Paris?"}], tools=tools, stream=True):
        pass
    attrs = telemetry.span().attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    parts = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"]
    assert [p["name"] for p in parts if p["type"] == "tool_call"] == ["get_weather"]


def test_several_choices_and_refusal_and_cached_and_reasoning_tokens(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json={
        "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "o4-mini-2026",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Eins."}, "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."}, "finish_reason": "content_filter"},
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 30, "total_tokens": 80,
                  "prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 20}},
    })
    sync, _ = clients(demo)
    sync.chat.completions.create(model="o4-mini", messages=GERMAN, n=2)
    attrs = telemetry.span().attributes
    assert attrs[A.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop", "content_filter")
    assert attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 40
    assert attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 20
    outputs = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    assert outputs[1]["parts"] == [{"type": "refusal", "content": "I can't help with that."}]


def test_parse_and_the_stream_helper_are_traced(demo, telemetry):
    pydantic = pytest.importorskip("pydantic")

    class Answer(pydantic.BaseModel):
        answer: str

    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    parsed = sync.chat.completions.parse(model="gpt-4o-mini", messages=[{"role": "user", "content": "Reply in JSON"}], response_format=Answer)
    assert parsed.choices[0].message.parsed is not None
    with sync.chat.completions.stream(model="gpt-4o-mini", messages=GERMAN) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert spans[0].attributes[A.GEN_AI_OUTPUT_TYPE] == "json"
    assert spans[1].attributes[A.GEN_AI_REQUEST_STREAM] is True
    assert tuple(spans[1].attributes[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


def test_with_raw_response_keeps_working_and_is_traced(demo, telemetry):
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    raw = sync.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=GERMAN)
    assert raw.http_response.status_code == 200
    completion = raw.parse()
    attrs = telemetry.span().attributes
    assert attrs[A.GEN_AI_RESPONSE_ID] == completion.id
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens


def test_azure_client_reports_azure_provider(demo, telemetry):
    telemetry.instrument(metrics=[])
    client = openai.AzureOpenAI(azure_endpoint=demo.base_url, api_key="azure-key", api_version="2024-10-21", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=GERMAN)
    span = telemetry.span()
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert "azure-key" not in repr(dict(span.attributes))
    assert demo.requests[-1].headers["api-key"] == "azure-key"  # the key went to the server, not to telemetry


class TestStreamsEndExactlyOnce:
    def test_abandoned_partly_consumed_stream_is_ended_by_gc(self, demo, telemetry):
        telemetry.instrument(capture_content=True, metrics=[])
        sync, _ = clients(demo)
        stream = sync.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True)
        it = iter(stream)
        read = "".join(next(it).choices[0].delta.content or "" for _ in range(3))
        assert read
        assert telemetry.spans() == []  # still open while the caller may read on
        del stream, it
        gc.collect()
        (span,) = telemetry.spans()
        received = json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"]
        assert received == read
        assert A.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes

    def test_close_twice_and_context_exit_end_one_span(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        sync, _ = clients(demo)
        with sync.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True) as stream:
            next(stream)
            stream.close()
            stream.close()
        assert len(telemetry.spans()) == 1

    def test_async_stream_context_manager_and_aclose(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        _, client = clients(demo)

        async def go():
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True)
            async with stream:
                async for _ in stream:
                    break
            await stream.close()

        asyncio.run(go())
        assert len(telemetry.spans()) == 1

    def test_stream_raising_midway_records_the_error(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        demo.enqueue(raw=b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hal"}}]}\n\ndata: {not json\n\n',
                     headers={"content-type": "text/event-stream"})
        sync, _ = clients(demo)
        stream = sync.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True)
        with pytest.raises(Exception) as info:
            for _ in stream:
                pass
        span = telemetry.span()
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes[A.ERROR_TYPE].endswith(type(info.value).__name__)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_with_streaming_response_leaves_the_body_to_the_app(demo, telemetry, is_async, stream):
    """The body the app asked to stream is not read inside ``create()`` (sync), and no ``parse()``
    coroutine is left unawaited (async); the span says what the request and the status said."""
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    kwargs = dict(model="gpt-4o-mini", messages=GERMAN, **({"stream": True} if stream else {}))

    def read(body: bytes) -> str:
        if not stream:
            return json.loads(body)["choices"][0]["message"]["content"]
        events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: {")]
        return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])

    async def go_async():
        async with async_.chat.completions.with_streaming_response.create(**kwargs) as response:
            untouched = not response.http_response.is_stream_consumed
            return untouched, read(b"".join([chunk async for chunk in response.iter_bytes()]))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if is_async:
            untouched, text = asyncio.run(go_async())
        else:
            with sync.chat.completions.with_streaming_response.create(**kwargs) as response:
                untouched = not response.http_response.is_stream_consumed
                text = read(b"".join(response.iter_bytes()))  # the app reads every byte itself
        gc.collect()
    assert untouched  # create() returned before the body was read
    assert text.startswith("Hallo")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    (span,) = telemetry.spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert A.GEN_AI_RESPONSE_ID not in span.attributes  # the body was the app's: not read by us
    assert span.status.status_code != StatusCode.ERROR


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_with_raw_response_touched_before_instrument_is_traced(demo, telemetry, is_async):
    """The SDK caches ``with_raw_response`` per resource with the methods bound at first touch."""
    sync, async_ = clients(demo)
    client = async_ if is_async else sync
    early_raw, early_streaming = client.chat.completions.with_raw_response, client.chat.completions.with_streaming_response
    assert early_raw and early_streaming  # touched (and cached by the SDK) before instrument()
    telemetry.instrument(metrics=[])

    async def go_async():
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=GERMAN)
        async with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=GERMAN) as streamed:
            await streamed.read()
        return raw

    raw = asyncio.run(go_async()) if is_async else client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=GERMAN)
    if not is_async:
        with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=GERMAN) as streamed:
            streamed.read()
    completion = raw.parse()
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert spans[0].attributes[A.GEN_AI_RESPONSE_ID] == completion.id

    micrometrics.uninstrument()  # the SDK's own cached views again
    assert client.chat.completions.with_raw_response is early_raw


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_stream_helper_left_early_ends_its_span_on_exit(demo, telemetry, is_async, api):
    """``with client.chat.completions.stream(...) as s: for ev in s: break`` closes the HTTP response
    under our proxy: the span ends when the helper's context exits, not at garbage collection."""
    telemetry.instrument(capture_content=True, metrics=[])
    sync, async_ = clients(demo)
    client = async_ if is_async else sync
    kwargs = dict(model="gpt-4o-mini", **({"messages": GERMAN} if api == "chat" else {"input": GERMAN[0]["content"]}))
    helper = client.chat.completions.stream if api == "chat" else client.responses.stream
    kept = []  # the helper stays referenced: garbage collection cannot be what ends the span

    async def go_async():
        async with helper(**kwargs) as s:
            kept.append(s)
            async for _ in s:
                break
        return time.time_ns()

    gc.disable()
    try:
        if is_async:
            exited = asyncio.run(go_async())
        else:
            with helper(**kwargs) as s:
                kept.append(s)
                for _ in s:
                    break
            exited = time.time_ns()
        (span,) = telemetry.spans()
    finally:
        gc.enable()
    assert span.end_time <= exited  # ended by the exit, not later
    assert span.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    # Left before its end (issue 15): abandoned, not a success.
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED
