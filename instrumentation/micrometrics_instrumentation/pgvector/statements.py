"""Which SQL statements are pgvector nearest-neighbour queries, and where their parts are. Pure: text in, plan out.

A statement is a retrieval when its top-level ``ORDER BY`` sorts by a pgvector distance operator (``<->`` L2,
``<=>`` cosine, ``<#>`` negative inner product, ``<+>`` L1), written in the ``ORDER BY`` itself or as the alias
(or position) of a selected expression. ``<->`` and ``<#>`` are PostGIS and pg_trgm operators too: for them
the other operand must look like a vector (a literal ``'[...]'``, a ``::vector`` / ``halfvec`` / ``sparsevec``
cast, or a bound parameter whose value is one: see ``looks_like_vector``).

Statements without an operator cost a substring test and at most one regular-expression scan (``plan``
returns None at once: about 0.1 to 0.4 µs for a 160-character statement); the others are parsed once
per statement text (a bounded cache of 512).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from numbers import Real
from typing import Any, Mapping, Sequence

#: The pre-check: one of pgvector's distance operators somewhere in the text (a literal first character: a fast scan;
#: the tokenizer tells them from the longer PostGIS / pg_trgm operators that contain them, ``<<->>``, ``<<->``).
OPERATOR = re.compile(r"<[-=#+]>")
_OPERATOR_BYTES = re.compile(rb"<[-=#+]>")
L2, COSINE, NEGATIVE_INNER_PRODUCT, L1 = "<->", "<=>", "<#>", "<+>"
#: Operators that only pgvector defines: no evidence needed that the operand is a vector.
_PGVECTOR_ONLY = frozenset({COSINE, L1})
_VECTOR_TYPES = frozenset({"vector", "halfvec", "sparsevec"})

_TOKEN = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<comment>--[^\n]*|/\*.*?\*/)
    |(?P<string>[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')
    |(?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)\$)
    |(?P<quoted>"(?:[^"]|"")*")
    |(?P<param>%\((?P<pname>[^)]*)\)s|%s|\$(?P<pnum>\d+))
    |(?P<percent>%%)
    |(?P<op>(?<!<)<[-=#+]>(?!>))
    |(?P<cast>::)
    |(?P<word>[A-Za-z_][\w$]*)
    |(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)
    |(?P<punct>[(),.;\[\]*])
    |(?P<other>.)
    """,
    re.S | re.X,
)
#: Top-level keywords that end an ORDER BY / FROM / LIMIT clause.
_CLAUSE_END = frozenset({"where", "group", "having", "window", "order", "limit", "offset", "fetch", "for", "union", "intersect", "except", "returning"})


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    depth: int
    #: A placeholder's key: its position among ``%s`` (or ``$n`` - 1), or its ``%(name)s`` name.
    key: int | str | None = None

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""


@dataclass(frozen=True)
class Plan:
    """What one retrieval statement says, whatever its parameters."""

    operator: str
    #: The first table of the top-level FROM (``schema.table`` as written, unquoted); None for a subquery.
    table: str | None
    #: The query vector's operand: a placeholder key, or None when it is written in the SQL.
    vector_param: int | str | None
    #: The SQL itself shows the operand is a vector (a ``'[...]'`` literal or a ``::vector`` cast).
    vector_evident: bool
    limit: int | None
    limit_param: int | str | None
    #: The selected distance expression: its alias (the result column's name), and its position in the select list
    #: when no ``*`` comes before it (None: not selected, or not locatable).
    distance_alias: str | None
    distance_position: int | None


def tokens(sql: str) -> list[Token]:
    out: list[Token] = []
    depth = 0
    positional = 0
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        text = m.group()
        if kind == "param":
            if m.group("pname") is not None:
                key: int | str | None = m.group("pname")
            elif m.group("pnum") is not None:
                key = int(m.group("pnum")) - 1
            else:
                key, positional = positional, positional + 1
            out.append(Token("param", text, depth, key))
            continue
        if kind == "punct" and text == ")":
            depth = max(0, depth - 1)
        out.append(Token(kind, text, depth))
        if kind == "punct" and text == "(":
            depth += 1
    return out


