"""The metric engine as a user sees it: results on spans, logs and metric points; guards that retry."""

from __future__ import annotations

import asyncio
import threading
import time

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import micrometrics
from micrometrics import micro_metric, Result
from micrometrics.metrics import BannedPhrases, JsonFormat, LanguageMatch, ResponseLength
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

GERMAN_TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Die Bestellnummer ist 4711, bitte prüfen Sie den Status.",
    "Danke. Wann kommt das Paket denn an?",
    "Kann ich die Lieferadresse noch ändern?",
    "Und wie lange dauert die Rücksendung, wenn mir etwas nicht passt?",
]


def conversation(turns: int) -> list[dict]:
    msgs: list[dict] = []
    for text in GERMAN_TURNS[:turns]:
        if msgs:
            msgs.append({"role": "assistant", "content": "Gern, ich helfe Ihnen weiter."})
        msgs.append({"role": "user", "content": text})
    return msgs


def client(demo, is_async=False):
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def chat(demo, turns=1, **kw):
    return client(demo).chat.completions.create(model="gpt-4o-mini", messages=conversation(turns), **kw)


def test_monitor_results_land_as_span_attributes_event_log_and_metric_points(demo, telemetry):
    telemetry.instrument()
    r = chat(demo, turns=5)  # the demo server slips into English at turn five
    assert "order" in r.choices[0].message.content or "English" not in r.choices[0].message.content
    span = telemetry.span()
    a = span.attributes
    assert a["micrometrics.language_match.label"] == "mismatch"
    assert a["micrometrics.language_match.passed"] is False
    assert a["micrometrics.language_match.expected"] == "de"
    assert a["micrometrics.language_match.detected"] == "en"
    assert 0.0 <= a["micrometrics.language_match.score"] <= 1.0
    assert a["micrometrics.response_length.label"] == "pass"
    assert a["micrometrics.response_length.words"] > 5
    events = {e.attributes[A.GEN_AI_EVALUATION_NAME]: e for e in span.events if e.name == E.MICROMETRICS_EVALUATION_EVENT}
    assert events["language_match"].attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "mismatch"
    assert "expected German" in events["language_match"].attributes[A.GEN_AI_EVALUATION_EXPLANATION]

    logs = [r for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT]
    assert {r.attributes[A.GEN_AI_EVALUATION_NAME] for r in logs} == {"language_match", "response_length"}
    assert all(r.span_id == span.context.span_id and r.trace_id == span.context.trace_id for r in logs)

    points = telemetry.metrics()
    counts = {(p.attributes[A.GEN_AI_EVALUATION_NAME], p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]): p.value for p in points[M.MICROMETRICS_EVALUATIONS]}
    assert counts == {("language_match", "mismatch"): 1, ("response_length", "pass"): 1}
    for p in points[M.MICROMETRICS_EVALUATIONS]:
        assert set(p.attributes) <= A.METRIC_DIMENSIONS
        assert p.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini" and p.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert [p.attributes[A.GEN_AI_EVALUATION_NAME] for p in points[M.MICROMETRICS_SCORE_HISTOGRAM]] == ["language_match"]
    assert {p.attributes[A.GEN_AI_EVALUATION_NAME] for p in points[M.MICROMETRICS_EVALUATION_DURATION]} == {"language_match", "response_length"}


def test_a_slow_monitor_does_not_change_the_span_duration(demo, telemetry):
    returned = threading.Event()

    @micro_metric(name="slow")
    def slow(call):
        # Passes only if the caller got its answer while this monitor was still running.
        return Result("pass" if returned.wait(10) else "fail")

    telemetry.instrument(metrics=[slow], evaluation_deadline_s=20)
    chat(demo)
    call_returned_ns = time.time_ns()
    returned.set()
    span = telemetry.span()
    assert span.attributes["micrometrics.slow.label"] == "pass"
    assert span.end_time <= call_returned_ns  # ends at the call's end, not at the monitor's


def test_a_metric_that_raises_gives_error_and_the_call_is_unaffected(demo, telemetry):
    @micro_metric(name="broken")
    def broken(call):
        raise KeyError("oops")

    telemetry.instrument(metrics=[broken])
    assert chat(demo).choices[0].message.content
    a = telemetry.span().attributes
    assert a["micrometrics.broken.label"] == "error"
    assert "micrometrics.broken.passed" not in a


