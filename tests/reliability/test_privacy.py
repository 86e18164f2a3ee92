"""Privacy, proven on the bytes: every OTLP payload micrometrics exports is scanned.

micrometrics exports through a real OTLP/HTTP exporter to a loopback receiver that
keeps the raw request bodies (and headers); the scans read those bytes, not our
objects. Content (prompts, answers, queries, documents, tool arguments) is absent
unless capture is on; API keys and auth headers are absent in every mode; with
capture on, ``redact`` is applied to all content and ``max_content_chars`` truncates
with a marker.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator

import openai
import pytest

import micrometrics
from micrometrics.attributes import TRUNCATION_MARKER
from micrometrics.metrics import JsonFormat, LanguageMatch, ResponseLength
from micrometrics_semconv import attributes as A
from otlp_sink import OtlpSink, attributes
from reliability_libraries import API_KEY, PROMPT, QUERY, Library, Outcome, libraries

#: A customer number inside the prompt: content, which must never leave unless capture is on.
SECRET = "ZX-PRIVATE-8812"
PLACEHOLDER = "[kundennummer]"


def prompt_for(lib: Library) -> str:
    return f"{QUERY} {SECRET}" if not lib.http else f"{PROMPT} Meine Kundennummer ist {SECRET}."


def answer_snippets(outcome: Outcome) -> list[str]:
    """Sentences of what the provider answered (or the documents retrieved): content to look for."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= 24 and " " in value and SECRET not in value:
                found.append(value[:24])
        elif isinstance(value, dict):
            for k, v in value.items():
                if k not in ("sdk_http_response", "headers"):  # HTTP metadata, not content
                    walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(outcome.data)
    return found


@contextmanager
def exported(sink: OtlpSink, lib: Library | None = None, **options: Any) -> Iterator[Any]:
    """micrometrics with its own OTLP/HTTP pipeline to the sink; flushed and shut down on exit."""
    if lib is not None:
        options.setdefault("instrumentations", [lib.instrumentation])
    handle = micrometrics.instrument(exporter="otlp", endpoint=sink.url, service_name="privacy-check", **options)
    try:
        yield handle
        handle.force_flush()
    finally:
        micrometrics.uninstrument()


def leaks(sink: OtlpSink, needles: list[str]) -> list[str]:
    blob = sink.everything()
    return [n for n in needles if n.encode("utf-8") in blob]


def assert_credentials_absent(sink: OtlpSink) -> None:
    blob = sink.everything()
    for needle in (API_KEY, f"Bearer {API_KEY}", "sk-reliability"):
        assert needle.encode() not in blob, needle
    for payload in sink.payloads:
        assert "authorization" not in payload.headers and "api-key" not in payload.headers and "x-api-key" not in payload.headers


PAIRS = [pytest.param(lib, mode, id=f"{lib.id}-{mode}") for lib in libraries() for mode in lib.all_modes()]
#: The libraries whose calls have content to export (not embeddings: the conventions define none for them).
CONTENT_PAIRS = [pytest.param(lib, mode, id=f"{lib.id}-{mode}") for lib in libraries() for mode in lib.all_modes() if lib.exports_content]


@pytest.mark.parametrize("lib, mode", PAIRS)
def test_no_content_and_no_credentials_in_any_payload_by_default(lib, mode, demo, sink):
    prompt = prompt_for(lib)
    with exported(sink, lib):
        outcome = lib.run(demo, mode, prompt=prompt)
        failed = lib.run(demo, mode, prompt=prompt, error=True)
    assert outcome.kind != "error" and failed.kind == "error"
    assert sink.spans() and sink.metric_names(), "the scan read real payloads"
    assert leaks(sink, [SECRET, *answer_snippets(outcome)]) == []
    assert_credentials_absent(sink)


