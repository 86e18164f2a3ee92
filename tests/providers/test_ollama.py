"""A user instruments an app that calls a local model through ``ollama``: what their backend shows."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import subprocess
import sys

import ollama
import pytest
import wrapt

import micrometrics
from micrometrics_semconv import attributes as A
from provider_contract import Content, assert_failed_call, assert_inference_call

MODEL = "llama3.2"
SPAN = f"chat {MODEL}"
SYSTEM = "Du bist der freundliche Kundenservice eines Onlineshops."
GERMAN = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": GERMAN}]
OPTIONS = {"temperature": 0.3, "top_p": 0.9, "top_k": 40, "num_predict": 300, "seed": 7, "stop": ["ENDE"],
           "presence_penalty": 0.1, "frequency_penalty": 0.2}
REQUEST_ATTRIBUTES = {
    A.GEN_AI_REQUEST_TEMPERATURE: 0.3, A.GEN_AI_REQUEST_TOP_P: 0.9, A.GEN_AI_REQUEST_TOP_K: 40, A.GEN_AI_REQUEST_MAX_TOKENS: 300,
    A.GEN_AI_REQUEST_SEED: 7, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("ENDE",), A.GEN_AI_REQUEST_PRESENCE_PENALTY: 0.1,
    A.GEN_AI_REQUEST_FREQUENCY_PENALTY: 0.2,
}
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def call(demo, method: str, is_async: bool, stream: bool, *args, **kwargs) -> str:
    """chat / generate as an app calls them (the model and messages or prompt positionally); the text the user reads."""
    def text(chunk) -> str:
        return (chunk.message.content if method == "chat" else chunk.response) or ""

    if not is_async:
        result = getattr(ollama.Client(host=demo.ollama_host), method)(*args, stream=stream, **kwargs)
        return "".join(text(c) for c in result) if stream else text(result)

    async def go() -> str:
        result = await getattr(ollama.AsyncClient(host=demo.ollama_host), method)(*args, stream=stream, **kwargs)
        return "".join([text(c) async for c in result]) if stream else text(result)

    return asyncio.run(go())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_chat_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    text = call(demo, "chat", is_async, stream, MODEL, MESSAGES, options=OPTIONS)
    assert text.startswith("Hallo")

    # Ollama's responses carry no id; a stream's counts come with its last (done) chunk.
    assert_inference_call(
        telemetry, operation="chat", provider="ollama", request_model=MODEL, response_model=MODEL,
        response_id_prefix=None, server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(
            input_messages=[{"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
                            {"role": "user", "parts": [{"type": "text", "content": GERMAN}]}],
            output_text=text,
        ),
        attributes=REQUEST_ATTRIBUTES,
    )
    assert demo.requests[-1].route == "/api/chat"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_generate_is_a_text_completion(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    text = call(demo, "generate", is_async, stream, MODEL, GERMAN, system=SYSTEM, options=OPTIONS)
    assert text.startswith("Hallo")
    assert_inference_call(
        telemetry, operation="text_completion", provider="ollama", request_model=MODEL, response_model=MODEL,
        response_id_prefix=None, server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN}]}],
                        system_instructions=[{"type": "text", "content": SYSTEM}], output_text=text),
        attributes=REQUEST_ATTRIBUTES,
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model,error_type", [("error-400", "400"), ("error-429", "429"), ("error-500", "500")])
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, is_async, stream, model, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(ollama.ResponseError) as info:
        call(demo, "chat", is_async, stream, model, MESSAGES)
    assert info.value.status_code == int(error_type)
    assert_failed_call(telemetry, f"chat {model}", provider="ollama", error_type=error_type)


def test_an_unreachable_server_is_a_connection_error(telemetry):
    telemetry.instrument(metrics=[])
    with pytest.raises(ConnectionError):
        ollama.Client(host="http://127.0.0.1:9").chat(MODEL, MESSAGES)
    span = assert_failed_call(telemetry, SPAN, provider="ollama", error_type="ConnectionError")
    assert (span.attributes[A.SERVER_ADDRESS], span.attributes[A.SERVER_PORT]) == ("127.0.0.1", 9)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_calls(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])

    def get_weather(location: str) -> str:
        """Current weather at a place.

        Args:
          location: the city
        """
        return "12 °C, Regen"

    client = ollama.Client(host=demo.ollama_host)
    ask = [{"role": "user", "content": "Wie ist das Wetter in Hamburg?"}]
    result = client.chat(MODEL, ask, tools=[get_weather], stream=stream)
    message = next(c.message for c in list(result) if c.message.tool_calls) if stream else result.message
    assert message.tool_calls[0].function.name == "get_weather"

    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (output,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    assert [p for p in output["parts"] if p["type"] == "tool_call"] == [
        {"type": "tool_call", "id": None, "name": "get_weather", "arguments": {"location": "Hamburg", "unit": "celsius"}}
    ]
    assert json.loads(attrs[A.GEN_AI_TOOL_DEFINITIONS]) == [{"type": "function", "name": "get_weather"}]

    telemetry.span_exporter.clear()
    answer = client.chat(MODEL, [*ask, message, {"role": "tool", "content": "12 °C, Regen", "tool_name": "get_weather"}])
    assert "Hamburg" in answer.message.content
    inputs = json.loads(telemetry.span(SPAN).attributes[A.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    assert inputs[2]["parts"] == [{"type": "tool_call_response", "id": None, "response": "12 °C, Regen"}]


@pytest.mark.parametrize("reason,expected", [("stop", "stop"), ("length", "length"), ("unload", "unload")])
def test_done_reasons_map_to_the_conventions(demo, telemetry, reason, expected):
    telemetry.instrument(capture_content=True, metrics=[])
    demo.enqueue(json={"model": MODEL, "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": "Gern."},
                       "done": True, "done_reason": reason, "prompt_eval_count": 7, "eval_count": 2})
    call(demo, "chat", False, False, MODEL, MESSAGES)
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == (expected,)
    assert (attrs[A.GEN_AI_USAGE_INPUT_TOKENS], attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 2)


def test_thinking_is_reasoning_in_answers_and_streams(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    head = {"model": MODEL, "created_at": "2026-01-01T00:00:00Z"}
    demo.enqueue(json={**head, "message": {"role": "assistant", "content": "Gern.", "thinking": "Deutsch."}, "done": True, "done_reason": "stop"})
    call(demo, "chat", False, False, MODEL, MESSAGES)
    lines = [{**head, "message": {"role": "assistant", "content": "", "thinking": "Deutsch."}, "done": False},
             {**head, "message": {"role": "assistant", "content": "Gern."}, "done": False},
             {**head, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop", "eval_count": 3}]
    demo.enqueue(sse=[json.dumps(line).encode() + b"\n" for line in lines], headers={"Content-Type": "application/x-ndjson"})
    assert call(demo, "chat", False, True, MODEL, MESSAGES) == "Gern."
    for span in telemetry.spans():
        (output,) = json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])
        assert output["parts"] == [{"type": "reasoning", "content": "Deutsch."}, {"type": "text", "content": "Gern."}]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_embed(demo, telemetry, is_async, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    texts = ["Wo ist mein Paket?", "Rückerstattung beantragen"]
    if is_async:
        result = asyncio.run(ollama.AsyncClient(host=demo.ollama_host).embed("nomic-embed-text", texts))
    else:
        result = ollama.Client(host=demo.ollama_host).embed("nomic-embed-text", texts)
    assert len(result.embeddings) == 2
    assert_inference_call(
        telemetry, operation="embeddings", provider="ollama", request_model="nomic-embed-text", response_model="nomic-embed-text",
        response_id_prefix=None, finish_reasons=None, token_types=("input",), server=("127.0.0.1", demo.port), capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]),
        attributes={A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(result.embeddings[0])},
    )


def test_module_functions_imported_before_instrument_are_traced_once(demo, telemetry, monkeypatch):
    """``ollama.chat`` is a method of a default client, bound at import (here, before instrument())."""
    monkeypatch.setattr(ollama._client._client, "base_url", demo.ollama_host)  # the default client (ollama._client) read it at import
    telemetry.instrument(metrics=[])
    assert ollama.chat(MODEL, MESSAGES).message.content.startswith("Hallo")
    assert ollama.generate(MODEL, GERMAN).response.startswith("Hallo")
    assert len(ollama.embed("nomic-embed-text", "Hallo").embeddings) == 1
    assert sorted(s.name for s in telemetry.spans()) == [SPAN, "embeddings nomic-embed-text", f"text_completion {MODEL}"]

    micrometrics.uninstrument()
    ollama.chat(MODEL, MESSAGES)
    assert len(telemetry.spans()) == 3  # nothing more


IMPORTED_AFTER = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import micrometrics

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
handle = micrometrics.instrument(exporter="none", tracer_provider=provider, metrics=[], instrumentations=["ollama"])
import ollama  # after instrument(): the module binds its functions to the wrapped methods

ollama._client._client.base_url = sys.argv[1]
ollama.chat("llama3.2", [{"role": "user", "content": "Hallo"}])
handle.force_flush()
print([s.name for s in spans.get_finished_spans()])
"""


