"""Prices, and what a call cost: the packaged table (``pricing.json``), the user's overrides, the arithmetic.

The packaged table holds, per provider, USD per million tokens of each kind the provider bills:
``input``, ``cached_input`` (cache reads), ``cache_write`` (cache creation), ``output``, and
``reasoning`` when it is priced apart from output (OpenAI, Anthropic and Google bill reasoning as
output, so a row without it prices reasoning tokens as output). It is dated and names its sources.
The user's rows (``instrument(pricing=...)``, then the ``[pricing."model"]`` tables of the
``MICROMETRICS_CONFIG`` file, which win) replace whole rows, by model, for any provider unless
the row names one.

The arithmetic reads the record as the translators normalize it for every provider (the
conventions' counts): ``input_tokens`` include cache reads and writes, ``output_tokens`` include
reasoning. So a call costs::

    (input - cache_read - cache_write) * input + cache_read * cached_input
    + cache_write * cache_write_price + (output - reasoning) * output + reasoning * reasoning_price

in exact decimals, per million tokens. A call gets no cost rather than a guess: an unknown model,
a call that failed or a stream cut short (its usage is partial), counts that do not add up, or
tokens of a kind its row has no price for.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Context, Decimal
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn

from micrometrics import metric_overrides
from micrometrics.metric_overrides import MetricsConfigError
from micrometrics.records import CallRecord

PACKAGED_PATH = Path(__file__).with_name("pricing.json")
#: Prices are per this many tokens.
PER_TOKENS = 1_000_000
_PER_TOKENS_EXPONENT = 6
#: Lookups remembered per table before the memory starts over.
_REMEMBERED = 4096
PRICE_FIELDS = ("input", "cached_input", "cache_write", "output", "reasoning")
#: What a row may hold; ``provider`` only in the user's rows (the packaged ones sit under their provider).
ROW_FIELDS = (*PRICE_FIELDS, "long_context", "aliases", "note")
USER_ROW_FIELDS = (*ROW_FIELDS, "provider")
LONG_CONTEXT_FIELDS = ("above_input_tokens", *PRICE_FIELDS)
PACKAGED_FIELDS = ("about", "currency", "per_tokens", "date", "providers")
BLOCK_FIELDS = ("providers", "source", "models")
#: A dated or versioned name of a model the table lists by family: gpt-4o-mini-2024-07-18,
#: claude-3-5-haiku-20241022, gemini-2.0-flash-001, claude-3-7-sonnet-latest.
SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest)$")
#: google-genai names models as resources: "models/gemini-2.0-flash".
_RESOURCE_PREFIX = "models/"
#: Exact decimals whatever the application set as its thread's decimal context.
_DECIMAL = Context(prec=34)
_EXAMPLE = "{'gpt-4o': {'input': 2.5, 'cached_input': 1.25, 'output': 10.0}}"


#: Rates are also kept as whole numbers of USD 1e-9 per million tokens: a call is then priced in integers.
_SCALE = 9


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each kind; None: no price for that kind (a call using it gets no cost)."""

    input: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    output: Decimal | None = None
    reasoning: Decimal | None = None
    #: (input, cached_input, cache_write, output, reasoning-or-output) scaled to integers; None when a price has
    #: more decimals than the scale (priced in decimals then).
    scaled: tuple[int | None, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prices = (self.input, self.cached_input, self.cache_write, self.output, self.reasoning if self.reasoning is not None else self.output)
        scaled = tuple(None if p is None else p.scaleb(_SCALE, _DECIMAL) for p in prices)
        if all(p is None or p == p.to_integral_value() for p in scaled):
            object.__setattr__(self, "scaled", tuple(None if p is None else int(p) for p in scaled))


@dataclass(frozen=True, slots=True)
class Price:
    """One model's prices: its rates, and the rates of prompts above ``above_input_tokens`` when they differ."""

    rates: Rates
    long_context: Rates | None = None
    above_input_tokens: int | None = None
    #: The ``gen_ai.provider.name`` values it applies to; None: any (a user's row that names no provider).
    providers: frozenset[str] | None = None

    def serves(self, provider: str) -> bool:
        return self.providers is None or provider in self.providers

    def rates_for(self, input_tokens: int) -> Rates:
        if self.long_context is not None and self.above_input_tokens is not None and input_tokens > self.above_input_tokens:
            return self.long_context
        return self.rates


class PriceTable:
    """The packaged prices by provider and model, under the user's rows by model (which win)."""

    __slots__ = ("date", "sources", "_packaged", "_overrides", "_found")

    def __init__(
        self,
        packaged: Mapping[str, Mapping[str, Price]],
        *,
        date: str | None = None,
        sources: Mapping[str, str] | None = None,
        overrides: Mapping[str, Price] | None = None,
    ) -> None:
        self.date = date
        #: The pricing page each provider's prices were read from, by ``gen_ai.provider.name``.
        self.sources = dict(sources or {})
        self._packaged = packaged
        self._overrides = dict(overrides or {})
        # (provider, models) -> Price or None: a service calls few models, and a lookup is name rewriting.
        self._found: dict[tuple, Price | None] = {}

    def override(self, rows: Mapping[str, Price]) -> "PriceTable":
        """A table where ``rows`` replace this one's rows of the same models."""
        return PriceTable(self._packaged, date=self.date, sources=self.sources, overrides={**self._overrides, **rows})

    def price(self, provider: str, *models: Any) -> Price | None:
        """The prices of the first model that has some, for this provider: each model by its exact name, then
        (a dated snapshot) by the name without its date; the user's rows first at each step."""
        if not isinstance(provider, str):
            provider = ""  # a translator's odd value: only rows for any provider can match
        key = (provider, *models)
        try:
            return self._found[key]
        except KeyError:
            pass
        except TypeError:  # a model that is not a name (unhashable): looked up, not remembered
            return self._lookup(provider, models)
        found = self._lookup(provider, models)
        if len(self._found) >= _REMEMBERED:
            self._found.clear()  # bounded: model names from a provider's responses are untrusted
        self._found[key] = found
        return found

    def _lookup(self, provider: str, models: tuple) -> Price | None:
        packaged = self._packaged.get(provider) or {}
        for model in models:
            for name in model_names(model):
                found = self._overrides.get(name)
                if found is not None and found.serves(provider):
                    return found
                found = packaged.get(name)
                if found is not None:
                    return found
        return None

    def provider_of(self, *models: Any) -> str | None:
        """Offline rows that name no provider: the provider whose prices list the model, when only one does."""
        for model in models:
            for name in model_names(model):
                blocks = {id(prices): provider for provider, prices in self._packaged.items() if name in prices}
                if len(blocks) == 1:
                    return next(iter(blocks.values()))
                if blocks:
                    return None  # sold by several providers at their own prices: no guess
        return None

    def cost(self, record: CallRecord) -> Decimal | None:
        """What the call cost in USD; None when that is not known exactly (see the module's docstring).

        The response's model is priced first (it names the snapshot that answered), then the requested one.
        """
        if record.error_type is not None or (record.stream and not record.finish_reasons):
            return None  # failed, or a stream cut short: its usage is partial
        if type(record.input_tokens) is not int:
            return None
        found = self.price(record.provider, record.response_model, record.model)
        return charge(found, record) if found is not None else None

    def fingerprint(self) -> tuple:
        """What tells two tables apart (a second ``instrument()`` with other prices warns)."""
        return (self.date, tuple(sorted(self._overrides.items(), key=lambda item: item[0])))

    def __repr__(self) -> str:
        return f"<PriceTable of {self.date}, {len(self._overrides)} rows of your own>"


def model_names(model: Any) -> tuple[str, ...]:
    """The names a model is looked up by, most specific first: as given, without google-genai's
    ``models/``, without a snapshot suffix (``-2024-07-18``, ``-20241022``, ``-001``, ``-latest``)."""
    if not isinstance(model, str) or not model:
        return ()
    names = [model]
    if model.startswith(_RESOURCE_PREFIX) and len(model) > len(_RESOURCE_PREFIX):
        names.append(model[len(_RESOURCE_PREFIX) :])
    family = SNAPSHOT.sub("", names[-1])
    if family and family != names[-1]:
        names.append(family)
    return tuple(names)


def _count(value: Any) -> int | None:
    """A token count as the arithmetic takes it: absent is 0; anything but a count is None."""
    if value is None:
        return 0
    return value if type(value) is int and value >= 0 else None


def charge(price: Price, record: CallRecord) -> Decimal | None:
    """The call's cost at ``price``, from the conventions' counts; None when they do not add up or a kind has no price."""
    total_in, read, write, total_out, reasoning = counts = (
        _count(record.input_tokens), _count(record.cache_read_tokens), _count(record.cache_creation_tokens),
        _count(record.output_tokens), _count(record.reasoning_tokens),
    )
    if None in counts:
        return None
    fresh, visible = total_in - read - write, total_out - reasoning
    if fresh < 0 or visible < 0:
        return None  # a provider's counts that contradict each other: no guess
    rates = price.rates_for(total_in)
    tokens_by_kind = (fresh, read, write, visible, reasoning)
    scaled = rates.scaled
    if scaled is not None:
        units = 0
        for tokens, rate in zip(tokens_by_kind, scaled):
            if tokens:
                if rate is None:
                    return None
                units += tokens * rate
        return Decimal(units).scaleb(-_SCALE - _PER_TOKENS_EXPONENT, _DECIMAL)
    reasoning_rate = rates.reasoning if rates.reasoning is not None else rates.output
    total = Decimal(0)
    for tokens, rate in ((fresh, rates.input), (read, rates.cached_input), (write, rates.cache_write), (visible, rates.output), (reasoning, reasoning_rate)):
        if tokens:
            if rate is None:
                return None
            total = _DECIMAL.add(total, _DECIMAL.multiply(Decimal(tokens), rate))
    return _DECIMAL.divide(total, Decimal(PER_TOKENS))


def add(a: Decimal | None, b: Decimal) -> Decimal:
    """A running USD total (None: nothing yet) plus ``b``, exact whatever the thread's decimal context."""
    return b if a is None else _DECIMAL.add(a, b)


# ---- reading prices --------------------------------------------------------------------------------

#: ``fail(message, key, error)``: raise ``error`` (a config file: MetricsConfigError with the key's line);
#: ``key`` is the path of the bad value under the mapping being read, e.g. ("gpt-4o", "input").
Fail = Callable[..., NoReturn]


def _number(value: Any, where: str, key: tuple[str, ...], fail: Fail) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        fail(f"{where}: {value!r} must be a number >= 0 (USD per million tokens)", key, TypeError)
    if isinstance(value, float):
        if not math.isfinite(value):
            fail(f"{where}: {value!r} must be a finite number >= 0 (USD per million tokens)", key)
        value = Decimal(repr(value))  # the number as written: 0.1 is 0.1, not its binary neighbour
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        fail(f"{where}: {value} must be a finite number >= 0 (USD per million tokens)", key)
    return value


def _rates(fields: Mapping[str, Any], where: str, key: tuple[str, ...], fail: Fail) -> Rates:
    if "input" not in fields:
        fail(f"{where}: needs 'input' (USD per million input tokens); prices are {', '.join(PRICE_FIELDS)}", key)
    return Rates(**{k: _number(fields[k], f"{where}.{k}", (*key, k), fail) for k in PRICE_FIELDS if k in fields})


def _row(model: Any, row: Any, where: str, fail: Fail, allowed: tuple[str, ...], providers: frozenset[str] | None) -> Price:
    if not isinstance(model, str) or not model.strip():
        fail(f"{where}: a model name must be a non-empty string, got {model!r}", (), TypeError)
    at, key = f"{where}[{model!r}]", (model,)
    if not isinstance(row, Mapping):
        fail(f"{at}: must be a mapping of prices such as {{'input': 2.5, 'output': 10.0}}, got {row!r}", key, TypeError)
    for field in row:
        if field not in allowed:
            fail(f"{at}: unknown field {field!r}; allowed: {', '.join(allowed)}", (*key, str(field)))
    rates = _rates(row, at, key, fail)
    long_context, above = None, None
    if row.get("long_context") is not None:
        lc, lc_key = row["long_context"], (*key, "long_context")
        if not isinstance(lc, Mapping):
            fail(f"{at}.long_context: must be a mapping such as {{'above_input_tokens': 200000, 'input': 6.0, 'output': 22.5}}", lc_key, TypeError)
        for field in lc:
            if field not in LONG_CONTEXT_FIELDS:
                fail(f"{at}.long_context: unknown field {field!r}; allowed: {', '.join(LONG_CONTEXT_FIELDS)}", (*lc_key, str(field)))
        above = lc.get("above_input_tokens")
        if isinstance(above, bool) or not isinstance(above, int) or above < 1:
            fail(f"{at}.long_context.above_input_tokens: {above!r} must be a positive whole number of input tokens", (*lc_key, "above_input_tokens"))
        long_context = _rates(lc, f"{at}.long_context", lc_key, fail)
    aliases = row.get("aliases")
    if aliases is not None and (isinstance(aliases, str) or not isinstance(aliases, (list, tuple)) or not all(isinstance(a, str) and a for a in aliases)):
        fail(f"{at}.aliases: {aliases!r} must be a list of model names", (*key, "aliases"), TypeError)
    note = row.get("note")
    if note is not None and not isinstance(note, str):
        fail(f"{at}.note: {note!r} must be a string", (*key, "note"), TypeError)
    if "provider" in row:
        named = row["provider"]
        names = [named] if isinstance(named, str) else named
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) and n for n in names):
            fail(f"{at}.provider: {named!r} must be a gen_ai.provider.name such as 'openai' (or a list of them)", (*key, "provider"), TypeError)
        providers = frozenset(names)
    return Price(rates, long_context, above, providers)


