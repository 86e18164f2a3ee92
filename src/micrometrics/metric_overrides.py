"""Metric settings from a file (``MICROMETRICS_CONFIG``), so operations can change them without a deploy.

TOML (always) or YAML (when PyYAML is installed)::

    [metrics.language_match]
    mode = "guard"
    sample_rate = 1.0
    owner = "support-quality"
    review_by = 2027-03-31
    cost_per_failure = 4.0
    currency = "EUR"

    [metrics.response_length]
    enabled = false

Each table is keyed by metric name. ``enabled = false`` removes a configured metric,
``enabled = true`` adds a built-in one that the code did not configure. Every error
names the file, the line and the bad key. The same file's ``[pricing."model"]`` tables
are prices (pricing.py reads them).
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from micrometrics.metric import MODES, MicroMetric

ENV_VAR = "MICROMETRICS_CONFIG"
#: The file's tables: metric settings (here) and model prices (pricing.py).
SECTIONS = ("metrics", "pricing")
#: The settings a file may change, by key.
KEYS = ("enabled", "mode", "sample_rate", "owner", "review_by", "cost_per_failure", "currency")


class MetricsConfigError(ValueError):
    """A metrics configuration file that cannot be applied; the message names file, line and key."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None, key: str | None = None) -> None:
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.key = key


@dataclass(frozen=True)
class MetricSettings:
    """The settings one file gives one metric (None: not set)."""

    name: str
    line: int | None
    #: Line of each setting, for errors found when the settings are applied.
    lines: Mapping[str, int | None] = field(default_factory=dict)
    enabled: bool | None = None
    mode: str | None = None
    sample_rate: float | None = None
    owner: str | None = None
    review_by: _dt.date | None = None
    cost_per_failure: float | None = None
    currency: str | None = None


@dataclass(frozen=True)
class MetricsConfig:
    path: str
    metrics: Mapping[str, MetricSettings]


# ---- reading -------------------------------------------------------------------------


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 only
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise MetricsConfigError("reading TOML on Python 3.10 needs the tomli package: pip install tomli") from exc
    return tomllib.loads(text)


_BARE = r"[A-Za-z0-9_-]+"
_PIECE = re.compile(rf'\s*(?:({_BARE})|"((?:[^"\\]|\\.)*)"|\'([^\']*)\')\s*')


def _split_dotted(text: str) -> tuple[str, ...] | None:
    """``a."b.c".d`` -> ("a", "b.c", "d"); None when it is not a key."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _PIECE.match(text, pos)
        if not m or m.end() == pos:
            return None
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def _toml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key is defined: tomllib reports no positions, so scan the lines."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.match(r"^\[\[?(.+?)\]\]?\s*(?:#.*)?$", line)
        if header:
            path = _split_dotted(header.group(1))
            if path is not None:
                table = path
                for i in range(1, len(path) + 1):  # [a.b] also defines a
                    lines.setdefault(path[:i], number)
            continue
        eq = line.find("=")
        if eq > 0:
            key = _split_dotted(line[:eq])
            if key is not None:
                for i in range(1, len(key) + 1):
                    lines.setdefault(table + key[:i], number)
    return lines


def _yaml_load(text: str, path: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    try:
        import yaml
    except ImportError as exc:
        raise MetricsConfigError(
            "is YAML, which needs PyYAML: pip install pyyaml (or write the file as TOML)", path
        ) from exc
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MetricsConfigError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", path, mark.line + 1 if mark else None) from exc
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = prefix + (str(key_node.value),)
                lines.setdefault(key, key_node.start_mark.line + 1)
                walk(value_node, key)

    if root is not None:
        walk(root, ())
    return data, lines


def load(path: str | os.PathLike[str]) -> MetricsConfig:
    """Read and check one file; raises MetricsConfigError naming the line and key of any mistake."""
    data, lines = read(path)
    return parse(data, str(path), lines)


def read(path: str | os.PathLike[str]) -> tuple[Any, dict[tuple[str, ...], int]]:
    """A TOML or YAML file's data and the line of each key (pricing.py reads its ``pricing`` table through it)."""
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except OSError as exc:
        raise MetricsConfigError(f"cannot read the metrics configuration: {exc.strerror or exc}", p) from exc
    suffix = Path(p).suffix.lower()
    if suffix in (".yaml", ".yml"):
        data, lines = _yaml_load(text, p)
    elif suffix == ".toml":
        try:
            data = _toml_loads(text)
        except MetricsConfigError as exc:
            raise MetricsConfigError(str(exc), p) from exc
        except ValueError as exc:  # tomllib.TOMLDecodeError says "(at line N, column M)"
            m = re.search(r"line (\d+)", str(exc))
            raise MetricsConfigError(f"not valid TOML: {exc}", p, int(m.group(1)) if m else None) from exc
        lines = _toml_lines(text)
    else:
        raise MetricsConfigError(f"unknown file type {suffix or '(none)'!r}: name it .toml, .yaml or .yml", p)
    return data, lines


