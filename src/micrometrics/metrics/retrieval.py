"""Retrieval quality where it happens: were the right documents retrieved, and were they used?

``RetrievalPrecision`` judges a retrieval span's documents (labels, a relevance
function, lexical overlap with the query, or the retriever's scores).
``ContextUtilization`` checks, on the chat span that follows, which of the documents
retrieved in the same ``micrometrics.context()`` block or trace the answer used.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result, yield_point
from micrometrics.records import Document
from micrometrics_semconv import values as V

_WORD = re.compile(r"\w+")
#: Characters of a query, an answer or a document the retrieval metrics read (the first ones): the
#: work per step stays bounded however large the text, with a yield point between documents.
TEXT_MAX_CHARS = 50_000
#: Tokens of an answer turned into runs between two yield points.
_RUNS_PER_STEP = 5_000
#: Function words that say nothing about a topic (English, plus the commonest German ones).
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers him
    his how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your yours
    please tell know want need get got give make like use used using one two many much way ways
    der die das und ist ein eine einen einem einer nicht mit von den dem des auf für ich sie wir ihr es sich zu im
    wie was wer wo wann warum kann können bitte oder aber auch noch nur schon
    """.split()
)


def words(text: str | None) -> list[str]:
    """Lower-cased words of the first ``TEXT_MAX_CHARS`` characters."""
    return _WORD.findall(text[:TEXT_MAX_CHARS].lower()) if text else []


def _normal(word: str) -> str:
    # The cheapest stemming that still matches "refunds" with "refund".
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str | None) -> set[str]:
    """Lower-cased topic words: no function words, no one- or two-letter words, no single digits."""
    out = set()
    for w in words(text):
        if w in STOPWORDS:
            continue
        if w.isdigit() and len(w) < 2:
            continue
        if not w.isdigit() and len(w) < 3:
            continue
        out.add(_normal(w))
    return out


def _labels(context: Mapping[str, Any]) -> dict[str, float] | None:
    """Relevance grades by document id, from ``relevant_document_ids`` and/or ``relevance_grades``."""
    ids = context.get("relevant_document_ids")
    grades = context.get("relevance_grades")
    if ids is None and grades is None:
        return None
    out: dict[str, float] = {}
    if ids is not None:
        for doc_id in [ids] if isinstance(ids, (str, int)) else ids:
            out[str(doc_id)] = 1.0
    if grades is not None:
        if not isinstance(grades, Mapping):
            raise TypeError(f"context(relevance_grades=...) must map document id to a grade, got {type(grades).__name__}")
        for doc_id, grade in grades.items():
            if isinstance(grade, bool) or not isinstance(grade, (int, float)) or grade < 0:
                raise ValueError(f"context(relevance_grades=...): grade {grade!r} of {doc_id!r} must be a number >= 0")
            out[str(doc_id)] = float(grade)
    return out


def _dcg(gains: Iterable[float]) -> float:
    # Linear gains, discount log2(rank + 1): the form sklearn's ndcg_score uses.
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def _round(x: float) -> float:
    return round(x, 4)


