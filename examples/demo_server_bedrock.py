"""The demo server's Amazon Bedrock runtime: its REST JSON routes and the AWS event-stream framing.

Point boto3 at the demo server (``endpoint_url=server.base_url``, any region and credentials)::

    POST /model/{modelId}/converse                      Converse (JSON)
    POST /model/{modelId}/converse-stream               ConverseStream (application/vnd.amazon.eventstream)
    POST /model/{modelId}/invoke                        InvokeModel: the model family's own JSON body
    POST /model/{modelId}/invoke-with-response-stream   InvokeModelWithResponseStream: its chunks as events

The model family of an InvokeModel body comes from the model id (inference-profile prefixes such as
``us.`` and ARNs included) or, for ids that do not say (``claude-sonnet-5-5`` from ``AnthropicBedrock``),
from the body: Anthropic (messages), Meta Llama (prompt/generation), Mistral (prompt/outputs, or
messages/choices), Amazon Titan text (inputText/results) and embeddings (inputText/embedding), Cohere
Command R (message/text) and Embed (texts/embeddings), Amazon Nova (messages/output.message).

Event-stream messages are framed as AWS does (prelude, headers, payload, CRC32s), so botocore's own
parser reads and verifies them. Scripted streams (``DemoServer.enqueue(sse=[...])`` on a Bedrock path)
take, per item: a ``(event_type, payload)`` tuple (an event; a type ending in ``Exception`` is an
exception message), a dict (on ``invoke-with-response-stream``: a model chunk, base64-wrapped in a
``chunk`` event; on ``converse-stream``: ``{event_type: payload}``), or bytes sent as they are.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from typing import Any, Iterable, Optional
from urllib.parse import unquote

from demo_server import _HTTPError, Answer, Conversation, _anthropic_conversation, _embedding, _pieces, _text_of, _words, compose_answer

__all__ = ["route", "send_events", "error_body", "headers", "event_frame", "exception_frame", "chunk_frame", "frame"]

_ROUTE = re.compile(r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$")
EVENT_STREAM = "application/vnd.amazon.eventstream"
#: Bedrock's error codes (the ``x-amzn-ErrorType`` header botocore maps to an exception class).
_ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


# ---- event-stream framing ---------------------------------------------------------------


def _header(name: str, value: str) -> bytes:
    key, data = name.encode("utf-8"), value.encode("utf-8")
    return struct.pack(">B", len(key)) + key + b"\x07" + struct.pack(">H", len(data)) + data  # 7: a string value


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: total and headers length, their CRC32, headers, payload, the message's CRC32."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: Any) -> bytes:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return frame({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, body)


def exception_frame(exception_type: str, payload: Any) -> bytes:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return frame({":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}, body)


def chunk_frame(payload: Any) -> bytes:
    """An InvokeModelWithResponseStream event: the model's own JSON, base64 in a ``chunk``."""
    data = payload if isinstance(payload, (bytes, bytearray)) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return event_frame("chunk", {"bytes": base64.b64encode(bytes(data)).decode("ascii")})


def scripted_frames(path: str, items: Iterable[Any]) -> list[bytes]:
    """The frames of a scripted stream (see the module docstring)."""
    chunks = "invoke-with-response-stream" in path
    out = []
    for item in items:
        if isinstance(item, (bytes, bytearray)):
            out.append(bytes(item))
        elif isinstance(item, tuple):
            name, payload = item
            out.append(exception_frame(name, payload) if name.endswith("Exception") else event_frame(name, payload))
        elif chunks:
            out.append(chunk_frame(item))
        else:
            (name, payload), = item.items()
            out.append(event_frame(name, payload))
    return out


def send_events(handler: Any, frames: Iterable[bytes], extra: Optional[dict] = None, content_type: Optional[str] = None) -> None:
    """Answer 200 with an event stream, one frame per HTTP chunk (the demo's chunk delay between them)."""
    handler.send_response(200)
    merged = {"Content-Type": EVENT_STREAM, **handler.demo._common_headers(handler.path)}
    if content_type:
        merged["X-Amzn-Bedrock-Content-Type"] = content_type
    for k, v in {**merged, **(extra or {})}.items():
        handler.send_header(k, str(v))
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for i, data in enumerate(frames):
        if i and handler.demo.chunk_delay > 0 and not handler.demo._sleep(handler.demo.chunk_delay):
            handler.close_connection = True
            return
        handler._write_chunk(data)
    handler._write_chunk(b"")


def error_body(status: int, message: str) -> dict:
    return {"message": message}


def headers(request_id: str, status: int) -> dict[str, str]:
    """What every Bedrock response carries, and an error's type."""
    out = {"x-amzn-RequestId": request_id}
    if status >= 400:
        out["x-amzn-ErrorType"] = f"{_ERRORS.get(status, 'InternalServerException')}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    return out


