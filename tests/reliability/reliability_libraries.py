"""One small adapter per instrumented library: how to make a call, and how to compare results.

The fault matrix, the concurrency tests and the privacy scans are parametrized over
``LIBRARIES``; a library joins as soon as its instrumentation package is in the repo.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

#: The API key every test client sends: it must never reach an exported payload.
API_KEY = "sk-reliability-SECRET-4f1c9a7e"
#: German prompt: the demo server answers it (in German) the same way every time.
PROMPT = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
MODES = ("sync", "async", "sync-stream", "async-stream")

_CLIENTS: dict[tuple, tuple["Library", Any]] = {}
_LOOP: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """One event loop for every async call of the suite, so async clients can be shared."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    return _LOOP


def close_clients() -> None:
    for key, (lib, client) in list(_CLIENTS.items()):
        try:
            if key[2]:
                loop().run_until_complete(lib.aclose(client))
            else:
                lib.close(client)
        except Exception:
            pass
    _CLIENTS.clear()


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None) or getattr(stream, "close", None)
    if close is not None:
        result = close()
        if hasattr(result, "__await__"):
            await result


_IDS = re.compile(r"(demo[-_a-z]*)\d{6}")
_ADDRESSES = re.compile(r" at 0x[0-9a-f]+")  # object reprs in error messages


_DATE_HEADER = re.compile(r"'date': '[^']*'", re.IGNORECASE)


def scrub(value: Any) -> Any:
    """Replace the demo server's counter-based ids, which differ call to call."""
    if isinstance(value, str):
        # An error's text may quote the response headers (cohere), whose Date ticks every second.
        value = _DATE_HEADER.sub("'date': '<date>'", value)
        return _ADDRESSES.sub(" at 0x#", _IDS.sub(r"\1#", value))
    if isinstance(value, bytes):  # e.g. Bedrock's stream chunks: the model's JSON, ids included
        return scrub(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        # HTTP Date headers (google-genai keeps the response headers) tick every second.
        return {k: "<date>" if isinstance(k, str) and k.lower() == "date" else scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def normal(obj: Any) -> Any:
    """What the user got, comparable across calls: the class the user sees and the content."""
    cls = obj.__class__  # a proxy reports the class of the object it wraps
    name = f"{cls.__module__}.{cls.__qualname__}"
    if hasattr(obj, "model_dump"):
        return name, scrub(obj.model_dump(mode="json", warnings=False))
    if isinstance(obj, list) and any(hasattr(x, "model_dump") for x in obj):
        return name, [normal(x) for x in obj]
    if isinstance(obj, (str, int, float, bool, type(None), dict, list, tuple)):
        return name, scrub(obj)
    return name


@dataclass(frozen=True)
class Outcome:
    """A call's result as a user sees it: a value (or the stream's items), or an exception."""

    kind: str  # "value" | "stream" | "error"
    data: Any

    @staticmethod
    def of_error(exc: BaseException) -> "Outcome":
        return Outcome("error", (type(exc), scrub(str(exc)), getattr(exc, "status_code", None), scrub(getattr(exc, "body", None))))


class Unbuildable(Exception):
    """The library itself rejects this data: the application sees the library's error, we see nothing."""


def _openai_build(type_: Any, data: Any) -> Any:
    from openai._models import construct_type

    return construct_type(type_=type_, value=data)  # lenient: wrong types pass through, as from the wire


def _anthropic_build(type_: Any, data: Any) -> Any:
    from anthropic._models import construct_type

    return construct_type(type_=type_, value=data)


class Library:
    """Subclasses: ``id``, ``instrumentation``, ``span_name``, the calls, the stage hooks."""

    id: str = ""
    instrumentation: str = ""  # the name users pass to instrument(instrumentations=[...])
    span_name: str = ""
    streams: bool = True
    ok_model: str = ""
    error_model: str = "error-500"
    #: Answers come from the demo server (so malformed ones can be scripted).
    http: bool = True
    #: ``create(stream=True)`` returns the stream itself (not a helper's manager).
    plain_create: bool = True
    #: The request carries the prompt (or query) as text; False: a vector.
    text_request: bool = True
    #: Content capture exports its content; False: the conventions define no content attribute (embeddings).
    exports_content: bool = True
    #: The modes this library has (streams add "sync-stream" and "async-stream").
    modes: tuple[str, ...] = ("sync", "async")
    #: The built-in metric (class name) that evaluates its calls by default; None: none does.
    evaluated_by: str | None = "LanguageMatch"
    #: Top-level modules whose exceptions are the library's own (and its HTTP stack's).
    own_modules: tuple[str, ...] = ("httpx", "httpcore", "httpx2", "httpcore2")
    #: The library raises on a stream event it cannot parse (False: it skips the event, as cohere does).
    raises_on_broken_events: bool = True

    # ---- to override -------------------------------------------------------------------

    def client(self, server: Any, aio: bool) -> Any:
        raise NotImplementedError

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        raise NotImplementedError

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        raise NotImplementedError

    def close(self, client: Any) -> None:
        client.close()

    async def aclose(self, client: Any) -> None:
        await client.close()

    def translator(self) -> type:
        """The translator class whose request/response the fault matrix breaks."""
        raise NotImplementedError

    def make_translator(self, stream: bool) -> Any:
        """The translator instance a (streamed or plain) call of this adapter goes through."""
        return self.translator()()

    def accumulator(self) -> type | None:
        """The stream accumulator class whose add/apply the fault matrix breaks."""
        return None

    def stream_prefix(self) -> list[Any]:
        """A few valid stream events (as DemoServer.enqueue(sse=...) takes them)."""
        return []

    def broken_stream(self, breakage: str) -> list[Any]:
        """The valid prefix, then an event the library cannot parse ("garbage" or "truncated-json")."""
        prefix = self.stream_prefix()
        bad = "{not json" if breakage == "garbage" else json.dumps(prefix[0])[:-7]
        return [*prefix, bad]

    def malformed_bodies(self) -> list[Any]:
        """Non-stream JSON bodies with missing, extra and wrongly typed fields."""
        return [{}, {"unexpected": True}, [], "text", 42, None]

    def from_wire(self, kind: str, data: Any) -> Any:
        """What the library hands the application for this JSON (``kind``: "response" or "chunk"),
        built the way the library builds it; raises ``Unbuildable`` if the library would raise itself."""
        return data

    def span(self, error: bool = False) -> str:
        """The name of the call's span."""
        return self.span_name.replace(self.ok_model, self.error_model) if error else self.span_name

    def texts(self, outcome: Outcome) -> str:
        """The answer text, for content scans (best effort)."""
        return repr(outcome.data)

    # ---- shared ------------------------------------------------------------------------

    def all_modes(self) -> tuple[str, ...]:
        return (*self.modes, *(f"{m}-stream" for m in self.modes)) if self.streams else self.modes

    def runs(self, mode: str) -> bool:
        """Whether ``run(mode)`` makes a call: the library has the mode, or (a helper that always streams) its flavour."""
        return mode in self.all_modes() or (not mode.endswith("stream") and any(m.startswith(mode) for m in self.all_modes()))

    def available(self) -> bool:
        from micrometrics import registry

        return self.instrumentation in registry.supported() and importlib.util.find_spec(registry.library(self.instrumentation)) is not None

    def shared_client(self, server: Any, aio: bool) -> Any:
        """One client per library, server and flavour (clients are costly to build: TLS context)."""
        key = (type(self).__name__, id(server), aio, os.getpid())
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = (self, self.client(server, aio))
        return client[1]

    def run(self, server: Any, mode: str, *, error: bool = False, prompt: str = PROMPT, take: int | None = None) -> Outcome:
        """One call as an application makes it; ``take``: stop a stream after that many items."""
        if mode.startswith("async"):
            return loop().run_until_complete(self.arun(server, mode, error=error, prompt=prompt, take=take))
        stream = mode.endswith("stream")
        client = self.shared_client(server, aio=False)
        model = self.error_model if error else self.ok_model
        try:
            response = self.create(client, stream=stream, model=model, prompt=prompt)
            if not stream:
                return Outcome("value", normal(response))
            items = []
            for item in response:
                items.append(normal(item))
                if take is not None and len(items) >= take:
                    break
            if take is not None:
                response.close()
            return Outcome("stream", (normal(response), items))
        except Exception as exc:
            return Outcome.of_error(exc)

    async def arun(self, server: Any, mode: str, *, error: bool = False, prompt: str = PROMPT, take: int | None = None) -> Outcome:
        stream = mode.endswith("stream")
        client = self.shared_client(server, aio=True)
        model = self.error_model if error else self.ok_model
        try:
            response = await self.acreate(client, stream=stream, model=model, prompt=prompt)
            if not stream:
                return Outcome("value", normal(response))
            items = []
            async for item in response:
                items.append(normal(item))
                if take is not None and len(items) >= take:
                    break
            if take is not None:
                await _aclose(response)
            return Outcome("stream", (normal(response), items))
        except Exception as exc:
            return Outcome.of_error(exc)

    def __repr__(self) -> str:
        return self.id


# ---- openai ------------------------------------------------------------------------------


class _OpenAI(Library):
    instrumentation = "openai"
    own_modules = ("openai", *Library.own_modules)

    def client(self, server: Any, aio: bool) -> Any:
        import openai

        cls = openai.AsyncOpenAI if aio else openai.OpenAI
        return cls(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.openai.translators")


class OpenAIChat(_OpenAI):
    id = "openai-chat"
    span_name = "chat gpt-4o-mini"
    ok_model = "gpt-4o-mini"

    def _kwargs(self, stream: bool, model: str, prompt: str) -> dict:
        kw: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        if stream:
            kw.update(stream=True, stream_options={"include_usage": True})
        return kw

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.chat.completions.create(**self._kwargs(stream, model, prompt))

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.chat.completions.create(**self._kwargs(stream, model, prompt))

    def stream_prefix(self) -> list[Any]:
        chunk = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
        return [
            {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hallo"}, "finish_reason": None}]},
            {**chunk, "choices": [{"index": 0, "delta": {"content": " und"}, "finish_reason": None}]},
        ]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"choices": None, "usage": None},
            {"id": 5, "model": ["x"], "choices": "not a list", "usage": {"prompt_tokens": "many", "completion_tokens": -3}},
            {"choices": [None, 3, {"message": None}, {"message": {"content": 7, "tool_calls": "x"}, "finish_reason": 9, "index": "a"}]},
            {"choices": [{"message": {"content": [{"type": "text", "text": None}, {"type": None}], "tool_calls": [{"function": None}, {}]}}]},
            {"usage": {"prompt_tokens": 1.5, "completion_tokens": True, "prompt_tokens_details": {"cached_tokens": "x"}}},
        ]

    def translator(self) -> type:
        return self._translators().ChatTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        return _openai_build(ChatCompletion if kind == "response" else ChatCompletionChunk, data)

    def accumulator(self) -> type:
        return self._translators().ChatAccumulator


class OpenAIResponses(_OpenAI):
    id = "openai-responses"
    span_name = "chat gpt-4o-mini"
    ok_model = "gpt-4o-mini"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.responses.create(model=model, input=prompt, stream=stream)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.responses.create(model=model, input=prompt, stream=stream)

    def stream_prefix(self) -> list[Any]:
        return [
            {"type": "response.output_text.delta", "delta": "Hallo", "item_id": "msg_x", "output_index": 0, "content_index": 0, "sequence_number": 1},
            {"type": "response.output_text.delta", "delta": " und", "item_id": "msg_x", "output_index": 0, "content_index": 0, "sequence_number": 2},
        ]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"output": None, "status": 3, "usage": {"input_tokens": "x", "output_tokens_details": []}},
            {"output": [None, 1, {"type": "message", "content": "x"}, {"type": "function_call", "arguments": {"a": 1}}], "incomplete_details": 5},
            {"id": {"nested": 1}, "model": 1.5, "output": [{"type": "message", "content": [{"type": "output_text", "text": 12}]}]},
        ]

    def translator(self) -> type:
        return self._translators().ResponsesTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from openai.types.responses import Response, ResponseStreamEvent

        return _openai_build(Response if kind == "response" else ResponseStreamEvent, data)

    def accumulator(self) -> type:
        return self._translators().ResponsesAccumulator