def rows(mapping: Any, where: str, fail: Fail, *, allowed: tuple[str, ...] = USER_ROW_FIELDS, providers: frozenset[str] | None = None) -> dict[str, Price]:
    """``{model: {field: value}}`` checked and read; aliases become rows of their own."""
    if not isinstance(mapping, Mapping):
        fail(f"{where}: must map model names to prices, e.g. {_EXAMPLE}; got {mapping!r}", (), TypeError)
    out: dict[str, Price] = {}
    for model, row in mapping.items():
        price = _row(model, row, where, fail, allowed, providers)
        for name in (model, *(row.get("aliases") or ())):
            if name in out:
                fail(f"{where}[{name!r}]: listed twice (as a model or an alias)", (model,))
            out[name] = price
    return out


def _raise(message: str, key: tuple[str, ...] = (), error: type[Exception] = ValueError) -> NoReturn:
    raise error(message)


def _config_fail(path: str, lines: Mapping[tuple[str, ...], int], prefix: tuple[str, ...]) -> Fail:
    """Errors in a TOML or YAML file: MetricsConfigError (a ValueError) naming the file and the key's line."""

    def fail(message: str, key: tuple[str, ...] = (), error: type[Exception] = ValueError) -> NoReturn:
        keys = (*prefix, *key)
        raise MetricsConfigError(message, path, metric_overrides.line_of(lines, keys), ".".join(keys) or None)

    return fail