@pytest.mark.parametrize("lib, mode", PAIRS)
def test_with_capture_content_the_same_scan_finds_the_content(lib, mode, demo, sink):
    """The positive control: the scan above would have seen content, had it been there."""
    prompt = prompt_for(lib)
    with exported(sink, lib, capture_content=True):
        outcome = lib.run(demo, mode, prompt=prompt)
    if not lib.exports_content:  # embeddings: capture on, and still no input anywhere
        assert sink.spans() and leaks(sink, [SECRET]) == []
        return
    if lib.text_request:
        assert SECRET.encode() in b"".join(sink.raw("traces"))
    if lib.evaluated_by == "LanguageMatch":  # inference: the details event carries it too
        assert SECRET.encode() in b"".join(sink.raw("logs"))
    snippets = answer_snippets(outcome) if "stream" not in mode else []
    assert leaks(sink, snippets) == snippets
    assert_credentials_absent(sink)


@pytest.mark.parametrize("lib, mode", CONTENT_PAIRS)
def test_redact_is_applied_before_export(lib, mode, demo, sink):
    # A query that is a vector carries no text: redact a word of the documents it finds instead.
    secret = SECRET if lib.text_request else "Werktage"
    with exported(sink, lib, capture_content=True, redact=lambda text: text.replace(secret, PLACEHOLDER)):
        lib.run(demo, mode, prompt=prompt_for(lib))
    assert leaks(sink, [secret]) == []
    assert PLACEHOLDER.encode() in sink.everything()


@pytest.mark.parametrize("lib, mode", CONTENT_PAIRS)
def test_max_content_chars_truncates_with_a_marker(lib, mode, demo, sink):
    # The secret sits past the limit: it must be cut, and the cut must say so.
    long_prompt = "Bitte helfen Sie mir. " * 40 + SECRET
    with exported(sink, lib, capture_content=True, max_content_chars=64):
        outcome = lib.run(demo, mode, prompt=long_prompt)
    assert outcome.kind != "error"
    marker = TRUNCATION_MARKER.split("{")[0]
    assert marker.encode() in b"".join(sink.raw("traces"))
    assert leaks(sink, [SECRET]) == []


# ---- every kind of content, in one conversation per provider ------------------------------


def _openai_chat(demo: Any) -> None:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": f"Kunde {SECRET} ist Premium."},
            {"role": "user", "content": [{"type": "text", "text": f"Wo ist Bestellung {SECRET}?"},
                                         {"type": "image_url", "image_url": {"url": f"https://img.example/{SECRET}.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"customer": SECRET})}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"status": "versandt", "customer": SECRET})},
            {"role": "user", "content": "Danke, und wann kommt sie an?"},
        ],
        tools=[{"type": "function", "function": {"name": "lookup", "description": f"Sucht Bestellungen, z.B. {SECRET}",
                                                 "parameters": {"type": "object", "properties": {"customer": {"type": "string"}}}}}],
    )
    client.embeddings.create(model="text-embedding-3-small", input=[f"Kunde {SECRET}"])
    client.close()


def _openai_azure(demo: Any) -> None:
    client = openai.AzureOpenAI(azure_endpoint=demo.base_url, api_key=API_KEY, api_version="2024-10-21", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"Hallo, Kunde {SECRET} hier."}])
    client.close()


def _anthropic(demo: Any) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=API_KEY, max_retries=0)
    client.messages.create(
        model="claude-sonnet-5-5",
        max_tokens=300,
        system=f"Kunde {SECRET} ist Premium.",
        messages=[
            {"role": "user", "content": f"Wo ist Bestellung {SECRET}?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"customer": SECRET}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": f"versandt an {SECRET}"}]},
        ],
        tools=[{"name": "lookup", "description": f"Sucht Bestellungen, z.B. {SECRET}", "input_schema": {"type": "object"}}],
    )
    client.close()


def _google(demo: Any) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=API_KEY, http_options={"base_url": demo.google_base_url})
    client.models.generate_content(
        model="gemini-2.0-flash",
        contents=[
            types.Content(role="user", parts=[types.Part(text=f"Wo ist Bestellung {SECRET}?")]),
            types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(name="lookup", args={"customer": SECRET}))]),
            types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(name="lookup", response={"customer": SECRET}))]),
        ],
        config=types.GenerateContentConfig(system_instruction=f"Kunde {SECRET} ist Premium."),
    )
    client.close()


