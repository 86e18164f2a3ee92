"""Fast, deterministic language detection for LLM responses.

A micro metric such as LanguageMatch runs on every LLM response, so its
language detector must be cheap, reproducible and rather silent than wrong.
langdetect's profiles (55 languages) are good, but its ``Detector`` samples
n-grams at random (7 trials of up to 1,000 pure-Python Bayesian updates): it
takes milliseconds, answers differ between runs unless seeded, and it is
confidently wrong on "OK" or "Danke!". This module keeps the profiles and
langdetect's character normalisation and scores them deterministically instead:
naive-Bayes log-likelihoods as exact fixed-point integers, all languages of a
script packed into one big int per n-gram so that a single C-level ``sum()``
scores every candidate, only among languages written in the text's script. The
confidence is a tempered posterior, reduced by the share of letters in other
scripts or in sentences that are confidently another language, so that short,
ambiguous and mixed-language text stays undetermined; so does text that is not
prose (empty, too short, digits, emoji, code), with the reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import sys
import threading
import unicodedata
from dataclasses import dataclass
from operator import add
from typing import Any

from micrometrics.metric import yield_point

__all__ = ["Detection", "detect_language", "language_name", "normalize_language", "prepare"]


@dataclass(frozen=True, slots=True)
class Detection:
    """Result of :func:`detect_language`."""

    language: str | None  # langdetect's code ("de", "zh-cn"), None when undetermined
    confidence: float  # the winner's posterior, 0..1; 0.0 when undetermined
    reason: str | None = None  # "empty", "too_short", "no_letters", "code" or "low_confidence"


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


#: ISO 639-3 (and 639-2/B) codes of the detector's languages, and the other ISO 639-1 codes that name one of them.
_ALIASES: dict[str, str] = {
    "afr": "af", "ara": "ar", "bul": "bg", "ben": "bn", "cat": "ca", "ces": "cs", "cze": "cs", "cym": "cy", "wel": "cy",
    "dan": "da", "deu": "de", "ger": "de", "ell": "el", "gre": "el", "eng": "en", "spa": "es", "est": "et", "fas": "fa",
    "per": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "guj": "gu", "heb": "he", "iw": "he", "hin": "hi", "hrv": "hr",
    "hun": "hu", "ind": "id", "in": "id", "ita": "it", "jpn": "ja", "kan": "kn", "kor": "ko", "lit": "lt", "lav": "lv",
    "mkd": "mk", "mac": "mk", "mal": "ml", "mar": "mr", "nep": "ne", "nld": "nl", "dut": "nl", "nor": "no", "nob": "no",
    "nno": "no", "nb": "no", "nn": "no", "pan": "pa", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "mo": "ro",
    "rus": "ru", "slk": "sk", "slo": "sk", "slv": "sl", "som": "so", "sqi": "sq", "alb": "sq", "swe": "sv", "swa": "sw",
    "swh": "sw", "tam": "ta", "tel": "te", "tha": "th", "tgl": "tl", "fil": "tl", "tur": "tr", "ukr": "uk", "urd": "ur",
    "vie": "vi", "zho": "zh", "chi": "zh", "cmn": "zh",
}
#: English names (and common other names) -> code, lower case.
_BY_NAME: dict[str, str] = {
    **{name.lower(): code for code, name in _NAMES.items()},
    "chinese": "zh", "mandarin": "zh", "simplified chinese": "zh-cn", "traditional chinese": "zh-tw", "farsi": "fa",
    "filipino": "tl", "slovene": "sl", "panjabi": "pa", "norwegian bokmal": "no", "norwegian bokmål": "no",
    "norwegian nynorsk": "no", "moldovan": "ro", "kiswahili": "sw",
}
_SUBTAG = re.compile(r"[a-z0-9]{1,8}")


def normalize_language(value: object, option: str = "expected_language") -> str:
    """The detector's code for an ISO 639-1/-3 code, a BCP 47 tag or an English language name
    ("German", "deu", "de-AT" -> "de"; "zh-Hant" -> "zh-tw"; "Chinese" -> "zh"): anything else is a
    ValueError naming ``option``, since an unknown language would turn every answer into a mismatch."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{option}={value!r} must be a language: an ISO 639 code ('de', 'deu'), a BCP 47 tag ('de-AT') or an English name ('German')")
    key = " ".join(value.strip().lower().split())
    if key in _BY_NAME:
        return _BY_NAME[key]
    subtags = key.replace("_", "-").split("-")
    primary = _ALIASES.get(subtags[0], subtags[0])
    if all(_SUBTAG.fullmatch(t) for t in subtags) and (primary in _NAMES or primary == "zh"):
        if primary != "zh":
            return primary  # the detector tells languages apart, not regions or scripts
        rest = set(subtags[1:])
        if rest & {"hant", "tw", "hk", "mo"}:
            return "zh-tw"
        if rest & {"hans", "cn", "sg", "my"}:
            return "zh-cn"
        return "zh"  # either script: matched on the language
    supported = ", ".join(sorted({c.split("-")[0] for c in _NAMES}))
    raise ValueError(
        f"{option}={value!r} is not a language micrometrics can detect; use an ISO 639-1/-3 code, a BCP 47 tag or an "
        f"English name of one of: {supported} (e.g. 'de', 'deu', 'de-AT', 'German')"
    )


