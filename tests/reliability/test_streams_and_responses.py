"""Streams the application abandons, closes twice, or that break mid-way; responses no client expects.

In each case the application sees what it sees without micrometrics, and the call's
span ends exactly once.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from micrometrics import internal_errors
from micrometrics_semconv import attributes as A
from reliability_libraries import Library, _aclose, flavours, libraries, loop, normal

FLAVOURS = pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])


def flavoured(cases: list[tuple[tuple, str]]) -> list[Any]:
    """Each case's values with ``aio`` for every flavour its library's client has (boto3: sync only)."""
    return [pytest.param(*values, aio, id=f"{'async' if aio else 'sync'}-{ident}")
            for values, ident in cases for aio in flavours(values[0])]


STREAMING = flavoured([((lib,), lib.id) for lib in libraries() if lib.streams and lib.plain_create])


def open_stream(lib: Library, demo: Any, aio: bool) -> Any:
    client = lib.shared_client(demo, aio)
    if aio:
        return loop().run_until_complete(lib.acreate(client, stream=True, model=lib.ok_model, prompt="Hallo, wie geht es?"))
    return lib.create(client, stream=True, model=lib.ok_model, prompt="Hallo, wie geht es?")


def take(stream: Any, n: int, aio: bool) -> list[Any]:
    if not aio:
        return [normal(next(stream)) for _ in range(n)]

    async def go() -> list[Any]:
        return [normal(await stream.__anext__()) for _ in range(n)]

    return loop().run_until_complete(go())


def close(stream: Any, aio: bool) -> None:
    if aio:
        loop().run_until_complete(_aclose(stream))
    else:
        stream.close()


def drain(stream: Any, aio: bool) -> list[Any]:
    if not aio:
        return [normal(c) for c in stream]

    async def go() -> list[Any]:
        return [normal(c) async for c in stream]

    return loop().run_until_complete(go())


def spans_of(telemetry: Any, lib: Library) -> list[Any]:
    return [s for s in telemetry.spans() if s.name == lib.span_name]


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_stream_abandoned_mid_way_ends_its_span_when_collected(lib, aio, demo, telemetry):
    plain = open_stream(lib, demo, aio)
    expected = take(plain, 2, aio)
    close(plain, aio)

    telemetry.instrument(instrumentations=[lib.instrumentation])
    stream = open_stream(lib, demo, aio)
    assert take(stream, 2, aio) == expected
    assert spans_of(telemetry, lib) == []  # still open: the application may come back to it
    del stream
    gc.collect()
    assert len(spans_of(telemetry, lib)) == 1
    assert internal_errors.totals == {}


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_stream_never_iterated_and_collected_ends_its_span(lib, aio, demo, telemetry):
    telemetry.instrument(instrumentations=[lib.instrumentation])
    stream = open_stream(lib, demo, aio)
    del stream
    gc.collect()
    assert len(spans_of(telemetry, lib)) == 1
    assert internal_errors.totals == {}


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_stream_closed_twice_and_iterated_after_close(lib, aio, demo, telemetry):
    def story() -> Any:
        stream = open_stream(lib, demo, aio)
        first = take(stream, 1, aio)
        close(stream, aio)
        close(stream, aio)
        try:
            drain(stream, aio)  # what is still buffered, or the library's own error: timing decides
        except Exception as exc:
            assert type(exc).__module__.split(".")[0] in lib.own_modules, exc
        return first

    uninstrumented = story()
    telemetry.instrument(instrumentations=[lib.instrumentation])
    assert story() == uninstrumented
    assert len(spans_of(telemetry, lib)) == 1
    assert internal_errors.totals == {}


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_stream_used_as_context_manager_then_closed(lib, aio, demo, telemetry):
    telemetry.instrument(instrumentations=[lib.instrumentation])
    stream = open_stream(lib, demo, aio)
    if aio:
        async def go() -> list[Any]:
            async with stream as s:
                items = [normal(c) async for c in s]
            await _aclose(stream)
            return items

        items = loop().run_until_complete(go())
    else:
        with stream as s:
            items = [normal(c) for c in s]
        stream.close()
    assert items
    assert len(spans_of(telemetry, lib)) == 1
    assert internal_errors.totals == {}


@pytest.mark.parametrize("lib, aio", STREAMING)
@pytest.mark.parametrize("breakage", ["garbage", "truncated-json"])
def test_a_stream_raising_mid_way_raises_the_same_and_marks_the_span(lib, aio, breakage, demo, telemetry):
    def story() -> tuple[Any, Any]:
        demo.enqueue(sse=lib.broken_stream(breakage))
        stream = open_stream(lib, demo, aio)
        got: list[Any] = []
        try:
            if aio:
                async def go() -> None:
                    async for c in stream:
                        got.append(normal(c))

                loop().run_until_complete(go())
            else:
                for c in stream:
                    got.append(normal(c))
        except Exception as exc:
            return got, (type(exc), str(exc))
        return got, None

    uninstrumented = story()
    telemetry.instrument(instrumentations=[lib.instrumentation])
    assert story() == uninstrumented
    (span,) = spans_of(telemetry, lib)
    if not lib.raises_on_broken_events:  # the library skips the event: so does the span, which ends with the stream
        assert uninstrumented[1] is None and span.status.status_code != StatusCode.ERROR
        assert internal_errors.totals == {}
        return
    assert uninstrumented[1] is not None, "the library should raise on a broken event"
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == f"{uninstrumented[1][0].__module__}.{uninstrumented[1][0].__qualname__}"
    assert internal_errors.totals == {}


def _bodies(lib: Library) -> list[tuple[tuple, str]]:
    out = [((lib, ("json", b)), f"{lib.id}-json{i}") for i, b in enumerate(lib.malformed_bodies())]
    out += [((lib, ("raw", b)), f"{lib.id}-raw{i}") for i, b in enumerate([b"", b"not json", b"{", b"\xff\xfe"])]
    return out


@pytest.mark.parametrize("lib, body, aio", flavoured([c for lib in libraries() if lib.http and lib.plain_create for c in _bodies(lib)]))
def test_unknown_and_malformed_responses_come_back_unchanged(lib, body, aio, demo, telemetry):
    kind, payload = body
    mode = "async" if aio else "sync"

    def script() -> None:
        if kind == "raw" or payload is None:
            demo.enqueue(raw=payload if kind == "raw" else b"null")
        else:
            demo.enqueue(json=payload)

    script()
    uninstrumented = lib.run(demo, mode)
    telemetry.instrument(instrumentations=[lib.instrumentation])
    script()
    assert lib.run(demo, mode) == uninstrumented
    assert len(spans_of(telemetry, lib)) == 1
    assert internal_errors.totals == {}, "malformed provider data is handled, not merely survived"


# ---- issue 14, items 2 and 5: a streaming guard never raises into the app, never holds what it cannot judge ----

_CHAT = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
_ANTHROPIC_MESSAGE = {"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5", "content": [],
                      "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}


def _responses_delta(delta: Any, n: int) -> dict:
    return {"type": "response.output_text.delta", "delta": delta, "item_id": "msg_x", "output_index": 0, "content_index": 0,
            "sequence_number": n}


def _google_chunk(content: Any) -> dict:
    return {"candidates": [{"content": content, "index": 0}], "modelVersion": "gemini-2.0-flash-001", "responseId": "resp-x"}


#: Streams whose text fields are null on the wire: each library hands these events to the app as they are.
NULL_FIELD_STREAMS = {
    "anthropic-messages": [
        ("message_start", {"type": "message_start", "message": _ANTHROPIC_MESSAGE}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": None}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": None}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hallo"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": None}),
        ("message_delta", {"type": "message_delta", "delta": None, "usage": None}),
        ("message_stop", {"type": "message_stop"}),
    ],
    "openai-responses": [
        _responses_delta(None, 1), _responses_delta("Hallo", 2), _responses_delta(None, 3),
        {"type": "response.created", "response": None, "sequence_number": 4},
        {"type": "response.completed", "response": None, "sequence_number": 5},
    ],
    "openai-chat": [
        {**_CHAT, "choices": [{"index": 0, "delta": None, "finish_reason": None}]},
        {**_CHAT, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}]},
        {**_CHAT, "choices": [{"index": 0, "delta": {"content": "Hallo", "tool_calls": None}, "finish_reason": None}]},
        {**_CHAT, "choices": None},
        "[DONE]",
    ],
    "google_genai-generate_content": [
        _google_chunk(None), _google_chunk({"role": "model", "parts": None}),
        _google_chunk({"role": "model", "parts": [{"text": None}]}), _google_chunk({"role": "model", "parts": [{"text": "Hallo"}]}),
    ],
    "bedrock-converse": [  # botocore itself refuses a delta with no member set: null is allowed around it
        {"messageStart": {"role": None}}, {"contentBlockDelta": {"delta": {"text": "Hallo"}, "contentBlockIndex": None}},
        {"contentBlockDelta": {"delta": None, "contentBlockIndex": 0}}, {"contentBlockStart": {"start": None}},
        {"messageStop": {"stopReason": None}}, {"metadata": {"usage": None, "metrics": None}},
    ],
    "bedrock-invoke_model": [
        {"type": "message_start", "message": None}, {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": None}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hallo"}},
        {"type": "message_delta", "delta": None, "usage": None}, {"type": "message_stop", "amazon-bedrock-invocationMetrics": None},
    ],
}
NULL_FIELD_LIBS = flavoured([((lib,), lib.id) for lib in libraries() if lib.id in NULL_FIELD_STREAMS])


def _streaming_guard() -> list[Any]:
    from micrometrics.metrics import LanguageMatch

    return [LanguageMatch(mode="guard")]


@pytest.mark.parametrize("lib, aio", NULL_FIELD_LIBS)
def test_null_stream_fields_reach_the_app_through_a_streaming_guard(lib, aio, demo, telemetry):
    def story() -> list[Any]:
        demo.enqueue(sse=NULL_FIELD_STREAMS[lib.id])
        return drain(open_stream(lib, demo, aio), aio)

    uninstrumented = story()
    telemetry.instrument(instrumentations=[lib.instrumentation], metrics=_streaming_guard())
    assert story() == uninstrumented
    (span,) = spans_of(telemetry, lib)
    assert span.status.status_code != StatusCode.ERROR
    assert internal_errors.totals == {}, "null fields are read as absent, not survived"


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_failing_stream_gate_passes_the_stream_through_and_is_reported(lib, aio, demo, telemetry, monkeypatch):
    """Whatever our accumulator does, the gate's failure never reaches the app's loop: the chunks pass, watching stops."""
    uninstrumented = drain(open_stream(lib, demo, aio), aio)

    def broken(self: Any) -> str:
        raise TypeError("injected by the reliability suite")

    monkeypatch.setattr(lib.accumulator(), "text", property(broken))
    telemetry.instrument(instrumentations=[lib.instrumentation], metrics=_streaming_guard())
    assert drain(open_stream(lib, demo, aio), aio) == uninstrumented
    assert len(spans_of(telemetry, lib)) == 1
    assert internal_errors.totals == {"stream_chunk": 1}


class PausingServer:
    """A loopback server that streams scripted SSE events, pausing before the last ones until the app saw a chunk.

    ``released_in_time`` is False when nothing reached the app while the server waited: the
    stream was held back until its end.
    """

    def __init__(self, events: list[Any], pause_before: int, wait_s: float = 10.0) -> None:
        import http.server
        import threading

        from demo_server import _encode_sse

        self.released = threading.Event()
        self.released_in_time: bool | None = None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, event in enumerate(events):
                    if i == pause_before:
                        server.released_in_time = server.released.wait(wait_s)
                    data = _encode_sse(event)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _chat_chunk(delta: dict, finish: str | None = None) -> dict:
    return {**_CHAT, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _tool_delta(arguments: str, first: bool = False) -> dict:
    call: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
    if first:
        call.update(id="call_1", type="function", function={"name": "get_weather", "arguments": arguments})
    return {"role": "assistant", "tool_calls": [call]} if first else {"tool_calls": [call]}


def _reasoning(text: str, n: int) -> dict:
    return {"type": "response.reasoning_summary_text.delta", "delta": text, "item_id": "rs_x", "output_index": 0,
            "summary_index": 0, "sequence_number": n}


def _anthropic_delta(index: int, delta: dict) -> tuple[str, dict]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


TEXTLESS_STREAMS = {
    # (library adapter id, kind): (events, index of the event the server pauses before)
    ("openai-chat", "tool_call"): ([
        _chat_chunk(_tool_delta("", first=True)), _chat_chunk(_tool_delta('{"city": ')), _chat_chunk(_tool_delta('"Berlin"}')),
        _chat_chunk({}, "tool_calls"), "[DONE]",
    ], 3),
    ("openai-chat", "text_then_tool_call"): ([
        _chat_chunk({"role": "assistant", "content": "Einen Moment bitte, "}), _chat_chunk({"content": "ich sehe mir das Wetter an."}),
        _chat_chunk(_tool_delta("", first=True)), _chat_chunk(_tool_delta('{"city": ')), _chat_chunk(_tool_delta('"Berlin"}')),
        _chat_chunk({}, "tool_calls"), "[DONE]",
    ], 4),
    ("openai-responses", "reasoning"): ([
        _reasoning("Der Nutzer fragt nach dem Wetter, ", 1), _reasoning("ich antworte kurz und auf Deutsch.", 2),
        _responses_delta("Hallo! In Berlin ist es heute sonnig, ", 3), _responses_delta("mit bis zu 21 Grad am Nachmittag.", 4),
    ], 2),
    ("anthropic-messages", "tool_call"): ([
        ("message_start", {"type": "message_start", "message": _ANTHROPIC_MESSAGE}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        _anthropic_delta(0, {"type": "input_json_delta", "partial_json": '{"city": '}),
        _anthropic_delta(0, {"type": "input_json_delta", "partial_json": '"Berlin"}'}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_stop", {"type": "message_stop"}),
    ], 3),
    ("anthropic-messages", "text_then_tool_call"): ([
        ("message_start", {"type": "message_start", "message": _ANTHROPIC_MESSAGE}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        _anthropic_delta(0, {"type": "text_delta", "text": "Einen Moment bitte, ich sehe mir das Wetter an."}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        _anthropic_delta(1, {"type": "input_json_delta", "partial_json": '{"city": "Berlin"}'}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_stop", {"type": "message_stop"}),
    ], 5),
    ("anthropic-messages", "reasoning"): ([
        ("message_start", {"type": "message_start", "message": _ANTHROPIC_MESSAGE}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        _anthropic_delta(0, {"type": "thinking_delta", "thinking": "Der Nutzer fragt nach dem Wetter."}),
        _anthropic_delta(0, {"type": "thinking_delta", "thinking": " Ich antworte kurz."}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        _anthropic_delta(1, {"type": "text_delta", "text": "Hallo! In Berlin ist es heute sonnig, mit bis zu 21 Grad."}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_stop", {"type": "message_stop"}),
    ], 3),
}
_ADAPTERS = {lib.id: lib for lib in libraries()}
TEXTLESS = [pytest.param(lib_id, kind, id=f"{lib_id}-{kind}") for lib_id, kind in TEXTLESS_STREAMS if lib_id in _ADAPTERS]


@pytest.mark.parametrize("lib_id, kind", TEXTLESS)
@FLAVOURS
def test_a_streaming_guard_passes_tool_call_and_reasoning_streams_chunk_by_chunk(lib_id, kind, aio, telemetry):
    """The guard cannot judge a stream that starts without text: the app gets each chunk as it comes.
    Text followed by a tool call is decided on at the tool call, not held to the stream's end."""
    from micrometrics.metrics import language

    language.prepare()  # loading the profiles takes longer than a guard's budget
    lib = _ADAPTERS[lib_id]
    events, pause = TEXTLESS_STREAMS[(lib_id, kind)]
    telemetry.instrument(instrumentations=[lib.instrumentation], metrics=_streaming_guard())
    server = PausingServer(events, pause)
    try:
        base = server.base_url + ("/v1" if lib_id.startswith("openai") else "")
        client = lib.client(type("Server", (), {"openai_base_url": base, "anthropic_base_url": base})(), aio)

        def story() -> list[Any]:
            got: list[Any] = []

            def seen(chunk: Any) -> None:
                got.append(normal(chunk))
                server.released.set()  # the app has a chunk: the server may send the rest

            if not aio:
                for chunk in lib.create(client, stream=True, model=lib.ok_model, prompt="Wie ist das Wetter in Berlin?"):
                    seen(chunk)
                return got

            async def go() -> list[Any]:
                async for chunk in await lib.acreate(client, stream=True, model=lib.ok_model, prompt="Wie ist das Wetter in Berlin?"):
                    seen(chunk)
                return got

            return loop().run_until_complete(go())

        got = story()
    finally:
        server.close()
    assert server.released_in_time is True, "the app saw no chunk until the server sent the whole stream"
    assert len(got) == len([e for e in events if e != "[DONE]"])
    (span,) = spans_of(telemetry, lib)
    assert A.MICROMETRICS_GUARD_FAILED not in span.attributes
    if kind == "reasoning":  # released undecided, the guard still reports on the text at the stream's end
        assert span.attributes["micrometrics.language_match.label"] == "match"
    assert internal_errors.totals == {}