CONVERSATIONS = {"openai": _openai_chat, "openai-azure": _openai_azure, "anthropic": _anthropic, "google_genai": _google}


@pytest.mark.parametrize("name", [n for n in CONVERSATIONS if n.split("-")[0] in {lib.instrumentation for lib in libraries()}])
@pytest.mark.parametrize("capture", ["off", "redacted"])
def test_every_kind_of_content_is_absent_or_redacted(name, capture, demo, sink):
    """System instructions, user text, image URLs, tool definitions, tool-call arguments, tool results."""
    options: dict[str, Any] = {"instrumentations": [name.split("-")[0]]}
    if capture == "redacted":
        options.update(capture_content=True, redact=lambda text: text.replace(SECRET, PLACEHOLDER))
    with exported(sink, **options):
        CONVERSATIONS[name](demo)
    assert sink.spans()
    assert leaks(sink, [SECRET]) == []
    assert_credentials_absent(sink)
    if capture == "redacted":
        assert PLACEHOLDER.encode() in sink.everything()


def test_metric_points_carry_only_the_allowed_dimensions(demo, sink):
    lib = libraries()[0]
    with exported(sink, capture_content=True, metrics=[LanguageMatch(), ResponseLength(), JsonFormat(always=True)]):
        with micrometrics.context(conversation_id=f"conv-{SECRET}", user_id=f"user-{SECRET}"):
            lib.run(demo, "sync", prompt=prompt_for(lib))
            lib.run(demo, "sync", prompt=prompt_for(lib), error=True)
    names = sink.metric_names()
    assert "gen_ai.client.operation.duration" in names and "micrometrics.evaluations" in names
    for name in names:
        for point_attributes, _ in sink.metric_points(name):
            assert set(point_attributes) <= A.METRIC_DIMENSIONS, (name, point_attributes)
    assert not any(SECRET.encode() in body for body in sink.raw("metrics"))


def test_evaluation_explanations_carry_no_content(demo, sink):
    """A JSON schema violation is explained by where and which rule, never by the offending value."""
    schema = {"type": "object", "properties": {"customer": {"type": "integer"}, "status": {"enum": ["ok"]}}}
    answer = json.dumps({"customer": SECRET, "status": f"lost {SECRET}"})
    demo.enqueue(json={"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]})
    with exported(sink, metrics=[JsonFormat(schema=schema, always=True)]):
        client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "JSON bitte"}])
        client.close()
    (span,) = sink.spans()
    assert attributes(span)["micrometrics.json_format.label"] == "fail"
    assert leaks(sink, [SECRET]) == []


@pytest.mark.parametrize("bad", ["raises", "returns-none"])
def test_a_broken_redact_fails_closed_and_the_call_goes_on(bad, demo, sink):
    """A redact function that raises (or returns no str) exports no content, and nothing else is lost."""
    from micrometrics import internal_errors

    def redact(text: str) -> Any:
        if bad == "raises":
            raise RuntimeError(f"redactor down while handling {text[:5]}")
        return None

    lib = libraries()[0]
    uninstrumented = lib.run(demo, "sync", prompt=prompt_for(lib))
    with exported(sink, lib, capture_content=True, redact=redact):
        assert lib.run(demo, "sync", prompt=prompt_for(lib)) == uninstrumented
    (span,) = sink.spans()
    attrs = attributes(span)
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0 and attrs["micrometrics.language_match.label"] == "match"
    assert A.GEN_AI_INPUT_MESSAGES not in attrs and A.GEN_AI_OUTPUT_MESSAGES not in attrs
    assert "gen_ai.client.token.usage" in sink.metric_names()
    assert leaks(sink, [SECRET, *answer_snippets(uninstrumented)]) == []
    assert set(internal_errors.totals) == {"content"}


