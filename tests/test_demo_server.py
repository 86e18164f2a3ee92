"""Tests of examples/demo_server.py, driven through the real OpenAI, Anthropic and Google clients.

These tests exercise only the demo server; nothing from micrometrics is imported.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from demo_server import INCIDENT_REPLY, DemoServer  # noqa: E402

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")
genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types as genai_types  # noqa: E402

WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}

GERMAN_TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Die Bestellnummer ist 12345.",
    "Das Paket ist aber noch nicht da.",
    "Kann ich die Adresse ändern?",
    "Danke, und wann bekomme ich mein Geld zurück?",
]


def _german_chat(turns: int) -> list[dict]:
    messages: list[dict] = []
    for i, text in enumerate(GERMAN_TURNS[:turns]):
        if i:
            messages.append({"role": "assistant", "content": "Gern, ich helfe Ihnen weiter."})
        messages.append({"role": "user", "content": text})
    return messages


def _looks_german(text: str) -> bool:
    return any(w in text for w in ("Sie", "Ihre", "Ihnen", "ich", "und"))


@pytest.fixture(scope="module")
def server():
    with DemoServer() as srv:
        yield srv


@pytest.fixture
def srv(server):
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def oai(srv):
    return openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def aoai(srv):
    return openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def ant(srv):
    return anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="test", max_retries=0)


@pytest.fixture
def aant(srv):
    return anthropic.AsyncAnthropic(base_url=srv.anthropic_base_url, api_key="test", max_retries=0)


@pytest.fixture
def gem(srv):
    return genai.Client(api_key="test", http_options={"base_url": srv.google_base_url})


def _http(srv: DemoServer, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(srv.base_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


# ---------------------------------------------------------------------------
# Server basics
# ---------------------------------------------------------------------------


def test_urls_and_lifecycle():
    srv = DemoServer()
    assert srv.start() is srv
    try:
        assert srv.base_url.startswith("http://127.0.0.1:")
        assert srv.port > 0
        assert srv.openai_base_url == srv.base_url + "/v1"
        assert srv.anthropic_base_url == srv.base_url
        assert srv.google_base_url == srv.base_url
        status, body, _ = _http(srv, "GET", "/")
        assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        srv.stop()
    srv.stop()  # idempotent


def test_unknown_path_is_404_json(srv):
    status, body, _ = _http(srv, "POST", "/v1/nope", {"model": "x"})
    assert status == 404
    assert "error" in json.loads(body)
    status, body, _ = _http(srv, "GET", "/v1/chat/completions")
    assert status == 404 and "error" in json.loads(body)


def test_requests_are_recorded_with_headers(srv, oai):
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello"}],
                                extra_headers={"X-Custom": "yes"})
    assert len(srv.requests) == 1
    req = srv.requests[0]
    assert req.method == "POST"
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer test"
    assert req.headers["x-custom"] == "yes"
    assert all(k == k.lower() for k in req.headers)
    assert req.body["model"] == "gpt-4o"
    assert req.body["messages"][0]["content"] == "Hello"
    srv.reset()
    assert srv.requests == []


# ---------------------------------------------------------------------------
# OpenAI
# ---------------------------------------------------------------------------


def test_openai_chat_basic(oai):
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "You are a helpful support bot."},
        {"role": "user", "content": "Hello, where is my order?"},
    ])
    assert r.model == "gpt-4o-mini-2026-01-01"
    assert r.object == "chat.completion"
    assert r.choices[0].finish_reason == "stop"
    text = r.choices[0].message.content
    assert 60 <= len(text) <= 250
    assert r.usage.prompt_tokens == 11  # 6 + 5 words
    assert r.usage.completion_tokens == len(text.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details.reasoning_tokens == 0
    # deterministic
    again = oai.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "You are a helpful support bot."},
        {"role": "user", "content": "Hello, where is my order?"},
    ])
    assert again.choices[0].message.content == text


def test_openai_chat_replies_depend_on_turns(oai):
    one = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])
    two = oai.chat.completions.create(model="m", messages=[
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "My order is 42."}])
    assert one.choices[0].message.content != two.choices[0].message.content
    assert two.usage.prompt_tokens_details.cached_tokens > 0


def test_openai_chat_reasoning_model_tokens(oai):
    r = oai.chat.completions.create(model="o3-mini", messages=[{"role": "user", "content": "Hi"}])
    assert r.usage.completion_tokens_details.reasoning_tokens > 0


def test_openai_chat_n_choices(oai):
    r = oai.chat.completions.create(model="gpt-4o", n=3, messages=[{"role": "user", "content": "Hi"}])
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert all(c.message.content for c in r.choices)


def test_openai_chat_stream_with_usage(oai, srv):
    stream = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                         stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 5
    assert 60 <= len(text) <= 250
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert all(c.model == "gpt-4o-2026-01-01" for c in chunks)
    assert srv.requests[-1].body["stream"] is True


def test_openai_chat_stream_without_usage(oai):
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                              stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_openai_chat_stream_n_choices(oai):
    chunks = list(oai.chat.completions.create(model="gpt-4o", n=2, messages=[{"role": "user", "content": "Hi"}],
                                              stream=True))
    texts = {0: "", 1: ""}
    for c in chunks:
        for ch in c.choices:
            texts[ch.index] += ch.delta.content or ""
    assert texts[0] and texts[0] == texts[1]


def test_openai_chat_stream_helper(oai):
    with oai.chat.completions.stream(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content.startswith("Hello")


def test_openai_chat_tool_call(oai):
    r = oai.chat.completions.create(model="gpt-4o", tools=[WEATHER_TOOL_OPENAI], messages=[
        {"role": "user", "content": "What's the weather in Munich?"}])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Munich", "unit": "celsius"}
    # follow-up with the tool result yields a text answer
    r2 = oai.chat.completions.create(model="gpt-4o", tools=[WEATHER_TOOL_OPENAI], messages=[
        {"role": "user", "content": "What's the weather in Munich?"},
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "condition": "sunny"})},
    ])
    assert r2.choices[0].finish_reason == "stop"
    assert "Munich" in r2.choices[0].message.content and "21" in r2.choices[0].message.content


def test_openai_chat_tool_call_stream(oai):
    chunks = list(oai.chat.completions.create(model="gpt-4o", tools=[WEATHER_TOOL_OPENAI], stream=True, messages=[
        {"role": "user", "content": "weather in Paris please"}]))
    args = "".join(tc.function.arguments or "" for c in chunks for tc in (c.choices[0].delta.tool_calls or []))
    assert json.loads(args)["location"] == "Paris"
    assert chunks[0].choices[0].delta.tool_calls[0].function.name == "get_weather"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_tools_without_weather_answer_text(oai):
    r = oai.chat.completions.create(model="gpt-4o", tools=[WEATHER_TOOL_OPENAI], messages=[
        {"role": "user", "content": "Hello"}])
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.content


def test_openai_json_object(oai):
    r = oai.chat.completions.create(model="gpt-4o", response_format={"type": "json_object"},
                                    messages=[{"role": "user", "content": "Answer in JSON"}])
    data = json.loads(r.choices[0].message.content)
    assert isinstance(data, dict) and data["language"] == "en"


def test_openai_json_schema_parse(oai):
    pydantic = pytest.importorskip("pydantic")

    class Reply(pydantic.BaseModel):
        answer: str
        language: str
        confidence: float
        escalate: bool

    r = oai.chat.completions.parse(model="gpt-4o", response_format=Reply,
                                   messages=[{"role": "user", "content": "Hallo, wo ist meine Bestellung?"}])
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Reply)
    assert parsed.language == "de"
    assert parsed.answer


def test_azure_path(srv):
    client = openai.AzureOpenAI(azure_endpoint=srv.base_url, api_key="test", api_version="2024-10-21",
                                max_retries=0)
    r = client.chat.completions.create(model="my-deployment", messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content
    req = srv.requests[-1]
    assert req.path.startswith("/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21")
    assert req.headers["api-key"] == "test"
    assert r.model == "my-deployment-2026-01-01"


def test_openai_responses(oai):
    r = oai.responses.create(model="gpt-4.1", instructions="Be brief.", input="Hello, where is my parcel?")
    assert r.status == "completed"
    assert r.model == "gpt-4.1-2026-01-01"
    assert 60 <= len(r.output_text) <= 250
    assert r.usage.input_tokens == 7
    assert r.usage.output_tokens == len(r.output_text.split())
    assert r.usage.input_tokens_details.cached_tokens == 0
    assert r.usage.output_tokens_details.reasoning_tokens == 0


def test_openai_responses_stream(oai):
    events = list(oai.responses.create(model="gpt-4.1", input="Hello", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = events[-1].response
    assert completed.output_text == text
    assert completed.usage.total_tokens == completed.usage.input_tokens + completed.usage.output_tokens


def test_openai_responses_stream_helper(oai):
    with oai.responses.stream(model="gpt-4.1", input=[{"role": "user", "content": "Hallo bitte helfen"}]) as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert final.output_text == "".join(deltas)
    assert "Kundenservice" in final.output_text


def test_openai_responses_tool_call(oai):
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    r = oai.responses.create(model="gpt-4.1", tools=[tool], input="What's the weather in Rome?")
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments)["location"] == "Rome"
    with oai.responses.stream(model="gpt-4.1", tools=[tool], input="weather in Rome?") as s:
        for _ in s:
            pass
        final = s.get_final_response()
    assert final.output[0].type == "function_call"
    assert json.loads(final.output[0].arguments)["location"] == "Rome"


def test_openai_embeddings(oai):
    one = oai.embeddings.create(model="text-embedding-3-small", input="hello world")
    assert len(one.data) == 1 and len(one.data[0].embedding) == 8
    assert one.usage.prompt_tokens == 2 and one.usage.total_tokens == 2
    many = oai.embeddings.create(model="text-embedding-3-small", input=["hello world", "other text here"])
    assert [d.index for d in many.data] == [0, 1]
    assert many.data[0].embedding == one.data[0].embedding
    assert many.data[1].embedding != one.data[0].embedding
    assert many.model == "text-embedding-3-small"


def test_openai_embeddings_base64(oai):
    plain = oai.embeddings.create(model="e", input="hello", encoding_format="float")
    b64 = oai.embeddings.create(model="e", input="hello", encoding_format="base64")
    # the SDK returns the base64 string as-is when explicitly requested
    import base64
    import struct

    raw = b64.data[0].embedding
    floats = list(struct.unpack("<8f", base64.b64decode(raw))) if isinstance(raw, str) else raw
    assert floats == pytest.approx(plain.data[0].embedding, abs=1e-6)


def test_openai_legacy_completions(oai):
    r = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello")
    assert r.object == "text_completion"
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text and r.usage.prompt_tokens == 2
    chunks = list(oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello", stream=True,
                                         stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == r.choices[0].text
    assert chunks[-1].usage.total_tokens == r.usage.total_tokens


async def test_openai_async(aoai):
    r = await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content
    stream = await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                                stream=True, stream_options={"include_usage": True})
    text, usage = "", None
    async for c in stream:
        if c.choices:
            text += c.choices[0].delta.content or ""
        if c.usage:
            usage = c.usage
    assert text == r.choices[0].message.content
    assert usage.completion_tokens == r.usage.completion_tokens
    resp = await aoai.responses.create(model="gpt-4.1", input="Hi")
    assert resp.output_text
    events = [e async for e in await aoai.responses.create(model="gpt-4.1", input="Hi", stream=True)]
    assert events[-1].type == "response.completed"
    emb = await aoai.embeddings.create(model="e", input=["a", "b"])
    assert len(emb.data) == 2


# ---------------------------------------------------------------------------
# Anthropic
# ---------------------------------------------------------------------------


def test_anthropic_create(ant, srv):
    m = ant.messages.create(model="claude-sonnet-4-5", max_tokens=256, system="You are a support bot.",
                            messages=[{"role": "user", "content": "Hello, where is my order?"}])
    assert m.model == "claude-sonnet-4-5"
    assert m.stop_reason == "end_turn"
    assert m.content[0].type == "text" and 60 <= len(m.content[0].text) <= 250
    assert m.usage.input_tokens == 10
    assert m.usage.output_tokens == len(m.content[0].text.split())
    assert m.usage.cache_read_input_tokens == 0
    assert m.usage.cache_creation_input_tokens == 0
    req = srv.requests[-1]
    assert req.path == "/v1/messages"
    assert req.headers["anthropic-version"]
    assert req.body["system"] == "You are a support bot."


def test_anthropic_stream_raw_events(ant):
    stream = ant.messages.create(model="claude-x", max_tokens=256, stream=True,
                                 messages=[{"role": "user", "content": "Hi"}])
    events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[1] == "content_block_start"
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) == {"content_block_delta"}
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert 60 <= len(text) <= 250
    assert events[0].message.usage.input_tokens == 1
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].usage.output_tokens == len(text.split())


def test_anthropic_stream_helper(ant):
    with ant.messages.stream(model="claude-x", max_tokens=256,
                             messages=[{"role": "user", "content": "Hi"}]) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.content[0].text == streamed
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(streamed.split())


def test_anthropic_tool_use(ant):
    m = ant.messages.create(model="claude-x", max_tokens=256, tools=[WEATHER_TOOL_ANTHROPIC],
                            messages=[{"role": "user", "content": "What is the weather in Hamburg?"}])
    assert m.stop_reason == "tool_use"
    tool = [b for b in m.content if b.type == "tool_use"][0]
    assert tool.name == "get_weather" and tool.input["location"] == "Hamburg"
    with ant.messages.stream(model="claude-x", max_tokens=256, tools=[WEATHER_TOOL_ANTHROPIC],
                             messages=[{"role": "user", "content": "weather in Hamburg?"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].input == {"location": "Hamburg", "unit": "celsius"}
    # tool result round trip
    m2 = ant.messages.create(model="claude-x", max_tokens=256, tools=[WEATHER_TOOL_ANTHROPIC], messages=[
        {"role": "user", "content": "What is the weather in Hamburg?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "12 °C, rain"}]},
    ])
    assert m2.stop_reason == "end_turn" and "rain" in m2.content[0].text


async def test_anthropic_async(aant):
    m = await aant.messages.create(model="claude-x", max_tokens=256, messages=[{"role": "user", "content": "Hi"}])
    assert m.content[0].text
    stream = await aant.messages.create(model="claude-x", max_tokens=256, stream=True,
                                        messages=[{"role": "user", "content": "Hi"}])
    types = [e.type async for e in stream]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    async with aant.messages.stream(model="claude-x", max_tokens=256,
                                    messages=[{"role": "user", "content": "Hi"}]) as s:
        final = await s.get_final_message()
    assert final.content[0].text == m.content[0].text


def test_anthropic_count_tokens(ant):
    r = ant.messages.count_tokens(model="claude-x", messages=[{"role": "user", "content": "one two three"}])
    assert r.input_tokens == 3


# ---------------------------------------------------------------------------
# Google Gen AI
# ---------------------------------------------------------------------------


def test_google_generate_content(gem, srv):
    r = gem.models.generate_content(model="gemini-2.0-flash", contents="Hello, where is my order?")
    assert 60 <= len(r.text) <= 250
    assert r.candidates[0].finish_reason == genai_types.FinishReason.STOP
    u = r.usage_metadata
    assert u.prompt_token_count == 5
    assert u.candidates_token_count == len(r.text.split())
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    assert u.cached_content_token_count == 0 and u.thoughts_token_count == 0
    assert r.model_version == "gemini-2.0-flash"
    assert r.response_id
    req = srv.requests[-1]
    assert req.path.endswith("/models/gemini-2.0-flash:generateContent")
    assert req.headers["x-goog-api-key"] == "test"


def test_google_stream(gem, srv):
    chunks = list(gem.models.generate_content_stream(model="gemini-2.0-flash", contents="Hi"))
    assert len(chunks) > 3
    text = "".join(c.text for c in chunks)
    assert 60 <= len(text) <= 250
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == len(text.split())
    assert srv.requests[-1].path.endswith(":streamGenerateContent?alt=sse")


def test_google_embed_content(gem, srv):
    r = gem.models.embed_content(model="text-embedding-004", contents=["hello", "world"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0].values) == 8
    assert r.embeddings[0].values != r.embeddings[1].values
    assert srv.requests[-1].path.endswith(":batchEmbedContents")
    # the single-item endpoint (the SDK always batches, so drive it directly)
    status, body, _ = _http(srv, "POST", "/v1beta/models/text-embedding-004:embedContent",
                            {"content": {"parts": [{"text": "hello"}]}})
    assert status == 200
    assert json.loads(body)["embedding"]["values"] == r.embeddings[0].values


def test_google_system_instruction_and_tools(gem, srv):
    weather = genai_types.FunctionDeclaration(
        name="get_weather", description="weather",
        parameters=genai_types.Schema(type="OBJECT", properties={"location": genai_types.Schema(type="STRING")}))
    config = genai_types.GenerateContentConfig(
        system_instruction="You are a support bot.",
        tools=[genai_types.Tool(function_declarations=[weather])],
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
    )
    r = gem.models.generate_content(model="gemini-2.0-flash", contents="What's the weather in Vienna?",
                                    config=config)
    call = r.function_calls[0]
    assert call.name == "get_weather" and call.args["location"] == "Vienna"
    assert srv.requests[-1].body["systemInstruction"]["parts"][0]["text"] == "You are a support bot."


def test_google_json_mode(gem):
    r = gem.models.generate_content(model="gemini-2.0-flash", contents="Hallo bitte",
                                    config={"response_mime_type": "application/json"})
    assert json.loads(r.text)["language"] == "de"


async def test_google_async(gem):
    r = await gem.aio.models.generate_content(model="gemini-2.0-flash", contents="Hi")
    assert r.text
    text = ""
    async for chunk in await gem.aio.models.generate_content_stream(model="gemini-2.0-flash", contents="Hi"):
        text += chunk.text or ""
    assert text == r.text
    emb = await gem.aio.models.embed_content(model="text-embedding-004", contents="hello")
    assert len(emb.embeddings[0].values) == 8


# ---------------------------------------------------------------------------
# The story: German conversation, English answer at turn 5
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("turns", [1, 2, 3, 4])
def test_german_turns_answer_german(oai, turns):
    r = oai.chat.completions.create(model="gpt-4o", messages=_german_chat(turns))
    text = r.choices[0].message.content
    assert _looks_german(text) and text != INCIDENT_REPLY
    assert 60 <= len(text) <= 250


def test_incident_openai(oai):
    r = oai.chat.completions.create(model="gpt-4o", messages=_german_chat(5))
    assert r.choices[0].message.content == INCIDENT_REPLY
    assert len(INCIDENT_REPLY) >= 100
    fixed = oai.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": "Always answer in German."}, *_german_chat(5)])
    assert fixed.choices[0].message.content != INCIDENT_REPLY
    assert _looks_german(fixed.choices[0].message.content)
    dev = oai.chat.completions.create(model="gpt-4o", messages=[
        {"role": "developer", "content": "Antworte immer auf Deutsch."}, *_german_chat(6)])
    assert dev.choices[0].message.content != INCIDENT_REPLY
    # streamed the same way
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=_german_chat(5), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == INCIDENT_REPLY


def test_incident_english_conversation_stays_english(oai):
    messages = []
    for i in range(5):
        messages += [{"role": "user", "content": f"Question number {i} about the shipment"},
                     {"role": "assistant", "content": "Sure."}]
    r = oai.chat.completions.create(model="gpt-4o", messages=messages[:-1])
    assert r.choices[0].message.content != INCIDENT_REPLY


def test_incident_responses_api(oai):
    r = oai.responses.create(model="gpt-4.1", input=_german_chat(5))
    assert r.output_text == INCIDENT_REPLY
    fixed = oai.responses.create(model="gpt-4.1", instructions="Answer in German.", input=_german_chat(5))
    assert fixed.output_text != INCIDENT_REPLY


def test_incident_anthropic(ant):
    m = ant.messages.create(model="claude-x", max_tokens=256, messages=_german_chat(5))
    assert m.content[0].text == INCIDENT_REPLY
    assert m.usage.cache_read_input_tokens > 0
    fixed = ant.messages.create(model="claude-x", max_tokens=256, messages=_german_chat(5),
                                system=[{"type": "text", "text": "Antworte immer auf Deutsch."}])
    assert fixed.content[0].text != INCIDENT_REPLY and _looks_german(fixed.content[0].text)


def test_incident_google(gem):
    contents = [
        genai_types.Content(role="user" if m["role"] == "user" else "model",
                            parts=[genai_types.Part(text=m["content"])])
        for m in _german_chat(5)
    ]
    r = gem.models.generate_content(model="gemini-2.0-flash", contents=contents)
    assert r.text == INCIDENT_REPLY
    fixed = gem.models.generate_content(
        model="gemini-2.0-flash", contents=contents,
        config=genai_types.GenerateContentConfig(system_instruction="Reply in German only."))
    assert fixed.text != INCIDENT_REPLY and _looks_german(fixed.text)


# ---------------------------------------------------------------------------
# Errors and scripting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("status,exc", [(400, "BadRequestError"), (429, "RateLimitError"),
                                        (500, "InternalServerError")])
def test_error_models_openai(oai, status, exc):
    with pytest.raises(getattr(openai, exc)) as info:
        oai.chat.completions.create(model=f"error-{status}", messages=[{"role": "user", "content": "Hi"}])
    assert info.value.status_code == status
    assert info.value.body["type"]  # the SDK unwraps {"error": {...}}


@pytest.mark.parametrize("status,exc,etype", [(400, "BadRequestError", "invalid_request_error"),
                                              (429, "RateLimitError", "rate_limit_error"),
                                              (500, "InternalServerError", "api_error")])
def test_error_models_anthropic(ant, status, exc, etype):
    with pytest.raises(getattr(anthropic, exc)) as info:
        ant.messages.create(model=f"error-{status}", max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
    assert info.value.status_code == status
    assert info.value.body["error"]["type"] == etype


@pytest.mark.parametrize("status,exc,gstatus", [(400, genai_errors.ClientError, "INVALID_ARGUMENT"),
                                                (429, genai_errors.ClientError, "RESOURCE_EXHAUSTED"),
                                                (500, genai_errors.ServerError, "INTERNAL")])
def test_error_models_google(gem, status, exc, gstatus):
    with pytest.raises(exc) as info:
        gem.models.generate_content(model=f"error-{status}", contents="Hi")
    assert info.value.code == status
    assert info.value.status == gstatus


def test_slow_model_times_out(srv):
    client = openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "Hi"}])
    assert time.monotonic() - start < 2.5


def test_enqueue_500_and_429(oai, ant, srv):
    srv.enqueue(status=500, json={"error": {"message": "boom", "type": "server_error"}})
    srv.enqueue(status=429, json={"error": {"message": "slow down", "type": "requests"}},
                headers={"x-ratelimit-remaining-requests": "0"})
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert info.value.message.endswith("boom") or "boom" in str(info.value)
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    # queue drained: default behaviour again
    assert oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]).choices
    # an error status without a body gets the provider's own error shape
    srv.enqueue(status=429)
    with pytest.raises(anthropic.RateLimitError) as ainfo:
        ant.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
    assert ainfo.value.body["error"]["type"] == "rate_limit_error"


def test_enqueue_delay_times_out(srv):
    client = openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0, timeout=0.5)
    srv.enqueue(delay=2.0, json={"never": "seen"})
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert time.monotonic() - start < 1.5
    # the server still answers normally afterwards
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content


def test_enqueue_delay_without_body_gives_default_answer(srv, oai):
    srv.enqueue(delay=0.1)
    start = time.monotonic()
    r = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert time.monotonic() - start >= 0.1
    assert r.choices[0].message.content.startswith("Hello")


def test_enqueue_timeout_anthropic_and_google(srv):
    srv.enqueue(delay=2.0, path_contains="/v1/messages")
    srv.enqueue(delay=2.0, path_contains="generateContent")
    ant = anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="test", max_retries=0, timeout=0.5)
    with pytest.raises(anthropic.APITimeoutError):
        ant.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
    gem = genai.Client(api_key="test", http_options={"base_url": srv.google_base_url, "timeout": 500})
    with pytest.raises(Exception) as info:
        gem.models.generate_content(model="gemini-2.0-flash", contents="Hi")
    assert "timeout" in type(info.value).__name__.lower() or "timed out" in str(info.value).lower()


def test_enqueue_malformed_raw(oai, srv):
    srv.enqueue(raw=b'{"id": "chatcmpl-broken", "choices": [')
    with pytest.raises((openai.APIError, ValueError)):  # openai 3.x lets json.JSONDecodeError escape
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])


def test_enqueue_raw_google_and_anthropic(gem, ant, srv):
    srv.enqueue(raw=b"not json at all", path_contains=":generateContent")
    with pytest.raises(ValueError):  # json.JSONDecodeError escapes the SDK
        gem.models.generate_content(model="gemini-2.0-flash", contents="Hi")
    srv.enqueue(raw=b"{oops", path_contains="/v1/messages")
    with pytest.raises((anthropic.APIError, ValueError)):
        ant.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "Hi"}])


def test_enqueue_path_contains(oai, srv):
    srv.enqueue(status=500, path_contains="/embeddings")
    # chat is not affected by the embeddings script
    assert oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]).choices
    with pytest.raises(openai.InternalServerError):
        oai.embeddings.create(model="e", input="x")
    assert srv.pending == 0


def test_enqueue_json_body(oai, srv):
    srv.enqueue(json={
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 1, "model": "scripted-model",
        "choices": [{"index": 0, "finish_reason": "length",
                     "message": {"role": "assistant", "content": "scripted!"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    })
    r = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content == "scripted!"
    assert r.choices[0].finish_reason == "length"
    assert r.model == "scripted-model"


def test_enqueue_sse_openai(oai, srv):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    srv.enqueue(sse=[
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ab"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "cd"}, "finish_reason": "stop"}]},
        "[DONE]",
        {**base, "choices": [{"index": 0, "delta": {"content": "never"}, "finish_reason": None}]},
    ])
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                              stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abcd"


def test_enqueue_sse_anthropic_named_events(ant, srv):
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
           "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
    srv.enqueue(sse=[
        ("message_start", {"type": "message_start", "message": msg}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "scripted"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                           "usage": {"output_tokens": 7}}),
        ("message_stop", {"type": "message_stop"}),
    ])
    with ant.messages.stream(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == "scripted"
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 7


def test_enqueue_sse_error_event_anthropic(ant, srv):
    srv.enqueue(sse=[("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})])
    with pytest.raises(anthropic.APIStatusError):
        list(ant.messages.create(model="claude-x", max_tokens=10, stream=True,
                                 messages=[{"role": "user", "content": "Hi"}]))


def test_chunk_delay():
    with DemoServer(chunk_delay=0.01) as srv:
        client = openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0)
        start = time.monotonic()
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                                     stream=True))
        assert time.monotonic() - start >= 0.01 * (len(chunks) - 1)


def test_stop_interrupts_pending_delay():
    srv = DemoServer().start()
    client = openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0, timeout=0.3)
    srv.enqueue(delay=30)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    start = time.monotonic()
    srv.stop()
    assert time.monotonic() - start < 3


def test_main_serves_until_interrupted():
    import signal
    import subprocess

    script = Path(__file__).resolve().parents[1] / "examples" / "demo_server.py"
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "http://127.0.0.1:" in first
        base_url = first.split()[-1]
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="test", max_retries=0, timeout=5)
        assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]).choices
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


# ---------------------------------------------------------------------------
# Amazon Bedrock (boto3)
# ---------------------------------------------------------------------------


def _bedrock(srv: DemoServer):
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    return boto3.client("bedrock-runtime", endpoint_url=srv.base_url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))


def test_bedrock_event_stream_frames_pass_botocores_checksums(srv):
    from botocore.eventstream import EventStreamBuffer
    from demo_server_bedrock import chunk_frame, event_frame

    buffer = EventStreamBuffer()
    buffer.add_data(event_frame("messageStart", {"role": "assistant"}) + chunk_frame({"generation": "Hallo"}))
    first, second = list(buffer)
    assert first.headers[":event-type"] == "messageStart" and json.loads(first.payload) == {"role": "assistant"}
    assert second.headers[":event-type"] == "chunk" and "bytes" in json.loads(second.payload)


def test_bedrock_converse_answers_in_the_conversation_language_and_streams(srv):
    client = _bedrock(srv)
    messages = [{"role": "user", "content": [{"text": GERMAN_TURNS[0]}]}]
    answer = client.converse(modelId="amazon.nova-lite-v1:0", messages=messages)
    text = answer["output"]["message"]["content"][0]["text"]
    assert _looks_german(text) and answer["stopReason"] == "end_turn" and answer["usage"]["outputTokens"] > 0
    events = list(client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=messages)["stream"])
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == text
    assert events[-1]["metadata"]["usage"] == answer["usage"]


@pytest.mark.parametrize("status,code", [(400, "ValidationException"), (429, "ThrottlingException"), (500, "InternalServerException")])
def test_bedrock_errors_are_botocores_modeled_exceptions(srv, status, code):
    client = _bedrock(srv)
    with pytest.raises(getattr(client.exceptions, code)) as info:
        client.converse(modelId=f"error-{status}", messages=[{"role": "user", "content": [{"text": "Hi"}]}])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
