"""Reading what a client library hands a translator: SDK objects and dicts alike, tool arguments, a client's server and provider.

Every translator reads through these, so a request written as dicts, an SDK model, a value the
application left unset and a malformed response are read the same way in every instrumentation.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Callable, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

from micrometrics_semconv import values as V

__all__ = ["given", "field", "first_field", "json_or_text", "is_stream", "server", "per_client", "provider_for_host"]

#: The SDKs' markers for an argument the application did not pass (or a field the server did not send):
#: the Stainless SDKs' (openai, anthropic, groq), Speakeasy's (mistralai).
_NOT_GIVEN = frozenset({"Omit", "NotGiven", "Unset"})


def given(value: Any) -> bool:
    """Whether the application set ``value``: neither None nor an SDK's "not given" marker."""
    return value is not None and type(value).__name__ not in _NOT_GIVEN


def field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` of a dict, ``obj.key`` of anything else (SDK models); ``default`` if absent, None or not given."""
    if obj is None:
        return default
    value = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    if value is None or type(value).__name__ in _NOT_GIVEN:
        return default
    return value


def first_field(obj: Any, keys: Sequence[str]) -> Any:
    """The first of ``keys`` that ``obj`` (a mapping, or an object by attribute) holds a value under; None if none.

    For duck-typed objects an application hands us (retrieved documents): a method is not a value.
    """
    if isinstance(obj, Mapping):
        for key in keys:
            value = obj.get(key)
            if given(value):
                return value
        return None
    for key in keys:
        value = getattr(obj, key, None)
        if given(value) and not callable(value):
            return value
    return None


def json_or_text(value: Any) -> Any:
    """Tool-call arguments as sent: a JSON string parsed, text that is not JSON kept as text, anything else as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def is_stream(response: Any) -> bool:
    """An SDK stream we can proxy (not, e.g., the raw HTTP response of ``with_raw_response``)."""
    return hasattr(response, "__next__") or hasattr(response, "__anext__")


def server(url: Any) -> tuple[str | None, int | None]:
    """(server.address, server.port) of a base URL: a string, or an ``httpx.URL`` (``host``, ``port``, ``scheme``).

    The port is the scheme's default when the URL names none; no port without an address.
    """
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            host, scheme = parts.hostname, parts.scheme
        except ValueError:
            return None, None
        try:
            port = parts.port or None
        except ValueError:  # out of range: the address is still right
            return host or None, None
    elif url is None:
        return None, None
    else:
        host, port, scheme = getattr(url, "host", None), getattr(url, "port", None), getattr(url, "scheme", "https")
    if not host:
        return None, None
    if port is None:
        port = 443 if scheme == "https" else 80
    return host, port


Result = TypeVar("Result")


def per_client(read: Callable[[Any], Result]) -> Callable[[Any], Result]:
    """``read(client)`` computed once per client: clients live long, calls are the hot path.

    A client that cannot be weakly referenced (or hashed) is read on every call.
    """
    cache: weakref.WeakKeyDictionary[Any, Result] = weakref.WeakKeyDictionary()

    def cached(client: Any) -> Result:
        try:
            return cache[client]
        except (KeyError, TypeError):
            pass
        result = read(client)
        try:
            cache[client] = result
        except TypeError:
            pass
        return result

    cached.__doc__, cached.__name__ = read.__doc__, read.__name__
    return cached


#: Well-known hosts of OpenAI-compatible APIs and their provider names (docs/providers.md, "OpenAI-compatible servers"):
#: the conventions' values where they list one, ours (values.py) otherwise. Any other host keeps the client's own name.
HOST_PROVIDERS = (
    ("openai.azure.com", V.PROVIDER_AZURE_OPENAI),
    ("cognitiveservices.azure.com", V.PROVIDER_AZURE_OPENAI),
    ("services.ai.azure.com", V.PROVIDER_AZURE_AI_INFERENCE),
    ("models.inference.ai.azure.com", V.PROVIDER_AZURE_AI_INFERENCE),
    ("api.deepseek.com", V.PROVIDER_DEEPSEEK),
    ("api.groq.com", V.PROVIDER_GROQ),
    ("api.mistral.ai", V.PROVIDER_MISTRAL_AI),
    ("api.perplexity.ai", V.PROVIDER_PERPLEXITY),
    ("api.x.ai", V.PROVIDER_X_AI),
    ("generativelanguage.googleapis.com", V.PROVIDER_GCP_GEMINI),
    ("api.cohere.ai", V.PROVIDER_COHERE),
    ("api.cohere.com", V.PROVIDER_COHERE),
    ("api.together.xyz", V.PROVIDER_TOGETHER_AI),
    ("api.together.ai", V.PROVIDER_TOGETHER_AI),
    ("api.fireworks.ai", V.PROVIDER_FIREWORKS_AI),
    ("openrouter.ai", V.PROVIDER_OPENROUTER),
)

#: Ports that name a local server whatever its host: Ollama serves its OpenAI-compatible API on 11434.
PORT_PROVIDERS = {11434: V.PROVIDER_OLLAMA}


def provider_for_host(
    host: str | None, default: str, hosts: Sequence[tuple[str, str]] = HOST_PROVIDERS, port: int | None = None
) -> str:
    """The provider name of a well-known host (or any of its subdomains) or port; ``default`` for others."""
    if host:
        for suffix, name in hosts:
            if host == suffix or host.endswith("." + suffix):
                return name
        if port is not None and port in PORT_PROVIDERS:
            return PORT_PROVIDERS[port]
    return default
