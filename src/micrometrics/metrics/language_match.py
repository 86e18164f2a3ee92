"""LanguageMatch: did the model answer in the conversation's language?"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result, yield_point
from micrometrics.metrics.language import Detection, detect_language, language_name, normalize_language, prepare

#: Letters of user text to gather (latest turns first) before inferring the expected language.
_INFER_TARGET_CHARS = 160


def _primary(code: str) -> str:
    return code.lower().replace("_", "-").split("-")[0]


class LanguageMatch(MicroMetric):
    """Labels ``match`` / ``mismatch`` / ``undetermined``; details ``expected``, ``detected``, ``confidence``.

    The expected language comes from ``micrometrics.context(expected_language=...)``,
    else ``expected``, else is inferred from the conversation's latest user turns.
    Short, low-confidence, code, emoji or digit-only text is ``undetermined``: never a
    false mismatch. As a guard it retries with a corrective system instruction, and on
    streams decides on the first ``stream_prefix_chars`` characters.
    """

    process_safe = True
    reads_retrieved_documents = False

    name = "language_match"
    applies_to = INFERENCE_OPERATIONS
    context_keys = ("expected_language",)

    def __init__(
        self,
        expected: str | None = None,
        min_chars: int = 20,
        min_confidence: float = 0.8,
        mode: str = "async",
        max_retries: int = 1,
        corrective_instruction: bool = True,
        on_fail: str = "return",
        stream_prefix_chars: int = 120,
        **options: Any,
    ) -> None:
        super().__init__(mode=mode, max_retries=max_retries, on_fail=on_fail, **options)
        self.expected = None if expected is None else normalize_language(expected, "LanguageMatch: expected")
        self.min_chars = min_chars
        self.min_confidence = min_confidence
        self.use_corrective_instruction = corrective_instruction
        self.stream_prefix_chars = stream_prefix_chars
        self._infer = lru_cache(maxsize=1024)(self._detect)
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_infer", None)  # a cache, rebuilt on the other side
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._infer = lru_cache(maxsize=1024)(self._detect)

    def validate(self) -> None:
        super().validate()
        if self.expected is not None:
            self.expected = normalize_language(self.expected, "LanguageMatch: expected")
        if isinstance(self.min_chars, bool) or not isinstance(self.min_chars, int) or self.min_chars < 1:
            raise ValueError(f"LanguageMatch: min_chars={self.min_chars!r} must be an int >= 1")
        if isinstance(self.min_confidence, bool) or not isinstance(self.min_confidence, (int, float)) or not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"LanguageMatch: min_confidence={self.min_confidence!r} must be between 0 and 1")
        if isinstance(self.stream_prefix_chars, bool) or not isinstance(self.stream_prefix_chars, int) or self.stream_prefix_chars < 1:
            raise ValueError(f"LanguageMatch: stream_prefix_chars={self.stream_prefix_chars!r} must be an int >= 1")

    def prepare(self) -> None:
        prepare()

    def _detect(self, text: str) -> Detection:
        return detect_language(text, min_chars=self.min_chars, min_confidence=self.min_confidence)

    def expected_language(self, call: CallView) -> tuple[str | None, str]:
        """(language, source): context, configured, or inferred from the user turns."""
        ctx = call.context.get("expected_language")
        if ctx:
            return str(ctx), "context"
        if self.expected:
            return self.expected, "configured"
        gathered: list[str] = []
        size = 0
        for text in reversed(call.user_texts()):
            if text:
                gathered.insert(0, text)
                size += len(text)
                if size >= _INFER_TARGET_CHARS:
                    break
        if not gathered:
            return None, "inferred"
        return self._infer("\n".join(gathered)).language, "inferred"

    def evaluate(self, call: CallView) -> Result:
        expected, source = self.expected_language(call)
        yield_point()  # two detections: let the app's threads in between them
        if not expected:
            return Result("undetermined", explanation="no expected language: set context(expected_language=...) or LanguageMatch(expected=...)")
        detection = self._detect(call.output_text)
        details: dict[str, Any] = {"expected": expected, "expected_source": source}
        if detection.language is None:
            return Result("undetermined", explanation=f"response language undetermined ({detection.reason})", details=details)
        details["detected"] = detection.language
        details["confidence"] = round(detection.confidence, 4)
        if _primary(detection.language) == _primary(expected):
            return Result("match", score=detection.confidence, details=details)
        return Result(
            "mismatch",
            score=1.0 - detection.confidence,
            explanation=f"expected {language_name(expected)} ({expected}), the response is in {language_name(detection.language)} ({detection.language})",
            details=details,
        )

    def corrective_instruction(self, call: CallView, result: Result) -> str | None:
        if not self.use_corrective_instruction:
            return None
        expected = (result.details or {}).get("expected")
        if not expected:
            return None
        name = language_name(expected)
        return f"Answer only in {name} ({expected}), the language of this conversation. Do not answer in any other language."