def test_a_metric_that_hangs_gives_timeout(demo, telemetry):
    release = threading.Event()

    @micro_metric(name="hangs")
    def hangs(call):
        release.wait(10)
        return Result("pass")

    telemetry.instrument(metrics=[hangs, ResponseLength()], evaluation_deadline_s=0.3)
    chat(demo)
    chat(demo)
    spans = telemetry.spans()
    release.set()
    first, second = sorted(spans, key=lambda s: s.start_time)
    assert first.attributes["micrometrics.hangs.label"] == first.attributes["micrometrics.response_length.label"] == "timeout"
    # Quarantined after its first hang: not run again, so the next call's other metrics finish.
    assert second.attributes["micrometrics.hangs.label"] == "error"
    assert second.attributes["micrometrics.response_length.label"] == "pass"


def test_full_queue_drops_and_counts_without_blocking(demo, telemetry):
    gate = threading.Event()

    @micro_metric(name="gated")
    def gated(call):
        # 'pass' only if released by the test after all six calls returned: a caller that
        # waited for room in the queue would have left this to time out ('fail').
        return Result("pass" if gate.wait(10) else "fail")

    telemetry.instrument(metrics=[gated], max_queue=2, evaluation_deadline_s=20)
    for _ in range(6):
        chat(demo)
    gate.set()
    spans = telemetry.spans()
    assert len(spans) == 6
    labels = [s.attributes["micrometrics.gated.label"] for s in spans if "micrometrics.gated.label" in s.attributes]
    assert labels and set(labels) == {"pass"}
    dropped = sum(p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS_DROPPED])
    assert len(labels) + dropped == 6 and dropped >= 3


def test_evaluation_counts_are_exact_across_threads_and_instrument_cycles(demo, telemetry):
    """micrometrics.evaluations is pre-aggregated (an observable counter): no count is lost to
    concurrent callers, and a second instrument() on the same meter provider keeps counting."""

    @micro_metric(name="tally", mode="guard")
    def tally(call):  # a guard: evaluated on the callers' threads, concurrently
        return Result("pass")

    telemetry.instrument(metrics=[tally])
    threads = [threading.Thread(target=lambda: [chat(demo) for _ in range(5)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]: p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]}
    assert counts == {"pass": 40}
    micrometrics.uninstrument()

    telemetry.instrument(metrics=[tally])
    chat(demo)
    chat(demo)
    points = telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]
    assert [(p.attributes[A.GEN_AI_EVALUATION_NAME], p.value) for p in points] == [("tally", 42)]  # cumulative: never back to 2


def test_unsampled_calls_still_feed_the_metric_points(demo, telemetry):
    exporter = InMemorySpanExporter()
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    unsampled.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.tracer_provider = unsampled
    telemetry.instrument(metrics=[LanguageMatch()])
    chat(demo, turns=5)
    chat(demo, turns=1)
    counts = {p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]: p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]}
    assert counts == {"mismatch": 1, "match": 1}
    assert exporter.get_finished_spans() == ()


def test_context_values_reach_spans_and_metrics_but_not_metric_dimensions(demo, telemetry):
    telemetry.instrument(metrics=[LanguageMatch()])
    with micrometrics.context(expected_language="fr", conversation_id="conv-42", attributes={"app.user_id": "u-1", "app.tier": "gold"}):
        chat(demo)
    a = telemetry.span().attributes
    assert a[A.GEN_AI_CONVERSATION_ID] == "conv-42"
    assert a["app.user_id"] == "u-1" and a["app.tier"] == "gold"
    assert a["micrometrics.language_match.expected"] == "fr"
    assert a["micrometrics.language_match.label"] == "mismatch"
    for points in telemetry.metrics().values():
        for p in points:
            assert "app.user_id" not in p.attributes and A.GEN_AI_CONVERSATION_ID not in p.attributes


def test_async_tasks_inherit_the_context(demo, telemetry):
    telemetry.instrument(metrics=[])

    async def one(i):
        await client(demo, True).chat.completions.create(model="gpt-4o-mini", messages=conversation(1))

    async def main():
        with micrometrics.context(conversation_id="c-async"):
            await asyncio.gather(*(one(i) for i in range(3)))

    asyncio.run(main())
    assert [s.attributes[A.GEN_AI_CONVERSATION_ID] for s in telemetry.spans()] == ["c-async"] * 3


def test_context_rejects_bad_values():
    with pytest.raises(TypeError, match="attributes"):
        with micrometrics.context(attributes={"x": object()}):
            pass
    with pytest.raises(ValueError, match="expected_language"):
        with micrometrics.context(expected_language=""):
            pass


# ---- guards -------------------------------------------------------------------------


def guard(**kw):
    return LanguageMatch(mode="guard", **kw)


