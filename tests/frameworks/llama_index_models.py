"""LlamaIndex models for the tests, built as a user of a provider without a LlamaIndex package would build them:
an ``openai``-SDK-backed ``FunctionCallingLLM`` (the SDK is instrumented by micrometrics; ``llama-index-llms-openai``
is not installable beside openai 3.x) and a deterministic embedding model (the hashed bag of words of the retrieval tests)."""

from __future__ import annotations

import json
from typing import Any, Sequence

import openai
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import PrivateAttr


def _wire(message: ChatMessage) -> dict[str, Any]:
    """A LlamaIndex chat message as the OpenAI chat API takes it (tool calls and tool results included)."""
    out: dict[str, Any] = {"role": message.role.value, "content": message.content or ""}
    calls = message.additional_kwargs.get("tool_calls")
    if calls:
        out["tool_calls"] = calls
    if message.role == MessageRole.TOOL:
        out["tool_call_id"] = message.additional_kwargs.get("tool_call_id")
    return out


def _message(choice_message: Any) -> ChatMessage:
    kwargs: dict[str, Any] = {}
    if choice_message.tool_calls:
        kwargs["tool_calls"] = [c.model_dump(exclude_none=True) for c in choice_message.tool_calls]
    return ChatMessage(role=MessageRole.ASSISTANT, content=choice_message.content or "", additional_kwargs=kwargs)


class SdkChatModel(FunctionCallingLLM):
    """A LlamaIndex LLM over the ``openai`` SDK's chat completions (sync, async, streamed, tools)."""

    model: str = "gpt-4o-mini"
    base_url: str = ""
    _client: Any = PrivateAttr(default=None)
    _aclient: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = openai.OpenAI(base_url=self.base_url, api_key="sk-test", max_retries=0)
        self._aclient = openai.AsyncOpenAI(base_url=self.base_url, api_key="sk-test", max_retries=0)

    @classmethod
    def class_name(cls) -> str:
        return "SdkChatModel"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_chat_model=True, is_function_calling_model=True)

    def _request(self, messages: Sequence[ChatMessage], kwargs: dict) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": [_wire(m) for m in messages]}
        if kwargs.get("tools"):
            request["tools"] = kwargs["tools"]
        return request

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        reply = self._client.chat.completions.create(**self._request(messages, kwargs))
        return ChatResponse(message=_message(reply.choices[0].message), raw=reply)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        reply = await self._aclient.chat.completions.create(**self._request(messages, kwargs))
        return ChatResponse(message=_message(reply.choices[0].message), raw=reply)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        request = self._request(messages, kwargs)

        def gen() -> ChatResponseGen:
            text, calls = "", {}
            for chunk in self._client.chat.completions.create(**request, stream=True):
                text, delta = _accumulate(chunk, text, calls)
                yield _streamed(text, delta, calls, chunk)

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        request = self._request(messages, kwargs)

        async def gen() -> ChatResponseAsyncGen:
            text, calls = "", {}
            async for chunk in await self._aclient.chat.completions.create(**request, stream=True):
                text, delta = _accumulate(chunk, text, calls)
                yield _streamed(text, delta, calls, chunk)

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.chat([ChatMessage(role="user", content=prompt)]).message.content or "")

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=(await self.achat([ChatMessage(role="user", content=prompt)])).message.content or "")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        chunks = self.stream_chat([ChatMessage(role="user", content=prompt)])  # called here: the same model call

        def gen() -> CompletionResponseGen:
            for r in chunks:
                yield CompletionResponse(text=r.message.content or "", delta=r.delta)

        return gen()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        chunks = await self.astream_chat([ChatMessage(role="user", content=prompt)])

        async def gen() -> CompletionResponseAsyncGen:
            async for r in chunks:
                yield CompletionResponse(text=r.message.content or "", delta=r.delta)

        return gen()

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: list | None = None,
                                 verbose: bool = False, allow_parallel_tool_calls: bool = False, tool_required: Any = False,
                                 **kwargs: Any) -> dict[str, Any]:
        specs = [{"type": "function", "function": {"name": t.metadata.name, "description": t.metadata.description,
                  "parameters": t.metadata.get_parameters_dict()}} for t in tools]
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(ChatMessage(role="user", content=user_msg) if isinstance(user_msg, str) else user_msg)
        return {"messages": messages, "tools": specs or None, **kwargs}

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any) -> list[ToolSelection]:
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not calls and error_on_no_tool_call:
            raise ValueError("no tool call in the response")
        return [ToolSelection(tool_id=c["id"], tool_name=c["function"]["name"], tool_kwargs=_arguments(c["function"].get("arguments")))
                for c in calls if c.get("function", {}).get("name")]


def _arguments(text: str | None) -> dict:
    try:
        return json.loads(text or "{}")
    except ValueError:  # a stream's partial arguments so far
        return {}


def _accumulate(chunk: Any, text: str, calls: dict) -> tuple[str, str]:
    delta = ""
    for choice in chunk.choices or ():
        delta += choice.delta.content or ""
        for call in choice.delta.tool_calls or ():
            slot = calls.setdefault(call.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            slot["id"] = call.id or slot["id"]
            if call.function is not None:
                slot["function"]["name"] += call.function.name or ""
                slot["function"]["arguments"] += call.function.arguments or ""
    return text + delta, delta


def _streamed(text: str, delta: str, calls: dict, chunk: Any) -> ChatResponse:
    kwargs = {"tool_calls": [calls[i] for i in sorted(calls)]} if calls else {}
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text, additional_kwargs=kwargs), delta=delta, raw=chunk)


class HashEmbedding(BaseEmbedding):
    """The retrieval tests' hashed bag of words (vectors.embed) as a LlamaIndex embedding model; or fixed vectors by text."""

    model_name: str = "hash-embedding"
    vectors: dict[str, list[float]] = {}

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _vector(self, text: str) -> list[float]:
        from vectors import embed

        return list(self.vectors[text]) if text in self.vectors else embed(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)