def test_a_lone_surrogate_never_costs_the_export_batch(demo, sink):
    """JSON's "\\ud800" decodes to a lone surrogate, which UTF-8 (and so OTLP) cannot encode: one such
    attribute would fail the whole batch, the application's own spans with it."""
    answer = b'{"id": "chatcmpl-\\udc00x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini\\ud800", ' \
             b'"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hallo \\ud83d Welt"}, "finish_reason": "stop"}]}'
    demo.enqueue(raw=answer)
    with exported(sink, capture_content=True, instrumentations=["openai"]) as handle:
        with handle.tracer_provider.get_tracer("shop").start_as_current_span("checkout"):
            client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hallo Welt"}])
            client.close()
    assert reply.choices[0].message.content == "Hallo \ud83d Welt"  # the application's data, untouched
    names = sorted(s.name for s in sink.spans())
    assert names == ["chat gpt-4o-mini", "checkout"]
    (chat,) = [s for s in sink.spans() if s.name.startswith("chat")]
    assert "\ufffd" in attributes(chat)[A.GEN_AI_OUTPUT_MESSAGES]


# ---- issue 14: errors, metric exceptions, numbers and keys, capture modes ---------------------------


def _error_quoting_the_input(provider: str, demo: Any) -> None:
    """A 400 whose message quotes the request, as providers do; the app's call raises it."""
    text = f"Invalid request: the content 'Kunde {SECRET}' is too long"
    if provider == "openai":
        demo.enqueue(status=400, json={"error": {"message": text, "type": "invalid_request_error", "param": None, "code": None}})
        client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hallo"}])
    elif provider == "anthropic":
        import anthropic

        demo.enqueue(status=400, json={"type": "error", "error": {"type": "invalid_request_error", "message": text}})
        client = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=API_KEY, max_retries=0)
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model="claude-sonnet-5-5", max_tokens=10, messages=[{"role": "user", "content": "Hallo"}])
    else:
        from google import genai
        from google.genai import errors

        demo.enqueue(status=400, json={"error": {"code": 400, "message": text, "status": "INVALID_ARGUMENT"}})
        client = genai.Client(api_key=API_KEY, http_options={"base_url": demo.google_base_url})
        with pytest.raises(errors.ClientError):
            client.models.generate_content(model="gemini-2.0-flash", contents="Hallo")
    client.close()


ERROR_PROVIDERS = [p for p in ("openai", "anthropic", "google_genai") if p in {lib.instrumentation for lib in libraries()}]


@pytest.mark.parametrize("provider", ERROR_PROVIDERS)
def test_provider_error_text_is_not_exported_with_capture_off(provider, demo, sink):
    with exported(sink, instrumentations=[provider], metrics=[]):
        _error_quoting_the_input(provider, demo)
    (span,) = sink.spans()
    assert leaks(sink, [SECRET, "too long"]) == []
    (event,) = [e for e in span.events if e.name == "exception"]
    assert set(attributes(event)) == {A.EXCEPTION_TYPE}
    assert attributes(event)[A.EXCEPTION_TYPE].endswith("BadRequestError" if provider != "google_genai" else "ClientError")
    assert attributes(span)[A.ERROR_TYPE] == "400"
    assert span.status.message.endswith("(400)") and span.status.code == 2  # ERROR, with the type and status only


@pytest.mark.parametrize("provider", ERROR_PROVIDERS)
def test_provider_error_text_is_redacted_with_capture_on(provider, demo, sink):
    with exported(sink, instrumentations=[provider], metrics=[], capture_content=True,
                  redact=lambda text: text.replace(SECRET, PLACEHOLDER)):
        _error_quoting_the_input(provider, demo)
    (span,) = sink.spans()
    assert leaks(sink, [SECRET]) == []
    (event,) = [e for e in span.events if e.name == "exception"]
    assert PLACEHOLDER in attributes(event)[A.EXCEPTION_MESSAGE] and PLACEHOLDER in attributes(event)[A.EXCEPTION_STACKTRACE]
    assert PLACEHOLDER in span.status.message


@micrometrics.micro_metric(name="price_parser")
def _price_parser(call: Any) -> micrometrics.Result:
    return micrometrics.Result("pass", score=float(call.output_text.split()[-1]))  # raises on words: quotes the answer


