"""One small adapter per instrumented library: how to make a call, and how to compare results.

The fault matrix, the concurrency tests and the privacy scans are parametrized over
``LIBRARIES``; a library joins as soon as its instrumentation package is in the repo.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
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


def scrub(value: Any) -> Any:
    """Replace the demo server's counter-based ids, which differ call to call."""
    if isinstance(value, str):
        return _IDS.sub(r"\1#", value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def normal(obj: Any) -> Any:
    """What the user got, comparable across calls: the class the user sees and the content."""
    cls = obj.__class__  # a proxy reports the class of the object it wraps
    name = f"{cls.__module__}.{cls.__qualname__}"
    if hasattr(obj, "model_dump"):
        return name, scrub(obj.model_dump(mode="json"))
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


class Library:
    """Subclasses: ``id``, ``instrumentation``, ``span_name``, the calls, the stage hooks."""

    id: str = ""
    instrumentation: str = ""  # the name users pass to instrument(instrumentations=[...])
    span_name: str = ""
    streams: bool = True
    ok_model: str = ""
    error_model: str = "error-500"

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

    def accumulator(self) -> type | None:
        """The stream accumulator class whose add/apply the fault matrix breaks."""
        return None

    def span(self, error: bool = False) -> str:
        """The name of the call's span."""
        return self.span_name.replace(self.ok_model, self.error_model) if error else self.span_name

    def texts(self, outcome: Outcome) -> str:
        """The answer text, for content scans (best effort)."""
        return repr(outcome.data)

    # ---- shared ------------------------------------------------------------------------

    def available(self) -> bool:
        from micrometrics import registry

        return self.instrumentation in registry.supported() and importlib.util.find_spec(registry.INSTRUMENTATIONS[self.instrumentation][0]) is not None

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

    def translator(self) -> type:
        return self._translators().ChatTranslator

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

    def translator(self) -> type:
        return self._translators().ResponsesTranslator

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

    def translator(self) -> type:
        return self._translators().CompletionsTranslator

    def accumulator(self) -> type:
        return self._translators().CompletionsAccumulator


class OpenAIEmbeddings(_OpenAI):
    id = "openai-embeddings"
    span_name = "embeddings text-embedding-3-small"
    ok_model = "text-embedding-3-small"
    streams = False

    def create(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return client.embeddings.create(model=model, input=[prompt, "zweiter Text"])

    async def acreate(self, client: Any, *, stream: bool, model: str, prompt: str) -> Any:
        return await client.embeddings.create(model=model, input=[prompt, "zweiter Text"])

    def translator(self) -> type:
        return self._translators().EmbeddingsTranslator


ALL: list[Library] = [OpenAIChat(), OpenAIResponses(), OpenAICompletions(), OpenAIEmbeddings()]


def libraries(*, streams: bool | None = None, kinds: Callable[[Library], bool] | None = None) -> list[Library]:
    """The adapters whose instrumentation is in the repo (and whose library is installed)."""
    out = [lib for lib in ALL if lib.available()]
    if streams is not None:
        out = [lib for lib in out if lib.streams == streams or (streams is False)]
    if kinds is not None:
        out = [lib for lib in out if kinds(lib)]
    return out
