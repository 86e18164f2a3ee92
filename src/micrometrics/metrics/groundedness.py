"""Groundedness: how much of the answer the documents retrieved in the same trace support.

Sentence by sentence: a sentence is supported when most of its topic words are in the retrieved
documents (or the user's question) and every number in it is too. Numbers and names that appear
in no document are counted apart: a changed price or an invented carrier is the hallucination
that costs most. Lexical, not semantic: a paraphrase with other words is not recognised, a
contradiction with the same words is (see the metric's caveats in docs/evaluation.md).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result, yield_point
from micrometrics.metrics.retrieval import STOPWORDS

#: Characters of the answer, and of each document, read.
TEXT_MAX_CHARS = 50_000
#: Sentences of the answer judged (the first ones).
MAX_SENTENCES = 200

#: Function words of the other languages the library speaks (retrieval's STOPWORDS has English and German).
_MORE_STOPWORDS = frozenset(
    """
    les des une est pour dans par sur avec qui que pas vous nous votre vos sont été être aux ces cette mais comme plus
    los las una del por para con que son está están sus usted ustedes este esta pero como más muy
    gli della delle che per con sono una suo sua questo questa anche come più molto
    het een van voor met zijn niet ook maar als dan deze dit wordt worden uw bij naar
    uma dos das para com que não são está pelo pela seu sua este esta mas como mais muito
    der die das dem den des sie ihr ihre ihnen wird werden wurde sind hat haben dass ein eine einen
    thanks thank patience anything else let hope happy glad welcome hello sorry great question questions help sure yes okay
    merci bonjour bonne journée patience question aide volontiers
    danke geduld gern gerne hallo frage fragen hilfe gut
    gracias hola claro paciencia pregunta ayuda buen
    grazie ciao certo pazienza domanda aiuto buona
    bedankt hallo graag geduld vraag hulp goed nieuws
    """.split()
)
#: Number words (2 to 12; "one" is an article in most of these languages) read as their digits.
NUMBER_WORDS = {
    **dict(zip("two three four five six seven eight nine ten eleven twelve".split(), range(2, 13))),
    **dict(zip("zwei drei vier fünf sechs sieben acht neun zehn elf zwölf".split(), range(2, 13))),
    **dict(zip("deux trois quatre cinq six sept huit neuf dix onze douze".split(), range(2, 13))),
    **dict(zip("dos tres cuatro cinco seis siete ocho nueve diez once doce".split(), range(2, 13))),
    **dict(zip("due tre quattro cinque sei sette otto nove dieci undici dodici".split(), range(2, 13))),
    **dict(zip("twee drie vier vijf zes zeven acht negen tien elf twaalf".split(), range(2, 13))),
}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
#: "1." or "2)" opening a line: a list's enumeration, not a claim.
_ENUMERATION = re.compile(r"(?m)^[ \t]*\d{1,2}[.)][ \t]")  # [ \t], not \s: \s* across blank lines backtracks quadratically
_STOP = STOPWORDS | _MORE_STOPWORDS

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜÀ-ÝĀ-Ž0-9\"'\u201e\u201c(¿¡])|\n+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_TOKEN = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")
_ACRONYM = re.compile(r"\b(?:[A-Z]{2,}[A-Z0-9]*|[A-Z][a-z]+[A-Z][A-Za-z]*|[A-Z][A-Za-z]*\d[A-Za-z0-9]*)\b")
_CAPITALISED = re.compile(r"(?<=[^\W\d_]\s|[,;:]\s)([A-ZÄÖÜÀ-ÝĀ-Ž][^\W\d_]{2,})\b")


def _stem(word: str) -> str:
    # Crude, language-neutral: "Lieferungen"/"Lieferung", "expédiée"/"expédié", "refunds"/"refund".
    return word[:6] if len(word) > 6 else word.rstrip("s") if len(word) > 4 else word


def topic_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


def raw_numbers(text: str) -> list[str]:
    """The numbers as written, number words as digits ("five" is "5"); a list's "1." is no number."""
    text = _ENUMERATION.sub(" ", text)
    return _NUMBER.findall(text) + [str(NUMBER_WORDS[w.lower()]) for w in _NUMBER_WORD.findall(text)]


def numbers(text: str) -> set[str]:
    """Every reading of every number: "4,90" and "4.90" read "4.9"; "1.299,00" and "1,299.00" read "1299"."""
    out: set[str] = set()
    for raw in raw_numbers(text):
        out |= readings(raw)
    return out


def readings(raw: str) -> set[str]:
    """The values a written number may stand for ("1.299": 1299 in German, 1.299 in English)."""
    seps = [c for c in raw if c in ".,"]
    candidates = set()
    if not seps:
        candidates.add(raw)
    else:
        groups = re.split(r"[.,]", raw)
        last = max(raw.rfind("."), raw.rfind(","))
        decimal = f"{raw[:last].replace(',', '').replace('.', '')}.{raw[last + 1:]}"
        if len(set(seps)) == 2:
            candidates.add(decimal)  # "1.299,00": the last separator is the decimal one
        else:
            if all(len(g) == 3 for g in groups[1:]):
                candidates.add("".join(groups))  # thousands separators
            if len(seps) == 1:
                candidates.add(decimal)
            if not candidates:
                candidates.add("".join(groups))  # a date or an id: "01.05.2024"
    out = set()
    for c in candidates:
        try:
            value = Decimal(c).normalize()
        except InvalidOperation:
            continue
        out.add(format(value, "f"))
    return out


