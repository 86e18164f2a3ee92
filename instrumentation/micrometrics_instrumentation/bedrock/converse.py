"""Bedrock's Converse shapes -> the conventions' messages and parts. Translation only.

Converse and ConverseStream use them, and so does Amazon Nova's InvokeModel body (``messages``
of content blocks, ``system`` blocks, ``toolConfig``, ``output.message``, the same stream events).
Every value is read defensively: these are the application's arguments and a provider's JSON.
"""

from __future__ import annotations

from typing import Any

from micrometrics.records import InferenceRecord, text_part
from micrometrics import records
from micrometrics.reading import json_or_text
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: Converse stop reasons -> the conventions' finish reasons (others pass through as sent).
_FINISH = {
    "end_turn": V.FINISH_STOP,
    "stop_sequence": V.FINISH_STOP,
    "max_tokens": V.FINISH_LENGTH,
    "model_context_window_exceeded": V.FINISH_LENGTH,
    "tool_use": V.FINISH_TOOL_CALL,
    "guardrail_intervened": V.FINISH_CONTENT_FILTER,
    "content_filtered": V.FINISH_CONTENT_FILTER,
    "malformed_model_output": V.FINISH_ERROR,
    "malformed_tool_use": V.FINISH_ERROR,
}
#: Media blocks and the conventions' modality of each.
_MEDIA = {"image": "image", "document": "document", "video": "video", "audio": "audio"}


def finish_reason(reason: Any) -> str:
    return _FINISH.get(reason, reason) if isinstance(reason, str) and reason else V.FINISH_ERROR


def count(value: Any) -> int | None:
    """A token count as sent, or None for anything that is not one."""
    return value if type(value) is int and value >= 0 else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list | tuple:
    return value if isinstance(value, (list, tuple)) else ()


def _tool_result(result: dict) -> Any:
    """A tool result's content: its JSON when it is one JSON block, else its text."""
    blocks = [b for b in _list(result.get("content")) if isinstance(b, dict)]
    if len(blocks) == 1 and "json" in blocks[0]:
        return blocks[0]["json"]
    texts = [b["text"] for b in blocks if isinstance(b.get("text"), str)]
    return "".join(texts) if texts else None


def block_part(block: Any) -> dict[str, Any] | None:
    """One content block (request or response) -> a conventions' part; None for a cache checkpoint."""
    if not isinstance(block, dict):
        return None
    text = block.get("text")
    if isinstance(text, str):
        return text_part(text)
    if "toolUse" in block:
        use = _dict(block["toolUse"])
        return {"type": "tool_call", "id": use.get("toolUseId"), "name": use.get("name"), "arguments": use.get("input")}
    if "toolResult" in block:
        result = _dict(block["toolResult"])
        return {"type": "tool_call_response", "id": result.get("toolUseId"), "response": _tool_result(result)}
    if "reasoningContent" in block:
        reasoning = _dict(_dict(block["reasoningContent"]).get("reasoningText")).get("text")
        return {"type": "reasoning", "content": reasoning} if isinstance(reasoning, str) else {"type": "reasoning"}
    if "guardContent" in block:  # text for a guardrail to assess: the model reads it too
        guarded = _dict(_dict(block["guardContent"]).get("text")).get("text")
        return text_part(guarded) if isinstance(guarded, str) else {"type": "guard_content"}
    if "citationsContent" in block:
        cited = [c.get("text") for c in _list(_dict(block["citationsContent"]).get("content")) if isinstance(c, dict)]
        return text_part("".join(t for t in cited if isinstance(t, str)))
    for kind, modality in _MEDIA.items():
        if kind in block:
            media = _dict(block[kind])
            uri = _dict(_dict(media.get("source")).get("s3Location")).get("uri")
            if isinstance(uri, str):
                return {"type": "uri", "modality": modality, "uri": uri}
            fmt = media.get("format")
            return {"type": "blob", "modality": modality, "mime_type": f"{kind}/{fmt}" if kind == "image" and isinstance(fmt, str) else None}
    if "cachePoint" in block:
        return None
    kinds = [k for k in block if isinstance(k, str)]
    return {"type": kinds[0]} if kinds else None


def content_parts(content: Any) -> list[dict[str, Any]]:
    parts = []
    for block in _list(content):
        part = block_part(block)
        if part is not None:
            parts.append(part)
    return parts


