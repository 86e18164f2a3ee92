"""LiteLLM requests and responses -> call records. Translation only: no OpenTelemetry here.

LiteLLM takes and returns the OpenAI shapes whatever the provider (``ModelResponse``,
``ModelResponseStream`` chunks, ``EmbeddingResponse``, ``TextCompletionResponse``, the
Responses API's objects), so the OpenAI translators read them; what is LiteLLM's own is
the provider, resolved by LiteLLM itself (``get_llm_provider`` on the request, the
response's ``_hidden_params["custom_llm_provider"]`` after a Router picked a deployment),
and the server, from ``api_base`` (or, once known, the response's).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from micrometrics.reading import server
from micrometrics.records import CallRecord
from micrometrics_instrumentation.openai import translators as openai
from micrometrics_instrumentation.translator import with_leading_system
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: LiteLLM's provider names -> the conventions' well-known ``gen_ai.provider.name`` values; any other is kept as is.
PROVIDERS: Mapping[str, str] = {
    "openai": V.PROVIDER_OPENAI,
    "text-completion-openai": V.PROVIDER_OPENAI,
    "anthropic": V.PROVIDER_ANTHROPIC,
    "anthropic_text": V.PROVIDER_ANTHROPIC,
    "bedrock": V.PROVIDER_AWS_BEDROCK,
    "vertex_ai": V.PROVIDER_GCP_VERTEX_AI,
    "vertex_ai_beta": V.PROVIDER_GCP_VERTEX_AI,
    "gemini": V.PROVIDER_GCP_GEMINI,
    "azure": V.PROVIDER_AZURE_OPENAI,
    "azure_text": V.PROVIDER_AZURE_OPENAI,
    "azure_ai": V.PROVIDER_AZURE_AI_INFERENCE,
    "mistral": V.PROVIDER_MISTRAL_AI,
    "codestral": V.PROVIDER_MISTRAL_AI,
    "cohere": V.PROVIDER_COHERE,
    "cohere_chat": V.PROVIDER_COHERE,
    "groq": V.PROVIDER_GROQ,
    "deepseek": V.PROVIDER_DEEPSEEK,
    "xai": V.PROVIDER_X_AI,
    "perplexity": V.PROVIDER_PERPLEXITY,
    "watsonx": V.PROVIDER_IBM_WATSONX_AI,
    "watsonx_text": V.PROVIDER_IBM_WATSONX_AI,
    "ollama_chat": V.PROVIDER_OLLAMA,
}
#: The env var and keyword that point LiteLLM's Bedrock route at another endpoint (a VPC endpoint, a test server).
_BEDROCK_ENDPOINT = ("aws_bedrock_runtime_endpoint", "AWS_BEDROCK_RUNTIME_ENDPOINT")


def provider_name(name: Any) -> str | None:
    """LiteLLM's provider name as ``gen_ai.provider.name``: the conventions' value where there is one, else LiteLLM's."""
    if not isinstance(name, str) or not name:
        return None
    return PROVIDERS.get(name, name)