@pytest.mark.parametrize("capture", ["off", "redacted"])
def test_a_metric_exception_message_is_exported_only_redacted_with_capture_on(capture, demo, sink):
    demo.enqueue(json={"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": f"the price is {SECRET}"}, "finish_reason": "stop"}]})
    options: dict[str, Any] = {"metrics": [_price_parser], "instrumentations": ["openai"]}
    if capture == "redacted":
        options.update(capture_content=True, redact=lambda text: text.replace(SECRET, PLACEHOLDER))
    with exported(sink, **options):
        client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Preis?"}])
        client.close()
    (span,) = sink.spans()
    assert attributes(span)["micrometrics.price_parser.label"] == "error"
    assert leaks(sink, [SECRET]) == []
    (event,) = [e for e in span.events if e.name == "micrometrics.evaluation"]
    explanation = attributes(event)[A.GEN_AI_EVALUATION_EXPLANATION]
    assert "ValueError" in explanation
    (log,) = [r for r in sink.log_records() if attributes(r).get(A.GEN_AI_EVALUATION_NAME) == "price_parser"]
    if capture == "off":
        assert explanation.endswith("raised ValueError")
        assert attributes(log)[A.GEN_AI_EVALUATION_EXPLANATION] == explanation
    else:
        assert PLACEHOLDER in explanation and PLACEHOLDER in attributes(log)[A.GEN_AI_EVALUATION_EXPLANATION]


CARD = 4111111111111111


def _tool_numbers_openai(demo: Any) -> None:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": "Zahlung bitte"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "pay", "arguments": json.dumps({"card": CARD, str(CARD): "k"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"charged": CARD})},
    ])
    client.close()


def _tool_numbers_anthropic(demo: Any) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=API_KEY, max_retries=0)
    client.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=[
        {"role": "user", "content": "Zahlung bitte"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "pay", "input": {"card": CARD, str(CARD): "k"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "ok"}]}]},
    ])
    client.close()


def _tool_numbers_google(demo: Any) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=API_KEY, http_options={"base_url": demo.google_base_url})
    client.models.generate_content(model="gemini-2.0-flash", contents=[
        types.Content(role="user", parts=[types.Part(text="Zahlung bitte")]),
        types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(name="pay", args={"card": CARD, str(CARD): "k"}))]),
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(name="pay", response={"charged": CARD}))]),
    ])
    client.close()


NUMBER_CONVERSATIONS = {"openai": _tool_numbers_openai, "anthropic": _tool_numbers_anthropic, "google_genai": _tool_numbers_google}


@pytest.mark.parametrize("provider", [p for p in NUMBER_CONVERSATIONS if p in {lib.instrumentation for lib in libraries()}])
def test_redact_reaches_numbers_and_keys_in_tool_arguments_and_results(provider, demo, sink):
    with exported(sink, instrumentations=[provider], metrics=[], capture_content=True,
                  redact=lambda text: text.replace(str(CARD), "[card]")):
        NUMBER_CONVERSATIONS[provider](demo)
    assert sink.spans()
    assert leaks(sink, [str(CARD)]) == []
    assert b"[card]" in b"".join(sink.raw("traces"))


@pytest.mark.parametrize(
    "value, on_spans, on_events",
    [("NO_CONTENT", False, False), ("SPAN_ONLY", True, False), ("event_only", False, True),
     ("Span_And_Event", True, True), ("true", True, True), ("false", False, False)],
)
@pytest.mark.parametrize("source", ["environment", "argument"])
def test_capture_content_modes_put_content_where_they_say(value, on_spans, on_events, source, demo, sink, monkeypatch):
    options: dict[str, Any] = {"instrumentations": ["openai"], "metrics": [LanguageMatch()]}
    if source == "environment":
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    else:
        options["capture_content"] = value
    with exported(sink, **options):
        client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"Hallo, Kunde {SECRET} hier."}])
        client.close()
    assert sink.spans()
    assert (SECRET.encode() in b"".join(sink.raw("traces"))) is on_spans
    assert (SECRET.encode() in b"".join(sink.raw("logs"))) is on_events


def test_a_bad_capture_content_variable_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENTS")
    with pytest.raises(ValueError, match="OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.*'EVENTS'.*EVENT_ONLY"):
        micrometrics.instrument(exporter="none", instrumentations=["openai"])
    assert micrometrics.installation.current() is None