def language_name(code: str) -> str:
    """English name of a language code ("de", "pt-BR", "zh-TW"); unknown codes are returned as is."""
    key = code.strip().lower().replace("_", "-")
    if key in _NAMES:
        return _NAMES[key]
    primary = key.split("-", 1)[0]
    if primary == "zh":
        return "Chinese"
    return _NAMES.get(primary, code)


# --- model ---------------------------------------------------------------------

# Additive smoothing of the n-gram frequencies. langdetect adds 5e-5, about
# the frequency of the rarest n-grams its profiles keep; 1e-5 lets the kept
# rare n-grams count and separated related languages better on 20-45 letter
# snippets (per-language floors at the pruning threshold did not do better).
_SMOOTHING = 1e-5
_FLOOR = math.log(_SMOOTHING)
# Per-n-gram scores log(p + smoothing) - log(smoothing) lie in [0, 12); as
# fixed-point integers they are exact to add in any order, and the scores of
# all languages of a script are packed into one int, one bit field each, so a
# single C-level sum() scores every candidate at once.
_SCALE = 1024
# Chunks hold under 300 letters (tokens are split at 48), i.e. under 1,500
# n-grams of at most 12 * _SCALE each: 32-bit fields never overflow, and
# struct unpacks them in one call.
_FIELD_BITS = 32

# The 1-, 2- and 3-gram windows over the same characters are far from
# independent evidence; dividing the log-likelihoods by this temperature keeps
# the posterior honest (calibrated so that wrong answers on 20-40 letter
# snippets of closely related languages stay below 0.8).
_TEMPERATURE = 7.0
# Text is scored as a whole, and also in chunks of whole sentences (at least
# _MIN_CHUNK letters, at most about _MAX_CHUNK): letters in chunks that are
# confidently another language do not count for the winner, so half-German,
# half-English text gets about 0.5.
_MIN_CHUNK = 40
_MAX_CHUNK = 200
_FOREIGN_CHUNK_CONFIDENCE = 0.9
# Runs of another script than the text's main one shorter than this are
# ignored rather than judged as a second language.
_MIN_FOREIGN_RUN = 24
# Short text made mostly of capitalised words is judged a name or product list.
_NAME_GUARD_LETTERS = 60
# Raw input beyond this many characters per max_chars is sampled, not read.
_RAW_FACTOR = 8
_MAX_CHARS_CAP = 100_000
_CACHE_MAX = 1 << 16
# Distinct tokens per script whose n-grams are kept: at most about 3 MB per script (8,192 random
# Latin words, measured with tracemalloc).
_TOKEN_CACHE_MAX = 1 << 13

# Prior odds for languages that are rare in LLM traffic and share most
# n-grams with a common one, so that short Dutch is not called Afrikaans,
# short Spanish not Catalan, short Russian not Macedonian; longer text
# overrides the prior.
_PRIOR = {"af": 0.25, "mk": 0.25, "bg": 0.5, "ca": 0.5}

# Simplified and Traditional Chinese share their confidence: a short text is
# surely Chinese long before it is surely one of the two, and the label still
# names the likelier one.
_VARIANT_OF = {"zh-cn": "zh", "zh-tw": "zh"}