def input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for message in _list(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role") if isinstance(message.get("role"), str) else "user"
        parts = content_parts(message.get("content"))
        # Tool results travel in user turns; the conventions give them the tool role.
        if parts and all(p["type"] == "tool_call_response" for p in parts):
            role = "tool"
        out.append({"role": role, "parts": parts})
    return out


def system_parts(system: Any) -> list[dict[str, Any]]:
    if isinstance(system, str):  # not Converse's type, but what an application may pass
        return [text_part(system)] if system else []
    return [p for p in content_parts(system) if p["type"] == "text"]


def tool_definitions(tool_config: Any) -> list[dict[str, Any]] | None:
    return records.tool_definitions(_list(_dict(tool_config).get("tools")), _tool)


def _tool(tool: Any) -> dict[str, Any] | None:
    """A ``toolSpec`` is a function; a ``systemTool`` keeps its own kind (the conventions' tool definition shape)."""
    if not isinstance(tool, dict):
        return None
    if "toolSpec" in tool:
        spec = _dict(tool["toolSpec"])
        return records.tool_definition("function", spec.get("name"), spec.get("description"), _dict(spec.get("inputSchema")).get("json"))
    if "systemTool" in tool:
        return records.tool_definition("system_tool", _dict(tool["systemTool"]).get("name"))
    return None


def inference_params(config: Any) -> dict[str, Any]:
    """``inferenceConfig`` (Converse, and Nova's body, which also spells ``max_new_tokens`` and ``topK``)."""
    config = _dict(config)
    params: dict[str, Any] = {}
    for keys, attr in (
        (("maxTokens", "max_new_tokens"), A.GEN_AI_REQUEST_MAX_TOKENS),
        (("temperature",), A.GEN_AI_REQUEST_TEMPERATURE),
        (("topP",), A.GEN_AI_REQUEST_TOP_P),
        (("topK",), A.GEN_AI_REQUEST_TOP_K),
    ):
        value = next((config[k] for k in keys if config.get(k) is not None), None)
        if value is not None:
            params[attr] = value
    stop = config.get("stopSequences")
    if isinstance(stop, (list, tuple)):
        params[A.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    return params


def output_type(output_config: Any) -> str | None:
    return "json" if _dict(_dict(output_config).get("textFormat")).get("type") == "json_schema" else None


def apply_usage(record: InferenceRecord, usage: Any) -> None:
    """Bedrock reports cache reads and writes apart from ``inputTokens``; the conventions' input tokens include them."""
    usage = _dict(usage)
    uncached = count(usage.get("inputTokens"))
    read = count(usage.get("cacheReadInputTokens", usage.get("cacheReadInputTokenCount")))
    written = count(usage.get("cacheWriteInputTokens", usage.get("cacheWriteInputTokenCount")))
    if uncached is not None:
        record.input_tokens = uncached + (read or 0) + (written or 0)
    if read is not None:
        record.cache_read_tokens = read
    if written is not None:
        record.cache_creation_tokens = written
    output = count(usage.get("outputTokens"))
    if output is not None:
        record.output_tokens = output


def apply_output(record: InferenceRecord, response: Any) -> None:
    """A Converse response (or Nova's InvokeModel body): ``output.message``, ``stopReason``, ``usage``."""
    response = _dict(response)
    message = _dict(_dict(response.get("output")).get("message"))
    reason = finish_reason(response.get("stopReason"))
    if message or response.get("stopReason") is not None:
        record.output_messages = [{"role": "assistant", "parts": content_parts(message.get("content")), "finish_reason": reason}]
        record.finish_reasons = [reason]
    apply_usage(record, response.get("usage"))


class _Block:
    __slots__ = ("kind", "pieces", "id", "name")

    def __init__(self, kind: str, id: Any = None, name: Any = None) -> None:
        self.kind, self.id, self.name = kind, id, name
        self.pieces: list[str] = []


class EventFold:
    """Folds ConverseStream events (and Nova's stream chunks, the same shapes) into the record; cheap per event."""

    __slots__ = ("record", "blocks", "texts", "stop", "usage", "non_text")

    def __init__(self, record: InferenceRecord) -> None:
        self.record = record
        self.blocks: dict[Any, _Block] = {}
        self.texts: list[str] = []  # every text delta, in order: what the reader reads
        self.stop: Any = None
        self.usage: Any = None
        self.non_text = False  # a tool call or reasoning began: output a text guard cannot judge

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def _block(self, event: dict, kind: str) -> _Block:
        index = event.get("contentBlockIndex")
        index = index if type(index) is int else 0
        block = self.blocks.get(index)
        if block is None:
            block = self.blocks[index] = _Block(kind)
        return block

    def add(self, event: Any) -> None:
        if type(event) is not dict:
            return
        delta_event = event.get("contentBlockDelta")
        if type(delta_event) is dict:
            delta = delta_event.get("delta")
            if type(delta) is not dict:
                return
            text = delta.get("text")
            if type(text) is str:
                self.texts.append(text)
                self._block(delta_event, "text").pieces.append(text)
            elif "toolUse" in delta:
                self.non_text = True
                piece = _dict(delta["toolUse"]).get("input")
                if type(piece) is str:
                    self._block(delta_event, "tool_use").pieces.append(piece)
            elif "reasoningContent" in delta:
                self.non_text = True
                piece = _dict(delta["reasoningContent"]).get("text")
                block = self._block(delta_event, "reasoning")
                if type(piece) is str:
                    block.pieces.append(piece)
            return
        start_event = event.get("contentBlockStart")
        if type(start_event) is dict:
            start = _dict(start_event.get("start"))
            if "toolUse" in start:
                self.non_text = True
                use = _dict(start["toolUse"])
                block = self._block(start_event, "tool_use")
                block.id, block.name = use.get("toolUseId"), use.get("name")
            return
        if "messageStop" in event:
            self.stop = _dict(event["messageStop"]).get("stopReason")
        elif "metadata" in event:
            self.usage = _dict(event["metadata"]).get("usage")

    def apply(self) -> None:
        record = self.record
        parts: list[dict[str, Any]] = []
        for _, block in sorted(self.blocks.items()):
            joined = "".join(block.pieces)
            if block.kind == "text":
                parts.append(text_part(joined))
            elif block.kind == "tool_use":
                parts.append({"type": "tool_call", "id": block.id, "name": block.name, "arguments": json_or_text(joined) if joined else {}})
            else:
                parts.append({"type": "reasoning", "content": joined})
        if self.stop is not None:
            reason = finish_reason(self.stop)
            record.finish_reasons = [reason]
        else:
            reason = V.FINISH_ERROR  # the stream ended before messageStop
        if parts or self.stop is not None:
            record.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]
        apply_usage(record, self.usage)