def test_guard_retries_a_wrong_language_answer_with_a_corrective_instruction(demo, telemetry):
    telemetry.instrument(metrics=[guard()])
    r = chat(demo, turns=5)
    assert r.choices[0].message.content.startswith(("Ihre", "Die", "Gern", "Vielen", "Das", "Natürlich", "Selbstverständlich", "Sie", "Wir", "Ich", "Hallo", "Kein", "Leider", "Gute"))
    first, second = telemetry.spans()
    assert first.attributes["micrometrics.language_match.label"] == "mismatch"
    assert A.MICROMETRICS_ATTEMPT not in first.attributes  # first attempt
    assert second.attributes[A.MICROMETRICS_ATTEMPT] == 2
    assert second.attributes["micrometrics.language_match.label"] == "match"
    sent = demo.requests[-1].body["messages"][-1]
    assert sent["role"] == "system" and "German" in sent["content"]
    (retries,) = telemetry.metrics()[M.MICROMETRICS_GUARD_RETRIES]
    assert retries.value == 1 and retries.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match"


def test_guard_on_fail_return_returns_the_last_answer_flagged(demo, telemetry):
    telemetry.instrument(metrics=[guard(corrective_instruction=False)])
    r = chat(demo, turns=5)
    assert "order" in r.choices[0].message.content.lower() or r.choices[0].message.content
    spans = telemetry.spans()
    assert [s.attributes["micrometrics.language_match.label"] for s in spans] == ["mismatch", "mismatch"]
    assert spans[-1].attributes[A.MICROMETRICS_GUARD_FAILED] is True


def test_guard_on_fail_raise_raises_guard_error_with_response_and_results(demo, telemetry):
    telemetry.instrument(metrics=[guard(corrective_instruction=False, on_fail="raise")])
    with pytest.raises(micrometrics.GuardError) as info:
        chat(demo, turns=5)
    assert info.value.results["language_match"].label == "mismatch"
    assert info.value.response.choices[0].message.content
    assert len(telemetry.spans()) == 2


def test_guard_with_async_client(demo, telemetry):
    telemetry.instrument(metrics=[guard()])
    r = asyncio.run(client(demo, True).chat.completions.create(model="gpt-4o-mini", messages=conversation(5)))
    spans = telemetry.spans()
    assert [s.attributes["micrometrics.language_match.label"] for s in spans] == ["mismatch", "match"]
    assert r.choices[0].message.content


