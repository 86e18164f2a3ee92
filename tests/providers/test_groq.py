"""A user instruments an app that calls Groq through ``groq``: what their backend shows.

Groq's SDK speaks the OpenAI wire format and its calls go through the OpenAI translators; what
is Groq's own is asserted here: the provider name, and the usage it streams in ``x_groq``.
"""

from __future__ import annotations

import asyncio
import json

import groq
import pytest
import wrapt

import micrometrics
from micrometrics_semconv import attributes as A
from provider_contract import Content, assert_failed_call, assert_inference_call

MODEL = "llama-3.3-70b-versatile"
SPAN = f"chat {MODEL}"
KEY = "gsk-groq-secret-key"
GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def clients(demo):
    opts = dict(base_url=demo.groq_base_url, api_key=KEY, max_retries=0)
    return groq.Groq(**opts), groq.AsyncGroq(**opts)


def chat(demo, is_async: bool, stream: bool, **kwargs) -> str:
    sync, async_ = clients(demo)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("messages", GERMAN)

    def text(chunk) -> str:
        return (chunk.choices[0].delta.content or "") if chunk.choices else ""

    if not is_async:
        r = sync.chat.completions.create(stream=stream, **kwargs)
        return "".join(text(c) for c in r) if stream else r.choices[0].message.content

    async def go() -> str:
        r = await async_.chat.completions.create(stream=stream, **kwargs)
        return "".join([text(c) async for c in r]) if stream else r.choices[0].message.content

    return asyncio.run(go())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_chat_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    text = chat(demo, is_async, stream, temperature=0.2, max_tokens=100, top_p=0.9, seed=7, stop=["ENDE"])
    assert text.startswith("Hallo")

    # No stream_options: the streamed usage is read from x_groq on the last chunk.
    assert_inference_call(
        telemetry, operation="chat", provider="groq", request_model=MODEL, response_model=MODEL,
        response_id_prefix="chatcmpl-demo", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN[0]["content"]}]}], output_text=text),
        secret=KEY,
        attributes={A.GEN_AI_REQUEST_TEMPERATURE: 0.2, A.GEN_AI_REQUEST_MAX_TOKENS: 100, A.GEN_AI_REQUEST_TOP_P: 0.9,
                    A.GEN_AI_REQUEST_SEED: 7, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("ENDE",)},
    )
    assert demo.requests[-1].route == "/groq/openai/v1/chat/completions"


def test_groq_is_the_provider_whatever_the_base_url(demo, telemetry):
    """A Groq client pointed at a proxy still speaks to Groq: the host does not rename it."""
    telemetry.instrument(metrics=[])
    chat(demo, False, False)
    assert telemetry.span(SPAN).attributes[A.GEN_AI_PROVIDER_NAME] == "groq"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model,exc_type,error_type", [("error-400", groq.BadRequestError, "400"),
                                                       ("error-429", groq.RateLimitError, "429"),
                                                       ("error-500", groq.InternalServerError, "500")])
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, is_async, stream, model, exc_type, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(exc_type):
        chat(demo, is_async, stream, model=model)
    assert_failed_call(telemetry, f"chat {model}", provider="groq", error_type=error_type)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_calls(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, _ = clients(demo)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]
    r = sync.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Wie ist das Wetter in Hamburg?"}], tools=tools, stream=stream)
    if stream:
        chunks = list(r)
        call_id = next(c.choices[0].delta.tool_calls[0].id for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    else:
        call_id = r.choices[0].message.tool_calls[0].id
    attrs = telemetry.span(SPAN).attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (message,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    assert [p for p in message["parts"] if p["type"] == "tool_call"] == [
        {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": {"location": "Hamburg", "unit": "celsius"}}
    ]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_embeddings(demo, telemetry, is_async):
    telemetry.instrument(capture_content=True, metrics=[])
    sync, async_ = clients(demo)
    texts = ["Wo ist mein Paket?", "Rückerstattung beantragen"]
    if is_async:
        result = asyncio.run(async_.embeddings.create(model="nomic-embed-text-v1_5", input=texts))
    else:
        result = sync.embeddings.create(model="nomic-embed-text-v1_5", input=texts)
    assert_inference_call(
        telemetry, operation="embeddings", provider="groq", request_model="nomic-embed-text-v1_5", response_model="nomic-embed-text-v1_5",
        response_id_prefix=None, finish_reasons=None, token_types=("input",), server=("127.0.0.1", demo.port), capture=True,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]),
        attributes={A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(result.data[0].embedding)},
    )


def test_raw_response_is_traced(demo, telemetry):
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    raw = sync.chat.completions.with_raw_response.create(model=MODEL, messages=GERMAN)
    completion = raw.parse()
    assert telemetry.span(SPAN).attributes[A.GEN_AI_RESPONSE_ID] == completion.id


def test_uninstrument_restores_every_method(demo, telemetry):
    from groq.resources import embeddings
    from groq.resources.chat import completions

    telemetry.instrument(metrics=[])
    methods = [(completions.Completions, "create"), (completions.AsyncCompletions, "create"),
               (embeddings.Embeddings, "create"), (embeddings.AsyncEmbeddings, "create")]
    assert all(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    micrometrics.uninstrument()
    assert not any(isinstance(vars(cls)[name], PROXY) for cls, name in methods)
    chat(demo, False, True)
    assert telemetry.spans() == []


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.groq import GroqInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_groq"]
    assert ep.load() is GroqInstrumentor
    assert list(GroqInstrumentor().instrumentation_dependencies()) == ["groq >= 0.9"]
