"""A user instruments an app that calls Mistral through ``mistralai``: what their backend shows."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
import wrapt
from mistralai.client import Mistral, errors
from opentelemetry.trace import StatusCode

import micrometrics
from micrometrics_semconv import attributes as A
from provider_contract import Content, assert_failed_call, assert_inference_call

MODEL = "mistral-small-latest"
SPAN = f"chat {MODEL}"
KEY = "mistral-secret-key"
SYSTEM = "Du bist der freundliche Kundenservice eines Onlineshops."
GERMAN = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": GERMAN}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather at a place.",
                                            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def client(demo) -> Mistral:
    return Mistral(api_key=KEY, server_url=demo.mistral_base_url)


def chat(demo, is_async: bool, stream: bool, **kwargs) -> str:
    """chat.complete / stream (and their _async twins) as an app calls them; the text the user reads."""
    c = client(demo)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("messages", MESSAGES)

    def text(event) -> str:
        choices = event.data.choices
        return (choices[0].delta.content or "") if choices else ""

    if not is_async:
        if stream:
            return "".join(text(e) for e in c.chat.stream(**kwargs))
        return c.chat.complete(**kwargs).choices[0].message.content

    async def go() -> str:
        if stream:
            return "".join([text(e) async for e in await c.chat.stream_async(**kwargs)])
        return (await c.chat.complete_async(**kwargs)).choices[0].message.content

    return asyncio.run(go())


def completion(message: dict, finish: str = "stop", **usage) -> dict:
    """A chat completion body as Mistral's API sends it."""
    return {"id": "cmpl-scripted", "object": "chat.completion", "model": MODEL, "created": 1,
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21, **usage}}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_chat_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    text = chat(demo, is_async, stream, temperature=0.3, top_p=0.9, max_tokens=300, random_seed=7, stop=["ENDE"],
                presence_penalty=0.1, frequency_penalty=0.2)
    assert text.startswith("Hallo")

    # A stream's usage comes from its last chunk: Mistral sends it there without being asked.
    assert_inference_call(
        telemetry, operation="chat", provider="mistral_ai", request_model=MODEL, response_model=MODEL,
        response_id_prefix="chatcmpl-demo", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(
            input_messages=[{"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
                            {"role": "user", "parts": [{"type": "text", "content": GERMAN}]}],
            output_text=text,
        ),
        secret=KEY,
        attributes={
            A.GEN_AI_REQUEST_TEMPERATURE: 0.3, A.GEN_AI_REQUEST_TOP_P: 0.9, A.GEN_AI_REQUEST_MAX_TOKENS: 300,
            A.GEN_AI_REQUEST_SEED: 7, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("ENDE",),
            A.GEN_AI_REQUEST_PRESENCE_PENALTY: 0.1, A.GEN_AI_REQUEST_FREQUENCY_PENALTY: 0.2,
        },
    )
    sent = demo.requests[-1]
    assert sent.route == "/mistral/v1/chat/completions" and sent.body["stream"] is stream


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model,error_type", [("error-400", "400"), ("error-429", "429"), ("error-500", "500")])
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, is_async, stream, model, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(errors.SDKError) as info:
        chat(demo, is_async, stream, model=model)
    assert info.value.status_code == int(error_type)
    assert_failed_call(telemetry, f"chat {model}", provider="mistral_ai", error_type=error_type)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_calls_and_tool_results(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    c = client(demo)
    ask = [{"role": "user", "content": "Wie ist das Wetter in Hamburg?"}]
    if stream:
        events = list(c.chat.stream(model=MODEL, messages=ask, tools=[WEATHER]))
        call = next(e.data.choices[0].delta.tool_calls[0] for e in events if e.data.choices and e.data.choices[0].delta.tool_calls)
        call_id = call.id
    else:
        response = c.chat.complete(model=MODEL, messages=ask, tools=[WEATHER])
        assert response.choices[0].finish_reason == "tool_calls"
        call_id = response.choices[0].message.tool_calls[0].id

    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (output,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    assert [p for p in output["parts"] if p["type"] == "tool_call"] == [
        {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": {"location": "Hamburg", "unit": "celsius"}}
    ]
    assert json.loads(attrs[A.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "get_weather"

    telemetry.span_exporter.clear()
    result = {"role": "tool", "tool_call_id": call_id, "name": "get_weather", "content": '{"temperature": 12, "condition": "Regen"}'}
    assistant = {"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "type": "function",
                                                                      "function": {"name": "get_weather", "arguments": '{"location": "Hamburg"}'}}]}
    answer = c.chat.complete(model=MODEL, messages=[*ask, assistant, result], tools=[WEATHER])
    assert "Hamburg" in answer.choices[0].message.content
    inputs = json.loads(telemetry.span(SPAN).attributes[A.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    assert inputs[2]["parts"] == [{"type": "tool_call_response", "id": call_id, "response": result["content"]}]


@pytest.mark.parametrize("finish,expected", [("stop", "stop"), ("length", "length"), ("model_length", "length"),
                                             ("tool_calls", "tool_call"), ("error", "error")])
def test_finish_reasons_map_to_the_conventions(demo, telemetry, finish, expected):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json=completion({"content": "Gern."}, finish))
    chat(demo, False, False)
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == (expected,)
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == expected


def test_thinking_chunks_are_reasoning_and_metrics_judge_the_answer(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    content = [{"type": "thinking", "thinking": [{"type": "text", "text": "The customer writes German."}]},
               {"type": "text", "text": "Gern, ich sehe sofort nach."}]
    demo.enqueue(json=completion({"content": content}))
    chat(demo, False, False)
    (output,) = json.loads(telemetry.span(SPAN).attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert output["parts"] == [{"type": "reasoning", "content": "The customer writes German."},
                               {"type": "text", "content": "Gern, ich sehe sofort nach."}]


def test_streamed_thinking_and_text_chunks(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    base = {"id": "cmpl-s", "object": "chat.completion.chunk", "model": MODEL, "created": 1}
    demo.enqueue(sse=[
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Deutsch."}]}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "Gern, "}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "ich sehe nach."}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}},
        "[DONE]",
    ])
    events = list(client(demo).chat.stream(model=MODEL, messages=MESSAGES))
    assert len(events) == 3
    attrs = telemetry.span(SPAN).attributes
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "Gern, ich sehe nach."}]
    assert (attrs[A.GEN_AI_USAGE_INPUT_TOKENS], attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (5, 6)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_embeddings(demo, telemetry, is_async, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    c = client(demo)
    texts = ["Wo ist mein Paket?", "Rückerstattung beantragen"]
    if is_async:
        result = asyncio.run(c.embeddings.create_async(model="mistral-embed", inputs=texts))
    else:
        result = c.embeddings.create(model="mistral-embed", inputs=texts)
    assert len(result.data) == 2
    assert_inference_call(
        telemetry, operation="embeddings", provider="mistral_ai", request_model="mistral-embed", response_model="mistral-embed",
        response_id_prefix="embd-demo", finish_reasons=None, token_types=("input",), server=("127.0.0.1", demo.port), capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]),
        secret=KEY, attributes={A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(result.data[0].embedding)},
    )


def test_a_calls_own_server_url_is_the_server(demo, telemetry):
    telemetry.instrument(metrics=[])
    c = Mistral(api_key=KEY)  # the client's server is Mistral's; this call goes elsewhere
    c.chat.complete(model=MODEL, messages=MESSAGES, server_url=demo.mistral_base_url)
    attrs = telemetry.span(SPAN).attributes
    assert (attrs[A.SERVER_ADDRESS], attrs[A.SERVER_PORT]) == ("127.0.0.1", demo.port)
    telemetry.span_exporter.clear()
    assert Mistral(api_key=KEY).sdk_configuration.get_server_details()[0] == "https://api.mistral.ai"


def test_parse_is_traced_through_complete(demo, telemetry):
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: str
        language: str

    telemetry.instrument(capture_content=True, metrics=[])
    parsed = client(demo).chat.parse(response_format=Answer, model=MODEL, messages=MESSAGES)
    assert parsed.choices[0].message.parsed.language == "de"
    attrs = telemetry.span(SPAN).attributes
    assert attrs[A.GEN_AI_OUTPUT_TYPE] == "json"


class TestStreamsEndExactlyOnce:
    def test_closed_early_ends_its_span_with_what_was_read(self, demo, telemetry):
        telemetry.instrument(capture_content=True, metrics=[])
        stream = client(demo).chat.stream(model=MODEL, messages=MESSAGES)
        read = "".join(next(stream).data.choices[0].delta.content for _ in range(3))
        assert telemetry.spans() == []
        stream.close()
        stream.close()
        span = telemetry.span(SPAN)
        assert json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == read
        assert span.attributes[A.ERROR_TYPE] == "micrometrics.stream.abandoned"

    def test_abandoned_stream_is_ended_by_gc(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        stream = client(demo).chat.stream(model=MODEL, messages=MESSAGES)
        next(stream)
        del stream
        gc.collect()
        assert len(telemetry.spans()) == 1

    def test_context_manager(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        with client(demo).chat.stream(model=MODEL, messages=MESSAGES) as stream:
            text = "".join(e.data.choices[0].delta.content or "" for e in stream)
        assert text.startswith("Hallo")
        assert telemetry.span(SPAN).status.status_code == StatusCode.UNSET


def test_uninstrument_restores_every_method(demo, telemetry):
    from mistralai.client import chat as chat_module, embeddings

    telemetry.instrument(metrics=[])
    methods = [(chat_module.Chat, n) for n in ("complete", "complete_async", "stream", "stream_async")]
    methods += [(embeddings.Embeddings, n) for n in ("create", "create_async")]
    assert all(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    micrometrics.uninstrument()
    assert not any(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    chat(demo, False, True)
    assert telemetry.spans() == []


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.mistral import MistralInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_mistral"]
    assert ep.load() is MistralInstrumentor
    assert list(MistralInstrumentor().instrumentation_dependencies()) == ["mistralai >= 1.0"]
