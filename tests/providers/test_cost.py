"""Cost in money, as a backend shows it: ``gen_ai.usage.cost.*`` on the inference span and ``micrometrics.cost``
points, exact against prices computed here by hand from the provider's published price (USD per million tokens).

Each provider reports its usage its own way (OpenAI's completion tokens include reasoning, Anthropic's input
tokens exclude cache reads and writes, Gemini counts thoughts apart): the scripted responses below carry
all of it, and each expected amount is the sum written out in the test.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import anthropic
import openai
import pytest
from google import genai

import micrometrics
from micrometrics import internal_errors
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V

GERMAN = [{"role": "user", "content": "Hallo, wo ist meine Bestellung bitte?"}]


def openai_client(demo) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def chat_json(model: str, usage: dict) -> dict:
    return {
        "id": "chatcmpl-cost", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Ihr Paket ist unterwegs."}, "finish_reason": "stop"}],
        "usage": usage,
    }


def cost_points(telemetry) -> list:
    return telemetry.metrics().get(M.MICROMETRICS_COST, [])


def usd(text: str) -> float:
    """A hand-computed amount, written as decimal text: the float the SDK must export."""
    return float(Decimal(text))


# ---- exact, per provider ------------------------------------------------------------------------------


def test_openai_cost_counts_cached_input_at_its_price_and_reasoning_once_as_output(demo, telemetry):
    """o4-mini: $1.10 input, $0.275 cached input, $4.40 output. OpenAI's 1,200 prompt tokens include the 1,000
    cached ones, its 300 completion tokens include the 200 reasoning ones: each token is paid once."""
    telemetry.instrument(metrics=[])
    demo.enqueue(json=chat_json("o4-mini-2025-04-16", {
        "prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1000}, "completion_tokens_details": {"reasoning_tokens": 200},
    }))

    openai_client(demo).chat.completions.create(model="o4-mini", messages=GERMAN)

    # 200 x 1.10 + 1,000 x 0.275 + 100 x 4.40 + 200 x 4.40 = 220 + 275 + 440 + 880 = 1,815 per million
    expected = usd("0.001815")
    attrs = telemetry.span().attributes
    assert attrs[A.GEN_AI_USAGE_COST_AMOUNT] == expected
    assert attrs[A.GEN_AI_USAGE_COST_CURRENCY] == "USD"
    assert attrs[A.GEN_AI_USAGE_COST_SOURCE] == V.COST_SOURCE_LOCAL
    [point] = cost_points(telemetry)
    assert point.value == expected
    assert dict(point.attributes) == {
        A.GEN_AI_OPERATION_NAME: "chat", A.GEN_AI_PROVIDER_NAME: "openai",
        A.GEN_AI_REQUEST_MODEL: "o4-mini", A.GEN_AI_RESPONSE_MODEL: "o4-mini-2025-04-16",
    }


def test_the_dated_snapshot_a_response_names_is_priced_by_its_family_unless_the_table_lists_it(demo, telemetry):
    """gpt-4o-2024-08-06 is priced as gpt-4o ($2.50 / $10); gpt-4o-2024-05-13 kept its launch price ($5 / $15)."""
    telemetry.instrument(metrics=[])
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    demo.enqueue(json=chat_json("gpt-4o-2024-08-06", usage))
    demo.enqueue(json=chat_json("gpt-4o-2024-05-13", usage))
    client = openai_client(demo)
    client.chat.completions.create(model="gpt-4o", messages=GERMAN)
    client.chat.completions.create(model="gpt-4o", messages=GERMAN)

    costs = {s.attributes[A.GEN_AI_RESPONSE_MODEL]: s.attributes[A.GEN_AI_USAGE_COST_AMOUNT] for s in telemetry.spans()}
    # 1,000 x 2.50 + 100 x 10 = 3,500 per million; 1,000 x 5 + 100 x 15 = 6,500 per million
    assert costs == {"gpt-4o-2024-08-06": usd("0.0035"), "gpt-4o-2024-05-13": usd("0.0065")}
    assert sorted(p.value for p in cost_points(telemetry)) == [usd("0.0035"), usd("0.0065")]


def anthropic_json(model: str, usage: dict) -> dict:
    return {
        "id": "msg_cost", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "Ihr Paket ist unterwegs."}],
        "stop_reason": "end_turn", "stop_sequence": None, "usage": usage,
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_cost_prices_cache_reads_and_cache_writes_apart(demo, telemetry, stream):
    """claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output. Anthropic's input_tokens
    (100) exclude the 2,000 read from the cache and the 500 written to it."""
    telemetry.instrument(metrics=[])
    usage = {"input_tokens": 100, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500, "output_tokens": 300}
    body = anthropic_json("claude-sonnet-4-5-20250929", usage)
    if stream:
        start = {**body, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        demo.enqueue(sse=[
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Ihr Paket ist unterwegs."}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 300}}),
            ("message_stop", {"type": "message_stop"}),
        ])
    else:
        demo.enqueue(json=body)

    client = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key="test", max_retries=0)
    response = client.messages.create(model="claude-sonnet-4-5", max_tokens=400, messages=GERMAN, stream=stream)
    if stream:
        list(response)

    # 100 x 3 + 2,000 x 0.30 + 500 x 3.75 + 300 x 15 = 300 + 600 + 1,875 + 4,500 = 7,275 per million
    attrs = telemetry.span().attributes
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 2600  # the conventions' count: every input token
    assert attrs[A.GEN_AI_USAGE_COST_AMOUNT] == usd("0.007275")
    [point] = cost_points(telemetry)
    assert point.value == usd("0.007275") and point.attributes[A.GEN_AI_PROVIDER_NAME] == "anthropic"


def test_a_prompt_past_the_long_context_threshold_is_priced_at_the_long_context_rates(demo, telemetry):
    """Claude Sonnet 4.5 above 200,000 input tokens: $6 input, $0.60 cache read, $22.50 output."""
    telemetry.instrument(metrics=[])
    demo.enqueue(json=anthropic_json("claude-sonnet-4-5", {
        "input_tokens": 150_000, "cache_read_input_tokens": 60_000, "cache_creation_input_tokens": 0, "output_tokens": 1000,
    }))
    anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key="test", max_retries=0).messages.create(
        model="claude-sonnet-4-5", max_tokens=400, messages=GERMAN)
    # 150,000 x 6 + 60,000 x 0.60 + 1,000 x 22.50 = 900,000 + 36,000 + 22,500 = 958,500 per million
    assert telemetry.span().attributes[A.GEN_AI_USAGE_COST_AMOUNT] == usd("0.9585")


def gemini_json(usage: dict, model_version: str) -> dict:
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Ihr Paket ist unterwegs."}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage, "modelVersion": model_version, "responseId": "resp-cost",
    }


def test_google_cost_prices_thoughts_as_output_and_cached_content_at_its_price(demo, telemetry):
    """gemini-2.5-flash: $0.30 input, $0.03 cached, $2.50 output (thinking included). Gemini's 1,000 prompt tokens
    include the 400 cached ones; its 150 thoughts come on top of the 50 candidate tokens."""
    telemetry.instrument(metrics=[])
    demo.enqueue(json=gemini_json({
        "promptTokenCount": 1000, "cachedContentTokenCount": 400, "candidatesTokenCount": 50,
        "thoughtsTokenCount": 150, "totalTokenCount": 1200,
    }, "gemini-2.5-flash-001"))

    client = genai.Client(api_key="test", http_options={"base_url": demo.google_base_url})
    client.models.generate_content(model="gemini-2.5-flash", contents="Hallo, wo ist meine Bestellung bitte?")

    # 600 x 0.30 + 400 x 0.03 + 50 x 2.50 + 150 x 2.50 = 180 + 12 + 125 + 375 = 692 per million
    attrs = telemetry.span().attributes
    assert (attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS], attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]) == (200, 150)
    assert attrs[A.GEN_AI_USAGE_COST_AMOUNT] == usd("0.000692")
    [point] = cost_points(telemetry)
    assert point.value == usd("0.000692") and point.attributes[A.GEN_AI_PROVIDER_NAME] == "gcp.gemini"


def test_embeddings_are_priced_by_their_input_tokens(demo, telemetry):
    """text-embedding-3-small: $0.02 per million input tokens."""
    telemetry.instrument(metrics=[])
    openai_client(demo).embeddings.create(model="text-embedding-3-small", input=["Paket", "Bestellung bitte"])
    attrs = telemetry.span().attributes
    tokens = attrs[A.GEN_AI_USAGE_INPUT_TOKENS]
    assert tokens > 0
    assert attrs[A.GEN_AI_USAGE_COST_AMOUNT] == float(Decimal(tokens) * Decimal("0.02") / 1_000_000)
    [point] = cost_points(telemetry)
    assert point.attributes[A.GEN_AI_OPERATION_NAME] == "embeddings"


# ---- no price, no cost ----------------------------------------------------------------------------------


def test_an_unknown_model_records_no_cost_never_a_guess(demo, telemetry):
    telemetry.instrument(metrics=[])
    openai_client(demo).chat.completions.create(model="my-local-llama", messages=GERMAN)
    attrs = telemetry.span().attributes
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] > 0  # usage was there: the price was not
    assert not any(k.startswith("gen_ai.usage.cost") for k in attrs)
    assert cost_points(telemetry) == []
    assert M.GEN_AI_CLIENT_TOKEN_USAGE in telemetry.metrics()  # the rest of the call's telemetry is unchanged


def test_cached_tokens_of_a_model_without_a_cached_price_record_no_cost(demo, telemetry):
    """gpt-4o-2024-05-13 has no cached-input price: a call that read from the cache is not priced as if it had not."""
    telemetry.instrument(metrics=[])
    demo.enqueue(json=chat_json("gpt-4o-2024-05-13", {
        "prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010, "prompt_tokens_details": {"cached_tokens": 600}}))
    openai_client(demo).chat.completions.create(model="gpt-4o-2024-05-13", messages=GERMAN)
    assert A.GEN_AI_USAGE_COST_AMOUNT not in telemetry.span().attributes
    assert cost_points(telemetry) == []


def test_usage_that_does_not_add_up_records_no_cost(demo, telemetry):
    telemetry.instrument(metrics=[])
    demo.enqueue(json=chat_json("gpt-4o-mini", {
        "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 50}, "completion_tokens_details": {"reasoning_tokens": 9}}))
    openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    assert A.GEN_AI_USAGE_COST_AMOUNT not in telemetry.span().attributes


def test_a_stream_is_priced_from_its_usage_and_a_stream_cut_short_is_not(demo, telemetry):
    """gpt-4o-mini streamed with include_usage: priced at its end. Without usage, or closed before its end
    (usage partial, the provider billed what it generated): no cost."""
    telemetry.instrument(metrics=[])
    client = openai_client(demo)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True, stream_options={"include_usage": True}))
    assert chunks
    list(client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True))
    cut = client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True, stream_options={"include_usage": True})
    next(iter(cut))
    cut.close()

    priced, without_usage, closed = sorted(telemetry.spans(), key=lambda s: s.start_time)
    attrs = priced.attributes
    # gpt-4o-mini: $0.15 input, $0.60 output
    expected = (Decimal(attrs[A.GEN_AI_USAGE_INPUT_TOKENS]) * Decimal("0.15") + Decimal(attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS]) * Decimal("0.6")) / 1_000_000
    assert attrs[A.GEN_AI_USAGE_COST_AMOUNT] == float(expected)
    assert A.GEN_AI_USAGE_COST_AMOUNT not in without_usage.attributes
    assert closed.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED
    assert A.GEN_AI_USAGE_COST_AMOUNT not in closed.attributes
    assert [p.value for p in cost_points(telemetry)] == [float(expected)]


def test_a_failed_call_records_no_cost(demo, telemetry):
    telemetry.instrument(metrics=[])
    demo.enqueue(status=429)
    with pytest.raises(openai.RateLimitError):
        openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    assert A.GEN_AI_USAGE_COST_AMOUNT not in telemetry.span().attributes
    assert cost_points(telemetry) == []


# ---- your prices win ------------------------------------------------------------------------------------

NEGOTIATED = {"gpt-4o-mini": {"input": 0.1, "cached_input": 0.05, "output": 0.5}}


def _single_call_cost(demo, telemetry) -> float:
    demo.enqueue(json=chat_json("gpt-4o-mini-2024-07-18", {"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100}))
    openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    [point] = cost_points(telemetry)
    cost = telemetry.span().attributes[A.GEN_AI_USAGE_COST_AMOUNT]
    assert point.value == cost
    return cost


def test_instrument_pricing_replaces_the_shipped_price_of_a_model(demo, telemetry):
    telemetry.instrument(metrics=[], pricing=NEGOTIATED)
    # 2,000 x 0.10 + 100 x 0.50 = 250 per million (the shipped $0.15 / $0.60 would make 360)
    assert _single_call_cost(demo, telemetry) == usd("0.00025")


def test_a_price_file_can_be_given_by_path(demo, telemetry, tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(NEGOTIATED))
    telemetry.instrument(metrics=[], pricing=str(path))
    assert _single_call_cost(demo, telemetry) == usd("0.00025")


def test_micrometrics_config_prices_win_over_code(demo, telemetry, tmp_path, monkeypatch):
    config = tmp_path / "ops.toml"
    config.write_text('[pricing."gpt-4o-mini"]\ninput = 0.12\noutput = 0.4\n')
    monkeypatch.setenv("MICROMETRICS_CONFIG", str(config))
    telemetry.instrument(metrics=[], pricing=NEGOTIATED)
    # 2,000 x 0.12 + 100 x 0.40 = 280 per million
    assert _single_call_cost(demo, telemetry) == usd("0.00028")


def test_a_model_the_shipped_table_does_not_know_gets_the_price_you_give_it(demo, telemetry):
    """A fine-tuned or self-hosted model, restricted to the provider that serves it."""
    telemetry.instrument(metrics=[], pricing={
        "my-local-llama": {"input": 0.2, "output": 0.2, "provider": "openai"},
        "my-other-llama": {"input": 9.0, "output": 9.0, "provider": "anthropic"},
    })
    demo.enqueue(json=chat_json("my-local-llama", {"prompt_tokens": 500, "completion_tokens": 500, "total_tokens": 1000}))
    demo.enqueue(json=chat_json("my-other-llama", {"prompt_tokens": 500, "completion_tokens": 500, "total_tokens": 1000}))
    client = openai_client(demo)
    client.chat.completions.create(model="my-local-llama", messages=GERMAN)
    client.chat.completions.create(model="my-other-llama", messages=GERMAN)
    costs = {s.attributes[A.GEN_AI_REQUEST_MODEL]: s.attributes.get(A.GEN_AI_USAGE_COST_AMOUNT) for s in telemetry.spans()}
    assert costs == {"my-local-llama": usd("0.0002"), "my-other-llama": None}  # 1,000 x 0.20 per million


def test_a_second_instrument_with_other_prices_warns_that_the_first_ones_stay(demo, telemetry):
    telemetry.instrument(metrics=[], pricing=NEGOTIATED)
    with pytest.warns(RuntimeWarning, match="already called with other options"):
        micrometrics.instrument(exporter="none", metrics=[], pricing={"gpt-4o-mini": {"input": 9.0, "output": 9.0}})
    assert _single_call_cost(demo, telemetry) == usd("0.00025")


@pytest.mark.parametrize(
    "pricing, error, needles",
    [
        ({"gpt-4o": {"input": -1, "output": 10}}, ValueError, ["['gpt-4o'].input: -1 must be a finite number >= 0"]),
        ({"gpt-4o": {"input": 2.5, "ouptut": 10}}, ValueError, ["unknown field 'ouptut'", "allowed: input, cached_input, cache_write, output, reasoning"]),
        ({"gpt-4o": {"output": 10}}, ValueError, ["['gpt-4o']: needs 'input'"]),
        ({"gpt-4o": {"input": "2.5"}}, TypeError, ["['gpt-4o'].input: '2.5' must be a number"]),
        ({"gpt-4o": {"input": float("nan")}}, ValueError, ["nan must be a finite number"]),
        ({"gpt-4o": {"input": True}}, TypeError, ["True must be a number"]),
        ({"gpt-4o": 2.5}, TypeError, ["['gpt-4o']: must be a mapping of prices"]),
        ({"": {"input": 1}}, TypeError, ["a model name must be a non-empty string"]),
        ({"gpt-4o": {"input": 1, "long_context": {"input": 2}}}, ValueError, ["long_context.above_input_tokens: None must be a positive"]),
        ({"gpt-4o": {"input": 1, "provider": 3}}, TypeError, ["provider: 3 must be a gen_ai.provider.name"]),
        (42, TypeError, ["instrument(pricing=42) takes a mapping of model name to prices"]),
        ([("gpt-4o", {"input": 1})], TypeError, ["takes a mapping of model name to prices"]),
    ],
)
def test_bad_prices_are_refused_naming_the_value_and_what_is_allowed(pricing, error, needles):
    with pytest.raises(error) as info:
        micrometrics.instrument(exporter="none", metrics=[], pricing=pricing)
    for needle in needles:
        assert needle in str(info.value)
    assert micrometrics.installation.current() is None


def test_a_bad_price_in_micrometrics_config_names_the_file_and_the_line(tmp_path, monkeypatch):
    config = tmp_path / "ops.toml"
    config.write_text('[metrics.language_match]\nmode = "guard"\n\n[pricing."gpt-4o"]\ninput = 2.5\noutput = -10\n')
    monkeypatch.setenv("MICROMETRICS_CONFIG", str(config))
    with pytest.raises(ValueError) as info:
        micrometrics.instrument(exporter="none")
    assert str(info.value).startswith(f"{config}:6: pricing['gpt-4o'].output: -10 must be a finite number >= 0")
    assert micrometrics.installation.current() is None


# ---- guard retries: what the guard cost ------------------------------------------------------------------

from test_language_guard import BEDROCK_MODEL, DRIVERS, GERMAN_ANSWER, RUN_IDS, RUNS, _attempt_spans  # noqa: E402
import litellm_registration  # noqa: E402

from micrometrics.metrics.language_match import LanguageMatch  # noqa: E402

#: USD per million tokens of the models the language-guard drivers call: gpt-4o-mini and gemini-2.0-flash
#: as shipped, and the Anthropic driver's claude-sonnet-5-5, which the shipped table does not know, priced here.
PRICES = {
    "openai": {"input": Decimal("0.15"), "cached_input": Decimal("0.075"), "output": Decimal("0.6")},
    "google_genai": {"input": Decimal("0.1"), "cached_input": Decimal("0.025"), "output": Decimal("0.4")},
    "anthropic": {"input": Decimal("3"), "cached_input": Decimal("0.3"), "cache_write": Decimal("3.75"), "output": Decimal("15")},
}
#: The Bedrock drivers' model (Claude 3.5 Haiku through an inference profile), priced here like any model of the user's.
HAIKU_3_5 = {"input": Decimal("0.8"), "cached_input": Decimal("0.08"), "cache_write": Decimal("1"), "output": Decimal("4")}
PRICES.update(bedrock=HAIKU_3_5, bedrock_invoke=HAIKU_3_5, anthropic_bedrock=HAIKU_3_5)
SONNET_5_5 = {"claude-sonnet-5-5": {k: float(v) for k, v in PRICES["anthropic"].items()}}
#: The other drivers' models, priced here as a user's rows (a negotiated price, or a local model's running cost).
USER_PRICED = {"mistral": "mistral-small-latest", "cohere": "command-a-03-2025", "ollama": "llama3.2", "groq": "llama-3.3-70b-versatile"}
USER_PRICE = {"input": Decimal("0.5"), "cached_input": Decimal("0.25"), "output": Decimal("1.5")}
PRICES.update({name: USER_PRICE for name in USER_PRICED})
#: LiteLLM's drivers call gpt-4o-mini (its OpenAI route) and claude-sonnet-5-5 (its Anthropic route).
PRICES.update(litellm=PRICES["openai"], litellm_anthropic=PRICES["anthropic"])
GUARD_PRICING = {
    **SONNET_5_5, BEDROCK_MODEL: {k: float(v) for k, v in HAIKU_3_5.items()},
    **{model: {k: float(v) for k, v in USER_PRICE.items()} for model in USER_PRICED.values()},
}


def by_hand(attrs, prices) -> float:
    """The sum written out, from the usage the span shows."""
    total_in = attrs[A.GEN_AI_USAGE_INPUT_TOKENS]
    read = attrs.get(A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0)
    write = attrs.get(A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, 0)
    out = attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS]
    usd_millionths = (total_in - read - write) * prices["input"] + read * prices.get("cached_input", 0) \
        + write * prices.get("cache_write", 0) + out * prices["output"]
    return float(usd_millionths / 1_000_000)


@pytest.mark.parametrize("name,mode,is_async", RUNS, ids=RUN_IDS)
def test_the_last_attempt_carries_what_the_guard_retries_cost(demo, telemetry, monkeypatch, name, mode, is_async):
    """The German conversation answered in English, retried by the guard: each attempt's span has its own cost, the
    retry's point is charged to the guard, and the attempt the user got carries the retries' total."""
    driver = DRIVERS[name]
    litellm_registration.register(monkeypatch)
    telemetry.instrument(metrics=[LanguageMatch(mode="guard")], pricing=GUARD_PRICING)

    assert driver.call(demo, is_async, mode) == GERMAN_ANSWER

    first, retry = (s.attributes for s in _attempt_spans(telemetry, driver))
    # The driver asks for no usage in the stream (LiteLLM's routes send it only when asked, as OpenAI).
    streamed_openai = name in ("openai", "litellm", "litellm_anthropic") and mode != "plain"
    if streamed_openai:
        assert A.GEN_AI_USAGE_INPUT_TOKENS not in retry
        assert not any("cost" in k for k in (*first, *retry))
        assert cost_points(telemetry) == []
        return
    retry_cost = by_hand(retry, PRICES[name])
    assert retry[A.GEN_AI_USAGE_COST_AMOUNT] == retry_cost
    assert retry[A.MICROMETRICS_GUARD_COST] == retry_cost
    assert A.MICROMETRICS_GUARD_COST not in first
    points = {p.attributes.get(A.GEN_AI_EVALUATION_NAME): p.value for p in cost_points(telemetry)}
    assert points["language_match"] == retry_cost
    if mode == "plain":
        first_cost = by_hand(first, PRICES[name])
        assert first[A.GEN_AI_USAGE_COST_AMOUNT] == first_cost
        assert points == {None: first_cost, "language_match": retry_cost}
    else:
        # The streamed English answer was closed once its prefix failed the guard: what it was billed is unknown.
        assert A.GEN_AI_USAGE_COST_AMOUNT not in first
        assert points == {"language_match": retry_cost}


def test_the_guard_cost_is_the_sum_of_every_retry(demo, telemetry):
    """Two retries before the German answer: the user's attempt carries both retries' cost, never the first attempt's."""
    from demo_server import INCIDENT_REPLY

    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=2)])
    for text, usage in (
        (INCIDENT_REPLY, {"prompt_tokens": 1000, "completion_tokens": 100}),
        (INCIDENT_REPLY, {"prompt_tokens": 1100, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 1000}}),
        (GERMAN_ANSWER, {"prompt_tokens": 1200, "completion_tokens": 200, "prompt_tokens_details": {"cached_tokens": 1000}}),
    ):
        body = chat_json("gpt-4o-mini-2024-07-18", {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]})
        body["choices"][0]["message"]["content"] = text
        demo.enqueue(json=body)

    assert DRIVERS["openai"].call(demo, False, "plain") == GERMAN_ANSWER

    first, second, third = (s.attributes for s in _attempt_spans(telemetry, DRIVERS["openai"]))
    # gpt-4o-mini: $0.15 input, $0.075 cached, $0.60 output
    # 1,000 x 0.15 + 100 x 0.60 = 210;  100 x 0.15 + 1,000 x 0.075 + 100 x 0.60 = 150;  200 x 0.15 + 1,000 x 0.075 + 200 x 0.60 = 225
    assert [a[A.GEN_AI_USAGE_COST_AMOUNT] for a in (first, second, third)] == [usd("0.00021"), usd("0.00015"), usd("0.000225")]
    assert third[A.MICROMETRICS_GUARD_COST] == usd("0.000375")  # 150 + 225 per million
    assert A.MICROMETRICS_GUARD_COST not in first and A.MICROMETRICS_GUARD_COST not in second
    points = {p.attributes.get(A.GEN_AI_EVALUATION_NAME): p.value for p in cost_points(telemetry)}
    assert points == {None: usd("0.00021"), "language_match": usd("0.000375")}


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_a_retry_that_failed_costs_nothing_and_leaves_no_guard_cost(demo, telemetry, mode):
    internal_errors.reset_for_tests()
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=1)])
    demo.enqueue()
    demo.enqueue(status=429)
    assert DRIVERS["google_genai"].call(demo, False, mode) != GERMAN_ANSWER

    first, retry = (s.attributes for s in _attempt_spans(telemetry, DRIVERS["google_genai"]))
    assert retry[A.MICROMETRICS_GUARD_FALLBACK] == V.GUARD_FALLBACK_PREVIOUS
    assert A.GEN_AI_USAGE_COST_AMOUNT not in retry and A.MICROMETRICS_GUARD_COST not in retry
    assert A.MICROMETRICS_GUARD_COST not in first
    assert all(A.GEN_AI_EVALUATION_NAME not in p.attributes for p in cost_points(telemetry))
    assert internal_errors.totals == {}