# ---- model families ------------------------------------------------------------------------

_FAMILIES = (
    ("anthropic.", "anthropic"),
    ("meta.llama", "llama"),
    ("mistral.", "mistral"),
    ("amazon.titan-embed", "titan-embed"),
    ("amazon.titan-t", "titan-text"),  # amazon.titan-text-*, amazon.titan-tg1-large
    ("amazon.nova", "nova"),
    ("cohere.embed", "cohere-embed"),
    ("cohere.command-r", "cohere"),
)


def family(model_id: str, body: Any) -> str:
    for marker, name in _FAMILIES:
        if marker in model_id:
            return name
    body = body if isinstance(body, dict) else {}
    if "anthropic_version" in body:
        return "anthropic"
    if "inputText" in body:
        return "titan-text" if "textGenerationConfig" in body else "titan-embed"
    if "texts" in body:
        return "cohere-embed"
    if "message" in body:
        return "cohere"
    if "messages" in body:
        return "nova"
    return "llama"


def _prompt_conversation(model: str, prompt: Any) -> Conversation:
    text = prompt if isinstance(prompt, str) else ""
    return Conversation(model=model, user=[text], all_text=[text])


def _converse_conversation(model: str, body: dict) -> Conversation:
    """Converse and Nova requests: ``system`` and ``messages`` of content blocks, tools under ``toolConfig``."""
    conv = Conversation(model=model)
    for block in body.get("system") or []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            conv.system.append(block["text"])
            conv.all_text.append(block["text"])
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        blocks = [b for b in msg.get("content") or [] if isinstance(b, dict)]
        text = " ".join(b["text"] for b in blocks if isinstance(b.get("text"), str))
        results = [b["toolResult"] for b in blocks if isinstance(b.get("toolResult"), dict)]
        if msg.get("role") == "user":
            if results and not text:
                result = " ".join(json.dumps(c["json"]) if "json" in c else _text_of(c) for c in results[-1].get("content") or [] if isinstance(c, dict))
                conv.all_text.append(result)
                conv.last_role, conv.tool_result = "tool", result
                continue
            conv.user.append(text)
            conv.last_role = "user"
        else:
            conv.last_role = "assistant"
        conv.all_text.append(text)
    for tool in (body.get("toolConfig") or {}).get("tools") or []:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and spec.get("name"):
            conv.tool_names.append(str(spec["name"]))
    return conv


def _cohere_conversation(model: str, body: dict) -> Conversation:
    conv = Conversation(model=model)
    if isinstance(body.get("preamble"), str):
        conv.system.append(body["preamble"])
        conv.all_text.append(body["preamble"])
    for turn in body.get("chat_history") or []:
        if isinstance(turn, dict) and isinstance(turn.get("message"), str):
            conv.all_text.append(turn["message"])
            if str(turn.get("role", "")).upper() == "USER":
                conv.user.append(turn["message"])
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    conv.user.append(message)
    conv.all_text.append(message)
    return conv


def _mistral_chat_conversation(model: str, body: dict) -> Conversation:
    conv = Conversation(model=model)
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        text = _text_of(msg.get("content"))
        conv.all_text.append(text)
        if msg.get("role") == "system":
            conv.system.append(text)
        elif msg.get("role") == "user":
            conv.user.append(text)
            conv.last_role = "user"
    return conv


def _cached(body: dict) -> bool:
    """Whether the request set a prompt-cache checkpoint (only then does the answer report cache reads)."""
    blocks = [*(body.get("system") or [])]
    for msg in body.get("messages") or []:
        blocks += msg.get("content") or [] if isinstance(msg, dict) else []
    return any(isinstance(b, dict) and "cachePoint" in b for b in blocks)


def _converse_usage(ans: Answer, cached: bool) -> dict:
    read = ans.cached_tokens if cached else 0
    usage = {"inputTokens": ans.prompt_tokens - read, "outputTokens": ans.completion_tokens,
             "totalTokens": ans.prompt_tokens + ans.completion_tokens}
    if cached:
        usage.update(cacheReadInputTokens=read, cacheWriteInputTokens=0)
    return usage


def _invocation_metrics(ans: Answer) -> dict:
    return {"inputTokenCount": ans.prompt_tokens, "outputTokenCount": ans.completion_tokens,
            "invocationLatency": 120, "firstByteLatency": 40}


def _converse_blocks(handler: Any, ans: Answer) -> tuple[list[dict], str]:
    blocks: list[dict] = [{"text": ans.text}]
    if ans.tool_call:
        tool_id = handler.demo._next_id("tooluse_demo")
        blocks.append({"toolUse": {"toolUseId": tool_id, "name": ans.tool_call[0], "input": ans.tool_call[1]}})
        return blocks, "tool_use"
    return blocks, "end_turn"