def resolve(model: Any, kwargs: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(the model without LiteLLM's route prefix, LiteLLM's provider name, the api_base it resolved) of a model
    string, as LiteLLM routes it; Nones: a name only a Router knows (a model group), or a model LiteLLM cannot
    route (the call raises that itself)."""
    litellm = sys.modules.get("litellm")  # the application imported it: this runs inside its call
    if litellm is None or not isinstance(model, str) or not model:
        return None, None, None
    try:
        name, provider, _, api_base = litellm.get_llm_provider(
            model=model, custom_llm_provider=kwargs.get("custom_llm_provider"), api_base=kwargs.get("api_base")
        )
    except Exception:  # LiteLLM raises BadRequestError for a model it cannot route: the call will say so
        return None, None, None
    return name if isinstance(name, str) and name else None, provider, api_base if isinstance(api_base, str) else None


def _api_base(provider: str | None, resolved: str | None, kwargs: Mapping[str, Any]) -> str | None:
    base = kwargs.get("api_base") or kwargs.get("base_url") or resolved
    if not base and provider == "bedrock":
        base = kwargs.get(_BEDROCK_ENDPOINT[0]) or os.environ.get(_BEDROCK_ENDPOINT[1])
    return base if isinstance(base, str) and base else None


def apply_route(record: CallRecord, kwargs: Mapping[str, Any]) -> None:
    """The record's model, provider and server, as LiteLLM resolves the request's model: ``anthropic/claude-...``
    is the model ``claude-...`` of the provider ``anthropic`` (a Router's model group stays as named)."""
    name, provider, resolved = resolve(record.model, kwargs)
    record.provider = provider_name(provider) or V.PROVIDER_LITELLM
    if name:
        record.model = name
    base = _api_base(provider, resolved, kwargs)
    if base:
        record.server_address, record.server_port = server(base)


def apply_hidden(record: CallRecord, response: Any) -> None:
    """The provider and server of the deployment that answered (a Router's pick), from LiteLLM's hidden params;
    set on the span at its end (``response_params``), and on the record for the metric points."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, Mapping):
        return
    # Some routes (Anthropic's) leave custom_llm_provider out: the deployment's model string says it.
    provider = provider_name(hidden.get("custom_llm_provider") or resolve(hidden.get("litellm_model_name"), {})[1])
    if provider and provider != record.provider:
        record.provider = provider
        record.response_params[A.GEN_AI_PROVIDER_NAME] = provider
    base = hidden.get("api_base")
    if record.server_address is None and isinstance(base, str) and base:
        host, port = server(base)
        if host:
            record.server_address, record.server_port = host, port
            record.response_params[A.SERVER_ADDRESS] = host
            if port:
                record.response_params[A.SERVER_PORT] = port


def named(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict:
    """The call's keywords with its leading positional arguments named (``completion("gpt-4o", messages)``)."""
    if not args:
        return kwargs
    return {**dict(zip(names, args)), **kwargs}


class _LiteLLM:
    """Mixed into an OpenAI translator: the request is LiteLLM's keywords, the route LiteLLM's."""

    #: The names of the function's leading positional parameters.
    positional: tuple[str, ...] = ("model", "messages")

    def endpoint(self, instance: Any) -> tuple[str, str | None, int | None]:
        return V.PROVIDER_LITELLM, None, None  # replaced by apply_route: the provider depends on the model

    def request(self, instance: Any, args: tuple, kwargs: dict) -> Any:
        kwargs = named(self.positional, args, kwargs)
        record = super().request(instance, (), kwargs)  # type: ignore[misc]
        apply_route(record, kwargs)
        return record

    def response(self, record: Any, response: Any) -> None:
        super().response(record, response)  # type: ignore[misc]
        apply_hidden(record, response)

    def accumulator(self, record: Any, stream: Any) -> Any:
        acc = super().accumulator(record, stream)  # type: ignore[misc]
        if acc is not None:
            # The stream wrapper knows the deployment that answers (after a Router's pick).
            apply_hidden(record, _StreamHidden(stream))
        return acc

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict]:
        kwargs = named(self.positional, args, kwargs)
        return (), (self.with_instruction(kwargs, instruction) if instruction else kwargs)  # type: ignore[attr-defined]


class _StreamHidden:
    """A CustomStreamWrapper's provider and api_base, read as a response's hidden params."""

    __slots__ = ("_hidden_params",)

    def __init__(self, stream: Any) -> None:
        hidden = getattr(stream, "_hidden_params", None)
        provider = getattr(stream, "custom_llm_provider", None)
        self._hidden_params = {**(hidden if isinstance(hidden, Mapping) else {}), **({"custom_llm_provider": provider} if provider else {})}


class ChatTranslator(_LiteLLM, openai.ChatTranslator):
    """``litellm.completion`` / ``acompletion`` and the Router's."""

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        # In the leading system message: every route takes that one as the system prompt (Anthropic's `system`,
        # Bedrock's), where a trailing one may become a user turn.
        return {**kwargs, "messages": with_leading_system(kwargs.get("messages"), instruction)}


class TextCompletionTranslator(_LiteLLM, openai.CompletionsTranslator):
    """``litellm.text_completion`` / ``atext_completion`` (prompt first) and the Router's (model first)."""

    def __init__(self, positional: tuple[str, ...] = ("prompt", "model")) -> None:
        self.positional = positional


class EmbeddingsTranslator(_LiteLLM, openai.EmbeddingsTranslator):
    """``litellm.embedding`` / ``aembedding`` and the Router's."""

    positional = ("model", "input")


class ResponsesTranslator(_LiteLLM, openai.ResponsesTranslator):
    """``litellm.responses`` / ``aresponses`` and the Router's."""

    positional = ("input", "model")
