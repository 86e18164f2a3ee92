"""micrometrics instrumentation for ``litellm``.

Wraps ``litellm.completion`` / ``acompletion``, ``text_completion`` / ``atext_completion``,
``embedding`` / ``aembedding``, ``responses`` / ``aresponses``, and the same endpoints of
``litellm.Router`` (served by its core, ``litellm.router_rust.core.RustCore``).

One inference span per call: the LiteLLM call's span is the outer one, and any instrumented
call it makes of the same family (the OpenAI client's ``post``, the Anthropic SDK, boto3's
Bedrock client, a Router's ``litellm.acompletion`` per deployment) opens none under it
(``micrometrics.nesting``, the default ``suppress``).
"""

from __future__ import annotations

from typing import Callable, Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.litellm.translators import (
    ChatTranslator,
    EmbeddingsTranslator,
    ResponsesTranslator,
    TextCompletionTranslator,
)

__all__ = ["LiteLLMInstrumentor"]

_LITELLM = "litellm"
_ROUTER_CORE = "litellm.router_rust.core"


class LiteLLMInstrumentor(LibraryInstrumentor):
    library = "litellm"
    instruments = ("litellm >= 1.60",)

    def targets(self) -> Iterable[Target]:
        # The module's functions: the ones applications call, and the ones a Router calls per deployment.
        yield from ((_LITELLM, "", name, wrapper) for name, wrapper in _wrappers(("prompt", "model")))
        # The Router's endpoints; its text completion takes the model first.
        yield from ((_ROUTER_CORE, "RustCore", name, wrapper) for name, wrapper in _wrappers(("model", "prompt")))


def _wrappers(text_positional: tuple[str, str]) -> tuple[tuple[str, Callable], ...]:
    chat, text, embeddings, responses = ChatTranslator(), TextCompletionTranslator(text_positional), EmbeddingsTranslator(), ResponsesTranslator()
    return (
        ("completion", sync_wrapper(chat)), ("acompletion", async_wrapper(chat)),
        ("text_completion", sync_wrapper(text)), ("atext_completion", async_wrapper(text)),
        ("embedding", sync_wrapper(embeddings)), ("aembedding", async_wrapper(embeddings)),
        ("responses", sync_wrapper(responses)), ("aresponses", async_wrapper(responses)),
    )
