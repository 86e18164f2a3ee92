"""Cheap text metrics: response length, banned phrases, JSON format."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result, yield_point

_WORD = re.compile(r"\w+", re.UNICODE)
#: Characters a text metric scans in one step: between steps it yields (``yield_point``), so that
#: a 10 MB answer never holds the interpreter lock for more than about a millisecond at a time.
CHUNK_CHARS = 16_384
#: JsonFormat parses responses up to this many characters (one C call that cannot yield, about
#: 5 ms per MB); a longer one is ``undetermined``, never parsed.
JSON_MAX_CHARS = 1_000_000


def count_words(text: str) -> int:
    """``len(_WORD.findall(text))``, a chunk at a time with a yield point in between."""
    n = len(text)
    if n <= CHUNK_CHARS:
        return len(_WORD.findall(text))
    words = 0
    for start in range(0, n, CHUNK_CHARS):
        end = min(start + CHUNK_CHARS, n)
        words += len(_WORD.findall(text, start, end))
        if end < n and _WORD.match(text, end - 1, end) and _WORD.match(text, end, end + 1):
            words -= 1  # a word across the cut is counted in both chunks
        yield_point()
    return words


class ResponseLength(MicroMetric):
    """Details ``chars``, ``words``, ``output_tokens``; ``pass``/``fail`` against the bounds given.

    With no bounds it only records the sizes (label ``pass``).
    """

    process_safe = True
    reads_retrieved_documents = False

    name = "response_length"
    applies_to = INFERENCE_OPERATIONS

    def __init__(
        self,
        min_words: int | None = None,
        max_words: int | None = None,
        max_chars: int | None = None,
        max_output_tokens: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.min_words = min_words
        self.max_words = max_words
        self.max_chars = max_chars
        self.max_output_tokens = max_output_tokens
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        for opt, least in (("min_words", 0), ("max_words", 1), ("max_chars", 1), ("max_output_tokens", 1)):
            v = getattr(self, opt)
            # A maximum of 0 fails every answer that says anything: a mistake, not a policy.
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < least):
                raise ValueError(f"ResponseLength: {opt}={v!r} must be an int >= {least} or None")
        if self.min_words is not None and self.max_words is not None and self.min_words > self.max_words:
            raise ValueError(f"ResponseLength: min_words={self.min_words} is above max_words={self.max_words}")

    def evaluate(self, call: CallView) -> Result:
        text = call.output_text
        words = count_words(text)
        tokens = call.usage["output_tokens"]
        details = {"chars": len(text), "words": words, "output_tokens": tokens}
        problems = []
        if self.min_words is not None and words < self.min_words:
            problems.append(f"{words} words < min_words={self.min_words}")
        if self.max_words is not None and words > self.max_words:
            problems.append(f"{words} words > max_words={self.max_words}")
        if self.max_chars is not None and len(text) > self.max_chars:
            problems.append(f"{len(text)} chars > max_chars={self.max_chars}")
        if self.max_output_tokens is not None and tokens is not None and tokens > self.max_output_tokens:
            problems.append(f"{tokens} output tokens > max_output_tokens={self.max_output_tokens}")
        if problems:
            return Result("fail", explanation="; ".join(problems), details=details)
        return Result("pass", details=details)


class BannedPhrases(MicroMetric):
    """``fail`` when the response contains a banned phrase; details ``matched``."""

    process_safe = True
    reads_retrieved_documents = False

    name = "banned_phrases"
    applies_to = INFERENCE_OPERATIONS

    def __init__(self, phrases: Iterable[str] = ("delve",), case_sensitive: bool = False, whole_words: bool = True, **options: Any) -> None:
        super().__init__(**options)
        if isinstance(phrases, str):
            phrases = (phrases,)
        self.phrases = tuple(phrases)
        self.case_sensitive = case_sensitive
        self.whole_words = whole_words
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        if not self.phrases or not all(isinstance(p, str) and p for p in self.phrases):
            raise ValueError(f"BannedPhrases: phrases={self.phrases!r} must be non-empty strings")
        alternatives = "|".join(re.escape(p) for p in sorted(self.phrases, key=len, reverse=True))
        if self.whole_words:
            alternatives = rf"(?<!\w)(?:{alternatives})(?!\w)"
        self._pattern = re.compile(alternatives, 0 if self.case_sensitive else re.IGNORECASE)
        self._longest = max(map(len, self.phrases))

    def _find(self, text: str) -> list[str]:
        """``pattern.findall(text)``, a chunk at a time: each window reaches past its chunk by the longest
        phrase, so that a phrase across a cut is found once, and its lookarounds see the real neighbours."""
        pattern = self._pattern
        n = len(text)
        if n <= CHUNK_CHARS:
            return pattern.findall(text)
        found: list[str] = []
        pos = 0
        while pos < n:
            chunk_end = pos + CHUNK_CHARS
            resume = chunk_end
            for m in pattern.finditer(text, pos, min(n, chunk_end + self._longest + 8)):
                if m.start() >= chunk_end:
                    break
                found.append(m.group())
                resume = max(resume, m.end())
            pos = resume
            yield_point()
        return found

    def evaluate(self, call: CallView) -> Result:
        if self._pattern is None:
            self.validate()
        found = self._find(call.output_text)
        matched = sorted({m if self.case_sensitive else m.lower() for m in found})
        if matched:
            return Result("fail", score=float(len(found)), explanation=f"banned phrase(s): {', '.join(matched)}", details={"matched": ", ".join(matched)})
        return Result("pass", score=0.0, details={"matched": ""})


class JsonFormat(MicroMetric):
    """For calls that asked for JSON output (or every call with ``always=True``): parses,
    and validates against ``schema`` (JSON Schema, needs ``jsonschema``) when given.
    A response over ``JSON_MAX_CHARS`` (1,000,000) characters is ``undetermined``: not parsed."""

    process_safe = True
    reads_retrieved_documents = False

    name = "json_format"
    applies_to = INFERENCE_OPERATIONS

    def __init__(self, schema: dict | None = None, always: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.schema = schema
        self.always = always
        self._validator: Any = None
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        if self.schema is not None:
            if not isinstance(self.schema, dict):
                raise TypeError(f"JsonFormat: schema must be a dict (a JSON Schema), got {type(self.schema).__name__}")
            try:
                import jsonschema
            except ImportError as exc:
                raise ValueError("JsonFormat(schema=...) needs the jsonschema package: pip install jsonschema") from exc
            cls = jsonschema.validators.validator_for(self.schema)
            cls.check_schema(self.schema)
            self._validator = cls(self.schema)

    def applies(self, call: CallView) -> bool:
        return self.always or call.output_type == "json"

    def evaluate(self, call: CallView) -> Result:
        text = call.output_text
        if len(text) > JSON_MAX_CHARS:
            return Result("undetermined", explanation=f"{len(text)} characters: over the {JSON_MAX_CHARS} JsonFormat parses", details={"chars": len(text)})
        text = text.strip()
        if text.startswith("```"):
            text = text.strip("`").removeprefix("json").strip()
        try:
            value = json.loads(text)
        except ValueError as exc:
            return Result("fail", explanation=f"not valid JSON: {exc}"[:300], details={"valid_json": False})
        if self.schema is not None:
            if self._validator is None:
                self.validate()
            errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))
            if errors:
                # Named by the schema's rule, never by the offending value: that is the response's content.
                e = errors[0]
                rule = "/".join(map(str, e.relative_schema_path)) or str(e.validator)
                return Result("fail", explanation=f"schema violation: {rule}"[:300], details={"valid_json": True, "schema_errors": len(errors)})
        return Result("pass", details={"valid_json": True})
