"""``instrument()`` options: validated, merged with the environment (explicit arguments win)."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from micrometrics import metric_overrides, registry
from micrometrics.attributes import CAPTURE_MODES, NO_CONTENT, SPAN_AND_EVENT
from micrometrics.monitor_worker import EVALUATORS
from micrometrics.metric import MicroMetric

EXPORTERS = ("console", "otlp", "jaeger", "datadog", "none")
PROTOCOLS = ("http/protobuf", "grpc")
#: The OTel spec's OTLP/HTTP with JSON bodies: the installed exporter speaks protobuf only (see resolve).
HTTP_JSON = "http/json"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_ENDPOINT_ENVS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)

logger = logging.getLogger("micrometrics")


@dataclass
class Settings:
    service_name: str
    exporter: str
    exporter_explicit: bool
    endpoint: str | None
    protocol: str
    headers: dict[str, str]
    #: True when content is exported anywhere; ``capture_mode`` says where.
    capture_content: bool
    instrumentations: tuple[str, ...]
    resource_attributes: dict[str, Any]
    metrics: list[MicroMetric]
    redact: Callable[[str], str] | None = None
    max_content_chars: int | None = None
    max_queue: int = 10_000
    evaluation_deadline_s: float = 2.0
    evaluator: str = "thread"
    datadog_agentless: bool = False
    jaeger_metrics: str = "none"
    capture_mode: str = NO_CONTENT
    extra: dict[str, Any] = field(default_factory=dict)

    def comparable(self) -> tuple:
        return (
            self.service_name, self.exporter, self.endpoint, self.protocol, tuple(sorted(self.headers.items())),
            self.capture_mode, self.instrumentations, tuple(sorted(self.resource_attributes.items(), key=str)),
            tuple(type(m).__name__ + ":" + m.name + ":" + m.mode for m in self.metrics), self.max_content_chars,
        )


def _choice(option: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"instrument({option}={value!r}) is not supported; allowed: {', '.join(map(repr, allowed))}")
    return value.lower()


def env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    raw = raw.strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"environment variable {name}={raw!r} is not a boolean; use true or false")


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


def env_capture_mode() -> str:
    """The capture mode from OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT (unset: no content)."""
    raw = os.environ.get(CAPTURE_ENV)
    return NO_CONTENT if raw is None else capture_mode(raw, f"environment variable {CAPTURE_ENV}")


def _env_endpoints() -> None:
    """An OTLP endpoint from the environment must be a URL: the exporters need a scheme, and
    guessing http:// could send data in clear text to a host meant for TLS."""
    for name in _ENDPOINT_ENVS:
        raw = os.environ.get(name, "").strip()
        if raw and "://" not in raw:
            raise ValueError(
                f"environment variable {name}={raw!r} has no scheme; set a URL such as 'http://{raw}' (or 'https://{raw}' for TLS)"
            )


def default_metrics() -> list[MicroMetric]:
    from micrometrics import metrics as builtin

    return [m() for m in builtin.DEFAULTS]


