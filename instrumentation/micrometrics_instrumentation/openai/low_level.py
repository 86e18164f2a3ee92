"""``client.post(path, body=..., cast_to=..., stream=..., stream_cls=...)``: the OpenAI client's low-level path.

Gateways (LiteLLM) and applications that skip the resources' validation call ``post`` directly
with the request body. The inference paths are traced like the method they stand for (same
translators, the body read as that method's keywords); every other path goes straight through.
Under an instrumented ``create`` (which itself calls ``post``), the outer call's scope suppresses
this one before any record is built (``nesting.suppresses``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from micrometrics import nesting
from micrometrics.calls import run_async, run_sync
from micrometrics.records import EmbeddingsRecord, InferenceRecord
from micrometrics_instrumentation.openai.translators import (
    ChatTranslator,
    CompletionsTranslator,
    EmbeddingsTranslator,
    ResponsesTranslator,
    endpoint,
)

__all__ = ["post_wrapper", "async_post_wrapper"]


def _body(kwargs: dict) -> dict:
    """The request body as the method's keywords; a body we cannot read (bytes, a model object) as none."""
    body = kwargs.get("body")
    return dict(body) if isinstance(body, Mapping) else {}


class _OnClient:
    """An OpenAI translator read from ``post``'s arguments: the client is the instance, the body the keywords."""

    family: type = InferenceRecord

    def endpoint(self, instance: Any) -> tuple[str, str | None, int | None]:
        return endpoint(instance)

    def request(self, instance: Any, args: tuple, kwargs: dict) -> Any:
        record = super().request(instance, (), _body(kwargs))  # type: ignore[misc]
        record.stream = kwargs.get("stream") is True  # post's own flag decides what it returns
        return record

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict]:
        body = kwargs.get("body")
        if not instruction or not isinstance(body, Mapping):
            return args, kwargs
        return args, {**kwargs, "body": self.with_instruction(dict(body), instruction)}  # type: ignore[attr-defined]


class PostChatTranslator(_OnClient, ChatTranslator):
    pass


class PostResponsesTranslator(_OnClient, ResponsesTranslator):
    pass


class PostEmbeddingsTranslator(_OnClient, EmbeddingsTranslator):
    family = EmbeddingsRecord


class PostCompletionsTranslator(_OnClient, CompletionsTranslator):
    pass


def _by_path() -> dict[str, _OnClient]:
    return {
        "/chat/completions": PostChatTranslator(),
        "/responses": PostResponsesTranslator(),
        "/embeddings": PostEmbeddingsTranslator(),
        "/completions": PostCompletionsTranslator(),
    }


def _translator(translators: dict[str, _OnClient], args: tuple, kwargs: dict) -> _OnClient | None:
    """The translator of an inference path not already inside an open call of its family; None: straight through."""
    path = args[0] if args else kwargs.get("path")
    translator = translators.get(path) if type(path) is str else None
    if translator is None or nesting.suppresses(translator.family):
        return None
    return translator


def _post_wrapper(run: Callable) -> Callable:
    """A wrapt wrapper for ``post``: inference paths through ``run`` (run_sync, or run_async, whose coroutine is
    returned as it is), every other path straight through, so other paths add no await."""
    translators = _by_path()

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        translator = _translator(translators, args, kwargs)
        if translator is None:
            return wrapped(*args, **kwargs)
        return run(translator, wrapped, instance, args, kwargs)

    wrapper.opens_span = True  # type: ignore[attr-defined]
    return wrapper


def post_wrapper() -> Callable:
    """A wrapt wrapper for ``SyncAPIClient.post``."""
    return _post_wrapper(run_sync)


def async_post_wrapper() -> Callable:
    """A wrapt wrapper for ``AsyncAPIClient.post``."""
    return _post_wrapper(run_async)
