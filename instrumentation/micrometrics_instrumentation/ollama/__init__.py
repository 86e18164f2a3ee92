"""micrometrics instrumentation for the ``ollama`` client library.

Wraps ``chat``, ``generate`` and ``embed`` of ``Client`` and ``AsyncClient``, and the
module-level ``ollama.chat``/``generate``/``embed`` (the methods of a default client,
bound when ``ollama`` is imported). With ``stream=True`` the methods keep their shape: a
generator (or an async one) of response chunks, proxied.

Ollama's OpenAI-compatible API (``/v1``) is traced through the OpenAI SDK, with the
provider name ``ollama`` when the server listens on Ollama's port (11434).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.ollama.translators import ChatTranslator, EmbedTranslator, GenerateTranslator

__all__ = ["OllamaInstrumentor"]

_CLIENT = "ollama._client"
_FUNCTIONS = ("chat", "generate", "embed")


def _default_client_method(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``ollama.chat(...)``: the default client's method as it is now (wrapped while instrumented).

    The module binds its functions at import: bound before ``instrument()``, they would miss our wrapper;
    bound after, they already have it. Calling the method looked up now traces each call once either way.
    """
    client, name = getattr(wrapped, "__self__", None), getattr(wrapped, "__name__", None)
    method = getattr(client, name, None) if client is not None and isinstance(name, str) else None
    return (method or wrapped)(*args, **kwargs)


class OllamaInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["ollama"]
    instruments = ("ollama >= 0.4",)

    def targets(self) -> Iterable[Target]:
        chat, generate, embed = ChatTranslator(), GenerateTranslator(), EmbedTranslator()
        out: list[Target] = [
            (_CLIENT, "Client", "chat", sync_wrapper(chat)),
            (_CLIENT, "Client", "generate", sync_wrapper(generate)),
            (_CLIENT, "Client", "embed", sync_wrapper(embed)),
            (_CLIENT, "AsyncClient", "chat", async_wrapper(chat)),
            (_CLIENT, "AsyncClient", "generate", async_wrapper(generate)),
            (_CLIENT, "AsyncClient", "embed", async_wrapper(embed)),
        ]
        out += [("ollama", "", name, _default_client_method) for name in _FUNCTIONS]
        return out
