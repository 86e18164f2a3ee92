"""Degenerate output: the answer broke, whatever it says.

Five cheap checks: empty or whitespace answers, truncation (``finish_reason=length``),
repetition loops, letters of another script than the conversation's, and leaked chat-template or
tool-call syntax. Each names a fixed problem kind; none exports the answer's words.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result, yield_point
from micrometrics.metrics.refusal import speech
from micrometrics_semconv import values as V

CHECKS = ("empty", "truncated", "repetition", "script", "leaked_syntax")
#: The answer is read up to here for repetition, script and syntax (``details.truncated_scan``).
SCAN_MAX_CHARS = 20_000
#: Longest repeated unit looked for, in words.
MAX_UNIT_WORDS = 40

# ---- repetition -------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+", re.UNICODE)


def repetition(words: list[str], min_repeats: int, min_loop_words: int) -> tuple[int, int] | None:
    """(unit length, repeats) of the longest run where a unit of words repeats back to back at least
    ``min_repeats`` times and covers at least ``min_loop_words`` words; None when there is none.
    A single word needs twice the repeats ("ha ha ha" is laughter, not a loop); numbers alone never loop."""
    n = len(words)
    best: tuple[int, int] | None = None
    best_cover = 0
    for unit in range(1, min(MAX_UNIT_WORDS, n // 2) + 1):
        need = min_repeats * 2 if unit == 1 else min_repeats
        run = 0  # positions i where words[i] == words[i + unit], back to back
        looping = False  # the run's unit is not numbers only (checked once per run)
        for i in range(n - unit):
            if words[i] == words[i + unit]:
                if run == 0:
                    looping = not all(w.isdigit() for w in words[i : i + unit])
                run += 1
                if looping:
                    repeats = run // unit + 1
                    cover = run + unit
                    if repeats >= need and cover >= min_loop_words and cover > best_cover:
                        best, best_cover = (unit, repeats), cover
            else:
                run = 0
        if unit % 8 == 0:
            yield_point()
    return best


_SENTENCE = re.compile(r"[^.!?\n]+[.!?\n]*")


def repeated_sentence(text: str, min_repeats: int) -> tuple[int, int] | None:
    """(sentence length in words, occurrences) of a sentence of 5+ words said ``min_repeats``+ times, not back to back."""
    counts: dict[str, int] = {}
    for m in _SENTENCE.finditer(text):
        key = " ".join(_TOKEN.findall(m.group().lower()))
        if key.count(" ") >= 4:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    key, times = max(counts.items(), key=lambda kv: kv[1])
    return (key.count(" ") + 1, times) if times >= min_repeats else None


# ---- scripts ----------------------------------------------------------------------------

#: Letters of each script, as character ranges.
_SCRIPTS = {
    "latin": r"A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
    "cyrillic": r"\u0400-\u052f",
    "greek": r"\u0370-\u03ff\u1f00-\u1fff",
    "arabic": r"\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff",
    "hebrew": r"\u0590-\u05ff",
    "devanagari": r"\u0900-\u097f",
    "thai": r"\u0e00-\u0e7f",
    "hangul": r"\uac00-\ud7af\u1100-\u11ff\u3130-\u318f",
    "cjk": r"\u4e00-\u9fff\u3400-\u4dbf\u3040-\u309f\u30a0-\u30ff",
}
_SCRIPT_RUNS = {name: re.compile(f"[{chars}]+") for name, chars in _SCRIPTS.items()}
#: The script a language is written in (primary subtag); a language not here is not checked.
LANGUAGE_SCRIPTS = {
    **dict.fromkeys(
        "en de fr es it nl pt pl cs sk sl hr ro hu sv da no nb nn fi et lv lt tr id ms vi ca eu gl af sq is ga cy mt sw tl".split(), "latin"
    ),
    **dict.fromkeys("ru uk bg be mk sr kk ky mn tg".split(), "cyrillic"),
    "el": "greek",
    **dict.fromkeys("ar fa ur ps".split(), "arabic"),
    **dict.fromkeys("he yi".split(), "hebrew"),
    **dict.fromkeys("hi mr ne".split(), "devanagari"),
    "th": "thai",
    "ko": "hangul",
    **dict.fromkeys("zh ja".split(), "cjk"),
}


def script_letters(text: str) -> dict[str, int]:
    """Letters per script in ``text`` (scripts with none left out)."""
    out = {}
    for name, runs in _SCRIPT_RUNS.items():
        count = sum(len(r) for r in runs.findall(text))
        if count:
            out[name] = count
    return out


def majority_script(text: str) -> str | None:
    letters = script_letters(text)
    return max(letters, key=letters.__getitem__) if letters else None


# ---- leaked syntax ----------------------------------------------------------------------

_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]{1,400}`", re.DOTALL)
_LEAKS = (
    ("chat_template", re.compile(
        r"<\|(?:im_start|im_end|im_sep|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|eom_id|python_tag|"
        r"assistant|user|system|end|channel|message|return|call|constrain)\|>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>|</?s>(?=\s*$)"
    )),
    ("tool_call", re.compile(
        r"</?(?:tool_call|tool_calls|function_call|functioncall|tool_use|invoke|function_calls|antml:invoke)\b[^>]{0,80}>"
        r"|\"(?:tool_calls|function_call)\"\s*:"
        r"|\{\s*\"(?:name|function|tool)\"\s*:\s*\"[\w.-]{1,64}\"\s*,\s*\"(?:arguments|parameters|args|input)\"\s*:"
    )),
    ("template_placeholder", re.compile(r"\{\{\s*[\w.\[\]'\"|: -]{1,60}\s*\}\}|\{%-?\s*(?:if|for|endif|endfor|set|else|block)\b")),
)


def leaked_syntax(text: str) -> list[str]:
    """Kinds of template or tool syntax in the answer's prose (code blocks and inline code excluded)."""
    prose = _CODE.sub(" ", text)
    return [kind for kind, pattern in _LEAKS if pattern.search(prose)]


