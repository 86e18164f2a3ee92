"""Fast, deterministic language detection for LLM responses.

langdetect's language profiles are good, but its ``Detector`` samples n-grams at
random (7 trials of up to 1,000 pure-Python Bayesian updates over 55 languages):
it costs milliseconds per response, answers differ between runs unless seeded,
and it is confidently wrong on "OK" or "Danke!". A micro metric runs on every
LLM response, so it must be cheap, reproducible and rather silent than wrong.
This module therefore keeps langdetect's 55 profiles and its character
normalisation, but scores them deterministically: naive-Bayes log-likelihood
sums over a bounded set of n-grams, computed with C-level dict lookups, only
among the languages written in the text's script, pruned to a few finalists.
The confidence is a tempered posterior averaged over chunks of the text, so it
drops for short, ambiguous and mixed-language text; non-prose input (empty,
too short, digits, emoji, code) is reported as undetermined with a reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from itertools import groupby, repeat
from operator import add, itemgetter

import langdetect
from langdetect.utils.ngram import NGram

__all__ = ["Detection", "detect_language", "language_name", "prepare"]


@dataclass(frozen=True, slots=True)
class Detection:
    language: str | None
    confidence: float
    reason: str | None = None


_NAMES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali",
    "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish",
    "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "et": "Estonian", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kn": "Kannada", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian",
    "mk": "Macedonian", "ml": "Malayalam", "mr": "Marathi", "ne": "Nepali",
    "nl": "Dutch", "no": "Norwegian", "pa": "Punjabi", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "so": "Somali", "sq": "Albanian", "sv": "Swedish",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai",
    "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "zh-cn": "Chinese (Simplified)",
    "zh-tw": "Chinese (Traditional)",
}


def language_name(code: str) -> str:
    """English name of a langdetect language code; unknown codes are returned as is."""
    return _NAMES.get(code, code)


# --- model ---------------------------------------------------------------------

# langdetect's smoothing: every language gets alpha / BASE_FREQ added to the
# relative frequency of an n-gram, so an unseen n-gram costs log(5e-5).
_SMOOTHING = 0.5 / 10_000
_FLOOR = math.log(_SMOOTHING)
# Per-n-gram scores log(p + smoothing) - log(smoothing) lie in [0, 10); as
# fixed-point integers they are exact to add in any order, and the scores of
# all languages of a script are packed into one int, one bit field each, so a
# single C-level sum() scores every candidate at once.
_SCALE = 1024
# Chunks hold at most a few hundred letters (tokens are split at 48), i.e.
# under 2,000 n-grams of at most 10 * _SCALE each: 28 bits never overflow.
_FIELD_BITS = 28
_FIELD_MASK = (1 << _FIELD_BITS) - 1

# The 1-, 2- and 3-gram windows over the same characters are far from
# independent evidence; dividing the log-likelihoods by this temperature keeps
# the posterior honest (calibrated so that wrong answers on 20-40 letter
# snippets of closely related languages stay below 0.8).
_TEMPERATURE = 8.0
# The confidence is the letter-weighted mean of per-chunk posteriors, so text
# that is half German and half English gets about 0.5 for either.
_CHUNK_LETTERS = 120
# Runs of another script than the text's main one shorter than this are
# ignored rather than judged as a second language.
_MIN_FOREIGN_RUN = 24
# Raw input beyond this many characters per max_chars is sampled, not read.
_RAW_FACTOR = 8
_MAX_CHARS_CAP = 100_000
_CACHE_MAX = 1 << 16

# Prior odds for languages that are rare in LLM traffic and share most
# n-grams with a common one, so that short Dutch is not called Afrikaans
# and short Russian not Macedonian; longer text overrides the prior.
_PRIOR = {"af": 0.25, "mk": 0.25, "bg": 0.5}

_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK"}
# A language competes for text in a script if at least this share of its
# profile's letters are in that script (ja: Han and kana; ko: Hangul only).
_MIN_SCRIPT_SHARE = 0.2


class _Model:
    __slots__ = ("groups", "packed", "log_prior")

    def __init__(
        self, groups: dict[str, tuple[str, ...]], packed: dict[str, dict[str, int]]
    ) -> None:
        self.groups = groups  # script -> candidate languages, sorted
        self.packed = packed  # script -> {ngram: packed fixed-point scores}
        self.log_prior = {
            script: [math.log(_PRIOR.get(lang, 1.0)) for lang in langs]
            for script, langs in groups.items()
        }


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    head = name.split(" ", 1)[0] if name else "?"
    return _SCRIPT_GROUPS.get(head, head)


def _load_model() -> _Model:
    directory = os.path.join(os.path.dirname(langdetect.__file__), "profiles")
    tables: dict[str, dict[str, int]] = {}
    shares: dict[str, dict[str, float]] = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            profile = json.load(f)
        n_words = profile["n_words"]
        table: dict[str, int] = {}
        share: dict[str, float] = {}
        for gram, count in profile["freq"].items():
            n = len(gram)
            if not 1 <= n <= 3 or n_words[n - 1] <= 0 or count <= 0:
                continue
            score = math.log(count / n_words[n - 1] + _SMOOTHING) - _FLOOR
            table[gram] = round(score * _SCALE)
            if n == 1 and unicodedata.category(gram)[0] in "LM":
                script = _script(gram)
                share[script] = share.get(script, 0.0) + count
        total = sum(share.values()) or 1.0
        tables[profile["name"]] = table
        shares[profile["name"]] = {k: v / total for k, v in share.items()}

    groups: dict[str, tuple[str, ...]] = {}
    for lang in sorted(tables):
        for script, share_of_script in sorted(shares[lang].items()):
            if share_of_script >= _MIN_SCRIPT_SHARE:
                groups[script] = (*groups.get(script, ()), lang)
    packed: dict[str, dict[str, int]] = {}
    for script, langs in groups.items():
        merged: dict[str, int] = {}
        for i, lang in enumerate(langs):
            shift = i * _FIELD_BITS
            for gram, q in tables[lang].items():
                if q:
                    merged[gram] = merged.get(gram, 0) | (q << shift)
        packed[script] = merged
    return _Model(groups, packed)


_model: _Model | None = None
_lock = threading.Lock()


def prepare() -> None:
    """Load the language profiles once; safe to call from many threads at once."""
    global _model
    if _model is not None:
        return
    with _lock:
        if _model is None:
            _model = _load_model()


def _reset_for_tests() -> None:
    """Forget the loaded profiles so that tests can exercise concurrent first use."""
    global _model
    with _lock:
        _model = None


def _get_model() -> _Model:
    model = _model
    if model is None:
        prepare()
        model = _model
        assert model is not None
    return model


# --- normalisation ---------------------------------------------------------------


class _NormTable(dict):
    """``str.translate`` table: langdetect-normalised letter, or a space for anything else.

    Filled lazily so that only characters actually seen are classified; the
    size cap keeps adversarial input from growing it without bound.
    """

    __slots__ = ()

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        out = NGram.normalize(ch) if unicodedata.category(ch)[0] in "LM" else " "
        if len(self) < _CACHE_MAX:
            self[cp] = out
        return out


class _ScriptTable(dict):
    __slots__ = ()

    def __missing__(self, ch: str) -> str:
        out = _script(ch)
        if len(self) < _CACHE_MAX:
            self[ch] = out
        return out


_NORM = _NormTable()
_SCRIPTS = _ScriptTable()

_LATIN = "A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u0300-\u036f\u1e00-\u1eff"
# Latin runs and non-Latin runs become separate tokens, so "Wi-Fiの設定" does
# not turn a Japanese clause into a Latin token; the length cap bounds chunks
# of unspaced scripts.
_TOKEN_RE = re.compile(f"[{_LATIN}]{{1,48}}|[^\\s{_LATIN}]{{1,48}}")

_URL_RE = re.compile(r"(?:https?://|www\.)\S{1,2076}|[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{0,255}")
_FENCE_RE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.S)
_INLINE_CODE_RE = re.compile(r"`[^`\n]{0,400}`")
_TAG_RE = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>")

# --- code heuristics ---------------------------------------------------------------

_CODE_LINE_RE = re.compile(
    r"""^\s*(?:
        (?:def|class|import|from\s+\S+\s+import|function|return|const|let|var|
           public|private|protected|static|package|using|namespace|fn|func|
           if\s*\(|for\s*\(|while\s*\(|elif|else\s*:|try\s*:|except|catch|
           \#include|\#!|@\w+|console\.|print\(|echo\s|sudo\s|pip\s|npm\s|\$\s)\b
      | (?:SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX|VIEW)|
           ALTER\s+TABLE|DROP\s+TABLE|WITH)\s
      | [{}\[\]]
      | </?[A-Za-z!?]
      | \w+(?:\.\w+)*\s*\(.*\)\s*;?\s*$
      | [\w.\[\]"']+\s*(?:=|:=|\+=|-=|=>)\s*\S
      | "[^"\n]*"\s*:
    )""",
    re.X,
)
_CODE_TOKEN_RE = re.compile(r"[{}\[\];=<>|&\\]|\w\(|\)\.|::|->|\w_\w|\w\.\w+\(")


def _looks_like_code(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return False
    code_lines = sum(1 for ln in lines if _CODE_LINE_RE.match(ln))
    if code_lines * 2 >= len(lines) + (len(lines) > 2):
        return True
    marks = len(_CODE_TOKEN_RE.findall(text))
    return marks >= 2 and marks * 4 >= len(text.split())


# --- detection ---------------------------------------------------------------------


def _bounded(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, as evenly spaced windows."""
    if len(text) <= limit:
        return text
    windows = 4
    width = limit // windows
    span = len(text) - width
    return "\n".join(text[i * span // (windows - 1) :][:width] for i in range(windows))


def _select_tokens(tokens: list[str], max_chars: int) -> list[str]:
    """Evenly spaced runs of tokens holding about ``max_chars`` characters."""
    total = sum(map(len, tokens)) + len(tokens)
    if total <= max_chars:
        return tokens
    windows = 4
    per_window = max(1, max_chars // windows)
    starts = sorted({i * (len(tokens) - 1) // (windows - 1) for i in range(windows)})
    chosen: list[str] = []
    taken = 0
    for start in starts:
        start = max(start, taken)
        size = 0
        i = start
        while i < len(tokens) and size < per_window:
            chosen.append(tokens[i])
            size += len(tokens[i]) + 1
            i += 1
        taken = i
    return chosen


def _grams(tokens: list[str]) -> list[str]:
    """langdetect's 1-, 2- and 3-grams of space-padded words (some spurious ones cost nothing)."""
    s = " " + " ".join(tokens) + " "
    bigrams = list(map(add, s, s[1:]))
    return [*s.replace(" ", ""), *bigrams, *map(add, bigrams, s[2:])]


def _posterior(packed_sum: int, log_prior: list[float]) -> list[float]:
    scale = 1.0 / (_SCALE * _TEMPERATURE)
    scores = [
        ((packed_sum >> (i * _FIELD_BITS)) & _FIELD_MASK) * scale + lp
        for i, lp in enumerate(log_prior)
    ]
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def detect_language(
    text: str,
    *,
    min_chars: int = 20,
    min_confidence: float = 0.8,
    max_chars: int = 400,
) -> Detection:
    """Detect the language of ``text``; ``language`` is None when it cannot be told reliably."""
    if not isinstance(text, str) or not text or text.isspace():
        return Detection(None, 0.0, "empty")
    max_chars = min(max(int(max_chars), 1), _MAX_CHARS_CAP)
    text = _bounded(text, _RAW_FACTOR * max(max_chars, 100))

    prose = _FENCE_RE.sub("\n", text)
    had_code = len(prose) != len(text)
    prose = _INLINE_CODE_RE.sub(" ", prose)
    prose = _URL_RE.sub(" ", prose)
    prose = _TAG_RE.sub(" ", prose)
    if _looks_like_code(prose):
        return Detection(None, 0.0, "code")

    normalized = NGram.normalize_vi(prose).translate(_NORM)
    tokens = _TOKEN_RE.findall(normalized)
    letters = sum(map(len, tokens))
    if letters == 0:
        return Detection(None, 0.0, "code" if had_code else "no_letters")
    visible = len("".join(prose.split()))
    if letters * 5 < visible * 2:
        return Detection(None, 0.0, "no_letters")
    if letters < min_chars:
        return Detection(None, 0.0, "code" if had_code else "too_short")

    model = _get_model()
    selected = _select_tokens(tokens, max_chars)
    scripts = [_SCRIPTS[token[0]] for token in selected]
    runs = [
        (script, [token for _, token in run])
        for script, run in groupby(zip(scripts, selected), key=itemgetter(0))
    ]
    per_script: dict[str, int] = {}
    for script, run_tokens in runs:
        per_script[script] = per_script.get(script, 0) + sum(map(len, run_tokens))
    dominant = min(per_script, key=lambda script: (-per_script[script], script))

    # Chunks of consecutive same-script tokens, ~_CHUNK_LETTERS letters each.
    chunks: list[tuple[str, list[str], int]] = []
    current: list[str] = []
    current_script = ""
    size = 0
    for script, run_tokens in runs:
        if script != dominant and sum(map(len, run_tokens)) < _MIN_FOREIGN_RUN:
            # "Bluetooth" in Russian text or "配送" in an English one is a name
            # or a loanword, part of the surrounding language.
            continue
        for token in run_tokens:
            if token.isupper():
                # Acronyms and product codes say little about the language;
                # longer all-caps words are shouting, judged in lower case.
                if len(token) <= 4:
                    continue
                token = token.lower()
            if current and (script != current_script or size >= _CHUNK_LETTERS):
                chunks.append((current_script, current, size))
                current, size = [], 0
            current_script = script
            current.append(token)
            size += len(token)
    if current:
        chunks.append((current_script, current, size))
    # A short tail is judged together with the chunk before it.
    merged: list[tuple[str, list[str], int]] = []
    for script, toks, n in chunks:
        if merged and merged[-1][0] == script and n < _CHUNK_LETTERS // 2:
            prev = merged.pop()
            merged.append((script, prev[1] + toks, prev[2] + n))
        else:
            merged.append((script, toks, n))

    mass: dict[str, float] = {}
    total_letters = 0
    for script, toks, n in merged:
        total_letters += n
        langs = model.groups.get(script)
        if langs is None:
            continue
        packed_sum = sum(map(model.packed[script].get, _grams(toks), repeat(0)))
        if not packed_sum:
            continue
        for lang, p in zip(langs, _posterior(packed_sum, model.log_prior[script])):
            mass[lang] = mass.get(lang, 0.0) + p * n

    if not mass:
        return Detection(None, 0.0, "low_confidence")
    best = min(mass, key=lambda lang: (-mass[lang], lang))
    confidence = min(1.0, mass[best] / total_letters)
    if confidence < min_confidence:
        return Detection(None, 0.0, "low_confidence")
    return Detection(best, confidence)
