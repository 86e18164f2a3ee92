"""The metric engine under load: LanguageMatch throughput, the guard's decision time, the
async queue at saturation.

    python benchmarks/evaluator.py [--quick] [--json out.json]

* throughput: LanguageMatch evaluations per second on one thread, on distinct ~300-character
  responses in seven languages (no two texts alike, so no cache helps), with the expected
  language given by ``context(expected_language=...)`` and inferred from distinct user turns
  (the default, two detections per call);
* guard: the decision time of LanguageMatch as a guard (``evaluate()`` on the request path),
  on the full response and on the 120-character prefix a streaming guard decides on;
* micro metrics: the thread CPU per call of each built-in metric of the library (Refusal,
  PiiInResponse, DegenerateOutput, ToolCallValidity, Formality, Groundedness, SemanticSimilarity with
  its built-in embedding) on the same
  distinct ~300-character responses, each with the inputs it reads (an expected language, a tool
  call and its tool's schema, three retrieved documents), after a warm-up; ``--metrics-only`` runs
  only this part. The model-calling metrics (LlmJudge, AnswerConsistency) are measured with an
  in-process model that answers at once: their own CPU (prompts, parsing, agreement), and the model
  calls each evaluation makes, which dominate their cost;
* saturation: calls offered through the real call pipeline at twice the monitors' capacity,
  with ``max_queue=1000``: how long the caller waits per call (it never waits for the queue),
  how many calls were evaluated, how many dropped and counted in
  ``micrometrics.evaluations.dropped``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload as w  # noqa: E402


def _calls(count: int, context: bool) -> list[Any]:
    from micrometrics.records import Call, InferenceRecord, text_part

    out = []
    for i, (lang, text) in enumerate(w.responses(count)):
        rec = InferenceRecord(
            operation="chat",
            provider="openai",
            model=w.MODEL,
            input_messages=[{"role": "user", "parts": [text_part(f"{w.QUESTIONS[lang]} (Ticket {10000 + i})")]}],
            output_messages=[{"role": "assistant", "parts": [text_part(text)], "finish_reason": "stop"}],
        )
        out.append(Call(record=rec, context={"expected_language": lang} if context else {}))
    return out


def throughput(count: int) -> dict[str, Any]:
    from micrometrics.evaluation import evaluate
    from micrometrics.metric import CallView
    from micrometrics.metrics import LanguageMatch
    from micrometrics.metrics.language import prepare

    prepare()
    out: dict[str, Any] = {"texts": count, "chars": round(statistics.mean(len(t) for _, t in w.responses(count)))}
    for name, context in (("given", True), ("inferred", False)):
        metric = LanguageMatch()
        views = [CallView(c.record, c) for c in _calls(count, context)]
        for v in views[:20]:
            evaluate(metric, v)
        metric = LanguageMatch()  # a fresh inference cache: every user turn is new
        labels: dict[str, int] = {}
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        for v in views:
            result, _ = evaluate(metric, v)
            labels[result.label] = labels.get(result.label, 0) + 1
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        out[name] = {"evals_per_s": count / cpu, "evals_per_s_wall": count / wall, "us_per_eval": cpu / count * 1e6, "labels": labels}
    return out


def guard(count: int) -> dict[str, Any]:
    from micrometrics.evaluation import evaluate
    from micrometrics.metric import CallView
    from micrometrics.metrics import LanguageMatch
    from micrometrics.streams import _PrefixView

    metric = LanguageMatch(mode="guard")
    calls = _calls(count, context=False)
    out: dict[str, Any] = {}
    for name, view_of in (
        ("response", lambda c: CallView(c.record, c)),
        ("stream_prefix", lambda c: _PrefixView(c, c.record.output_text[: metric.stream_prefix_chars])),
    ):
        views = [view_of(c) for c in calls]
        for v in views[:20]:
            evaluate(metric, v)
        took = []
        labels: dict[str, int] = {}
        for v in views:
            result, seconds = evaluate(metric, v)
            took.append(seconds)
            labels[result.label] = labels.get(result.label, 0) + 1
        took.sort()
        out[name] = {
            "median_ms": statistics.median(took) * 1e3,
            "p99_ms": took[int(len(took) * 0.99) - 1] * 1e3,
            "max_ms": took[-1] * 1e3,
            "labels": labels,
        }
    return out


def _metric_calls(count: int) -> list[Any]:
    """The throughput's responses, with what the library's metrics read: the expected language and register,
    a tool call with its tool's schema, and three retrieved support documents of ~300 characters."""
    from micrometrics.records import Call, Document, InferenceRecord, text_part

    tool = {"type": "function", "name": "lookup_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}, "include_items": {"type": "boolean"},
                                         "channel": {"type": "string", "enum": ["email", "sms"]}},
        "required": ["order_id"], "additionalProperties": False}}
    docs = [text for _, text in w.responses(count + 3, languages=["en"])]  # three different documents per call
    out = []
    for i, (lang, text) in enumerate(w.responses(count)):
        rec = InferenceRecord(
            operation="chat", provider="openai", model=w.MODEL, tool_definitions=[tool],
            input_messages=[{"role": "user", "parts": [text_part(f"{w.QUESTIONS[lang]} (Ticket {10000 + i})")]}],
            output_messages=[{"role": "assistant", "finish_reason": "stop", "parts": [
                text_part(text),
                {"type": "tool_call", "id": f"call_{i}", "name": "lookup_order", "arguments": {"order_id": str(10000 + i), "channel": "email"}},
            ]}],
        )
        documents = tuple(Document(id=f"kb-{i + j}", content=d) for j, d in enumerate(docs[i : i + 3]))
        context = {"expected_language": lang, "formality": "formal", "reference": docs[i]}
        out.append(Call(record=rec, context=context, retrieved_documents=documents))
    return out