def resolve(
    *,
    service_name: str | None = None,
    exporter: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    capture_content: bool | str | None = None,
    instrumentations: Sequence[str] | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    metrics: Sequence[MicroMetric] | None = None,
    redact: Callable[[str], str] | None = None,
    max_content_chars: int | None = None,
    max_queue: int = 10_000,
    evaluation_deadline_s: float = 2.0,
    evaluator: str | None = None,
    datadog_agentless: bool | None = None,
    jaeger_metrics: str = "none",
) -> Settings:
    env = os.environ
    if service_name is None:
        service_name = env.get("OTEL_SERVICE_NAME") or env.get("DD_SERVICE") or "unknown_service"
    if not isinstance(service_name, str) or not service_name:
        raise TypeError(f"instrument(service_name={service_name!r}) must be a non-empty str")

    explicit = exporter is not None
    if exporter is None:
        exporter = env.get("MICROMETRICS_EXPORTER")
        if exporter is None:
            has_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            exporter = "otlp" if has_endpoint else "console"
    exporter = _choice("exporter", exporter, EXPORTERS)

    if protocol is None:
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or (
            "grpc" if exporter == "jaeger" else "http/protobuf"
        )
    if isinstance(protocol, str) and protocol.strip().lower() == HTTP_JSON:
        # The spec allows it; opentelemetry-exporter-otlp encodes protobuf only, and OTLP/HTTP
        # collectors take protobuf on the same port and paths: same endpoint, other encoding.
        logger.warning(
            "micrometrics: OTLP protocol %r is not supported by the installed OpenTelemetry exporter; using 'http/protobuf' "
            "on the same endpoint (set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf to silence this)", HTTP_JSON,
        )
        protocol = "http/protobuf"
    protocol = _choice("protocol", protocol, PROTOCOLS + (HTTP_JSON,))
    if exporter in ("otlp", "jaeger", "datadog") and endpoint is None:
        _env_endpoints()

    if endpoint is not None and (not isinstance(endpoint, str) or "://" not in endpoint):
        raise ValueError(f"instrument(endpoint={endpoint!r}) must be a URL such as 'http://localhost:4318'")

    if headers is None:
        headers = {}
    if not isinstance(headers, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise TypeError("instrument(headers=...) must be a mapping of str to str")

    mode = env_capture_mode() if capture_content is None else capture_mode(capture_content)

    supported = registry.supported()
    if instrumentations is None:
        chosen = registry.importable()
    else:
        if isinstance(instrumentations, str):
            instrumentations = [instrumentations]
        if not isinstance(instrumentations, (list, tuple, set, frozenset)):
            raise TypeError(
                f"instrument(instrumentations={instrumentations!r}) takes a list of library names; supported: {', '.join(map(repr, supported))}"
            )
        chosen_list = []
        for name in instrumentations:
            if name not in supported:
                raise ValueError(
                    f"instrument(instrumentations=[..., {name!r}, ...]): unknown library; supported: {', '.join(map(repr, supported))}"
                )
            chosen_list.append(name)
        chosen = tuple(dict.fromkeys(chosen_list))

    if resource_attributes is None:
        resource_attributes = {}
    if not isinstance(resource_attributes, Mapping) or not all(isinstance(k, str) for k in resource_attributes):
        raise TypeError("instrument(resource_attributes=...) must be a mapping with str keys")

    if metrics is None:
        chosen_metrics = default_metrics()
    else:
        if isinstance(metrics, MicroMetric) or not isinstance(metrics, Sequence):
            raise TypeError(f"instrument(metrics=...) takes a list of micrometrics.MicroMetric instances, got {metrics!r}")
        chosen_metrics = []
        seen: set[str] = set()
        for m in metrics:
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
            chosen_metrics.append(m)
    # Operations' overrides (MICROMETRICS_CONFIG) win over code: that is their point.
    chosen_metrics = metric_overrides.apply_env(chosen_metrics)

    if redact is not None and not callable(redact):
        raise TypeError(f"instrument(redact={redact!r}) must be a function str -> str")
    if max_content_chars is not None and (isinstance(max_content_chars, bool) or not isinstance(max_content_chars, int) or max_content_chars < 1):
        raise ValueError(f"instrument(max_content_chars={max_content_chars!r}) must be a positive int")
    if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
        raise ValueError(f"instrument(max_queue={max_queue!r}) must be a positive int")
    if (
        isinstance(evaluation_deadline_s, bool) or not isinstance(evaluation_deadline_s, (int, float))
        or not math.isfinite(evaluation_deadline_s) or evaluation_deadline_s <= 0
    ):
        raise ValueError(f"instrument(evaluation_deadline_s={evaluation_deadline_s!r}) must be a finite positive number of seconds, e.g. 2.0")
    if evaluator is None:
        evaluator = env.get("MICROMETRICS_EVALUATOR") or "thread"
    # Case-insensitive like every choice option (exporter, protocol, capture_content): 'Process' is 'process'.
    evaluator = _choice("evaluator", evaluator, EVALUATORS)
    if datadog_agentless is None:
        datadog_agentless = env_flag("MICROMETRICS_DATADOG_AGENTLESS") or False
    jaeger_metrics = _choice("jaeger_metrics", jaeger_metrics, ("none", "console"))

    return Settings(
        service_name=service_name,
        exporter=exporter,
        exporter_explicit=explicit,
        endpoint=endpoint,
        protocol=protocol,
        headers=dict(headers),
        capture_content=mode != NO_CONTENT,
        capture_mode=mode,
        instrumentations=tuple(chosen),
        resource_attributes=dict(resource_attributes),
        metrics=chosen_metrics,
        redact=redact,
        max_content_chars=max_content_chars,
        max_queue=max_queue,
        evaluation_deadline_s=float(evaluation_deadline_s),
        evaluator=evaluator,
        datadog_agentless=bool(datadog_agentless),
        jaeger_metrics=jaeger_metrics,
    )