_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK"}
# A language competes for text in a script if at least this share of its
# profile's letters are in that script (ja: Han and kana; ko: Hangul only).
_MIN_SCRIPT_SHARE = 0.2


class _Model:
    __slots__ = ("groups", "packed", "grams_of", "log_prior", "unpack", "width", "with_variants")

    def __init__(
        self, groups: dict[str, tuple[str, ...]], packed: dict[str, dict[str, int]]
    ) -> None:
        self.groups = groups  # script -> candidate languages, sorted
        self.packed = packed  # script -> {ngram: packed fixed-point scores}
        # script -> {token: the token's n-grams that score}, filled as tokens are seen
        self.grams_of = {script: _TokenGrams(table) for script, table in packed.items()}
        self.log_prior = {
            script: [math.log(_PRIOR.get(lang, 1.0)) for lang in langs]
            for script, langs in groups.items()
        }
        self.unpack = {script: struct.Struct(f"<{len(langs)}I").unpack for script, langs in groups.items()}
        self.width = {script: 4 * len(langs) for script, langs in groups.items()}
        self.with_variants = frozenset(
            script for script, langs in groups.items() if any(lang in _VARIANT_OF for lang in langs)
        )


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    head = name.split(" ", 1)[0] if name else "?"
    return _SCRIPT_GROUPS.get(head, head)


def _ngram() -> Any:
    # langdetect is imported at the first detection (or guard ``prepare()``), not when the metric is declared at ``instrument()``.
    from langdetect.utils.ngram import NGram

    return NGram


def _load_model() -> _Model:
    import langdetect

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


_SENTENCE_ENDS = frozenset(".!?;:\n\r\u2026\u3002\uff01\uff1f\u061f\u0964\u06d4")


class _NormTable(dict):
    """``str.translate`` table: langdetect-normalised letter, newline at a sentence end, else space.

    Filled lazily so that only characters actually seen are classified; the
    size cap keeps adversarial input from growing it without bound.
    """

    __slots__ = ()

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        if ch in _SENTENCE_ENDS:
            out = "\n"
        elif unicodedata.category(ch)[0] in "LM":
            out = _ngram().normalize(ch)
        else:
            out = " "
        if len(self) < _CACHE_MAX:
            self[cp] = out
        return out


class _ScriptTable(dict):
    """Character -> script name (first word of its Unicode name), filled lazily."""

    __slots__ = ()

    def __missing__(self, ch: str) -> str:
        out = _script(ch)
        if len(self) < _CACHE_MAX:
            self[ch] = out
        return out


class _TokenGrams(dict):
    """Token -> its n-grams that the script's table scores (langdetect's, of the space-padded token).

    A chunk's n-grams are the union of its tokens' (langdetect never lets an n-gram
    span two words, so none of the profiles' does), and words repeat from text to
    text: a token's n-grams are generated once, not per call. Filled lazily up to
    ``_TOKEN_CACHE_MAX`` tokens (the first seen, usually the frequent ones); the
    n-gram strings are interned, so the tokens share them.
    """

    __slots__ = ("table",)

    def __init__(self, table: dict[str, int]) -> None:
        super().__init__()
        self.table = table

    def __missing__(self, token: str) -> tuple[str, ...]:
        table = self.table
        s = " " + token + " "
        bigrams = list(map(add, s, s[1:]))
        grams = [*token, *bigrams, *map(add, bigrams, s[2:])]
        out = tuple(sys.intern(g) for g in dict.fromkeys(grams) if g in table)
        if len(self) < _TOKEN_CACHE_MAX:
            self[token] = out
        return out


_NORM = _NormTable()
_SCRIPTS = _ScriptTable()

_LATIN = "A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u0300-\u036f\u1e00-\u1eff"
# Latin runs and non-Latin runs become separate tokens, so "Wi-Fiの設定" does
# not turn a Japanese clause into a Latin token; the length cap bounds chunks
# of unspaced scripts.
_TOKEN_RE = re.compile(f"[{_LATIN}]{{1,48}}|[^\\s{_LATIN}]{{1,48}}|\n")
_BREAK = "\n"

_URL_RE = re.compile(
    r"(?:https?://|www\.)\S{1,2076}|[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{0,255}"
)
_FENCE_RE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.S)
_INLINE_CODE_RE = re.compile(r"`[^`\n]{0,400}`")
_TAG_RE = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>")