class OpenAICompletions(_OpenAI):
    id = "openai-completions"
    span_name = "text_completion gpt-3.5-turbo-instruct"
    ok_model = "gpt-3.5-turbo-instruct"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.completions.create(model=model, prompt=prompt, stream=stream)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.completions.create(model=model, prompt=prompt, stream=stream)

    def stream_prefix(self) -> list[Any]:
        chunk = {"id": "cmpl-x", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct"}
        return [
            {**chunk, "choices": [{"index": 0, "text": "Hallo", "finish_reason": None, "logprobs": None}]},
            {**chunk, "choices": [{"index": 0, "text": " und", "finish_reason": None, "logprobs": None}]},
        ]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"choices": [{"text": None}, {"text": 5, "finish_reason": []}], "usage": {"prompt_tokens": None}},
            {"choices": {"0": "x"}, "usage": "none"},
        ]

    def translator(self) -> type:
        return self._translators().CompletionsTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from openai.types import Completion

        return _openai_build(Completion, data)

    def accumulator(self) -> type:
        return self._translators().CompletionsAccumulator


class OpenAIEmbeddings(_OpenAI):
    id = "openai-embeddings"
    span_name = "embeddings text-embedding-3-small"
    ok_model = "text-embedding-3-small"
    streams = False
    evaluated_by = None
    exports_content = False

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.embeddings.create(model=model, input=[prompt, "zweiter Text"])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.embeddings.create(model=model, input=[prompt, "zweiter Text"])

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"data": None, "usage": {"prompt_tokens": "x"}},
            {"data": [{"embedding": "base64=="}, None], "model": 3},
            {"data": [None]},
            {"data": "x"},
        ]

    def translator(self) -> type:
        return self._translators().EmbeddingsTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from openai.types import CreateEmbeddingResponse

        return _openai_build(CreateEmbeddingResponse, data)


