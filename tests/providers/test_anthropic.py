"""A user instruments an app that calls Anthropic: what their backend shows."""

from __future__ import annotations

import asyncio
import gc
import json

import anthropic
import pytest
import wrapt
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import micrometrics
from micrometrics.metrics.language_match import LanguageMatch
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from provider_contract import Content, assert_failed_call, assert_inference_call

MODEL = "claude-sonnet-5-5"
SPAN = f"chat {MODEL}"
GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]
#: What wrapt wraps methods in (BaseObjectProxy since wrapt 2).
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)
SYSTEM = "Du bist der freundliche Kundenservice eines Onlineshops."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather at a place.",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


def clients(demo, **kw):
    opts = dict(base_url=demo.anthropic_base_url, api_key="sk-ant-test-secret", max_retries=0, **kw)
    return anthropic.Anthropic(**opts), anthropic.AsyncAnthropic(**opts)


def text_of(event) -> str:
    return event.delta.text if event.type == "content_block_delta" and event.delta.type == "text_delta" else ""


def call(demo, is_async: bool, stream: bool, client_options: dict | None = None, **kwargs) -> str:
    """messages.create as an app calls it; returns the text the user reads."""
    sync, async_ = clients(demo, **(client_options or {}))
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 300)
    kwargs.setdefault("messages", GERMAN)
    if stream:
        kwargs["stream"] = True
    if not is_async:
        result = sync.messages.create(**kwargs)
        return "".join(text_of(e) for e in result) if stream else result.content[0].text

    async def go() -> str:
        result = await async_.messages.create(**kwargs)
        return "".join([text_of(e) async for e in result]) if stream else result.content[0].text

    return asyncio.run(go())


