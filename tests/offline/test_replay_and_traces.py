"""``--replay`` is traced like production, and recorded traces re-evaluate to the labels seen online."""

from __future__ import annotations

import json

import openai
import pytest

from micrometrics import cli
from micrometrics.metrics import LanguageMatch, ResponseLength
from micrometrics.offline.traces import OTLPJsonFileSpanExporter, encode_spans
from micrometrics_semconv import attributes as A
from offline_cli import DATASET, EXAMPLE


def test_replay_runs_through_the_instrumented_client_and_is_traced(telemetry, demo, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", demo.openai_base_url)
    telemetry.instrument(capture_content=True, metrics=[LanguageMatch()], instrumentations=["openai"])
    report_path, traces_path = tmp_path / "run.json", tmp_path / "spans.jsonl"
    code = cli.main([
        "eval", str(DATASET), "--metric", "language_match", "--tag", "de", "--replay", "gpt-4o-mini",
        "--system-prompt", str(EXAMPLE / "candidate_prompt.txt"), "--json", str(report_path),
        "--traces-out", str(traces_path), "--quiet", "--no-progress",
    ])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["source"]["replay"]["model"] == "gpt-4o-mini" and report["source"]["replay"]["failed"] == 0

    # Every row went to the server with the candidate's system prompt instead of the row's own.
    assert len(demo.requests) == 20
    first = demo.requests[0].body
    assert first["model"] == "gpt-4o-mini" and first["messages"][0]["role"] == "system"
    assert "customer's language" not in first["messages"][0]["content"]

    spans = [s for s in telemetry.spans() if s.name == "chat gpt-4o-mini"]
    assert len(spans) == 20
    by_row = {s.attributes[A.GEN_AI_CONVERSATION_ID]: s for s in spans}
    assert set(by_row) == {r["id"] for r in report["rows"]}
    for row in report["rows"]:
        online = by_row[row["id"]].attributes["micrometrics.language_match.label"]
        assert online == row["results"]["language_match"]["label"], row["id"]
    assert by_row["de-05"].attributes["micrometrics.language_match.label"] == "mismatch"
    assert by_row["de-09"].attributes["micrometrics.language_match.label"] == "match"
    assert A.GEN_AI_OUTPUT_MESSAGES in by_row["de-05"].attributes  # content captured, as configured

    # The replay's spans were also written as OTLP JSON, and read back they give the same labels.
    done = cli.main(["eval", "--traces", str(traces_path), "--metric", "language_match", "--json", str(tmp_path / "again.json"), "--quiet"])
    assert done == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert sorted(r["results"]["language_match"]["label"] for r in again["rows"]) == sorted(
        r["results"]["language_match"]["label"] for r in report["rows"]
    )


def test_a_failed_replay_row_is_reported_not_fatal(telemetry, demo, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", demo.openai_base_url)
    telemetry.instrument(metrics=[LanguageMatch()], instrumentations=["openai"])
    code = cli.main(["eval", str(DATASET), "--metric", "language_match", "--limit", "3", "--replay", "error-400",
                     "--json", str(tmp_path / "r.json"), "--quiet", "--no-progress"])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["source"]["replay"]["failed"] == 3
    assert report["summary"]["language_match"]["labels"] == {"error": 3}
    assert "replay failed: BadRequestError" in report["rows"][0]["results"]["language_match"]["explanation"]
    spans = [s for s in telemetry.spans() if s.name == "chat error-400"]
    assert len(spans) == 3 and all(s.attributes[A.ERROR_TYPE] == "400" for s in spans)


GERMAN_TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung 47110.",
    "Ich habe die Jacke zurückgeschickt, aber noch kein Geld bekommen.",
    "Warum dauert die Rückerstattung so lange?",
    "Wann bekomme ich mein Geld zurück?",
    "Danke. Bekomme ich dazu noch eine Bestätigung per E-Mail?",
]


def _production_traffic(demo) -> None:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    messages: list[dict] = []
    for turn in GERMAN_TURNS:  # the incident: the 5th German turn is answered in English
        messages.append({"role": "user", "content": turn})
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        messages.append({"role": "assistant", "content": reply.choices[0].message.content})
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello there, where is my order please? It is late."}])
    client.embeddings.create(model="text-embedding-3-small", input=["not an LLM answer"])


@pytest.mark.parametrize("writer", ["collector-style file", "OTLPJsonFileSpanExporter"])
def test_recorded_traffic_re_evaluates_to_the_labels_seen_online(telemetry, demo, tmp_path, cli, writer):
    handle = telemetry.instrument(capture_content=True, metrics=[LanguageMatch(), ResponseLength(max_words=20)], instrumentations=["openai"])
    path = tmp_path / "spans.json"
    if writer == "OTLPJsonFileSpanExporter":
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        handle.tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(path)))
    _production_traffic(demo)
    spans = telemetry.spans()
    if writer == "collector-style file":
        path.write_text(json.dumps(encode_spans(spans), indent=2))  # one pretty-printed document
    online = {
        f"{s.context.span_id:016x}": {k.split(".")[1]: v for k, v in s.attributes.items() if k.endswith(".label")}
        for s in spans if s.name.startswith("chat ")
    }
    assert len(online) == 6 and sorted(v["language_match"] for v in online.values()).count("mismatch") == 1

    metrics_file = tmp_path / "support_metrics.py"  # the same metric settings as online
    metrics_file.write_text("from micrometrics.metrics import LanguageMatch, ResponseLength\nMETRICS = [LanguageMatch(), ResponseLength(max_words=20)]\n")
    done = cli("eval", "--traces", path, "--metrics", metrics_file, "--json", tmp_path / "run.json")
    assert done.code == 0, done.err
    assert "read 7 spans" in done.err and "6 with content" in done.err and "1 not LLM calls" in done.err
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["source"]["kind"] == "traces"
    offline = {r["id"]: {name: res["label"] for name, res in r["results"].items()} for r in report["rows"]}
    assert offline == online
    for row in report["rows"]:
        assert row["online_labels"] == online[row["id"]]
    incident = next(r for r in report["rows"] if r["user_turns"] == 5)
    assert incident["results"]["language_match"]["explanation"] == "expected German (de), the response is in English (en)"
    assert {r["model"] for r in report["rows"]} == {"gpt-4o-mini", "gpt-4o"}
    assert "service:" in " ".join(report["rows"][0]["tags"])


