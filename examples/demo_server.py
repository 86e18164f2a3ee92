"""A deterministic local LLM server speaking the OpenAI, Anthropic, Google Gen AI, Amazon Bedrock, Mistral, Cohere,
Groq and Ollama wire formats.

Standard library only. It serves two purposes:

* the offline backend of the examples: point the real client libraries at it and
  they get plausible, deterministic answers (including streaming and tool calls)
  without network access or API keys;
* the scripted loopback server of the test-suite: ``enqueue()`` canned responses
  (errors, delays, malformed bodies, hand-written SSE streams) and inspect the
  recorded ``requests``.

Usage with the real clients::

    from demo_server import DemoServer

    with DemoServer() as srv:
        openai.OpenAI(base_url=srv.openai_base_url, api_key="test")
        anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="test")
        google.genai.Client(api_key="test", http_options={"base_url": srv.google_base_url})
        boto3.client("bedrock-runtime", endpoint_url=srv.base_url, region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test")
        mistralai.client.Mistral(api_key="test", server_url=srv.mistral_base_url)
        cohere.ClientV2(api_key="test", base_url=srv.cohere_base_url)
        groq.Groq(api_key="test", base_url=srv.groq_base_url)
        ollama.Client(host=srv.ollama_host)

Routes (default, unscripted behaviour)::

    POST /v1/chat/completions                 OpenAI chat (JSON / SSE), also
    POST /openai/deployments/{d}/chat/completions?api-version=...   (Azure form)
    POST /v1/responses                        OpenAI Responses API (JSON / SSE)
    POST /v1/embeddings                       OpenAI embeddings (dimension 8)
    POST /v1/completions                      OpenAI legacy completions (JSON / SSE)
    POST /v1/messages                         Anthropic Messages (JSON / SSE)
    POST /v1/messages/count_tokens            Anthropic token counting
    POST /{version}/models/{model}:generateContent | :streamGenerateContent
         | :embedContent | :batchEmbedContents | :countTokens      Google Gen AI
    POST /model/{modelId}/converse | /converse-stream | /invoke | /invoke-with-response-stream
                                              Amazon Bedrock runtime (demo_server_bedrock.py)
    POST /mistral/v1/chat/completions | /mistral/v1/embeddings   Mistral (the OpenAI format with
         Mistral's differences: usage in the last stream chunk, embeddings with an id)
    POST /groq/openai/v1/chat/completions | /groq/openai/v1/embeddings   Groq (the OpenAI format,
         usage in ``x_groq`` of the last stream chunk)
    POST /v2/chat | /v2/embed                 Cohere API v2 (JSON / SSE events)
    POST /api/chat | /api/generate | /api/embed   Ollama (JSON / newline-delimited JSON streams)
    GET  /                                    health check

The story the answers tell: a German customer-support chatbot. When the user
writes German, the bot answers German -- until the 5th user turn, where it
slips into English (the "incident"), unless a system instruction mentions
"German"/"Deutsch". Model names ``error-400``, ``error-429``, ``error-500``
produce provider-shaped errors, model ``slow`` answers after 3 seconds.

Run ``python examples/demo_server.py [--port N]`` to serve until Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import http.server
import json
import math
import re
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional
from urllib.parse import parse_qs, urlsplit

__all__ = ["DemoServer", "RecordedRequest", "main"]

#: Fixed "created" timestamp (2026-01-01T00:00:00Z) so responses are reproducible.
CREATED = 1767225600
#: Suffix appended to the requested model for OpenAI responses (response.model != request.model).
OPENAI_MODEL_SUFFIX = "-2026-01-01"
#: Dimension of the deterministic embedding vectors.
EMBEDDING_DIM = 8
#: How long model "slow" takes to answer.
SLOW_SECONDS = 3.0


# ---------------------------------------------------------------------------
# Recorded requests and scripted responses
# ---------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str  # including the query string, e.g. "/v1beta/models/x:streamGenerateContent?alt=sse"
    headers: dict[str, str]  # lower-case keys
    body: Any  # parsed JSON, or None when empty / not JSON
    raw_body: bytes = b""

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


@dataclass
class _Scripted:
    status: int = 200
    json: Any = None
    sse: Optional[list[Any]] = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    path_contains: Optional[str] = None
    raw: Optional[bytes] = None


class _HTTPError(Exception):
    """Raised by route handlers to answer with a provider-shaped error."""

    def __init__(self, status: int, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# ---------------------------------------------------------------------------
# The conversation logic (provider independent)
# ---------------------------------------------------------------------------

_GERMAN_WORDS = frozenset(
    """
    ich und nicht bitte bestellung danke mein meine meinen meiner ist sie hallo
    guten tag wo mir mich habe haben noch kein keine leider paket lieferung
    warum wann kann können sind wurde ein eine einen dem den des auch schon
    rechnung rückerstattung geld zurück immer oder aber wie was wir ihr ihnen
    """.split()
)

_EN_REPLIES = (
    "Hello and welcome to customer support! How can I help you today? "
    "If your question is about an order, please share your order number.",
    "Thank you! I found your order. It was shipped yesterday and should arrive "
    "within two to three business days.",
    "I am sorry about the delay. I have opened an investigation with the carrier, "
    "and you will receive an update by email within 24 hours.",
    "Of course, you can still change the delivery address. Please confirm the new "
    "address including the postal code.",
    "You are welcome! Your refund will be credited to your original payment method "
    "within five business days. Is there anything else I can do for you?",
    "I have added a note to your customer account. Thank you for your patience, "
    "and have a wonderful day!",
)

_DE_REPLIES = (
    "Hallo und herzlich willkommen beim Kundenservice! Wie kann ich Ihnen heute "
    "helfen? Nennen Sie mir gern Ihre Bestellnummer.",
    "Vielen Dank! Ich habe Ihre Bestellung gefunden. Sie wurde gestern verschickt "
    "und sollte in zwei bis drei Werktagen bei Ihnen ankommen.",
    "Das tut mir leid. Ich habe eine Nachforschung beim Versanddienstleister "
    "gestartet. Sie erhalten innerhalb von 24 Stunden eine E-Mail von uns.",
    "Selbstverständlich können Sie die Lieferadresse noch ändern. Bitte bestätigen "
    "Sie mir dazu die neue Adresse inklusive Postleitzahl.",
    "Gern geschehen! Ihre Rückerstattung wird innerhalb von fünf Werktagen auf Ihr "
    "ursprüngliches Zahlungsmittel gebucht. Kann ich sonst noch etwas für Sie tun?",
    "Ich habe eine Notiz in Ihrem Kundenkonto hinterlegt. Vielen Dank für Ihre "
    "Geduld und noch einen schönen Tag!",
)

#: The incident: a German conversation, 5th user turn, and the bot answers in English.
INCIDENT_REPLY = (
    "Thank you for your patience. I have escalated your case to our logistics team, "
    "and you will receive a refund confirmation by email within five business days."
)

_TOOL_INTRO = {
    "en": "Let me check the current weather in {loc} for you.",
    "de": "Ich sehe für Sie nach, wie das Wetter in {loc} gerade ist.",
}
_TOOL_RESULT_REPLY = {
    "en": "The weather service reports {summary} for {loc}. Is there anything else "
    "I can help you with regarding your order?",
    "de": "Der Wetterdienst meldet für {loc}: {summary}. Kann ich Ihnen sonst noch "
    "bei Ihrer Bestellung helfen?",
}


@dataclass
class Conversation:
    """Provider-independent view of a request."""

    model: str = ""
    system: list[str] = field(default_factory=list)
    user: list[str] = field(default_factory=list)  # text of each user turn
    all_text: list[str] = field(default_factory=list)  # every message's text, in order
    last_role: str = "user"  # "user", "assistant" or "tool"
    tool_result: Optional[str] = None  # text of the trailing tool result, if any
    tool_names: list[str] = field(default_factory=list)
    json_mode: bool = False
    json_schema: Optional[dict] = None


@dataclass
class Answer:
    text: str
    language: str
    tool_call: Optional[tuple[str, dict]] = None  # (name, arguments)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text or "")


def detect_language(texts: Iterable[str]) -> str:
    """A tiny keyword heuristic: "de" if the text looks German, else "en"."""
    text = " ".join(texts).lower()
    if re.search(r"[äöüß]", text):
        return "de"
    hits = sum(1 for w in re.findall(r"\w+", text) if w in _GERMAN_WORDS)
    return "de" if hits >= 1 else "en"


def _location(text: str) -> str:
    m = re.search(r"\b(?:in|für|for|at)\s+([A-ZÄÖÜ][\wäöüß\-]+)", text or "")
    return m.group(1) if m else "Berlin"


def _is_reasoning_model(model: str) -> bool:
    m = model.lower()
    return any(k in m for k in ("think", "reason", "o1", "o3", "o4", "gpt-5", "gemini-2.5", "gemini-3"))


def _fill_schema(schema: Any, text: str, lang: str, defs: dict, depth: int = 0, name: str = "") -> Any:
    """Produce a value that satisfies (simple) JSON schemas, OpenAPI-ish Gemini schemas included."""
    if not isinstance(schema, dict) or depth > 8:
        return text
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        return _fill_schema(defs.get(ref, {}), text, lang, defs, depth + 1, name)
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if str(s.get("type", "")).lower() != "null"] or schema[key]
            return _fill_schema(options[0], text, lang, defs, depth + 1, name)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if str(t).lower() != "null"), "string")
    typ = str(typ or ("object" if "properties" in schema else "string")).lower()
    if typ == "object":
        props = schema.get("properties") or {}
        if not props:
            return {"answer": text, "language": lang}
        return {k: _fill_schema(v, text, lang, defs, depth + 1, k) for k, v in props.items()}
    if typ == "array":
        return [_fill_schema(schema.get("items", {}), text, lang, defs, depth + 1, name)]
    if typ == "integer":
        return 1
    if typ == "number":
        return 1.0
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    lname = name.lower()
    if "lang" in lname:
        return lang
    return text


def compose_answer(conv: Conversation) -> Answer:
    """The deterministic answer, same logic for all providers."""
    lang = detect_language(conv.user)
    turns = len(conv.user)
    last_user = conv.user[-1] if conv.user else ""
    system_text = " ".join(conv.system).lower()
    tool_call = None

    if conv.last_role == "tool" and conv.tool_result is not None:
        loc = _location(" ".join(conv.user))
        # The agent incident: at turn five a German conversation's tool result is summed up in English.
        reply_lang = "en" if lang == "de" and turns >= 5 and not re.search(r"german|deutsch", system_text) else lang
        summary = _summarize_tool_result(conv.tool_result, reply_lang)
        text = _TOOL_RESULT_REPLY[reply_lang].format(loc=loc, summary=summary)
    elif conv.tool_names and conv.last_role == "user" and re.search(r"weather|wetter", last_user, re.I):
        name = next((n for n in conv.tool_names if "weather" in n.lower()), "get_weather")
        loc = _location(last_user)
        tool_call = (name, {"location": loc, "unit": "celsius"})
        text = _TOOL_INTRO[lang].format(loc=loc)
    elif lang == "de" and turns >= 5 and not re.search(r"german|deutsch", system_text):
        text = INCIDENT_REPLY
    else:
        replies = _DE_REPLIES if lang == "de" else _EN_REPLIES
        text = replies[(max(turns, 1) - 1) % len(replies)]

    if conv.json_mode and tool_call is None:
        if conv.json_schema:
            defs = dict(conv.json_schema.get("$defs") or conv.json_schema.get("definitions") or {})
            value = _fill_schema(conv.json_schema, text, lang, defs)
            if not isinstance(value, dict):
                value = {"answer": value}
        else:
            value = {"answer": text, "language": lang}
        text = json.dumps(value, ensure_ascii=False)

    prompt_tokens = max(1, sum(len(_words(t)) for t in conv.all_text))
    # A real prompt cache would hold the conversation prefix: everything but the last message.
    cached = sum(len(_words(t)) for t in conv.all_text[:-1]) if turns >= 2 else 0
    visible = len(_words(text)) + (len(_words(json.dumps(tool_call[1]))) + 1 if tool_call else 0)
    reasoning = 2 * visible if _is_reasoning_model(conv.model) else 0
    return Answer(
        text=text,
        language=lang,
        tool_call=tool_call,
        prompt_tokens=prompt_tokens,
        cached_tokens=min(cached, prompt_tokens),
        completion_tokens=max(1, visible),
        reasoning_tokens=reasoning,
    )


def _summarize_tool_result(result: str, lang: str) -> str:
    try:
        data = json.loads(result)
    except (ValueError, TypeError):
        data = None
    if isinstance(data, dict):
        temp = data.get("temperature", data.get("temp"))
        cond = data.get("condition", data.get("conditions", data.get("description")))
        parts = [str(x) for x in ((f"{temp} °C" if temp is not None else None), cond) if x]
        if parts:
            return ", ".join(parts)
    result = (result or "").strip()
    if result:
        return result[:80]
    return "18 °C, leicht bewölkt" if lang == "de" else "18 °C, light clouds"


def _pieces(text: str) -> list[str]:
    """Split text into word pieces that concatenate back to the text."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def _text_of(content: Any) -> str:
    """Text of OpenAI / Anthropic / Gemini content (string, list of parts, part dict)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (_text_of(c) for c in content) if t)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return content["text"]
        for key in ("content", "parts", "output"):
            if key in content:
                return _text_of(content[key])
    return ""


def _embedding(value: Any) -> list[float]:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).digest()
    raw = [(b / 127.5) - 1.0 for b in digest[:EMBEDDING_DIM]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


# ---------------------------------------------------------------------------
# Request parsing per provider
# ---------------------------------------------------------------------------


def _openai_chat_conversation(body: dict) -> Conversation:
    conv = Conversation(model=str(body.get("model") or ""))
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        text = _text_of(msg.get("content"))
        conv.all_text.append(text)
        if role in ("system", "developer"):
            conv.system.append(text)
        elif role == "user":
            conv.user.append(text)
            conv.last_role = "user"
        elif role in ("tool", "function"):
            conv.last_role = "tool"
            conv.tool_result = text
        elif role == "assistant":
            conv.last_role = "assistant"
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("name"):
            conv.tool_names.append(str(fn["name"]))
        elif isinstance(tool, dict) and tool.get("name"):
            conv.tool_names.append(str(tool["name"]))
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
        conv.json_mode = True
        if rf.get("type") == "json_schema":
            conv.json_schema = (rf.get("json_schema") or {}).get("schema")
    return conv


def _openai_responses_conversation(body: dict) -> Conversation:
    conv = Conversation(model=str(body.get("model") or ""))
    if body.get("instructions"):
        text = _text_of(body["instructions"])
        conv.system.append(text)
        conv.all_text.append(text)
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        typ = item.get("type", "message")
        if typ == "function_call_output":
            text = _text_of(item.get("output"))
            conv.all_text.append(text)
            conv.last_role = "tool"
            conv.tool_result = text
            continue
        if typ == "function_call":
            conv.last_role = "assistant"
            continue
        role = item.get("role")
        text = _text_of(item.get("content"))
        conv.all_text.append(text)
        if role in ("system", "developer"):
            conv.system.append(text)
        elif role == "user":
            conv.user.append(text)
            conv.last_role = "user"
        elif role == "assistant":
            conv.last_role = "assistant"
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name"):
            conv.tool_names.append(str(tool["name"]))
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        conv.json_mode = True
        conv.json_schema = fmt.get("schema")
    return conv


def _anthropic_conversation(body: dict) -> Conversation:
    conv = Conversation(model=str(body.get("model") or ""))
    system = body.get("system")
    if system:
        text = _text_of(system)
        conv.system.append(text)
        conv.all_text.append(text)
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        content = msg.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        texts = [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        text = " ".join(t for t in texts if t)
        if role == "user":
            if results:
                result_text = _text_of(results[-1].get("content"))
                conv.all_text.append(result_text)
                if not text:
                    conv.last_role = "tool"
                    conv.tool_result = result_text
                    continue
            conv.all_text.append(text)
            conv.user.append(text)
            conv.last_role = "user"
        else:
            conv.all_text.append(text)
            conv.last_role = "assistant"
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name"):
            conv.tool_names.append(str(tool["name"]))
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        conv.json_mode = True
        conv.json_schema = fmt.get("schema")
    return conv


def _google_conversation(model: str, body: dict) -> Conversation:
    conv = Conversation(model=model)
    si = body.get("systemInstruction") or body.get("system_instruction")
    if si:
        text = _text_of(si)
        conv.system.append(text)
        conv.all_text.append(text)
    for content in body.get("contents") or []:
        if not isinstance(content, dict):
            continue
        parts = content.get("parts") or []
        responses = [p["functionResponse"] for p in parts if isinstance(p, dict) and p.get("functionResponse")]
        text = " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
        if content.get("role", "user") == "user":
            if responses and not text:
                result = json.dumps(responses[-1].get("response", {}), ensure_ascii=False)
                result_obj = responses[-1].get("response", {})
                if isinstance(result_obj, dict) and set(result_obj) == {"result"}:
                    result = json.dumps(result_obj["result"], ensure_ascii=False) if not isinstance(
                        result_obj["result"], str) else result_obj["result"]
                conv.all_text.append(result)
                conv.last_role = "tool"
                conv.tool_result = result
                continue
            conv.all_text.append(text)
            conv.user.append(text)
            conv.last_role = "user"
        else:
            conv.all_text.append(text)
            conv.last_role = "assistant"
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        for decl in tool.get("functionDeclarations") or tool.get("function_declarations") or []:
            if isinstance(decl, dict) and decl.get("name"):
                conv.tool_names.append(str(decl["name"]))
    gc = body.get("generationConfig") or {}
    if gc.get("responseMimeType") == "application/json":
        conv.json_mode = True
        conv.json_schema = gc.get("responseJsonSchema") or gc.get("responseSchema")
    return conv


# ---------------------------------------------------------------------------
# Error bodies per provider
# ---------------------------------------------------------------------------

_OPENAI_ERROR = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
}
_ANTHROPIC_ERROR = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_DEFAULT_MESSAGES = {
    400: "Invalid request (simulated by the demo server).",
    404: "Not found.",
    429: "Rate limit exceeded (simulated by the demo server). Please retry later.",
    500: "The server had an error while processing your request (simulated by the demo server).",
}


def _provider_of(path: str) -> str:
    route = urlsplit(path).path
    if route.startswith("/v2/"):
        return "cohere"
    if route.startswith("/api/"):
        return "ollama"
    if route.startswith("/v1/messages") or route.startswith("/v1/complete"):
        return "anthropic" if not route.startswith("/v1/completions") else "openai"
    if re.match(r"^/v\d\w*/(models|tunedModels)/", route) and ":" in route:
        return "google"
    if re.match(r"^/v\d+(alpha|beta)\w*/", route):
        return "google"
    if route.startswith("/model/"):
        return "bedrock"
    return "openai"


def error_body(provider: str, status: int, message: Optional[str] = None) -> dict:
    """The provider's own error JSON shape."""
    message = message or _DEFAULT_MESSAGES.get(status, f"Error {status} (simulated by the demo server).")
    if provider == "anthropic":
        return {
            "type": "error",
            "error": {"type": _ANTHROPIC_ERROR.get(status, "api_error"), "message": message},
        }
    if provider == "google":
        return {"error": {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}}
    if provider == "bedrock":
        return {"message": message}
    if provider == "cohere":
        return {"id": "demo-error", "message": message}
    if provider == "ollama":
        return {"error": message}
    typ, code = _OPENAI_ERROR.get(status, ("server_error", None))
    return {"error": {"message": message, "type": typ, "param": None, "code": code}}