def message_json(**overrides) -> dict:
    """A Messages API response body, as the API sends it."""
    body = {
        "id": "msg_scripted", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Gern, ich sehe sofort nach Ihrer Bestellung."}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 9, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_messages_create_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    text = call(demo, is_async, stream, system=SYSTEM, stop_sequences=["\n\nHuman:"])
    assert text.startswith("Hallo")

    assert_inference_call(
        telemetry, operation="chat", provider="anthropic", request_model=MODEL, response_model=MODEL,
        response_id_prefix="msg_demo", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(
            input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN[0]["content"]}]}],
            system_instructions=[{"type": "text", "content": SYSTEM}],
            output_text=text,
        ),
        secret="sk-ant-test-secret",
        attributes={
            A.GEN_AI_REQUEST_MAX_TOKENS: 300, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("\n\nHuman:",),
            A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0, A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 0,
        },
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    "model,exc_type,error_type",
    [
        ("error-400", anthropic.BadRequestError, "400"),
        ("error-429", anthropic.RateLimitError, "429"),
        ("error-500", anthropic.InternalServerError, "500"),
    ],
)
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, is_async, stream, model, exc_type, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(exc_type) as info:
        call(demo, is_async, stream, model=model)
    assert info.value.status_code == int(error_type)
    assert_failed_call(telemetry, f"chat {model}", provider="anthropic", error_type=error_type)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_timeout_is_an_error_with_the_exception_class(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    demo.enqueue(delay=2.0)
    with pytest.raises(anthropic.APITimeoutError):
        call(demo, is_async, False, client_options={"timeout": 0.3})
    assert_failed_call(telemetry, SPAN, provider="anthropic", error_type="anthropic.APITimeoutError")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_stream_helper_keeps_its_event_api_and_final_message(demo, telemetry, is_async):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, async_ = clients(demo)
    kwargs = dict(model=MODEL, max_tokens=300, messages=GERMAN, system=SYSTEM)

    if is_async:
        async def go():
            async with async_.messages.stream(**kwargs) as stream:
                events = [e async for e in stream]
                return events, await stream.get_final_message(), await stream.get_final_text()
        events, final, final_text = asyncio.run(go())
    else:
        with sync.messages.stream(**kwargs) as stream:
            events = list(stream)
            final, final_text = stream.get_final_message(), stream.get_final_text()

    # The helper's own events (text snapshots included) still reach the app.
    text_events = [e for e in events if e.type == "text"]
    assert "".join(e.text for e in text_events) == final_text == final.content[0].text
    assert text_events[-1].snapshot == final_text
    assert events[-1].type == "message_stop"

    span = telemetry.span(SPAN)  # one span for the helper call
    attrs = span.attributes
    assert attrs[A.GEN_AI_REQUEST_STREAM] is True
    assert attrs[A.GEN_AI_RESPONSE_ID] == final.id
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == final_text
    assert json.loads(attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": SYSTEM}]


def test_stream_helper_left_early_ends_its_span_with_what_was_read(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    with sync.messages.stream(model=MODEL, max_tokens=300, messages=GERMAN) as stream:
        first_words = [t for _, t in zip(range(3), stream.text_stream)]
    attrs = telemetry.span(SPAN).attributes
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "".join(first_words)
    assert A.GEN_AI_RESPONSE_FINISH_REASONS not in attrs


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_use_blocks_and_tool_results(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    ask = [{"role": "user", "content": "Wie ist das Wetter in Hamburg?"}]
    if stream:
        with sync.messages.stream(model=MODEL, max_tokens=300, messages=ask, tools=[WEATHER_TOOL]) as s:
            message = s.get_final_message()
    else:
        message = sync.messages.create(model=MODEL, max_tokens=300, messages=ask, tools=[WEATHER_TOOL])
    assert message.stop_reason == "tool_use"
    tool_use = next(b for b in message.content if b.type == "tool_use")

    # The app runs the tool and sends the result back.
    follow_up = ask + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": '{"temperature": 12, "condition": "Regen"}'}]},
    ]
    answer = sync.messages.create(model=MODEL, max_tokens=300, messages=follow_up, tools=[WEATHER_TOOL])

    first, second = telemetry.spans()
    assert tuple(first.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (output,) = json.loads(first.attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert output["finish_reason"] == "tool_call"
    call_part = next(p for p in output["parts"] if p["type"] == "tool_call")
    assert call_part == {"type": "tool_call", "id": tool_use.id, "name": "get_weather", "arguments": tool_use.input}
    assert json.loads(first.attributes[A.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "get_weather", "description": "Current weather at a place.", "parameters": WEATHER_TOOL["input_schema"]}
    ]

    inputs = json.loads(second.attributes[A.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    assert {"type": "tool_call", "id": tool_use.id, "name": "get_weather", "arguments": tool_use.input} in inputs[1]["parts"]
    assert inputs[2]["parts"] == [{"type": "tool_call_response", "id": tool_use.id, "response": '{"temperature": 12, "condition": "Regen"}'}]
    assert tuple(second.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert "Hamburg" in answer.content[0].text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_cache_tokens_and_input_tokens_that_include_them(demo, telemetry, stream):
    telemetry.instrument(metrics=[])
    usage = {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50, "output_tokens": 9}
    if stream:
        start = message_json(content=[], stop_reason=None, usage={**usage, "output_tokens": 1})
        demo.enqueue(sse=[
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Gern!"}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 9}}),
            ("message_stop", {"type": "message_stop"}),
        ])
    else:
        demo.enqueue(json=message_json(usage=usage))
    call(demo, False, stream)
    attrs = telemetry.span(SPAN).attributes
    # The conventions' input tokens include cached ones; Anthropic reports them apart.
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 160
    assert attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert attrs[A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 50
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    tokens = {p.attributes[A.GEN_AI_TOKEN_TYPE]: p.sum for p in telemetry.metrics()[M.GEN_AI_CLIENT_TOKEN_USAGE]}
    assert tokens == {"input": 160, "output": 9}


def test_multi_turn_conversation_reports_prompt_cache_reads(demo, telemetry):
    telemetry.instrument(metrics=[])
    turns = [*GERMAN, {"role": "assistant", "content": "Gern, wie lautet Ihre Bestellnummer?"}, {"role": "user", "content": "Die Nummer ist 4711."}]
    call(demo, False, False, messages=turns)
    attrs = telemetry.span(SPAN).attributes
    assert 0 < attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] < attrs[A.GEN_AI_USAGE_INPUT_TOKENS]


@pytest.mark.parametrize(
    "stop_reason,finish",
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_call"),
     ("refusal", "content_filter"), ("model_context_window_exceeded", "length")],
)
def test_stop_reasons_map_to_the_conventions_finish_reasons(demo, telemetry, stop_reason, finish):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json=message_json(stop_reason=stop_reason))
    call(demo, False, False)
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == (finish,)
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == finish


def test_thinking_blocks_are_reasoning_parts_not_answer_text(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[LanguageMatch()])
    demo.enqueue(json=message_json(content=[
        {"type": "thinking", "thinking": "The customer writes German, so I answer in German.", "signature": "sig"},
        {"type": "text", "text": "Gern, ich sehe sofort nach Ihrer Bestellung und melde mich gleich wieder bei Ihnen."},
    ]))
    sync, _ = clients(demo)
    sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
    attrs = telemetry.span(SPAN).attributes
    parts = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"]
    assert [p["type"] for p in parts] == ["reasoning", "text"]
    # Metrics judge what the user reads: the German answer, not the English thoughts.
    assert attrs["micrometrics.language_match.detected"] == "de"


def test_parse_structured_output_and_with_raw_response(demo, telemetry):
    pydantic = pytest.importorskip("pydantic")

    class Order(pydantic.BaseModel):
        answer: str
        language: str

    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    parsed = sync.messages.parse(model=MODEL, max_tokens=300, messages=GERMAN, output_format=Order)
    assert parsed.parsed_output is not None and parsed.parsed_output.language == "de"
    raw = sync.messages.with_raw_response.create(model=MODEL, max_tokens=300, messages=GERMAN)
    assert raw.http_response.status_code == 200
    message = raw.parse()

    first, second = telemetry.spans()
    assert first.attributes[A.GEN_AI_OUTPUT_TYPE] == "json"
    assert first.attributes[A.GEN_AI_RESPONSE_ID] == parsed.id
    assert second.attributes[A.GEN_AI_RESPONSE_ID] == message.id
    assert second.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens


def test_with_streaming_response_leaves_the_body_to_the_app(demo, telemetry):
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    with sync.messages.with_streaming_response.create(model=MODEL, max_tokens=300, messages=GERMAN) as response:
        body = json.loads(b"".join(response.iter_bytes()))  # the app reads every byte itself
    assert body["content"][0]["text"].startswith("Hallo")
    attrs = telemetry.span(SPAN).attributes
    assert attrs[A.GEN_AI_REQUEST_MODEL] == MODEL
    assert A.GEN_AI_RESPONSE_FINISH_REASONS not in attrs and A.GEN_AI_RESPONSE_ID not in attrs


def test_beta_messages_are_traced_too(demo, telemetry):
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    message = sync.beta.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
    span = telemetry.span(SPAN)
    assert span.attributes[A.GEN_AI_RESPONSE_ID] == message.id
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "anthropic"


@pytest.mark.parametrize(
    "make_client,path,provider",
    [
        (lambda url: anthropic.AnthropicBedrock(api_key="bedrock-key", aws_region="us-east-1", base_url=url, max_retries=0), "/invoke", "aws.bedrock"),
        (lambda url: anthropic.AnthropicVertex(region="us-east5", project_id="shop", access_token="gcp-token", base_url=url, max_retries=0), ":rawPredict", "gcp.vertex_ai"),
    ],
    ids=["bedrock", "vertex"],
)
def test_bedrock_and_vertex_clients_report_their_provider(demo, telemetry, make_client, path, provider):
    telemetry.instrument(metrics=[])
    demo.enqueue(json=message_json(), path_contains=path)
    client = make_client(demo.base_url)
    message = client.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
    assert message.id == "msg_scripted"
    assert path in demo.requests[-1].path
    attrs = telemetry.span(SPAN).attributes
    assert attrs[A.GEN_AI_PROVIDER_NAME] == provider
    assert attrs[A.GEN_AI_RESPONSE_ID] == "msg_scripted"
    (point,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert point.attributes[A.GEN_AI_PROVIDER_NAME] == provider


class TestStreamsEndExactlyOnce:
    def test_abandoned_partly_consumed_stream_is_ended_by_gc(self, demo, telemetry):
        telemetry.instrument(capture_content=True, metrics=[])
        sync, _ = clients(demo)
        stream = sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN, stream=True)
        it = iter(stream)
        read = "".join(text_of(next(it)) for _ in range(5))
        assert read
        assert telemetry.spans() == []  # still open while the caller may read on
        del stream, it
        gc.collect()
        attrs = telemetry.span(SPAN).attributes
        assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == read
        assert A.GEN_AI_RESPONSE_FINISH_REASONS not in attrs

    def test_context_exit_and_close_twice_end_one_span(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        sync, _ = clients(demo)
        with sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN, stream=True) as stream:
            next(iter(stream))
            stream.close()
            stream.close()
        assert len(telemetry.spans()) == 1

    def test_async_stream_context_manager_and_close(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        _, client = clients(demo)

        async def go():
            stream = await client.messages.create(model=MODEL, max_tokens=300, messages=GERMAN, stream=True)
            async with stream:
                async for _ in stream:
                    break
            await stream.close()

        asyncio.run(go())
        assert len(telemetry.spans()) == 1

    def test_error_event_midway_records_the_error_and_propagates(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        start = message_json(content=[], stop_reason=None)
        demo.enqueue(sse=[
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hal"}}),
            ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ])
        sync, _ = clients(demo)
        with pytest.raises(anthropic.APIStatusError) as info:
            for _ in sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN, stream=True):
                pass
        assert "Overloaded" in str(info.value)
        span = telemetry.span(SPAN)
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes[A.GEN_AI_RESPONSE_ID] == "msg_scripted"


class ClientSpans:
    """The anthropic client's own spans, exported apart from ours (they are the SDK's names, not ours)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def option(self) -> dict:
        return {"open_telemetry": {"tracer_provider": self.provider}}

    def names(self) -> list[str]:
        return [s.name for s in self.exporter.get_finished_spans()]


@pytest.fixture
def client_spans():
    spans = ClientSpans()
    yield spans
    spans.provider.shutdown()


class TestTheClientsOwnTracing:
    """anthropic 2.x traces its own calls (``open_telemetry``): never two inference spans for one call."""

    def test_the_client_traces_itself_when_we_do_not(self, demo, client_spans):
        sync, _ = clients(demo, **client_spans.option)
        sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
        assert client_spans.names() == ["anthropic.messages.create"]  # what would double our span

    def test_one_inference_span_per_call_with_our_micro_metrics(self, demo, telemetry, client_spans):
        telemetry.instrument(metrics=[LanguageMatch()])
        sync, async_ = clients(demo, **client_spans.option)
        sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
        for _ in sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN, stream=True):
            pass
        with sync.messages.stream(model=MODEL, max_tokens=300, messages=GERMAN) as s:
            s.until_done()

        async def go():
            await async_.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)

        asyncio.run(go())

        assert client_spans.names() == []
        inference = telemetry.spans()
        assert [s.name for s in inference] == [SPAN] * 4
        assert all(s.attributes["micrometrics.language_match.label"] == "match" for s in inference)
        # The requests still carry a trace context: our span's, so server-side spans join our trace.
        sent = [r.headers["traceparent"].split("-")[2] for r in demo.requests]
        assert sorted(sent) == sorted(format(s.context.span_id, "016x") for s in inference)

    def test_calls_we_do_not_trace_keep_the_clients_own_spans(self, demo, telemetry, client_spans):
        telemetry.instrument(metrics=[])
        sync, _ = clients(demo, **client_spans.option)
        sync.messages.count_tokens(model=MODEL, messages=GERMAN)
        sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
        assert client_spans.names() == ["anthropic.messages.count_tokens"]
        assert [s.name for s in telemetry.spans()] == [SPAN]

    def test_uninstrument_hands_tracing_back_to_the_client(self, demo, telemetry, client_spans):
        telemetry.instrument(metrics=[])
        sync, _ = clients(demo, **client_spans.option)
        sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
        micrometrics.uninstrument()
        sync.messages.create(model=MODEL, max_tokens=300, messages=GERMAN)
        assert [s.name for s in telemetry.spans()] == [SPAN]
        assert client_spans.names() == ["anthropic.messages.create"]


def test_uninstrument_restores_every_method(demo, telemetry):
    from anthropic.resources.beta.messages import messages as beta
    from anthropic.resources.messages import messages

    telemetry.instrument(metrics=[])
    methods = [(cls, name) for cls in (messages.Messages, messages.AsyncMessages, beta.Messages, beta.AsyncMessages) for name in ("create", "parse", "stream")]
    assert all(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    micrometrics.uninstrument()
    assert not any(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    call(demo, False, True)
    assert telemetry.spans() == []


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.anthropic import AnthropicInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_anthropic"]
    assert ep.load() is AnthropicInstrumentor
    assert list(AnthropicInstrumentor().instrumentation_dependencies()) == ["anthropic >= 0.40"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_with_raw_response_touched_before_instrument_is_traced(demo, telemetry, is_async):
    """The SDK caches ``with_raw_response`` per resource with the methods bound at first touch."""
    sync, async_ = clients(demo)
    client = async_ if is_async else sync
    early = client.messages.with_raw_response
    telemetry.instrument(metrics=[])

    async def go_async():
        raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=300, messages=GERMAN)
        return await raw.parse()

    message = asyncio.run(go_async()) if is_async else client.messages.with_raw_response.create(model=MODEL, max_tokens=300, messages=GERMAN).parse()
    assert telemetry.span(SPAN).attributes[A.GEN_AI_RESPONSE_ID] == message.id
    micrometrics.uninstrument()
    assert client.messages.with_raw_response is early  # the SDK's own cached view again
