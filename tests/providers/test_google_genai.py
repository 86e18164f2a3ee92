"""A user instruments an app that calls Gemini through ``google-genai``: what their backend shows."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json

import pytest
import wrapt
from google import genai
from google.genai import errors, types
from opentelemetry.trace import StatusCode

import micrometrics
from micrometrics.metrics.language_match import LanguageMatch
from micrometrics_semconv import attributes as A
from provider_contract import Content, assert_failed_call, assert_inference_call

MODEL = "gemini-2.0-flash"
SPAN = f"generate_content {MODEL}"
GERMAN = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
SYSTEM = "Du bist der freundliche Kundenservice eines Onlineshops."
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather at a place.",
    parameters_json_schema={"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)
#: What wrapt wraps methods in (BaseObjectProxy since wrapt 2).
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def client(demo, vertex: bool = False) -> genai.Client:
    options = {"base_url": demo.google_base_url}
    if vertex:
        return genai.Client(vertexai=True, api_key="google-secret-key", http_options=options)
    return genai.Client(api_key="google-secret-key", http_options=options)


def generate(demo, is_async: bool, stream: bool, **kwargs) -> str:
    """generate_content(_stream) as an app calls it; returns the text the user reads."""
    c = client(demo)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("contents", GERMAN)
    if not is_async:
        if stream:
            return "".join(chunk.text or "" for chunk in c.models.generate_content_stream(**kwargs))
        return c.models.generate_content(**kwargs).text

    async def go() -> str:
        if stream:
            return "".join([chunk.text or "" async for chunk in await c.aio.models.generate_content_stream(**kwargs)])
        return (await c.aio.models.generate_content(**kwargs)).text

    return asyncio.run(go())


def response_json(parts=None, finish="STOP", **overrides) -> dict:
    """A generateContent response body, as the API sends it."""
    body = {
        "candidates": [{"content": {"role": "model", "parts": parts or [{"text": "Gern, ich sehe sofort nach Ihrer Bestellung."}]},
                        "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21},
        "modelVersion": "gemini-2.0-flash-001",
        "responseId": "resp-scripted",
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_generate_content_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM, temperature=0.3, top_p=0.9, top_k=40, max_output_tokens=300,
        stop_sequences=["ENDE"], seed=7, presence_penalty=0.1, frequency_penalty=0.2,
    )
    text = generate(demo, is_async, stream, config=config)
    assert text.startswith("Hallo")

    assert_inference_call(
        telemetry, operation="generate_content", provider="gcp.gen_ai", request_model=MODEL, response_model=MODEL,
        response_id_prefix="demo-resp-", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(
            input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN}]}],
            system_instructions=[{"type": "text", "content": SYSTEM}],
            output_text=text,
        ),
        secret="google-secret-key",
        attributes={
            A.GEN_AI_REQUEST_TEMPERATURE: 0.3, A.GEN_AI_REQUEST_TOP_P: 0.9, A.GEN_AI_REQUEST_TOP_K: 40,
            A.GEN_AI_REQUEST_MAX_TOKENS: 300, A.GEN_AI_REQUEST_SEED: 7, A.GEN_AI_REQUEST_PRESENCE_PENALTY: 0.1,
            A.GEN_AI_REQUEST_FREQUENCY_PENALTY: 0.2, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("ENDE",),
            A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
        },
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    "model,exc_type,error_type",
    [("error-400", errors.ClientError, "400"), ("error-429", errors.ClientError, "429"), ("error-500", errors.ServerError, "500")],
)
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, is_async, stream, model, exc_type, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(exc_type) as info:
        generate(demo, is_async, stream, model=model)
    assert info.value.code == int(error_type)
    assert_failed_call(telemetry, f"generate_content {model}", provider="gcp.gen_ai", error_type=error_type)


def test_streams_keep_their_generator_shape(demo, telemetry):
    telemetry.instrument(metrics=[])
    c = client(demo)
    stream = c.models.generate_content_stream(model=MODEL, contents=GERMAN)
    assert inspect.isgenerator(stream)
    assert demo.requests == []  # like the SDK's generator, nothing is sent before the first next()
    text = "".join(chunk.text for chunk in stream)

    async def go():
        astream = await c.aio.models.generate_content_stream(model=MODEL, contents=GERMAN)
        assert inspect.isasyncgen(astream)
        return "".join([chunk.text async for chunk in astream])

    assert asyncio.run(go()) == text
    assert [s.name for s in telemetry.spans()] == [SPAN, SPAN]


def test_function_calls_and_function_responses(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    c = client(demo)
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    ask = types.Content(role="user", parts=[types.Part.from_text(text="Wie ist das Wetter in Hamburg?")])
    response = c.models.generate_content(model=MODEL, contents=[ask], config=config)
    call = response.function_calls[0]
    assert call.name == "get_weather"

    result = types.Part.from_function_response(name="get_weather", response={"temperature": 12, "condition": "Regen"})
    answer = c.models.generate_content(
        model=MODEL, contents=[ask, response.candidates[0].content, types.Content(role="user", parts=[result])], config=config
    )

    first, second = telemetry.spans()
    assert tuple(first.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (output,) = json.loads(first.attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert output["parts"] == [{"type": "tool_call", "id": None, "name": "get_weather", "arguments": call.args}]
    assert json.loads(first.attributes[A.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "get_weather", "description": "Current weather at a place.", "parameters": WEATHER.parameters_json_schema}
    ]
    inputs = json.loads(second.attributes[A.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    assert inputs[2]["parts"] == [{"type": "tool_call_response", "id": None, "response": {"temperature": 12, "condition": "Regen"}}]
    assert tuple(second.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert "Hamburg" in answer.text


def test_automatic_function_calling_is_one_span_per_call(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])

    def get_weather(location: str) -> dict:
        """Current weather at a place."""
        return {"temperature": 12, "condition": "Regen"}

    c = client(demo)
    answer = c.models.generate_content(
        model=MODEL, contents="Wie ist das Wetter in Hamburg?", config=types.GenerateContentConfig(tools=[get_weather])
    )
    assert "Hamburg" in answer.text and len(demo.requests) == 2  # the SDK called the function and asked again
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert json.loads(attrs[A.GEN_AI_TOOL_DEFINITIONS]) == [{"type": "function", "name": "get_weather", "description": "Current weather at a place."}]
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == answer.text


@pytest.mark.parametrize(
    "finish,expected", [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
                        ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", "error")],
)
def test_finish_reasons_map_to_the_conventions(demo, telemetry, finish, expected):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json=response_json(finish=finish))
    generate(demo, False, False)
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == (expected,)
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == expected
    assert attrs[A.GEN_AI_RESPONSE_MODEL] == "gemini-2.0-flash-001"


def test_blocked_prompt_is_a_content_filter_finish(demo, telemetry):
    telemetry.instrument(metrics=[])
    demo.enqueue(json={"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}})
    c = client(demo)
    response = c.models.generate_content(model=MODEL, contents=GERMAN)
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("content_filter",)
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 8


def test_thoughts_cached_and_tool_prompt_tokens(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json=response_json(
        parts=[{"text": "Der Kunde schreibt Deutsch.", "thought": True}, {"text": "Gern, ich sehe nach."}],
        usageMetadata={"promptTokenCount": 100, "cachedContentTokenCount": 60, "toolUsePromptTokenCount": 5,
                       "candidatesTokenCount": 9, "thoughtsTokenCount": 30, "totalTokenCount": 144},
    ))
    text = generate(demo, False, False)
    assert text == "Gern, ich sehe nach."
    attrs = telemetry.span(SPAN).attributes
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 105
    assert attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 60
    # The conventions' output tokens include reasoning; Gemini counts thoughts apart.
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 39
    assert attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 30
    parts = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"]
    assert [p["type"] for p in parts] == ["reasoning", "text"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_embed_content(demo, telemetry, is_async, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    c = client(demo)
    texts = ["Wo ist mein Paket?", "Rückerstattung beantragen"]
    if is_async:
        result = asyncio.run(c.aio.models.embed_content(model="text-embedding-004", contents=texts))
    else:
        result = c.models.embed_content(model="text-embedding-004", contents=texts)
    assert len(result.embeddings) == 2

    assert_inference_call(
        telemetry, operation="embeddings", provider="gcp.gen_ai", request_model="text-embedding-004", response_model=None,
        response_id_prefix=None, finish_reasons=None, token_types=(), server=("127.0.0.1", demo.port), capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]),
        attributes={A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(result.embeddings[0].values)},
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_vertex_mode_reports_vertex_ai(demo, telemetry, stream):
    telemetry.instrument(metrics=[])
    c = client(demo, vertex=True)
    if stream:
        demo.enqueue(sse=[response_json()], path_contains=":streamGenerateContent")
        text = "".join(chunk.text for chunk in c.models.generate_content_stream(model=MODEL, contents=GERMAN))
    else:
        demo.enqueue(json=response_json(), path_contains=":generateContent")
        text = c.models.generate_content(model=MODEL, contents=GERMAN).text
    assert text.startswith("Gern")
    assert "/publishers/google/models/" in demo.requests[-1].path
    attrs = telemetry.span(SPAN).attributes
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[A.GEN_AI_RESPONSE_ID] == "resp-scripted"


def test_chat_sessions_are_a_span_per_turn_with_the_history(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[LanguageMatch()])
    c = client(demo)  # a genai.Client closes its connections when it is collected: keep it
    chat = c.chats.create(model=MODEL)
    chat.send_message(GERMAN)
    chat.send_message("Meine Bestellnummer ist 4711. Wo ist mein Paket?")
    first, second = telemetry.spans()
    history = json.loads(second.attributes[A.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert second.attributes["micrometrics.language_match.label"] == "match"
    assert second.attributes[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] > 0


def test_model_resource_names_are_reported_as_the_model(demo, telemetry):
    telemetry.instrument(metrics=[])
    c = client(demo)
    c.models.generate_content(model=f"models/{MODEL}", contents=GERMAN)
    assert telemetry.span(SPAN).attributes[A.GEN_AI_REQUEST_MODEL] == MODEL


class TestStreamsEndExactlyOnce:
    def test_generator_closed_early_ends_its_span_with_what_was_read(self, demo, telemetry):
        telemetry.instrument(capture_content=True, metrics=[])
        c = client(demo)
        stream = c.models.generate_content_stream(model=MODEL, contents=GERMAN)
        read = "".join(next(stream).text for _ in range(3))
        assert telemetry.spans() == []
        stream.close()
        stream.close()
        attrs = telemetry.span(SPAN).attributes
        assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == read
        assert A.GEN_AI_RESPONSE_FINISH_REASONS not in attrs

    def test_abandoned_generator_is_ended_by_gc(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        c = client(demo)
        stream = c.models.generate_content_stream(model=MODEL, contents=GERMAN)
        next(stream)
        del stream
        gc.collect()
        assert len(telemetry.spans()) == 1

    def test_async_generator_aclose(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        c = client(demo)

        async def go():
            stream = await c.aio.models.generate_content_stream(model=MODEL, contents=GERMAN)
            async for _ in stream:
                break
            await stream.aclose()

        asyncio.run(go())
        assert len(telemetry.spans()) == 1

    def test_stream_failing_midway_records_the_error(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        demo.enqueue(raw=b'data: {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hal"}]}, "index": 0}]}\n\ndata: {not json\n\n',
                     headers={"content-type": "text/event-stream"})
        c = client(demo)
        stream = c.models.generate_content_stream(model=MODEL, contents=GERMAN)
        with pytest.raises(Exception) as info:
            for _ in stream:
                pass
        span = telemetry.span(SPAN)
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes[A.ERROR_TYPE].endswith(type(info.value).__name__)


def test_uninstrument_restores_every_method(demo, telemetry):
    from google.genai import models

    telemetry.instrument(metrics=[])
    methods = [(cls, name) for cls in (models.Models, models.AsyncModels) for name in ("generate_content", "generate_content_stream", "embed_content")]
    assert all(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    micrometrics.uninstrument()
    assert not any(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    generate(demo, False, True)
    assert telemetry.spans() == []


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.google_genai import GoogleGenAIInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_google_genai"]
    assert ep.load() is GoogleGenAIInstrumentor
    assert list(GoogleGenAIInstrumentor().instrumentation_dependencies()) == ["google-genai >= 1.0"]
