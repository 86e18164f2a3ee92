"""A user instruments an app that calls Cohere through ``cohere`` (API v2): what their backend shows."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json

import cohere
import pytest
import wrapt
from cohere.core.api_error import ApiError
from opentelemetry.trace import StatusCode

import micrometrics
from micrometrics_semconv import attributes as A
from provider_contract import Content, assert_failed_call, assert_inference_call

MODEL = "command-a-03-2025"
SPAN = f"chat {MODEL}"
KEY = "co-cohere-secret-key"
SYSTEM = "Du bist der freundliche Kundenservice eines Onlineshops."
GERMAN = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": GERMAN}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather at a place.",
                                            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def clients(demo):
    opts = dict(api_key=KEY, base_url=demo.cohere_base_url, max_retries=0)
    return cohere.ClientV2(**opts), cohere.AsyncClientV2(**opts)


def chat(demo, is_async: bool, stream: bool, **kwargs) -> str:
    """chat / chat_stream as an app calls them; the text the user reads."""
    sync, async_ = clients(demo)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("messages", MESSAGES)

    def text(event) -> str:
        return event.delta.message.content.text or "" if event.type == "content-delta" else ""

    if not is_async:
        if stream:
            return "".join(text(e) for e in sync.chat_stream(**kwargs))
        return sync.chat(**kwargs).message.content[0].text

    async def go() -> str:
        if stream:
            return "".join([text(e) async for e in async_.chat_stream(**kwargs)])  # not awaited: an async generator
        return (await async_.chat(**kwargs)).message.content[0].text

    return asyncio.run(go())


def response(message: dict, finish: str = "COMPLETE", usage: dict | None = None) -> dict:
    """A v2 chat body as Cohere's API sends it."""
    tokens = {"input_tokens": 12, "output_tokens": 9}
    return {"id": "co-scripted", "finish_reason": finish, "message": {"role": "assistant", **message},
            "usage": usage if usage is not None else {"billed_units": tokens, "tokens": tokens}}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_chat_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    text = chat(demo, is_async, stream, temperature=0.3, p=0.9, k=40, max_tokens=300, seed=7, stop_sequences=["ENDE"],
                presence_penalty=0.1, frequency_penalty=0.2)
    assert text.startswith("Hallo")

    # Cohere's responses name no model: no gen_ai.response.model. A stream's usage comes from message-end.
    assert_inference_call(
        telemetry, operation="chat", provider="cohere", request_model=MODEL, response_model=None,
        response_id_prefix="demo-cohere-", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(
            input_messages=[{"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
                            {"role": "user", "parts": [{"type": "text", "content": GERMAN}]}],
            output_text=text,
        ),
        secret=KEY,
        attributes={
            A.GEN_AI_REQUEST_TEMPERATURE: 0.3, A.GEN_AI_REQUEST_TOP_P: 0.9, A.GEN_AI_REQUEST_TOP_K: 40,
            A.GEN_AI_REQUEST_MAX_TOKENS: 300, A.GEN_AI_REQUEST_SEED: 7, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("ENDE",),
            A.GEN_AI_REQUEST_PRESENCE_PENALTY: 0.1, A.GEN_AI_REQUEST_FREQUENCY_PENALTY: 0.2,
        },
    )
    assert demo.requests[-1].route == "/v2/chat"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model,exc_type,error_type", [("error-400", cohere.BadRequestError, "400"),
                                                       ("error-429", cohere.TooManyRequestsError, "429"),
                                                       ("error-500", cohere.InternalServerError, "500")])
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, is_async, stream, model, exc_type, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(exc_type) as info:
        chat(demo, is_async, stream, model=model)
    assert isinstance(info.value, ApiError) and info.value.status_code == int(error_type)
    assert_failed_call(telemetry, f"chat {model}", provider="cohere", error_type=error_type)


