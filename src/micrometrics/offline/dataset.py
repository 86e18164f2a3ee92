"""Evaluation datasets (JSONL, one conversation per line) and the call records built from them.

A row::

    {"id": "de-014", "messages": [{"role": "user", "content": "Hallo, ..."}, ...],
     "response": "Guten Tag, ...", "expected_language": "de", "model": "gpt-4o-mini",
     "tags": ["de", "shipping"], "retrieved": [{"id": "kb-7", "content": "...", "score": 0.82}],
     "relevant_ids": ["kb-7"], "context": {"tier": "gold"}}

Only ``messages`` is required (and ``response``, unless the run replays the rows).
Messages take the OpenAI shape (``content`` a string or a list of text parts) or the
GenAI conventions' shape (``parts``). The records are those an instrumentation builds
online for the same call, so each metric runs unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from micrometrics.records import Call, Document, InferenceRecord, RetrievalRecord, message_text, text_part
from micrometrics_semconv import values as V

#: Keys a row may hold; any other key is an error (a typo would silently drop a label).
ROW_KEYS = frozenset(
    {
        "id", "messages", "system", "response", "expected_language", "model", "provider", "tags",
        "retrieved", "relevant_ids", "relevance_grades", "query", "data_source", "context", "output_type", "notes", "usage",
    }
)
#: A row's ``usage`` (the conventions' counts: input includes cached, output includes reasoning) -> record fields.
USAGE_KEYS = {
    "input_tokens": "input_tokens", "output_tokens": "output_tokens", "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_creation_tokens", "reasoning_output_tokens": "reasoning_tokens",
}
ROLES = ("system", "developer", "user", "assistant", "tool")


class DatasetError(ValueError):
    """A dataset line that cannot be read; the message names the file and line."""


@dataclass
class Row:
    """One conversation to evaluate: what was asked, what came back, and its labels."""

    id: str
    #: The conventions' message schema (``role`` + ``parts``), system messages included.
    messages: list[dict[str, Any]]
    response: str | None = None
    expected_language: str | None = None
    model: str | None = None
    provider: str | None = None
    tags: tuple[str, ...] = ()
    documents: list[Document] = field(default_factory=list)
    relevant_ids: tuple[str, ...] | None = None
    relevance_grades: dict[str, float] | None = None
    query: str | None = None
    data_source: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    output_type: str | None = None
    #: Where the row came from: ``file:line`` or a trace/span id.
    source: str | None = None
    #: Labels the metrics gave online (rows read from traces), by metric name.
    online_labels: dict[str, str] = field(default_factory=dict)
    #: Set when a replay of the row failed.
    error: str | None = None
    #: Rows read from traces: the conventions' system instructions and output messages as exported.
    system_instructions: list[dict[str, Any]] = field(default_factory=list)
    output_messages: list[dict[str, Any]] | None = None
    #: Rows read from traces: further InferenceRecord fields (usage, finish reasons, response model).
    record_fields: dict[str, Any] = field(default_factory=dict)
    #: Rows read from traces: the USD the span recorded (``gen_ai.usage.cost.amount``), priced when the call was made.
    recorded_cost: float | None = None
    #: Rows read from traces: the evaluated span's ``(trace_id, span_id)`` in hex, and its service (``--push-datadog`` joins on them).
    span_ids: tuple[str, str] | None = None
    service: str | None = None

    def with_response(self, response: str | None, model: str | None, error: str | None = None, **record_fields: Any) -> "Row":
        return replace(
            self, response=response, model=model, error=error, output_messages=None, record_fields=record_fields, recorded_cost=None,
            span_ids=None,  # a new response: no recorded span to join to
        )

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m.get("role") == "user")


def to_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, str):
                parts.append(text_part(item))
            elif isinstance(item, Mapping) and item.get("type") in ("text", "input_text", "output_text"):
                text = item.get("text", item.get("content"))
                if not isinstance(text, str):
                    raise DatasetError(f"{where}: a text part needs a string 'text'")
                parts.append(text_part(text))
            elif isinstance(item, Mapping) and item.get("type"):
                parts.append(dict(item))
            else:
                raise DatasetError(f"{where}: content parts are strings or objects with a 'type'")
        return parts
    raise DatasetError(f"{where}: 'content' must be a string or a list of parts, got {type(content).__name__}")


def to_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    """OpenAI-style or conventions-style messages -> the conventions' schema."""
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    out = []
    for i, m in enumerate(messages):
        at = f"{where}: messages[{i}]"
        if not isinstance(m, Mapping):
            raise DatasetError(f"{at} must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise DatasetError(f"{at}: role {role!r} is not one of {', '.join(ROLES)}")
        parts = list(m["parts"]) if "parts" in m else to_parts(m.get("content"), at)
        out.append({"role": "system" if role == "developer" else role, "parts": parts})
    return out


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise DatasetError(f"{where}: '{key}' must be a list of strings")
    return tuple(str(v) for v in value)


def parse_row(data: Any, where: str, index: int) -> Row:
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: each line must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - ROW_KEYS)
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; a row may hold {', '.join(sorted(ROW_KEYS))}")
    messages = to_messages(data.get("messages"), where)
    system = data.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise DatasetError(f"{where}: 'system' must be a string")
        messages = [{"role": "system", "parts": [text_part(system)]}, *messages]
    response = data.get("response")
    if response is not None and not isinstance(response, str):
        raise DatasetError(f"{where}: 'response' must be a string")
    for key in ("expected_language", "model", "provider", "query", "data_source", "output_type", "id"):
        value = data.get(key)
        allowed = (str, int) if key == "id" else str
        if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
            raise DatasetError(f"{where}: '{key}' must be a string")
    documents = []
    for i, d in enumerate(data.get("retrieved") or ()):
        if isinstance(d, str):
            d = {"id": f"doc-{i + 1}", "content": d}
        if not isinstance(d, Mapping):
            raise DatasetError(f"{where}: retrieved[{i}] must be an object with 'id' and 'content' (or a string)")
        score = d.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise DatasetError(f"{where}: retrieved[{i}].score must be a number")
        documents.append(Document(id=str(d["id"]) if d.get("id") is not None else None, score=score, content=d.get("content"), metadata=d.get("metadata")))
    relevant = data.get("relevant_ids")
    grades = data.get("relevance_grades")
    if grades is not None and (not isinstance(grades, Mapping) or not all(isinstance(v, (int, float)) for v in grades.values())):
        raise DatasetError(f"{where}: 'relevance_grades' must map document ids to numbers")
    context = data.get("context") or {}
    if not isinstance(context, Mapping):
        raise DatasetError(f"{where}: 'context' must be an object")
    usage = data.get("usage")
    if usage is not None and (not isinstance(usage, Mapping) or not all(k in USAGE_KEYS for k in usage)
                              or not all(type(v) is int and v >= 0 for v in usage.values())):
        raise DatasetError(f"{where}: 'usage' must map {', '.join(USAGE_KEYS)} to token counts (whole numbers >= 0)")
    return Row(
        id=str(data.get("id") if data.get("id") is not None else f"row-{index + 1}"),
        messages=messages,
        response=response,
        expected_language=data.get("expected_language"),
        model=data.get("model"),
        provider=data.get("provider"),
        tags=_strings(data.get("tags") or [], "tags", where),
        documents=documents,
        relevant_ids=_strings(relevant, "relevant_ids", where) if relevant is not None else None,
        relevance_grades={str(k): float(v) for k, v in grades.items()} if grades is not None else None,
        query=data.get("query"),
        data_source=data.get("data_source"),
        context=dict(context),
        output_type=data.get("output_type"),
        source=where,
        record_fields={USAGE_KEYS[k]: v for k, v in (usage or {}).items()},
    )