def _split(items: Sequence[Token], depth: int) -> list[list[Token]]:
    """``items`` cut at the commas of ``depth``."""
    parts: list[list[Token]] = [[]]
    for t in items:
        if t.kind == "punct" and t.text == "," and t.depth == depth:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def _unquote(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()


def _alias(item: list[Token]) -> str | None:
    """A select item's explicit alias (``expr AS name`` or ``expr name``)."""
    if len(item) >= 2 and item[-1].kind in ("word", "quoted") and item[-1].depth == item[0].depth:
        before = item[-2]
        if before.word == "as":
            return _unquote(item[-1].text)
        if before.kind in ("word", "quoted", "number", "param", "string") or (before.kind == "punct" and before.text == ")"):
            if item[-1].kind == "quoted" or item[-1].word not in ("asc", "desc", "nulls", "first", "last"):
                return _unquote(item[-1].text)
    return None


def _without_alias(item: list[Token]) -> list[Token]:
    if _alias(item) is None:
        return item
    return item[:-2] if item[-2].word == "as" else item[:-1]


def _without_direction(item: list[Token]) -> list[Token]:
    end = len(item)
    while end > 1 and item[end - 1].word in ("asc", "desc", "nulls", "first", "last"):
        end -= 1
    return item[:end]


def _is_star(item: list[Token]) -> bool:
    return item[-1].text == "*" and (len(item) == 1 or item[-2].text == ".")


def _operand_evidence(item: list[Token], at: int) -> tuple[int | str | None, bool]:
    """The operator at ``item[at]``: the placeholder that is its query vector (None if written inline), and whether
    the SQL shows a vector operand."""
    evident = False
    param: int | str | None = None
    for side in (range(at + 1, min(len(item), at + 5)), range(at - 1, max(-1, at - 5), -1)):
        for i in side:
            t = item[i]
            if t.kind == "param" and param is None:
                param = t.key
            elif t.kind == "string" and t.text.lstrip("eE").startswith(("'[", "'{")):
                evident = True
            elif t.kind == "word" and t.word in _VECTOR_TYPES and i > 0 and item[i - 1].kind == "cast":
                evident = True
            elif t.kind == "op":
                break
    return param, evident


def _top_level(toks: list[Token], keyword: str, start: int = 0) -> int:
    for i in range(start, len(toks)):
        if toks[i].depth == 0 and toks[i].word == keyword:
            return i
    return -1


def _clause(toks: list[Token], start: int) -> list[Token]:
    """The tokens of a top-level clause from ``start`` to the next top-level keyword that ends it."""
    end = start
    while end < len(toks) and not (toks[end].depth == 0 and (toks[end].word in _CLAUSE_END or toks[end].text == ";")):
        end += 1
    return toks[start:end]


def _limit(toks: list[Token]) -> tuple[int | None, int | str | None]:
    i = _top_level(toks, "limit")
    if i < 0:
        i = _top_level(toks, "fetch")
        if i >= 0 and i + 1 < len(toks) and toks[i + 1].word in ("first", "next"):
            i += 1
    if i < 0 or i + 1 >= len(toks):
        return None, None
    t = toks[i + 1]
    if t.kind == "number" and t.text.isdigit():
        return int(t.text), None
    if t.kind == "param":
        return None, t.key
    return None, None


def _table(toks: list[Token], select_at: int) -> str | None:
    i = _top_level(toks, "from", select_at)
    if i < 0 or i + 1 >= len(toks):
        return None
    parts = []
    j = i + 1
    while j < len(toks) and toks[j].kind in ("word", "quoted") and toks[j].depth == 0:
        parts.append(_unquote(toks[j].text))
        if j + 1 < len(toks) and toks[j + 1].text == ".":
            j += 2
            continue
        break
    return ".".join(parts) if parts and parts[0] not in _CLAUSE_END else None


def parse(sql: str) -> Plan | None:
    """The plan of a retrieval statement; None for any other."""
    toks = tokens(sql)
    select_at = _top_level(toks, "select")
    order_at = _top_level(toks, "order")
    if select_at < 0 or order_at < 0 or order_at + 1 >= len(toks) or toks[order_at + 1].word != "by":
        return None
    from_at = _top_level(toks, "from", select_at)
    select_items = _split(toks[select_at + 1 : from_at if from_at > 0 else order_at], 0)
    if select_items and select_items[0][0].word in ("distinct", "all") and len(select_items[0]) > 1:
        select_items[0] = select_items[0][1:]
    order_items = _split(_clause(toks, order_at + 2), 0)
    if not order_items:
        return None
    first = order_items[0]
    ops = [i for i, t in enumerate(first) if t.kind == "op"]
    distance_alias: str | None = None
    distance_position: int | None = None
    expression, at = first, ops[0] if ops else -1
    if at < 0:
        # ``ORDER BY distance`` / ``ORDER BY 2``: the selected expression it names.
        name = first[0]
        for position, item in enumerate(select_items):
            hit = name.kind == "number" and name.text == str(position + 1)
            hit = hit or (name.kind in ("word", "quoted") and _alias(item) == _unquote(name.text))
            if hit:
                item_ops = [i for i, t in enumerate(item) if t.kind == "op"]
                if item_ops:
                    expression, at = item, item_ops[0]
                    distance_alias, distance_position = _alias(item), position
                break
        if at < 0:
            return None
    else:
        # Ordered by the expression itself: is it selected too?
        ordered = [t.text for t in _without_direction(first)]
        for position, item in enumerate(select_items):
            if [t.text for t in _without_alias(item)] == ordered:
                distance_alias, distance_position = _alias(item), position
                break
    if distance_position is not None and any(_is_star(item) for item in select_items[:distance_position]):
        distance_position = None  # a ``*`` before it: its column number depends on the table
    operator = expression[at].text
    vector_param, evident = _operand_evidence(expression, at)
    limit, limit_param = _limit(toks)
    return Plan(
        operator=operator,
        table=_table(toks, select_at),
        vector_param=vector_param,
        vector_evident=evident,
        limit=limit,
        limit_param=limit_param,
        distance_alias=distance_alias,
        distance_position=distance_position,
    )


@functools.lru_cache(maxsize=512)
def _cached(sql: str) -> Plan | None:
    return parse(sql)


def plan(query: Any) -> Plan | None:
    """The retrieval plan of a statement as a driver receives it (``str`` or ``bytes``); None, cheaply, for other SQL."""
    if isinstance(query, str):
        if "<" not in query or OPERATOR.search(query) is None:
            return None
        return _cached(query)
    if isinstance(query, (bytes, bytearray)):
        if b"<" not in query or _OPERATOR_BYTES.search(query) is None:
            return None
        return _cached(bytes(query).decode("utf-8", "replace"))
    return None


def parameter(params: Any, key: int | str | None) -> Any:
    """The value of placeholder ``key`` in the call's parameters (a sequence or a mapping); None if not readable.

    Only lists, tuples and mappings are read: an iterator is the driver's to consume, never ours.
    """
    if key is None or params is None:
        return None
    if isinstance(key, int) and isinstance(params, (list, tuple)):
        return params[key] if 0 <= key < len(params) else None
    if isinstance(key, str) and isinstance(params, Mapping):
        return params.get(key)
    return None


def looks_like_vector(value: Any) -> bool:
    """A query vector as the drivers take it: numbers in a list / tuple / 1-d array, pgvector's ``Vector`` types,
    or their text form (``'[1,2,3]'``, a sparse ``'{1:0.5}/3'``)."""
    if isinstance(value, str):
        return value.lstrip().startswith(("[", "{"))
    if isinstance(value, (list, tuple)):
        return bool(value) and isinstance(value[0], Real) and not isinstance(value[0], bool)  # numpy scalars too
    kind = type(value)
    if kind.__module__.startswith("pgvector") and kind.__name__ in ("Vector", "HalfVector", "SparseVector"):
        return True
    return getattr(value, "ndim", None) == 1 and hasattr(value, "dtype")


def is_retrieval(plan: Plan, params: Any) -> bool:
    """Whether this call of a planned statement is a vector search: ``<->`` / ``<#>`` need a vector operand."""
    if plan.operator in _PGVECTOR_ONLY or plan.vector_evident:
        return True
    return looks_like_vector(parameter(params, plan.vector_param))


def top_k(plan: Plan, params: Any) -> int | None:
    if plan.limit is not None:
        return plan.limit
    value = parameter(params, plan.limit_param)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