def test_module_functions_imported_after_instrument_are_traced_once(demo):
    done = subprocess.run([sys.executable, "-c", IMPORTED_AFTER, demo.ollama_host], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"[{SPAN!r}]"


def test_streams_keep_their_generator_shape(demo, telemetry):
    telemetry.instrument(metrics=[])
    stream = ollama.Client(host=demo.ollama_host).chat(MODEL, MESSAGES, stream=True)
    assert inspect.isgenerator(stream)
    assert demo.requests == []  # like the SDK's generator, nothing is sent before the first next()
    assert "".join(c.message.content for c in stream).startswith("Hallo")

    async def go():
        astream = await ollama.AsyncClient(host=demo.ollama_host).chat(MODEL, MESSAGES, stream=True)
        assert inspect.isasyncgen(astream)
        return [c async for c in astream]

    assert asyncio.run(go())[-1].done is True
    assert [s.name for s in telemetry.spans()] == [SPAN, SPAN]


class TestStreamsEndExactlyOnce:
    def test_generator_closed_early_ends_its_span_with_what_was_read(self, demo, telemetry):
        telemetry.instrument(capture_content=True, metrics=[])
        stream = ollama.Client(host=demo.ollama_host).chat(MODEL, MESSAGES, stream=True)
        read = "".join(next(stream).message.content for _ in range(3))
        stream.close()
        stream.close()
        span = telemetry.span(SPAN)
        assert json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": read}]
        assert span.attributes[A.ERROR_TYPE] == "micrometrics.stream.abandoned"

    def test_abandoned_generator_is_ended_by_gc(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        stream = ollama.Client(host=demo.ollama_host).chat(MODEL, MESSAGES, stream=True)
        next(stream)
        del stream
        gc.collect()
        assert len(telemetry.spans()) == 1

    def test_a_stream_error_line_is_an_error(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        line = {"model": MODEL, "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": "Hal"}, "done": False}
        demo.enqueue(sse=[json.dumps(line).encode() + b"\n", b'{"error": "model crashed"}\n'])
        with pytest.raises(ollama.ResponseError, match="model crashed"):
            list(ollama.Client(host=demo.ollama_host).chat(MODEL, MESSAGES, stream=True))
        span = assert_failed_call(telemetry, SPAN, provider="ollama", error_type="ollama._types.ResponseError")
        assert A.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes


def test_uninstrument_restores_every_method(demo, telemetry):
    _client = sys.modules["ollama._client"]  # ``ollama._client`` is the default client, not the module

    telemetry.instrument(metrics=[])
    methods = [(cls, n) for cls in (_client.Client, _client.AsyncClient) for n in ("chat", "generate", "embed")]
    assert all(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    micrometrics.uninstrument()
    assert not any(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    call(demo, "chat", False, True, MODEL, MESSAGES)
    assert telemetry.spans() == []


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.ollama import OllamaInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_ollama"]
    assert ep.load() is OllamaInstrumentor
    assert list(OllamaInstrumentor().instrumentation_dependencies()) == ["ollama >= 0.4"]
