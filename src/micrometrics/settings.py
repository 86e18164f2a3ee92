"""Every ``instrument()`` option, declared once in ``OPTIONS``: ``resolve()``, ``Settings``, the zero-code path and
the README's options table are derived from it. Explicit arguments win over the environment, then the fallback."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from micrometrics import conventions as semconv_mode, metric_overrides, pricing, registry
from micrometrics.attributes import CAPTURE_MODES, NO_CONTENT, SPAN_AND_EVENT
from micrometrics.evaluation import EVALUATORS
from micrometrics.metric import MicroMetric

EXPORTERS = ("console", "otlp", "jaeger", "datadog", "none")
PROTOCOLS = ("http/protobuf", "grpc")
#: The OTel spec's OTLP/HTTP with JSON bodies: the installed exporter speaks protobuf only (see _protocol).
HTTP_JSON = "http/json"
#: The presets that send OTLP, and so read the OTLP endpoint variables.
OTLP_EXPORTERS = ("otlp", "jaeger", "datadog")
JAEGER_METRICS = ("none", "console")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_ENDPOINT_ENVS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)
#: instrument() arguments that are objects to use as given, not options to resolve (export.providers takes them).
PROVIDERS = ("tracer_provider", "meter_provider", "logger_provider")
PROVIDERS_DOC = (
    "use these providers instead; a `NoOp...Provider` (passed or installed) is respected: nothing is recorded "
    "through it (one warning)"
)

logger = logging.getLogger("micrometrics")


@dataclass(frozen=True)
class Option:
    """One ``instrument()`` option: where its value comes from, how it is checked, how it is documented."""

    name: str
    #: The resolved value's type: the ``Settings`` attribute's.
    type: Any
    #: ``instrument()``'s default. None means "not given": the environment decides, then ``fallback``.
    default: Any
    #: The value (given, from the environment or the fallback) -> the resolved value; raises ValueError or
    #: TypeError naming the option, the value and what is allowed.
    check: Callable[[Any], Any]
    #: What it does: the README row.
    doc: str
    #: Variables read when the argument is not given: the first one set (and not empty) wins.
    env: tuple[str, ...] = ()
    #: A variable's text -> a value for ``check``; gets the variable's name for its error.
    parse_env: Callable[[str, str], Any] = lambda raw, variable: raw
    #: Neither given nor in the environment: a value, or a function of the options resolved before this one.
    fallback: Any = None
    #: The README's words for the fallback, when its value does not say it.
    fallback_doc: str = ""
    #: The ``Settings`` attribute, when it is not ``name``.
    field: str = ""
    #: How a second instrument() call tells whether this option differs; None: not compared.
    compare: Callable[[Any], Any] | None = lambda value: value
    #: Also read under ``opentelemetry-instrument``, where there are no arguments: the runtime uses it.
    zero_code: bool = False

    @property
    def attribute(self) -> str:
        return self.field or self.name

    def resolve(self, given: Any, resolved: Mapping[str, Any]) -> Any:
        if given is not None or self.default is not None:
            return self.check(given)
        from_env = self.from_variables()
        if from_env is not None:
            return from_env
        return self.check(self.fallback_value(resolved))

    def fallback_value(self, resolved: Mapping[str, Any]) -> Any:
        return self.fallback(resolved) if callable(self.fallback) else self.fallback

    def from_variables(self) -> Any:
        """The checked value of the first variable that is set, or None; an error names the variable."""
        for variable in self.env:
            raw = os.environ.get(variable)
            if raw:  # empty is unset, as the OpenTelemetry specification reads variables
                try:
                    return self.check(self.parse_env(raw, variable))
                except (TypeError, ValueError) as exc:
                    if variable in str(exc):
                        raise
                    raise type(exc)(f"environment variable {variable}={raw!r}: {exc}") from None
        return None

    def readme_row(self) -> str:
        fallback = self.fallback_doc or _literal(self.default if self.default is not None else self.fallback)
        return f"| `{self.name}` | {', else '.join([f'`{v}`' for v in self.env] + [fallback])} | {self.doc} |"


def _literal(value: Any) -> str:
    return f'`"{value}"`' if isinstance(value, str) else f"`{value!r}`"


# ---- validators: each raises naming the option, the bad value and what is allowed -------------------------------


def _choice(option: str, allowed: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise ValueError(f"instrument({option}={value!r}) is not supported; allowed: {', '.join(map(repr, allowed))}")
        return value.lower()  # case-insensitive, every choice alike: 'Process' is 'process'

    return check


def _flag(raw: str, variable: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"environment variable {variable}={value!r} is not a boolean; use true or false")


def capture_mode(value: Any, source: str = "instrument(capture_content=...)") -> str:
    """One of CAPTURE_MODES from a bool or a mode name (case-insensitive), as the OTel GenAI
    instrumentations read the variable: true/false too. ``source`` names where a bad value came from."""
    if isinstance(value, bool):
        return SPAN_AND_EVENT if value else NO_CONTENT
    if isinstance(value, str):
        raw = value.strip().lower()
        if raw in CAPTURE_MODES:
            return raw
        if raw == "true":  # the variable's boolean form, from before the modes
            return SPAN_AND_EVENT
        if raw == "false":
            return NO_CONTENT
    allowed = "True, False (or 'true', 'false'), " + ", ".join(m.upper() for m in CAPTURE_MODES) + " (case-insensitive)"
    error = TypeError if not isinstance(value, str) else ValueError
    raise error(f"{source}: {value!r} is not a content capture mode; allowed: {allowed}")


def _service_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"instrument(service_name={value!r}) must be a non-empty str")
    return value


def _default_exporter(resolved: Mapping[str, Any]) -> str:
    has_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if has_endpoint else "console"


def _endpoint(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or "://" not in value):
        raise ValueError(f"instrument(endpoint={value!r}) must be a URL such as 'http://localhost:4318'")
    return value


def _env_endpoints(resolved: Mapping[str, Any]) -> None:
    """An OTLP endpoint from the environment must be a URL: the exporters need a scheme, and
    guessing http:// could send data in clear text to a host meant for TLS."""
    if resolved["exporter"] not in OTLP_EXPORTERS:
        return None
    for name in _ENDPOINT_ENVS:
        raw = os.environ.get(name, "").strip()
        if raw and "://" not in raw:
            raise ValueError(
                f"environment variable {name}={raw!r} has no scheme; set a URL such as 'http://{raw}' (or 'https://{raw}' for TLS)"
            )
    return None