def micro_metrics(count: int) -> dict[str, Any]:
    """Thread CPU per evaluation of each metric of the library, µs, on ``count`` distinct ~300-char responses."""
    from micrometrics.evaluation import evaluate
    from micrometrics.metric import CallView
    from micrometrics.metrics import (
        AnswerConsistency, DegenerateOutput, Formality, Groundedness, LlmJudge, PiiInResponse, Refusal, SemanticSimilarity, ToolCallValidity,
    )
    from micrometrics.metrics.language import prepare

    prepare()
    views = [CallView(c.record, c) for c in _metric_calls(count)]
    out: dict[str, Any] = {"texts": count, "chars": round(statistics.mean(len(v.output_text) for v in views))}
    answers = [text for _, text in w.responses(count + 7)]
    asked = iter(range(10**9))

    def ask(messages, temperature, model):  # an in-process model: another distinct ~300-char answer, at once
        return answers[next(asked) % len(answers)]

    uncapped = {"sample_rate": 1.0, "max_calls_per_minute": None, "max_calls_per_day": None}
    model_calls = {"llm_judge": 1, "answer_consistency": 3}
    for metric in (Refusal(), PiiInResponse(), DegenerateOutput(), ToolCallValidity(), Formality(), Groundedness(), SemanticSimilarity(),
                   LlmJudge(lambda messages: "Score: 4", "The answer is correct.", **uncapped), AnswerConsistency(ask, **uncapped)):
        for v in views[:50]:
            evaluate(metric, v)
        labels: dict[str, int] = {}
        per_call = []
        cpu0 = time.thread_time()
        for v in views:
            t0 = time.thread_time()
            result, _ = evaluate(metric, v)
            per_call.append(time.thread_time() - t0)
            labels[result.label] = labels.get(result.label, 0) + 1
        cpu = time.thread_time() - cpu0
        out[metric.name] = {"us_per_eval": cpu / count * 1e6, "labels": labels, "latency_class": metric.latency_class}
        if metric.name in model_calls:
            out[metric.name]["model_calls_per_eval"] = model_calls[metric.name]
    return out