@functools.lru_cache(maxsize=1)
def packaged() -> PriceTable:
    """The table that ships with micrometrics (read once; it never changes while the process runs)."""
    return read_packaged(json.loads(PACKAGED_PATH.read_text(encoding="utf-8"), parse_float=Decimal), str(PACKAGED_PATH))


def read_packaged(data: Any, where: str) -> PriceTable:
    fail = _raise
    if not isinstance(data, Mapping) or not isinstance(data.get("providers"), Mapping):
        fail(f"{where}: must hold {', '.join(PACKAGED_FIELDS)}")
    for key in data:
        if key not in PACKAGED_FIELDS:
            fail(f"{where}: unknown field {key!r}; allowed: {', '.join(PACKAGED_FIELDS)}")
    if data.get("currency") != "USD" or data.get("per_tokens") != PER_TOKENS:
        fail(f"{where}: prices must be USD per {PER_TOKENS} tokens")
    by_provider: dict[str, dict[str, Price]] = {}
    sources: dict[str, str] = {}
    for block_name, block in data["providers"].items():
        at = f"{where}: providers[{block_name!r}]"
        if not isinstance(block, Mapping) or set(block) != set(BLOCK_FIELDS):
            fail(f"{at}: must hold exactly {', '.join(BLOCK_FIELDS)}")
        names = block["providers"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            fail(f"{at}.providers: must list gen_ai.provider.name values")
        models = rows(block["models"], f"{at}.models", fail, allowed=ROW_FIELDS, providers=frozenset(names))
        for name in names:
            if name in by_provider:
                fail(f"{at}: provider {name!r} is listed in two blocks")
            by_provider[name] = models
            sources[name] = str(block["source"])
    return PriceTable(by_provider, date=str(data.get("date")), sources=sources)


def read_file(path: str | os.PathLike[str]) -> dict[str, Price]:
    """A JSON, TOML or YAML file holding ``{model: prices}``; an error names the file (and the line, but for JSON)."""
    where = str(path)
    suffix = Path(where).suffix.lower()
    if suffix not in (".json", ".toml", ".yaml", ".yml"):
        raise ValueError(f"{where}: unknown file type {suffix or '(none)'!r} for prices: name it .json, .toml, .yaml or .yml")
    if suffix == ".json":
        try:
            data = json.loads(Path(where).read_text(encoding="utf-8"), parse_float=Decimal)
        except OSError as exc:
            raise ValueError(f"{where}: cannot read the price table: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise ValueError(f"{where}: not valid JSON: {exc}") from exc
        return rows(data, where, _raise)
    data, lines = metric_overrides.read(where)
    return rows(data, "", _config_fail(where, lines, ()))  # the error starts with the file and line already


def from_config(environ: Mapping[str, str] | None = None) -> dict[str, Price]:
    """The ``pricing`` table of the ``MICROMETRICS_CONFIG`` file, if any: ``[pricing."gpt-4o"]`` with prices."""
    path = (environ if environ is not None else os.environ).get(metric_overrides.ENV_VAR, "").strip()
    if not path:
        return {}
    data, lines = metric_overrides.read(path)
    if not isinstance(data, Mapping) or data.get("pricing") is None:
        return {}
    return rows(data["pricing"], "pricing", _config_fail(path, lines, ("pricing",)))


def given(value: Any) -> dict[str, Price]:
    """``instrument(pricing=...)``: a mapping of model name to prices, or the path of a file holding one."""
    if isinstance(value, (str, os.PathLike)):
        return read_file(value)
    if isinstance(value, Mapping):
        return rows(value, "instrument(pricing=...)", _raise)
    raise TypeError(
        f"instrument(pricing={value!r}) takes a mapping of model name to prices, e.g. {_EXAMPLE}, "
        "or the path of a JSON, TOML or YAML file holding one"
    )


def resolve(value: Any = None) -> PriceTable:
    """The table a runtime prices calls with: the packaged one, under ``pricing=``, under ``MICROMETRICS_CONFIG``."""
    table = packaged()
    if value is not None:
        table = table.override(given(value))
    configured = from_config()
    return table.override(configured) if configured else table
