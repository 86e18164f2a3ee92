"""The price table and the arithmetic, without a provider: what ships, how models are matched, no guess."""

from __future__ import annotations

import decimal
import json
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from micrometrics import pricing
from micrometrics.records import EmbeddingsRecord, InferenceRecord, RetrievalRecord

ROOT = Path(__file__).resolve().parents[2]


def chat(model: str, provider: str = "openai", response_model: str | None = None, **usage) -> InferenceRecord:
    return InferenceRecord(operation="chat", provider=provider, model=model, response_model=response_model, **usage)


def test_the_shipped_table_is_dated_and_names_a_source_for_every_provider():
    table = pricing.packaged()
    assert table.date == "2025-12-01"
    assert set(table.sources) == {"openai", "anthropic", "gcp.gen_ai", "gcp.gemini"}
    assert all(url.startswith("https://") for url in table.sources.values())
    data = json.loads(pricing.PACKAGED_PATH.read_text())
    assert data["currency"] == "USD" and data["per_tokens"] == 1_000_000


@pytest.mark.parametrize(
    "provider, model",
    [
        # what the tests and the examples call
        ("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("openai", "text-embedding-3-small"),
        ("gcp.gen_ai", "gemini-2.0-flash"), ("gcp.gen_ai", "gemini-2.5-flash"),
        # the common ones
        ("openai", "gpt-4.1"), ("openai", "gpt-4.1-mini"), ("openai", "gpt-4.1-nano"), ("openai", "gpt-5"), ("openai", "gpt-5-mini"),
        ("openai", "o1"), ("openai", "o3"), ("openai", "o3-mini"), ("openai", "o4-mini"),
        ("anthropic", "claude-3-5-sonnet-20241022"), ("anthropic", "claude-3-7-sonnet-latest"), ("anthropic", "claude-sonnet-4-20250514"),
        ("anthropic", "claude-sonnet-4-0"), ("anthropic", "claude-opus-4-1-20250805"), ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-3-5-haiku-20241022"), ("anthropic", "claude-sonnet-4-5-20250929"), ("anthropic", "claude-opus-4-5"),
        ("gcp.gen_ai", "gemini-1.5-pro-002"), ("gcp.gen_ai", "gemini-1.5-flash"), ("gcp.gemini", "gemini-2.5-pro"),
        ("gcp.gen_ai", "models/gemini-2.5-flash-lite"),
    ],
)
def test_the_models_in_use_are_priced(provider, model):
    assert pricing.packaged().price(provider, model) is not None


@pytest.mark.parametrize(
    "model, names",
    [
        ("gpt-4o-mini-2024-07-18", ("gpt-4o-mini-2024-07-18", "gpt-4o-mini")),
        ("claude-3-5-haiku-20241022", ("claude-3-5-haiku-20241022", "claude-3-5-haiku")),
        ("gemini-2.0-flash-001", ("gemini-2.0-flash-001", "gemini-2.0-flash")),
        ("claude-3-7-sonnet-latest", ("claude-3-7-sonnet-latest", "claude-3-7-sonnet")),
        ("models/gemini-2.5-pro", ("models/gemini-2.5-pro", "gemini-2.5-pro")),
        # not snapshots: previews, old four-digit dates (gpt-3.5-turbo-1106 had its own price), plain names
        ("gemini-2.5-flash-preview-05-20", ("gemini-2.5-flash-preview-05-20",)),
        ("gpt-3.5-turbo-1106", ("gpt-3.5-turbo-1106",)),
        ("gpt-4o", ("gpt-4o",)),
        ("", ()), (None, ()), (42, ()),
    ],
)
def test_a_dated_snapshot_is_looked_up_by_its_family_after_its_own_name(model, names):
    assert pricing.model_names(model) == names


def test_the_response_model_is_priced_before_the_requested_one():
    """Azure-style: the request names a deployment, the response the model that answered."""
    table = pricing.packaged()
    assert table.cost(chat("my-deployment", response_model="gpt-4o-2024-11-20", input_tokens=1000)) == Decimal("0.0025")
    assert table.cost(chat("gpt-4o", response_model="gpt-4o-2024-05-13", input_tokens=1000)) == Decimal("0.005")


def test_a_model_is_priced_only_for_the_providers_that_sell_it_at_that_price():
    table = pricing.packaged()
    assert table.cost(chat("gpt-4o-mini", input_tokens=1000)) is not None
    assert table.cost(chat("gpt-4o-mini", provider="azure.ai.openai", input_tokens=1000)) is None  # prices by deployment
    assert table.cost(chat("gemini-2.0-flash", provider="gcp.vertex_ai", input_tokens=1000)) is None  # Vertex lists its own


def test_reasoning_is_priced_as_output_unless_a_row_prices_it_apart():
    table = pricing.packaged().override(pricing.given({"thinker": {"input": 1, "output": 2, "reasoning": 10}}))
    # 100 x 1 + 50 x 2 + 50 x 10 = 700 per million
    assert table.cost(chat("thinker", input_tokens=100, output_tokens=100, reasoning_tokens=50)) == Decimal("0.0007")
    # o3: 100 x 2 + 100 x 8 = 1,000 per million, reasoning or not
    assert table.cost(chat("o3", input_tokens=100, output_tokens=100, reasoning_tokens=50)) == Decimal("0.001")


def test_the_long_context_rates_start_above_the_threshold_not_at_it():
    table = pricing.packaged()
    at = table.cost(chat("gemini-2.5-pro", provider="gcp.gen_ai", input_tokens=200_000))
    above = table.cost(chat("gemini-2.5-pro", provider="gcp.gen_ai", input_tokens=200_001))
    assert at == Decimal("0.25")  # 200,000 x 1.25
    assert above == Decimal("0.5000025")  # 200,001 x 2.50


def test_embeddings_are_priced_and_retrieval_is_not():
    table = pricing.packaged()
    assert table.cost(EmbeddingsRecord(operation="embeddings", provider="openai", model="text-embedding-3-large", input_tokens=1_000_000)) == Decimal("0.13")
    assert table.cost(RetrievalRecord(operation="retrieval", provider="chroma")) is None


@pytest.mark.parametrize(
    "usage",
    [
        {},  # no usage
        {"input_tokens": None, "output_tokens": 10},
        {"input_tokens": True},
        {"input_tokens": "100"},
        {"input_tokens": 100, "output_tokens": -1},
        {"input_tokens": 100, "cache_read_tokens": 101},
        {"input_tokens": 100, "output_tokens": 5, "reasoning_tokens": 6},
        {"input_tokens": 100, "output_tokens": 5.5},
    ],
)
def test_usage_that_is_missing_or_does_not_add_up_is_not_priced(usage):
    assert pricing.packaged().cost(chat("gpt-4o-mini", **usage)) is None


def test_a_failed_call_or_a_stream_without_its_end_is_not_priced():
    table = pricing.packaged()
    failed = chat("gpt-4o-mini", input_tokens=10, output_tokens=10)
    failed.error_type = "500"
    cut = chat("gpt-4o-mini", input_tokens=10, output_tokens=10)
    cut.stream = True
    ended = chat("gpt-4o-mini", input_tokens=10, output_tokens=10)
    ended.stream, ended.finish_reasons = True, ["stop"]
    assert (table.cost(failed), table.cost(cut), table.cost(ended)) == (None, None, Decimal("0.0000075"))


def test_the_application_s_decimal_context_changes_nothing():
    with decimal.localcontext() as ctx:
        ctx.prec = 2
        ctx.rounding = decimal.ROUND_DOWN
        cost = pricing.packaged().cost(chat("gpt-4o-mini", input_tokens=123_457, output_tokens=98_765))
    assert cost == Decimal("0.07777755")  # 123,457 x 0.15 + 98,765 x 0.60 = 18,518.55 + 59,259 = 77,777.55 per million


def test_a_user_row_replaces_the_whole_shipped_row():
    """Negotiated input and output prices without a cached price: a cache read is not priced at the shipped discount."""
    table = pricing.packaged().override(pricing.given({"gpt-4o": {"input": 2.0, "output": 8.0}}))
    assert table.cost(chat("gpt-4o", input_tokens=1000, output_tokens=100)) == Decimal("0.0028")
    assert table.cost(chat("gpt-4o", input_tokens=1000, cache_read_tokens=10)) is None


def test_aliases_share_their_model_s_prices_and_a_name_listed_twice_is_refused():
    table = pricing.packaged().override(pricing.given({"base": {"input": 1, "aliases": ["base-latest-alias"]}}))
    assert table.price("openai", "base-latest-alias") is table.price("openai", "base")
    with pytest.raises(ValueError, match=r"\['dup'\]: listed twice"):
        pricing.given({"a": {"input": 1, "aliases": ["dup"]}, "dup": {"input": 2}})


def test_a_price_file_of_an_unknown_kind_or_unreadable_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"name it .json, .toml, .yaml or .yml"):
        pricing.given(str(tmp_path / "prices.txt"))
    with pytest.raises(ValueError, match="cannot read the price table"):
        pricing.given(tmp_path / "missing.json")
    bad = tmp_path / "prices.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        pricing.given(bad)


