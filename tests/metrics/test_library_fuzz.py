"""The library's metrics on hostile answers: random mixes of the characters their patterns key on
(quotes, digits, separators, markup, other scripts), odd parts and contexts. Never an exception,
always one of the metric's documented labels, and bounded time."""

from __future__ import annotations

import random
import time

from micrometrics.evaluation import evaluate
from micrometrics.metric import CallView
from micrometrics.metrics import DegenerateOutput, Formality, Groundedness, PiiInResponse, Refusal, SemanticSimilarity, ToolCallValidity
from micrometrics.metrics.language import prepare
from micrometrics.records import Call, Document, InferenceRecord, text_part

PIECES = [
    "I can't ", "help", " with that", "'", '"', "\u201c", "\u201d", "\u201e", "\u00ab", "\u00bb", "`", "```", "\n", "> ", ". ", "! ", "? ",
    "Sie ", "du ", "vous ", "tu ", "usted ", "je ", "u ", "Lei ", "+49 ", "0171 ", "2345678", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
    "123-45-6789", "AB 12 34 56 C", "a@b.de", "@", "1.299,00", "4,90", "2024-05-01", "v1.2.3", "<|im_start|>", "{{", "}}", "{%", "<tool_call>",
    '{"name": "x", "arguments": {}}', "Ваш заказ ", "注文 ", "\u0000", "\ud7ff", "\u200b", "no no no ", "DHL ", "PayPal ", "five ", "\t", " ",
]
LABELS = {
    "refusal": {"refused", "answered", "undetermined"},
    "pii": {"pass", "fail"},
    "degenerate_output": {"pass", "fail"},
    "tool_call_validity": {"pass", "fail", "undetermined"},
    "formality": {"match", "mismatch", "undetermined", "error"},  # "error": context(formality="casual"), named in the explanation
    "groundedness": {"pass", "fail", "undetermined"},
    "semantic_similarity": {"pass", "fail", "undetermined"},
}


def _view(rnd: random.Random) -> CallView:
    text = "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 60)))
    parts: list = [text_part(text)]
    if rnd.random() < 0.3:
        parts.append({"type": "tool_call", "name": rnd.choice(["x", "get_weather", None, ""]), "arguments": rnd.choice(["{", "[]", None, 3, {"a": [1, {"b": None}]}, text])})
    if rnd.random() < 0.1:
        parts = [{"type": "text", "content": rnd.choice([None, 42, b"bytes", ["x"]])}, {"type": rnd.choice(["refusal", "blob", None])}]
    tools = rnd.choice([None, [], [{"type": "function", "name": "get_weather", "parameters": rnd.choice([None, {}, {"type": "object", "required": "city"}, {"type": ["object", 3]}])}]])
    rec = InferenceRecord(
        operation="chat", provider="x", model="m", tool_definitions=tools, finish_reasons=[rnd.choice(["stop", "length", "content_filter", "tool_call"])],
        input_messages=[{"role": "user", "parts": [text_part(text[::-1])]}, {"role": "assistant", "parts": [text_part(text[:40])]}],
        output_messages=[{"role": "assistant", "parts": parts}],
    )
    context = {"expected_language": rnd.choice(["de", "ru", "xx", ""]), "formality": rnd.choice(["formal", "informal", "casual"]), "reference": rnd.choice([text[::2], "", None])}
    docs = tuple(Document(id=str(i), content=rnd.choice([text[i:], None, ""])) for i in range(rnd.randint(0, 3)))
    return CallView(rec, Call(record=rec, context=context, retrieved_documents=docs))


def test_hostile_answers_never_raise_and_get_documented_labels():
    prepare()
    rnd = random.Random(20)
    metrics = [Refusal(), PiiInResponse(), DegenerateOutput(), ToolCallValidity(), Formality(), Groundedness(), SemanticSimilarity()]
    slowest = 0.0
    for _ in range(400):
        view = _view(rnd)
        for metric in metrics:
            t0 = time.thread_time()
            result, _ = evaluate(metric, view)
            slowest = max(slowest, time.thread_time() - t0)
            if result is None:
                continue  # the metric does not apply to this call
            assert result.label in LABELS[metric.name], (metric.name, result.label, result.explanation, result.error_message)
    assert slowest < 1.0, slowest  # thread CPU: other processes' load does not count
