"""Beside another package's OpenAI instrumentation, one inference span per call: ours, in either install order.

The other instrumentations are the real packages (foreign.py installs each into its own folder);
the application (coexistence_scenario.py) drives the real ``openai`` client against the loopback
demo server, sync, async and streamed, and reports the spans and metric points a backend
receives. The rule (docs/coexistence.md): micrometrics' span is the call's one span, the other
instrumentation's layer on the same method stands down while micrometrics is active, and comes
back when micrometrics is uninstrumented.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foreign import FOREIGN, Unavailable, install

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "coexistence_scenario.py"
ONE_OF_OURS = [["chat gpt-4o-mini", "ours"]]
CASES = {
    "chat": "chat gpt-4o-mini",
    "chat_async": "chat gpt-4o-mini",
    "chat_stream": "chat gpt-4o-mini",
    "chat_stream_async": "chat gpt-4o-mini",
    "embeddings": "embeddings text-embedding-3-small",
    "responses": "chat gpt-4o-mini",
}


@pytest.fixture(scope="module", params=sorted(FOREIGN))
def foreign(request):
    spec = FOREIGN[request.param]
    try:
        return spec, install(spec)
    except Unavailable as exc:
        pytest.skip(f"{spec.name} cannot be installed here: {exc}")


def _run(folder: Path, module: str, order: str, env: dict[str, str] | None = None) -> dict:
    return _scenario(folder, module, order, tuple(sorted((env or {}).items())))


@functools.cache  # one application run per scenario, read by several tests
def _scenario(folder: Path, module: str, order: str, env: tuple) -> dict:
    # This tree's code and the other instrumentation's folder; nothing else from the runner's OTEL_* settings.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MICROMETRICS_"))}
    path = [str(folder), str(ROOT / "examples"), *(str(ROOT / d) for d in ("src", "semconv", "instrumentation")), base.get("PYTHONPATH", "")]
    full = {**base, "PYTHONPATH": os.pathsep.join(filter(None, path)), **dict(env)}
    cmd = [sys.executable, str(SCENARIO), module, order]
    if order == "zero-code":
        cmd = [str(Path(sys.executable).with_name("opentelemetry-instrument")), *cmd]
        full.update({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"})
    out = subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=180)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("order", ["ours-first", "theirs-first"])
def test_one_inference_span_per_call_and_token_metrics_counted_once(foreign, order):
    spec, folder = foreign
    report = _run(folder, spec.module, order)
    assert report["wrapped"]
    for case, name in CASES.items():
        assert report["cases"][case] == [[name, "ours"]], case  # sync, async, streamed: ours alone
    assert report["raw_response_view"] == ONE_OF_OURS  # through a view cached before the reordering too
    ours, theirs = report["metrics"]["ours"], report["metrics"]["theirs"]
    assert theirs == {}, "the other instrumentation recorded metric points too: counted twice"
    calls = len(CASES) + 1  # and the call through the raw-response view
    assert ours["gen_ai.client.operation.duration"] == calls
    # Input and output per call (embeddings: input only), once each.
    assert ours["gen_ai.client.token.usage"] == 2 * calls - 1


@pytest.mark.parametrize("order", ["ours-first", "theirs-first"])
def test_either_uninstrumented_the_other_traces_alone_and_the_methods_are_restored(foreign, order):
    spec, folder = foreign
    report = _run(folder, spec.module, order)
    assert report["theirs_uninstrumented"] == ONE_OF_OURS
    assert report["theirs_again"] == ONE_OF_OURS  # instrumented after us: it stands down at once
    # Ours gone, theirs traces again: its own layers, ungated (two of them when its uninstrument() left one behind).
    assert [who for _, who in report["ours_uninstrumented"]] == ["theirs"] * (2 if spec.leaves_its_layer else 1)
    assert report["left_by_us"] == []


def test_our_framework_span_over_their_sdk_span_uses_the_key_they_honour(foreign):
    """Our framework integration's inference span over an SDK call that only they instrument."""
    spec, folder = foreign
    report = _run(folder, spec.module, "ours-first")
    if spec.honours_suppression:
        assert report["framework_over_theirs"] == [["chat agent-model", "ours"]]
    else:
        # openai-v2 2.4b0 checks no key: its span stays, as the child of ours (documented).
        assert sorted(who for _, who in report["framework_over_theirs"]) == ["ours", "theirs"]


def test_zero_code_with_both_entry_points_gives_one_span(foreign):
    """`opentelemetry-instrument` loads both `openai` entry points, theirs and ours, in the order it finds them."""
    spec, folder = foreign
    both = _run(folder, spec.module, "zero-code")
    for case, name in CASES.items():
        assert both["cases"][case] == [[name, "ours"]], case
    assert both["metrics"]["theirs"] == {}


def test_zero_code_can_turn_off_either_instrumentation_by_its_entry_point_name():
    spec = FOREIGN["genai-openai"]
    try:
        folder = install(spec)
    except Unavailable as exc:
        pytest.skip(f"{spec.name} cannot be installed here: {exc}")
    theirs_off = _run(folder, spec.module, "zero-code", {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai"})
    assert theirs_off["cases"]["chat"] == ONE_OF_OURS
    ours_off = _run(folder, spec.module, "zero-code", {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "micrometrics_openai"})
    assert [who for _, who in ours_off["cases"]["chat"]] == ["theirs"]