# --- code heuristics ---------------------------------------------------------------

# Line starts that prose (even lower-case chat) practically never has.
_CODE_LINE_RE = re.compile(
    r"""\s*(?:
        def\s+\w+\s*\( | class\s+\w+\s*[(:{] | function\b\s*\w*\s*\(
      | import\s+[\w.]+\s*(?:$|,|as\s|;) | from\s+[\w.]+\s+import\s | \#include\b | \#!/
      | (?:const|let|var|val|auto)\s+\w+\s*[:=] | (?:fn|func)\s+\w+\s*[(<]
      | (?:public|private|protected|static|final)\s+[\w<>\[\],\s]+\(
      | (?:package|using|namespace)\s+[\w.]+\s*[;{]?\s*$
      | (?:if|for|while|switch|catch)\s*\( | (?:elif|except|else|try|finally)\b[^\n]*[:{]\s*$
      | return\b[^\n]*;\s*$ | console\.\w | print\( | >>>\s | \$\s+\w
      | (?:sudo|pip3?|npm|npx|yarn|git|docker|kubectl|brew|apt-get|apt|conda|cargo|go)\s+
        (?:-|install|uninstall|run|add|remove|clone|commit|push|pull|checkout|status|build|
           start|exec|get|apply|init|update|upgrade|ci|compose|logs|test)\b
      | curl\s+(?:-|https?:)
      | (?:SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX|VIEW)
         |ALTER\s+TABLE|DROP\s+TABLE|WITH)\s
      | [{}\]] | \[\s*[\[{"'\]] | \[\s*-?\d+(?:\.\d+)?\s*,
      | <[!?] | \w+(?:\.\w+)*\(.*\)\s*;?\s*$
      | [\w.\[\]"']+\s*(?:=|:=|\+=|-=|=>)\s*\S | "[^"\n]*"\s*:
    )""",
    re.X,
)
# Brackets are left out: citations, links and checkboxes use them in prose.
_CODE_MARK_RE = re.compile(r"[{};=<>\\]|&&|\|\||\w\(|\)\.|::|->|\w_\w|\w\.\w+\(")
# Every code mark holds one of these characters and marks do not overlap: their count bounds
# the marks, so prose with few of them skips the (slow, alternation-heavy) mark search.
_CODE_MARK_CHARS = re.compile(r"[{};=<>\\&|()_:]")


def _strip_code(text: str) -> tuple[str, bool, bool]:
    """The prose lines of ``text``, whether code lines were dropped, and whether it is mostly code."""
    lines = [line for line in text.splitlines() if line and not line.isspace()]
    prose = [line for line in lines if not _CODE_LINE_RE.match(line)]
    n_code = len(lines) - len(prose)
    if n_code and n_code * 2 >= len(lines) + (len(lines) > 2):
        return "", True, True
    kept = "\n".join(prose)
    words = len(kept.split())
    bound = len(_CODE_MARK_CHARS.findall(kept))
    if bound < 2 or bound * 4 < words:
        return kept, n_code > 0, False
    marks = len(_CODE_MARK_RE.findall(kept))
    return kept, n_code > 0, marks >= 2 and marks * 4 >= words


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
    end = 0
    for start in starts:
        i = max(start, end)
        size = 0
        while i < len(tokens) and size < per_window:
            chosen.append(tokens[i])
            size += len(tokens[i]) + 1
            i += 1
        chosen.append(_BREAK)
        end = i
    return chosen


