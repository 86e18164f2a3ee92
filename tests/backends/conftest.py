"""Fixtures for the backend presets: the Datadog test agent, a loopback OTLP receiver, a clean environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import micrometrics  # noqa: E402
from ddagent import AgentUnavailable, TestAgent  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402

#: Variables that would point a preset somewhere else than the test says.
_AMBIENT = ("OTEL_", "DD_", "MICROMETRICS_EXPORTER", "MICROMETRICS_DATADOG")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_AMBIENT):
            monkeypatch.delenv(name)
    # A test never waits the default 10 s for an export that cannot succeed.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    # No test sends evaluations to api.datadoghq.com or to an Agent that is not there: the tests of that
    # destination (test_datadog_evaluations.py) turn it on with datadog_evaluations=, which wins over this.
    monkeypatch.setenv("MICROMETRICS_DATADOG_EVALUATIONS", "false")
    yield
    micrometrics.uninstrument()


@pytest.fixture(scope="session")
def dd_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestAgent]:
    try:
        agent = TestAgent(tmp_path_factory.mktemp("ddapm-test-agent")).start()
    except AgentUnavailable as exc:  # the set-up step installs it; the test run never needs the index
        pytest.skip(str(exc))
    yield agent
    agent.stop()


@pytest.fixture
def agent(dd_agent: TestAgent) -> TestAgent:
    dd_agent.clear()
    return dd_agent


@pytest.fixture(params=["http/protobuf", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def receiver(protocol: str) -> Iterator[OtlpReceiver]:
    """A receiver on a free port, not started: the test starts it (or leaves the backend down)."""
    r = OtlpReceiver(protocol)
    yield r
    # Undo instrument() first: its shutdown still exports to this receiver.
    micrometrics.uninstrument()
    r.stop()


@pytest.fixture
def http_receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver("http/protobuf")
    yield r
    micrometrics.uninstrument()
    r.stop()


@pytest.fixture
def chat(demo: Any) -> Callable[..., str]:
    """One OpenAI chat call through the demo server; returns the response id."""
    import openai

    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)

    def call(text: str = "Hallo, ich habe eine Frage zu meiner Bestellung bitte", stream: bool = False) -> str:
        messages = [{"role": "user", "content": text}]
        if stream:
            chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return chunks[0].id
        response = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert response.choices[0].message.content
        return response.id

    return call