def read_jsonl(path: str | Path) -> list[Row]:
    """Every row of a JSONL dataset; blank lines and ``//`` comment lines are skipped."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the dataset: {exc.strerror or exc}") from exc
    rows: list[Row] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{where}: not valid JSON: {exc}") from exc
        row = parse_row(data, where, len(rows))
        if row.id in seen:
            raise DatasetError(f"{where}: id {row.id!r} is already used at {seen[row.id]}; ids must be unique")
        seen[row.id] = where
        rows.append(row)
    if not rows:
        raise DatasetError(f"{path}: the dataset has no rows")
    return rows


def select(rows: Iterable[Row], tags: Iterable[str] = (), limit: int | None = None) -> list[Row]:
    """Rows carrying any of ``tags`` (all rows when none are given), at most ``limit``."""
    wanted = set(tags)
    chosen = [r for r in rows if not wanted or wanted.intersection(r.tags)]
    return chosen[:limit] if limit is not None else chosen


# ---- records ----------------------------------------------------------------------------


def row_context(row: Row) -> dict[str, Any]:
    """What ``micrometrics.context(...)`` would hold around the row's calls online."""
    ctx: dict[str, Any] = dict(row.context)
    if row.expected_language:
        ctx["expected_language"] = row.expected_language
    if row.relevant_ids is not None:
        ctx["relevant_document_ids"] = list(row.relevant_ids)
    if row.relevance_grades is not None:
        ctx["relevance_grades"] = dict(row.relevance_grades)
    return ctx


def calls(row: Row) -> list[Call]:
    """The calls the row stands for: a retrieval (when it has documents), then the chat."""
    ctx = row_context(row)
    provider = row.provider or "unknown"
    out: list[Call] = []
    if row.documents:
        last_user = next((message_text(m) for m in reversed(row.messages) if m.get("role") == "user"), None)
        retrieval = RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL, provider=provider, data_source=row.data_source or "dataset",
            query=row.query or last_user, top_k=len(row.documents), documents=list(row.documents),
        )
        out.append(Call(record=retrieval, context=ctx))
    if row.response is not None or row.output_messages is not None:
        output = row.output_messages
        if output is None:
            output = [{"role": "assistant", "parts": [text_part(row.response or "")], "finish_reason": V.FINISH_STOP}]
        fields: dict[str, Any] = {"operation": V.OPERATION_CHAT, "response_model": row.model, "finish_reasons": [V.FINISH_STOP]}
        fields.update(row.record_fields)
        attempt = fields.pop("attempt", 1)  # the call's state, not the record's (a trace's ``micrometrics.attempt``)
        chat = InferenceRecord(
            provider=provider, model=row.model, input_messages=list(row.messages),
            system_instructions=list(row.system_instructions), output_messages=list(output),
            output_type=row.output_type, **fields,
        )
        # What the core records online for a chat call that follows a retrieval (ContextUtilization reads it).
        out.append(Call(record=chat, attempt=attempt, context=ctx, retrieved_documents=tuple(row.documents)))
    return out
