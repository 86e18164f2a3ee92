"""Monitors evaluated in the evaluator process: results land on the same spans, failures are contained."""

from __future__ import annotations

import os
import signal
import threading
import time

import openai
import pytest

import micrometrics
from micrometrics import evaluator_process, internal_errors
from micrometrics.metrics import LanguageMatch, ResponseLength
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

from evaluator_metrics import Chatty, HangsOnce, HoldsALock, RaisesInside, WhereEvaluated

GERMAN = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung. Wann kommt das Paket an?"}]


def chat(demo, **kw):
    c = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    return c.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, **kw)


def internal_error_points(telemetry):
    return {(p.attributes[A.MICROMETRICS_STAGE], p.attributes[A.ERROR_TYPE]): p.value for p in telemetry.metrics().get(M.MICROMETRICS_INTERNAL_ERRORS, [])}


def test_process_safe_monitors_run_in_the_evaluator_process_and_land_on_the_span(demo, telemetry):
    telemetry.instrument(metrics=[LanguageMatch(), ResponseLength(), WhereEvaluated()], evaluator="process")
    r = chat(demo)
    a = telemetry.span().attributes
    assert a["micrometrics.where.pid"] != os.getpid()
    assert a["micrometrics.where.pid"] == evaluator_process.shared().pid
    assert a["micrometrics.where.chars"] == len(r.choices[0].message.content)
    assert a["micrometrics.language_match.label"] == "match"
    assert a["micrometrics.language_match.detected"] == "de"
    assert a["micrometrics.response_length.words"] > 3
    counts = {(p.attributes[A.GEN_AI_EVALUATION_NAME], p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]): p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]}
    assert counts == {("language_match", "match"): 1, ("response_length", "pass"): 1, ("where", "pass"): 1}


def test_by_default_every_monitor_runs_in_the_application(demo, telemetry):
    telemetry.instrument(metrics=[LanguageMatch(), WhereEvaluated()])
    chat(demo)
    a = telemetry.span().attributes
    assert a["micrometrics.where.pid"] == os.getpid()
    assert a["micrometrics.language_match.label"] == "match"


def test_the_environment_chooses_the_evaluator(demo, telemetry, monkeypatch):
    monkeypatch.setenv("MICROMETRICS_EVALUATOR", "process")
    telemetry.instrument(metrics=[WhereEvaluated()])
    chat(demo)
    assert telemetry.span().attributes["micrometrics.where.pid"] not in (None, os.getpid())
    micrometrics.uninstrument()
    telemetry.span_exporter.clear()
    telemetry.instrument(metrics=[WhereEvaluated()], evaluator="thread")  # the argument wins
    chat(demo)
    assert telemetry.span().attributes["micrometrics.where.pid"] == os.getpid()


def test_an_unknown_evaluator_is_refused_at_instrument_time():
    with pytest.raises(ValueError, match=r"evaluator='subprocess'.*'thread', 'process'"):
        micrometrics.instrument(exporter="none", evaluator="subprocess")


def test_metrics_that_are_not_process_safe_stay_in_the_application(demo, telemetry):
    @micrometrics.micro_metric(name="inline")
    def inline(call):
        return micrometrics.Result("pass", details={"pid": os.getpid()})

    telemetry.instrument(metrics=[inline, HoldsALock(), WhereEvaluated()], evaluator="process")
    chat(demo)
    a = telemetry.span().attributes
    assert a["micrometrics.inline.pid"] == os.getpid()
    assert a["micrometrics.holds_a_lock.pid"] == os.getpid()  # does not pickle: evaluated here
    assert a["micrometrics.where.pid"] != os.getpid()


def test_a_call_whose_context_does_not_pickle_is_evaluated_in_the_application(demo, telemetry):
    telemetry.instrument(metrics=[WhereEvaluated()], evaluator="process")
    with micrometrics.context(conversation_id="c-1", handle=threading.Lock()):
        chat(demo)
    assert telemetry.span().attributes["micrometrics.where.pid"] == os.getpid()


def test_a_metric_raising_in_the_evaluator_process_gives_error_and_is_counted(demo, telemetry):
    internal_errors.reset_for_tests()
    telemetry.instrument(metrics=[RaisesInside(), WhereEvaluated()], evaluator="process")
    r = chat(demo)
    assert r.choices[0].message.content
    a = telemetry.span().attributes
    assert a["micrometrics.raises_inside.label"] == "error"
    assert a["micrometrics.where.label"] == "pass" and a["micrometrics.where.pid"] != os.getpid()
    (record,) = [r for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT and r.attributes[A.GEN_AI_EVALUATION_NAME] == "raises_inside"]
    assert record.attributes[A.ERROR_TYPE] == "KeyError"  # what the metric raised, across the process boundary
    assert internal_error_points(telemetry) == {("evaluation", "KeyError"): 1}