# ---- anthropic ---------------------------------------------------------------------------


class AnthropicMessages(Library):
    id = "anthropic-messages"
    instrumentation = "anthropic"
    own_modules = ("anthropic", *Library.own_modules)
    span_name = "chat claude-sonnet-5-5"
    ok_model = "claude-sonnet-5-5"

    def client(self, server: Any, aio: bool) -> Any:
        import anthropic

        cls = anthropic.AsyncAnthropic if aio else anthropic.Anthropic
        return cls(base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0)

    def _kwargs(self, stream: bool, model: str, prompt: str) -> dict:
        return {"model": model, "max_tokens": 300, "messages": [{"role": "user", "content": prompt}], "stream": stream}

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.messages.create(**self._kwargs(stream, model, prompt))

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.messages.create(**self._kwargs(stream, model, prompt))

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.anthropic.translators")

    def translator(self) -> type:
        return self._translators().MessagesTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from anthropic.types import Message, RawMessageStreamEvent

        return _anthropic_build(Message if kind == "response" else RawMessageStreamEvent, data)

    def accumulator(self) -> type:
        return self._translators().MessageAccumulator

    def stream_prefix(self) -> list[Any]:
        message = {"id": "msg_x", "type": "message", "role": "assistant", "model": self.ok_model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}
        return [
            ("message_start", {"type": "message_start", "message": message}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hallo"}}),
        ]

    def broken_stream(self, breakage: str) -> list[Any]:
        prefix = self.stream_prefix()
        bad = "{not json" if breakage == "garbage" else json.dumps(prefix[-1][1])[:-7]
        return [*prefix, ("content_block_delta", bad)]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"content": None, "usage": None, "stop_reason": 5},
            {"id": 3, "model": [], "content": "text", "usage": {"input_tokens": "x", "output_tokens": -1, "cache_read_input_tokens": 2.5}},
            {"content": [None, 1, {"type": "text", "text": None}, {"type": "tool_use", "input": "x"}, {"type": "thinking"}, {"type": None}]},
            {"type": "message", "role": "assistant", "content": [{"type": "text", "text": 5}], "stop_reason": "weird", "usage": {}},
        ]


class AnthropicStreamHelper(AnthropicMessages):
    """``with client.messages.stream(...) as stream``: the helper's events and final message."""

    id = "anthropic-stream_helper"
    plain_create = False

    def all_modes(self) -> tuple[str, ...]:
        return ("sync-stream", "async-stream")

    def translator(self) -> type:
        return self._translators().StreamHelperTranslator

    def _kwargs(self, stream: bool, model: str, prompt: str) -> dict:
        return {"model": model, "max_tokens": 300, "messages": [{"role": "user", "content": prompt}]}

    def run(self, server: Any, mode: str, *, error: bool = False, prompt: str = PROMPT, take: int | None = None) -> Outcome:
        if mode.startswith("async"):
            return loop().run_until_complete(self.arun(server, mode, error=error, prompt=prompt, take=take))
        client = self.shared_client(server, aio=False)
        try:
            with client.messages.stream(**self._kwargs(True, self.error_model if error else self.ok_model, prompt)) as stream:
                items = []
                for event in stream:
                    items.append(normal(event))
                    if take is not None and len(items) >= take:
                        break
                final = normal(stream.get_final_message()) if take is None else None
            return Outcome("stream", (items, final))
        except Exception as exc:
            return Outcome.of_error(exc)

    async def arun(self, server: Any, mode: str, *, error: bool = False, prompt: str = PROMPT, take: int | None = None) -> Outcome:
        client = self.shared_client(server, aio=True)
        try:
            async with client.messages.stream(**self._kwargs(True, self.error_model if error else self.ok_model, prompt)) as stream:
                items = []
                async for event in stream:
                    items.append(normal(event))
                    if take is not None and len(items) >= take:
                        break
                final = normal(await stream.get_final_message()) if take is None else None
            return Outcome("stream", (items, final))
        except Exception as exc:
            return Outcome.of_error(exc)


# ---- google-genai -----------------------------------------------------------------------


class _Google(Library):
    instrumentation = "google_genai"
    own_modules = ("google", "aiohttp", "json", "pydantic", "pydantic_core", *Library.own_modules)

    def client(self, server: Any, aio: bool) -> Any:
        from google import genai

        # A genai.Client closes its connections when collected: the same object serves .aio.
        return genai.Client(api_key=API_KEY, http_options={"base_url": server.google_base_url})

    def close(self, client: Any) -> None:
        client.close()

    async def aclose(self, client: Any) -> None:
        await client.aio.aclose()

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.google_genai.translators")


class GoogleGenerateContent(_Google):
    id = "google_genai-generate_content"
    span_name = "generate_content gemini-2.0-flash"
    ok_model = "gemini-2.0-flash"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        if stream:
            return client.models.generate_content_stream(model=model, contents=prompt)
        return client.models.generate_content(model=model, contents=prompt)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        if stream:
            return await client.aio.models.generate_content_stream(model=model, contents=prompt)
        return await client.aio.models.generate_content(model=model, contents=prompt)

    def translator(self) -> type:
        return self._translators().GenerateContentTranslator

    def make_translator(self, stream: bool) -> Any:
        return self.translator()(streams=stream)

    def from_wire(self, kind: str, data: Any) -> Any:
        from google.genai import types

        try:  # google-genai validates what it receives: invalid data is its own error
            return types.GenerateContentResponse._from_response(response=data, kwargs={})
        except Exception as exc:
            raise Unbuildable from exc

    def accumulator(self) -> type:
        return self._translators().ContentAccumulator

    def stream_prefix(self) -> list[Any]:
        def chunk(text: str) -> dict:
            return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
                    "modelVersion": "gemini-2.0-flash-001", "responseId": "resp-x"}

        return [chunk("Hallo"), chunk(" und")]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"candidates": None, "usageMetadata": None},
            {"candidates": [{"content": None, "finishReason": 5}], "usageMetadata": {"promptTokenCount": "x", "candidatesTokenCount": -1}},
            {"candidates": [{"content": {"parts": [None, {"text": None}, {"functionCall": {"name": None, "args": "x"}}, {}]}}]},
            {"candidates": "x", "modelVersion": 3, "responseId": ["a"]},
        ]