def _chunks(tokens: list[str]) -> list[tuple[str, list[str], int]]:
    """Chunks of whole sentences in one script: (script, tokens, letters)."""
    scripts = [None if token == _BREAK else _SCRIPTS[token[0]] for token in tokens]
    present = set(scripts)
    present.discard(None)
    if not present:
        return []
    keep = [True] * len(tokens)
    if len(present) > 1:
        per_script: dict[str, int] = {}
        for token, script in zip(tokens, scripts):
            if script is not None:
                per_script[script] = per_script.get(script, 0) + len(token)
        dominant = min(per_script, key=lambda script: (-per_script[script], script))
        # "Bluetooth" in Russian text or "配送" in an English one is a name or
        # a loanword, part of the surrounding language: short runs of another
        # script (sentence ends do not interrupt a run) are left out.
        i = 0
        while i < len(tokens):
            script = scripts[i]
            if script is None or script == dominant:
                i += 1
                continue
            members: list[int] = []
            letters = 0
            while i < len(tokens) and scripts[i] in (None, script):
                if scripts[i] is not None:
                    members.append(i)
                    letters += len(tokens[i])
                i += 1
            if letters < _MIN_FOREIGN_RUN:
                for k in members:
                    keep[k] = False

    chunks: list[tuple[str, list[str], int]] = []
    current: list[str] = []
    current_script = ""
    size = 0
    for token, script, kept in zip(tokens, scripts, keep):
        if script is None:
            if size >= _MIN_CHUNK:
                chunks.append((current_script, current, size))
                current, size = [], 0
            continue
        if not kept:
            continue
        if token.isupper():
            # Acronyms and product codes say little about the language;
            # longer all-caps words are shouting, judged in lower case.
            if len(token) <= 4:
                continue
            token = token.lower()
        if current and (script != current_script or size >= _MAX_CHUNK):
            chunks.append((current_script, current, size))
            current, size = [], 0
        current_script = script
        current.append(token)
        size += len(token)
    if current:
        chunks.append((current_script, current, size))

    # A short chunk is judged together with the one before it.
    merged: list[tuple[str, list[str], int]] = []
    for script, chunk_tokens, n in chunks:
        if merged and merged[-1][0] == script and n < _MIN_CHUNK:
            _, prev_tokens, prev_n = merged.pop()
            merged.append((script, prev_tokens + chunk_tokens, prev_n + n))
        else:
            merged.append((script, chunk_tokens, n))
    return merged


def _looks_like_names(tokens: list[str], letters: int) -> bool:
    """Names or a product list ("iPhone 15 Pro Max, AirPods Pro", "Maria García, Calle Mayor 12").

    Short text in a cased script with fewer than two lower-case words is no
    sentence; German nouns are capitalised, its articles and verbs are not.
    """
    cased = [token for token in tokens if len(token) > 1 and token.lower() != token.upper()]
    if sum(map(len, cased)) * 2 < letters:
        return False
    return sum(1 for token in cased if token.islower()) < 2


def _logits(scores: list[int], log_prior: list[float]) -> list[float]:
    """Tempered fixed-point log-likelihoods plus log prior."""
    scale = 1.0 / (_SCALE * _TEMPERATURE)
    return [score * scale + lp for score, lp in zip(scores, log_prior)]


def _posterior(scores: list[int], log_prior: list[float]) -> list[float]:
    """Softmax of :func:`_logits`."""
    logits = _logits(scores, log_prior)
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def _leader(scores: list[int], log_prior: list[float]) -> int:
    """Index of the likeliest language: the argmax of :func:`_posterior`, without the softmax."""
    logits = _logits(scores, log_prior)
    return logits.index(max(logits))


def _family_of(lang: str) -> str:
    return _VARIANT_OF.get(lang, lang)


def _top(model: _Model, script: str, posterior: list[float]) -> tuple[float, str, str]:
    """(probability, family, likeliest member) of the likeliest language family."""
    langs = model.groups[script]
    if script not in model.with_variants:
        best = max(range(len(langs)), key=posterior.__getitem__)  # first of equals: sorted codes
        return posterior[best], langs[best], langs[best]
    families: dict[str, tuple[float, str]] = {}
    for i in sorted(range(len(langs)), key=lambda i: (-posterior[i], langs[i])):
        family = _family_of(langs[i])
        total, member = families.get(family, (0.0, langs[i]))
        families[family] = (total + posterior[i], member)
    family = min(families, key=lambda f: (-families[f][0], f))
    return families[family][0], family, families[family][1]


