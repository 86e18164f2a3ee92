"""The libraries micrometrics can instrument, by the name users pass to ``instrumentations=``."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

#: name -> (library module, instrumentation module, instrumentor class)
INSTRUMENTATIONS: dict[str, tuple[str, str, str]] = {
    "openai": ("openai", "micrometrics_instrumentation.openai", "OpenAIInstrumentor"),
    "anthropic": ("anthropic", "micrometrics_instrumentation.anthropic", "AnthropicInstrumentor"),
    "google_genai": ("google.genai", "micrometrics_instrumentation.google_genai", "GoogleGenAIInstrumentor"),
    "chromadb": ("chromadb", "micrometrics_instrumentation.chromadb", "ChromaInstrumentor"),
    "qdrant": ("qdrant_client", "micrometrics_instrumentation.qdrant", "QdrantInstrumentor"),
    "langchain": ("langchain_core", "micrometrics_instrumentation.langchain", "LangChainInstrumentor"),
}


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def supported() -> tuple[str, ...]:
    """Names whose instrumentation ships with this version of micrometrics."""
    return tuple(n for n, (_, ours, _) in INSTRUMENTATIONS.items() if _exists(ours))


def installed(name: str) -> bool:
    """Whether ``name``'s library is installed (found without importing it)."""
    return _exists(INSTRUMENTATIONS[name][0])


def importable() -> tuple[str, ...]:
    """Supported names whose library is installed: the default selection."""
    return tuple(n for n in supported() if installed(n))


def extra(name: str) -> str:
    """The pyproject extra that installs ``name``'s library (``pip install "micrometrics[google-genai]"``)."""
    return name.replace("_", "-")


def instrumentor(name: str) -> Any:
    _, module, cls = INSTRUMENTATIONS[name]
    return getattr(importlib.import_module(module), cls)()
