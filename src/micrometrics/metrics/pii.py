"""PII in the response: e-mail, phone, IBAN, card numbers and a few national ids, checksum-checked.

Labels and details say which kind was found and how many, never the value: a finding's text
stays inside the metric. ``find_pii`` returns (kind, start, end) spans, so that ``mask`` can
replace them (``instrument(redact=PiiInResponse().mask)`` keeps them out of exported content).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result

#: Every kind the metric knows, in the order they are looked for.
KINDS = ("email", "iban", "card", "us_ssn", "uk_nino", "fr_nir", "de_steuer_id", "phone")
#: The answer is scanned up to here (a longer one is judged on its first characters: ``details.truncated``).
SCAN_MAX_CHARS = 100_000
#: Domains reserved for examples (RFC 2606/6761): an address there is nobody's.
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
_RESERVED_TLDS = (".example", ".test", ".invalid", ".localhost")

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])"
)

# ---- IBAN (ISO 13616, mod 97) -----------------------------------------------------------

#: IBAN length by country (the common ones; an unknown country is checked by mod 97 and 15-34 characters).
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24,
    "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TR": 26,
}
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})(?![A-Za-z0-9])")


def iban_valid(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    expected = _IBAN_LENGTHS.get(s[:2])
    if expected is not None and len(s) != expected:
        return False
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_spans(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _IBAN.finditer(text):
        raw = m.group(1)
        # The greedy match may run into the next word's digits: try the country's length first.
        compact_len = _IBAN_LENGTHS.get(raw[:2])
        if compact_len is not None:
            taken, chars = 0, 0
            for i, ch in enumerate(raw):
                if ch != " ":
                    chars += 1
                if chars == compact_len:
                    taken = i + 1
                    break
            if taken and iban_valid(raw[:taken]):
                out.append((m.start(1), m.start(1) + taken))
                continue
        if iban_valid(raw):
            out.append((m.start(1), m.end(1)))
    return out


# ---- payment cards (Luhn) ---------------------------------------------------------------

_CARD = re.compile(r"(?<![\d.,-])(\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}|\d{4}[ -]?\d{6}[ -]?\d{4,5})(?![\d-]|[.,]\d)")
_CARD_PREFIX = re.compile(r"4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])|35(?:2[89]|[3-8])|62")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_spans(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_valid(digits) and len(set(digits)) > 1:
            out.append(m.span(1))
    return out


# ---- national ids -----------------------------------------------------------------------

_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_SSN_BARE = re.compile(r"(?<!\d)(\d{3})(\d{2})(\d{4})(?!\d)")
_SSN_CUE = re.compile(r"\b(?:ssn|social security(?: number| no\.?| #)?|ss#)\W{0,6}$", re.IGNORECASE)


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _ssn_spans(text: str) -> list[tuple[int, int]]:
    out = [m.span() for m in _SSN.finditer(text) if _ssn_ok(m.group(1), m.group(3), m.group(4))]
    for m in _SSN_BARE.finditer(text):  # nine bare digits only right after "SSN"
        if _SSN_CUE.search(text, max(0, m.start() - 30), m.start()) and _ssn_ok(*m.groups()):
            out.append(m.span())
    return out


# UK National Insurance number: two letters (not D, F, I, Q, U, V; second not O; not BG GB KN NK NT TN ZZ), six digits, A-D.
_NINO = re.compile(r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])")

# French NIR (numéro de sécurité sociale): sex, year, month, department (2A/2B for Corsica), commune, order, key (97 - n mod 97).
_NIR = re.compile(
    r"(?<![\dA-Za-z])([12378]) ?(\d{2}) ?(0[1-9]|1[0-2]|[2-9]\d) ?(\d{2}|2[AB]) ?(\d{3}) ?(\d{3}) ?(\d{2})(?![\dA-Za-z])"
)


def nir_valid(m: re.Match[str]) -> bool:
    sex, year, month, dept, commune, order, key = m.groups()
    number = sex + year + month + dept.replace("2A", "19").replace("2B", "18") + commune + order
    return 97 - int(number) % 97 == int(key)


# German Steueridentifikationsnummer: 11 digits, first not 0, one digit of the first ten repeated (2 or 3 times), ISO 7064 MOD 11,10.
_STEUER = re.compile(r"(?<![\d-])([1-9]\d ?\d{3} ?\d{3} ?\d{3})(?![\d-])")
_STEUER_CUE = re.compile(r"(?:steuer|identifikationsnummer|idnr|id-nr|tax id|tin\b)", re.IGNORECASE)


def steuer_id_valid(digits: str) -> bool:
    if len(digits) != 11 or digits[0] == "0":
        return False
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    product = 10
    for ch in digits[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def _steuer_spans(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _STEUER.finditer(text):
        # Eleven digits are too common (order numbers, tracking ids): only after a tax-id cue.
        if _STEUER_CUE.search(text, max(0, m.start() - 60), m.start()) and steuer_id_valid(m.group(1).replace(" ", "")):
            out.append(m.span(1))
    return out


# ---- phone numbers ----------------------------------------------------------------------

_PHONE = re.compile(r"(?<![\w+.,/-])((?:\+|00)?\(?\d[\d \u00a0().\-/]{5,22}\d)(?![\w/-]|[.,]\d)")
_PHONE_CUE = re.compile(
    r"(?:phone|tel\b|tel\.|telephone|call|ring|mobile|cell|fax|whats ?app|sms|text me|hotline|"
    r"telefon|handy|anrufen|rufnummer|ruf|mobil|"
    r"téléphone|appele[rz]|portable|joindre|"
    r"tel[eé]fono|llam[ae]|m[oó]vil|celular|"
    r"chiama|cellulare|"
    r"bel\b|bellen|telefoon|mobiel|"
    r"ligue|ligar|telemóvel|telemovel)\W{0,12}(?:\w+\W+){0,3}$",
    re.IGNORECASE,
)
_NOT_PHONE_CUE = re.compile(
    r"(?:order|invoice|ticket|tracking|reference|ref\b|ref\.|id\b|no\.|nr\.?|#|number|version|\bv|build|serial|sku|article|item|"
    r"bestell|rechnung|sendung|kunden|auftrag|artikel|commande|facture|suivi|pedido|factura|seguimiento|ordine|fattura|"
    r"bestelling|factuur|encomenda|fatura|iban|account|konto|card|karte|carte|tarjeta|carta|kaart|cartão)\W{0,4}$",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}|\d{1,2}[./-]\d{1,2}")
_TIME = re.compile(r"\d{1,2}[:.]\d{2}(?:\s*-\s*\d{1,2}[:.]\d{2})?")
_IP = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_VERSION = re.compile(r"\d+(?:\.\d+){1,3}")
_NANP = re.compile(r"(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}")
_TRUNK = re.compile(r"\(?0\d{1,4}\)?(?:[ /-]\d{2,8}){1,4}")
_FR_PAIRS = re.compile(r"0[1-9](?:[ .-]?\d{2}){4}")
_CURRENCY = re.compile(r"[$€£¥₹]|\b(?:usd|eur|gbp|chf|euro|euros|dollars?|pounds?)\b", re.IGNORECASE)


def _phone_spans(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _PHONE.finditer(text):
        c = m.group(1).rstrip(" .-/(")
        start = m.start(1)
        end = start + len(c)
        digits = re.sub(r"\D", "", c)
        international = c.startswith("+") or c.startswith("00")
        before = text[max(0, start - 40) : start]
        around = text[max(0, start - 3) : min(len(text), end + 5)]
        if _NOT_PHONE_CUE.search(before) or _CURRENCY.search(around):
            continue  # an order number, an IBAN or card context, a price
        if _DATE.fullmatch(c) or _TIME.fullmatch(c) or _IP.fullmatch(c) or _VERSION.fullmatch(c):
            continue
        cue = _PHONE_CUE.search(before) is not None
        if international:
            national = digits[2:] if c.startswith("00") else digits
            if 8 <= len(national) <= 15 and national[0] != "0":
                out.append((start, end))
            continue
        if not 7 <= len(digits) <= 13:
            continue
        if _NANP.fullmatch(c) and len(digits) == 10 or _FR_PAIRS.fullmatch(c) or (_TRUNK.fullmatch(c) and 9 <= len(digits) <= 12):
            out.append((start, end))
        elif cue and not c.isdigit() or cue and digits.startswith("0") and 9 <= len(digits) <= 12:
            out.append((start, end))
    return out


# ---- all kinds --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One value found: its kind and where it is (the value itself is never exported)."""

    kind: str
    start: int
    end: int