# ---- the metric -------------------------------------------------------------------------


def _has_tool_call(call: CallView) -> bool:
    return V.FINISH_TOOL_CALL in call.finish_reasons or any(
        isinstance(p, dict) and p.get("type") == "tool_call" for m in call.output_messages[:1] for p in (m.get("parts") or ())
    )


class DegenerateOutput(MicroMetric):
    """The answer broke: ``pass`` / ``fail``; details ``problems`` (comma-separated, in this order):

    * ``empty``: no text, or only whitespace (a call that answered with a tool call is not empty);
    * ``truncated``: the provider stopped at the token limit (``finish_reason=length``);
    * ``repetition``: a unit of words repeated back to back ``min_repeats`` (3) times or more
      covering ``min_loop_words`` (12) words or more (a single word twice as often; number runs
      never count), or one sentence of five words or more said ``min_repeats`` times anywhere;
      details ``loop_words`` (the unit's length), ``loop_repeats``;
    * ``script``: more than ``max_foreign_script_share`` (5%) of the letters in another script
      than expected (Latin in a non-Latin answer is allowed up to 30%: names, code, URLs; quoted
      text and code do not count: a title quoted in its own script is deliberate); the
      expected script comes from ``context(expected_language=...)``, else ``expected_language``,
      else the user's turns; details ``script_expected``, ``script_found``, ``foreign_share``;
    * ``leaked_syntax``: chat-template tokens (``<|im_start|>``, ``[INST]``), tool-call markup or
      raw tool-call JSON (``<tool_call>``, ``{"name": ..., "arguments": ...}``), or template
      placeholders (``{{ name }}``, ``{% if %}``) in the prose, not inside code; details
      ``leaked`` (the kinds: ``chat_template``, ``tool_call``, ``template_placeholder``).

    ``checks`` selects which run (default: all). Score: the number of problems. Reads the first
    ``SCAN_MAX_CHARS`` (20,000) characters.
    """

    process_safe = True
    reads_retrieved_documents = False
    latency_class = "realtime"

    name = "degenerate_output"
    applies_to = INFERENCE_OPERATIONS
    context_keys = ("expected_language",)

    def __init__(
        self,
        checks: Iterable[str] = CHECKS,
        *,
        expected_language: str | None = None,
        min_repeats: int = 3,
        min_loop_words: int = 12,
        max_foreign_script_share: float = 0.05,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.checks = (checks,) if isinstance(checks, str) else checks
        self.expected_language = expected_language
        self.min_repeats = min_repeats
        self.min_loop_words = min_loop_words
        self.max_foreign_script_share = max_foreign_script_share
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        try:
            self.checks = tuple(self.checks)
        except TypeError:
            raise TypeError(f"DegenerateOutput: checks={self.checks!r} must be a list of {', '.join(CHECKS)}") from None
        if not self.checks:
            raise ValueError(f"DegenerateOutput: checks=() is empty; use some of {', '.join(CHECKS)}")
        for c in self.checks:
            if c not in CHECKS:
                raise ValueError(f"DegenerateOutput: checks contains {c!r}; the checks are {', '.join(CHECKS)}")
        if self.expected_language is not None and (not isinstance(self.expected_language, str) or _primary(self.expected_language) not in LANGUAGE_SCRIPTS):
            raise ValueError(
                f"DegenerateOutput: expected_language={self.expected_language!r} has no known script; use a language code such as 'de', 'ru', 'ja' "
                f"({len(LANGUAGE_SCRIPTS)} known), or None to infer it from the conversation"
            )
        for option, least in (("min_repeats", 2), ("min_loop_words", 2)):
            v = getattr(self, option)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ValueError(f"DegenerateOutput: {option}={v!r} must be an int >= {least}")
        s = self.max_foreign_script_share
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s < 1.0:
            raise ValueError(f"DegenerateOutput: max_foreign_script_share={s!r} must be a number from 0 up to (not including) 1")

    def _expected_script(self, call: CallView) -> tuple[str | None, str]:
        language = call.context.get("expected_language")
        if isinstance(language, str) and language:
            return LANGUAGE_SCRIPTS.get(_primary(language)), "context"
        if self.expected_language:
            return LANGUAGE_SCRIPTS.get(_primary(self.expected_language)), "configured"
        users = "\n".join(call.user_texts())[-2000:]
        return majority_script(users), "inferred"

    def evaluate(self, call: CallView) -> Result:
        text = call.output_text
        problems: list[str] = []
        details: dict[str, Any] = {}
        checks = self.checks
        if "empty" in checks and not text.strip() and not _has_tool_call(call):
            problems.append("empty")
        if "truncated" in checks and V.FINISH_LENGTH in call.finish_reasons:
            problems.append("truncated")
        scan = text[:SCAN_MAX_CHARS]
        if len(text) > SCAN_MAX_CHARS:
            details["truncated_scan"] = True
        if "repetition" in checks and scan.strip():
            loop = repetition(_TOKEN.findall(scan.lower()), self.min_repeats, self.min_loop_words) or repeated_sentence(scan, self.min_repeats)
            if loop is not None:
                problems.append("repetition")
                details["loop_words"], details["loop_repeats"] = loop
        if "script" in checks and scan.strip():
            expected, source = self._expected_script(call)
            letters = script_letters(speech(scan))  # a quoted title in its own script is deliberate
            total = sum(letters.values())
            if expected is not None and total >= 20:
                foreign = {s: n for s, n in letters.items() if s != expected}
                allowed_latin = 0.3 if expected != "latin" else 0.0
                share = sum(n for s, n in foreign.items() if not (s == "latin" and allowed_latin)) / total
                latin_share = foreign.get("latin", 0) / total if allowed_latin else 0.0
                if share > self.max_foreign_script_share or latin_share > allowed_latin:
                    problems.append("script")
                    details["script_expected"] = expected
                    details["script_expected_source"] = source
                    details["script_found"] = max(foreign, key=foreign.__getitem__)
                    details["foreign_share"] = round(share + latin_share, 4)
        if "leaked_syntax" in checks and scan:
            leaked = leaked_syntax(scan)
            if leaked:
                problems.append("leaked_syntax")
                details["leaked"] = ",".join(leaked)
        details["problems"] = ",".join(problems)
        if problems:
            return Result("fail", score=float(len(problems)), explanation=f"degenerate answer: {', '.join(problems)}", details=details)
        return Result("pass", score=0.0, details=details)


def _primary(code: str) -> str:
    return code.lower().replace("_", "-").split("-")[0]
