"""Formality: the register of address where a language marks it (German du/Sie, French tu/vous,
Spanish tú/usted, Dutch je/u, Italian tu/Lei), against the register the product speaks.

A product speaking "Sie" that suddenly says "du" is the same class of incident as the wrong
language. Markers are counted in the answer's own words (quotes and code left out) of the
language the answer is in.
"""

from __future__ import annotations

import re
from typing import Any

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result
from micrometrics.metrics.language import detect_language, prepare
from micrometrics.metrics.refusal import speech
from micrometrics.records import message_text

REGISTERS = ("formal", "informal")
#: Languages whose register the metric reads.
LANGUAGES = ("de", "fr", "es", "nl", "it")
#: Characters of the answer read.
SCAN_MAX_CHARS = 20_000

_SENTENCE_START = r"(?:^|(?<=[.!?:;\n\"\u201e\u201c\u00ab(])\s*|(?<=[.!?:;]\s))"

# (strong formal, strong informal, weak formal): weak markers count only when no strong one is there.
_MARKERS: dict[str, tuple[str, str, str | None]] = {
    "de": (
        # Mid-sentence Sie/Ihnen/Ihr... are the formal you; sentence-initial "Sie" + verb and "Ihr(e) <Noun>" too.
        r"(?<![.!?:;\n]\s)(?<![.!?:;\n])(?<!^)\b(?:Sie|Ihnen|Ihre[mnrs]?|Ihr)\b(?!-)"
        r"|(?:^|(?<=[.!?:;\n]\s)|(?<=[.!?\n]))(?:Sie (?:können|haben|müssen|möchten|sollten|erhalten|finden|brauchen|dürfen|bekommen)\b"
        r"|Ihre[mnrs]? [A-ZÄÖÜ]|Ihr [A-ZÄÖÜ]|Ihnen\b)",
        r"\b(?:[Dd]u|[Dd]ich|[Dd]ir|[Dd]ein(?:e[mnrs]?)?|[Dd]einer|[Ee]uch|[Ee]uer|[Ee]ure[mnrs]?)\b",
        None,
    ),
    "fr": (
        r"(?<!-)\b(?:[Vv]ous|[Vv]otre|[Vv]os)\b",  # not "rendez-vous"
        r"\b(?:[Tt]u|[Tt]oi|[Tt]on|[Tt]a|[Tt]es|[Tt]e)\b|\b[Tt]'(?=[aeiouhéèêàâ])",
        None,
    ),
    "es": (
        r"\b(?:[Uu]sted(?:es)?|[Uu]d\.|[Uu]ds\.)",
        r"(?:\b[Tt]ú\b|\b(?:[Tt]u|[Tt]us|[Tt]e|[Tt]i|[Cc]ontigo|[Tt]uy[oa]s?)\b"
        r"|\b(?i:puedes|tienes|quieres|necesitas|debes|estás|eres|haces|sabes|vas|deseas|prefieres|recibirás|podrás)\b)",
        r"\b(?:[Ss]u|[Ss]us)\b|\b(?:puede|tiene|quiere|necesita|debe|desea|recibirá|podrá) (?:usted|consultar|solicitar|cambiar|hacer|ver|contactar)\b",
    ),
    "nl": (
        r"\b(?:[Uu]|[Uu]w)\b(?![-'])",
        r"\b(?:[Jj]e|[Jj]ij|[Jj]ou|[Jj]ouw|[Jj]ullie)\b(?![-'])",
        None,
    ),
    "it": (
        # Capitalised courtesy forms mid-sentence, and the common formal phrases in lower case.
        r"(?<![.!?:;\n]\s)(?<!^)\b(?:Lei|La|Le|Suo|Sua|Suoi|Sue)\b"
        r"|\b(?:[Ll]a ringrazio|[Ll]e (?:invio|consiglio|ricordo|chiedo|confermo|scrivo|auguro)|[Ll]a (?:contatteremo|informo|invito|preghiamo))\b",
        r"\b(?:[Tt]u|[Tt]i|[Tt]uo|[Tt]ua|[Tt]uoi|[Tt]ue|[Tt]e)\b",
        None,
    ),
}
_COMPILED = {lang: tuple(re.compile(p) if p else None for p in pats) for lang, pats in _MARKERS.items()}


def markers(text: str, language: str) -> tuple[int, int]:
    """(formal, informal) register markers in the answer's own words, for one of ``LANGUAGES``."""
    formal, informal, weak = _COMPILED[language]
    own = speech(text[:SCAN_MAX_CHARS])
    f = len(formal.findall(own))
    i = len(informal.findall(own))
    if not f and not i and weak is not None:
        f = len(weak.findall(own))
    return f, i