# ---------------------------------------------------------------------------
# The HTTP handler
# ---------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, delayed ACKs add ~40 ms per call.
    disable_nagle_algorithm = True
    server_version = "micrometrics-demo/1.0"
    demo: "DemoServer"  # set on the subclass created per server

    # -- plumbing ---------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.demo.verbose:
            sys.stderr.write("demo_server: %s\n" % (format % args))

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return bytes(data)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        raw = self._read_body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.demo._record(RecordedRequest(self.command, self.path, headers, body, raw))
        try:
            scripted = self.demo._take_scripted(self.path)
            if scripted is not None:
                if scripted.delay and not self.demo._sleep(scripted.delay):
                    return
                if scripted.raw is not None or scripted.json is not None or scripted.sse is not None \
                        or scripted.status != 200:
                    self._send_scripted(scripted)
                    return
                self._route(body, extra_headers=scripted.headers)
            else:
                self._route(body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _send_scripted(self, s: _Scripted) -> None:
        if s.sse is not None and _provider_of(self.path) == "bedrock":
            from demo_server_bedrock import scripted_frames, send_events

            send_events(self, scripted_frames(self.path, s.sse), s.headers)
        elif s.sse is not None:
            self._send_sse(s.sse, status=s.status, headers=s.headers)
        elif s.raw is not None:
            headers = {"Content-Type": "application/json", **s.headers}
            self._send_bytes(s.status, s.raw, headers)
        elif s.json is not None:
            self._send_json(s.status, s.json, s.headers)
        else:
            provider = _provider_of(self.path)
            self._send_json(s.status, error_body(provider, s.status), {**_error_headers(s.status), **s.headers})

    def _send_bytes(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        lower = {k.lower() for k in headers}
        for k, v in headers.items():
            self.send_header(k, str(v))
        if "content-length" not in lower:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any, headers: Optional[dict[str, str]] = None) -> None:
        payload = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._send_bytes(status, payload, {"Content-Type": "application/json", **self.demo._common_headers(self.path, status),
                                           **(headers or {})})

    def _send_sse(self, events: Iterable[Any], status: int = 200, headers: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        merged = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            **self.demo._common_headers(self.path),
            **(headers or {}),
        }
        for k, v in merged.items():
            self.send_header(k, str(v))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = True
        for event in events:
            if not first and self.demo.chunk_delay > 0:
                if not self.demo._sleep(self.demo.chunk_delay):
                    self.close_connection = True
                    return
            first = False
            self._write_chunk(_encode_sse(event))
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- routing ------------------------------------------------------------

    def _route(self, body: Any, extra_headers: Optional[dict[str, str]] = None) -> None:
        route = urlsplit(self.path).path.rstrip("/") or "/"
        provider = _provider_of(self.path)
        try:
            if self.command == "GET" and route == "/":
                self._send_json(200, {"status": "ok", "server": "micrometrics demo server",
                                      "openai_base_url": self.demo.openai_base_url}, extra_headers)
                return
            default_model = None
            dialect = "openai"
            for prefix, name in (("/mistral/", "mistral"), ("/groq/openai/", "groq")):
                if route.startswith(prefix):  # OpenAI-format routes with a provider's differences
                    route, dialect = "/" + route[len(prefix):], name
            m = re.match(r"^/openai/deployments/([^/]+)(/.*)$", route)
            if m:  # Azure OpenAI: /openai/deployments/{deployment}/chat/completions?api-version=...
                default_model, route = m.group(1), "/v1" + m.group(2)
            elif route.startswith("/openai/v1/"):  # Azure OpenAI v1 GA form
                route = route[len("/openai"):]
            if self.command != "POST":
                raise _HTTPError(404 if route != "/" else 405, f"No route for {self.command} {self.path}")
            if provider == "bedrock":
                from demo_server_bedrock import route as bedrock_route

                if bedrock_route(self, route, body, extra_headers):
                    return
            gm = re.match(r"^/(v\d\w*)/((?:models|tunedModels)/[^:]+):(\w+)$", route)
            if gm:
                self._google(gm.group(2), gm.group(3), body if isinstance(body, dict) else {}, extra_headers)
                return
            handler = {
                "/v1/chat/completions": lambda b, e: self._openai_chat(b, e, dialect),
                "/v1/responses": self._openai_responses,
                "/v1/embeddings": lambda b, e: self._openai_embeddings(b, e, dialect),
                "/v1/completions": self._openai_completions,
                "/v1/messages": self._anthropic_messages,
                "/v1/messages/count_tokens": self._anthropic_count_tokens,
                "/v2/chat": self._cohere_chat,
                "/v2/embed": self._cohere_embed,
                "/api/chat": lambda b, e: self._ollama(b, e, "chat"),
                "/api/generate": lambda b, e: self._ollama(b, e, "generate"),
                "/api/embed": self._ollama_embed,
            }.get(route)
            if handler is None:
                raise _HTTPError(404, f"Unknown path: {self.command} {self.path}")
            if not isinstance(body, dict):
                raise _HTTPError(400, "Request body must be a JSON object.")
            if default_model and not body.get("model"):
                body = {**body, "model": default_model}
            handler(body, extra_headers)
        except _HTTPError as err:
            self._send_json(err.status, error_body(provider, err.status, err.message),
                            {**_error_headers(err.status), **err.headers, **(extra_headers or {})})

    def _check_model(self, model: str) -> None:
        """Special models: error-400/429/500 answer that status, "slow" sleeps first."""
        m = re.fullmatch(r"(?:models/)?error-(\d{3})", model or "")
        if m:
            status = int(m.group(1))
            raise _HTTPError(status, _DEFAULT_MESSAGES.get(status, f"Error {status} (simulated by the demo server)."))
        if re.fullmatch(r"(?:models/)?slow", model or ""):
            if not self.demo._sleep(SLOW_SECONDS):
                raise BrokenPipeError("server stopping")

    # -- OpenAI -------------------------------------------------------------

    def _openai_chat(self, body: dict, extra: Optional[dict], dialect: str = "openai") -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        conv = _openai_chat_conversation(body)
        ans = compose_answer(conv)
        n = max(1, int(body.get("n") or 1))
        rid = self.demo._next_id("chatcmpl-demo")
        # Mistral and Groq answer with the model as requested; OpenAI with a dated snapshot.
        resp_model = model + OPENAI_MODEL_SUFFIX if dialect == "openai" else model
        x_groq = {"id": self.demo._next_id("req_demo")} if dialect == "groq" else None
        usage = _openai_usage(ans, n)
        call_id = self.demo._next_id("call_demo") if ans.tool_call else None
        finish = "tool_calls" if ans.tool_call else "stop"

        if not body.get("stream"):
            choices = []
            for i in range(n):
                if ans.tool_call:
                    message = {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "annotations": [],
                        "tool_calls": [{
                            "id": call_id,
                            "type": "function",
                            "function": {"name": ans.tool_call[0], "arguments": json.dumps(ans.tool_call[1])},
                        }],
                    }
                else:
                    message = {"role": "assistant", "content": ans.text, "refusal": None, "annotations": []}
                choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": finish})
            self._send_json(200, {
                "id": rid,
                "object": "chat.completion",
                "created": CREATED,
                "model": resp_model,
                "choices": choices,
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_demo",
                **({"x_groq": x_groq} if x_groq else {}),
            }, extra)
            return

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": rid, "object": "chat.completion.chunk", "created": CREATED, "model": resp_model,
                "service_tier": "default", "system_fingerprint": "fp_demo"}
        if include_usage:
            base["usage"] = None

        def chunk(i: int, delta: dict, finish_reason: Optional[str] = None) -> dict:
            return {**base, "choices": [{"index": i, "delta": delta, "logprobs": None,
                                         "finish_reason": finish_reason}]}

        events: list[Any] = []
        for i in range(n):
            if ans.tool_call:
                args = json.dumps(ans.tool_call[1])
                # Mistral streams each tool call whole, in one chunk.
                events.append(chunk(i, {"role": "assistant", "content": None, "refusal": None, "tool_calls": [{
                    "index": 0, "id": call_id, "type": "function",
                    "function": {"name": ans.tool_call[0], "arguments": args if dialect == "mistral" else ""}}]}))
                for piece in _pieces(args) if dialect != "mistral" else ():
                    events.append(chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            else:
                events.append(chunk(i, {"role": "assistant", "content": "", "refusal": None}))
                for piece in _pieces(ans.text):
                    events.append(chunk(i, {"content": piece}))
        if x_groq:
            events[0] = {**events[0], "x_groq": x_groq}
        for i in range(n):
            events.append(chunk(i, {}, finish))
        if dialect == "mistral":  # Mistral always sends the usage, on the last chunk
            events[-1] = {**events[-1], "usage": usage}
        elif x_groq:  # Groq too, in x_groq
            events[-1] = {**events[-1], "x_groq": {**x_groq, "usage": usage}}
        if include_usage:
            events.append({**base, "choices": [], "usage": usage})
        events.append("[DONE]")
        self._send_sse(events, headers=extra)

    def _openai_completions(self, body: dict, extra: Optional[dict]) -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        prompt = body.get("prompt")
        prompts = prompt if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else [prompt]
        texts = [p if isinstance(p, str) else json.dumps(p) for p in prompts]
        conv = Conversation(model=model, user=[texts[0]], all_text=texts)
        ans = compose_answer(conv)
        n = max(1, int(body.get("n") or 1))
        rid = self.demo._next_id("cmpl-demo")
        resp_model = model + OPENAI_MODEL_SUFFIX
        usage = _openai_usage(ans, n * len(texts))
        count = n * len(texts)
        if not body.get("stream"):
            choices = [{"text": ans.text, "index": i, "logprobs": None, "finish_reason": "stop"} for i in range(count)]
            self._send_json(200, {"id": rid, "object": "text_completion", "created": CREATED, "model": resp_model,
                                  "choices": choices, "usage": usage, "system_fingerprint": "fp_demo"}, extra)
            return
        base = {"id": rid, "object": "text_completion", "created": CREATED, "model": resp_model,
                "system_fingerprint": "fp_demo"}
        events: list[Any] = []
        for i in range(count):
            for piece in _pieces(ans.text):
                events.append({**base, "choices": [{"text": piece, "index": i, "logprobs": None,
                                                    "finish_reason": None}]})
            events.append({**base, "choices": [{"text": "", "index": i, "logprobs": None, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        events.append("[DONE]")
        self._send_sse(events, headers=extra)

    def _openai_embeddings(self, body: dict, extra: Optional[dict], dialect: str = "openai") -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        inp = body.get("input")
        if isinstance(inp, str) or (isinstance(inp, list) and inp and all(isinstance(x, int) for x in inp)):
            inputs = [inp]
        elif isinstance(inp, list):
            inputs = inp
        else:
            raise _HTTPError(400, "'input' is a required property")
        b64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for i, item in enumerate(inputs):
            vec = _embedding(item)
            tokens += len(item) if isinstance(item, list) else len(_words(str(item)))
            emb: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        response = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        if dialect == "mistral":  # Mistral's embeddings carry an id, and the (zero) completion tokens
            response = {"id": self.demo._next_id("embd-demo"), **response,
                        "usage": {**response["usage"], "completion_tokens": 0}}
        self._send_json(200, response, extra)

    def _openai_responses(self, body: dict, extra: Optional[dict]) -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        conv = _openai_responses_conversation(body)
        ans = compose_answer(conv)
        rid = self.demo._next_id("resp_demo")
        msg_id = self.demo._next_id("msg_demo")
        usage = {
            "input_tokens": ans.prompt_tokens,
            "input_tokens_details": {"cached_tokens": ans.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": ans.completion_tokens + ans.reasoning_tokens,
            "output_tokens_details": {"reasoning_tokens": ans.reasoning_tokens},
            "total_tokens": ans.prompt_tokens + ans.completion_tokens + ans.reasoning_tokens,
        }
        if ans.tool_call:
            item = {"type": "function_call", "id": self.demo._next_id("fc_demo"),
                    "call_id": self.demo._next_id("call_demo"), "name": ans.tool_call[0],
                    "arguments": json.dumps(ans.tool_call[1]), "status": "completed"}
        else:
            item = {"type": "message", "id": msg_id, "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": ans.text, "annotations": [], "logprobs": []}]}

        def response(status: str, output: list, with_usage: bool) -> dict:
            return {
                "id": rid,
                "object": "response",
                "created_at": CREATED,
                "status": status,
                "background": False,
                "error": None,
                "incomplete_details": None,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "model": model + OPENAI_MODEL_SUFFIX,
                "output": output,
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": {"effort": None, "summary": None},
                "service_tier": "default",
                "store": body.get("store", True),
                "temperature": body.get("temperature", 1.0),
                "text": body.get("text") or {"format": {"type": "text"}},
                "tool_choice": body.get("tool_choice", "auto"),
                "tools": body.get("tools") or [],
                "top_p": body.get("top_p", 1.0),
                "truncation": "disabled",
                "usage": usage if with_usage else None,
                "user": body.get("user"),
                "metadata": body.get("metadata") or {},
                "completed_at": CREATED + 1 if status == "completed" else None,
            }

        if not body.get("stream"):
            self._send_json(200, response("completed", [item], True), extra)
            return

        seq = iter(range(1_000_000))

        def ev(typ: str, **fields: Any) -> tuple[str, dict]:
            return (typ, {"type": typ, "sequence_number": next(seq), **fields})

        events: list[Any] = [
            ev("response.created", response=response("in_progress", [], False)),
            ev("response.in_progress", response=response("in_progress", [], False)),
        ]
        if ans.tool_call:
            args = item["arguments"]
            events.append(ev("response.output_item.added", output_index=0,
                             item={**item, "arguments": "", "status": "in_progress"}))
            for piece in _pieces(args):
                events.append(ev("response.function_call_arguments.delta", item_id=item["id"], output_index=0,
                                 delta=piece))
            events.append(ev("response.function_call_arguments.done", item_id=item["id"], output_index=0,
                             name=item["name"], arguments=args))
        else:
            events.append(ev("response.output_item.added", output_index=0,
                             item={**item, "status": "in_progress", "content": []}))
            empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(ev("response.content_part.added", item_id=msg_id, output_index=0, content_index=0,
                             part=empty_part))
            for piece in _pieces(ans.text):
                events.append(ev("response.output_text.delta", item_id=msg_id, output_index=0, content_index=0,
                                 delta=piece, logprobs=[]))
            events.append(ev("response.output_text.done", item_id=msg_id, output_index=0, content_index=0,
                             text=ans.text, logprobs=[]))
            events.append(ev("response.content_part.done", item_id=msg_id, output_index=0, content_index=0,
                             part=item["content"][0]))
        events.append(ev("response.output_item.done", output_index=0, item=item))
        events.append(ev("response.completed", response=response("completed", [item], True)))
        self._send_sse(events, headers=extra)

    # -- Anthropic ----------------------------------------------------------

    def _anthropic_messages(self, body: dict, extra: Optional[dict]) -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        conv = _anthropic_conversation(body)
        ans = compose_answer(conv)
        mid = self.demo._next_id("msg_demo")
        usage = {
            "input_tokens": ans.prompt_tokens - ans.cached_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": ans.cached_tokens,
            "output_tokens": ans.completion_tokens,
            "service_tier": "standard",
        }
        blocks: list[dict] = [{"type": "text", "text": ans.text, "citations": None}]
        stop_reason = "end_turn"
        if ans.tool_call:
            blocks.append({"type": "tool_use", "id": self.demo._next_id("toolu_demo"), "name": ans.tool_call[0],
                           "input": ans.tool_call[1]})
            stop_reason = "tool_use"
        message = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": blocks,
                   "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            self._send_json(200, message, extra)
            return
        start_usage = {**usage, "output_tokens": 1}
        events: list[Any] = [("message_start", {"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}})]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "text", "text": ""}}))
                for piece in _pieces(block["text"]):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "text_delta", "text": piece}}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {**block, "input": {}}}))
                for piece in _pieces(json.dumps(block["input"])):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "input_json_delta",
                                                                     "partial_json": piece}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                         "usage": {"output_tokens": ans.completion_tokens}}))
        events.append(("message_stop", {"type": "message_stop"}))
        self._send_sse(events, headers=extra)

    def _anthropic_count_tokens(self, body: dict, extra: Optional[dict]) -> None:
        self._check_model(str(body.get("model") or ""))
        ans = compose_answer(_anthropic_conversation(body))
        self._send_json(200, {"input_tokens": ans.prompt_tokens}, extra)

    # -- Google Gen AI ------------------------------------------------------

    def _google(self, model_path: str, method: str, body: dict, extra: Optional[dict]) -> None:
        model = model_path.split("/", 1)[1]
        self._check_model(model)
        if method in ("embedContent", "batchEmbedContents"):
            requests = body.get("requests") if method == "batchEmbedContents" else [body]
            embeddings = [{"values": _embedding(_text_of(r.get("content")))} for r in requests or []]
            if method == "embedContent":
                self._send_json(200, {"embedding": embeddings[0] if embeddings else {"values": []}}, extra)
            else:
                self._send_json(200, {"embeddings": embeddings}, extra)
            return
        conv = _google_conversation(model, body)
        ans = compose_answer(conv)
        if method == "countTokens":
            self._send_json(200, {"totalTokens": ans.prompt_tokens}, extra)
            return
        if method not in ("generateContent", "streamGenerateContent"):
            raise _HTTPError(404, f"Method {method} is not supported by the demo server.")
        rid = self.demo._next_id("demo-resp-")
        usage = {
            "promptTokenCount": ans.prompt_tokens,
            "candidatesTokenCount": ans.completion_tokens,
            "totalTokenCount": ans.prompt_tokens + ans.completion_tokens + ans.reasoning_tokens,
            "cachedContentTokenCount": ans.cached_tokens,
            "thoughtsTokenCount": ans.reasoning_tokens,
        }

        def response(parts: list, finish: Optional[str], with_usage: bool) -> dict:
            cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                cand["finishReason"] = finish
            out: dict[str, Any] = {"candidates": [cand], "modelVersion": model, "responseId": rid}
            if with_usage:
                out["usageMetadata"] = usage
            return out

        if ans.tool_call:
            final_parts = [{"functionCall": {"name": ans.tool_call[0], "args": ans.tool_call[1]}}]
        else:
            final_parts = [{"text": ans.text}]
        if method == "generateContent":
            self._send_json(200, response(final_parts, "STOP", True), extra)
            return
        if ans.tool_call:
            events = [response(final_parts, "STOP", True)]
        else:
            pieces = _pieces(ans.text)
            events = [response([{"text": p}], "STOP" if i == len(pieces) - 1 else None, i == len(pieces) - 1)
                      for i, p in enumerate(pieces)]
        if "alt=sse" in self.path:
            self._send_sse(events, headers=extra)
        else:  # without ?alt=sse the API streams a JSON array
            self._send_json(200, events, extra)


    # -- Cohere (API v2) ----------------------------------------------------

    def _cohere_chat(self, body: dict, extra: Optional[dict]) -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        ans = compose_answer(_openai_chat_conversation(body))  # v2 messages are OpenAI-shaped
        rid = self.demo._next_id("demo-cohere-")
        tokens = {"input_tokens": ans.prompt_tokens, "output_tokens": ans.completion_tokens}
        usage = {"billed_units": dict(tokens), "tokens": dict(tokens)}
        call = None
        if ans.tool_call:
            call = {"id": self.demo._next_id("demo_tool_"), "type": "function",
                    "function": {"name": ans.tool_call[0], "arguments": json.dumps(ans.tool_call[1])}}
        finish = "TOOL_CALL" if call else "COMPLETE"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant"}
            if call:
                message.update(tool_plan=ans.text, tool_calls=[call])
            else:
                message["content"] = [{"type": "text", "text": ans.text}]
            self._send_json(200, {"id": rid, "finish_reason": finish, "message": message, "usage": usage}, extra)
            return

        def ev(kind: str, **fields: Any) -> tuple[str, dict]:
            return (kind, {"type": kind, **fields})

        events = [ev("message-start", id=rid, delta={"message": {"role": "assistant", "content": [], "tool_plan": "",
                                                                   "tool_calls": [], "citations": []}})]
        if call:
            for piece in _pieces(ans.text):
                events.append(ev("tool-plan-delta", delta={"message": {"tool_plan": piece}}))
            events.append(ev("tool-call-start", index=0, delta={"message": {"tool_calls": {
                **call, "function": {"name": call["function"]["name"], "arguments": ""}}}}))
            for piece in _pieces(call["function"]["arguments"]):
                events.append(ev("tool-call-delta", index=0, delta={"message": {"tool_calls": {"function": {"arguments": piece}}}}))
            events.append(ev("tool-call-end", index=0))
        else:
            events.append(ev("content-start", index=0, delta={"message": {"content": {"type": "text", "text": ""}}}))
            for piece in _pieces(ans.text):
                events.append(ev("content-delta", index=0, delta={"message": {"content": {"text": piece}}}))
            events.append(ev("content-end", index=0))
        events.append(ev("message-end", delta={"finish_reason": finish, "usage": usage}))
        self._send_sse(events, headers=extra)

    def _cohere_embed(self, body: dict, extra: Optional[dict]) -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        texts = body.get("texts")
        if not isinstance(texts, list):
            raise _HTTPError(400, "invalid request: texts must be a list of strings")
        types = body.get("embedding_types") or ["float"]
        embeddings = {t: [_embedding(x) for x in texts] for t in types if t == "float"}
        tokens = sum(len(_words(str(x))) for x in texts)
        self._send_json(200, {
            "id": self.demo._next_id("demo-embed-"),
            "embeddings": embeddings,
            "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            "response_type": "embeddings_by_type",
        }, extra)

    # -- Ollama ----------------------------------------------------------------

    def _ollama(self, body: dict, extra: Optional[dict], method: str) -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        if method == "chat":
            conv = _openai_chat_conversation(body)  # Ollama's messages are OpenAI-shaped
        else:
            prompt = str(body.get("prompt") or "")
            conv = Conversation(model=model, system=[str(body["system"])] if body.get("system") else [],
                                user=[prompt], all_text=[prompt])
        ans = compose_answer(conv)
        counts = {"total_duration": 1_000_000, "load_duration": 10_000, "prompt_eval_count": ans.prompt_tokens,
                  "prompt_eval_duration": 100_000, "eval_count": ans.completion_tokens, "eval_duration": 800_000}
        head = {"model": model, "created_at": "2026-01-01T00:00:00Z"}
        calls = [{"function": {"name": ans.tool_call[0], "arguments": ans.tool_call[1]}}] if ans.tool_call and method == "chat" else []

        def piece(text: str) -> dict:
            if method == "chat":
                return {**head, "message": {"role": "assistant", "content": text}, "done": False}
            return {**head, "response": text, "done": False}

        last = {**piece(""), "done": True, "done_reason": "stop", **counts}
        if method == "generate":
            last["context"] = [1, 2, 3]
        if body.get("stream") is False:
            whole = piece("" if calls else ans.text)
            if calls:
                whole["message"]["tool_calls"] = calls
            self._send_json(200, {**last, **{k: v for k, v in whole.items() if k != "done"}}, extra)
            return
        lines = [piece(p) for p in ([] if calls else _pieces(ans.text))]
        if calls:
            lines.append({**piece(""), "message": {"role": "assistant", "content": "", "tool_calls": calls}})
        lines.append(last)
        self._send_ndjson(lines, extra)

    def _ollama_embed(self, body: dict, extra: Optional[dict]) -> None:
        model = str(body.get("model") or "")
        self._check_model(model)
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
        self._send_json(200, {"model": model, "embeddings": [_embedding(x) for x in inputs], "total_duration": 1_000_000,
                              "load_duration": 10_000, "prompt_eval_count": sum(len(_words(str(x))) for x in inputs)}, extra)

    def _send_ndjson(self, lines: list[dict], extra: Optional[dict]) -> None:
        """A newline-delimited JSON stream (Ollama's), chunked like the SSE streams."""
        self._send_sse([(json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8") for line in lines],
                       headers={"Content-Type": "application/x-ndjson", **(extra or {})})


def _openai_usage(ans: Answer, n: int) -> dict:
    completion = ans.completion_tokens * n + ans.reasoning_tokens
    return {
        "prompt_tokens": ans.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": ans.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": ans.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": ans.reasoning_tokens, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _error_headers(status: int) -> dict[str, str]:
    # Keep SDK retries (if a client leaves them on) quick: they honour retry-after-ms.
    return {"retry-after-ms": "50", "retry-after": "0"} if status == 429 else {}


def _encode_sse(event: Any) -> bytes:
    if isinstance(event, (bytes, bytearray)):
        return bytes(event)
    if isinstance(event, tuple):
        name, data = event
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        return f"event: {name}\ndata: {payload}\n\n".encode("utf-8")
    if isinstance(event, str):
        return f"data: {event}\n\n".encode("utf-8")
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode("utf-8")


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, closed keep-alive connections) are routine here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class DemoServer:
    """Deterministic local LLM server; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, chunk_delay: float = 0.0,
                 verbose: bool = False) -> None:
        self.host = host
        self.port = port
        self.chunk_delay = chunk_delay
        self.verbose = verbose
        self.requests: list[RecordedRequest] = []
        self._queue: collections.deque[_Scripted] = collections.deque()
        self._lock = threading.Lock()
        self._ids: dict[str, int] = collections.defaultdict(int)
        self._stopping = threading.Event()
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> "DemoServer":
        if self._httpd is not None:
            return self
        self._stopping.clear()
        handler = type("DemoHandler", (_Handler,), {"demo": self})
        self._httpd = _HTTPServer((self.host, self.port), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"demo-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes up delayed / slow answers
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "DemoServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- URLs ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def google_base_url(self) -> str:
        return self.base_url

    @property
    def mistral_base_url(self) -> str:
        return self.base_url + "/mistral"

    @property
    def groq_base_url(self) -> str:
        return self.base_url + "/groq"

    @property
    def cohere_base_url(self) -> str:
        return self.base_url

    @property
    def ollama_host(self) -> str:
        return self.base_url

    # -- scripting ----------------------------------------------------------

    def enqueue(self, *, status: int = 200, json: Any = None, sse: Optional[list[Any]] = None, delay: float = 0.0,
                headers: Optional[dict[str, str]] = None, path_contains: Optional[str] = None,
                raw: Optional[bytes] = None) -> None:
        """Script the response to the next request (whose path contains ``path_contains``).

        ``json``: a body to send; ``sse``: a list of events, each a dict (``data: <json>``),
        a ``(event_name, dict)`` tuple or a string such as ``"[DONE]"`` (``data: [DONE]``);
        ``raw``: bytes sent as-is; ``delay``: seconds to wait before answering. With no
        body and status 200 the default answer is sent (after ``delay``); with no body and
        an error status, the provider's error JSON.
        """
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        item = _Scripted(status=status, json=json, sse=list(sse) if sse is not None else None, delay=delay,
                         headers=dict(headers or {}), path_contains=path_contains, raw=raw)
        with self._lock:
            self._queue.append(item)

    def reset(self) -> None:
        """Forget scripted responses and recorded requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        """Number of scripted responses not yet consumed."""
        with self._lock:
            return len(self._queue)

    # -- internals ----------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_scripted(self, path: str) -> Optional[_Scripted]:
        with self._lock:
            for item in self._queue:
                if item.path_contains is None or item.path_contains in path:
                    self._queue.remove(item)
                    return item
        return None

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids[prefix] += 1
            return f"{prefix}{self._ids[prefix]:06d}"

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops meanwhile; returns False when stopping."""
        return not self._stopping.wait(seconds)

    def _common_headers(self, path: str, status: int = 200) -> dict[str, str]:
        provider = _provider_of(path)
        if provider == "bedrock":
            from demo_server_bedrock import headers

            return headers(self._next_id("demo-req-"), status)
        if provider == "anthropic":
            return {"request-id": self._next_id("req_demo")}
        if provider == "openai":
            return {"x-request-id": self._next_id("req_demo"), "openai-processing-ms": "1"}
        return {}


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="seconds between SSE events")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    server = DemoServer(args.host, args.port, chunk_delay=args.chunk_delay, verbose=not args.quiet).start()
    print(f"Demo LLM server listening on {server.base_url}", flush=True)
    print(f"  OpenAI:    OpenAI(base_url={server.openai_base_url!r}, api_key='test')", flush=True)
    print(f"  Anthropic: Anthropic(base_url={server.anthropic_base_url!r}, api_key='test')", flush=True)
    print(f"  Google:    genai.Client(api_key='test', http_options={{'base_url': {server.google_base_url!r}}})",
          flush=True)
    print(f"  Bedrock:   boto3.client('bedrock-runtime', endpoint_url={server.base_url!r}, region_name='us-east-1')",
          flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    sys.modules.setdefault("demo_server", sys.modules["__main__"])  # demo_server_bedrock imports this module by name
    main()
