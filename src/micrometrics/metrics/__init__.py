"""The built-in micro metrics."""

from micrometrics.metrics.consistency import AnswerConsistency
from micrometrics.metrics.degenerate import DegenerateOutput
from micrometrics.metrics.formality import Formality
from micrometrics.metrics.groundedness import Groundedness
from micrometrics.metrics.language_match import LanguageMatch
from micrometrics.metrics.llm_judge import LlmJudge
from micrometrics.metrics.model_calls import openai_ask, openai_judge
from micrometrics.metrics.pii import PiiInResponse
from micrometrics.metrics.refusal import Refusal
from micrometrics.metrics.similarity import SemanticSimilarity
from micrometrics.metrics.text import BannedPhrases, JsonFormat, ResponseLength
from micrometrics.metrics.tool_calls import ToolCallValidity

__all__ = ["LanguageMatch", "ResponseLength", "BannedPhrases", "JsonFormat", "Refusal", "PiiInResponse", "DegenerateOutput", "ToolCallValidity", "Formality", "Groundedness", "SemanticSimilarity", "LlmJudge", "AnswerConsistency", "openai_judge", "openai_ask", "DEFAULTS"]

#: What ``instrument()`` runs when no ``metrics=`` is given.
DEFAULTS: list[type] = [LanguageMatch, ResponseLength]

try:  # the retrieval metrics ship with the retrieval instrumentations
    from micrometrics.metrics.retrieval import ContextUtilization, RetrievalPrecision  # noqa: F401

    __all__ += ["RetrievalPrecision", "ContextUtilization"]
    DEFAULTS.append(RetrievalPrecision)
except ImportError:  # pragma: no cover
    pass
