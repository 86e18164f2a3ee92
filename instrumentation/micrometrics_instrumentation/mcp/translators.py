"""MCP tool calls -> ``ToolRecord`` (translation only): the request's name and arguments, the result's content,
``isError``, and the trace context carried in the request's ``params._meta`` (MCP conventions)."""

from __future__ import annotations

import functools
from typing import Any

from micrometrics.reading import field
from micrometrics.records import ToolRecord
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V


def record(side: str, name: Any, arguments: Any, request_id: Any = None, protocol_version: Any = None) -> ToolRecord:
    """One ``tools/call``, seen by the client (``side="client"``) or the server that runs it (``"server"``)."""
    params: dict[str, Any] = {A.MCP_METHOD_NAME: V.MCP_METHOD_TOOLS_CALL}
    if request_id is not None:
        params[A.JSONRPC_REQUEST_ID] = str(request_id)
    if isinstance(protocol_version, str) and protocol_version:
        params[A.MCP_PROTOCOL_VERSION] = protocol_version
    return ToolRecord(
        operation=V.OPERATION_EXECUTE_TOOL, tool_name=name if isinstance(name, str) and name else None,
        tool_type=V.TOOL_TYPE_EXTENSION, arguments=arguments if arguments not in (None, {}) else None,
        remote=side, method=V.MCP_METHOD_TOOLS_CALL, params=params,
    )


def fill(record: ToolRecord, result: Any) -> bool:
    """The tool's result into the record (its text, else its structured content); True when it is an error result."""
    result = field(result, "root", result)  # 1.x wraps it in a ServerResult
    structured = field(result, "structuredContent", None) or field(result, "structured_content", None)
    texts = [field(item, "text") for item in field(result, "content", None) or () if field(item, "type") == "text"]
    if texts and all(isinstance(t, str) for t in texts):
        record.result = "\n".join(texts)
    elif isinstance(structured, dict):
        record.result = structured
    is_error = field(result, "isError", None)
    if is_error is None:
        is_error = field(result, "is_error", None)
    return is_error is True


def carrier(meta: Any) -> dict[str, str]:
    """The W3C trace context fields of a request's ``_meta`` (a dict, or the SDK's model with extra fields)."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        extra = getattr(meta, "model_extra", None)
        meta = dict(extra) if isinstance(extra, dict) else {}
    return {k: v for k, v in meta.items() if k in ("traceparent", "tracestate") and isinstance(v, str)}


@functools.cache
def named_error(name: str) -> type[Exception]:
    """An exception class ``error.type`` reports as ``name`` (the MCP conventions' ``tool_error``, a JSON-RPC code)."""
    return type(name, (Exception,), {"__module__": "builtins", "__qualname__": name})


def error_code(response: Any) -> str | None:
    """The JSON-RPC error code of an error response (1.x ``ErrorData``), else None."""
    code = field(response, "code", None)
    return str(code) if type(code) is int and field(response, "message", None) is not None else None