class GoogleEmbeddings(_Google):
    id = "google_genai-embeddings"
    span_name = "embeddings text-embedding-004"
    ok_model = "text-embedding-004"
    streams = False
    evaluated_by = None
    exports_content = False

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.models.embed_content(model=model, contents=[prompt, "zweiter Text"])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.aio.models.embed_content(model=model, contents=[prompt, "zweiter Text"])

    def translator(self) -> type:
        return self._translators().EmbedContentTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from google.genai import types

        try:
            return types.EmbedContentResponse._from_response(response=data, kwargs={})
        except Exception as exc:
            raise Unbuildable from exc

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"embeddings": None},
            {"embeddings": [{"values": "x"}, None, {"values": [1, "a"]}], "metadata": 5},
            {"embeddings": "x"},
        ]


# ---- amazon bedrock (boto3) -------------------------------------------------------------


class _Bedrock(Library):
    instrumentation = "bedrock"
    # builtins: urllib3 reading a stream after botocore closed it raises AttributeError
    own_modules = ("botocore", "boto3", "urllib3", "builtins")
    modes = ("sync",)  # boto3 has no async client
    ok_model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    span_name = f"chat {ok_model}"

    def client(self, server: Any, aio: bool) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("bedrock-runtime", endpoint_url=server.base_url, region_name="us-east-1", aws_access_key_id="AKIDRELIABILITY",
                            aws_secret_access_key=API_KEY, config=Config(retries={"total_max_attempts": 1}))

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.bedrock.translators")

    def broken_stream(self, breakage: str) -> list[Any]:
        """The valid prefix, then bytes that fail botocore's checksum, or an exception event (Bedrock's mid-stream error)."""
        bad = b"\x00\x00\x00\x20garbage-garbage-garbage-garbage!" if breakage == "garbage" else \
            ("modelStreamErrorException", {"message": "The model stopped mid-stream.", "originalStatusCode": 500})
        return [*self.stream_prefix(), bad]