def test_async_chat_stream_keeps_its_shape(demo, telemetry):
    """``AsyncClientV2.chat_stream`` returns an async generator unawaited; nothing is sent before the first item."""
    telemetry.instrument(metrics=[])
    _, async_ = clients(demo)

    async def go() -> str:
        stream = async_.chat_stream(model=MODEL, messages=MESSAGES)
        assert inspect.isasyncgen(stream) and not inspect.isawaitable(stream)
        assert demo.requests == []
        return "".join([e.delta.message.content.text async for e in stream if e.type == "content-delta"])

    assert asyncio.run(go()).startswith("Hallo")
    assert telemetry.span(SPAN).attributes[A.GEN_AI_REQUEST_STREAM] is True


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_plan_and_tool_calls(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    ask = [{"role": "user", "content": "Wie ist das Wetter in Hamburg?"}]
    if stream:
        events = list(sync.chat_stream(model=MODEL, messages=ask, tools=[WEATHER]))
        call_id = next(e.delta.message.tool_calls.id for e in events if e.type == "tool-call-start")
        plan = "".join(e.delta.message.tool_plan for e in events if e.type == "tool-plan-delta")
    else:
        r = sync.chat(model=MODEL, messages=ask, tools=[WEATHER])
        assert r.finish_reason == "TOOL_CALL"
        call_id, plan = r.message.tool_calls[0].id, r.message.tool_plan

    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (output,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    # The tool plan is the model's reasoning, not the answer: metrics never judge it.
    assert output["parts"] == [
        {"type": "reasoning", "content": plan},
        {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": {"location": "Hamburg", "unit": "celsius"}},
    ]
    assert json.loads(attrs[A.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "get_weather"

    telemetry.span_exporter.clear()
    assistant = {"role": "assistant", "tool_plan": plan, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "Hamburg"}'}}]}
    result = {"role": "tool", "tool_call_id": call_id, "content": [{"type": "document", "document": {"data": '{"temperature": 12}'}}]}
    answer = sync.chat(model=MODEL, messages=[*ask, assistant, result], tools=[WEATHER])
    assert "Hamburg" in answer.message.content[0].text
    inputs = json.loads(telemetry.span(SPAN).attributes[A.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    assert inputs[1]["parts"] == [{"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": {"location": "Hamburg"}}]
    assert inputs[2]["parts"][0]["type"] == "tool_call_response" and inputs[2]["parts"][0]["id"] == call_id


@pytest.mark.parametrize("finish,expected", [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length"),
                                             ("TOOL_CALL", "tool_call"), ("ERROR", "error"), ("TIMEOUT", "error")])
def test_finish_reasons_map_to_the_conventions(demo, telemetry, finish, expected):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json=response({"content": [{"type": "text", "text": "Gern."}]}, finish))
    chat(demo, False, False)
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == (expected,)
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == expected


def test_usage_prefers_tokens_to_billed_units_and_reads_cached_tokens(demo, telemetry):
    telemetry.instrument(metrics=[])
    demo.enqueue(json=response({"content": [{"type": "text", "text": "Gern."}]}, usage={
        "billed_units": {"input_tokens": 10.0, "output_tokens": 4.0},
        "tokens": {"input_tokens": 112.0, "output_tokens": 5.0},
        "cached_tokens": 64.0,
    }))
    chat(demo, False, False)
    attrs = telemetry.span(SPAN).attributes
    assert (attrs[A.GEN_AI_USAGE_INPUT_TOKENS], attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (112, 5)
    assert type(attrs[A.GEN_AI_USAGE_INPUT_TOKENS]) is int
    assert attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 64


def test_thinking_content_is_reasoning(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json=response({"content": [{"type": "thinking", "thinking": "Deutsch."}, {"type": "text", "text": "Gern."}]}))
    assert clients(demo)[0].chat(model=MODEL, messages=MESSAGES).message.content[1].text == "Gern."
    (output,) = json.loads(telemetry.span(SPAN).attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert output["parts"] == [{"type": "reasoning", "content": "Deutsch."}, {"type": "text", "content": "Gern."}]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_embed(demo, telemetry, is_async, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    sync, async_ = clients(demo)
    texts = ["Wo ist mein Paket?", "Rückerstattung beantragen"]
    kwargs = dict(model="embed-v4.0", texts=texts, input_type="search_document", embedding_types=["float"])
    result = asyncio.run(async_.embed(**kwargs)) if is_async else sync.embed(**kwargs)
    assert len(result.embeddings.float_) == 2
    assert_inference_call(
        telemetry, operation="embeddings", provider="cohere", request_model="embed-v4.0", response_model=None,
        response_id_prefix="demo-embed-", finish_reasons=None, token_types=("input",), server=("127.0.0.1", demo.port),
        capture=capture, content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]),
        secret=KEY,
        attributes={A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(result.embeddings.float_[0]), A.GEN_AI_REQUEST_ENCODING_FORMATS: ("float",)},
    )


def test_the_v2_namespace_of_a_v1_client_is_traced(demo, telemetry):
    telemetry.instrument(metrics=[])
    c = cohere.Client(api_key=KEY, base_url=demo.cohere_base_url, max_retries=0)
    assert c.v2.chat(model=MODEL, messages=MESSAGES).message.content[0].text.startswith("Hallo")
    assert telemetry.span(SPAN).attributes[A.GEN_AI_PROVIDER_NAME] == "cohere"


class TestStreamsEndExactlyOnce:
    def test_generator_closed_early_ends_its_span_with_what_was_read(self, demo, telemetry):
        telemetry.instrument(capture_content=True, metrics=[])
        sync, _ = clients(demo)
        stream = sync.chat_stream(model=MODEL, messages=MESSAGES)
        events = [next(stream) for _ in range(5)]
        read = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
        stream.close()
        stream.close()
        span = telemetry.span(SPAN)
        assert json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": read}]
        assert span.attributes[A.ERROR_TYPE] == "micrometrics.stream.abandoned"

    def test_abandoned_generator_is_ended_by_gc(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        sync, _ = clients(demo)
        stream = sync.chat_stream(model=MODEL, messages=MESSAGES)
        next(stream)
        del stream
        gc.collect()
        assert len(telemetry.spans()) == 1

    def test_async_generator_aclose(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        _, async_ = clients(demo)

        async def go():
            stream = async_.chat_stream(model=MODEL, messages=MESSAGES)
            async for _ in stream:
                break
            await stream.aclose()

        asyncio.run(go())
        assert telemetry.span(SPAN).status.status_code == StatusCode.ERROR  # abandoned before its end


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_clients_built_before_instrument_or_in_an_earlier_cycle_are_traced_once(demo, telemetry, is_async):
    """``ClientV2`` binds ``chat``/``chat_stream`` onto the instance when built: whenever that was, one span per call."""
    before = clients(demo)[is_async]
    telemetry.instrument(metrics=[])
    during = clients(demo)[is_async]
    micrometrics.uninstrument()
    telemetry.instrument(metrics=[])

    async def both_async() -> None:
        for client in (before, during):
            await client.chat(model=MODEL, messages=MESSAGES)
            [e async for e in client.chat_stream(model=MODEL, messages=MESSAGES)]

    if is_async:
        asyncio.run(both_async())
    else:
        for client in (before, during):
            client.chat(model=MODEL, messages=MESSAGES)
            list(client.chat_stream(model=MODEL, messages=MESSAGES))
    spans = telemetry.spans()
    assert [s.name for s in spans] == [SPAN] * 4
    assert [s.attributes.get(A.GEN_AI_REQUEST_STREAM, False) for s in spans] == [False, True, False, True]

    micrometrics.uninstrument()
    assert "chat" not in vars(cohere.ClientV2) and "chat_stream" not in vars(cohere.AsyncClientV2)
    chat(demo, is_async, False)
    assert len(telemetry.spans()) == 4


def test_uninstrument_restores_every_method(demo, telemetry):
    from cohere.v2 import client as v2

    telemetry.instrument(metrics=[])
    methods = [(cls, n) for cls in (v2.V2Client, v2.AsyncV2Client) for n in ("chat", "chat_stream", "embed")]
    assert all(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    micrometrics.uninstrument()
    assert not any(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    chat(demo, False, True)
    assert telemetry.spans() == []


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.cohere import CohereInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_cohere"]
    assert ep.load() is CohereInstrumentor
    assert list(CohereInstrumentor().instrumentation_dependencies()) == ["cohere >= 5.9"]
