"""The provider-neutral call records that flow from an instrumentation to the runtime.

One record type per operation family. Instrumentations fill them in (translate
only); the runtime keeps each call's own state (span, timing, attempt, results) in a ``Call``
beside it; spans.py and emission.py map them to telemetry; metrics read them through ``CallView``.
"""

from __future__ import annotations

import base64
import inspect
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping


@dataclass(eq=False, kw_only=True)
class Document:
    """One retrieved document: ids and scores are metadata, ``content`` is content."""

    id: str | None = None
    score: float | None = None
    content: str | None = None
    metadata: Mapping[str, Any] | None = None


@dataclass(eq=False, kw_only=True)
class CallRecord:
    operation: str
    provider: str
    model: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    #: Request parameters keyed by their semconv attribute name (already normalised).
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False

    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    #: Input tokens written to the provider's cache (v1.41: ``cache_creation``; later conventions: ``cache_write``).
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    time_to_first_chunk: float | None = None
    error_type: str | None = None
    #: Response attributes a provider defines (``openai.response.service_tier``...), keyed by their semconv name.
    response_params: dict[str, Any] = field(default_factory=dict)

@dataclass(eq=False, kw_only=True)
class InferenceRecord(CallRecord):
    """chat, text_completion, generate_content."""

    #: Conventions' message schema: ``{"role": ..., "parts": [{"type": "text", "content": ...}]}``.
    input_messages: list[dict[str, Any]] = field(default_factory=list)
    #: Conventions' parts: ``[{"type": "text", "content": ...}]``.
    system_instructions: list[dict[str, Any]] = field(default_factory=list)
    #: ``{"role": "assistant", "parts": [...], "finish_reason": ...}``, one per choice.
    output_messages: list[dict[str, Any]] = field(default_factory=list)
    tool_definitions: list[Any] | None = None
    output_type: str | None = None
    # Request details only the conventions after v1.41 name (exported with OTEL_SEMCONV_STABILITY_OPT_IN, conventions.py).
    #: The reasoning or thinking effort requested, the string sent (``reasoning_effort``, ``effort``, ``thinking_level``).
    reasoning_level: str | None = None
    #: The earlier response this request continues (OpenAI Responses ``previous_response_id``).
    previous_response_id: str | None = None
    #: A provider-managed prompt template: its id and version (OpenAI Responses ``prompt``).
    prompt_name: str | None = None
    prompt_version: str | None = None

    @property
    def output_text(self) -> str:
        """Text of the first choice: what the user reads, and what metrics judge."""
        if not self.output_messages:
            return ""
        return message_text(self.output_messages[0])


@dataclass(eq=False, kw_only=True)
class EmbeddingsRecord(CallRecord):
    input_count: int | None = None
    dimension_count: int | None = None
    #: Inputs are content: only exported with capture on, always visible to metrics.
    inputs: list[str] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class RetrievalRecord(CallRecord):
    data_source: str | None = None
    query: str | None = None
    top_k: int | None = None
    documents: list[Document] = field(default_factory=list)
    score_kind: str | None = None
    db_system: str | None = None
    #: ``db.collection.name`` and ``db.operation.name`` of the store queried, when known.
    db_collection: str | None = None
    db_operation: str | None = None


@dataclass(eq=False, kw_only=True)
class AgentRecord(InferenceRecord):
    """invoke_agent, create_agent and invoke_workflow: a unit of agent work. Its messages are the
    conversation it was given and its final answer, so a metric can judge an agent's answer."""

    agent_name: str | None = None
    agent_id: str | None = None
    agent_description: str | None = None
    agent_version: str | None = None
    #: invoke_workflow: the workflow's name (``gen_ai.workflow.name``).
    workflow_name: str | None = None
    #: An agent run remotely (a provider-hosted agent) is a CLIENT span; one in this process is INTERNAL.
    remote: bool = False


@dataclass(eq=False, kw_only=True)
class ToolRecord(CallRecord):
    """execute_tool: one tool run. ``arguments`` and ``result`` are content (exported only with capture)."""

    provider: str = ""
    tool_name: str | None = None
    tool_call_id: str | None = None
    tool_type: str | None = None
    tool_description: str | None = None
    arguments: Any = None
    result: Any = None
    #: A tool called across processes (MCP): ``"client"`` or ``"server"``, the span's kind (INTERNAL when None).
    remote: str | None = None
    #: The protocol method of a remote tool call (``tools/call``): the span is named ``{method} {tool}`` (MCP conventions).
    method: str | None = None

    @property
    def output_text(self) -> str:
        """The result as text, for a metric on tool results: a string result, else a text part's content."""
        result = self.result
        if isinstance(result, str):
            return result
        if isinstance(result, dict) and isinstance(result.get("content"), str):
            return result["content"]
        return ""


