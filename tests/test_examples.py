"""The README's examples run offline (demo server) and show what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_", "MICROMETRICS_"))}
    env["NO_COLOR"] = "1"
    return subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env, timeout=120)


def test_quickstart_prints_one_console_line_per_call():
    out = run("quickstart.py")
    assert out.returncode == 0, out.stderr
    assert "using the local demo server" in out.stderr
    lines = [l for l in out.stderr.splitlines() if l.startswith("[micrometrics] chat gpt-4o-mini")]
    assert len(lines) == 3
    assert all("language_match=match" in l and "response_length=pass" in l for l in lines)
    assert "ttfc=" in lines[-1]  # the streamed call
    assert "bot:  Hallo" in out.stdout


def test_language_guard_example_shows_the_mismatch_then_the_retry():
    out = run("language_guard.py")
    assert out.returncode == 0, out.stderr
    monitor, guard = out.stderr.split("=== Run 2")
    monitor_lines = [l for l in monitor.splitlines() if l.startswith("[micrometrics]")]
    guard_lines = [l for l in guard.splitlines() if l.startswith("[micrometrics]")]
    assert len(monitor_lines) == 5 and "language_match=mismatch" in monitor_lines[-1]
    assert "attempt=" not in monitor
    assert len(guard_lines) == 6
    assert "language_match=mismatch" in guard_lines[4]
    assert "attempt=2" in guard_lines[5] and "language_match=match" in guard_lines[5]
    monitor_answer = monitor.split("what the customer read:")[1]
    guard_answer = guard.split("what the customer read:")[1]
    assert "business days" in monitor_answer  # English reached the customer
    assert "Werktagen" in guard_answer  # the guard's retry answered in German


def test_datadog_walkthrough_prints_the_language_mismatch_evaluation_datadog_receives():
    out = run("datadog/evaluations.py")
    assert out.returncode == 0, out.stderr
    assert "business days" in out.stdout  # the German customer read English
    assert "POST /api/intake/llm-obs/v2/eval-metric  -> 202" in out.stdout
    assert '"categorical_value": "mismatch"' in out.stdout and '"label": "language_match"' in out.stdout
    assert '"source:otel"' in out.stdout and '"ml_app": "support-bot"' in out.stdout
    assert "'dd-api-key': '***'" in out.stdout and "demo-api-key-not-a-real-one" not in out.stdout + out.stderr
    assert "language_match = 'mismatch' on span " in out.stdout
