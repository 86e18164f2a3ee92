"""Semantic similarity to a reference answer, with the embedding pluggable.

Similarity is not correctness: an answer that reuses the reference's words with one number or
one "not" changed is close to it, and a correct answer in other words can be far from it. Use it
to see drift from known-good answers (offline, or online when ``context(reference=...)`` says what
the answer should be), not to prove an answer right.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any, Callable, Sequence

from micrometrics.metric import INFERENCE_OPERATIONS, LATENCY_CLASSES, CallView, MicroMetric, Result

#: Characters of the answer and of the reference embedded (the first ones).
TEXT_MAX_CHARS = 20_000
#: Dimensions of the built-in embedding.
DIMENSIONS = 512

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]

_SPACE = re.compile(r"\s+")


def _bucket(gram: str) -> int:
    # crc32, not hash(): the same bucket in every process (hash() of a str is salted per interpreter).
    return zlib.crc32(gram.encode("utf-8")) % DIMENSIONS


def char_ngrams(texts: Sequence[str]) -> list[list[float]]:
    """The built-in embedding: counts of character trigrams (and words) hashed into 512 dimensions.

    Lexical: it sees shared spelling, not meaning; deterministic and offline, microseconds per text."""
    out = []
    for text in texts:
        vector = [0.0] * DIMENSIONS
        t = " " + _SPACE.sub(" ", text[:TEXT_MAX_CHARS].lower()).strip() + " "
        for i in range(len(t) - 2):
            vector[_bucket(t[i : i + 3])] += 1.0
        for word in t.split():
            vector[_bucket("w:" + word)] += 2.0
        out.append(vector)
    return out


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class SemanticSimilarity(MicroMetric):
    """How close the answer is to a reference answer: ``pass`` at ``min_similarity`` or above, else ``fail``.

    The reference comes from ``micrometrics.context(reference=...)`` online, or a dataset row's
    ``context`` offline; without one the call gets no result. ``embed(texts) -> vectors`` is
    pluggable (a sentence-transformers model, an embeddings API through an instrumented client:
    its calls are traced and their cost charged to this metric); without it a built-in
    character-trigram embedding is used, which is lexical. Details ``similarity``, ``embedding``
    (``char_ngrams`` or the function's name); score: the cosine similarity.
    ``latency_class`` is ``realtime`` with the built-in embedding and ``async`` with yours (an API
    call does not belong on the request path); pass ``latency_class="realtime"`` for a local
    model fast enough to guard. **Similarity is not correctness** (module docstring).
    """

    process_safe = True
    reads_retrieved_documents = False

    name = "semantic_similarity"
    applies_to = INFERENCE_OPERATIONS
    context_keys = ("reference",)

    def __init__(self, embed: Embed | None = None, min_similarity: float = 0.75, *, latency_class: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.embed = embed
        self.process_safe = embed is None  # a function of the app's may not pickle into the evaluator process
        self.min_similarity = min_similarity
        self.latency_class = latency_class if latency_class is not None else ("async" if embed is not None else "realtime")
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        if self.latency_class not in LATENCY_CLASSES:
            raise ValueError(f"SemanticSimilarity: latency_class={self.latency_class!r} is not allowed; use one of 'realtime', 'async'")
        super().validate()
        if self.embed is not None and not callable(self.embed):
            raise TypeError(f"SemanticSimilarity: embed={self.embed!r} must be a function (texts) -> vectors, or None for the built-in embedding")
        v = self.min_similarity
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1.0 <= v <= 1.0:
            raise ValueError(f"SemanticSimilarity: min_similarity={v!r} must be a number between -1 and 1")

    def applies(self, call: CallView) -> bool:
        return isinstance(call.context.get("reference"), str) and bool(call.context.get("reference"))

    def evaluate(self, call: CallView) -> Result:
        answer = call.output_text[:TEXT_MAX_CHARS]
        if not answer.strip():
            return Result("undetermined", explanation="the answer has no text to compare with the reference")
        reference = call.context["reference"][:TEXT_MAX_CHARS]
        embed = self.embed or char_ngrams
        name = "char_ngrams" if self.embed is None else getattr(self.embed, "__name__", type(self.embed).__name__)
        vectors = embed([answer, reference])
        try:
            a, b = (list(map(float, v)) for v in vectors)
        except (TypeError, ValueError):
            return Result("error", explanation=f"embed returned {type(vectors).__name__}, not two vectors of numbers")
        if len(a) != len(b) or not a:
            return Result("error", explanation=f"embed returned vectors of {len(a)} and {len(b)} dimensions")
        similarity = max(-1.0, min(1.0, cosine(a, b)))
        details = {"similarity": round(similarity, 4), "embedding": name[:64]}
        if similarity >= self.min_similarity:
            return Result("pass", score=similarity, details=details)
        return Result("fail", score=similarity, explanation=f"similarity {similarity:.2f} to the reference < {self.min_similarity:g}", details=details)