@dataclass(eq=False, kw_only=True)
class Call:
    """One call's state beside its record, filled by the runtime (never by a translator): the record
    stays what the translator saw, so the evaluator process ships it as it is."""

    record: CallRecord
    attempt: int = 1
    #: What ``micrometrics.context(...)`` held when the call started.
    context: Mapping[str, Any] = field(default_factory=dict)
    span: Any = None
    #: A span started after the fact (a framework's callback reports a run that already began): its start, in ns.
    start_time_ns: int | None = None
    start_perf: float = 0.0
    duration: float | None = None
    end_time_ns: int | None = None
    #: Results of the metrics evaluated on this call, by metric name.
    results: dict[str, Any] = field(default_factory=dict)
    #: Inference calls: documents retrieved before them in the same ``context()`` block or trace (trace_memory.recall).
    retrieved_documents: tuple[Document, ...] = ()
    #: The metric dimensions, computed once the call ended (attributes.dimensions).
    dimensions: dict[str, Any] | None = None
    #: USD this attempt cost (pricing.py); None when not known exactly (unknown model, failed, cut short).
    cost: Decimal | None = None
    #: The metric that caused this call: the guard that retried it, or the metric whose evaluation made it (an LLM judge).
    charged_to: str | None = None
    #: A guard retry: the attempt it replaces (released once the last attempt has summed the retries' cost).
    replaces: "Call | None" = field(default=None, repr=False)
    #: The last attempt of a call a guard retried: USD of its retries (attempts 2..n), the priced ones.
    guard_cost: Decimal | None = None
    #: Streams: ``perf_counter()`` at each chunk's arrival (``time_per_output_chunk`` is their differences).
    chunk_times: list[float] | None = None


def raw_parsed(response: Any) -> Any:
    """The result inside a Stainless SDK's raw HTTP wrapper (openai, anthropic), if reading it costs nothing.

    ``with_raw_response`` hands back a body already read: its ``parse()`` is cached by the SDK;
    an async wrapper's ``parse()`` is a coroutine we may not await, so its JSON stands in.
    ``with_streaming_response`` leaves the body to the app (to stream, maybe slowly, maybe never):
    we never read it, so the span has what the request said and no response details (None); with
    ``stream=True`` the stream the app parses out of it is followed instead (streamed_responses.py).
    Anything else is the result itself.
    """
    http = getattr(response, "http_response", None)
    parse = getattr(response, "parse", None)
    if http is None or not callable(parse):
        return response
    if getattr(http, "is_closed", False) is not True or getattr(http, "is_stream_consumed", True) is not True:
        return None
    if not inspect.iscoroutinefunction(parse):
        return parse()
    try:
        return http.json()
    except ValueError:  # not a JSON body: nothing to read
        return None


def list_items(value: Any) -> list | tuple:
    """A list field of a request or response as given; anything else (absent, malformed) reads as empty."""
    return value if isinstance(value, (list, tuple)) else ()


def text_part(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def tool_definition(kind: Any, name: Any, description: Any = None, parameters: Any = None) -> dict[str, Any] | None:
    """One tool as the conventions' tool definition schema has it (``type``, ``name``, ``description``,
    ``parameters``), unset fields left out; None for an item with neither a type nor a name."""
    kind = kind if isinstance(kind, str) and kind else None
    name = name if isinstance(name, str) and name else None
    if kind is None and name is None:
        return None
    out: dict[str, Any] = {"type": kind or "function"}
    if name is not None:
        out["name"] = name
    if isinstance(description, str) and description:
        out["description"] = description
    if parameters is not None:
        out["parameters"] = parameters
    return out


def tool_definitions(tools: Any, definition: Any) -> list[dict[str, Any]] | None:
    """``definition(tool)`` of each of a request's tools (None: not one), the unusable ones skipped."""
    if not isinstance(tools, (list, tuple)):
        return None
    out = [d for d in (definition(t) for t in tools) if d is not None]
    return out or None


def modality(mime_type: Any) -> str:
    """The conventions' part modality of a MIME type: ``image``, ``video``, ``audio``, else ``document``."""
    major = mime_type.split("/", 1)[0] if isinstance(mime_type, str) else ""
    return major if major in ("image", "video", "audio") else "document"


class InlineBytes(bytes):
    """Inline binary data in a part: its text is the base64 the conventions want, encoded only when content
    is exported (``str()``, as the JSON of content attributes writes it), never on the call's path."""

    __slots__ = ()

    def __str__(self) -> str:
        return base64.b64encode(self).decode("ascii")


def blob_part(mime_type: Any, content: Any, kind: str | None = None) -> dict[str, Any]:
    """Inline data as the conventions' ``blob`` part: ``content`` is the base64 text (content: exported only with capture)."""
    mime = mime_type if isinstance(mime_type, str) and mime_type else None
    return {"type": "blob", "modality": kind or modality(mime), "mime_type": mime, "content": content}


def uri_part(uri: Any, mime_type: Any = None, kind: str | None = None) -> dict[str, Any]:
    """A referenced file: a base64 ``data:`` URL is inline data (a ``blob`` part), anything else a ``uri`` part."""
    uri = uri if isinstance(uri, str) else ""
    if uri.startswith("data:") and ";base64," in uri:
        header, _, data = uri.partition(",")
        return blob_part(header[5:].split(";", 1)[0] or mime_type, data, kind)
    part = {"type": "uri", "modality": kind or modality(mime_type), "uri": uri}
    if isinstance(mime_type, str) and mime_type:
        part["mime_type"] = mime_type
    return part


def message_text(message: Mapping[str, Any]) -> str:
    parts = message.get("parts") or ()
    return "".join(p.get("content") or "" for p in parts if p.get("type") == "text" and isinstance(p.get("content"), str))