def detect_language(
    text: str,
    *,
    min_chars: int = 20,
    min_confidence: float = 0.8,
    max_chars: int = 400,
) -> Detection:
    """Detect the language of ``text``; ``language`` is None when it cannot be told reliably.

    ``min_chars`` is the minimum number of letters, ``min_confidence`` the
    minimum confidence of the winner, ``max_chars`` the amount of text scored
    (longer text is sampled in evenly spaced windows). Never raises for a ``str``.
    """
    if not isinstance(text, str) or not text or text.isspace():
        return Detection(None, 0.0, "empty")
    max_chars = min(max(int(max_chars), 1), _MAX_CHARS_CAP)
    text = _bounded(text, _RAW_FACTOR * max(max_chars, 100))

    # Fenced and inline code, URLs and markup are not language; a German
    # explanation around a Python snippet is still German.
    prose = _FENCE_RE.sub("\n", text) if "```" in text or "~~~" in text else text
    had_code = len(prose) != len(text)
    if "`" in prose:
        prose = _INLINE_CODE_RE.sub(" ", prose)
    if "@" in prose or "://" in prose or "www." in prose:
        prose = _URL_RE.sub(" ", prose)
    if "<" in prose:
        prose = _TAG_RE.sub(" ", prose)
    yield_point()
    prose, dropped_lines, mostly_code = _strip_code(prose)
    if mostly_code:
        return Detection(None, 0.0, "code")
    had_code = had_code or dropped_lines

    yield_point()
    ngram = _ngram()
    # langdetect's Vietnamese normalisation joins a vowel and a following combining mark: without such a
    # mark (almost all text) its regular expression has nothing to replace.
    normalized = ngram.normalize_vi(prose) if any(mark in prose for mark in ngram.DMARK_CLASS) else prose
    tokens = _TOKEN_RE.findall(normalized.translate(_NORM))
    letters = sum(map(len, tokens)) - tokens.count(_BREAK)
    if letters == 0:
        return Detection(None, 0.0, "code" if had_code else "no_letters")
    # Letters under 40% of the visible characters (their count bounded by the length: prose skips the count).
    if letters * 5 < len(prose) * 2 and letters * 5 < len("".join(prose.split())) * 2:
        return Detection(None, 0.0, "no_letters")
    if letters < min_chars:
        return Detection(None, 0.0, "code" if had_code else "too_short")

    if letters < _NAME_GUARD_LETTERS and _looks_like_names(tokens, letters):
        # Names and product lists are not sentences; their n-grams would give
        # a confident but meaningless answer.
        return Detection(None, 0.0, "low_confidence")

    yield_point()  # on the monitor thread: let the application in between the steps
    model = _get_model()
    group_scores: dict[str, list[int]] = {}
    group_letters: dict[str, int] = {}
    scored_chunks: list[tuple[str, int, list[int]]] = []
    total = 0
    for script, chunk_tokens, n in _chunks(_select_tokens(tokens, max_chars)):
        yield_point()
        total += n
        langs = model.groups.get(script)
        if langs is None:
            continue
        # Each distinct n-gram counts once per chunk: "haha haha haha" or a
        # repeated phrase is one piece of evidence, not many.
        grams = set().union(*map(model.grams_of[script].__getitem__, chunk_tokens))
        packed = sum(map(model.packed[script].__getitem__, grams))
        scores = list(model.unpack[script](packed.to_bytes(model.width[script], "little")))
        previous = group_scores.get(script)
        group_scores[script] = scores if previous is None else list(map(add, previous, scores))
        group_letters[script] = group_letters.get(script, 0) + n
        scored_chunks.append((script, n, scores))
    if not group_scores:
        return Detection(None, 0.0, "low_confidence")

    # Whole-text posterior per script, weighted by the script's share of the
    # letters: letters in other scripts (or in none we know) count against.
    candidates: list[tuple[float, str, str, str]] = []
    for script, scores in group_scores.items():
        p, family, lang = _top(model, script, _posterior(scores, model.log_prior[script]))
        candidates.append((p * group_letters[script], family, lang, script))
    best_mass, family, best, best_script = min(candidates, key=lambda c: (-c[0], c[1]))

    foreign = 0
    if len(scored_chunks) > 1:
        log_prior = model.log_prior[best_script]
        plain = best_script not in model.with_variants
        for script, n, scores in scored_chunks:
            if script == best_script:
                if plain and model.groups[script][_leader(scores, log_prior)] == family:
                    continue  # the chunk's likeliest language is the winner: not foreign, whatever its odds
                p, chunk_family, _ = _top(model, script, _posterior(scores, log_prior))
                if chunk_family != family and p >= _FOREIGN_CHUNK_CONFIDENCE:
                    foreign += n
    in_script = group_letters[best_script]
    confidence = min(1.0, best_mass / total * (in_script - foreign) / in_script)
    if confidence < min_confidence:
        return Detection(None, 0.0, "low_confidence")
    return Detection(best, confidence)