class EventReader:
    """How an app reads a Bedrock event stream (``for event in response["stream"]``, then ``close()``):
    botocore's EventStream is iterable, not an iterator, and no context manager."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.events = iter(stream)

    def __iter__(self) -> "EventReader":
        return self

    def __next__(self) -> Any:
        return next(self.events)

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "EventReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _read_json(body: Any) -> Any:
    """An InvokeModel body as the app reads it: the model's JSON, or its text when it is none."""
    raw = body.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _without_metadata(response: Any) -> Any:
    """The response minus botocore's HTTP metadata (request ids, dates): what the app reads as the answer."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"} if isinstance(response, dict) else response


class BedrockConverse(_Bedrock):
    id = "bedrock-converse"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        kwargs = {"modelId": model, "messages": [{"role": "user", "content": [{"text": prompt}]}], "inferenceConfig": {"maxTokens": 300}}
        return EventReader(client.converse_stream(**kwargs)["stream"]) if stream else _without_metadata(client.converse(**kwargs))

    def translator(self) -> type:
        return self._translators().ConverseTranslator

    def accumulator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.bedrock.converse").EventFold

    def stream_prefix(self) -> list[Any]:
        return [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "Hallo"}, "contentBlockIndex": 0}},
            {"contentBlockDelta": {"delta": {"text": " und"}, "contentBlockIndex": 0}},
        ]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"output": None, "stopReason": 5, "usage": {"inputTokens": "x", "outputTokens": -1}},
            {"output": {"message": {"content": [None, 1, {"text": None}, {"toolUse": "x"}, {"reasoningContent": []}, {}]}}},
            {"output": {"message": {"role": "assistant", "content": "text"}}, "stopReason": "weird", "usage": {"cacheReadInputTokens": 2.5}},
        ]


class BedrockInvoke(_Bedrock):
    """InvokeModel with the Anthropic Messages body: the app reads (and parses) the body itself."""

    id = "bedrock-invoke_model"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "messages": [{"role": "user", "content": prompt}]})
        if stream:
            return EventReader(client.invoke_model_with_response_stream(modelId=model, body=body)["body"])
        response = client.invoke_model(modelId=model, body=body)
        return {**_without_metadata(response), "body": _read_json(response["body"])}

    def translator(self) -> type:
        return self._translators().InvokeModelTranslator

    def accumulator(self) -> type:
        return self._translators().ChunkAccumulator

    def stream_prefix(self) -> list[Any]:
        message = {"id": "msg_bdrk_x", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022", "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}
        return [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hallo"}},
        ]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"content": None, "usage": None, "stop_reason": 5},
            {"id": 3, "model": [], "content": "text", "usage": {"input_tokens": "x", "output_tokens": -1}},
            {"content": [None, 1, {"type": "text", "text": None}, {"type": "tool_use", "input": "x"}, {"type": None}]},
        ]


class BedrockEmbeddings(_Bedrock):
    exports_content = False  # the conventions define no content attribute for embeddings
    id = "bedrock-embeddings"
    ok_model = "amazon.titan-embed-text-v2:0"
    span_name = f"embeddings {ok_model}"
    streams = False
    evaluated_by = None

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        response = client.invoke_model(modelId=model, body=json.dumps({"inputText": prompt, "dimensions": 8}))
        return {**_without_metadata(response), "body": _read_json(response["body"])}

    def translator(self) -> type:
        return self._translators().InvokeModelTranslator

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [{"embedding": "x", "inputTextTokenCount": -2}, {"embedding": [None, "a"], "embeddingsByType": 5}]


# ---- mistralai ---------------------------------------------------------------------------


def _mistral_build(type_: Any, data: Any, required: dict) -> Any:
    """As mistralai reads a body (validated: invalid data is its own error), from JSON holding the fields
    the server always sends (``required``, where the fuzzed JSON has none)."""
    from mistralai.client.utils.serializers import unmarshal

    try:
        return unmarshal({**required, **data} if isinstance(data, dict) else data, type_, coerce_iterables=False)
    except Exception as exc:
        raise Unbuildable from exc


_MISTRAL_REQUIRED = {"id": "x", "object": "chat.completion", "model": "m", "created": 1, "usage": {}, "choices": []}


class _Mistral(Library):
    instrumentation = "mistral"
    own_modules = ("mistralai", *Library.own_modules)

    def client(self, server: Any, aio: bool) -> Any:
        from mistralai.client import Mistral

        return Mistral(api_key=API_KEY, server_url=server.mistral_base_url)

    def close(self, client: Any) -> None:
        pass

    async def aclose(self, client: Any) -> None:
        pass

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.mistral.translators")


class MistralChat(_Mistral):
    id = "mistral-chat"
    span_name = "chat mistral-small-latest"
    ok_model = "mistral-small-latest"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        method = client.chat.stream if stream else client.chat.complete
        return method(model=model, messages=[{"role": "user", "content": prompt}])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        method = client.chat.stream_async if stream else client.chat.complete_async
        return await method(model=model, messages=[{"role": "user", "content": prompt}])

    def translator(self) -> type:
        return self._translators().ChatTranslator

    def make_translator(self, stream: bool) -> Any:
        return self.translator()(streams=stream)

    def accumulator(self) -> type:
        return self._translators().ChatAccumulator

    def from_wire(self, kind: str, data: Any) -> Any:
        from mistralai.client import models

        if kind == "response":
            return _mistral_build(models.ChatCompletionResponse, data, _MISTRAL_REQUIRED)
        # Each SSE event's data is the chunk.
        chunk = {"id": "x", "model": "m", "choices": [], **data} if isinstance(data, dict) else data
        return _mistral_build(models.CompletionEvent, {"data": chunk}, {})

    def stream_prefix(self) -> list[Any]:
        chunk = {"id": "cmpl-x", "object": "chat.completion.chunk", "created": 1, "model": self.ok_model}
        return [
            {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hallo"}, "finish_reason": None}]},
            {**chunk, "choices": [{"index": 0, "delta": {"content": " und"}, "finish_reason": None}]},
        ]

    def malformed_bodies(self) -> list[Any]:
        chunk = {"id": "cmpl-x", "object": "chat.completion", "created": 1, "model": self.ok_model}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return super().malformed_bodies() + [
            {**chunk, "usage": usage, "choices": []},
            {**chunk, "usage": usage, "choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "weird"}]},
            {**chunk, "usage": usage, "choices": [{"index": 0, "message": {"role": "assistant", "content": [{"type": "thinking", "thinking": []}]}, "finish_reason": "stop"}]},
        ]


class MistralEmbeddings(_Mistral):
    exports_content = False  # the conventions define no content attribute for embeddings
    id = "mistral-embeddings"
    span_name = "embeddings mistral-embed"
    ok_model = "mistral-embed"
    streams = False
    evaluated_by = None

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.embeddings.create(model=model, inputs=[prompt, "zweiter Text"])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.embeddings.create_async(model=model, inputs=[prompt, "zweiter Text"])

    def translator(self) -> type:
        return self._translators().EmbeddingsTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from mistralai.client import models

        return _mistral_build(models.EmbeddingResponse, data, {**_MISTRAL_REQUIRED, "object": "list", "data": []})


# ---- cohere (v2) ---------------------------------------------------------------------------


def _cohere_build(type_: Any, data: Any) -> Any:
    from cohere.core.unchecked_base_model import construct_type

    try:  # lenient, as the SDK reads its responses; what it cannot build at all is its own error
        return construct_type(type_=type_, object_=data)
    except Exception as exc:
        raise Unbuildable from exc


class _Cohere(Library):
    instrumentation = "cohere"
    own_modules = ("cohere", *Library.own_modules)

    def client(self, server: Any, aio: bool) -> Any:
        import cohere

        cls = cohere.AsyncClientV2 if aio else cohere.ClientV2
        return cls(api_key=API_KEY, base_url=server.cohere_base_url, max_retries=0)

    def close(self, client: Any) -> None:
        pass

    async def aclose(self, client: Any) -> None:
        pass

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.cohere.translators")


class CohereChat(_Cohere):
    id = "cohere-chat"
    span_name = "chat command-a-03-2025"
    ok_model = "command-a-03-2025"
    #: The SDK logs and skips an event it cannot parse: a broken event never raises.
    raises_on_broken_events = False

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        method = client.chat_stream if stream else client.chat
        return method(model=model, messages=[{"role": "user", "content": prompt}])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        if stream:  # an async generator method: not awaited
            return client.chat_stream(model=model, messages=[{"role": "user", "content": prompt}])
        return await client.chat(model=model, messages=[{"role": "user", "content": prompt}])

    def translator(self) -> type:
        return self._translators().ChatTranslator

    def make_translator(self, stream: bool) -> Any:
        return self.translator()(streams=stream)

    def accumulator(self) -> type:
        return self._translators().ChatAccumulator

    def from_wire(self, kind: str, data: Any) -> Any:
        from cohere import V2ChatResponse, V2ChatStreamResponse

        return _cohere_build(V2ChatResponse if kind == "response" else V2ChatStreamResponse, data)

    def stream_prefix(self) -> list[Any]:
        return [
            ("message-start", {"type": "message-start", "id": "co-x", "delta": {"message": {"role": "assistant"}}}),
            ("content-start", {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hallo"}}}}),
        ]

    def broken_stream(self, breakage: str) -> list[Any]:
        prefix = self.stream_prefix()
        bad = "{not json" if breakage == "garbage" else json.dumps(prefix[-1][1])[:-7]
        return [*prefix, ("content-delta", bad), ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " und"}}}})]

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"id": 5, "finish_reason": None, "message": None, "usage": {"tokens": {"input_tokens": "x"}, "billed_units": []}},
            {"finish_reason": "COMPLETE", "message": {"content": "text", "tool_calls": [None, {"function": None}]}, "usage": {"cached_tokens": -1.5}},
            {"message": {"content": [None, {"type": "text", "text": None}, {"type": "thinking"}, {"type": 3}], "tool_plan": 7}},
        ]


class CohereEmbed(_Cohere):
    exports_content = False  # the conventions define no content attribute for embeddings
    id = "cohere-embed"
    span_name = "embeddings embed-v4.0"
    ok_model = "embed-v4.0"
    streams = False
    evaluated_by = None

    def _kwargs(self, model: str, prompt: str) -> dict:
        return dict(model=model, texts=[prompt, "zweiter Text"], input_type="search_document", embedding_types=["float"])

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.embed(**self._kwargs(model, prompt))

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.embed(**self._kwargs(model, prompt))

    def translator(self) -> type:
        return self._translators().EmbedTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from cohere import EmbedByTypeResponse

        return _cohere_build(EmbedByTypeResponse, data)

    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"id": "x", "embeddings": None, "meta": {"billed_units": {"input_tokens": "x"}}},
            {"id": "x", "embeddings": {"float": [None, "a"], "int8": "x"}, "meta": None},
        ]


# ---- ollama --------------------------------------------------------------------------------


def _ollama_build(type_: Any, data: Any, required: dict) -> Any:
    """``cls(**json)``, as the SDK builds its responses (validated: invalid data is its own error), from JSON
    holding the fields the server always sends (``required``, where the fuzzed JSON has none)."""
    if not isinstance(data, dict):
        raise Unbuildable(type(data).__name__)
    try:
        return type_(**{**required, **data})
    except Exception as exc:
        raise Unbuildable from exc


def _ndjson(lines: list[Any]) -> list[bytes]:
    """Ollama streams newline-delimited JSON: each event as DemoServer.enqueue(sse=...) sends bytes as they are."""
    return [(line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines]


class _Ollama(Library):
    instrumentation = "ollama"
    own_modules = ("ollama", "json", "pydantic", "pydantic_core", *Library.own_modules)

    def client(self, server: Any, aio: bool) -> Any:
        import ollama

        cls = ollama.AsyncClient if aio else ollama.Client
        return cls(host=server.ollama_host, headers={"authorization": f"Bearer {API_KEY}"})

    def close(self, client: Any) -> None:
        client._client.close()

    async def aclose(self, client: Any) -> None:
        await client._client.aclose()

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.ollama.translators")

    def accumulator(self) -> type:
        return self._translators().Accumulator

    def broken_stream(self, breakage: str) -> list[Any]:
        prefix = self.stream_prefix()
        bad = b"{not json\n" if breakage == "garbage" else prefix[0][:-8] + b"\n"
        return [*prefix, bad]


class OllamaChat(_Ollama):
    id = "ollama-chat"
    span_name = "chat llama3.2"
    ok_model = "llama3.2"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.chat(model, [{"role": "user", "content": prompt}], stream=stream)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.chat(model, [{"role": "user", "content": prompt}], stream=stream)

    def translator(self) -> type:
        return self._translators().ChatTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from ollama import ChatResponse

        return _ollama_build(ChatResponse, data, {"message": {"role": "assistant"}})

    def stream_prefix(self) -> list[Any]:
        head = {"model": self.ok_model, "created_at": "2026-01-01T00:00:00Z", "done": False}
        return _ndjson([{**head, "message": {"role": "assistant", "content": "Hallo"}},
                        {**head, "message": {"role": "assistant", "content": " und"}}])


    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [
            {"model": 5, "message": {"role": "assistant", "content": None, "tool_calls": None}, "done": True, "done_reason": None},
            {"message": {"role": "assistant", "thinking": "x"}, "prompt_eval_count": -3, "eval_count": None},
        ]


class OllamaGenerate(_Ollama):
    id = "ollama-generate"
    span_name = "text_completion llama3.2"
    ok_model = "llama3.2"

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.generate(model, prompt, stream=stream)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.generate(model, prompt, stream=stream)

    def translator(self) -> type:
        return self._translators().GenerateTranslator

    def from_wire(self, kind: str, data: Any) -> Any:
        from ollama import GenerateResponse

        return _ollama_build(GenerateResponse, data, {})

    def stream_prefix(self) -> list[Any]:
        head = {"model": self.ok_model, "created_at": "2026-01-01T00:00:00Z", "done": False}
        return _ndjson([{**head, "response": "Hallo"}, {**head, "response": " und"}])


    def malformed_bodies(self) -> list[Any]:
        return super().malformed_bodies() + [{"model": None, "response": None, "done": "yes", "context": "x"}]


class OllamaEmbed(_Ollama):
    exports_content = False  # the conventions define no content attribute for embeddings
    id = "ollama-embed"
    span_name = "embeddings nomic-embed-text"
    ok_model = "nomic-embed-text"
    streams = False
    evaluated_by = None

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.embed(model, [prompt, "zweiter Text"])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.embed(model, [prompt, "zweiter Text"])

    def translator(self) -> type:
        return self._translators().EmbedTranslator

    def accumulator(self) -> type | None:
        return None

    def from_wire(self, kind: str, data: Any) -> Any:
        from ollama import EmbedResponse

        return _ollama_build(EmbedResponse, data, {"embeddings": []})


# ---- groq ------------------------------------------------------------------------------------


class GroqChat(OpenAIChat):
    """Groq's SDK speaks the OpenAI wire format: the OpenAI chat adapter, with Groq's client and translators."""

    id = "groq-chat"
    instrumentation = "groq"
    own_modules = ("groq", *Library.own_modules)
    span_name = "chat llama-3.3-70b-versatile"
    ok_model = "llama-3.3-70b-versatile"

    def client(self, server: Any, aio: bool) -> Any:
        import groq

        cls = groq.AsyncGroq if aio else groq.Groq
        return cls(base_url=server.groq_base_url, api_key=API_KEY, max_retries=0)

    def _kwargs(self, stream: bool, model: str, prompt: str) -> dict:
        kw: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        if stream:
            kw["stream"] = True  # no stream_options: Groq streams the usage in x_groq
        return kw

    def _translators(self) -> Any:
        return importlib.import_module("micrometrics_instrumentation.groq.translators")

    def from_wire(self, kind: str, data: Any) -> Any:
        from groq._models import construct_type
        from groq.types.chat import ChatCompletion, ChatCompletionChunk

        return construct_type(type_=ChatCompletion if kind == "response" else ChatCompletionChunk, value=data)


# ---- retrieval ---------------------------------------------------------------------------

#: A tiny knowledge base (German support answers) for the retrieval adapters.
CORPUS = {
    "versand-de": "Der Versand nach Deutschland dauert zwei bis drei Werktage und ist ab 50 Euro kostenlos.",
    "retoure": "Eine Retoure ist innerhalb von 30 Tagen kostenlos, das Etikett liegt der Bestellung bei.",
    "zahlung": "Wir akzeptieren Kreditkarte, PayPal und Rechnung; die Zahlung wird beim Versand belastet.",
    "buero": "Unser Büro in Berlin ist montags bis freitags von 9 bis 17 Uhr erreichbar.",
}
QUERY = "Wie lange dauert der Versand nach Deutschland?"
DIMENSION = 64


def embed(text: str) -> list[float]:
    """A hashed bag of words, L2-normalised: deterministic, no model."""
    import hashlib
    import math

    vector = [0.0] * DIMENSION
    for word in re.findall(r"\w+", text.lower()):
        vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % DIMENSION] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class _Retrieval(Library):
    streams = False
    http = False
    modes = ("sync", "async")
    ok_model = "kb"
    error_model = "missing"
    evaluated_by = "RetrievalPrecision"

    def close(self, client: Any) -> None:
        close = getattr(client, "close", None)
        if close is not None:
            close()

    async def aclose(self, client: Any) -> None:
        close = getattr(client, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result

    def malformed_bodies(self) -> list[Any]:
        return []


class ChromaQuery(_Retrieval):
    id = "chromadb-query"
    instrumentation = "chromadb"
    own_modules = ("chromadb", "builtins")
    modes = ("sync",)  # the async client needs a Chroma server: tests/retrieval covers it

    def __init__(self) -> None:
        self.collection = f"kb_{os.getpid()}"
        self.span_name = f"retrieval {self.collection}"

    def client(self, server: Any, aio: bool) -> Any:
        import chromadb
        from chromadb import Documents, EmbeddingFunction, Embeddings

        class HashEmbedding(EmbeddingFunction[Documents]):
            def __init__(self) -> None:
                pass

            def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - chromadb's name
                return [embed(t) for t in input]

            @staticmethod
            def name() -> str:
                return "micrometrics-reliability-hash"

            def get_config(self) -> dict:
                return {}

            @staticmethod
            def build_from_config(config: dict) -> "HashEmbedding":
                return HashEmbedding()

        client = chromadb.EphemeralClient()
        kb = client.get_or_create_collection(self.collection, embedding_function=HashEmbedding())
        if kb.count() == 0:
            kb.add(ids=list(CORPUS), documents=list(CORPUS.values()))
        return kb

    def close(self, client: Any) -> None:
        pass

    def span(self, error: bool = False) -> str:
        return self.span_name

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        if model == self.error_model:
            return client.query(query_texts=[prompt], n_results=2, where={"$bogus": 1})
        return client.query(query_texts=[prompt], n_results=2)

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.chromadb.translators").QueryTranslator


class QdrantQuery(_Retrieval):
    id = "qdrant-query_points"
    instrumentation = "qdrant"
    own_modules = ("qdrant_client", "builtins")
    span_name = "retrieval kb"
    text_request = False

    def span(self, error: bool = False) -> str:
        return "retrieval missing" if error else self.span_name

    def client(self, server: Any, aio: bool) -> Any:
        from qdrant_client import AsyncQdrantClient, QdrantClient

        return AsyncQdrantClient(":memory:") if aio else QdrantClient(":memory:")

    def _points(self) -> list[Any]:
        from qdrant_client import models

        return [models.PointStruct(id=i, vector=embed(t), payload={"text": t, "slug": k}) for i, (k, t) in enumerate(CORPUS.items(), 1)]

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        from qdrant_client import models

        if not client.collection_exists("kb"):
            client.create_collection("kb", vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
            client.upsert("kb", points=self._points())
        return client.query_points(model, query=embed(prompt), limit=2)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        from qdrant_client import models

        if not await client.collection_exists("kb"):
            await client.create_collection("kb", vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
            await client.upsert("kb", points=self._points())
        return await client.query_points(model, query=embed(prompt), limit=2)

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.qdrant.translators").QueryPointsTranslator


class LangChainRetriever(_Retrieval):
    id = "langchain-retriever"
    instrumentation = "langchain"
    own_modules = ("langchain_core", "builtins")
    span_name = "retrieval KeywordRetriever"

    def span(self, error: bool = False) -> str:
        return "retrieval BrokenRetriever" if error else self.span_name

    def client(self, server: Any, aio: bool) -> Any:
        from langchain_core.documents import Document as LCDocument
        from langchain_core.retrievers import BaseRetriever

        class KeywordRetriever(BaseRetriever):
            k: int = 2

            def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
                terms = set(re.findall(r"\w+", query.lower()))
                scored = []
                for slug, text in CORPUS.items():
                    overlap = len(terms & set(re.findall(r"\w+", text.lower())))
                    if overlap:
                        scored.append(LCDocument(id=slug, page_content=text, metadata={"score": overlap / max(len(terms), 1)}))
                return sorted(scored, key=lambda d: -d.metadata["score"])[: self.k]

        class BrokenRetriever(BaseRetriever):
            def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
                raise LookupError("index offline")

        return {"kb": KeywordRetriever(), "missing": BrokenRetriever()}

    def close(self, client: Any) -> None:
        pass

    async def aclose(self, client: Any) -> None:
        pass

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client[model].invoke(prompt)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client[model].ainvoke(prompt)

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.langchain.translators").RetrieverTranslator



def _temporary(name: str) -> str:
    """A per-process scratch path for an embedded store (the suite may run in several processes)."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"micrometrics-reliability-{name}-{os.getpid()}")


