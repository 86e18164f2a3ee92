"""examples/multi_provider.py runs offline and shows one span per provider."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_provider.py"
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")


def test_runs_offline_and_prints_a_span_per_provider():
    env = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith("OTEL_")}
    env["NO_COLOR"] = "1"
    done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "demo server" in done.stderr
    spans = [line for line in done.stderr.splitlines() if line.startswith("[micrometrics] ")]
    assert [line.split()[1:3] for line in spans] == [
        ["chat", "gpt-4o-mini"], ["chat", "claude-haiku-4-5"], ["generate_content", "gemini-2.5-flash"],
        ["chat", "us.anthropic.claude-haiku-4-5-20251001-v1:0"],
    ]
    for line, provider in zip(spans, ("openai", "anthropic", "gcp.gemini", "aws.bedrock")):
        assert f"  {provider}  " in line and "finish=stop" in line and "language_match=match" in line
    answers = [line for line in done.stdout.splitlines() if line.strip()]
    assert [a.split(":")[0] for a in answers] == ["openai", "anthropic", "gemini", "bedrock"]
    assert all("Kundenservice" in a for a in answers)
