"""micrometrics instrumentation for the Model Context Protocol SDK (``mcp``), 1.x and 2.x.

One span per tool call on each side, following the MCP conventions: ``tools/call {tool}`` with
``gen_ai.operation.name`` ``execute_tool``, CLIENT where ``ClientSession.call_tool`` sends it, SERVER where the
server runs it, continuing the client's trace from the request's ``params._meta`` (``traceparent``). The tool's
arguments and result are content (exported only with capture on); a metric with ``applies_to=["execute_tool"]``
judges the result (``ToolRecord.output_text``); a result with ``isError`` is ``error.type`` ``tool_error``.

* mcp 2.x traces itself: its client span (``MCP send tools/call``) is not opened under ours (we open the tool
  call's one client span; its dispatcher then puts ours in ``_meta``), and its server middleware's span for
  ``tools/call`` is replaced by ours (its spans of other methods, ``initialize``, ``tools/list``, stay its own).
* mcp 1.x traces nothing: we put the trace context in ``_meta`` ourselves and open the server span.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable, Iterable

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject

from micrometrics import internal_errors, operations
from micrometrics.spans import Spans
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.mcp import translators as T
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

__all__ = ["MCPInstrumentor"]

#: The tool call whose span we opened on this side: (side, Run).
_OPEN = otel_context.create_key("micrometrics.mcp_tool_call")


class MCPInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["mcp"]
    instruments = ("mcp >= 1.9",)

    def targets(self) -> Iterable[Target]:
        return (
            ("mcp.client.session", "ClientSession", "call_tool", _call_tool),
            # 1.x: the low-level server's request dispatch, and the response it sends.
            ("mcp.server.lowlevel.server", "Server", "_handle_request", _handle_request),
            ("mcp.shared.session", "RequestResponder", "respond", _respond),
            # 2.x: its server middleware (tools/call only) and its client span under ours.
            ("mcp.server._otel", "OpenTelemetryMiddleware", "__call__", _middleware),
            ("mcp.shared.jsonrpc_dispatcher", "", "otel_span", _their_client_span),
        )


def _open(side: str, record: Any, parent: Any = None) -> tuple[Any, Any]:
    """The run's span, current (with our marker) until ``_close``; (None, None) when not instrumented."""
    try:
        run = operations.begin(record, parent=parent)
        if run is None:
            return None, None
        return run, otel_context.attach(otel_context.set_value(_OPEN, (side, run), run.context))
    except Exception as exc:
        internal_errors.report("request", exc)
        return None, None


def _finish(run: Any, result: Any) -> None:
    try:
        if T.fill(run.record, result):
            run.fail(T.named_error(V.ERROR_TYPE_TOOL_ERROR)("the tool answered isError"))
        else:
            run.end()
    except Exception as exc:
        internal_errors.report("response", exc)
        run.end()


# ---- client -----------------------------------------------------------------------------------


def _takes_meta(wrapped: Callable) -> bool:
    try:
        return "meta" in inspect.signature(wrapped).parameters
    except (TypeError, ValueError):
        return False


def _tool_span_open(name: Any) -> bool:
    """Whether the current span is already this tool's ``execute_tool`` span (an Agents SDK function tool, a
    ``@micrometrics.tool``, another instrumentation's): the call's one client span, so we open none."""
    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None) if span.is_recording() else None
    return bool(attributes) and attributes.get(A.GEN_AI_OPERATION_NAME) == V.OPERATION_EXECUTE_TOOL \
        and attributes.get(A.GEN_AI_TOOL_NAME) == name and attributes.get(A.MCP_METHOD_NAME) is None


async def _call_tool(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    run = token = None
    try:
        name = args[0] if args else kwargs.get("name")
        arguments = args[1] if len(args) > 1 else kwargs.get("arguments")
        if _tool_span_open(name):
            # Under the tool's own span: that span is the call's (mcp 2.x's client span gated too), and its context goes in _meta.
            token = otel_context.attach(otel_context.set_value(_OPEN, ("client", None)))
        else:
            run, token = _open("client", T.record("client", name, arguments))
        if token is not None and _takes_meta(wrapped):
            # The trace context in params._meta (what mcp 2.x does itself; 1.x needs us to).
            meta = dict(kwargs.get("meta") or {})
            inject(meta)
            kwargs = {**kwargs, "meta": meta}
    except Exception as exc:
        internal_errors.report("request", exc)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        if run is not None:
            run.fail(exc)
        raise
    finally:
        if token is not None:
            Spans.detach(token)
    if run is not None:
        _finish(run, result)
    return result


def _their_client_span(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """mcp 2.x's ``MCP send tools/call`` span: not opened under the client span we opened for the call."""
    try:
        name = args[0] if args else kwargs.get("name")
        ours = otel_context.get_value(_OPEN)
        if isinstance(name, str) and name.startswith("MCP send tools/call") and ours is not None and ours[0] == "client":
            return contextlib.nullcontext(trace.NonRecordingSpan(trace.get_current_span().get_span_context()))
    except Exception as exc:
        internal_errors.report("request", exc)
    return wrapped(*args, **kwargs)


# ---- server -----------------------------------------------------------------------------------


def _parent(meta: Any) -> Any:
    """The client's context from ``_meta``; None (the current context) when it carries none."""
    carrier = T.carrier(meta)
    if "traceparent" not in carrier:
        return None
    ctx = extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


async def _middleware(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """mcp 2.x: a ``tools/call`` runs under our server span instead of the middleware's own."""
    run = token = call_next = ctx = None
    try:
        ctx = args[0] if args else kwargs.get("ctx")
        call_next = args[1] if len(args) > 1 else kwargs.get("call_next")
        if getattr(ctx, "method", None) == V.MCP_METHOD_TOOLS_CALL and call_next is not None:
            params = getattr(ctx, "params", None) or {}
            record = T.record("server", params.get("name"), params.get("arguments"), getattr(ctx, "request_id", None),
                              getattr(ctx, "protocol_version", None))
            run, token = _open("server", record, _parent(getattr(ctx, "meta", None)))
    except Exception as exc:
        internal_errors.report("request", exc)
    if run is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await call_next(ctx)
    except BaseException as exc:
        run.fail(exc)
        raise
    finally:
        Spans.detach(token)
    _finish(run, result)
    return result


async def _handle_request(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """mcp 1.x: a ``tools/call`` request runs under our server span; ``_respond`` reads what it answers."""
    run = token = None
    try:
        message = args[0] if args else kwargs.get("message")
        req = args[1] if len(args) > 1 else kwargs.get("req")
        if type(req).__name__ == "CallToolRequest":
            params = getattr(req, "params", None)
            record = T.record("server", getattr(params, "name", None), getattr(params, "arguments", None),
                              getattr(message, "request_id", None))
            run, token = _open("server", record, _parent(getattr(params, "meta", None)))
    except Exception as exc:
        internal_errors.report("request", exc)
    if run is None:
        return await wrapped(*args, **kwargs)
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as exc:
        run.fail(exc)
        raise
    finally:
        Spans.detach(token)
        run.end()  # once: a response already ended it (_respond)


async def _respond(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        ours = otel_context.get_value(_OPEN)
        if ours is not None and ours[0] == "server":
            response = args[0] if args else kwargs.get("response")
            code = T.error_code(response)
            if code is not None:
                ours[1].fail(T.named_error(code)("the server answered a JSON-RPC error"))
            else:
                _finish(ours[1], response)
    except Exception as exc:
        internal_errors.report("response", exc)
    return await wrapped(*args, **kwargs)
