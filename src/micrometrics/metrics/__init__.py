"""The built-in micro metrics.

Each metric's module is imported when its name is first read (``micrometrics.metrics.Refusal``,
``from micrometrics.metrics import Refusal``): ``instrument()`` with the defaults loads the
default metrics' modules only, not the PII tables, the judge or the groundedness patterns
(about 15 ms of a cold start, issue 21).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from micrometrics.metrics.language_match import LanguageMatch
from micrometrics.metrics.text import BannedPhrases, JsonFormat, ResponseLength

#: Public name -> the module that defines it.
_LAZY = {
    "AnswerConsistency": "consistency",
    "DegenerateOutput": "degenerate",
    "Formality": "formality",
    "Groundedness": "groundedness",
    "LlmJudge": "llm_judge",
    "openai_ask": "model_calls",
    "openai_judge": "model_calls",
    "PiiInResponse": "pii",
    "Refusal": "refusal",
    "SemanticSimilarity": "similarity",
    "ToolCallValidity": "tool_calls",
}

__all__ = ["LanguageMatch", "ResponseLength", "BannedPhrases", "JsonFormat", "Refusal", "PiiInResponse", "DegenerateOutput", "ToolCallValidity", "Formality", "Groundedness", "SemanticSimilarity", "LlmJudge", "AnswerConsistency", "openai_judge", "openai_ask", "DEFAULTS"]

#: What ``instrument()`` runs when no ``metrics=`` is given.
DEFAULTS: list[type] = [LanguageMatch, ResponseLength]

try:  # the retrieval metrics ship with the retrieval instrumentations
    from micrometrics.metrics.retrieval import ContextUtilization, RetrievalPrecision  # noqa: F401

    __all__ += ["RetrievalPrecision", "ContextUtilization"]
    DEFAULTS.append(RetrievalPrecision)
except ImportError:  # pragma: no cover
    pass


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'micrometrics.metrics' has no attribute {name!r}")
    value = getattr(import_module(f"micrometrics.metrics.{module}"), name)
    globals()[name] = value  # read once: later reads are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