def test_spans_without_captured_content_are_counted_and_skipped(telemetry, demo, tmp_path, cli):
    telemetry.instrument(capture_content=False, metrics=[LanguageMatch()], instrumentations=["openai"])
    _production_traffic(demo)
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(encode_spans(telemetry.spans())))
    done = cli("eval", "--traces", path)
    assert done.code == 2
    assert "0 with content, 6 without (export them with capture_content=True)" in done.err
    assert "no span carries captured content" in done.err


def test_traces_with_protobuf_style_base64_ids_are_read(tmp_path, cli):
    span = {
        "traceId": "W9HBuRpMsH7aJ9I7iJvS6A==", "spanId": "EjRWeJCrze8=", "name": "chat m",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
            {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Bonjour, ma commande n'est pas encore arrivée, pouvez-vous vérifier ?"}]}])}},
            {"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Votre colis est chez le transporteur et sera livré jeudi matin."}]}])}},
        ],
    }
    path = tmp_path / "collector.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "x"}, "spans": [span]}]}]}) + "\n")
    done = cli("eval", "--traces", path, "--metric", "language_match", "--json", "-")
    report = json.loads(done.out)
    assert report["rows"][0]["id"] == "1234567890abcdef"
    assert report["rows"][0]["results"]["language_match"]["label"] == "match"

    path.write_text('{"not": "otlp"}\n')
    done = cli("eval", "--traces", path)
    assert done.code == 2 and 'no "resourceSpans"' in done.err
