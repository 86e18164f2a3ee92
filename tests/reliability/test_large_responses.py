"""A 10 MB answer: the built-in metrics give the same results, a bounded step at a time, and the
application's threads keep running while they evaluate it.

No timings are asserted: a probe thread counts how often it got the interpreter lock while the
metrics evaluated (a metric that scans 10 MB in one C call lets it in about never).
"""

from __future__ import annotations

import re
import threading
import time

import openai

from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics.metrics import BannedPhrases, JsonFormat, ResponseLength
from micrometrics.metrics.text import CHUNK_CHARS, JSON_MAX_CHARS

SENTENCE = "Die Lieferung kommt morgen an, und das Paket ist schon unterwegs: Sendung 4711-ß. "
BIG = (SENTENCE * (10_000_000 // len(SENTENCE) + 1))[:10_000_000]


def completion(text: str) -> dict:
    return {
        "id": "chatcmpl-big",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def ask(demo, text: str) -> str:
    demo.enqueue(json=completion(text), path_contains="/chat/completions")
    c = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    return c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Wo ist mein Paket?"}]).choices[0].message.content


class Mark(MicroMetric):
    """Records when the monitor thread reached it: before and after the metrics under test."""

    def __init__(self, name: str, at: dict) -> None:
        super().__init__(name=name)
        self.at = at

    def evaluate(self, call: CallView) -> Result:
        self.at[self.name] = time.perf_counter()
        return Result("pass")


def test_the_app_keeps_running_while_a_10_mb_answer_is_evaluated(demo, telemetry):
    at: dict[str, float] = {}
    metrics = [Mark("eval_start", at), ResponseLength(), BannedPhrases(phrases=["delve", "Sendung 4711"]), Mark("eval_end", at)]
    telemetry.instrument(metrics=metrics, evaluation_deadline_s=120)  # a busy machine is no hang
    ticks: list[float] = []
    stop = threading.Event()

    def app_thread() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    probe = threading.Thread(target=app_thread)
    probe.start()
    try:
        assert ask(demo, BIG) == BIG
        span = telemetry.span()
    finally:
        stop.set()
        probe.join()
    during = [t for t in ticks if at["eval_start"] < t < at["eval_end"]]
    # Before: two single C calls over 10 MB (findall) that let nobody in; now a step of CHUNK_CHARS at a time.
    assert len(during) >= 50, f"the app's thread ran {len(during)} times in {(at['eval_end'] - at['eval_start']) * 1000:.0f} ms"
    a = span.attributes
    assert a["micrometrics.response_length.words"] == len(re.findall(r"\w+", BIG))
    assert a["micrometrics.response_length.chars"] == len(BIG)
    assert a["micrometrics.banned_phrases.score"] == BIG.count("Sendung 4711")


def test_chunked_scans_give_the_same_answers_as_one_scan_across_every_cut():
    # Words and phrases straddling each chunk boundary, in every alignment.
    text = "".join(("x" * (CHUNK_CHARS - k)) + " delve Delve-delve ok" for k in range(-3, 30))
    view = CallView(_record(text))
    assert ResponseLength().evaluate(view).details["words"] == len(re.findall(r"\w+", text))
    phrases = BannedPhrases(phrases=["delve", "delve ok"])
    phrases.validate()
    one_scan = phrases._pattern.findall(text)
    result = phrases.evaluate(view)
    assert result.score == len(one_scan) and result.details["matched"] == "delve, delve ok"


def test_json_format_does_not_parse_an_answer_over_its_documented_limit():
    view = CallView(_record("[" + "1," * (JSON_MAX_CHARS // 2) + "1]", output_type="json"))
    result = JsonFormat().evaluate(view)
    assert result.label == "undetermined" and str(JSON_MAX_CHARS) in result.explanation


def _record(text: str, output_type: str | None = None):
    from micrometrics.records import InferenceRecord

    r = InferenceRecord(operation="chat", provider="openai", model="gpt-4o-mini")
    r.output_messages = [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]
    r.output_type = output_type
    return r
