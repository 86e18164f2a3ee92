"""The Agents SDK's span data -> our call records (translation only; the processor decides when).

``AgentSpanData`` -> ``AgentRecord`` (invoke_agent), ``FunctionSpanData`` -> ``ToolRecord`` (execute_tool),
``GenerationSpanData`` (Chat Completions and other models) / ``ResponseSpanData`` (Responses) -> the
``InferenceRecord`` of a model call no instrumented SDK below reported. Read by attribute name, so that a
span data of another SDK version with a field missing reads as "unknown", never fails.
"""

from __future__ import annotations

from typing import Any

from micrometrics.reading import field, json_or_text
from micrometrics.records import AgentRecord, InferenceRecord, ToolRecord, tool_definition
from micrometrics_instrumentation.openai.translators import apply_response, chat_messages, responses_input
from micrometrics_semconv import values as V

#: The span data types the processor turns into spans; any other (task, turn, custom, mcp_tools, speech, handoff,
#: guardrail) is transparent: its children attach to the nearest mapped ancestor.
AGENT, FUNCTION, GENERATION, RESPONSE = "agent", "function", "generation", "response"
#: Transparent, but read: a tripped guardrail fails its agent's span.
GUARDRAIL = "guardrail"


def kind(data: Any) -> str | None:
    value = getattr(data, "type", None)
    return value if isinstance(value, str) else None


def agent_record(data: Any) -> AgentRecord:
    name = getattr(data, "name", None)
    tools = getattr(data, "tools", None)
    return AgentRecord(
        operation=V.OPERATION_INVOKE_AGENT, provider=V.PROVIDER_OPENAI,
        agent_name=name if isinstance(name, str) and name else None,
        tool_definitions=[d for d in (tool_definition(V.TOOL_TYPE_FUNCTION, t) for t in tools or () if isinstance(t, str)) if d] or None,
    )


def tool_record(data: Any) -> ToolRecord:
    # ``gen_ai.tool.type`` function: an MCP server's tool too (the SDK marks it only once it ran, after the span began).
    name = getattr(data, "name", None)
    return ToolRecord(operation=V.OPERATION_EXECUTE_TOOL, tool_name=name if isinstance(name, str) and name else None,
                      tool_type=V.TOOL_TYPE_FUNCTION)


def fill_tool(record: ToolRecord, data: Any) -> None:
    """The tool's arguments (the JSON text the model sent) and its result, as the SDK recorded them."""
    arguments = getattr(data, "input", None)
    record.arguments = json_or_text(arguments) if arguments not in (None, "") else None
    output = getattr(data, "output", None)
    record.result = output if output is None or isinstance(output, (str, int, float, bool, list, dict)) else str(output)


def inference_record(data: Any) -> InferenceRecord:
    """A model call as the Agents SDK saw it: reported when no instrumented SDK below opened its span."""
    record = InferenceRecord(operation=V.OPERATION_CHAT, provider=V.PROVIDER_OPENAI)
    if kind(data) == RESPONSE:
        response = getattr(data, "response", None)
        record.input_messages = responses_input(getattr(data, "input", None))
        if response is not None:
            record.model = field(response, "model")
            apply_response(record, response)
        return record
    model = getattr(data, "model", None)
    record.model = model if isinstance(model, str) and model else None
    record.input_messages = chat_messages(getattr(data, "input", None))
    outputs = [m for m in chat_messages(getattr(data, "output", None)) if m.get("role") == "assistant"]
    record.output_messages = [dict(m, finish_reason=V.FINISH_STOP) for m in outputs[-1:]]
    usage = getattr(data, "usage", None)
    record.input_tokens, record.output_tokens = _int(field(usage, "input_tokens")), _int(field(usage, "output_tokens"))
    return record


def model_exchange(data: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A model call's input and output messages (what the agent was asked, what it answered), from its span data."""
    if kind(data) == RESPONSE:
        record = InferenceRecord(operation=V.OPERATION_CHAT, provider=V.PROVIDER_OPENAI)
        if getattr(data, "response", None) is not None:
            apply_response(record, data.response)
        return responses_input(getattr(data, "input", None)), record.output_messages
    outputs = [dict(m, finish_reason=V.FINISH_STOP) for m in chat_messages(getattr(data, "output", None)) if m.get("role") == "assistant"]
    return chat_messages(getattr(data, "input", None)), outputs[-1:]


def answered(messages: list[dict[str, Any]]) -> bool:
    """Whether an output message carries an answer (text), not only tool calls."""
    return any(part.get("type") == "text" for m in messages for part in m.get("parts") or ())


def _int(value: Any) -> int | None:
    return value if type(value) is int else None