def test_streamed_guard_restarts_before_the_caller_sees_a_chunk(demo, telemetry):
    telemetry.instrument(metrics=[guard()], capture_content=True)
    stream = chat(demo, turns=5, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    spans = telemetry.spans()
    assert [s.attributes["micrometrics.language_match.label"] for s in spans] == ["mismatch", "match"]
    assert spans[1].attributes[A.MICROMETRICS_ATTEMPT] == 2
    final = spans[1].attributes[A.GEN_AI_OUTPUT_MESSAGES]
    assert text and text in final  # the caller saw only the German attempt, uninterrupted
    assert "order" not in text.lower()


def test_streamed_guard_async(demo, telemetry):
    telemetry.instrument(metrics=[guard()])

    async def go():
        stream = await client(demo, True).chat.completions.create(model="gpt-4o-mini", messages=conversation(5), stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    text = asyncio.run(go())
    assert text
    assert [s.attributes["micrometrics.language_match.label"] for s in telemetry.spans()] == ["mismatch", "match"]


def test_streamed_guard_raise(demo, telemetry):
    telemetry.instrument(metrics=[guard(corrective_instruction=False, on_fail="raise")])
    stream = chat(demo, turns=5, stream=True)
    with pytest.raises(micrometrics.GuardError):
        next(iter(stream))


def test_passing_guard_adds_no_attempt(demo, telemetry):
    telemetry.instrument(metrics=[guard()])
    chat(demo, turns=2)
    (span,) = telemetry.spans()
    assert span.attributes["micrometrics.language_match.label"] == "match"


# ---- built-in metrics --------------------------------------------------------------


def test_response_length_banned_phrases_and_json_format(demo, telemetry):
    telemetry.instrument(metrics=[
        ResponseLength(max_words=5),
        BannedPhrases(phrases=("Bestellnummer", "delve")),
        JsonFormat(schema={"type": "object", "required": ["answer"]}),
    ])
    chat(demo)
    chat(demo, response_format={"type": "json_object"})
    plain, as_json = telemetry.spans()
    assert plain.attributes["micrometrics.response_length.label"] == "fail"
    assert plain.attributes["micrometrics.response_length.words"] > 5
    assert "micrometrics.json_format.label" not in plain.attributes  # did not ask for JSON
    assert as_json.attributes["micrometrics.json_format.label"] in ("pass", "fail")
    banned = plain.attributes["micrometrics.banned_phrases.label"]
    assert banned in ("pass", "fail")
    if banned == "fail":
        assert "bestellnummer" in plain.attributes["micrometrics.banned_phrases.matched"]


def test_metric_options_are_validated():
    with pytest.raises(ValueError, match="min_words=10 is above max_words=2"):
        micrometrics.instrument(metrics=[ResponseLength(min_words=10, max_words=2)])
    with pytest.raises(ValueError, match="phrases"):
        micrometrics.instrument(metrics=[BannedPhrases(phrases=("",))])
    with pytest.raises(TypeError, match="schema"):
        micrometrics.instrument(metrics=[JsonFormat(schema="not a schema")])


def test_metric_names_are_validated_where_the_metric_is_defined():
    with pytest.raises(ValueError, match=r"name='guard' is reserved.*attempt.*internal"):
        micro_metric(name="guard")(lambda call: Result("pass"))
    with pytest.raises(ValueError, match=r"name='Polite-Tone' is not allowed; a metric name is lowercase snake case"):
        micrometrics.MicroMetric(name="Polite-Tone")
    with pytest.raises(ValueError, match=r"name='internal' is reserved"):

        class Internal(micrometrics.MicroMetric):
            name = "internal"

    # Every micrometrics.<x>. namespace we emit is reserved, including ones added later to semconv.
    from micrometrics.metric import RESERVED_NAMES

    emitted = {v.split(".")[1] for mod in (A, E, M) for v in vars(mod).values() if isinstance(v, str) and v.startswith("micrometrics.")} - {""}
    assert emitted <= RESERVED_NAMES and {"guard", "attempt", "internal", "evaluations", "score"} <= RESERVED_NAMES


def test_detail_keys_that_would_overwrite_the_verdict_are_refused():
    for key in ("label", "passed", "score", "explanation"):
        with pytest.raises(ValueError, match=rf"details key '{key}' is reserved"):
            Result("fail", details={key: "x"})


def test_a_detail_key_mutated_in_after_the_result_is_dropped_and_counted(demo, telemetry):
    @micro_metric(name="sneaky")
    def sneaky(call):
        details = {"words": 3}
        result = Result("fail", details=details)
        details["label"] = "pass"  # slips past Result's check
        details["passed"] = True
        return result

    telemetry.instrument(metrics=[sneaky])
    chat(demo)
    a = telemetry.span().attributes
    assert (a["micrometrics.sneaky.label"], a["micrometrics.sneaky.passed"], a["micrometrics.sneaky.words"]) == ("fail", False, 3)
    errors = {p.attributes[A.ERROR_TYPE]: p.value for p in telemetry.metrics()[M.MICROMETRICS_INTERNAL_ERRORS]}
    assert errors == {"DetailKeyDropped": 2}


@pytest.mark.parametrize("raised", [asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit])
def test_a_monitor_raising_a_base_exception_gives_error_and_the_monitor_thread_survives(demo, telemetry, raised):
    @micro_metric(name="cancels")
    def cancels(call):
        raise raised()

    telemetry.instrument(metrics=[cancels, ResponseLength()])
    for _ in range(3):
        chat(demo)
    spans = telemetry.spans()
    assert len(spans) == 3
    assert {s.attributes["micrometrics.cancels.label"] for s in spans} == {"error"}
    assert {s.attributes["micrometrics.response_length.label"] for s in spans} == {"pass"}  # same thread, later calls too


def test_a_guard_raising_cancelled_error_gives_error_but_keyboard_interrupt_reaches_the_caller(demo, telemetry):
    raised: list[type[BaseException]] = [asyncio.CancelledError]

    @micro_metric(name="interrupts", mode="guard")
    def interrupts(call):
        raise raised[0]()

    telemetry.instrument(metrics=[interrupts])
    assert chat(demo).choices[0].message.content  # a metric's CancelledError is its bug: 'error'
    assert telemetry.span().attributes["micrometrics.interrupts.label"] == "error"
    raised[0] = KeyboardInterrupt
    telemetry.span_exporter.clear()
    with pytest.raises(KeyboardInterrupt):  # the user's Ctrl-C on the caller's thread is theirs
        chat(demo)
    assert telemetry.span().name == "chat gpt-4o-mini"  # and the call's span still ends


def test_failure_cost_counter(demo, telemetry):
    telemetry.instrument(metrics=[LanguageMatch(cost_per_failure=2.5, currency="EUR")])
    chat(demo, turns=5)
    chat(demo, turns=5)
    chat(demo, turns=1)
    (cost,) = telemetry.metrics()[M.MICROMETRICS_FAILURE_COST]
    assert cost.value == 5.0 and cost.attributes[A.MICROMETRICS_COST_CURRENCY] == "EUR"
    assert cost.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match"
    # The unit says it is money (a UCUM annotation: UCUM has no currencies); which money, the dimension says.
    data = telemetry.metric_reader.get_metrics_data()
    (instrument,) = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == M.MICROMETRICS_FAILURE_COST]
    assert instrument.unit == "{currency}"