def register_of(formal: int, informal: int) -> str | None:
    if formal and informal:
        return "mixed"
    return "formal" if formal else "informal" if informal else None


class Formality(MicroMetric):
    """Did the answer address the user in the expected register? ``match`` / ``mismatch`` / ``undetermined``.

    The expected register (``formal`` or ``informal``) comes from
    ``micrometrics.context(formality=...)``, else ``expected``, else the assistant's earlier turns
    in the conversation (when they speak one register). The answer's register is read from its
    markers in its own language (detected; for a line too short to detect, the one language whose
    markers it has; German du/Sie, French tu/vous, Spanish tú/usted,
    Dutch je/u, Italian tu/Lei): ``formal``, ``informal``, or ``mixed`` (both: a mismatch
    whatever was expected). An answer in another language, or with no marker, is
    ``undetermined``. Details ``expected``, ``expected_source``, ``detected``, ``language``,
    ``formal_markers``, ``informal_markers``. As a guard it retries with an instruction naming the
    register.
    """

    process_safe = True
    reads_retrieved_documents = False
    latency_class = "realtime"

    name = "formality"
    applies_to = INFERENCE_OPERATIONS
    context_keys = ("formality",)

    def __init__(self, expected: str | None = None, *, min_chars: int = 20, **options: Any) -> None:
        super().__init__(**options)
        self.expected = expected
        self.min_chars = min_chars
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        if self.expected is not None and self.expected not in REGISTERS:
            raise ValueError(f"Formality: expected={self.expected!r} is not allowed; use one of 'formal', 'informal', or None")
        if isinstance(self.min_chars, bool) or not isinstance(self.min_chars, int) or self.min_chars < 1:
            raise ValueError(f"Formality: min_chars={self.min_chars!r} must be an int >= 1")

    def prepare(self) -> None:
        prepare()

    def _language(self, text: str) -> str | None:
        detected = detect_language(text, min_chars=self.min_chars, min_confidence=0.7).language
        if detected is not None:
            return detected if detected in LANGUAGES else None
        # Too short to tell (a one-line question): the one language whose markers the answer has, if only one.
        having = [lang for lang in LANGUAGES if any(markers(text, lang))]
        return having[0] if len(having) == 1 else None

    def expected_register(self, call: CallView) -> tuple[str | None, str]:
        wanted = call.context.get("formality")
        if wanted is not None:
            if wanted not in REGISTERS:
                raise ValueError(f"context(formality={wanted!r}) is not allowed; use 'formal' or 'informal'")
            return wanted, "context"
        if self.expected:
            return self.expected, "configured"
        earlier = [message_text(m) for m in call.input_messages if m.get("role") == "assistant"]
        registers = set()
        for text in earlier[-4:]:
            language = self._language(text)
            if language:
                reg = register_of(*markers(text, language))
                if reg:
                    registers.add(reg)
        if len(registers) == 1 and "mixed" not in registers:
            return registers.pop(), "conversation"
        return None, "conversation"

    def evaluate(self, call: CallView) -> Result:
        text = call.output_text
        try:
            expected, source = self.expected_register(call)
        except ValueError as exc:
            return Result("error", explanation=str(exc)[:300])  # our own message about the app's context value
        if expected is None:
            return Result("undetermined", explanation="no expected register: set context(formality='formal'|'informal') or Formality(expected=...)")
        details: dict[str, Any] = {"expected": expected, "expected_source": source}
        language = self._language(text[:2000])
        if language is None:
            return Result("undetermined", explanation="the answer is not in a language whose register is read (de, fr, es, nl, it)", details=details)
        formal, informal = markers(text, language)
        detected = register_of(formal, informal)
        details.update(language=language, formal_markers=formal, informal_markers=informal)
        if detected is None:
            return Result("undetermined", explanation="the answer does not address the user", details=details)
        details["detected"] = detected
        if detected == expected:
            return Result("match", score=1.0, details=details)
        return Result("mismatch", score=0.0, explanation=f"expected the {expected} register, the answer is {detected} ({language})", details=details)

    def corrective_instruction(self, call: CallView, result: Result) -> str | None:
        details = result.details or {}
        expected, language = details.get("expected"), details.get("language")
        forms = {
            ("de", "formal"): "Sie", ("de", "informal"): "du", ("fr", "formal"): "vous", ("fr", "informal"): "tu",
            ("es", "formal"): "usted", ("es", "informal"): "tú", ("nl", "formal"): "u", ("nl", "informal"): "je",
            ("it", "formal"): "Lei", ("it", "informal"): "tu",
        }
        form = forms.get((language, expected))
        if not expected:
            return None
        how = f" (\u201c{form}\u201d)" if form else ""
        return f"Address the user in the {expected} register{how} throughout the answer, as in the rest of this conversation."