def test_a_yaml_price_file_error_names_its_line(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "prices.yaml"
    path.write_text("gpt-4o:\n  input: 2.5\n  output: 10\n  cached: 1.25\n")
    with pytest.raises(ValueError) as info:
        pricing.given(path)
    assert str(info.value).startswith(f"{path}:4: ['gpt-4o']: unknown field 'cached'; allowed: input, cached_input")


def test_the_price_table_ships_in_the_wheel(tmp_path):
    """pricing.json sits inside the package: hatch's ``packages`` include every file under src/micrometrics."""
    hatchling = subprocess.run([sys.executable, "-c", "import hatchling"], capture_output=True)
    if hatchling.returncode != 0:
        pytest.skip("hatchling is not installed here: the wheel cannot be built offline")
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("*.whl")
    assert "micrometrics/pricing.json" in zipfile.ZipFile(wheel).namelist()


def test_a_price_finer_than_a_billionth_of_a_dollar_is_still_exact():
    table = pricing.packaged().override(pricing.given({"tiny": {"input": 0.0000000003, "output": 1e-12}}))
    assert table.cost(chat("tiny", input_tokens=7, output_tokens=3)) == Decimal("2.103E-15")  # (7 x 3e-10 + 3 x 1e-12) / 1e6 = 2.103e-9 / 1e6


def test_zero_code_reads_the_prices_of_micrometrics_config(tmp_path, monkeypatch):
    from micrometrics import settings

    config = tmp_path / "ops.yaml"
    config.write_text('pricing:\n  "gpt-4o-mini":\n    input: 1\n    output: 1\n')
    monkeypatch.setenv("MICROMETRICS_CONFIG", str(config))
    pytest.importorskip("yaml")
    table = settings.from_environment()["pricing"]
    assert table.cost(chat("gpt-4o-mini", input_tokens=500_000, output_tokens=500_000)) == Decimal("1")