def entities(sentence: str, german_like: bool) -> set[str]:
    """Names in a sentence: acronyms and CamelCase (DHL, iPhone15, PayPal), and, outside German (which
    capitalises every noun), capitalised words after the sentence's first word."""
    found = set(_ACRONYM.findall(sentence))
    if not german_like:
        found.update(_CAPITALISED.findall(sentence))
    return {e for e in found if e.lower() not in _STOP}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s and s.strip()]


class Groundedness(MicroMetric):
    """How much of a chat answer the documents retrieved before it support (opt-in, like ContextUtilization).

    The documents are those retrieved earlier in the same ``micrometrics.context()`` block or trace;
    the user's turns count as a source too (an order number the user gave is grounded). Each
    sentence that makes a claim is judged (questions to the user, short exclamations such as
    "Thanks for your patience!" and sentences with fewer than ``min_topic_words`` topic words and no
    number are skipped): supported when at least ``min_word_support`` (0.6) of its topic words, and
    all of its numbers, appear in the sources (with two or more numbers, all found, half the words
    do). Numbers are compared by value ("4,90" is "4.90", "five" is "5"; a list's "1." is none),
    anywhere in the sources. Names (acronyms and CamelCase everywhere, capitalised words except in
    German, which capitalises every noun) are looked up in the sources' text. ``pass`` when the
    supported share is at least ``min_supported`` (0.75) and no number (``fail_on_numbers``) or
    name (``fail_on_entities``) is in no source; else ``fail``; ``undetermined`` without a claim
    to judge. Details ``sentences``, ``supported``, ``fraction``, ``unsupported_numbers``,
    ``unsupported_entities`` (counts only: the values are the answer's content), ``documents``;
    score: the supported share. Lexical: a paraphrase in other words is unsupported, a claim
    built from the documents' own words and numbers is supported even when it recombines them
    wrongly. Reads the first 50,000 characters of the answer and of each document.
    """

    process_safe = True
    reads_retrieved_documents = True
    latency_class = "realtime"

    name = "groundedness"
    applies_to = INFERENCE_OPERATIONS

    def __init__(
        self,
        min_supported: float = 0.75,
        *,
        min_word_support: float = 0.6,
        min_topic_words: int = 2,
        fail_on_numbers: bool = True,
        fail_on_entities: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.min_supported = min_supported
        self.min_word_support = min_word_support
        self.min_topic_words = min_topic_words
        self.fail_on_numbers = fail_on_numbers
        self.fail_on_entities = fail_on_entities
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        for option in ("min_supported", "min_word_support"):
            v = getattr(self, option)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"Groundedness: {option}={v!r} must be a number between 0 and 1")
        n = self.min_topic_words
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Groundedness: min_topic_words={n!r} must be an int >= 1")
        for option in ("fail_on_numbers", "fail_on_entities"):
            if not isinstance(getattr(self, option), bool):
                raise TypeError(f"Groundedness: {option}={getattr(self, option)!r} must be True or False")

    def applies(self, call: CallView) -> bool:
        return bool(call.retrieved_documents)

    def evaluate(self, call: CallView) -> Result:
        answer = call.output_text[:TEXT_MAX_CHARS]
        words: set[str] = set()
        nums: set[str] = set()
        tokens: set[str] = set()
        for text in [d.content for d in call.retrieved_documents] + call.user_texts():
            if not isinstance(text, str) or not text:
                continue
            text = text[:TEXT_MAX_CHARS]
            words |= topic_words(text)
            nums |= numbers(text)
            tokens.update(_TOKEN.findall(text.lower()))
            yield_point()
        parts = sentences(answer)[:MAX_SENTENCES]
        capitalised = _CAPITALISED.findall(answer)
        german_like = len(capitalised) > 0.2 * max(1, len(_WORD.findall(answer)))
        judged = supported = bad_numbers = bad_entities = 0
        for i, sentence in enumerate(parts):
            if i % 20 == 19:
                yield_point()
            topic = topic_words(sentence)
            sentence_numbers = raw_numbers(sentence)
            # A number is supported when any of its readings is in a source ("1.299" as 1299 or 1.299).
            missing_numbers = [raw for raw in sentence_numbers if not (readings(raw) & nums)]
            bad_numbers += len(missing_numbers)
            missing_entities = sum(1 for e in entities(sentence, german_like) if e.lower() not in tokens)
            bad_entities += missing_entities
            if sentence.endswith("?") or (sentence.endswith("!") and len(topic) < 4 and not sentence_numbers):
                continue  # a question to the user, "Thanks for your patience!": no claim
            if len(topic) < self.min_topic_words and not sentence_numbers:
                continue  # "Sure.": nothing to ground
            judged += 1
            share = len(topic & words) / len(topic) if topic else 1.0
            # Two or more numbers, all in a source, are strong support: half the words will do.
            need = self.min_word_support / 2 if len(sentence_numbers) >= 2 and not missing_numbers else self.min_word_support
            if share >= need and not missing_numbers:
                supported += 1
        if not judged:
            return Result("undetermined", explanation="the answer has no sentence to check against the documents")
        fraction = supported / judged
        details = {
            "sentences": judged,
            "supported": supported,
            "fraction": round(fraction, 4),
            "unsupported_numbers": bad_numbers,
            "unsupported_entities": bad_entities,
            "documents": len(call.retrieved_documents),
        }
        problems = []
        if fraction < self.min_supported:
            problems.append(f"{judged - supported} of {judged} sentences unsupported by the {len(call.retrieved_documents)} retrieved documents")
        if bad_numbers and self.fail_on_numbers:
            problems.append(f"{bad_numbers} number(s) in no document")
        if bad_entities and self.fail_on_entities:
            problems.append(f"{bad_entities} name(s) in no document")
        if problems:
            return Result("fail", score=fraction, explanation="; ".join(problems), details=details)
        return Result("pass", score=fraction, details=details)

