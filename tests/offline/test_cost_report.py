"""``micrometrics eval`` totals what the run's LLM calls cost: rows with usage and a known model, priced by hand here."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from micrometrics import cli as cli_module
from micrometrics.metrics import LanguageMatch
from micrometrics.offline import report as report_mod
from micrometrics_semconv import attributes as A
from offline_cli import DATASET

ROWS = [
    # gpt-4o-mini ($0.15 / $0.60): 1,000 x 0.15 + 200 x 0.60 = 270 per million
    {"id": "openai", "model": "gpt-4o-mini", "usage": {"input_tokens": 1000, "output_tokens": 200}},
    # claude-3-5-haiku ($0.80 input, $0.08 cache read, $4 output): 500 x 0.80 + 1,500 x 0.08 + 100 x 4 = 920 per million
    {"id": "anthropic", "model": "claude-3-5-haiku-20241022", "provider": "anthropic",
     "usage": {"input_tokens": 2000, "cache_read_input_tokens": 1500, "output_tokens": 100}},
    {"id": "no-usage", "model": "gpt-4o-mini"},
    {"id": "unknown-model", "model": "my-local-llama", "usage": {"input_tokens": 10, "output_tokens": 10}},
]


def _dataset(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    lines = [json.dumps({**row, "messages": [{"role": "user", "content": "Wo ist mein Paket?"}], "response": "Es ist unterwegs."}) for row in ROWS]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_report_totals_the_cost_of_the_calls_it_can_price(tmp_path, cli):
    done = cli("eval", _dataset(tmp_path), "--metric", "response_length", "--json", tmp_path / "report.json", "--no-progress")
    assert done.code == 0, done.err

    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, json.loads(report_mod.SCHEMA_PATH.read_text()))
    assert {r["id"]: r["cost"] for r in report["rows"]} == {
        "openai": 0.00027, "anthropic": 0.00092, "no-usage": None, "unknown-model": None,
    }
    assert report["cost"] == {
        "currency": "USD", "total": 0.00119, "calls": 4, "priced_calls": 2, "evaluation": None, "prices_date": "2025-12-01",
    }
    assert "cost of the run: 0.001190 USD (2 of 4 calls priced, prices of 2025-12-01)" in done.out


def test_micrometrics_config_prices_apply_offline_too(tmp_path, cli):
    config = tmp_path / "ops.toml"
    config.write_text('[pricing."gpt-4o-mini"]\ninput = 1.0\noutput = 1.0\n')
    done = cli("eval", _dataset(tmp_path), "--metric", "response_length", "--json", tmp_path / "report.json",
               env={"MICROMETRICS_CONFIG": str(config)})
    assert done.code == 0, done.err
    rows = {r["id"]: r["cost"] for r in json.loads((tmp_path / "report.json").read_text())["rows"]}
    assert rows["openai"] == 0.0012  # 1,200 tokens x $1 per million


def test_a_bad_price_in_micrometrics_config_stops_eval_with_its_line(tmp_path, cli):
    config = tmp_path / "ops.toml"
    config.write_text('[pricing."gpt-4o-mini"]\ninput = "cheap"\n')
    done = cli("eval", _dataset(tmp_path), "--metric", "response_length", env={"MICROMETRICS_CONFIG": str(config)})
    assert done.code == 2
    assert f"{config}:2: pricing['gpt-4o-mini'].input: 'cheap' must be a number" in done.err


def test_a_row_whose_usage_is_not_token_counts_is_refused(tmp_path, cli):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}], "response": "Hello", "usage": {"input_tokens": -3}}) + "\n")
    done = cli("eval", path, "--metric", "response_length")
    assert done.code == 2
    assert "'usage' must map input_tokens, output_tokens" in done.err


def test_recorded_traffic_keeps_the_cost_each_span_recorded(telemetry, demo, tmp_path, cli):
    """Spans priced at negotiated prices when the calls were made: the report adds those amounts up."""
    import openai

    from micrometrics.offline.traces import OTLPJsonFileSpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    handle = telemetry.instrument(capture_content=True, metrics=[], instrumentations=["openai"],
                                  pricing={"gpt-4o-mini": {"input": 1.0, "output": 2.0}})
    path = tmp_path / "spans.jsonl"
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(path)))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0)
    for text in ("Hallo, wo ist mein Paket?", "Kann ich die Adresse ändern?"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    recorded = [s.attributes[A.GEN_AI_USAGE_COST_AMOUNT] for s in telemetry.spans()]
    assert len(recorded) == 2

    done = cli("eval", "--traces", path, "--metric", "response_length", "--json", tmp_path / "report.json")
    assert done.code == 0, done.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted(r["cost"] for r in report["rows"]) == sorted(recorded)
    assert report["cost"]["total"] == round(sum(recorded), 10) and report["cost"]["priced_calls"] == 2


def test_a_replayed_run_costs_what_its_spans_recorded(telemetry, demo, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", demo.openai_base_url)
    telemetry.instrument(metrics=[LanguageMatch()], instrumentations=["openai"])
    code = cli_module.main([
        "eval", str(DATASET), "--metric", "language_match", "--tag", "de", "--limit", "3", "--replay", "gpt-4o-mini",
        "--json", str(tmp_path / "run.json"), "--quiet", "--no-progress",
    ])
    assert code == 0
    report = json.loads((tmp_path / "run.json").read_text())
    spans = {s.attributes[A.GEN_AI_CONVERSATION_ID]: s.attributes[A.GEN_AI_USAGE_COST_AMOUNT] for s in telemetry.spans()}
    assert len(spans) == 3
    assert {r["id"]: r["cost"] for r in report["rows"]} == spans
    assert report["cost"]["priced_calls"] == 3


def test_what_the_metrics_spent_is_totalled_apart(tmp_path, cli):
    metrics = tmp_path / "judge.py"
    metrics.write_text(
        "import micrometrics\n"
        "@micrometrics.micro_metric\n"
        "def paid_judge(call):\n"
        "    return micrometrics.Result('pass', cost=0.0015)  # a judge that pays its provider itself\n"
        "METRICS = [paid_judge]\n"
    )
    done = cli("eval", _dataset(tmp_path), "--metrics", metrics, "--json", tmp_path / "report.json")
    assert done.code == 0, done.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows"][0]["results"]["paid_judge"]["cost"] == 0.0015
    assert report["cost"]["evaluation"] == 0.006  # four rows judged
    assert "the metrics' LLM calls: 0.006000 USD" in done.out


@pytest.mark.parametrize("cost", [-1, float("inf"), "0.1", True])
def test_a_result_cost_must_be_usd(cost):
    import micrometrics

    with pytest.raises(TypeError, match="Result.cost must be a finite number of USD >= 0"):
        micrometrics.Result("pass", cost=cost)
