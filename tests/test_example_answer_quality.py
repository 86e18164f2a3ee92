"""examples/answer_quality.py runs offline (demo server) and shows what it promises: the monitors, then the PII guard."""

from __future__ import annotations

from test_examples import run


def test_answer_quality_example_shows_the_monitors_then_the_pii_guard():
    out = run("answer_quality.py")
    assert out.returncode == 0, out.stderr
    monitor, guard = out.stderr.split("=== Run 2")
    monitor_lines = [l for l in monitor.splitlines() if l.startswith("[micrometrics]")]
    guard_lines = [l for l in guard.splitlines() if l.startswith("[micrometrics]")]
    assert len(monitor_lines) == 2
    assert "tool_call_validity=fail" in monitor_lines[0] and "refusal=" not in monitor_lines[0]  # a tool call: no refusal result
    assert "pii=fail" in monitor_lines[1] and "refusal=answered" in monitor_lines[1] and "degenerate_output=pass" in monitor_lines[1]
    assert "+49 171 2345678" in monitor.split("what the customer read:")[1]  # the monitor only reports
    assert len(guard_lines) == 3 and "pii=fail" in guard_lines[1]
    assert "attempt=2" in guard_lines[2] and "pii=pass" in guard_lines[2]
    read = guard.split("what the customer read:")[1]
    assert "hotline" in read and "2345678" not in read and "@" not in read  # the guard's retry left the number out
