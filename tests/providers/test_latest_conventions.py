"""A user opts in to the GenAI conventions after v1.41 (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental),
as for the official instrumentations: one test per change their backend shows, real clients over loopback.

The names and types come from open-telemetry/semantic-conventions-genai (unreleased):
docs/gen-ai/non-normative/migration.md, client-inference.md, client-embeddings.md, model/gen-ai/registry.yaml.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

import micrometrics
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
CLAUDE = "claude-sonnet-5-5"
GERMAN = "Hallo, wo ist meine Bestellung? Ich warte schon seit einer Woche."

#: What only the newer conventions name: never emitted by default.
LATEST_ATTRIBUTES = {
    A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, A.GEN_AI_RETRIEVAL_TOP_K, A.GEN_AI_REQUEST_REASONING_LEVEL,
    A.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID, A.GEN_AI_PROMPT_NAME, A.GEN_AI_PROMPT_VERSION, A.GEN_AI_TOKEN_MODALITY,
}
LATEST_METRICS = {
    M.GEN_AI_CLIENT_INFERENCE_DURATION, M.GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK, M.GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK,
    M.GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS, M.GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS,
    M.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS, M.GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS,
    M.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, M.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
    M.GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, M.GEN_AI_CLIENT_EMBEDDINGS_DURATION,
    M.GEN_AI_CLIENT_EMBEDDINGS_OPERATION_INPUT_TOKENS,
}
V141_METRICS = {
    M.GEN_AI_CLIENT_OPERATION_DURATION, M.GEN_AI_CLIENT_TOKEN_USAGE, M.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
}


@pytest.fixture
def latest(monkeypatch):
    """The variable as a user sets it for all their instrumentations: other categories beside ours."""
    monkeypatch.setenv(OPT_IN, "http, gen_ai_latest_experimental")


@pytest.fixture
def default(monkeypatch):
    monkeypatch.delenv(OPT_IN, raising=False)


def openai_client(demo) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def anthropic_client(demo) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key="sk-ant-test", max_retries=0)


def gemini(demo) -> genai.Client:
    return genai.Client(api_key="google-key", http_options={"base_url": demo.google_base_url})


def claude_message(**usage) -> dict:
    return {
        "id": "msg_scripted", "type": "message", "role": "assistant", "model": CLAUDE,
        "content": [{"type": "text", "text": "Gern, ich sehe nach."}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 9, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, **usage},
    }


@micrometrics.retriever(data_source="kb")
def search(query: str, k: int = 3) -> list[dict]:
    return [{"id": f"doc-{i}", "score": 1.0 - i / 10} for i in range(k)]


def points(metrics: dict, name: str) -> list:
    assert name in metrics, f"{name} not emitted; emitted: {sorted(metrics)}"
    return metrics[name]


def one_point(metrics: dict, name: str):
    found = points(metrics, name)
    assert len(found) == 1, found
    return found[0]


def every_attribute_key(telemetry) -> set[str]:
    keys: set[str] = set()
    for span in telemetry.spans():
        keys |= set(span.attributes)
    for record in telemetry.logs():
        keys |= set(record.attributes or {})
    for found in telemetry.metrics().values():
        for p in found:
            keys |= set(p.attributes)
    return keys


def test_by_default_only_the_v141_names_are_emitted(demo, telemetry, default):
    """The same calls as below, without the variable: v1.41 names, whatever the requests carry."""
    handle = telemetry.instrument(capture_content=True, metrics=[])
    assert handle.settings.conventions == "v1.41"
    client = openai_client(demo)
    client.chat.completions.create(model="o3-mini", messages=[{"role": "user", "content": GERMAN}], reasoning_effort="low")
    client.responses.create(
        model="gpt-4.1", input=GERMAN, reasoning={"effort": "high"}, previous_response_id="resp_earlier",
        prompt={"id": "pmpt_support", "version": "3"},
    )
    client.embeddings.create(model="text-embedding-3-small", input=["Bestellung 1234"])
    demo.enqueue(json=claude_message(cache_creation_input_tokens=25))
    anthropic_client(demo).messages.create(
        model=CLAUDE, max_tokens=300, output_config={"effort": "medium"}, messages=[{"role": "user", "content": GERMAN}],
    )
    google = gemini(demo)  # held: a Client closes its connection when collected
    google.models.generate_content(model="gemini-2.0-flash", contents=GERMAN, config=types.GenerateContentConfig(top_k=40))
    search("shipping")

    keys = every_attribute_key(telemetry)
    assert keys & LATEST_ATTRIBUTES == set()
    metrics = telemetry.metrics()
    assert set(metrics) & LATEST_METRICS == set()
    assert {M.GEN_AI_CLIENT_OPERATION_DURATION, M.GEN_AI_CLIENT_TOKEN_USAGE} <= set(metrics)
    claude = telemetry.span(f"chat {CLAUDE}").attributes
    assert claude[A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 25
    assert telemetry.span("generate_content gemini-2.0-flash").attributes[A.GEN_AI_REQUEST_TOP_K] == 40
    assert telemetry.span("retrieval kb").attributes[A.GEN_AI_REQUEST_TOP_K] == 3
    operations = {p.attributes[A.GEN_AI_OPERATION_NAME] for p in metrics[M.GEN_AI_CLIENT_OPERATION_DURATION]}
    assert operations == {"chat", "embeddings", "generate_content", "retrieval"}


def test_the_option_opts_in_without_the_variable(demo, telemetry, default):
    """``instrument(conventions=...)``: the newer conventions for micrometrics alone, the other instrumentations untouched."""
    handle = telemetry.instrument(conventions="gen_ai_latest_experimental", metrics=[])
    openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": GERMAN}])
    assert handle.settings.conventions == "gen_ai_latest_experimental"
    assert M.GEN_AI_CLIENT_INFERENCE_DURATION in telemetry.metrics()


def test_inference_has_its_own_duration_time_to_first_chunk_and_time_per_chunk(demo, telemetry, latest):
    telemetry.instrument(metrics=[])
    client = openai_client(demo)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": GERMAN}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="error-500", messages=[{"role": "user", "content": GERMAN}])

    metrics = telemetry.metrics()
    assert set(metrics) & V141_METRICS == set()
    durations = {p.attributes[A.GEN_AI_REQUEST_MODEL]: p for p in points(metrics, M.GEN_AI_CLIENT_INFERENCE_DURATION)}
    assert set(durations) == {"gpt-4o-mini", "error-500"}
    assert durations["error-500"].attributes[A.ERROR_TYPE] == "500"
    assert A.ERROR_TYPE not in durations["gpt-4o-mini"].attributes
    first_chunk = one_point(metrics, M.GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK)
    span = telemetry.span("chat gpt-4o-mini")
    assert first_chunk.sum == pytest.approx(span.attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK])
    assert 0 < first_chunk.sum <= durations["gpt-4o-mini"].sum
    per_chunk = one_point(metrics, M.GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK)
    assert per_chunk.count >= 2 and per_chunk.sum <= durations["gpt-4o-mini"].sum


def test_tokens_are_a_histogram_per_direction_and_usage_counters(demo, telemetry, latest):
    telemetry.instrument(metrics=[])
    history = [{"role": "user", "content": "Hallo"}, {"role": "assistant", "content": "Hallo!"}, {"role": "user", "content": GERMAN}]
    r = openai_client(demo).chat.completions.create(model="o3-mini", messages=history)
    usage = r.usage
    assert usage.completion_tokens_details.reasoning_tokens > 0 and usage.prompt_tokens_details.cached_tokens > 0

    metrics = telemetry.metrics()
    assert M.GEN_AI_CLIENT_TOKEN_USAGE not in metrics
    inputs = one_point(metrics, M.GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS)
    outputs = one_point(metrics, M.GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS)
    assert (inputs.count, inputs.sum, outputs.count, outputs.sum) == (1, usage.prompt_tokens, 1, usage.completion_tokens)
    assert A.GEN_AI_TOKEN_TYPE not in inputs.attributes and A.GEN_AI_TOKEN_TYPE not in outputs.attributes
    counted = {
        M.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS: usage.prompt_tokens,
        M.GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS: usage.completion_tokens,
        M.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: usage.prompt_tokens_details.cached_tokens,
        M.GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: usage.completion_tokens_details.reasoning_tokens,
    }
    for name, value in counted.items():
        point = one_point(metrics, name)
        assert point.value == value, name
        assert point.attributes[A.GEN_AI_TOKEN_MODALITY] == "unknown"
        assert (point.attributes[A.GEN_AI_OPERATION_NAME], point.attributes[A.GEN_AI_PROVIDER_NAME]) == ("chat", "openai")
    # Chat Completions reports no cache write here: no point rather than a made-up zero.
    assert M.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS not in metrics


def test_embeddings_have_their_own_duration_and_input_tokens(demo, telemetry, latest):
    telemetry.instrument(metrics=[])
    r = openai_client(demo).embeddings.create(model="text-embedding-3-small", input=["Bestellung 1234", "Rückgabe"])

    metrics = telemetry.metrics()
    assert set(metrics) & (V141_METRICS | {M.GEN_AI_CLIENT_INFERENCE_DURATION, M.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS}) == set()
    duration = one_point(metrics, M.GEN_AI_CLIENT_EMBEDDINGS_DURATION)
    tokens = one_point(metrics, M.GEN_AI_CLIENT_EMBEDDINGS_OPERATION_INPUT_TOKENS)
    assert duration.attributes[A.GEN_AI_OPERATION_NAME] == "embeddings" and duration.count == 1
    assert (tokens.count, tokens.sum) == (1, r.usage.prompt_tokens)
    assert tokens.attributes[A.GEN_AI_REQUEST_MODEL] == "text-embedding-3-small"


def test_tokens_written_to_the_cache_are_cache_write(demo, telemetry, latest):
    telemetry.instrument(metrics=[])
    demo.enqueue(json=claude_message(input_tokens=5, cache_creation_input_tokens=25, cache_read_input_tokens=7))
    anthropic_client(demo).messages.create(model=CLAUDE, max_tokens=300, messages=[{"role": "user", "content": GERMAN}])

    attrs = telemetry.span(f"chat {CLAUDE}").attributes
    assert A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attrs
    assert (attrs[A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS], attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]) == (25, 7)
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 5 + 25 + 7  # the conventions count cached input in
    metrics = telemetry.metrics()
    assert one_point(metrics, M.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS).value == 25
    assert one_point(metrics, M.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS).value == 37


def test_parts_of_no_defined_type_are_generic(demo, telemetry, latest):
    """A refusal and a search result: ``{"type": "generic", "generic_type": ...}``, their fields kept, redacted."""
    telemetry.instrument(capture_content=True, metrics=[], redact=lambda text: text.replace("4111", "[card]"))
    refusal = {
        "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": None, "refusal": "I cannot help with card 4111."}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    demo.enqueue(json=refusal)
    openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": GERMAN}])
    anthropic_client(demo).messages.create(
        model=CLAUDE, max_tokens=300, system="Antworte auf Deutsch.",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": GERMAN},
            {"type": "search_result", "source": "https://example.com/faq", "title": "FAQ",
             "content": [{"type": "text", "text": "Lieferung in 3 Tagen."}]},
        ]}],
    )

    output = json.loads(telemetry.span("chat gpt-4o-mini").attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"] == [{"type": "generic", "generic_type": "refusal", "content": "I cannot help with card [card]."}]
    claude = telemetry.span(f"chat {CLAUDE}").attributes
    parts = json.loads(claude[A.GEN_AI_INPUT_MESSAGES])[0]["parts"]
    assert parts[0] == {"type": "text", "content": GERMAN}
    assert parts[1]["type"] == "generic" and parts[1]["generic_type"] == "search_result"
    assert json.loads(claude[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Antworte auf Deutsch."}]
    # The details log record carries the same shape, as a structured value.
    [details] = [r for r in telemetry.logs() if r.attributes.get(A.GEN_AI_REQUEST_MODEL) == "gpt-4o-mini"]
    assert details.attributes[A.GEN_AI_OUTPUT_MESSAGES][0]["parts"][0]["type"] == "generic"
    assert details.attributes[A.GEN_AI_OUTPUT_MESSAGES][0]["parts"][0]["generic_type"] == "refusal"


def test_top_k_is_an_int_and_retrieval_names_its_own(demo, telemetry, latest):
    telemetry.instrument(metrics=[])
    config = types.GenerateContentConfig(top_k=40, temperature=0.2)  # the SDK types top_k as a float
    google = gemini(demo)  # held: a Client closes its connection when collected
    google.models.generate_content(model="gemini-2.0-flash", contents=GERMAN, config=config)
    search("shipping", k=4)

    google_top_k = telemetry.span("generate_content gemini-2.0-flash").attributes[A.GEN_AI_REQUEST_TOP_K]
    assert (google_top_k, type(google_top_k)) == (40, int)
    retrieval = telemetry.span("retrieval kb").attributes
    assert A.GEN_AI_REQUEST_TOP_K not in retrieval
    assert (retrieval[A.GEN_AI_RETRIEVAL_TOP_K], type(retrieval[A.GEN_AI_RETRIEVAL_TOP_K])) == (4, int)
    # Retrieval is neither inference nor embeddings: it stays on gen_ai.client.operation.duration.
    assert {p.attributes[A.GEN_AI_OPERATION_NAME] for p in telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]} == {"retrieval"}


def test_the_reasoning_level_requested_is_recorded_as_sent(demo, telemetry, latest):
    telemetry.instrument(metrics=[])
    client = openai_client(demo)
    client.chat.completions.create(model="o3-mini", messages=[{"role": "user", "content": GERMAN}], reasoning_effort="low")
    client.responses.create(model="gpt-5", input=GERMAN, reasoning={"effort": "high"})
    demo.enqueue(json=claude_message())
    anthropic_client(demo).messages.create(
        model=CLAUDE, max_tokens=300, output_config={"effort": "medium"}, messages=[{"role": "user", "content": GERMAN}],
    )
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW))
    google = gemini(demo)  # held: a Client closes its connection when collected
    google.models.generate_content(model="gemini-3-pro", contents=GERMAN, config=config)
    openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": GERMAN}])

    def level(name):
        return telemetry.span(name).attributes.get(A.GEN_AI_REQUEST_REASONING_LEVEL)

    assert level("chat o3-mini") == "low"
    assert level("chat gpt-5") == "high"
    assert level(f"chat {CLAUDE}") == "medium"
    assert level("generate_content gemini-3-pro") == "LOW"
    assert level("chat gpt-4o-mini") is None  # none requested, none recorded


def test_the_previous_response_a_request_continues(demo, telemetry, latest):
    telemetry.instrument(metrics=[])
    client = openai_client(demo)
    first = client.responses.create(model="gpt-4.1", input=GERMAN)
    client.responses.create(model="gpt-4.1", input="Und wann kommt sie?", previous_response_id=first.id)

    spans = sorted(telemetry.spans(), key=lambda s: s.start_time)
    assert A.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID not in spans[0].attributes
    assert spans[1].attributes[A.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID] == first.id == spans[0].attributes[A.GEN_AI_RESPONSE_ID]


def test_a_prompt_template_is_recorded_by_name_and_version(demo, telemetry, latest):
    """Its variables are content: not recorded, even with capture on."""
    telemetry.instrument(capture_content=True, metrics=[])
    openai_client(demo).responses.create(
        model="gpt-4.1", input=GERMAN, prompt={"id": "pmpt_support", "version": "3", "variables": {"customer": "Ada Lovelace"}},
    )
    attrs = telemetry.span("chat gpt-4.1").attributes
    assert (attrs[A.GEN_AI_PROMPT_NAME], attrs[A.GEN_AI_PROMPT_VERSION]) == ("pmpt_support", "3")
    assert not any("Ada Lovelace" in str(v) for v in attrs.values())
