"""micrometrics instrumentation for Amazon Bedrock through boto3 (``bedrock-runtime``).

botocore builds its client classes at run time, and every operation of every client goes
through ``BaseClient._make_api_call(operation_name, params)``: that one method is wrapped
(when the application imports ``botocore.client``), and only ``bedrock-runtime``'s
``Converse``, ``ConverseStream``, ``InvokeModel`` and ``InvokeModelWithResponseStream``
are traced; every other call goes straight through. Clients made before ``instrument()``
are traced too, and ``uninstrument()`` puts the method back.

What the application gets is botocore's own result:
- ``converse_stream()["stream"]`` and ``invoke_model_with_response_stream()["body"]`` are
  botocore's ``EventStream``, proxied: iterating it, ``close()`` and ``get_initial_response()``
  work as before, and a streaming guard can restart the call before any event reached the
  application.
- ``invoke_model()["body"]`` is read when the call returns (the span's output, usage and the
  guards need it) and handed back as an unread ``StreamingBody`` of the same bytes. A body
  that breaks while being read raises from ``invoke_model()`` instead of from ``read()``.

aiobotocore's async clients override ``_make_api_call`` and are not traced.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Iterable

import wrapt

from micrometrics import internal_errors, runtime
from micrometrics.calls import run_sync
from micrometrics_instrumentation.bedrock.translators import ConverseTranslator, InvokeModelTranslator, read_bodies
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["BedrockInstrumentor"]

_SERVICE = "bedrock-runtime"
#: Streaming operations: the response key that holds the event stream.
_STREAM_KEYS = {"ConverseStream": "stream", "InvokeModelWithResponseStream": "body"}


class EventIterator(wrapt.ObjectProxy):
    """botocore's ``EventStream`` read as an iterator (what the stream proxy calls ``__next__`` on); the rest is the EventStream's."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._self_events = None

    def __iter__(self) -> "EventIterator":
        return self

    def __next__(self) -> Any:
        if self._self_events is None:
            self._self_events = iter(self.__wrapped__)
        return next(self._self_events)


def _service(client: Any) -> Any:
    try:
        return client.meta.service_model.service_name
    except AttributeError:
        return None


def _read_body(response: Any) -> Any:
    """InvokeModel's response with its body read, and an unread ``StreamingBody`` of the same bytes in its place."""
    body = response.get("body") if isinstance(response, dict) else None
    if body is None or not callable(getattr(body, "read", None)):
        return response
    data = body.read()  # the application's own read would raise what this raises: the call fails with it
    try:
        from botocore.response import StreamingBody  # imported by the application already: this runs inside its call

        fresh = StreamingBody(io.BytesIO(data), len(data))
        read_bodies[fresh] = data
        response["body"] = fresh
    except Exception as exc:
        internal_errors.report("response", exc)
        response["body"] = _Unread(data)
    return response


class _Unread(io.BytesIO):
    """The body's bytes, unread, should botocore's StreamingBody be unavailable."""


def _make_api_call(translators: dict[str, Any]) -> Callable:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        translator = translators.get(args[0]) if len(args) == 2 and not kwargs and type(args[0]) is str else None
        if translator is None or runtime.current() is None or _service(instance) != _SERVICE:
            return wrapped(*args, **kwargs)
        operation, params = args
        if not isinstance(params, dict) or not all(type(k) is str for k in params):
            return wrapped(*args, **kwargs)  # botocore's own validation answers this
        key = _STREAM_KEYS.get(operation)
        if key is not None:
            return _streamed(translator, wrapped, instance, operation, params, key)
        if operation == "InvokeModel":
            return run_sync(translator, lambda **p: _read_body(wrapped(operation, p)), instance, (), params)
        return run_sync(translator, lambda **p: wrapped(operation, p), instance, (), params)

    return wrapper


def _streamed(translator: Any, wrapped: Callable, instance: Any, operation: str, params: dict, key: str) -> Any:
    """botocore's response dict with its event stream proxied in place."""
    opened: list = []  # the response of the attempt just made; emptied once read, so the proxy's restarts hold no cycle

    def open_stream(**p: Any) -> Any:
        response = wrapped(operation, p)
        stream = response.get(key) if isinstance(response, dict) else None
        if stream is None or not hasattr(stream, "__iter__"):
            return response  # not a stream: given back as it is
        opened[:] = [response]
        return EventIterator(stream)

    result = run_sync(translator, open_stream, instance, (), params)
    response = opened.pop() if opened else None
    if response is None or isinstance(result, dict):
        return result
    # Not watched (our translation failed): botocore's own stream; else the proxy, which follows a guard's restarts.
    response[key] = result.__wrapped__ if type(result) is EventIterator else result
    return response


class BedrockInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["bedrock"]
    instruments = ("botocore >= 1.34",)

    def targets(self) -> Iterable[Target]:
        translators = {
            "Converse": ConverseTranslator(),
            "ConverseStream": ConverseTranslator(streams=True),
            "InvokeModel": InvokeModelTranslator(),
            "InvokeModelWithResponseStream": InvokeModelTranslator(streams=True),
        }
        return (("botocore.client", "BaseClient", "_make_api_call", _make_api_call(translators)),)