def saturation(capacity: float, seconds: float, factor: float = 2.0, max_queue: int = 1000) -> dict[str, Any]:
    """Offer ``factor`` x ``capacity`` calls/s through the real pipeline for ``seconds``."""
    import openai

    import micrometrics
    from micrometrics import calls
    from micrometrics_instrumentation.openai.translators import ChatTranslator
    from micrometrics_semconv import metrics as M

    sink = w.Sink()
    handle = micrometrics.instrument(
        exporter="none", instrumentations=[], metrics=None, max_queue=max_queue,
        tracer_provider=sink.tracer_provider, meter_provider=sink.meter_provider, logger_provider=sink.logger_provider,
    )
    c = w.client(w.Transport())
    inst = c.chat.completions
    body = json.loads(w.completion_body())
    answers = []
    for lang, text in w.responses(2000):
        body["choices"][0]["message"]["content"] = text
        answers.append((lang, openai.types.chat.ChatCompletion.model_validate(body)))
    translator = ChatTranslator()

    import memory

    gc_collect = __import__("gc").collect
    gc_collect()
    rss_before = memory.rss_mb()
    rate = capacity * factor
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    waits: list[float] = []
    offered = 0
    t_start = time.perf_counter()
    next_tick = t_start
    while time.perf_counter() - t_start < seconds:
        for _ in range(per_tick):
            lang, resp = answers[offered % len(answers)]
            kwargs = {"model": w.MODEL, "messages": [{"role": "user", "content": f"{w.QUESTIONS[lang]} ({offered})"}]}
            t0 = time.perf_counter()
            calls.run_sync(translator, lambda *a, _r=resp, **k: _r, inst, (), kwargs)
            waits.append(time.perf_counter() - t0)
            offered += 1
        next_tick += tick
        pause = next_tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.perf_counter() - t_start
    worker = handle.runtime.worker
    dropped_at_end = worker.dropped
    pending = worker.pending
    gc_collect()
    rss_full = memory.rss_mb()
    handle.force_flush(30)
    spans = sink.spans.count
    evaluated = offered - dropped_at_end
    data = sink.reader.get_metrics_data()
    dropped_metric = 0
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == M.MICROMETRICS_EVALUATIONS_DROPPED:
                    dropped_metric += sum(p.value for p in m.data.data_points)
    micrometrics.uninstrument()
    waits.sort()
    return {
        "offered_per_s": offered / elapsed,
        "capacity_per_s": capacity,
        "max_queue": max_queue,
        "offered": offered,
        "evaluated": evaluated,
        "dropped": dropped_at_end,
        "dropped_metric": dropped_metric,
        "spans": spans,
        "caller_median_us": statistics.median(waits) * 1e6,
        "caller_p99_us": waits[int(len(waits) * 0.99) - 1] * 1e6,
        "caller_max_us": waits[-1] * 1e6,
        "switch_interval_ms": sys.getswitchinterval() * 1e3,
        "pending_at_end": pending,
        "rss_growth_mb": rss_full - rss_before,
        "kb_per_pending": (rss_full - rss_before) * 1024 / pending if pending else None,
    }


def run(quick: bool = False, metrics_only: bool = False) -> dict[str, Any]:
    n = 600 if quick else 3000
    if metrics_only:
        return {"micro_metrics": micro_metrics(n)}
    out: dict[str, Any] = {"throughput": throughput(n), "guard": guard(n // 2), "micro_metrics": micro_metrics(n)}
    capacity = out["throughput"]["inferred"]["evals_per_s"]
    out["saturation"] = saturation(capacity, seconds=1.5 if quick else 4.0)
    return out


def report_metrics(m: dict[str, Any]) -> list[str]:
    lines = [f"micro metrics, thread CPU per evaluation on {m['texts']} distinct ~{m['chars']}-char responses:"]
    for name, r in m.items():
        if isinstance(r, dict):
            calls = f" + {r['model_calls_per_eval']} model call(s)" if "model_calls_per_eval" in r else ""
            lines.append(f"  {name:20s} {r['us_per_eval']:7.1f} µs{calls}  ({r['latency_class']}) {r['labels']}")
    return lines


def report(data: dict[str, Any]) -> str:
    if "throughput" not in data:
        return "\n".join(report_metrics(data["micro_metrics"]))
    t, g, s = data["throughput"], data["guard"], data["saturation"]
    return "\n".join(
        [
            f"LanguageMatch, {t['texts']} distinct ~{t['chars']}-char responses, one thread:",
            f"  expected language given:    {t['given']['evals_per_s']:7.0f} evals/s ({t['given']['us_per_eval']:.0f} µs each) {t['given']['labels']}",
            f"  expected language inferred: {t['inferred']['evals_per_s']:7.0f} evals/s ({t['inferred']['us_per_eval']:.0f} µs each) {t['inferred']['labels']}",
            f"guard decision: response median {g['response']['median_ms']:.2f} ms (p99 {g['response']['p99_ms']:.2f}), "
            f"stream prefix median {g['stream_prefix']['median_ms']:.2f} ms (p99 {g['stream_prefix']['p99_ms']:.2f})",
            f"saturation: offered {s['offered_per_s']:.0f} calls/s for {s['offered']} calls (capacity {s['capacity_per_s']:.0f}/s, max_queue {s['max_queue']}): "
            f"evaluated {s['evaluated']}, dropped {s['dropped']} (counter says {s['dropped_metric']}), spans {s['spans']}; "
            f"caller per call median {s['caller_median_us']:.0f} µs, p99 {s['caller_p99_us']:.0f} µs, max {s['caller_max_us']:.0f} µs; "
            f"RSS +{s['rss_growth_mb']:.1f} MB with {s['pending_at_end']} calls pending",
            *report_metrics(data["micro_metrics"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--metrics-only", action="store_true", help="only the CPU per call of the library's metrics")
    args = ap.parse_args(argv)
    data = run(args.quick, args.metrics_only)
    return w.publish(data, args.json, report)


if __name__ == "__main__":
    sys.exit(main())
