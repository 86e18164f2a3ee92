"""The model-calling functions LlmJudge and AnswerConsistency take, built from an OpenAI-compatible client.

The client is the application's (``openai.OpenAI(...)``, or any client with a synchronous
``chat.completions.create``: Groq, Mistral's OpenAI endpoint, vLLM, Ollama, LiteLLM's proxy);
instrumented, its calls are traced, priced and charged to the metric that makes them.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence


def _check(client: Any, owner: str) -> None:
    chat = getattr(client, "chat", None)
    create = getattr(getattr(chat, "completions", None), "create", None)
    if not callable(create):
        raise TypeError(f"{owner}: client={client!r} has no chat.completions.create; pass an OpenAI-compatible client such as openai.OpenAI()")
    if inspect.iscoroutinefunction(create) or inspect.iscoroutinefunction(inspect.unwrap(create)):
        raise TypeError(f"{owner}: client={type(client).__name__} is asynchronous; metrics run on a thread: pass a synchronous client (openai.OpenAI)")


def _create(client: Any, **kwargs: Any) -> Any:
    # Looked up at each call, not bound once: a method bound before instrument() wrapped it would go untraced.
    response = client.chat.completions.create(**kwargs)
    if inspect.isawaitable(response):
        close = getattr(response, "close", None)
        if callable(close):
            close()  # never awaited: no "coroutine was never awaited" warning
        raise TypeError(f"{type(client).__name__}.chat.completions.create is asynchronous; metrics run on a thread: pass a synchronous client (openai.OpenAI)")
    return response


def _text(response: Any) -> str:
    choices = getattr(response, "choices", None) or ()
    message = getattr(choices[0], "message", None) if choices else None
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else ""


def openai_judge(client: Any, model: str, **create_options: Any) -> Callable[[Sequence[Mapping[str, str]]], str]:
    """``judge(messages) -> text`` for LlmJudge: ``client.chat.completions.create(model=model, messages=..., **create_options)``
    (e.g. ``temperature=0``)."""
    _check(client, "openai_judge")
    if not isinstance(model, str) or not model:
        raise ValueError(f"openai_judge: model={model!r} must name the judge model, e.g. 'gpt-4o-mini'")

    def judge(messages: Sequence[Mapping[str, str]]) -> str:
        return _text(_create(client, model=model, messages=[dict(m) for m in messages], **create_options))

    return judge


def openai_ask(client: Any, model: str | None = None, **create_options: Any) -> Callable[..., str]:
    """``ask(messages, temperature, model) -> text`` for AnswerConsistency: the request re-asked with ``model``, or
    the judged call's own model when None; ``temperature`` None sends none (the provider's default)."""
    _check(client, "openai_ask")
    if model is not None and (not isinstance(model, str) or not model):
        raise ValueError(f"openai_ask: model={model!r} must name a model, or None for the judged call's model")

    def ask(messages: Sequence[Mapping[str, str]], temperature: float | None, judged_model: str | None) -> str:
        chosen = model or judged_model
        if not chosen:
            raise ValueError("openai_ask: the judged call names no model; pass openai_ask(client, model=...)")
        options = dict(create_options)
        if temperature is not None:
            options["temperature"] = temperature
        return _text(_create(client, model=chosen, messages=[dict(m) for m in messages], **options))

    return ask