class MilvusSearch(_Retrieval):
    """pymilvus against the embedded milvus-lite (its local server on loopback)."""

    id = "milvus-search"
    instrumentation = "milvus"
    own_modules = ("pymilvus", "grpc", "builtins")
    span_name = "retrieval kb"
    text_request = False

    def span(self, error: bool = False) -> str:
        return "retrieval missing" if error else self.span_name

    def _uri(self) -> str:
        uri = _temporary("milvus") + ".db"
        if not os.path.exists(uri):
            from pymilvus import MilvusClient

            setup = MilvusClient(uri)
            setup.create_collection("kb", dimension=DIMENSION, metric_type="COSINE")
            setup.insert("kb", [{"id": i, "vector": embed(t), "text": t, "slug": k} for i, (k, t) in enumerate(CORPUS.items(), 1)])
            setup.close()
        return uri

    def client(self, server: Any, aio: bool) -> Any:
        from pymilvus import AsyncMilvusClient, MilvusClient

        return AsyncMilvusClient(self._uri()) if aio else MilvusClient(self._uri())

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        client.load_collection("kb")  # a reopened milvus-lite collection is released
        return client.search(model, [embed(prompt)], limit=2, output_fields=["text"])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        await client.load_collection("kb")
        return await client.search(model, [embed(prompt)], limit=2, output_fields=["text"])

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.milvus.translators").SearchTranslator


