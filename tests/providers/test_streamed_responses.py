"""A user streams through ``with_streaming_response.create(stream=True)`` (as the OpenAI Agents SDK does over the
Responses API): the span follows the stream the app parses out of the raw response, and ends when that stream
ends or when the app closes the response having read less; we never read a byte the app did not ask for.

OpenAI chat completions and Responses, Anthropic messages; sync and async; real clients over the demo server.
"""

from __future__ import annotations

import asyncio
import gc
import json
from dataclasses import dataclass
from typing import Any, Callable

import anthropic
import openai
import pytest
from opentelemetry.trace import StatusCode

from demo_server import _DE_REPLIES
from micrometrics.metrics import language
from micrometrics.metrics.language_match import LanguageMatch
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V
from provider_contract import Content, assert_inference_call

QUESTION = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
SYSTEM = "Du bist der Kundenservice eines Onlineshops."
#: Five German user turns; the demo model slips into English on the fifth (tests/providers/test_language_guard.py).
USER_TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Meine Bestellnummer ist 12345. Wo ist mein Paket?",
    "Warum dauert die Lieferung so lange?",
    "Kann ich die Lieferadresse noch ändern?",
    "Danke. Wann bekomme ich mein Geld zurück?",
]


@pytest.fixture(autouse=True)
def _language_profiles_loaded():
    language.prepare()  # the guard's budget is not the place to load the language profiles


def turn_five() -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for i, text in enumerate(USER_TURNS):
        if i:
            out.append({"role": "assistant", "content": _DE_REPLIES[i - 1]})
        out.append({"role": "user", "content": text})
    return out


@dataclass
class Api:
    """One streamed API as an app calls it through ``with_streaming_response``."""

    name: str
    clients: Callable[[Any], tuple[Any, Any]]  # demo -> (sync client, async client)
    resource: Callable[[Any], Any]  # client -> the resource whose with_streaming_response the app uses
    kwargs: Callable[[list[dict]], dict]  # messages -> create() arguments
    text_of: Callable[[Any], str]  # one stream event -> its text
    span: str
    contract: dict


def _openai(demo: Any) -> tuple[Any, Any]:
    opts = dict(base_url=demo.openai_base_url, api_key="sk-test-secret-key", max_retries=0)
    return openai.OpenAI(**opts), openai.AsyncOpenAI(**opts)


def _anthropic(demo: Any) -> tuple[Any, Any]:
    opts = dict(base_url=demo.anthropic_base_url, api_key="sk-ant-test-secret", max_retries=0)
    return anthropic.Anthropic(**opts), anthropic.AsyncAnthropic(**opts)


