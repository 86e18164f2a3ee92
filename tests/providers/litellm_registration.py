"""LiteLLM's instrumentation as pyproject.toml declares it, for a venv installed before its entry point was added.

The registry reads our installed distribution's entry points; until the package is reinstalled the
``micrometrics_litellm`` entry point is not among them. ``register`` adds it, as declared, for one test
(monkeypatch undoes it); with the package reinstalled it changes nothing.
"""

from __future__ import annotations

import importlib.metadata
import os

from micrometrics import registry

ENTRY_POINT = importlib.metadata.EntryPoint(
    name="micrometrics_litellm", value="micrometrics_instrumentation.litellm:LiteLLMInstrumentor", group="opentelemetry_instrumentor"
)
#: LiteLLM never fetches its price map from the network in tests.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def register(monkeypatch) -> None:
    entry_points = registry._entry_points()  # cached: the dict every registry call reads
    if "litellm" not in entry_points:
        monkeypatch.setitem(entry_points, "litellm", ENTRY_POINT)