class LanceDBSearch(_Retrieval):
    """An embedded LanceDB table; the error call is a query whose filter names no column (it fails on execution)."""

    id = "lancedb-vector_search"
    instrumentation = "lancedb"
    own_modules = ("lancedb", "lance", "pyarrow", "builtins")
    span_name = "retrieval kb"
    text_request = False

    def __init__(self) -> None:
        self._async_tables: dict[int, Any] = {}

    def span(self, error: bool = False) -> str:
        return self.span_name

    def _path(self) -> str:
        import lancedb

        path = _temporary("lancedb")
        db = lancedb.connect(path)
        if "kb" not in db.table_names():
            db.create_table("kb", data=[{"id": k, "vector": embed(t), "text": t} for k, t in CORPUS.items()])
        return path

    def client(self, server: Any, aio: bool) -> Any:
        import lancedb

        return self._path() if aio else lancedb.connect(self._path()).open_table("kb")

    def close(self, client: Any) -> None:
        pass

    async def aclose(self, client: Any) -> None:
        pass

    def _finish(self, query: Any, model: str) -> Any:
        query = query.distance_type("cosine").limit(2)
        return query.where("no_such_column > 1") if model == self.error_model else query

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return self._finish(client.search(embed(prompt)), model).to_list()

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        import lancedb

        table = self._async_tables.get(id(client))
        if table is None:
            table = self._async_tables[id(client)] = await (await lancedb.connect_async(client)).open_table("kb")
        return await self._finish(table.vector_search(embed(prompt)), model).to_list()

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.lancedb.translators").VectorQueryTranslator


class _StoreOnLoopback(_Retrieval):
    """A remote store's real client against the loopback server speaking its wire format (tests/retrieval/store_servers.py)."""

    flavor = ""
    text_request = False
    _servers: dict[str, Any] = {}

    def server(self) -> Any:
        import sys

        retrieval = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "retrieval")
        if retrieval not in sys.path:
            sys.path.insert(0, retrieval)
        from store_servers import StoreServer

        key = f"{self.flavor}-{os.getpid()}"
        if key not in self._servers:
            self._servers[key] = StoreServer(self.flavor, documents=[(k, t, embed(t)) for k, t in CORPUS.items()])
        return self._servers[key]


