"""``gen_ai.client.operation.time_per_output_chunk``: one histogram point per streamed chunk after the
first, the time since the chunk before it arrived; streams only, whatever way they end."""

from __future__ import annotations

import asyncio

import openai
import pytest

from micrometrics.metrics import LanguageMatch
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."}]
DELAY_S = 0.015  # the demo server's pause between two SSE events


def clients(demo):
    opts = dict(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    return openai.OpenAI(**opts), openai.AsyncOpenAI(**opts)


def per_chunk(telemetry):
    (point,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK]
    return point


def sse(*chunks: str) -> bytes:
    return "".join(f"data: {c}\n\n" for c in chunks).encode()


def chunk(text: str, finish: str | None = None) -> str:
    reason = f'"{finish}"' if finish else "null"
    return '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}' % (text, reason)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_each_chunk_after_the_first_is_one_point_of_the_gap_since_the_one_before(demo, telemetry, monkeypatch, is_async):
    monkeypatch.setattr(demo, "chunk_delay", DELAY_S)
    telemetry.instrument(metrics=[])
    sync, async_ = clients(demo)
    kwargs = dict(model="gpt-4o-mini", messages=GERMAN, stream=True, stream_options={"include_usage": True})
    if is_async:
        async def go():
            return [c async for c in await async_.chat.completions.create(**kwargs)]
        chunks = asyncio.run(go())
    else:
        chunks = list(sync.chat.completions.create(**kwargs))

    span = telemetry.span()
    point = per_chunk(telemetry)
    assert len(chunks) > 5 and point.count == len(chunks) - 1
    # The gaps are the server's pauses (one arrival late, the next early: their mean holds), none absurd.
    assert point.sum / point.count >= DELAY_S * 0.8 and 0 <= point.min and point.max < 2.0
    # Together they cover the stream from its first chunk to its last: within the call, after the first chunk.
    assert point.sum <= (span.end_time - span.start_time) / 1e9 - span.attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert point.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert set(point.attributes) <= A.METRIC_DIMENSIONS


def test_a_non_streamed_call_records_no_chunk_time(demo, telemetry):
    telemetry.instrument(metrics=[])
    clients(demo)[0].chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    assert M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK not in telemetry.metrics()


def test_a_stream_left_early_records_the_chunks_it_read(demo, telemetry):
    telemetry.instrument(metrics=[])
    stream = clients(demo)[0].chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True)
    for _ in range(3):
        next(stream)
    stream.close()
    point = per_chunk(telemetry)
    assert point.count == 2 and A.ERROR_TYPE not in point.attributes  # abandoned (an error on the span), yet the chunks came


def test_a_stream_that_breaks_midway_records_the_chunks_before_the_error(demo, telemetry):
    demo.enqueue(raw=sse(chunk("Hal"), chunk("lo"), chunk(" Sie"), "{not json"), headers={"content-type": "text/event-stream"})
    telemetry.instrument(metrics=[])
    stream = clients(demo)[0].chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True)
    with pytest.raises(Exception):
        for _ in stream:
            pass
    point = per_chunk(telemetry)
    assert point.count == 2
    # The conventions give this metric no error.type: the chunks arrived, whatever came after them.
    assert A.ERROR_TYPE not in point.attributes and point.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"


def test_a_stream_with_one_chunk_records_none(demo, telemetry):
    demo.enqueue(raw=sse(chunk("Hallo.", "stop"), "[DONE]"), headers={"content-type": "text/event-stream"})
    telemetry.instrument(metrics=[])
    assert len(list(clients(demo)[0].chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True))) == 1
    assert M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK not in telemetry.metrics()


def test_a_stream_a_guard_restarted_times_both_attempts_chunks(demo, telemetry):
    """The chunks the guard held back and rejected arrived too: they are timed with the ones the app read."""
    telemetry.instrument(metrics=[LanguageMatch(mode="guard")])
    turns = [
        {"role": "user", "content": t}
        for t in ("Hallo, ich habe eine Frage.", "Die Bestellnummer ist 4711.", "Danke.", "Kann ich die Adresse ändern?", "Wie lange dauert die Rücksendung?")
    ]
    messages = [m for t in turns for m in (t, {"role": "assistant", "content": "Gern."})][:-1]  # turn five: the demo answers in English
    read = list(clients(demo)[0].chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
    spans = telemetry.spans()
    assert [s.attributes["micrometrics.language_match.label"] for s in spans] == ["mismatch", "match"]
    assert per_chunk(telemetry).count > len(read) - 1