def line_of(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of a key, or of the nearest table holding it."""
    return _line(lines, path)


def _line(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def parse(data: Any, path: str = "<config>", lines: Mapping[tuple[str, ...], int] | None = None) -> MetricsConfig:
    lines = lines or {}

    def fail(key: tuple[str, ...], message: str) -> MetricsConfigError:
        dotted = ".".join(key)
        return MetricsConfigError(f"{dotted}: {message}", path, _line(lines, key), dotted)

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MetricsConfigError("the file must hold a table/mapping with a 'metrics' key", path, 1)
    for key in data:
        if key not in SECTIONS:
            raise fail((str(key),), "unknown key; the file holds 'metrics' (keyed by metric name) and 'pricing' (keyed by model)")
    section = data.get("metrics") or {}
    if not isinstance(section, dict):
        raise fail(("metrics",), "must be a table keyed by metric name, e.g. [metrics.language_match]")
    out: dict[str, MetricSettings] = {}
    for name, table in section.items():
        base = ("metrics", str(name))
        if not re.fullmatch(r"[A-Za-z0-9_]+", str(name)):
            raise fail(base, "a metric name is letters, digits and '_'")
        if not isinstance(table, dict):
            raise fail(base, f"must be a table of settings ({', '.join(KEYS)})")
        values: dict[str, Any] = {}
        for key, value in table.items():
            where = base + (str(key),)
            if key not in KEYS:
                raise fail(where, f"unknown setting; allowed: {', '.join(KEYS)}")
            values[key] = _check(key, value, lambda msg, w=where: fail(w, msg))
        key_lines = {str(k): _line(lines, base + (str(k),)) for k in table}
        out[str(name)] = MetricSettings(name=str(name), line=_line(lines, base), lines=key_lines, **values)
    return MetricsConfig(path=path, metrics=out)


def _check(key: str, value: Any, fail: Any) -> Any:
    if key == "enabled":
        if not isinstance(value, bool):
            raise fail(f"{value!r} must be true or false")
    elif key == "mode":
        if value not in MODES:
            raise fail(f"{value!r} is not a mode; use one of {', '.join(map(repr, MODES))}")
    elif key == "sample_rate":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise fail(f"{value!r} must be a number between 0 and 1")
        value = float(value)
    elif key == "cost_per_failure":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise fail(f"{value!r} must be a number >= 0")
        value = float(value)
    elif key in ("owner", "currency"):
        if not isinstance(value, str) or not value.strip():
            raise fail(f"{value!r} must be a non-empty string")
    elif key == "review_by":
        if isinstance(value, _dt.datetime):
            value = value.date()
        elif isinstance(value, str):
            try:
                value = _dt.date.fromisoformat(value)
            except ValueError:
                raise fail(f"{value!r} is not a date; write it as YYYY-MM-DD") from None
        elif not isinstance(value, _dt.date):
            raise fail(f"{value!r} is not a date; write it as YYYY-MM-DD")
    return value


# ---- applying --------------------------------------------------------------------------


def builtin_metrics() -> dict[str, type[MicroMetric]]:
    """Built-in metric classes by metric name."""
    from micrometrics import metrics as builtin

    found: dict[str, type[MicroMetric]] = {}
    for attr in getattr(builtin, "__all__", ()):
        cls = getattr(builtin, attr, None)
        if isinstance(cls, type) and issubclass(cls, MicroMetric) and cls.name:
            found[cls.name] = cls
    return found


def apply(metrics: Sequence[MicroMetric], config: MetricsConfig) -> list[MicroMetric]:
    """The metrics with the file's settings: copies, the caller's objects stay untouched."""
    by_name = {m.name: m for m in metrics}
    builtins = builtin_metrics()
    for name, s in config.metrics.items():
        if name not in by_name and s.enabled is not True:
            known = ", ".join(sorted(set(by_name) | set(builtins)))
            raise MetricsConfigError(
                f"metrics.{name}: no configured metric has this name (known: {known}); "
                "fix the name, or set enabled = true to add a built-in metric",
                config.path, s.line, f"metrics.{name}",
            )
    out: list[MicroMetric] = []
    for m in metrics:
        s = config.metrics.get(m.name)
        if s is None:
            out.append(m)
            continue
        if s.enabled is False:
            continue
        out.append(_configured(copy.copy(m), s, config.path))
    for name, s in config.metrics.items():
        if s.enabled is True and name not in by_name:
            cls = builtins.get(name)
            if cls is None:
                raise MetricsConfigError(
                    f"metrics.{name}.enabled: {name!r} is not a built-in metric (built-ins: {', '.join(sorted(builtins))}); "
                    "metrics of your own are turned on in code",
                    config.path, s.lines.get("enabled", s.line), f"metrics.{name}.enabled",
                )
            out.append(_configured(cls(), s, config.path))
    return out


def _configured(metric: MicroMetric, s: MetricSettings, path: str) -> MicroMetric:
    for key in KEYS[1:]:
        value = getattr(s, key)
        if value is not None:
            setattr(metric, key, value)
    try:
        metric.validate()
    except (TypeError, ValueError) as exc:
        raise MetricsConfigError(f"metrics.{s.name}: {exc}", path, s.line, f"metrics.{s.name}") from exc
    return metric


def from_env(environ: Mapping[str, str] | None = None) -> MetricsConfig | None:
    path = (environ if environ is not None else os.environ).get(ENV_VAR, "").strip()
    return load(path) if path else None


def apply_env(metrics: Sequence[MicroMetric]) -> list[MicroMetric]:
    """``metrics`` with the settings of the file named by ``MICROMETRICS_CONFIG``, if set."""
    config = from_env()
    return list(metrics) if config is None else apply(metrics, config)
