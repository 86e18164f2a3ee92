"""SemanticSimilarity to a reference: the built-in lexical embedding on a labelled dataset (where it fails, as
documented), and an embeddings API plugged in through an instrumented client (its call traced and charged)."""

from __future__ import annotations

from collections import defaultdict

import openai
import pytest

import micrometrics
from micrometrics.metric import CallView
from micrometrics.metrics import SemanticSimilarity
from micrometrics.metrics.similarity import char_ngrams, cosine
from micrometrics.records import Call, InferenceRecord, text_part
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

from fidelity import result_of, rows, score
from retrieval.corpus import chat_completion


def test_the_built_in_embedding_on_the_labelled_dataset_and_its_caveat():
    data = rows("semantic_similarity")
    assert len(data) >= 100
    metric = SemanticSimilarity()
    by_variant = defaultdict(list)
    for row in data:
        by_variant[next(t for t in row.tags if t.startswith("variant:"))].append(result_of(metric, row).score)
    means = {k.split(":")[1]: sum(v) / len(v) for k, v in by_variant.items()}
    failed = lambda r: r is not None and r.label == "fail"  # noqa: E731
    different = score(metric, data, "different", failed)
    print(f"\nsemantic_similarity (built-in char_ngrams, min_similarity 0.75), {len(data)} pairs, 'different' found: {different}")
    print("  mean similarity by variant: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(means.items())))
    # Measured: same wording 0.87, paraphrase 0.16, one fact flipped 0.75, another topic 0.14; P 0.54 R 0.675.
    # The caveat, as numbers: a flipped fact looks like the reference, a paraphrase like another topic.
    assert means["same"] > 0.8 and means["off"] < 0.25
    assert means["flip"] > 0.6 and means["para"] < 0.25
    assert 0.50 <= different.precision <= 0.60 and 0.62 <= different.recall <= 0.72


def _view(answer: str, reference: str | None) -> CallView:
    rec = InferenceRecord(operation="chat", provider="x", model="m", output_messages=[{"role": "assistant", "parts": [text_part(answer)]}])
    return CallView(rec, Call(record=rec, context={"reference": reference} if reference else {}))


def test_options_latency_class_and_a_broken_embedding():
    assert SemanticSimilarity().latency_class == "realtime"
    assert SemanticSimilarity(embed=char_ngrams).latency_class == "async"
    assert SemanticSimilarity(embed=char_ngrams, latency_class="realtime", mode="guard").mode == "guard"
    with pytest.raises(ValueError, match=r"mode='guard' needs a realtime metric; latency_class='async'"):
        SemanticSimilarity(embed=char_ngrams, mode="guard")
    with pytest.raises(ValueError, match=r"latency_class='soon' is not allowed; use one of 'realtime', 'async'"):
        SemanticSimilarity(latency_class="soon")
    with pytest.raises(TypeError, match=r"embed=42 must be a function"):
        SemanticSimilarity(embed=42)
    with pytest.raises(ValueError, match=r"min_similarity=2 must be a number between -1 and 1"):
        SemanticSimilarity(min_similarity=2)
    assert SemanticSimilarity().applies(_view("x", None)) is False
    broken = SemanticSimilarity(embed=lambda texts: [[1.0, 2.0], [1.0]])
    assert broken.evaluate(_view("an answer", "a reference")).label == "error"
    assert SemanticSimilarity().evaluate(_view(" ", "a reference")).label == "undetermined"
    assert cosine([0.0], [0.0]) == 0.0


def test_an_embeddings_api_plugged_in_is_traced_and_its_cost_charged_to_the_metric(demo, telemetry):
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)

    def embed(texts):
        return [d.embedding for d in client.embeddings.create(model="text-embedding-3-small", input=list(texts)).data]

    telemetry.instrument(metrics=[SemanticSimilarity(embed=embed, min_similarity=0.5)])
    demo.enqueue(json=chat_completion("Refunds are issued within 14 days of receiving the returned item."), path_contains="/chat/completions")
    with micrometrics.context(reference="Refunds are issued within 14 days of receiving the returned item."):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "When do I get my refund?"}])
    spans = {s.name: s for s in telemetry.spans()}
    chat, embedding = spans["chat gpt-4o-mini"], spans["embeddings text-embedding-3-small"]
    a = chat.attributes
    assert (a["micrometrics.semantic_similarity.label"], a["micrometrics.semantic_similarity.similarity"]) == ("pass", 1.0)  # the same text
    assert a["micrometrics.semantic_similarity.embedding"] == "embed"  # the function's name
    assert a["micrometrics.semantic_similarity.cost"] == embedding.attributes[A.GEN_AI_USAGE_COST_AMOUNT] > 0
    points = [p for p in telemetry.metrics()[M.MICROMETRICS_COST] if p.attributes.get(A.GEN_AI_EVALUATION_NAME) == "semantic_similarity"]
    assert [p.attributes[A.GEN_AI_REQUEST_MODEL] for p in points] == ["text-embedding-3-small"]