def test_a_metric_hanging_in_the_evaluator_process_times_out_and_the_process_is_replaced(demo, telemetry, tmp_path):
    telemetry.instrument(metrics=[HangsOnce(str(tmp_path / "hung")), WhereEvaluated()], evaluation_deadline_s=0.5, evaluator="process")
    chat(demo)
    t0 = time.monotonic()
    first = telemetry.span().attributes
    assert time.monotonic() - t0 < 5
    assert first["micrometrics.hangs_once.label"] == "timeout"
    assert first["micrometrics.where.label"] == "timeout"  # evaluated together: the whole call overran
    telemetry.span_exporter.clear()
    chat(demo)
    second = telemetry.span().attributes
    assert second["micrometrics.hangs_once.label"] == "pass"
    assert second["micrometrics.where.pid"] not in (os.getpid(), first.get("micrometrics.where.pid"))
    assert evaluator_process.shared().starts >= 2


def test_a_killed_evaluator_process_is_replaced_and_no_call_is_lost(demo, telemetry):
    telemetry.instrument(metrics=[WhereEvaluated()], evaluator="process")
    chat(demo)
    pid = telemetry.span().attributes["micrometrics.where.pid"]
    os.kill(pid, signal.SIGKILL)
    telemetry.span_exporter.clear()
    for _ in range(3):
        chat(demo)
    spans = telemetry.spans()
    assert len(spans) == 3
    pids = {s.attributes["micrometrics.where.pid"] for s in spans if s.attributes.get("micrometrics.where.label") == "pass"}
    # The next call finds the process dead and starts another one: nothing is lost.
    assert all(s.attributes.get("micrometrics.where.label") == "pass" for s in spans)
    assert pid not in pids and any(p != os.getpid() for p in pids)


def test_prints_in_the_evaluator_process_do_not_break_it(demo, telemetry, capfd):
    telemetry.instrument(metrics=[Chatty(), WhereEvaluated()], evaluator="process")
    for _ in range(3):
        chat(demo)
    spans = telemetry.spans()
    assert [s.attributes["micrometrics.chatty.label"] for s in spans] == ["pass"] * 3
    assert all(s.attributes["micrometrics.chatty.pid"] != os.getpid() for s in spans)
    assert "evaluating" not in capfd.readouterr().out


def test_an_unused_evaluator_process_exits_after_the_linger(demo, telemetry, monkeypatch):
    monkeypatch.setattr(evaluator_process, "LINGER_S", 0.2)
    telemetry.instrument(metrics=[WhereEvaluated()], evaluator="process")
    chat(demo)
    pid = telemetry.span().attributes["micrometrics.where.pid"]
    micrometrics.uninstrument()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


_CRASHING_APP = """
import json, os, sys
import openai, micrometrics
from telemetry_harness import Telemetry
from evaluator_metrics import Segfaults, WhereEvaluated

telemetry = Telemetry()
telemetry.instrument(metrics=[Segfaults(), WhereEvaluated()], evaluator="process")
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
answers = [client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hallo, wie geht es?"}]).choices[0].message.content for _ in range(3)]
spans = sorted(telemetry.spans(), key=lambda s: s.start_time)
print(json.dumps({
    "pid": os.getpid(),
    "answers": answers,
    "spans": [
        {**{k: v for k, v in s.attributes.items() if k.startswith("micrometrics.")},
         "explanations": {e.attributes["gen_ai.evaluation.name"]: e.attributes.get("gen_ai.evaluation.explanation") for e in s.events}}
        for s in spans
    ],
}))
telemetry.close()
"""


def test_a_metric_that_crashes_the_evaluator_process_is_quarantined_not_run_in_the_application(demo, tmp_path):
    import json
    import subprocess
    import sys

    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, *sys.path])}
    app = subprocess.run([sys.executable, "-c", _CRASHING_APP, demo.openai_base_url], env=env, capture_output=True, text=True, timeout=120)
    assert app.returncode == 0, app.stderr[-2000:]  # before: the metric was re-run in the app, which died (-11)
    out = json.loads(app.stdout.strip().splitlines()[-1])
    assert all(out["answers"])
    first, second, third = out["spans"]
    # Evaluated together when the child died: both 'error' for this call, then each runs alone.
    assert first["micrometrics.segfaults.label"] == first["micrometrics.where.label"] == "error"
    assert "killed by SIGSEGV" in first["explanations"]["segfaults"]
    # Alone, it kills the child again: quarantined; the other metric goes on in the (new) child.
    for span in (second, third):
        assert span["micrometrics.segfaults.label"] == "error"
        assert span["micrometrics.where.label"] == "pass" and span["micrometrics.where.pid"] != out["pid"]
    assert third["explanations"]["segfaults"].startswith("quarantined: it crashed the evaluator process (the evaluator process killed by SIGSEGV)")
