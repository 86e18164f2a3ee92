"""Recorded traffic: spans as OTLP JSON (the Collector's ``file`` exporter), read back into rows.

Only spans exported with content capture on carry what a metric reads (the
``gen_ai.input.messages`` / ``gen_ai.output.messages`` attributes); the others are
counted and skipped. ``OTLPJsonFileSpanExporter`` writes the same format from a
Python process without a Collector.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from micrometrics.offline.dataset import DatasetError, Row
from micrometrics.records import Document, message_text
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

_INFERENCE = (V.OPERATION_CHAT, V.OPERATION_TEXT_COMPLETION, V.OPERATION_GENERATE_CONTENT)
_LABEL_SUFFIX = "." + A.RESULT_LABEL


# ---- writing --------------------------------------------------------------------------------


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # proto3 JSON writes int64 as a string
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    return {"stringValue": str(value)}


def _attributes(attrs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in (attrs or {}).items()]


def encode_spans(spans: Sequence[Any]) -> dict[str, Any]:
    """SDK ``ReadableSpan``s as one OTLP/JSON ``ExportTraceServiceRequest`` (ids in hex, per the spec)."""
    resources: dict[int, tuple[Any, dict[tuple, list]]] = {}
    for s in spans:
        entry = resources.setdefault(id(s.resource), (s.resource, {}))
        scope = s.instrumentation_scope
        key = (getattr(scope, "name", ""), getattr(scope, "version", None))
        ctx = s.context
        out: dict[str, Any] = {
            "traceId": f"{ctx.trace_id:032x}",
            "spanId": f"{ctx.span_id:016x}",
            "name": s.name,
            "kind": int(s.kind.value) + 1,  # the SDK's INTERNAL=0; OTLP's SPAN_KIND_INTERNAL=1
            "startTimeUnixNano": str(s.start_time or 0),
            "endTimeUnixNano": str(s.end_time or 0),
            "attributes": _attributes(s.attributes),
            "events": [
                {"timeUnixNano": str(e.timestamp), "name": e.name, "attributes": _attributes(e.attributes)} for e in s.events
            ],
            "status": {"code": int(s.status.status_code.value)} | ({"message": s.status.description} if s.status.description else {}),
        }
        if s.parent is not None:
            out["parentSpanId"] = f"{s.parent.span_id:016x}"
        entry[1].setdefault(key, []).append(out)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes(resource.attributes if resource else {})},
                "scopeSpans": [
                    {"scope": {"name": name, **({"version": version} if version else {})}, "spans": spans_}
                    for (name, version), spans_ in scopes.items()
                ],
            }
            for resource, scopes in resources.values()
        ]
    }


class OTLPJsonFileSpanExporter:
    """A SpanExporter that appends one OTLP/JSON line per batch to a file, like the Collector's file exporter.

    ``provider.add_span_processor(BatchSpanProcessor(OTLPJsonFileSpanExporter("spans.jsonl")))``
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if not spans:
            return SpanExportResult.SUCCESS
        line = json.dumps(encode_spans(spans), ensure_ascii=False, separators=(",", ":"))
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# ---- reading ----------------------------------------------------------------------------------


def _decode_value(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_decode_value(v) for v in (value["arrayValue"].get("values") or [])]
    if "kvlistValue" in value:
        return {kv["key"]: _decode_value(kv.get("value") or {}) for kv in value["kvlistValue"].get("values") or []}
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def decode_attributes(items: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _decode_value(kv.get("value") or {}) for kv in items or ()}


def _hex_id(value: Any) -> str:
    """OTLP/JSON ids are hex; some writers use protobuf's base64: accept both."""
    text = str(value or "")
    if text and not all(c in "0123456789abcdefABCDEF" for c in text):
        try:
            return base64.b64decode(text).hex()
        except ValueError:
            return text
    return text.lower()


