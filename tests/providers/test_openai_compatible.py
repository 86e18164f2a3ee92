"""OpenAI-compatible servers called through the OpenAI SDK: the provider name comes from the host.

Each call is a real OpenAI client request, made to the service's own base URL; an HTTP
transport carries it to the loopback demo server, so the client (and the span) sees the
service's host and port while the answer comes from loopback.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from micrometrics.reading import HOST_PROVIDERS, PORT_PROVIDERS, provider_for_host
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V
from provider_contract import assert_inference_call

GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]

#: (base URL as the service documents it, gen_ai.provider.name, server.address, server.port); docs/providers.md has the same table.
SERVICES = [
    ("https://api.openai.com/v1", V.PROVIDER_OPENAI, "api.openai.com", 443),
    ("https://api.together.xyz/v1", V.PROVIDER_TOGETHER_AI, "api.together.xyz", 443),
    ("https://api.together.ai/v1", V.PROVIDER_TOGETHER_AI, "api.together.ai", 443),
    ("https://api.deepseek.com", V.PROVIDER_DEEPSEEK, "api.deepseek.com", 443),
    ("https://api.groq.com/openai/v1", V.PROVIDER_GROQ, "api.groq.com", 443),
    ("https://api.fireworks.ai/inference/v1", V.PROVIDER_FIREWORKS_AI, "api.fireworks.ai", 443),
    ("https://openrouter.ai/api/v1", V.PROVIDER_OPENROUTER, "openrouter.ai", 443),
    ("https://api.mistral.ai/v1", V.PROVIDER_MISTRAL_AI, "api.mistral.ai", 443),
    ("https://api.x.ai/v1", V.PROVIDER_X_AI, "api.x.ai", 443),
    ("https://api.perplexity.ai", V.PROVIDER_PERPLEXITY, "api.perplexity.ai", 443),
    ("https://api.cohere.ai/compatibility/v1", V.PROVIDER_COHERE, "api.cohere.ai", 443),
    ("https://api.cohere.com/compatibility/v1", V.PROVIDER_COHERE, "api.cohere.com", 443),
    ("https://generativelanguage.googleapis.com/v1beta/openai/", V.PROVIDER_GCP_GEMINI, "generativelanguage.googleapis.com", 443),
    ("https://my-project.services.ai.azure.com/models", V.PROVIDER_AZURE_AI_INFERENCE, "my-project.services.ai.azure.com", 443),
    ("https://models.inference.ai.azure.com", V.PROVIDER_AZURE_AI_INFERENCE, "models.inference.ai.azure.com", 443),
    ("https://my-resource.openai.azure.com/openai/v1", V.PROVIDER_AZURE_OPENAI, "my-resource.openai.azure.com", 443),
    ("https://my-resource.cognitiveservices.azure.com/openai/v1", V.PROVIDER_AZURE_OPENAI, "my-resource.cognitiveservices.azure.com", 443),
    ("http://localhost:11434/v1", V.PROVIDER_OLLAMA, "localhost", 11434),
    ("http://gpu-box.lan:11434/v1", V.PROVIDER_OLLAMA, "gpu-box.lan", 11434),
    # vLLM, LM Studio, llama.cpp, a gateway...: a host we do not know keeps the client's own name (the
    # conventions' "best knowledge"); server.address tells them apart.
    ("http://localhost:8000/v1", V.PROVIDER_OPENAI, "localhost", 8000),
    ("http://vllm.internal:8000/v1", V.PROVIDER_OPENAI, "vllm.internal", 8000),
]


class ToLoopback(httpx.HTTPTransport):
    """Sends every request to the demo server's chat route, whatever host the client addressed."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port, path="/v1/chat/completions")
        return super().handle_request(request)


@pytest.mark.parametrize("base_url,provider,host,port", SERVICES, ids=[s[0].split("//")[1] for s in SERVICES])
def test_the_provider_name_comes_from_the_host(demo, telemetry, base_url, provider, host, port):
    telemetry.instrument(metrics=[])
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=ToLoopback(demo.port)))
    answer = client.chat.completions.create(model="any-model", messages=GERMAN)
    assert answer.choices[0].message.content.startswith("Hallo")
    assert_inference_call(
        telemetry, operation="chat", provider=provider, request_model="any-model", response_model="any-model-2026-01-01",
        response_id_prefix="chatcmpl-demo", server=(host, port),
    )


def test_every_host_of_the_table_is_tested_here():
    tested = {s[2] for s in SERVICES}
    for suffix, _ in HOST_PROVIDERS:
        assert any(h == suffix or h.endswith("." + suffix) for h in tested), suffix
    assert set(PORT_PROVIDERS) <= {s[3] for s in SERVICES}


@pytest.mark.parametrize("host,expected", [
    ("together.xyz", V.PROVIDER_OPENAI),  # a suffix must end at a dot: not api.together.xyz
    ("notapi.groq.com", V.PROVIDER_OPENAI),
    ("eu.api.groq.com", V.PROVIDER_GROQ),
    ("API.GROQ.COM.", V.PROVIDER_OPENAI),  # hosts arrive lower-cased from httpx; anything else is not guessed
    (None, V.PROVIDER_OPENAI),
    ("", V.PROVIDER_OPENAI),
])
def test_host_matching_is_by_dotted_suffix_only(host, expected):
    assert provider_for_host(host, V.PROVIDER_OPENAI) == expected


def test_a_well_known_host_wins_over_the_port():
    assert provider_for_host("api.together.xyz", V.PROVIDER_OPENAI, port=11434) == V.PROVIDER_TOGETHER_AI
    assert provider_for_host("localhost", V.PROVIDER_OPENAI, port=11434) == V.PROVIDER_OLLAMA
    assert provider_for_host(None, V.PROVIDER_OPENAI, port=11434) == V.PROVIDER_OPENAI  # no host, no guess


def test_the_azure_openai_client_is_azure_openai_whatever_its_host(demo, telemetry):
    telemetry.instrument(metrics=[])
    client = openai.AzureOpenAI(azure_endpoint=demo.base_url, api_key="k", api_version="2024-10-21", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    assert telemetry.span("chat gpt-4o-mini").attributes[A.GEN_AI_PROVIDER_NAME] == V.PROVIDER_AZURE_OPENAI
