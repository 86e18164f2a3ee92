"""Our entry points are told apart from other packages' instrumentors of the same library."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import openai
import pytest

from micrometrics import registry

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Hallo, wo ist meine Bestellung?"}]


def test_every_entry_point_is_named_micrometrics_library_and_users_pass_the_library_name():
    ours = [ep for ep in importlib.metadata.distribution("micrometrics").entry_points if ep.group == "opentelemetry_instrumentor"]
    names = sorted(ep.name for ep in ours)
    declared = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["opentelemetry_instrumentor"])
    assert all(n.startswith("micrometrics_") for n in declared), declared
    assert names == declared, (
        "stale metadata? reinstall: pip install -e .")
    assert sorted(registry.supported()) == sorted(n.removeprefix("micrometrics_") for n in names)
    for ep in ours:
        assert ep.load().__module__.startswith("micrometrics_instrumentation.")


def _client(demo):
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0)


@pytest.mark.parametrize("listed,traced", [("micrometrics_openai", False), (" requests , micrometrics_openai", False), ("openai", True), ("", True)])
def test_the_default_selection_honours_disabled_instrumentations_by_our_entry_point_name(demo, telemetry, monkeypatch, listed, traced):
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", listed)
    handle = telemetry.instrument(metrics=[])
    assert ("openai" in handle.instrumentations) is traced
    _client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [s.name for s in telemetry.spans()] == (["chat gpt-4o-mini"] if traced else [])


def test_an_explicit_list_wins_over_the_variable(demo, telemetry, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "micrometrics_openai")
    handle = telemetry.instrument(metrics=[], instrumentations=["openai"])
    assert handle.instrumentations == ("openai",)
    _client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [s.name for s in telemetry.spans()] == ["chat gpt-4o-mini"]