class ElasticsearchKnn(_StoreOnLoopback):
    id = "elasticsearch-knn"
    instrumentation = "elasticsearch"
    flavor = "elasticsearch"
    own_modules = ("elasticsearch", "elastic_transport", "builtins")
    span_name = "retrieval kb"

    def span(self, error: bool = False) -> str:
        return "retrieval missing-kb" if error else self.span_name

    def client(self, server: Any, aio: bool) -> Any:
        from elasticsearch import AsyncElasticsearch, Elasticsearch

        return (AsyncElasticsearch if aio else Elasticsearch)(self.server().url, max_retries=0)

    def _kwargs(self, model: str, prompt: str) -> dict:
        return {"index": "missing-kb" if model == self.error_model else "kb",
                "knn": {"field": "vector", "query_vector": embed(prompt), "k": 2, "num_candidates": 10}}

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.search(**self._kwargs(model, prompt)).body

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return (await client.search(**self._kwargs(model, prompt))).body

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.elasticsearch.translators").SearchTranslator


class OpenSearchKnn(ElasticsearchKnn):
    id = "opensearch-knn"
    instrumentation = "opensearch"
    flavor = "opensearch"
    own_modules = ("opensearchpy", "urllib3", "aiohttp", "builtins")

    def client(self, server: Any, aio: bool) -> Any:
        from opensearchpy import AsyncOpenSearch, OpenSearch

        return (AsyncOpenSearch if aio else OpenSearch)(hosts=[{"host": "127.0.0.1", "port": self.server().port}], max_retries=0)

    def _kwargs(self, model: str, prompt: str) -> dict:
        return {"index": "missing-kb" if model == self.error_model else "kb",
                "body": {"size": 2, "query": {"knn": {"vector": {"vector": embed(prompt), "k": 2}}}}}

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.search(**self._kwargs(model, prompt))

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.search(**self._kwargs(model, prompt))

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.opensearch.translators").SearchTranslator


class PineconeQuery(_StoreOnLoopback):
    """The REST data plane; the error call is a top_k the client refuses before sending (PineconeValueError)."""

    id = "pinecone-query"
    instrumentation = "pinecone"
    flavor = "pinecone"
    own_modules = ("pinecone", "httpx", "httpcore", "msgspec", "builtins")
    span_name = "retrieval 127.0.0.1"

    def client(self, server: Any, aio: bool) -> Any:
        from pinecone import AsyncIndex, Index

        return (AsyncIndex if aio else Index)(host=self.server().url, api_key=API_KEY)

    def shared_client(self, server: Any, aio: bool) -> Any:
        # A sync Index binds `query` per instance when it is made (docs/retrieval.md): one made before
        # instrument() is never traced, so each call gets an Index made when it runs, as an application's would.
        if aio:
            return super().shared_client(server, aio)
        key = (type(self).__name__, id(server), aio, os.getpid())
        previous = _CLIENTS.pop(key, None)
        if previous is not None:
            previous[1].close()
        client = _CLIENTS[key] = (self, self.client(server, aio))
        return client[1]

    def _kwargs(self, model: str, prompt: str) -> dict:
        return {"vector": embed(prompt), "top_k": 0 if model == self.error_model else 2, "include_metadata": True}

    @staticmethod
    def _seen(response: Any) -> Any:
        return {"matches": [m.to_dict() for m in response.matches], "namespace": response.namespace}

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return self._seen(client.query(**self._kwargs(model, prompt)))

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return self._seen(await client.query(**self._kwargs(model, prompt)))

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.pinecone.translators").QueryTranslator


class LangChainVectorStore(_Retrieval):
    """A LangChain ``VectorStore`` subclass's own searches (sync and async; one store whose search raises)."""

    id = "langchain-vectorstore"
    instrumentation = "langchain"
    own_modules = ("langchain_core", "builtins")
    span_name = "retrieval KeywordStore"

    def span(self, error: bool = False) -> str:
        return "retrieval BrokenStore" if error else self.span_name

    def client(self, server: Any, aio: bool) -> Any:
        from langchain_core.documents import Document as LCDocument
        from langchain_core.vectorstores import VectorStore

        class KeywordStore(VectorStore):
            """Searches that call nothing else: one layer, as the fault matrix counts its failures."""

            def add_texts(self, texts: Any, metadatas: Any = None, **kwargs: Any) -> list[str]:
                return []

            @classmethod
            def from_texts(cls, texts: Any, embedding: Any, metadatas: Any = None, **kwargs: Any) -> "KeywordStore":
                return cls()

            def _search(self, query: str, k: int) -> list[Any]:
                terms = set(re.findall(r"\w+", query.lower()))
                scored = [(len(terms & set(re.findall(r"\w+", t.lower()))), slug, t) for slug, t in CORPUS.items()]
                return [LCDocument(id=slug, page_content=t) for n, slug, t in sorted(scored, key=lambda x: -x[0])[:k] if n]

            def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Any]:
                return self._search(query, k)

            async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Any]:
                return self._search(query, k)

        class BrokenStore(KeywordStore):
            def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Any]:
                raise LookupError("index offline")

            async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Any]:
                raise LookupError("index offline")

        return {"kb": KeywordStore(), "missing": BrokenStore()}

    def close(self, client: Any) -> None:
        pass

    async def aclose(self, client: Any) -> None:
        pass

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client[model].similarity_search(prompt, k=2)

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client[model].asimilarity_search(prompt, k=2)

    def translator(self) -> type:
        return importlib.import_module("micrometrics_instrumentation.langchain.translators").VectorStoreTranslator



ALL: list[Library] = [
    OpenAIChat(), OpenAIResponses(), OpenAICompletions(), OpenAIEmbeddings(),
    AnthropicMessages(), AnthropicStreamHelper(),
    GoogleGenerateContent(), GoogleEmbeddings(),
    BedrockConverse(), BedrockInvoke(), BedrockEmbeddings(),
    MistralChat(), MistralEmbeddings(), CohereChat(), CohereEmbed(), OllamaChat(), OllamaGenerate(), OllamaEmbed(), GroqChat(),
    ChromaQuery(), QdrantQuery(), LangChainRetriever(),
    MilvusSearch(), LanceDBSearch(), ElasticsearchKnn(), OpenSearchKnn(), PineconeQuery(),
    LangChainVectorStore(),
]


def flavours(lib: Library) -> tuple[bool, ...]:
    """The client flavours a library has, as ``aio`` values: sync (False) and, where there is one, async (True)."""
    return tuple(aio for aio in (False, True) if any(m.startswith("async" if aio else "sync") for m in lib.all_modes()))


def libraries(*, streams: bool | None = None, kinds: Callable[[Library], bool] | None = None) -> list[Library]:
    """The adapters whose instrumentation is in the repo (and whose library is installed)."""
    out = [lib for lib in ALL if lib.available()]
    if streams is not None:
        out = [lib for lib in out if lib.streams == streams or (streams is False)]
    if kinds is not None:
        out = [lib for lib in out if kinds(lib)]
    return out