# ---- issue 15: a stream the application leaves before its end is reported as abandoned, not as a success ----


def _abandoned(span: Any) -> None:
    from micrometrics_semconv import values as V

    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_stream_closed_after_two_chunks_is_reported_abandoned(lib, aio, demo, telemetry):
    telemetry.instrument(instrumentations=[lib.instrumentation])
    stream = open_stream(lib, demo, aio)
    assert len(take(stream, 2, aio)) == 2
    close(stream, aio)
    (span,) = spans_of(telemetry, lib)
    _abandoned(span)
    assert internal_errors.totals == {}


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_stream_dropped_after_two_chunks_is_reported_abandoned(lib, aio, demo, telemetry):
    telemetry.instrument(instrumentations=[lib.instrumentation])
    stream = open_stream(lib, demo, aio)
    assert len(take(stream, 2, aio)) == 2
    del stream
    gc.collect()
    (span,) = spans_of(telemetry, lib)
    _abandoned(span)
    assert internal_errors.totals == {}


@pytest.mark.parametrize("lib, aio", STREAMING)
def test_a_stream_read_to_its_end_then_closed_is_a_success(lib, aio, demo, telemetry):
    telemetry.instrument(instrumentations=[lib.instrumentation])
    stream = open_stream(lib, demo, aio)
    assert drain(stream, aio)
    close(stream, aio)
    (span,) = spans_of(telemetry, lib)
    assert span.status.status_code != StatusCode.ERROR
    assert A.ERROR_TYPE not in span.attributes
    assert internal_errors.totals == {}