# ---- LLM-judged metrics: what the judge cost ---------------------------------------------------------------


def _judge(demo, mode: str, via: str = "sync") -> micrometrics.MicroMetric:
    """A user's metric that asks gpt-4o-mini (through an instrumented client) whether the answer is polite."""

    def ask() -> str:
        messages = [{"role": "user", "content": "Ist diese Antwort höflich? Antworte ja oder nein."}]
        if via == "sync":
            return openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content

        async def go() -> str:
            client = openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
            return (await client.chat.completions.create(model="gpt-4o-mini", messages=messages)).choices[0].message.content

        return asyncio.run(go())

    class PoliteJudge(micrometrics.MicroMetric):
        name = "polite_judge"

        def applies(self, call):
            return call.request_model != "gpt-4o-mini"  # not the judge's own calls

        def evaluate(self, call):
            return micrometrics.Result("pass" if ask() else "fail")

    return PoliteJudge(mode=mode, budget_s=10.0)  # a guard that asks an LLM needs more than the default 50 ms


@pytest.mark.parametrize("mode,via", [("async", "sync"), ("guard", "sync"), ("async", "event loop")])
def test_an_llm_judge_adds_its_cost_to_the_call_it_judged(demo, telemetry, mode, via):
    telemetry.instrument(metrics=[_judge(demo, mode, via)])
    openai_client(demo).chat.completions.create(model="gpt-4.1-nano", messages=GERMAN)

    spans = {s.attributes[A.GEN_AI_REQUEST_MODEL]: s.attributes for s in telemetry.spans()}
    judged, judge = spans["gpt-4.1-nano"], spans["gpt-4o-mini"]
    judge_cost = by_hand(judge, PRICES["openai"])
    assert judge[A.GEN_AI_USAGE_COST_AMOUNT] == judge_cost
    assert judged["micrometrics.polite_judge.label"] == "pass"
    assert judged["micrometrics.polite_judge.cost"] == judge_cost
    # gpt-4.1-nano: $0.10 input, $0.40 output
    judged_cost = float((judged[A.GEN_AI_USAGE_INPUT_TOKENS] * Decimal("0.1") + judged[A.GEN_AI_USAGE_OUTPUT_TOKENS] * Decimal("0.4")) / 1_000_000)
    assert judged[A.GEN_AI_USAGE_COST_AMOUNT] == judged_cost
    points = {(p.attributes[A.GEN_AI_REQUEST_MODEL], p.attributes.get(A.GEN_AI_EVALUATION_NAME)): p.value for p in cost_points(telemetry)}
    assert points == {("gpt-4.1-nano", None): judged_cost, ("gpt-4o-mini", "polite_judge"): judge_cost}


def test_a_judge_whose_model_has_no_price_adds_no_cost(demo, telemetry):
    class Unpriced(micrometrics.MicroMetric):
        name = "unpriced_judge"

        def applies(self, call):
            return call.request_model == "gpt-4.1-nano"

        def evaluate(self, call):
            openai_client(demo).chat.completions.create(model="my-local-judge", messages=GERMAN)
            return micrometrics.Result("pass")

    telemetry.instrument(metrics=[Unpriced()])
    openai_client(demo).chat.completions.create(model="gpt-4.1-nano", messages=GERMAN)
    spans = {s.attributes[A.GEN_AI_REQUEST_MODEL]: s.attributes for s in telemetry.spans()}
    assert spans["gpt-4.1-nano"]["micrometrics.unpriced_judge.label"] == "pass"
    assert "micrometrics.unpriced_judge.cost" not in spans["gpt-4.1-nano"]
    assert A.GEN_AI_USAGE_COST_AMOUNT not in spans["my-local-judge"]