_protocol_choice = _choice("protocol", PROTOCOLS + (HTTP_JSON,))


def _protocol(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() == HTTP_JSON:
        # The spec allows it; opentelemetry-exporter-otlp encodes protobuf only, and OTLP/HTTP
        # collectors take protobuf on the same port and paths: same endpoint, other encoding.
        logger.warning(
            "micrometrics: OTLP protocol %r is not supported by the installed OpenTelemetry exporter; using 'http/protobuf' "
            "on the same endpoint (set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf to silence this)", HTTP_JSON,
        )
        value = "http/protobuf"
    return _protocol_choice(value)


def _headers(value: Any) -> dict[str, str]:
    value = {} if value is None else value
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError("instrument(headers=...) must be a mapping of str to str")
    return dict(value)


def _instrumentations(value: Any) -> tuple[str, ...]:
    supported = registry.supported()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError(
            f"instrument(instrumentations={value!r}) takes a list of library names; supported: {', '.join(map(repr, supported))}"
        )
    for name in value:
        if name not in supported:
            raise ValueError(
                f"instrument(instrumentations=[..., {name!r}, ...]): unknown library; supported: {', '.join(map(repr, supported))}"
            )
    return tuple(dict.fromkeys(value))


def _resource_attributes(value: Any) -> dict[str, Any]:
    value = {} if value is None else value
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError("instrument(resource_attributes=...) must be a mapping with str keys")
    return dict(value)


def default_metrics() -> list[MicroMetric]:
    from micrometrics import metrics as builtin

    return [m() for m in builtin.DEFAULTS]


def _metrics(value: Any) -> list[MicroMetric]:
    if isinstance(value, MicroMetric) or not isinstance(value, Sequence):
        raise TypeError(f"instrument(metrics=...) takes a list of micrometrics.MicroMetric instances, got {value!r}")
    seen: set[str] = set()
    for m in value:
        if isinstance(m, type) and issubclass(m, MicroMetric):
            raise TypeError(f"instrument(metrics=[...]): {m.__name__} is a class; pass an instance, e.g. {m.__name__}()")
        if not isinstance(m, MicroMetric):
            raise TypeError(
                f"instrument(metrics=[...]): {m!r} is not a metric; pass MicroMetric instances or functions decorated with @micrometrics.micro_metric"
            )
        m.validate()
        if m.name in seen:
            raise ValueError(f"instrument(metrics=[...]): two metrics are named {m.name!r}; names must be unique")
        seen.add(m.name)
    # Operations' overrides (MICROMETRICS_CONFIG) win over code: that is their point.
    return metric_overrides.apply_env(value)


def _datadog_evaluations(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value.rstrip("/")
    raise ValueError(
        f"instrument(datadog_evaluations={value!r}) is not supported; allowed: True, False, or a base URL such as "
        "'http://localhost:8126' (the Agent) or 'https://api.datadoghq.eu'"
    )


def _flag_or_url(raw: str, variable: str) -> bool | str:
    return raw.strip() if "://" in raw else _flag(raw, variable)


def _redact(value: Any) -> Callable[[str], str] | None:
    if value is not None and not callable(value):
        raise TypeError(f"instrument(redact={value!r}) must be a function str -> str")
    return value


def _pricing(value: Any) -> pricing.PriceTable:
    # Operations' prices (MICROMETRICS_CONFIG) win over code, as their metric settings do.
    return pricing.resolve(value)


def _positive_int(option: str, optional: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if optional and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"instrument({option}={value!r}) must be a positive int")
        return value

    return check


def _deadline(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"instrument(evaluation_deadline_s={value!r}) must be a finite positive number of seconds, e.g. 2.0")
    return float(value)


def _sorted_items(value: Mapping[str, Any]) -> tuple:
    return tuple(sorted(value.items(), key=str))


def _metric_names(metrics: Sequence[MicroMetric]) -> tuple:
    return tuple(type(m).__name__ + ":" + m.name + ":" + m.mode for m in metrics)


BACKENDS_DOC = "[docs/backends.md](docs/backends.md)"

#: Every instrument() option, in the order it is resolved (an option's fallback may read those before it).
OPTIONS: tuple[Option, ...] = (
    Option(
        "service_name", str, None, _service_name, env=("OTEL_SERVICE_NAME", "DD_SERVICE"), fallback="unknown_service",
        doc="`service.name` of the resource; when the application already has an OpenTelemetry provider, its service "
        "name is used on every signal (one warning if they differ)",
    ),
    Option(
        "exporter", str, None, _choice("exporter", EXPORTERS), env=("MICROMETRICS_EXPORTER",), fallback=_default_exporter,
        fallback_doc='`"otlp"` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else `"console"`',
        doc=f'`"console"` (one line per span, for people), `"otlp"`, `"jaeger"`, `"datadog"` (see {BACKENDS_DOC}), `"none"`',
    ),
    Option(
        "endpoint", str | None, None, _endpoint, fallback=_env_endpoints,
        fallback_doc="the `OTEL_EXPORTER_OTLP_*` variables",
        doc="OTLP base URL with its scheme, e.g. `http://localhost:4318` (`/v1/traces` etc. are appended for HTTP); an "
        "endpoint without `http://` or `https://`, here or in the variables, is an error",
    ),
    Option(
        "protocol", str, None, _protocol, env=("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        fallback=lambda resolved: "grpc" if resolved["exporter"] == "jaeger" else "http/protobuf",
        fallback_doc='`"http/protobuf"` (`"grpc"` with `exporter="jaeger"`)',
        doc='`"http/protobuf"` or `"grpc"`; `"http/json"` is sent as `"http/protobuf"` to the same endpoint, with a '
        "warning (the installed OpenTelemetry exporter encodes protobuf only)",
    ),
    Option(
        "headers", dict[str, str], None, _headers, compare=_sorted_items,
        fallback_doc="`OTEL_EXPORTER_OTLP_HEADERS`",
        doc="extra OTLP headers (never recorded in telemetry)",
    ),
    Option(
        "capture_content", str, None, capture_mode, env=(CAPTURE_ENV,), fallback=NO_CONTENT, field="capture_mode",
        parse_env=lambda raw, variable: capture_mode(raw, f"environment variable {variable}"), zero_code=True,
        fallback_doc="`False`",
        doc="export prompts, responses, queries, documents and error messages (`gen_ai.input.messages`, ...): "
        '`False`/`"NO_CONTENT"` (nothing), `"SPAN_ONLY"` (span attributes), `"EVENT_ONLY"` (the '
        '`gen_ai.client.inference.operation.details` log record), `True`/`"SPAN_AND_EVENT"` (both); case-insensitive, '
        '`"true"`/`"false"` too. Off, an error exports its type and status code, never its text',
    ),
    Option(
        "instrumentations", tuple[str, ...], None, _instrumentations, fallback=lambda resolved: registry.importable(),
        fallback_doc="every supported library that is importable",
        doc='e.g. `["openai", "chromadb"]`; supported: `openai`, `anthropic`, `google_genai`, `bedrock`, `mistral`, `cohere`, `ollama`, `groq`, `litellm`, `chromadb`, `qdrant`, `milvus`, `lancedb`, `pinecone`, `elasticsearch`, `opensearch`, `psycopg`, `psycopg2`, `langchain`, `llama_index`, `openai_agents`, `mcp`, `weaviate`',
    ),
    Option(
        "resource_attributes", dict[str, Any], None, _resource_attributes, compare=_sorted_items,
        fallback_doc="`{}`",
        doc="added to the resource (`OTEL_RESOURCE_ATTRIBUTES` is honoured too)",
    ),
    Option(
        "metrics", list[MicroMetric], None, _metrics, fallback=lambda resolved: default_metrics(), compare=_metric_names,
        zero_code=True,
        fallback_doc="`[LanguageMatch(), ResponseLength(), RetrievalPrecision()]`",
        doc="the micro metrics; `[]` turns them off",
    ),
    # A function is compared by identity, and the same lambda written in a function is a new object on each call.
    Option(
        "redact", Callable[[str], str] | None, None, _redact, compare=None, zero_code=True,
        doc="a function `str -> str` applied to all content before export",
    ),
    Option(
        "max_content_chars", int | None, None, _positive_int("max_content_chars", optional=True), zero_code=True,
        doc="truncate each exported content string, with a `…[truncated N chars]` marker",
    ),
    Option(
        "max_queue", int, 10_000, _positive_int("max_queue"), zero_code=True,
        doc="pending calls the monitor worker holds; beyond it work is dropped and counted",
    ),
    Option(
        "evaluation_deadline_s", float, 2.0, _deadline, zero_code=True,
        doc="a monitor still running after this is reported as `timeout`",
    ),
    Option(
        "evaluator", str, None, _choice("evaluator", EVALUATORS), env=("MICROMETRICS_EVALUATOR",), fallback="thread",
        zero_code=True,
        doc='where monitors run: `"thread"`, micrometrics\' monitor thread, or `"process"`, process-safe monitors (every '
        "built-in) in a child process, off the application's interpreter lock (see [Where monitors run](#where-monitors-run))",
    ),
    Option(
        "pricing", pricing.PriceTable, None, _pricing, compare=lambda table: table.fingerprint(), zero_code=True,
        fallback_doc="the table that ships with micrometrics",
        doc='your prices in USD per million tokens, by model, e.g. `{"gpt-4o": {"input": 2.5, "cached_input": 1.25, '
        '"output": 10.0}}`, or the path of a JSON, TOML or YAML file holding them: each replaces the shipped row of its '
        'model; `MICROMETRICS_CONFIG`\'s `[pricing."model"]` tables win over both (see [docs/cost.md](docs/cost.md))',
    ),
    Option(
        "datadog_agentless", bool, None, bool, env=("MICROMETRICS_DATADOG_AGENTLESS",), parse_env=_flag, fallback=False,
        doc='with `exporter="datadog"`: send straight to Datadog\'s OTLP intake with `DD_API_KEY` instead of the local '
        f"Agent (see {BACKENDS_DOC})",
    ),
    Option(
        "datadog_evaluations", bool | str, None, _datadog_evaluations, env=("MICROMETRICS_DATADOG_EVALUATIONS",),
        parse_env=_flag_or_url, fallback=True,
        doc='with `exporter="datadog"`: also send every micro-metric result to Datadog LLM Observability\'s evaluation API, '
        "joined to its span (agentless to `https://api.{DD_SITE}` with `DD_API_KEY`, else through the Agent's EVP proxy); "
        f"`False` turns it off, a URL replaces the intake's host (see {BACKENDS_DOC})",
    ),
    Option(
        "jaeger_metrics", str, "none", _choice("jaeger_metrics", JAEGER_METRICS),
        doc='with `exporter="jaeger"` (Jaeger stores traces only): `"none"` drops metric points and log records, '
        '`"console"` prints them on stdout',
    ),
    Option(
        "conventions", str, None, _choice("conventions", semconv_mode.CONVENTIONS), env=(semconv_mode.OPT_IN_VARIABLE,),
        parse_env=semconv_mode.from_opt_in, fallback=semconv_mode.V1_41, zero_code=True,
        fallback_doc='`"v1.41"`',
        doc='the GenAI semantic conventions emitted: `"v1.41"`, or `"gen_ai_latest_experimental"`, the newer unreleased ones '
        "(per-direction token metrics, `gen_ai.client.inference.*`, ...), as `OTEL_SEMCONV_STABILITY_OPT_IN` selects them for "
        "the official instrumentations; its other values (`http`, ...) are ignored, an unknown `gen_ai` one is logged "
        "(see [GenAI conventions](#genai-conventions))",
    ),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


class _Derived:
    """What ``Settings`` adds to one attribute per option."""

    @property
    def capture_content(self) -> bool:
        """True when content is exported anywhere; ``capture_mode`` says where."""
        return self.capture_mode != NO_CONTENT

    def comparable(self) -> tuple:
        """What a second instrument() call must match to be the same call."""
        return tuple(o.compare(getattr(self, o.attribute)) for o in OPTIONS if o.compare is not None)


#: The resolved options: one attribute per option (``capture_content``'s is ``capture_mode``), plus whether the
#: exporter was passed (then it is attached to the application's own providers too).
Settings = dataclasses.make_dataclass(
    "Settings",
    [(o.attribute, o.type) for o in OPTIONS] + [("exporter_explicit", bool, dataclasses.field(default=False))],
    bases=(_Derived,),
)
Settings.__module__ = __name__  # make_dataclass takes module= from Python 3.12 on: pickle and repr find it here


def resolve(**arguments: Any) -> Settings:
    """The settings for these instrument() arguments (missing ones take instrument()'s defaults)."""
    unknown = sorted(set(arguments) - BY_NAME.keys())
    if unknown:
        raise TypeError(f"instrument() got unknown options {unknown}; allowed: {', '.join(BY_NAME)}")
    resolved: dict[str, Any] = {}
    for option in OPTIONS:
        resolved[option.name] = option.resolve(arguments.get(option.name, option.default), resolved)
    values = {BY_NAME[name].attribute: value for name, value in resolved.items()}
    return Settings(**values, exporter_explicit=arguments.get("exporter") is not None)


def from_environment() -> dict[str, Any]:
    """The options the runtime uses, by name, as the environment sets them: the zero-code path, where nothing is
    passed. A bad variable is logged, naming it, and the option keeps its fallback: a raise here would be blamed
    on the first library the loader instruments."""
    resolved: dict[str, Any] = {}
    for option in OPTIONS:
        if option.zero_code:
            try:
                resolved[option.name] = option.resolve(option.default, resolved)
            except (TypeError, ValueError) as exc:
                if not option.env:
                    raise
                fallback = option.fallback_value(resolved)
                logger.error("micrometrics: %s; %s stays at %r", exc, option.name, fallback)
                resolved[option.name] = option.check(fallback)
    return resolved


def options_table() -> str:
    """The README's table of instrument() options (a test keeps the README in step with it)."""
    rows = [o.readme_row() for o in OPTIONS]
    rows.append(f"| {', '.join(f'`{p}`' for p in PROVIDERS)} | the global ones | {PROVIDERS_DOC} |")
    return "\n".join(["| option | default | what it does |", "| --- | --- | --- |", *rows])