CHAT = Api(
    "chat", _openai, lambda c: c.chat.completions,
    lambda messages: dict(model="gpt-4o-mini", messages=messages, stream_options={"include_usage": True}),
    lambda e: (e.choices[0].delta.content or "") if e.choices else "",
    "chat gpt-4o-mini",
    dict(provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2026-01-01", response_id_prefix="chatcmpl-"),
)
RESPONSES = Api(
    "responses", _openai, lambda c: c.responses,
    lambda messages: dict(model="gpt-4.1", input=messages, instructions=SYSTEM),
    lambda e: e.delta if e.type == "response.output_text.delta" else "",
    "chat gpt-4.1",
    dict(provider="openai", request_model="gpt-4.1", response_model="gpt-4.1-2026-01-01", response_id_prefix="resp_"),
)
MESSAGES = Api(
    "anthropic", _anthropic, lambda c: c.messages,
    lambda messages: dict(model="claude-sonnet-5-5", max_tokens=400, system=SYSTEM, messages=messages),
    lambda e: e.delta.text if e.type == "content_block_delta" and e.delta.type == "text_delta" else "",
    "chat claude-sonnet-5-5",
    dict(provider="anthropic", request_model="claude-sonnet-5-5", response_model="claude-sonnet-5-5", response_id_prefix="msg_demo"),
)
SDK_STREAMS = (openai.Stream, openai.AsyncStream, anthropic.Stream, anthropic.AsyncStream)
APIS = [pytest.param(a, id=a.name) for a in (CHAT, RESPONSES, MESSAGES)]
SYNC_ASYNC = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


@dataclass
class Seen:
    """What the app saw: the text it read, and the raw response's state at each step."""

    text: str = ""
    untouched_at_enter: bool = False  # nothing of the body was read when the app got the response
    open_while_reading: bool = False  # no span had ended before the app read the stream
    consumed_at_exit: bool | None = None
    closed_at_exit: bool | None = None
    same_stream: bool = False
    sdk_stream: bool = False


def stream_through(demo: Any, telemetry: Any, api: Api, is_async: bool, messages: list[dict], *, parse: bool = True, leave_at_text: bool = False) -> Seen:
    """The app: ``with ...with_streaming_response.create(stream=True) as response``, parse, read every event (or
    ``leave_at_text``: stop at the first one with text)."""
    sync, async_ = api.clients(demo)
    kwargs = api.kwargs(messages)
    seen = Seen()

    def take(event: Any) -> bool:
        text = api.text_of(event)
        seen.text += text
        return leave_at_text and text != ""

    if not is_async:
        with api.resource(sync).with_streaming_response.create(stream=True, **kwargs) as response:
            seen.untouched_at_enter = not response.http_response.is_stream_consumed
            seen.open_while_reading = telemetry.spans() == []
            if parse:
                stream = response.parse()
                seen.same_stream, seen.sdk_stream = response.parse() is stream, isinstance(stream, SDK_STREAMS)
                for event in stream:
                    if take(event):
                        break
        seen.consumed_at_exit, seen.closed_at_exit = response.http_response.is_stream_consumed, response.http_response.is_closed
        return seen

    async def go() -> Seen:
        async with api.resource(async_).with_streaming_response.create(stream=True, **kwargs) as response:
            seen.untouched_at_enter = not response.http_response.is_stream_consumed
            seen.open_while_reading = telemetry.spans() == []
            if parse:
                stream = await response.parse()
                seen.same_stream, seen.sdk_stream = (await response.parse()) is stream, isinstance(stream, SDK_STREAMS)
                async for event in stream:
                    if take(event):
                        break
        seen.consumed_at_exit, seen.closed_at_exit = response.http_response.is_stream_consumed, response.http_response.is_closed
        return seen

    return asyncio.run(go())


@pytest.mark.parametrize("api", APIS)
@SYNC_ASYNC
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_the_stream_the_app_parses_gives_the_span_its_response(demo, telemetry, api, is_async, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    seen = stream_through(demo, telemetry, api, is_async, [{"role": "user", "content": QUESTION}])
    assert seen.text.startswith("Hallo")
    assert seen.untouched_at_enter and seen.open_while_reading  # create() read nothing; the span waited for the stream
    assert seen.same_stream and seen.sdk_stream  # parse() gives the SDK's stream type, once (cached), proxied
    assert_inference_call(
        telemetry, operation="chat", server=("127.0.0.1", demo.port), stream=True, capture=capture,
        content=Content(
            input_messages=[{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}],
            system_instructions=[{"type": "text", "content": SYSTEM}] if api is not CHAT else None,
            output_text=seen.text,
        ),
        secret="secret",  # neither API key reaches telemetry
        **api.contract,
    )


@pytest.mark.parametrize("api", APIS)
@SYNC_ASYNC
def test_a_monitor_judges_the_answer_read_through_the_raw_response(demo, telemetry, api, is_async):
    telemetry.instrument(metrics=[LanguageMatch()])
    seen = stream_through(demo, telemetry, api, is_async, [{"role": "user", "content": QUESTION}])
    attrs = telemetry.span(api.span).attributes
    assert attrs["micrometrics.language_match.label"] == "match"
    assert attrs["micrometrics.language_match.expected"] == "de" and attrs["micrometrics.language_match.detected"] == "de"
    assert seen.text not in json.dumps(dict(attrs), ensure_ascii=False)  # the answer was judged, not exported


@pytest.mark.parametrize("api", APIS)
@SYNC_ASYNC
def test_a_response_closed_unread_ends_its_span_abandoned_and_unread(demo, telemetry, api, is_async):
    telemetry.instrument(metrics=[LanguageMatch()])
    seen = stream_through(demo, telemetry, api, is_async, [{"role": "user", "content": QUESTION}], parse=False)
    assert seen.consumed_at_exit is False and seen.closed_at_exit is True  # no byte read, by the app or by us
    span = telemetry.span(api.span)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED
    for name in (A.GEN_AI_RESPONSE_ID, A.GEN_AI_RESPONSE_FINISH_REASONS, A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK):
        assert name not in span.attributes
    assert len(demo.requests) == 1


@pytest.mark.parametrize("api", APIS)
@SYNC_ASYNC
def test_a_stream_left_early_ends_its_span_abandoned_with_what_came(demo, telemetry, api, is_async):
    telemetry.instrument(metrics=[])
    seen = stream_through(demo, telemetry, api, is_async, [{"role": "user", "content": QUESTION}], leave_at_text=True)
    assert seen.closed_at_exit is True and seen.text.startswith("Hallo") and not seen.text.endswith("?")  # closed with the answer half read
    span = telemetry.span(api.span)
    assert span.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED
    assert A.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes
    assert 0 < span.attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9


@pytest.mark.parametrize("api", APIS)
@SYNC_ASYNC
def test_a_streaming_guard_restarts_the_stream_the_app_parses(demo, telemetry, api, is_async):
    """Turn five slips into English: the guard holds the parsed stream's prefix, retries the call, and the app
    reads only the German answer, from the same response object it holds."""
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=1)])
    seen = stream_through(demo, telemetry, api, is_async, turn_five())
    assert seen.text == _DE_REPLIES[4]
    first, retry = sorted((s for s in telemetry.spans() if s.name == api.span), key=lambda s: s.start_time)
    assert first.attributes["micrometrics.language_match.label"] == "mismatch" and first.attributes.get("micrometrics.attempt", 1) == 1
    assert retry.attributes["micrometrics.language_match.label"] == "match" and retry.attributes["micrometrics.attempt"] == 2
    assert retry.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == (V.FINISH_STOP,)
    first_body, retry_body = (json.dumps(r.body, ensure_ascii=False) for r in demo.requests)  # two calls, no third
    assert "Answer only in German" in retry_body and "Answer only in German" not in first_body


