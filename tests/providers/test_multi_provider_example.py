"""examples/multi_provider.py runs offline and shows one span per provider."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_provider.py"
KEYS = ("OPENAI_API_KEY", "MICROMETRICS_LITELLM_MODEL", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "MISTRAL_API_KEY", "CO_API_KEY",
        "GROQ_API_KEY", "OLLAMA_HOST", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")
#: (library, span name, provider, answer prefix), in the example's order; the last five when installed.
#: LiteLLM's call is one span (LiteLLM's; the OpenAI client's ``post`` under it opens none), with the provider it routed to.
PROVIDERS = [
    (None, ["chat", "gpt-4o-mini"], "openai", "openai"),
    (None, ["chat", "claude-haiku-4-5"], "anthropic", "anthropic"),
    (None, ["generate_content", "gemini-2.5-flash"], "gcp.gemini", "gemini"),
    (None, ["chat", "us.anthropic.claude-haiku-4-5-20251001-v1:0"], "aws.bedrock", "bedrock"),
    ("mistralai", ["chat", "mistral-small-latest"], "mistral_ai", "mistral"),
    ("cohere", ["chat", "command-a-03-2025"], "cohere", "cohere"),
    ("ollama", ["chat", "llama3.2"], "ollama", "ollama"),
    ("groq", ["chat", "llama-3.3-70b-versatile"], "groq", "groq"),
    ("litellm", ["chat", "gpt-4.1-mini"], "openai", "litellm"),
]


def test_runs_offline_and_prints_a_span_per_provider():
    env = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith("OTEL_")}
    env["NO_COLOR"] = "1"
    done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "demo server" in done.stderr
    expected = [p for p in PROVIDERS if p[0] is None or importlib.util.find_spec(p[0]) is not None]
    spans = [line for line in done.stderr.splitlines() if line.startswith("[micrometrics] ")]
    assert [line.split()[1:3] for line in spans] == [p[1] for p in expected]
    for line, (_, _, provider, _) in zip(spans, expected):
        assert f"  {provider}  " in line and "finish=stop" in line and "language_match=match" in line
    answers = [line for line in done.stdout.splitlines() if line.strip()]
    assert [a.split(":")[0] for a in answers] == [p[3] for p in expected]
    assert all("Kundenservice" in a for a in answers)


def test_the_optional_clients_are_in_the_dev_extra():
    """CI installs the dev extra: the example's optional part runs there, not only where someone installed it."""
    import re
    import tomllib

    dev = tomllib.loads((EXAMPLE.parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in dev}
    assert {p[0] for p in PROVIDERS if p[0]} <= names