def _email_spans(text: str, allowed_domains: tuple[str, ...]) -> list[tuple[int, int]]:
    out = []
    for m in _EMAIL.finditer(text):
        domain = m.group().rsplit("@", 1)[1].lower()
        if domain in allowed_domains or any(domain == d or domain.endswith("." + d) for d in allowed_domains):
            continue
        if domain.endswith(_RESERVED_TLDS):
            continue
        out.append(m.span())
    return out


def find_pii(text: str, kinds: Iterable[str] = KINDS, allowed_domains: Iterable[str] = RESERVED_DOMAINS, allow: Iterable[str] = ()) -> list[Finding]:
    """The PII values in ``text`` (its first ``SCAN_MAX_CHARS`` characters), no two overlapping.

    ``allow``: values that are nobody's personal data (the shop's own hotline): compared by their
    digits (phones) or lower-cased (e-mail addresses).
    """
    text = text[:SCAN_MAX_CHARS]
    wanted = set(kinds)
    allowed = {_normal(a) for a in allow}
    taken: list[tuple[int, int]] = []
    found: list[Finding] = []
    finders = {
        "email": lambda t: _email_spans(t, tuple(d.lower() for d in allowed_domains)),
        "iban": _iban_spans,
        "card": _card_spans,
        "us_ssn": _ssn_spans,
        "uk_nino": lambda t: [m.span() for m in _NINO.finditer(t)],
        "fr_nir": lambda t: [m.span() for m in _NIR.finditer(t) if nir_valid(m)],
        "de_steuer_id": _steuer_spans,
        "phone": _phone_spans,
    }
    for kind in KINDS:  # the more specific kinds first: a card number is not also a phone
        if kind not in wanted:
            continue
        for start, end in finders[kind](text):
            if any(start < e and s < end for s, e in taken):
                continue
            if allowed and _normal(text[start:end]) in allowed:
                continue
            taken.append((start, end))
            found.append(Finding(kind, start, end))
    found.sort(key=lambda f: f.start)
    return found


