"""The provider-neutral call records that flow from an instrumentation to the runtime.

One record type per operation family. Instrumentations fill them in (translate
only); the runtime keeps each call's own state (span, timing, attempt, results) in a ``Call``
beside it; spans.py and emission.py map them to telemetry; metrics read them through ``CallView``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
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


@dataclass(eq=False, kw_only=True)
class Call:
    """One call's state beside its record, filled by the runtime (never by a translator): the record
    stays what the translator saw, so the evaluator process ships it as it is."""

    record: CallRecord
    attempt: int = 1
    #: What ``micrometrics.context(...)`` held when the call started.
    context: Mapping[str, Any] = field(default_factory=dict)
    span: Any = None
    start_perf: float = 0.0
    duration: float | None = None
    end_time_ns: int | None = None
    #: Results of the metrics evaluated on this call, by metric name.
    results: dict[str, Any] = field(default_factory=dict)
    #: Inference calls: documents retrieved before them in the same ``context()`` block or trace (trace_memory.recall).
    retrieved_documents: tuple[Document, ...] = ()
    #: The metric dimensions, computed once the call ended (attributes.dimensions).
    dimensions: dict[str, Any] | None = None
    #: Streams: ``perf_counter()`` at each chunk's arrival (``time_per_output_chunk`` is their differences).
    chunk_times: list[float] | None = None


def raw_parsed(response: Any) -> Any:
    """The result inside a Stainless SDK's raw HTTP wrapper (openai, anthropic), if reading it costs nothing.

    ``with_raw_response`` hands back a body already read: its ``parse()`` is cached by the SDK;
    an async wrapper's ``parse()`` is a coroutine we may not await, so its JSON stands in.
    ``with_streaming_response`` leaves the body to the app (to stream, maybe slowly, maybe never):
    we never read it, so the span has what the request said and no response details (None).
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


def message_text(message: Mapping[str, Any]) -> str:
    parts = message.get("parts") or ()
    return "".join(p.get("content") or "" for p in parts if p.get("type") == "text" and isinstance(p.get("content"), str))