@SYNC_ASYNC
def test_a_response_dropped_without_closing_ends_its_span_when_collected(demo, telemetry, is_async):
    telemetry.instrument(metrics=[])
    sync, async_ = _openai(demo)
    kwargs = CHAT.kwargs([{"role": "user", "content": QUESTION}])

    def collected(http: Any) -> Any:
        gc.collect()  # the app kept neither the context manager nor the response
        assert http.is_stream_consumed is False
        return telemetry.span(CHAT.span)

    async def go_async() -> Any:
        http = (await async_.chat.completions.with_streaming_response.create(stream=True, **kwargs).__aenter__()).http_response
        span = collected(http)
        await http.aclose()  # the connection the app left open
        return span

    if is_async:
        span = asyncio.run(go_async())
    else:
        http = sync.chat.completions.with_streaming_response.create(stream=True, **kwargs).__enter__().http_response
        span = collected(http)
        http.close()
    assert span.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED


@SYNC_ASYNC
def test_a_parsed_stream_with_null_fields_then_an_error_fails_its_span_and_the_app_gets_the_sdks_error(demo, telemetry, is_async):
    """Null fields in the events are no crash of ours; the error event mid-stream is the SDK's to raise, unchanged,
    and its text (which quotes the prompt) stays off the span without capture."""
    telemetry.instrument(metrics=[LanguageMatch()])
    demo.enqueue(sse=[
        {"id": "chatcmpl-nulls", "object": "chat.completion.chunk", "model": None, "choices": [{"index": 0, "delta": {"content": "Hallo "}, "finish_reason": None}]},
        {"id": None, "object": "chat.completion.chunk", "model": None, "choices": None, "usage": None},
        {"id": "chatcmpl-nulls", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": None, "finish_reason": None}]},
        {"error": {"message": f"overloaded while answering: {QUESTION}", "type": "server_error"}},
    ])
    sync, async_ = _openai(demo)
    kwargs = CHAT.kwargs([{"role": "user", "content": QUESTION}])
    read: list[Any] = []

    async def go_async() -> None:
        async with async_.chat.completions.with_streaming_response.create(stream=True, **kwargs) as response:
            async for event in await response.parse():
                read.append(event)

    with pytest.raises(openai.APIError) as info:
        if is_async:
            asyncio.run(go_async())
        else:
            with sync.chat.completions.with_streaming_response.create(stream=True, **kwargs) as response:
                for event in response.parse():
                    read.append(event)
    assert "overloaded" in str(info.value) and len(read) == 3 and read[0].choices[0].delta.content == "Hallo "
    span = telemetry.span(CHAT.span)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE].endswith("APIError")
    assert span.attributes[A.GEN_AI_RESPONSE_ID] == "chatcmpl-nulls"
    assert QUESTION not in json.dumps([dict(s.attributes) for s in telemetry.spans()], ensure_ascii=False)
    assert QUESTION not in (span.status.description or "")