def iter_spans(path: str | Path) -> Iterator[tuple[dict[str, Any], dict[str, Any], str]]:
    """(span, resource attributes, where) for every span of an OTLP/JSON file: one document or JSON lines."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the traces: {exc.strerror or exc}") from exc
    stripped = text.strip()
    documents: list[tuple[int, Any]] = []
    try:
        documents = [(1, json.loads(stripped))] if stripped else []
    except ValueError:
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    documents.append((number, json.loads(line)))
                except ValueError as exc:
                    raise DatasetError(f"{path}:{number}: not OTLP JSON: {exc}") from exc
    for number, doc in documents:
        if not isinstance(doc, dict) or "resourceSpans" not in doc:
            raise DatasetError(f"{path}:{number}: not OTLP JSON traces (no \"resourceSpans\"); export spans with the Collector's file exporter")
        for rs in doc.get("resourceSpans") or ():
            resource = decode_attributes((rs.get("resource") or {}).get("attributes"))
            for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
                for span in ss.get("spans") or ():
                    yield span, resource, f"{path}:{number}"


def _json_attr(attrs: Mapping[str, Any], key: str, where: str) -> Any:
    raw = attrs.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise DatasetError(f"{where}: attribute {key} is not JSON: {exc}") from exc


def span_row(span: Mapping[str, Any], resource: Mapping[str, Any], where: str) -> Row | None:
    """The row a span stands for, or None when it holds no content to evaluate."""
    attrs = decode_attributes(span.get("attributes"))
    operation = attrs.get(A.GEN_AI_OPERATION_NAME)
    span_id, trace_id = _hex_id(span.get("spanId")), _hex_id(span.get("traceId"))
    online = {
        key[len(A.MICROMETRIC_ATTRIBUTE_PREFIX) : -len(_LABEL_SUFFIX)]: str(value)
        for key, value in attrs.items()
        if key.startswith(A.MICROMETRIC_ATTRIBUTE_PREFIX) and key.endswith(_LABEL_SUFFIX) and key.count(".") == 2
    }
    service = resource.get(A.SERVICE_NAME)
    tags = tuple(t for t in (f"service:{service}" if service else None, f"operation:{operation}") if t)
    common = dict(
        id=span_id or f"span-{where}",
        model=attrs.get(A.GEN_AI_REQUEST_MODEL),
        provider=attrs.get(A.GEN_AI_PROVIDER_NAME) or "unknown",
        tags=tags,
        source=f"trace {trace_id} span {span_id}",
        online_labels=online,
        output_type=attrs.get(A.GEN_AI_OUTPUT_TYPE),
        span_ids=(trace_id, span_id) if trace_id and span_id else None,
        service=service if isinstance(service, str) else None,
    )
    conversation = attrs.get(A.GEN_AI_CONVERSATION_ID)
    context = {"conversation_id": conversation} if conversation else {}
    if operation in _INFERENCE:
        output = _json_attr(attrs, A.GEN_AI_OUTPUT_MESSAGES, where)
        if output is None:
            return None
        messages = _json_attr(attrs, A.GEN_AI_INPUT_MESSAGES, where) or []
        system = _json_attr(attrs, A.GEN_AI_SYSTEM_INSTRUCTIONS, where) or []
        fields: dict[str, Any] = {"operation": operation, "response_model": attrs.get(A.GEN_AI_RESPONSE_MODEL)}
        reasons = attrs.get(A.GEN_AI_RESPONSE_FINISH_REASONS)
        if reasons:
            fields["finish_reasons"] = list(reasons) if isinstance(reasons, list) else [str(reasons)]
        for key, field_name in (
            (A.GEN_AI_USAGE_INPUT_TOKENS, "input_tokens"),
            (A.GEN_AI_USAGE_OUTPUT_TOKENS, "output_tokens"),
            (A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, "cache_read_tokens"),
            (A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, "cache_creation_tokens"),
            (A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, "reasoning_tokens"),
        ):
            if attrs.get(key) is not None:
                fields[field_name] = int(attrs[key])
        recorded = attrs.get(A.GEN_AI_USAGE_COST_AMOUNT)
        if attrs.get(A.GEN_AI_USAGE_COST_CURRENCY) != V.COST_CURRENCY_USD or isinstance(recorded, bool) or not isinstance(recorded, (int, float)):
            recorded = None  # another currency, or not a number: priced again here
        if attrs.get(A.MICROMETRICS_ATTEMPT):
            fields["attempt"] = int(attrs[A.MICROMETRICS_ATTEMPT])
        return Row(
            messages=list(messages),
            system_instructions=list(system),
            output_messages=list(output),
            response=message_text(output[0]) if output else "",
            record_fields=fields,
            recorded_cost=float(recorded) if recorded is not None else None,
            context=context,
            **common,
        )
    if operation == V.OPERATION_RETRIEVAL:
        contents = _json_attr(attrs, A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS, where)
        query = attrs.get(A.GEN_AI_RETRIEVAL_QUERY_TEXT)
        if contents is None and query is None:
            return None
        by_id = {d.get("id"): d.get("content") for d in contents or ()}
        docs = [
            Document(id=d.get("id"), score=d.get("score"), content=by_id.get(d.get("id")))
            for d in _json_attr(attrs, A.GEN_AI_RETRIEVAL_DOCUMENTS, where) or ()
        ]
        return Row(
            messages=[{"role": "user", "parts": [{"type": "text", "content": query or ""}]}],
            documents=docs,
            query=query,
            data_source=attrs.get(A.GEN_AI_DATA_SOURCE_ID),
            context=context,
            **common,
        )
    return None


def read_traces(path: str | Path) -> tuple[list[Row], dict[str, int]]:
    """Rows for every span with captured content, and counts of what was read and skipped."""
    rows: list[Row] = []
    stats = {"spans": 0, "evaluable": 0, "without_content": 0, "other": 0}
    for span, resource, where in iter_spans(path):
        stats["spans"] += 1
        attrs_ops = decode_attributes(span.get("attributes")).get(A.GEN_AI_OPERATION_NAME)
        if attrs_ops not in _INFERENCE and attrs_ops != V.OPERATION_RETRIEVAL:
            stats["other"] += 1
            continue
        row = span_row(span, resource, where)
        if row is None:
            stats["without_content"] += 1
            continue
        stats["evaluable"] += 1
        rows.append(row)
    return rows, stats