def _normal(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return value.strip().lower() if "@" in value or len(digits) < 5 else digits


def _count_kinds(found: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in found:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return counts


class PiiInResponse(MicroMetric):
    """Personal data in the answer: ``pass`` / ``fail``; details say which kinds, never the values.

    Kinds (``kinds=``, default all): ``email``, ``phone`` (E.164 ``+49 30 1234567``, national
    formats such as ``(555) 123-4567``, ``030 1234567``, ``06 12 34 56 78``, or any number
    right after a phone word; never an order number, date, time, version, IP address or
    price), ``iban`` (mod 97), ``card`` (Luhn and a card network's prefix), ``us_ssn``,
    ``uk_nino``, ``fr_nir`` (its key), ``de_steuer_id`` (check digit, and only after a tax-id
    word). Details: ``kinds`` (e.g. ``"email,phone"``), ``count``, ``<kind>`` counts; score: the
    count. Addresses at ``example.com`` and the other reserved domains, and the values in
    ``allow`` (the shop's own hotline), are not findings. As a guard it retries
    (``max_retries``, with an instruction to leave personal data out) and then returns or raises
    (``on_fail``); the guard path cannot rewrite a response, so masking the value in the app's
    answer is not offered. ``mask(text)`` replaces each finding by ``[<kind>]``: pass it as
    ``instrument(redact=...)`` to keep the values out of captured content.
    """

    process_safe = True
    reads_retrieved_documents = False
    latency_class = "realtime"

    name = "pii"
    applies_to = INFERENCE_OPERATIONS

    def __init__(
        self,
        kinds: Iterable[str] = KINDS,
        *,
        allow: Iterable[str] = (),
        allowed_domains: Iterable[str] = RESERVED_DOMAINS,
        corrective_instruction: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.kinds = (kinds,) if isinstance(kinds, str) else kinds
        self.allow = (allow,) if isinstance(allow, str) else allow
        self.allowed_domains = (allowed_domains,) if isinstance(allowed_domains, str) else allowed_domains
        self.use_corrective_instruction = corrective_instruction
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        for option in ("kinds", "allow", "allowed_domains"):
            value = getattr(self, option)
            try:
                items = tuple(value)
            except TypeError:
                raise TypeError(f"PiiInResponse: {option}={value!r} must be a list of strings") from None
            if not all(isinstance(v, str) and v for v in items):
                raise TypeError(f"PiiInResponse: {option}={value!r} must hold non-empty strings")
            setattr(self, option, items)
        if not self.kinds:
            raise ValueError(f"PiiInResponse: kinds=() is empty; use some of {', '.join(KINDS)}")
        for kind in self.kinds:
            if kind not in KINDS:
                raise ValueError(f"PiiInResponse: kinds contains {kind!r}; the kinds are {', '.join(KINDS)}")

    def find(self, text: str) -> list[Finding]:
        return find_pii(text, self.kinds, self.allowed_domains, self.allow)

    def mask(self, text: str) -> str:
        """``text`` with each finding replaced by ``[<kind>]`` (a ``redact`` function for ``instrument()``)."""
        if not isinstance(text, str):
            return text
        head, tail = text[:SCAN_MAX_CHARS], text[SCAN_MAX_CHARS:]
        out, pos = [], 0
        for f in self.find(head):
            out.append(head[pos : f.start])
            out.append(f"[{f.kind}]")
            pos = f.end
        out.append(head[pos:])
        return "".join(out) + tail

    def evaluate(self, call: CallView) -> Result:
        text = call.output_text
        found = self.find(text)
        counts = _count_kinds(found)
        details: dict[str, Any] = {"kinds": ",".join(k for k in KINDS if k in counts), "count": len(found)}
        if len(text) > SCAN_MAX_CHARS:
            details["truncated"] = True
        if not found:
            return Result("pass", score=0.0, details=details)
        details.update(counts)
        what = ", ".join(f"{k} ({n})" for k, n in ((k, counts[k]) for k in KINDS if k in counts))
        return Result("fail", score=float(len(found)), explanation=f"personal data in the answer: {what}", details=details)

    def corrective_instruction(self, call: CallView, result: Result) -> str | None:
        if not self.use_corrective_instruction:
            return None
        kinds = (result.details or {}).get("kinds") or "personal data"
        return (
            "Do not include personal data in the answer (found: " + kinds.replace(",", ", ").replace("_", " ")
            + "). Refer to it in general terms instead of writing out the values."
        )
