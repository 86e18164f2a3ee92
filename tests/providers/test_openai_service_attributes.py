"""OpenAI's own attributes (the conventions' ``openai.*`` registry): which API, the service tier asked for
and the one that answered, the system fingerprint; on spans, and the tier on duration and token points."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from provider_contract import assert_attributes

GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]
OPENAI_KEYS = (A.OPENAI_API_TYPE, A.OPENAI_REQUEST_SERVICE_TIER, A.OPENAI_RESPONSE_SERVICE_TIER, A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT)


def clients(demo, **kw):
    opts = dict(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0, **kw)
    return openai.OpenAI(**opts), openai.AsyncOpenAI(**opts)


def run(demo, is_async: bool, method: str, **kwargs):
    """Call ``client.<method>`` (dotted) and read a stream to its end."""
    sync, async_ = clients(demo)

    def target(client):
        obj = client
        for name in method.split("."):
            obj = getattr(obj, name)
        return obj

    if not is_async:
        result = target(sync)(**kwargs)
        return list(result) if kwargs.get("stream") else result

    async def go():
        result = await target(async_)(**kwargs)
        return [c async for c in result] if kwargs.get("stream") else result

    return asyncio.run(go())


def assert_tier_on_usage_points(telemetry, tier: str) -> None:
    """Duration and token usage carry the tier the response reported; no metric point carries the fingerprint."""
    points = telemetry.metrics()
    for name in (M.GEN_AI_CLIENT_OPERATION_DURATION, M.GEN_AI_CLIENT_TOKEN_USAGE):
        assert points[name] and all(p.attributes[A.OPENAI_RESPONSE_SERVICE_TIER] == tier for p in points[name]), name
    for name, pts in points.items():
        for p in pts:
            assert A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT not in p.attributes, name
            assert set(p.attributes) <= A.METRIC_DIMENSIONS, name


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_chat_completions_carry_the_api_tiers_and_fingerprint(demo, telemetry, is_async, stream):
    telemetry.instrument(metrics=[])
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    run(demo, is_async, "chat.completions.create", model="gpt-4o-mini", messages=GERMAN, service_tier="flex", **extra)
    assert demo.requests[-1].body["service_tier"] == "flex"
    attrs = telemetry.span().attributes
    # The tier asked for is the request's; the one that answered (and the fingerprint) the response's, or its chunks'.
    assert_attributes(attrs, {
        A.OPENAI_API_TYPE: "chat_completions",
        A.OPENAI_REQUEST_SERVICE_TIER: "flex",
        A.OPENAI_RESPONSE_SERVICE_TIER: "default",
        A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: "fp_demo",
    })
    assert_tier_on_usage_points(telemetry, "default")


def test_a_tier_passed_in_extra_body_is_the_requested_tier(demo, telemetry):
    telemetry.instrument(metrics=[])
    run(demo, False, "chat.completions.create", model="gpt-4o-mini", messages=GERMAN, extra_body={"service_tier": "priority"})
    assert telemetry.span().attributes[A.OPENAI_REQUEST_SERVICE_TIER] == "priority"


def test_no_tier_asked_for_means_no_requested_tier(demo, telemetry):
    telemetry.instrument(metrics=[])
    run(demo, False, "chat.completions.create", model="gpt-4o-mini", messages=GERMAN)
    attrs = telemetry.span().attributes
    assert A.OPENAI_REQUEST_SERVICE_TIER not in attrs
    assert attrs[A.OPENAI_RESPONSE_SERVICE_TIER] == "default"


def test_stream_chunks_report_the_tier_even_when_the_last_chunk_does_not(demo, telemetry):
    """A server that names the tier and fingerprint only in its first chunk: read from there."""
    chunk = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2026"%s,"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}'
    first = chunk % (',"service_tier":"scale","system_fingerprint":"fp_first"', "Hallo", "null")
    last = chunk % ("", "!", '"stop"')
    demo.enqueue(raw=f"data: {first}\n\ndata: {last}\n\ndata: [DONE]\n\n".encode(), headers={"content-type": "text/event-stream"})
    telemetry.instrument(metrics=[])
    run(demo, False, "chat.completions.create", model="gpt-4o-mini", messages=GERMAN, stream=True)
    assert_attributes(telemetry.span().attributes, {A.OPENAI_RESPONSE_SERVICE_TIER: "scale", A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: "fp_first"})


@pytest.mark.parametrize("bad", [None, 42, "", ["default"], {"tier": "x"}], ids=["null", "number", "empty", "list", "object"])
def test_garbage_tier_and_fingerprint_on_the_wire_are_left_out(demo, telemetry, bad):
    demo.enqueue(json={
        "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2026",
        "service_tier": bad, "system_fingerprint": bad,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hallo."}, "finish_reason": "stop"}],
    })
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    assert sync.chat.completions.create(model="gpt-4o-mini", messages=GERMAN).choices[0].message.content == "Hallo."
    attrs = telemetry.span().attributes
    assert A.OPENAI_RESPONSE_SERVICE_TIER not in attrs and A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT not in attrs
    (duration,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert A.OPENAI_RESPONSE_SERVICE_TIER not in duration.attributes


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_responses_api_carries_its_api_type_and_tiers(demo, telemetry, is_async, stream):
    telemetry.instrument(metrics=[])
    run(demo, is_async, "responses.create", model="gpt-4.1", input="Wo ist meine Bestellung?", service_tier="auto", stream=stream)
    attrs = telemetry.span().attributes
    assert_attributes(attrs, {A.OPENAI_API_TYPE: "responses", A.OPENAI_REQUEST_SERVICE_TIER: "auto", A.OPENAI_RESPONSE_SERVICE_TIER: "default"})
    assert A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT not in attrs  # the Responses API has none
    assert_tier_on_usage_points(telemetry, "default")


def test_legacy_completions_and_embeddings_have_no_api_type(demo, telemetry):
    """The registry's ``openai.api.type`` names chat completions and responses only."""
    telemetry.instrument(metrics=[])
    sync, _ = clients(demo)
    sync.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello")
    sync.embeddings.create(model="text-embedding-3-small", input="hello")
    for span in telemetry.spans():
        assert A.OPENAI_API_TYPE not in span.attributes, span.name
        assert A.OPENAI_REQUEST_SERVICE_TIER not in span.attributes, span.name


class _ToLoopback(httpx.BaseTransport):
    """Sends a request for any host to the demo server: real HTTP, a compatible provider's host name."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return self.inner.handle_request(request)


def test_a_compatible_provider_gets_no_openai_attributes(demo, telemetry):
    """The conventions' discriminator: DeepSeek's spans say deepseek and carry no ``openai.*``, even through the OpenAI client."""
    telemetry.instrument(metrics=[])
    client = openai.OpenAI(base_url="https://api.deepseek.com/v1", api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=_ToLoopback(demo.port)))
    client.chat.completions.create(model="deepseek-chat", messages=GERMAN, service_tier="default", stream=False)
    attrs = telemetry.span().attributes
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "deepseek"
    assert not [k for k in attrs if k.startswith("openai.")]
    (duration,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert A.OPENAI_RESPONSE_SERVICE_TIER not in duration.attributes


def test_azure_openai_is_openais_service(demo, telemetry):
    telemetry.instrument(metrics=[])
    client = openai.AzureOpenAI(azure_endpoint=demo.base_url, api_key="azure-key", api_version="2024-10-21", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=GERMAN)
    attrs = telemetry.span().attributes
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert_attributes(attrs, {A.OPENAI_API_TYPE: "chat_completions", A.OPENAI_RESPONSE_SERVICE_TIER: "default"})