class RetrievalPrecision(MicroMetric):
    """How many of the retrieved documents are relevant; a default metric on retrieval spans.

    With labels (``micrometrics.context(relevant_document_ids=[...])`` or graded
    ``relevance_grades={id: grade}``, grade 0 = not relevant): details
    ``precision_at_k``, ``recall_at_k``, ``mrr``, ``ndcg_at_k`` (linear gains), ``k``,
    ``relevant_retrieved``. Without labels each document is judged by
    ``relevance(query, document) -> bool | float`` (a float counts from
    ``relevance_threshold``), else by lexical overlap (at least ``min_overlap`` of the
    query's content words in the document), else by ``min_score`` on the retriever's
    scores (at most ``min_score`` for distances); details ``precision_at_k``, ``k``,
    ``judged_by``. ``k`` is the cut-off (default: every document retrieved); a
    retriever that returns fewer is judged on what it returned. Label ``pass`` when
    precision >= ``min_precision``, else ``fail``; ``undetermined`` with no documents
    or nothing to judge them by. Score: precision.
    """

    process_safe = True
    reads_retrieved_documents = False

    name = "retrieval_precision"
    applies_to = (V.OPERATION_RETRIEVAL,)
    context_keys = ("relevant_document_ids", "relevance_grades")

    def __init__(
        self,
        k: int | None = None,
        min_precision: float = 0.5,
        relevance: Callable[[str | None, Document], bool | float] | None = None,
        min_score: float | None = None,
        *,
        min_overlap: float = 0.5,
        relevance_threshold: float = 0.5,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.k = k
        self.min_precision = min_precision
        self.relevance = relevance
        self.min_score = min_score
        self.min_overlap = min_overlap
        self.relevance_threshold = relevance_threshold
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        if self.k is not None and (isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1):
            raise ValueError(f"RetrievalPrecision: k={self.k!r} must be an int >= 1, or None for every document retrieved")
        for option in ("min_precision", "min_overlap", "relevance_threshold"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"RetrievalPrecision: {option}={value!r} must be a number between 0 and 1")
        if self.relevance is not None and not callable(self.relevance):
            raise TypeError(f"RetrievalPrecision: relevance={self.relevance!r} must be a function (query, document) -> bool | float")
        if self.min_score is not None and (isinstance(self.min_score, bool) or not isinstance(self.min_score, (int, float))):
            raise TypeError(f"RetrievalPrecision: min_score={self.min_score!r} must be a number")

    def evaluate(self, call: CallView) -> Result:
        documents = call.documents
        if self.k is not None:
            documents = documents[: self.k]
        if not documents:
            return Result("undetermined", explanation="no documents retrieved")
        try:
            labels = _labels(call.context)
        except (TypeError, ValueError) as exc:
            # Our own message about the app's labels (ids and grades, not content): safe to export as the explanation.
            return Result("error", explanation=str(exc)[:300])
        if labels is not None:
            return self._with_labels(documents, labels)
        judged = self._judge(call, documents)
        if judged is None:
            return Result(
                "undetermined",
                explanation="nothing to judge relevance by: set context(relevant_document_ids=[...]), "
                "RetrievalPrecision(relevance=...) or min_score=..., or record the query text and document content",
            )
        relevant, judged_by = judged
        return self._result(relevant, len(documents), {"judged_by": judged_by})

    def _result(self, relevant: int, k: int, details: dict[str, Any]) -> Result:
        precision = relevant / k
        details = {"precision_at_k": _round(precision), "k": k, "relevant_retrieved": relevant, **details}
        if precision >= self.min_precision:
            return Result("pass", score=precision, details=details)
        return Result(
            "fail",
            score=precision,
            explanation=f"{relevant} of {k} retrieved documents relevant (precision {precision:.2f} < {self.min_precision:g})",
            details=details,
        )

    def _with_labels(self, documents: tuple[Document, ...], labels: dict[str, float]) -> Result:
        gains = [labels.get(d.id, 0.0) if d.id is not None else 0.0 for d in documents]
        k = len(documents)
        relevant = sum(1 for g in gains if g > 0)
        details: dict[str, Any] = {"judged_by": "labels"}
        total = sum(1 for g in labels.values() if g > 0)
        if total:
            details["recall_at_k"] = _round(relevant / total)
        details["mrr"] = _round(next((1.0 / rank for rank, g in enumerate(gains, start=1) if g > 0), 0.0))
        ideal = _dcg(sorted((g for g in labels.values() if g > 0), reverse=True)[:k])
        if ideal > 0:
            details["ndcg_at_k"] = _round(_dcg(gains) / ideal)
        return self._result(relevant, k, details)

    def _judge(self, call: CallView, documents: tuple[Document, ...]) -> tuple[int, str] | None:
        """(relevant documents, how they were judged), or None when nothing can judge them."""
        query = call.query
        if self.relevance is not None:
            relevant = 0
            for doc in documents:
                verdict = self.relevance(query, doc)
                if isinstance(verdict, bool):
                    relevant += verdict
                elif isinstance(verdict, (int, float)):
                    relevant += verdict >= self.relevance_threshold
                else:
                    raise TypeError(f"relevance(query, document) must return a bool or a float, returned {type(verdict).__name__}")
            return relevant, "relevance"
        terms = content_words(query)
        if terms and any(d.content for d in documents):
            need = max(1, math.ceil(self.min_overlap * len(terms)))
            relevant = 0
            for d in documents:
                yield_point()
                relevant += len(terms & content_words(d.content)) >= need
            return relevant, "lexical"
        if self.min_score is not None and any(d.score is not None for d in documents):
            if call.score_kind == V.SCORE_KIND_DISTANCE:
                relevant = sum(1 for d in documents if d.score is not None and d.score <= self.min_score)
            else:
                relevant = sum(1 for d in documents if d.score is not None and d.score >= self.min_score)
            return relevant, "score"
        return None


_BRACKETS = re.compile(r"\[([^\[\]]{1,120})\]")
_CITATION_PREFIX = re.compile(r"^(?:doc(?:ument)?|source|ref|id)\s*[:#]?\s*", re.IGNORECASE)


def _cited(answer: str) -> set[str]:
    """Ids cited in brackets: ``[3]``, ``[doc-2, doc-5]``, ``[source: kb-17]``."""
    out = set()
    for group in _BRACKETS.findall(answer):
        for piece in re.split(r"[,;]|\s+and\s+", group):
            piece = _CITATION_PREFIX.sub("", piece.strip()).strip("#").strip()
            if piece:
                out.add(piece.lower())
    return out


class ContextUtilization(MicroMetric):
    """How many of the documents retrieved before a chat call its answer used (opt-in).

    The documents are those retrieved earlier in the same ``micrometrics.context()``
    block or the same trace. A document counts as used when the answer cites its id
    (anywhere for ids of 4+ characters, in brackets such as ``[3]`` for short or
    numeric ids) or shares a run of ``min_shared_words`` words with it (with at least
    two content words in the run). Details ``used``, ``retrieved``, ``fraction``,
    ``used_ids``; score: fraction. Label ``pass`` when fraction >= ``min_fraction``,
    or, without ``min_fraction``, when the answer used any document; else ``fail``.
    Chat calls with no documents before them get no result. It reads the first
    ``TEXT_MAX_CHARS`` (50,000) characters of the answer and of each document.
    """

    process_safe = True
    reads_retrieved_documents = True

    name = "context_utilization"
    applies_to = INFERENCE_OPERATIONS

    def __init__(self, min_fraction: float | None = None, *, min_shared_words: int = 4, **options: Any) -> None:
        super().__init__(**options)
        self.min_fraction = min_fraction
        self.min_shared_words = min_shared_words
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        f = self.min_fraction
        if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0):
            raise ValueError(f"ContextUtilization: min_fraction={f!r} must be a number between 0 and 1, or None")
        n = self.min_shared_words
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"ContextUtilization: min_shared_words={n!r} must be an int >= 2")

    def applies(self, call: CallView) -> bool:
        return bool(call.retrieved_documents)

    def _runs(self, tokens: list[str]) -> set[tuple[str, ...]]:
        n = self.min_shared_words
        out = set()
        for i in range(len(tokens) - n + 1):
            if i % _RUNS_PER_STEP == 0:
                yield_point()
            run = tuple(tokens[i : i + n])
            if sum(1 for w in run if w not in STOPWORDS) >= 2:
                out.add(run)
        return out

    def evaluate(self, call: CallView) -> Result:
        documents = call.retrieved_documents
        answer = call.output_text[:TEXT_MAX_CHARS]
        if not answer.strip():
            return Result("undetermined", explanation="the answer has no text to compare with the retrieved documents")
        answer_lower = answer.lower()
        cited = _cited(answer)
        answer_runs = self._runs(words(answer))
        n = self.min_shared_words
        used: list[Document] = []
        for doc in documents:
            yield_point()
            if self._cites(doc.id, answer_lower, cited):
                used.append(doc)
                continue
            tokens = words(doc.content)
            if any(tuple(tokens[i : i + n]) in answer_runs for i in range(len(tokens) - n + 1)):
                used.append(doc)
        fraction = len(used) / len(documents)
        details = {
            "used": len(used),
            "retrieved": len(documents),
            "fraction": _round(fraction),
            "used_ids": ",".join(d.id for d in used if d.id is not None),
        }
        passed = fraction >= self.min_fraction if self.min_fraction is not None else bool(used)
        if passed:
            return Result("pass", score=fraction, details=details)
        wanted = f"at least {self.min_fraction:g}" if self.min_fraction is not None else "at least one document"
        return Result(
            "fail",
            score=fraction,
            explanation=f"the answer used {len(used)} of {len(documents)} retrieved documents; wanted {wanted}",
            details=details,
        )

    @staticmethod
    def _cites(doc_id: str | None, answer_lower: str, cited: set[str]) -> bool:
        if not doc_id:
            return False
        key = doc_id.lower()
        if key in cited:
            return True
        if len(key) < 4 or key.isdigit():
            return False  # "3" appears in any text: short ids count only in brackets
        return re.search(r"(?<![\w-])" + re.escape(key) + r"(?![\w-])", answer_lower) is not None
