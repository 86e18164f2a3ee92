"""Streams the application abandons, closes twice, or that break mid-way; responses no client expects.

In each case the application sees what it sees without micrometrics, and the call's
span ends exactly once.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from micrometrics import safety
from micrometrics_semconv import attributes as A
from reliability_libraries import Library, _aclose, libraries, loop, normal

STREAMING = [pytest.param(lib, id=lib.id) for lib in libraries() if lib.streams and lib.plain_create]
FLAVOURS = pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])


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


@pytest.mark.parametrize("lib", STREAMING)
@FLAVOURS
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
    assert safety.totals == {}


@pytest.mark.parametrize("lib", STREAMING)
@FLAVOURS
def test_a_stream_never_iterated_and_collected_ends_its_span(lib, aio, demo, telemetry):
    telemetry.instrument(instrumentations=[lib.instrumentation])
    stream = open_stream(lib, demo, aio)
    del stream
    gc.collect()
    assert len(spans_of(telemetry, lib)) == 1
    assert safety.totals == {}


@pytest.mark.parametrize("lib", STREAMING)
@FLAVOURS
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
    assert safety.totals == {}


@pytest.mark.parametrize("lib", STREAMING)
@FLAVOURS
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
    assert safety.totals == {}


@pytest.mark.parametrize("lib", STREAMING)
@FLAVOURS
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
    assert uninstrumented[1] is not None, "the library should raise on a broken event"
    telemetry.instrument(instrumentations=[lib.instrumentation])
    assert story() == uninstrumented
    (span,) = spans_of(telemetry, lib)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == f"{uninstrumented[1][0].__module__}.{uninstrumented[1][0].__qualname__}"
    assert safety.totals == {}


def _bodies(lib: Library) -> list[Any]:
    out = [pytest.param(lib, ("json", b), id=f"{lib.id}-json{i}") for i, b in enumerate(lib.malformed_bodies())]
    out += [pytest.param(lib, ("raw", b), id=f"{lib.id}-raw{i}") for i, b in enumerate([b"", b"not json", b"{", b"\xff\xfe"])]
    return out


@pytest.mark.parametrize("lib, body", [p for lib in libraries() if lib.http and lib.plain_create for p in _bodies(lib)])
@FLAVOURS
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
    assert safety.totals == {}, "malformed provider data is handled, not merely survived"
