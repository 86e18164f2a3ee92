"""A user instruments an app that calls models through LiteLLM: what their backend shows.

Real ``litellm`` over loopback: its OpenAI route (the ``openai`` client's ``post``), its Anthropic
route (its own HTTP client, Anthropic's wire format) and its Bedrock route (Converse, SigV4-signed
with fake credentials) all reach the demo server. One inference span per call, the LiteLLM one,
whatever LiteLLM calls under it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time

import pytest

from litellm_registration import register  # noqa: E402  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)

import litellm
import micrometrics
import wrapt
from opentelemetry.trace import StatusCode

from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V
from provider_contract import Content, assert_failed_call, assert_inference_call

GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]
KEY = "sk-litellm-secret-key"
BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


@pytest.fixture(autouse=True)
def _litellm_registered(monkeypatch):
    register(monkeypatch)


def route(demo, name: str) -> dict:
    """The keywords that send a LiteLLM call down one of its routes to the demo server."""
    if name == "openai":
        return dict(model="gpt-4o-mini", api_base=demo.openai_base_url, api_key=KEY)
    if name == "anthropic":
        return dict(model="anthropic/claude-haiku-4-5", api_base=demo.anthropic_base_url, api_key=KEY)
    return dict(model=f"bedrock/{BEDROCK_MODEL}", aws_bedrock_runtime_endpoint=demo.base_url, aws_region_name="us-east-1",
                aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=KEY)


#: (gen_ai.provider.name, gen_ai.request.model, demo route) of each LiteLLM route.
ROUTES = {
    "openai": ("openai", "gpt-4o-mini", "/v1/chat/completions"),
    "anthropic": ("anthropic", "claude-haiku-4-5", "/v1/messages"),
    "bedrock": ("aws.bedrock", BEDROCK_MODEL, f"/model/{BEDROCK_MODEL.replace(':', '%3A')}/converse"),
}


def text_of(chunk) -> str:
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


def complete(is_async: bool, stream: bool, **kwargs):
    """``litellm.completion`` / ``acompletion`` as an app calls them: (the text read, the response or the chunks)."""
    kwargs.setdefault("messages", GERMAN)
    if not is_async:
        r = litellm.completion(stream=stream, **kwargs)
        if stream:
            chunks = list(r)
            return "".join(map(text_of, chunks)), chunks
        return r.choices[0].message.content, r

    async def go():
        r = await litellm.acompletion(stream=stream, **kwargs)
        if stream:
            chunks = [c async for c in r]
            return "".join(map(text_of, chunks)), chunks
        return r.choices[0].message.content, r

    return asyncio.run(go())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_completion_emits_span_metrics_and_logs(demo, telemetry, is_async, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    extra = {"stream_options": {"include_usage": True}} if stream else {}
    text, response = complete(is_async, stream, temperature=0.2, max_tokens=100, top_p=0.9, seed=7, stop=["ENDE"], **route(demo, "openai"), **extra)
    assert text.startswith("Hallo")
    read_model = response[0].model if stream else response.model  # what the app read
    assert_inference_call(
        telemetry, operation="chat", provider="openai", request_model="gpt-4o-mini", response_model=read_model,
        response_id_prefix="chatcmpl-demo", server=("127.0.0.1", demo.port), stream=stream, capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN[0]["content"]}]}], output_text=text),
        secret=KEY,
        attributes={A.GEN_AI_REQUEST_TEMPERATURE: 0.2, A.GEN_AI_REQUEST_MAX_TOKENS: 100, A.GEN_AI_REQUEST_TOP_P: 0.9,
                    A.GEN_AI_REQUEST_SEED: 7, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("ENDE",)},
    )
    if stream:
        assert isinstance(response, list)  # the app read every chunk through our proxy, none held back


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("name", sorted(ROUTES))
def test_one_inference_span_per_call_through_each_route(demo, telemetry, name, stream, is_async):
    """LiteLLM's OpenAI route goes through the instrumented ``openai`` client (``post``), its Anthropic and Bedrock
    routes through its own HTTP client: each call is one span, LiteLLM's, with the provider LiteLLM routed to."""
    telemetry.instrument(capture_content=True, metrics=[])
    text, _ = complete(is_async, stream, **route(demo, name))
    provider, model, path = ROUTES[name]
    assert text.startswith("Hallo")
    assert [r.route for r in demo.requests] == [path + ("-stream" if stream and name == "bedrock" else "")]  # the provider's API, once
    (span,) = telemetry.spans()
    assert span.name == f"chat {model}"
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == provider
    assert (span.attributes[A.SERVER_ADDRESS], span.attributes[A.SERVER_PORT]) == ("127.0.0.1", demo.port)
    assert json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
    assert span.attributes.get(A.GEN_AI_REQUEST_STREAM) is (True if stream else None)
    (duration,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert duration.count == 1 and duration.attributes[A.GEN_AI_PROVIDER_NAME] == provider


def test_the_openai_route_really_goes_through_the_instrumented_post(demo, telemetry):
    """The control of the test above: with LiteLLM's instrumentation left out, the ``openai`` client's ``post``
    under LiteLLM is traced on its own. So with both on, the one span is the nesting rule at work."""
    telemetry.instrument(instrumentations=["openai"], metrics=[])
    complete(False, False, **route(demo, "openai"))
    (span,) = telemetry.spans()
    assert span.name == "chat gpt-4o-mini" and span.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_calls(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                               "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]
    _, response = complete(False, stream, messages=[{"role": "user", "content": "Wie ist das Wetter in Hamburg?"}], tools=tools, **route(demo, "openai"))
    if stream:
        call_id = next(c.choices[0].delta.tool_calls[0].id for c in response if c.choices and c.choices[0].delta.tool_calls)
    else:
        call_id = response.choices[0].message.tool_calls[0].id
    attrs = telemetry.span("chat gpt-4o-mini").attributes
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_call",)
    (message,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    assert [p for p in message["parts"] if p["type"] == "tool_call"] == [
        {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": {"location": "Hamburg", "unit": "celsius"}}
    ]
    assert json.loads(attrs[A.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "get_weather"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model,exc_type,error_type", [("error-400", litellm.BadRequestError, "400"),
                                                       ("error-429", litellm.RateLimitError, "429"),
                                                       ("error-500", litellm.InternalServerError, "500")])
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, is_async, stream, model, exc_type, error_type):
    telemetry.instrument(metrics=[])
    with pytest.raises(exc_type):
        complete(is_async, stream, **{**route(demo, "openai"), "model": f"openai/{model}"}, num_retries=0)
    assert_failed_call(telemetry, f"chat {model}", provider="openai", error_type=error_type)


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_an_error_quoting_the_prompt_exports_it_only_with_capture(demo, telemetry, capture):
    """The provider's error message quotes the prompt (as some do): without capture it appears nowhere."""
    telemetry.instrument(capture_content=capture, metrics=[])
    secret = "Meine Kundennummer ist 4711-GEHEIM"
    demo.enqueue(status=400, json={"error": {"message": f"Invalid request: '{secret}' is not allowed", "type": "invalid_request_error"}})
    with pytest.raises(litellm.BadRequestError) as raised:
        complete(False, False, messages=[{"role": "user", "content": secret}], num_retries=0, **route(demo, "openai"))
    assert secret in str(raised.value)  # LiteLLM's own exception, unchanged
    span = assert_failed_call(telemetry, "chat gpt-4o-mini", provider="openai", error_type="400", capture=capture)
    exported = repr(span.attributes) + repr([e.attributes for e in span.events]) + repr([r.attributes for r in telemetry.logs()])
    assert (secret in exported) is capture


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_null_delta_fields_in_stream_chunks(demo, telemetry, is_async):
    """Chunks with null content, null tool calls and no choices: the app reads what LiteLLM gives, the span the text."""
    telemetry.instrument(capture_content=True, metrics=[])

    def chunk(delta, finish=None, choices=True, **extra):
        base = {"id": "chatcmpl-demo-null", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", **extra}
        base["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []
        return base

    demo.enqueue(sse=[
        chunk({"role": "assistant", "content": None, "tool_calls": None, "refusal": None}),
        chunk({"content": "Hallo "}),
        chunk({"content": None, "function_call": None}),
        chunk({}, choices=False),
        chunk({"content": "Welt"}),
        chunk({"content": None}, finish="stop"),
        "[DONE]",
    ])
    text, _ = complete(is_async, True, **route(demo, "openai"))
    assert text == "Hallo Welt"
    attrs = telemetry.span("chat gpt-4o-mini").attributes
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "Hallo Welt"}]
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


def test_a_stream_closed_early_ends_its_span_abandoned(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    stream = litellm.completion(messages=GERMAN, stream=True, **route(demo, "openai"))
    first = next(iter(stream))
    assert telemetry.spans() == []  # open while the app may read on
    stream.close() if hasattr(stream, "close") else None
    del stream
    gc.collect()
    (span,) = telemetry.spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED
    received = json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"]
    assert (received[0]["content"] if received else "") == text_of(first)


def test_the_stream_is_the_wrapper_litellm_returns(demo, telemetry):
    telemetry.instrument(metrics=[])
    stream = litellm.completion(messages=GERMAN, stream=True, **route(demo, "openai"))
    assert isinstance(stream, litellm.CustomStreamWrapper)  # proxied, isinstance holds
    assert stream.custom_llm_provider == "openai"  # its attributes too
    assert "".join(map(text_of, stream)).startswith("Hallo")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_embeddings(demo, telemetry, is_async):
    telemetry.instrument(capture_content=True, metrics=[])
    texts = ["Wo ist mein Paket?", "Rückerstattung beantragen"]
    kwargs = dict(model="text-embedding-3-small", input=texts, api_base=demo.openai_base_url, api_key=KEY)
    result = asyncio.run(litellm.aembedding(**kwargs)) if is_async else litellm.embedding(**kwargs)
    assert_inference_call(
        telemetry, operation="embeddings", provider="openai", request_model="text-embedding-3-small", response_model=result.model,
        response_id_prefix=None, finish_reasons=None, token_types=("input",), server=("127.0.0.1", demo.port), capture=True,
        attributes={A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(result.data[0]["embedding"])},
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_text_completion(demo, telemetry, is_async):
    telemetry.instrument(capture_content=True, metrics=[])
    kwargs = dict(model="gpt-3.5-turbo-instruct", prompt="Hallo, wo ist meine Bestellung?", api_base=demo.openai_base_url, api_key=KEY)
    r = asyncio.run(litellm.atext_completion(**kwargs)) if is_async else litellm.text_completion(**kwargs)
    assert_inference_call(
        telemetry, operation="text_completion", provider="openai", request_model="gpt-3.5-turbo-instruct", response_model=r.model,
        response_id_prefix="cmpl-", server=("127.0.0.1", demo.port), capture=True,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": kwargs["prompt"]}]}], output_text=r.choices[0].text),
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_responses(demo, telemetry, is_async):
    telemetry.instrument(capture_content=True, metrics=[])
    kwargs = dict(model="gpt-4.1", input="Wo ist meine Bestellung?", instructions="Antworte kurz.", api_base=demo.openai_base_url, api_key=KEY)
    r = asyncio.run(litellm.aresponses(**kwargs)) if is_async else litellm.responses(**kwargs)
    assert_inference_call(
        telemetry, operation="chat", provider="openai", request_model="gpt-4.1", response_model=r.model,
        response_id_prefix="resp_", server=("127.0.0.1", demo.port), capture=True,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": kwargs["input"]}]}],
                        system_instructions=[{"type": "text", "content": "Antworte kurz."}]),
    )


def router(demo, *deployments: str):
    return litellm.Router(model_list=[{"model_name": "support-chat", "litellm_params": {k: v for k, v in route(demo, d).items()}} for d in deployments])


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_router_call_is_one_span_with_the_deployment_provider(demo, telemetry, name, stream, is_async):
    """The Router's span is the call's one span (its per-deployment ``litellm.acompletion`` opens none); the
    request model is the model group, the provider the one of the deployment that answered."""
    telemetry.instrument(capture_content=True, metrics=[])
    r = router(demo, name)
    if is_async:
        async def go():
            out = await r.acompletion(model="support-chat", messages=GERMAN, stream=stream)
            return "".join([text_of(c) async for c in out]) if stream else out.choices[0].message.content
        text = asyncio.run(go())
    else:
        out = r.completion(model="support-chat", messages=GERMAN, stream=stream)
        text = "".join(map(text_of, out)) if stream else out.choices[0].message.content
    assert text.startswith("Hallo")
    (span,) = telemetry.spans()
    assert span.name == "chat support-chat"
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == ROUTES[name][0]
    assert (span.attributes[A.SERVER_ADDRESS], span.attributes[A.SERVER_PORT]) == ("127.0.0.1", demo.port)
    (duration,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert duration.attributes[A.GEN_AI_PROVIDER_NAME] == ROUTES[name][0]


def test_router_fallback_is_one_span(demo, telemetry):
    """A deployment that fails and the fallback that answers: one call for the app, one span."""
    telemetry.instrument(metrics=[])
    r = litellm.Router(
        model_list=[{"model_name": "primary", "litellm_params": {**route(demo, "openai"), "model": "openai/error-500"}},
                    {"model_name": "backup", "litellm_params": route(demo, "anthropic")}],
        fallbacks=[{"primary": ["backup"]}], num_retries=0,
    )
    out = r.completion(model="primary", messages=GERMAN)
    assert out.choices[0].message.content.startswith("Hallo")
    assert len(demo.requests) == 2
    (span,) = telemetry.spans()
    assert span.name == "chat primary" and span.status.status_code == StatusCode.UNSET
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "anthropic"


def test_provider_names_map_to_the_conventions():
    from micrometrics_instrumentation.litellm.translators import provider_name

    assert [provider_name(n) for n in ("openai", "anthropic", "bedrock", "vertex_ai", "gemini", "azure", "mistral", "cohere_chat",
                                       "groq", "deepseek", "xai", "perplexity", "watsonx", "together_ai", "", None)] == [
        "openai", "anthropic", "aws.bedrock", "gcp.vertex_ai", "gcp.gemini", "azure.ai.openai", "mistral_ai", "cohere",
        "groq", "deepseek", "x_ai", "perplexity", "ibm.watsonx.ai", "together_ai", None, None]


def test_positional_arguments_are_read_and_retried(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    r = litellm.completion("gpt-4o-mini", GERMAN, api_base=demo.openai_base_url, api_key=KEY)
    attrs = telemetry.span("chat gpt-4o-mini").attributes
    assert json.loads(attrs[A.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == GERMAN[0]["content"]
    assert attrs[A.GEN_AI_RESPONSE_ID] == r.id


def test_uninstrument_restores_every_function(demo, telemetry):
    from litellm.router_rust.core import RustCore

    telemetry.instrument(metrics=[])
    names = ("completion", "acompletion", "text_completion", "atext_completion", "embedding", "aembedding", "responses", "aresponses")
    assert all(isinstance(vars(litellm)[n], PROXY) for n in names)
    assert all(isinstance(vars(RustCore)[n], PROXY) for n in names if n in vars(RustCore))
    micrometrics.uninstrument()
    assert not any(isinstance(vars(litellm)[n], PROXY) for n in names)
    assert not any(isinstance(vars(RustCore)[n], PROXY) for n in names if n in vars(RustCore))
    complete(False, True, **route(demo, "openai"))
    assert telemetry.spans() == []


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.litellm import LiteLLMInstrumentor

    found = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_litellm"]
    if not found:
        pytest.skip("micrometrics_litellm is declared in pyproject.toml; the installed package predates it (reinstall)")
    assert found[0].load() is LiteLLMInstrumentor
    assert list(LiteLLMInstrumentor().instrumentation_dependencies()) == ["litellm >= 1.60"]


def test_router_failure_before_any_deployment_answered_reports_litellm(demo, telemetry):
    """No deployment answered, so LiteLLM named no provider: the span says ``litellm`` (declared), and the error."""
    telemetry.instrument(metrics=[])
    r = litellm.Router(model_list=[{"model_name": "primary", "litellm_params": {**route(demo, "openai"), "model": "openai/error-500"}}], num_retries=0)
    with pytest.raises(litellm.InternalServerError):
        r.completion(model="primary", messages=GERMAN)
    assert_failed_call(telemetry, "chat primary", provider="litellm", error_type="500")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_router_embeddings(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    r = litellm.Router(model_list=[{"model_name": "vectors", "litellm_params": {"model": "openai/text-embedding-3-small", "api_base": demo.openai_base_url, "api_key": KEY}}])
    result = asyncio.run(r.aembedding(model="vectors", input=["Paket"])) if is_async else r.embedding(model="vectors", input=["Paket"])
    (span,) = telemetry.spans()
    assert span.name == "embeddings vectors"
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(result.data[0]["embedding"])


@pytest.fixture
def litellm_otel_callback(telemetry):
    """LiteLLM's own OpenTelemetry callback, on the same tracer provider as ours (as an app that turned both on)."""
    from litellm.integrations.opentelemetry import OpenTelemetry

    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.callbacks = [OpenTelemetry(tracer_provider=telemetry.tracer_provider)]
    yield
    # LiteLLM copies callbacks into its internal lists on first use: all of them go.
    litellm.logging_callback_manager._reset_all_callbacks()


def _scoped(telemetry, name: str) -> list:
    return [s for s in telemetry.spans() if s.instrumentation_scope.name == name]


def test_litellm_own_otel_callback_writes_nothing_onto_our_span(demo, telemetry, litellm_otel_callback):
    """LiteLLM's callback writes its attributes onto the current span when there is one. Under our call it sees a
    non-recording stand-in: our span keeps our attributes only (no prompt without capture, no deprecated
    ``gen_ai.system``); what LiteLLM opens itself (``raw_gen_ai_request``) is our span's child."""
    telemetry.instrument(metrics=[])
    complete(False, False, **route(demo, "openai"))
    (ours,) = _scoped(telemetry, "micrometrics")
    assert "gen_ai.system" not in ours.attributes and A.GEN_AI_INPUT_MESSAGES not in ours.attributes
    assert not any(k.startswith(("metadata.", "litellm.", "hidden_params")) for k in ours.attributes)
    theirs = _scoped(telemetry, "litellm")
    assert theirs and all(s.parent.span_id == ours.context.span_id for s in theirs)
    assert all(s.name != "litellm_request" for s in theirs)  # no second request span


def test_litellm_own_otel_callback_on_a_stream_opens_its_own_request_span(demo, telemetry, litellm_otel_callback):
    """A stream's callback runs at its end, after our call returned it: LiteLLM opens its own ``litellm_request``
    span (INTERNAL) beside ours. Documented in docs/coexistence.md: turn LiteLLM's callback off beside micrometrics."""
    telemetry.instrument(metrics=[])
    complete(False, True, **route(demo, "openai"))
    deadline = time.monotonic() + 5  # LiteLLM logs a stream's success off the caller's thread
    while not any(s.name == "litellm_request" for s in _scoped(telemetry, "litellm")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (ours,) = _scoped(telemetry, "micrometrics")
    assert ours.name == "chat gpt-4o-mini" and ours.attributes[A.GEN_AI_REQUEST_STREAM] is True
    (theirs,) = [s for s in _scoped(telemetry, "litellm") if s.name == "litellm_request"]
    assert theirs.parent is None or theirs.parent.span_id != ours.context.span_id


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_streamed_text_completion(demo, telemetry, is_async):
    telemetry.instrument(capture_content=True, metrics=[])
    kwargs = dict(model="gpt-3.5-turbo-instruct", prompt="Hallo, wo ist meine Bestellung?", api_base=demo.openai_base_url, api_key=KEY, stream=True)

    def text(chunk) -> str:
        return (chunk.choices[0].text or "") if chunk.choices else ""

    if is_async:
        async def go():
            return "".join([text(c) async for c in await litellm.atext_completion(**kwargs)])
        read = asyncio.run(go())
    else:
        read = "".join(text(c) for c in litellm.text_completion(**kwargs))
    attrs = telemetry.span("text_completion gpt-3.5-turbo-instruct").attributes
    assert read and attrs[A.GEN_AI_REQUEST_STREAM] is True
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": read}]


@pytest.mark.parametrize("endpoint", ["atext_completion", "aresponses"])
def test_router_text_completion_and_responses_are_one_span(demo, telemetry, endpoint):
    telemetry.instrument(metrics=[])
    r = litellm.Router(model_list=[{"model_name": "support", "litellm_params": {"model": "openai/gpt-4.1", "api_base": demo.openai_base_url, "api_key": KEY}}])
    if endpoint == "atext_completion":
        asyncio.run(r.atext_completion(model="support", prompt="Hallo, wo ist meine Bestellung?"))
        name = "text_completion support"
    else:
        asyncio.run(r.aresponses(model="support", input="Hallo, wo ist meine Bestellung?"))
        name = "chat support"
    (span,) = telemetry.spans()
    assert span.name == name and span.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("name", ["anthropic", "bedrock"])
def test_the_provider_contract_through_the_anthropic_and_bedrock_routes(demo, telemetry, name, stream, is_async):
    telemetry.instrument(capture_content=True, metrics=[])
    extra = {"stream_options": {"include_usage": True}} if stream else {}
    text, response = complete(is_async, stream, max_tokens=200, **route(demo, name), **extra)
    provider, model, _ = ROUTES[name]
    first = response[0] if stream else response
    usage = [c.usage for c in response if getattr(c, "usage", None)] if stream else [response.usage]
    assert_inference_call(
        telemetry, operation="chat", provider=provider, request_model=model, response_model=first.model,
        response_id_prefix="chatcmpl-", server=("127.0.0.1", demo.port), stream=stream, capture=True,
        token_types=("input", "output") if usage else (),
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": GERMAN[0]["content"]}]}], output_text=text),
        secret=KEY, attributes={A.GEN_AI_REQUEST_MAX_TOKENS: 200},
    )