def _converse_events(blocks: list[dict], stop: str, usage: dict) -> list[tuple[str, dict]]:
    """ConverseStream's events (and Nova's stream chunks): text deltas, then tool use blocks, stop, metadata."""
    events: list[tuple[str, dict]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(blocks):
        if "text" in block:
            events += [("contentBlockDelta", {"delta": {"text": p}, "contentBlockIndex": index}) for p in _pieces(block["text"])]
        else:
            use = block["toolUse"]
            events.append(("contentBlockStart", {"start": {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}},
                                                 "contentBlockIndex": index}))
            events += [("contentBlockDelta", {"delta": {"toolUse": {"input": p}}, "contentBlockIndex": index})
                       for p in _pieces(json.dumps(use["input"]))]
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": stop}))
    events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 120}}))
    return events


# ---- routes ----------------------------------------------------------------------------------


def route(handler: Any, path: str, body: Any, extra: Optional[dict]) -> bool:
    """Answer a Bedrock runtime request; False: not a Bedrock path."""
    m = _ROUTE.match(path)
    if m is None:
        return False
    model, operation = unquote(m.group(1)), m.group(2)
    handler._check_model(model)
    if not isinstance(body, dict):
        raise _HTTPError(400, "Malformed input request, please reformat your input and try again.")
    if operation in ("converse", "converse-stream"):
        _converse(handler, model, body, operation == "converse-stream", extra)
    else:
        _invoke(handler, model, body, operation == "invoke-with-response-stream", extra)
    return True


def _converse(handler: Any, model: str, body: dict, stream: bool, extra: Optional[dict]) -> None:
    if not body.get("messages"):
        raise _HTTPError(400, "A conversation must start with a user message.")
    ans = compose_answer(_converse_conversation(model, body))
    blocks, stop = _converse_blocks(handler, ans)
    usage = _converse_usage(ans, _cached(body))
    if not stream:
        handler._send_json(200, {"output": {"message": {"role": "assistant", "content": blocks}}, "stopReason": stop,
                                 "usage": usage, "metrics": {"latencyMs": 120}}, extra)
        return
    send_events(handler, [event_frame(t, p) for t, p in _converse_events(blocks, stop, usage)], extra)


def _invoke(handler: Any, model: str, body: dict, stream: bool, extra: Optional[dict]) -> None:
    kind = family(model, body)
    if kind in ("titan-embed", "cohere-embed"):
        if stream:
            raise _HTTPError(400, "The model does not support streaming.")
        _embed(handler, kind, body, extra)
        return
    answer, chunks = _FAMILY_ANSWERS[kind](handler, model, body)
    ans = answer.pop("__answer")
    if not stream:
        counts = {"X-Amzn-Bedrock-Input-Token-Count": str(ans.prompt_tokens),
                  "X-Amzn-Bedrock-Output-Token-Count": str(ans.completion_tokens),
                  "X-Amzn-Bedrock-Invocation-Latency": "120"}
        handler._send_json(200, answer, {**counts, **(extra or {})})
        return
    chunks[-1] = {**chunks[-1], "amazon-bedrock-invocationMetrics": _invocation_metrics(ans)}
    send_events(handler, [chunk_frame(c) for c in chunks], extra, content_type="application/json")


def _embed(handler: Any, kind: str, body: dict, extra: Optional[dict]) -> None:
    if kind == "titan-embed":
        text = body.get("inputText")
        if not isinstance(text, str):
            raise _HTTPError(400, "Malformed input request: #: required key [inputText] not found")
        tokens = len(_words(text))
        answer = {"embedding": _embedding(text), "embeddingsByType": {"float": _embedding(text)}, "inputTextTokenCount": tokens}
    else:
        texts = body.get("texts")
        if not isinstance(texts, list):
            raise _HTTPError(400, "Malformed input request: #: required key [texts] not found")
        tokens = sum(len(_words(str(t))) for t in texts)
        answer = {"embeddings": [_embedding(t) for t in texts], "id": handler.demo._next_id("demo-embed-"),
                  "response_type": "embeddings_floats", "texts": texts}
    handler._send_json(200, answer, {"X-Amzn-Bedrock-Input-Token-Count": str(tokens), **(extra or {})})


def _anthropic(handler: Any, model: str, body: dict) -> tuple[dict, list[dict]]:
    ans = compose_answer(_anthropic_conversation({**body, "model": model}))
    blocks: list[dict] = [{"type": "text", "text": ans.text}]
    stop = "end_turn"
    if ans.tool_call:
        blocks.append({"type": "tool_use", "id": handler.demo._next_id("toolu_bdrk_demo"), "name": ans.tool_call[0],
                       "input": ans.tool_call[1]})
        stop = "tool_use"
    usage = {"input_tokens": ans.prompt_tokens, "output_tokens": ans.completion_tokens}
    name = re.sub(r"^(?:.*\.)?anthropic\.|-v\d+(?::\d+)?$", "", model)
    message = {"id": handler.demo._next_id("msg_bdrk_demo"), "type": "message", "role": "assistant", "model": name,
               "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage}
    events: list[dict] = [{"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                                "usage": {**usage, "output_tokens": 1}}}]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            events += [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
                       for p in _pieces(block["text"])]
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}})
            events += [{"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}
                       for p in _pieces(json.dumps(block["input"]))]
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                   "usage": {"output_tokens": ans.completion_tokens}})
    events.append({"type": "message_stop"})
    return {**message, "__answer": ans}, events


def _llama(handler: Any, model: str, body: dict) -> tuple[dict, list[dict]]:
    ans = compose_answer(_prompt_conversation(model, body.get("prompt")))
    pieces = _pieces(ans.text)
    chunks = [{"generation": p, "prompt_token_count": ans.prompt_tokens if i == 0 else None, "generation_token_count": i + 1,
               "stop_reason": "stop" if i == len(pieces) - 1 else None} for i, p in enumerate(pieces)]
    return {"generation": ans.text, "prompt_token_count": ans.prompt_tokens, "generation_token_count": ans.completion_tokens,
            "stop_reason": "stop", "__answer": ans}, chunks


def _mistral(handler: Any, model: str, body: dict) -> tuple[dict, list[dict]]:
    if "messages" in body:  # Mistral Large 2 and later: a chat body
        ans = compose_answer(_mistral_chat_conversation(model, body))
        pieces = _pieces(ans.text)
        chunks = [{"choices": [{"index": 0, "message": {"role": "assistant", "content": p},
                                "stop_reason": "stop" if i == len(pieces) - 1 else None}]} for i, p in enumerate(pieces)]
        return {"id": handler.demo._next_id("demo-mistral-"), "object": "chat.completion", "model": model, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": ans.text}, "stop_reason": "stop"}], "__answer": ans}, chunks
    ans = compose_answer(_prompt_conversation(model, body.get("prompt")))
    pieces = _pieces(ans.text)
    chunks = [{"outputs": [{"text": p, "stop_reason": "stop" if i == len(pieces) - 1 else None}]} for i, p in enumerate(pieces)]
    return {"outputs": [{"text": ans.text, "stop_reason": "stop"}], "__answer": ans}, chunks


def _titan(handler: Any, model: str, body: dict) -> tuple[dict, list[dict]]:
    ans = compose_answer(_prompt_conversation(model, body.get("inputText")))
    pieces = _pieces(ans.text)
    chunks = [{"outputText": p, "index": 0, "totalOutputTextTokenCount": i + 1,
               "completionReason": "FINISH" if i == len(pieces) - 1 else None,
               "inputTextTokenCount": ans.prompt_tokens if i == 0 else None} for i, p in enumerate(pieces)]
    return {"inputTextTokenCount": ans.prompt_tokens, "results": [
        {"tokenCount": ans.completion_tokens, "outputText": ans.text, "completionReason": "FINISH"}], "__answer": ans}, chunks


def _cohere(handler: Any, model: str, body: dict) -> tuple[dict, list[dict]]:
    ans = compose_answer(_cohere_conversation(model, body))
    generation = handler.demo._next_id("demo-gen-")
    response = {"response_id": handler.demo._next_id("demo-resp-"), "text": ans.text, "generation_id": generation,
                "chat_history": [*(body.get("chat_history") or []), {"role": "USER", "message": body.get("message")},
                                 {"role": "CHATBOT", "message": ans.text}], "finish_reason": "COMPLETE"}
    chunks = [{"is_finished": False, "event_type": "stream-start", "generation_id": generation}]
    chunks += [{"is_finished": False, "event_type": "text-generation", "text": p} for p in _pieces(ans.text)]
    chunks.append({"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE", "response": response})
    return {**response, "__answer": ans}, chunks


def _nova(handler: Any, model: str, body: dict) -> tuple[dict, list[dict]]:
    ans = compose_answer(_converse_conversation(model, body))
    blocks, stop = _converse_blocks(handler, ans)
    usage = {"inputTokens": ans.prompt_tokens, "outputTokens": ans.completion_tokens,
             "totalTokens": ans.prompt_tokens + ans.completion_tokens, "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 0}
    chunks = [{t: p} for t, p in _converse_events(blocks, stop, usage)]
    return {"output": {"message": {"role": "assistant", "content": blocks}}, "stopReason": stop, "usage": usage,
            "__answer": ans}, chunks


_FAMILY_ANSWERS = {"anthropic": _anthropic, "llama": _llama, "mistral": _mistral, "titan-text": _titan, "cohere": _cohere,
                   "nova": _nova}
