"""A user instruments an app that calls Amazon Bedrock through boto3: what their backend shows.

The real boto3 talks to the demo server over loopback (``endpoint_url=``): Bedrock's REST JSON,
and its event streams in AWS's binary framing, which botocore parses and checksums itself.
"""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest
import wrapt
from botocore.config import Config
from botocore.eventstream import EventStream
from botocore.exceptions import ClientError, EventStreamError
from botocore.response import StreamingBody
from opentelemetry.trace import StatusCode

import micrometrics
from micrometrics.metrics.language_match import LanguageMatch
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V
from provider_contract import Content, assert_failed_call, assert_inference_call

ROOT = Path(__file__).resolve().parents[2]
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)
SECRET = "bedrock-SECRET-key-4f1c9a7e"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
SPAN = f"chat {MODEL}"
QUESTION = "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."
SYSTEM = "Du bist der freundliche Kundenservice eines Onlineshops."
MESSAGES = [{"role": "user", "content": [{"text": QUESTION}]}]
WEATHER_TOOL = {"toolSpec": {"name": "get_weather", "description": "Current weather at a place.",
                             "inputSchema": {"json": {"type": "object", "properties": {"location": {"type": "string"}}}}}}


def client(demo, attempts: int = 1, **config):
    """A bedrock-runtime client of the demo server; botocore's own retries off unless asked for."""
    return boto3.client(
        "bedrock-runtime", endpoint_url=demo.base_url, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key=SECRET, config=Config(retries={"total_max_attempts": attempts}, **config),
    )


def converse(demo, stream: bool, **kwargs) -> tuple[dict, str]:
    """converse / converse_stream as an app calls them: the response and the text the user reads."""
    kwargs.setdefault("modelId", MODEL)
    kwargs.setdefault("messages", MESSAGES)
    c = client(demo)
    if not stream:
        response = c.converse(**kwargs)
        return response, "".join(b.get("text", "") for b in response["output"]["message"]["content"])
    response = c.converse_stream(**kwargs)
    events = list(response["stream"])
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    return {**response, "events": events}, text


def invoke(demo, model: str, body: dict, stream: bool) -> tuple[list[dict], bytes | None]:
    """invoke_model / invoke_model_with_response_stream: the model's JSON the app reads (one, or one per chunk)."""
    c = client(demo)
    if not stream:
        raw = c.invoke_model(modelId=model, body=json.dumps(body))["body"].read()
        return [json.loads(raw)], raw
    events = list(c.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))["body"])
    return [json.loads(e["chunk"]["bytes"]) for e in events], None


# ---- Converse -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_converse_emits_span_metrics_and_logs(demo, telemetry, stream, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    _, text = converse(demo, stream, system=[{"text": SYSTEM}], inferenceConfig={"maxTokens": 300, "temperature": 0.2,
                                                                                 "stopSequences": ["\n\nHuman:"]})
    assert text.startswith("Hallo")

    assert_inference_call(
        telemetry, operation="chat", provider="aws.bedrock", request_model=MODEL, response_model=None, response_id_prefix=None,
        server=("127.0.0.1", demo.port), stream=stream, capture=capture, secret=SECRET,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}],
                        system_instructions=[{"type": "text", "content": SYSTEM}], output_text=text),
        attributes={A.GEN_AI_REQUEST_MAX_TOKENS: 300, A.GEN_AI_REQUEST_TEMPERATURE: 0.2, A.GEN_AI_REQUEST_STOP_SEQUENCES: ("\n\nHuman:",)},
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_converse_response_is_botocores_own(demo, telemetry, stream):
    """The app gets the dict botocore parsed, its stream still botocore's EventStream (proxied)."""
    plain, text = converse(demo, stream)
    telemetry.instrument(metrics=[])
    traced, traced_text = converse(demo, stream)
    assert traced_text == text
    assert list(traced) == list(plain)  # same keys, in botocore's order
    if stream:
        assert traced["events"] == plain["events"]
        stream_obj = client(demo).converse_stream(modelId=MODEL, messages=MESSAGES)["stream"]
        assert isinstance(stream_obj, EventStream) and stream_obj.__class__ is EventStream
        stream_obj.close()
    else:
        assert {k: v for k, v in traced.items() if k != "ResponseMetadata"} == {k: v for k, v in plain.items() if k != "ResponseMetadata"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_use_blocks_and_tool_results(demo, telemetry, stream):
    telemetry.instrument(capture_content=True, metrics=[])
    tools = {"tools": [WEATHER_TOOL]}
    asked = [{"role": "user", "content": [{"text": "Wie ist das Wetter in Berlin?"}]}]
    response, _ = converse(demo, stream, messages=asked, toolConfig=tools)
    if stream:
        use_id = next(e["contentBlockStart"]["start"]["toolUse"]["toolUseId"] for e in response["events"] if "contentBlockStart" in e)
    else:
        use_id = response["output"]["message"]["content"][1]["toolUse"]["toolUseId"]

    span = telemetry.span(SPAN)
    assert span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_call",)
    (output,) = json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert output["parts"][1] == {"type": "tool_call", "id": use_id, "name": "get_weather",
                                  "arguments": {"location": "Berlin", "unit": "celsius"}}
    assert json.loads(span.attributes[A.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "get_weather", "description": "Current weather at a place.",
         "parameters": WEATHER_TOOL["toolSpec"]["inputSchema"]["json"]}]

    telemetry.span_exporter.clear()
    history = [*asked, {"role": "assistant", "content": [{"toolUse": {"toolUseId": use_id, "name": "get_weather", "input": {"location": "Berlin"}}}]},
               {"role": "user", "content": [{"toolResult": {"toolUseId": use_id, "content": [{"json": {"temperature": 21, "condition": "sonnig"}}]}}]}]
    _, text = converse(demo, stream, messages=history, toolConfig=tools)
    assert "21 °C" in text
    inputs = json.loads(telemetry.span(SPAN).attributes[A.GEN_AI_INPUT_MESSAGES])
    assert inputs[-1] == {"role": "tool", "parts": [{"type": "tool_call_response", "id": use_id,
                                                     "response": {"temperature": 21, "condition": "sonnig"}}]}
    assert inputs[-2]["parts"][0]["type"] == "tool_call"


def test_cache_reads_count_as_input_tokens(demo, telemetry):
    """Bedrock reports cache reads apart from ``inputTokens``; the conventions' input tokens include them."""
    telemetry.instrument(metrics=[])
    turns = [{"role": "user", "content": [{"text": "Hallo, ich habe eine Frage."}]},
             {"role": "assistant", "content": [{"text": "Gern, wie kann ich helfen?"}]},
             {"role": "user", "content": [{"text": "Wo ist mein Paket?"}, {"cachePoint": {"type": "default"}}]}]
    response, _ = converse(demo, False, messages=turns)
    usage = response["usage"]
    assert usage["cacheReadInputTokens"] > 0
    attrs = telemetry.span(SPAN).attributes
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == usage["inputTokens"] + usage["cacheReadInputTokens"] + usage["cacheWriteInputTokens"]
    assert attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == usage["cacheReadInputTokens"]
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["outputTokens"]


@pytest.mark.parametrize("stop_reason,finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_call"),
    ("guardrail_intervened", "content_filter"), ("content_filtered", "content_filter"),
    ("model_context_window_exceeded", "length"), ("something_new", "something_new"),
])
def test_stop_reasons_map_to_the_conventions_finish_reasons(demo, telemetry, stop_reason, finish):
    telemetry.instrument(metrics=[])
    demo.enqueue(json={"output": {"message": {"role": "assistant", "content": [{"text": "Gern."}]}}, "stopReason": stop_reason,
                       "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 9}})
    converse(demo, False)
    assert telemetry.span(SPAN).attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == (finish,)


def test_reasoning_blocks_are_reasoning_parts_not_answer_text(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[LanguageMatch()])
    demo.enqueue(sse=[
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "The user writes German, so I answer in German."}}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"reasoningContent": {"signature": "c2lnbmF0dXJl"}}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "Gern helfe ich Ihnen "}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"text": "bei Ihrer Bestellung weiter."}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": {"inputTokens": 12, "outputTokens": 20, "totalTokens": 32}, "metrics": {"latencyMs": 50}}},
    ])
    _, text = converse(demo, True)
    assert text == "Gern helfe ich Ihnen bei Ihrer Bestellung weiter."
    attrs = telemetry.span(SPAN).attributes
    (output,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    assert output["parts"] == [{"type": "reasoning", "content": "The user writes German, so I answer in German."},
                               {"type": "text", "content": text}]
    assert attrs["micrometrics.language_match.detected"] == "de"  # the answer was judged, not the English reasoning


# ---- InvokeModel: every model family's body -------------------------------------------------------

#: family -> (model id, request body, operation, what the app reads as the answer text, response model, response id prefix)
FAMILIES = {
    "anthropic": ("us.anthropic.claude-3-5-haiku-20241022-v1:0",
                  {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "system": SYSTEM, "messages": [{"role": "user", "content": QUESTION}]},
                  "chat", "claude-3-5-haiku-20241022", "msg_bdrk_demo"),
    "llama": ("meta.llama3-1-8b-instruct-v1:0", {"prompt": QUESTION, "max_gen_len": 300, "temperature": 0.5}, "text_completion", None, None),
    "mistral": ("mistral.mistral-7b-instruct-v0:2", {"prompt": f"<s>[INST] {QUESTION} [/INST]", "max_tokens": 300}, "text_completion", None, None),
    "mistral-chat": ("mistral.mistral-large-2407-v1:0",
                     {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}], "max_tokens": 300},
                     "chat", None, "demo-mistral-"),
    "titan": ("amazon.titan-text-express-v1", {"inputText": QUESTION, "textGenerationConfig": {"maxTokenCount": 300, "temperature": 0.5}},
              "text_completion", None, None),
    "cohere": ("cohere.command-r-plus-v1:0", {"message": QUESTION, "preamble": SYSTEM, "max_tokens": 300}, "chat", None, "demo-resp-"),
    "nova": ("amazon.nova-lite-v1:0",
             {"schemaVersion": "messages-v1", "system": [{"text": SYSTEM}], "messages": [{"role": "user", "content": [{"text": QUESTION}]}],
              "inferenceConfig": {"max_new_tokens": 300}},
             "chat", None, None),
}


def _answer(family: str, payloads: list[dict], stream: bool) -> str:
    """The answer text as the app reads it from the family's JSON."""
    if family == "anthropic":
        if not stream:
            return payloads[0]["content"][0]["text"]
        return "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
    if family == "nova":
        if not stream:
            return payloads[0]["output"]["message"]["content"][0]["text"]
        return "".join(p["contentBlockDelta"]["delta"]["text"] for p in payloads if "contentBlockDelta" in p)
    read = {
        "llama": lambda p: p.get("generation") or "",
        "mistral": lambda p: p["outputs"][0]["text"],
        "mistral-chat": lambda p: p["choices"][0]["message"]["content"],
        "titan": lambda p: p["results"][0]["outputText"] if "results" in p else p.get("outputText") or "",
        "cohere": lambda p: p.get("text") or "" if p.get("event_type") in (None, "text-generation") else "",
    }[family]
    return "".join(read(p) for p in payloads)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_invoke_model_bodies_of_every_family(demo, telemetry, family, stream):
    model, body, operation, response_model, id_prefix = FAMILIES[family]
    plain, _ = invoke(demo, model, body, stream)
    telemetry.instrument(capture_content=True, metrics=[])
    payloads, _ = invoke(demo, model, body, stream)
    text = _answer(family, payloads, stream)
    assert text == _answer(family, plain, stream) and text.startswith("Hallo")

    system = family in ("anthropic", "mistral-chat", "cohere", "nova")
    if stream and family == "mistral-chat":
        id_prefix = None  # Mistral's stream chunks carry no id
    assert_inference_call(
        telemetry, operation=operation, provider="aws.bedrock", request_model=model, response_model=response_model,
        response_id_prefix=id_prefix, server=("127.0.0.1", demo.port), stream=stream, capture=True,
        content=Content(system_instructions=[{"type": "text", "content": SYSTEM}] if system else None, output_text=text),
        attributes={A.GEN_AI_REQUEST_MAX_TOKENS: 300},
    )
    inputs = json.loads(telemetry.span(f"{operation} {model}").attributes[A.GEN_AI_INPUT_MESSAGES])
    assert inputs[-1]["role"] == "user" and QUESTION in inputs[-1]["parts"][0]["content"]


def test_invoke_model_body_is_handed_back_unread(demo, telemetry):
    """The span needs the body when the call returns; the app still reads it, in any way a StreamingBody allows."""
    model, body, *_ = FAMILIES["anthropic"]
    c = client(demo)
    plain = c.invoke_model(modelId=model, body=json.dumps(body))["body"].read()
    telemetry.instrument(metrics=[])
    response = c.invoke_model(modelId=model, body=json.dumps(body).encode(), contentType="application/json", accept="application/json")
    assert isinstance(response["body"], StreamingBody) and response["contentType"] == "application/json"
    lines = list(response["body"].iter_lines())
    assert json.loads(lines[0])["content"] == json.loads(plain)["content"]
    assert response["body"].read() == b""  # read once, as any StreamingBody
    assert telemetry.span(f"chat {model}").attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_a_body_given_as_a_file_is_never_read_by_us(demo, telemetry):
    model, body, *_ = FAMILIES["anthropic"]
    telemetry.instrument(capture_content=True, metrics=[])
    payload = io.BytesIO(json.dumps(body).encode())
    response = client(demo).invoke_model(modelId=model, body=payload)
    assert json.loads(response["body"].read())["content"][0]["text"].startswith("Hallo")
    attrs = telemetry.span(f"chat {model}").attributes
    assert A.GEN_AI_INPUT_MESSAGES not in attrs  # the request: what the call itself says, no more
    assert attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)  # the response is read as always


def test_a_guard_never_resends_a_body_given_as_a_file(demo, telemetry):
    """The first attempt read the file: a retry would send nothing. The app gets the answer it had, as without us."""
    turns = ["Hallo, ich habe eine Frage zu meiner Bestellung.", "Meine Bestellnummer ist 12345. Wo ist mein Paket?",
             "Warum dauert die Lieferung so lange?", "Kann ich die Lieferadresse noch ändern?", "Danke. Wann bekomme ich mein Geld zurück?"]
    messages = []
    for i, text in enumerate(turns):
        messages += [{"role": "assistant", "content": "Gern."}] if i else []
        messages.append({"role": "user", "content": text})
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "messages": messages}
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", expected="de")])  # we never read the file: the language is told
    answer = json.loads(client(demo).invoke_model(modelId=MODEL, body=io.BytesIO(json.dumps(body).encode()))["body"].read())
    assert answer["content"][0]["text"].startswith("Thank you")  # the incident: English at turn five
    assert len(demo.requests) == 1
    span = telemetry.span(SPAN)
    assert span.attributes["micrometrics.language_match.label"] == "mismatch"
    assert A.MICROMETRICS_ATTEMPT not in span.attributes


def test_usage_from_bedrocks_own_counts_when_the_body_has_none(demo, telemetry):
    """Mistral's body counts no tokens: the X-Amzn-Bedrock-*-Token-Count headers (invoke) and invocation metrics (stream) do."""
    model, body, *_ = FAMILIES["mistral"]
    telemetry.instrument(metrics=[])
    response = client(demo).invoke_model(modelId=model, body=json.dumps(body))
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    attrs = telemetry.span(f"text_completion {model}").attributes
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == int(headers["x-amzn-bedrock-input-token-count"])
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == int(headers["x-amzn-bedrock-output-token-count"])
    telemetry.span_exporter.clear()
    payloads, _ = invoke(demo, model, body, True)
    metrics = payloads[-1]["amazon-bedrock-invocationMetrics"]
    attrs = telemetry.span(f"text_completion {model}").attributes
    assert (attrs[A.GEN_AI_USAGE_INPUT_TOKENS], attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (metrics["inputTokenCount"], metrics["outputTokenCount"])


def test_a_model_id_that_does_not_name_its_family_is_read_by_the_body_shape(demo, telemetry):
    """A provisioned-throughput ARN says nothing about the model: the Anthropic body does."""
    arn = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/a1b2c3d4e5f6"
    _, body, *_ = FAMILIES["anthropic"]
    telemetry.instrument(capture_content=True, metrics=[])
    payloads, _ = invoke(demo, arn, body, True)
    attrs = telemetry.span(f"chat {arn}").attributes
    assert attrs[A.GEN_AI_RESPONSE_ID].startswith("msg_bdrk_demo")
    assert json.loads(attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": SYSTEM}]
    assert json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == _answer("anthropic", payloads, True)


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
@pytest.mark.parametrize("family", ["titan", "cohere"])
def test_embeddings(demo, telemetry, family, capture):
    model, body, prefix = {
        "titan": ("amazon.titan-embed-text-v2:0", {"inputText": QUESTION, "dimensions": 8}, None),
        "cohere": ("cohere.embed-multilingual-v3", {"texts": [QUESTION, "Zweiter Text"], "input_type": "search_document"}, "demo-embed-"),
    }[family]
    telemetry.instrument(capture_content=capture, metrics=[])
    answer = json.loads(client(demo).invoke_model(modelId=model, body=json.dumps(body))["body"].read())
    vectors = [answer["embedding"]] if family == "titan" else answer["embeddings"]
    texts = [body["inputText"]] if family == "titan" else body["texts"]

    span = assert_inference_call(
        telemetry, operation="embeddings", provider="aws.bedrock", request_model=model, response_model=None,
        response_id_prefix=prefix, server=("127.0.0.1", demo.port), finish_reasons=None, token_types=("input",), capture=capture,
        content=Content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]),
    )
    assert span.attributes[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(vectors[0])


# ---- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["converse", "converse_stream", "invoke_model", "invoke_model_with_response_stream"])
@pytest.mark.parametrize("model,code,status", [
    ("error-400", "ValidationException", "400"), ("error-429", "ThrottlingException", "429"), ("error-500", "InternalServerException", "500"),
])
def test_api_errors_propagate_unchanged_and_mark_the_span(demo, telemetry, operation, model, code, status):
    """``error.type`` is the HTTP status, as for every provider; the exception event names Bedrock's error code."""
    telemetry.instrument(metrics=[])
    c = client(demo)
    kwargs = {"messages": MESSAGES} if operation.startswith("converse") else {"body": json.dumps(FAMILIES["anthropic"][1])}
    with pytest.raises(ClientError) as info:
        getattr(c, operation)(modelId=model, **kwargs)
    assert type(info.value) is getattr(c.exceptions, code)
    assert info.value.response["Error"]["Code"] == code
    span = assert_failed_call(telemetry, f"chat {model}", provider="aws.bedrock", error_type=status)
    assert span.events[0].attributes["exception.type"] == f"botocore.errorfactory.{code}"


def test_botocores_own_retries_are_inside_the_one_span(demo, telemetry):
    """botocore retries a throttled call itself: the backend shows one call, as long as all of its attempts."""
    telemetry.instrument(metrics=[])
    demo.enqueue(status=429)
    response = client(demo, attempts=2).converse(modelId=MODEL, messages=MESSAGES)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1 and len(demo.requests) == 2
    span = telemetry.span(SPAN)
    assert span.status.status_code == StatusCode.UNSET and A.ERROR_TYPE not in span.attributes


@pytest.mark.parametrize("api", ["converse_stream", "invoke_model_with_response_stream"])
def test_an_exception_event_mid_stream_records_the_error_and_propagates(demo, telemetry, api):
    telemetry.instrument(metrics=[])
    if api == "converse_stream":
        demo.enqueue(sse=[{"messageStart": {"role": "assistant"}}, {"contentBlockDelta": {"delta": {"text": "Hallo "}, "contentBlockIndex": 0}},
                          ("modelStreamErrorException", {"message": "The model stopped.", "originalStatusCode": 500})])
        stream = client(demo).converse_stream(modelId=MODEL, messages=MESSAGES)["stream"]
    else:
        demo.enqueue(sse=[{"type": "message_start", "message": {"id": "msg_bdrk_x", "type": "message", "role": "assistant", "model": "claude",
                                                                "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}},
                          ("modelStreamErrorException", {"message": "The model stopped.", "originalStatusCode": 500})])
        stream = client(demo).invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(FAMILIES["anthropic"][1]))["body"]
    seen = []
    with pytest.raises(EventStreamError, match="The model stopped"):
        for event in stream:
            seen.append(event)
    assert len(seen) >= 1
    assert_failed_call(telemetry, SPAN, provider="aws.bedrock", error_type="botocore.exceptions.EventStreamError")


# ---- streams end exactly once ----------------------------------------------------------------------


class TestStreamsEndExactlyOnce:
    def test_closed_mid_way_ends_its_span_with_what_was_read(self, demo, telemetry):
        telemetry.instrument(capture_content=True, metrics=[])
        stream = client(demo).converse_stream(modelId=MODEL, messages=MESSAGES)["stream"]
        read = [next(iter(stream)) for _ in range(3)]
        assert "messageStart" in read[0]
        stream.close()
        stream.close()
        span = telemetry.span(SPAN)
        assert span.attributes[A.ERROR_TYPE] == V.ERROR_TYPE_STREAM_ABANDONED
        (output,) = json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])
        assert output["parts"][0]["content"] == "".join(e["contentBlockDelta"]["delta"]["text"] for e in read[1:])

    def test_abandoned_stream_is_ended_by_gc(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        response = client(demo).invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(FAMILIES["anthropic"][1]))
        next(iter(response["body"]))
        assert telemetry.spans() == []  # still open: the app may come back to it
        del response
        gc.collect()
        assert len(telemetry.spans()) == 1

    def test_a_guarded_stream_dropped_mid_way_ends_at_once_without_a_gc_cycle(self, demo, telemetry):
        """The proxy's guard restart reaches the call path; nothing of it refers back to the response, so dropping it ends the span."""
        telemetry.instrument(metrics=[LanguageMatch(mode="guard")])
        response = client(demo).converse_stream(modelId=MODEL, messages=MESSAGES)
        next(iter(response["stream"]))
        gc.disable()
        try:
            del response
            assert len(telemetry.spans()) == 1
        finally:
            gc.enable()

    def test_initial_response_and_iteration_keep_botocores_api(self, demo, telemetry):
        telemetry.instrument(metrics=[])
        stream = client(demo).converse_stream(modelId=MODEL, messages=MESSAGES)["stream"]
        events = [e for e in stream]
        assert events[-1]["metadata"]["usage"]["outputTokens"] > 0
        assert [e for e in stream] == []  # exhausted, as botocore's
        assert telemetry.span(SPAN).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == events[-1]["metadata"]["usage"]["outputTokens"]


# ---- what is traced, and what is not ----------------------------------------------------------------


def test_other_operations_and_services_are_not_traced(demo, telemetry):
    telemetry.instrument(metrics=[])
    c = client(demo)
    with pytest.raises(ClientError):  # the demo server has no guardrails: a 404, as the app would get anyway
        c.apply_guardrail(guardrailIdentifier="g1", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "Hallo"}}])
    s3 = boto3.client("s3", endpoint_url=demo.base_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                      config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError):
        s3.list_buckets()
    assert telemetry.spans() == []
    assert M.GEN_AI_CLIENT_OPERATION_DURATION not in telemetry.metrics()


def test_a_client_made_before_instrument_is_traced_and_uninstrument_restores_the_method(demo, telemetry):
    from botocore.client import BaseClient

    early = client(demo)
    telemetry.instrument(metrics=[])
    assert isinstance(vars(BaseClient)["_make_api_call"], PROXY)
    early.converse(modelId=MODEL, messages=MESSAGES)
    assert len(telemetry.spans()) == 1
    micrometrics.uninstrument()
    assert not isinstance(vars(BaseClient)["_make_api_call"], PROXY)
    early.converse(modelId=MODEL, messages=MESSAGES)
    assert len(telemetry.spans()) == 1


def test_instrumented_when_the_app_imports_boto3_after_instrument():
    script = textwrap.dedent("""
        import sys
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from demo_server import DemoServer
        import micrometrics

        exporter = InMemorySpanExporter()
        tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exporter))
        handle = micrometrics.instrument(tracer_provider=tp, exporter="none", metrics=[], instrumentations=["bedrock"])
        print("IMPORTED", "botocore" in sys.modules, sorted(handle.instrumentations))
        import boto3
        with DemoServer() as srv:
            c = boto3.client("bedrock-runtime", endpoint_url=srv.base_url, region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
            c.converse(modelId="amazon.nova-micro-v1:0", messages=[{"role": "user", "content": [{"text": "Hallo"}]}])
        handle.force_flush()  # the monitor thread ends the span after the call returned
        print("SPANS", [s.name for s in exporter.get_finished_spans()])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["IMPORTED False ['bedrock']", "SPANS ['chat amazon.nova-micro-v1:0']"]


def test_auto_instrumentation_entry_point_loads_the_instrumentor():
    from importlib.metadata import entry_points

    from micrometrics_instrumentation.bedrock import BedrockInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "micrometrics_bedrock"]
    assert ep.load() is BedrockInstrumentor
    assert list(BedrockInstrumentor().instrumentation_dependencies()) == ["botocore >= 1.34"]
    assert micrometrics.registry.library("bedrock") == "botocore"


# ---- Anthropic's own Bedrock client ----------------------------------------------------------------

ANTHROPIC_WEATHER = {"name": "get_weather", "description": "Current weather at a place.",
                     "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["plain", "stream", "tools"])
def test_anthropic_bedrock_client_reports_aws_bedrock_once(demo, telemetry, mode, is_async):
    """``anthropic.AnthropicBedrock`` speaks to Bedrock over httpx (its stream in the same event-stream framing):
    the Anthropic instrumentation traces it as ``aws.bedrock``, and boto3 is not involved, so there is one span."""
    import asyncio

    import anthropic

    telemetry.instrument(capture_content=True, metrics=[])
    opts = dict(aws_access_key="x", aws_secret_key="x", aws_region="us-east-1", base_url=demo.base_url, max_retries=0)
    question = "Wie ist das Wetter in Berlin?" if mode == "tools" else QUESTION
    kwargs = dict(model=MODEL, max_tokens=300, messages=[{"role": "user", "content": question}], stream=mode == "stream")
    if mode == "tools":
        kwargs["tools"] = [ANTHROPIC_WEATHER]

    def text_of(result):
        if mode == "stream":
            return [e.delta.text for e in result if e.type == "content_block_delta"]
        return [b.text for b in result.content if b.type == "text"]

    async def go():
        result = await anthropic.AsyncAnthropicBedrock(**opts).messages.create(**kwargs)
        return [e.delta.text async for e in result if e.type == "content_block_delta"] if mode == "stream" else text_of(result)

    text = "".join(asyncio.run(go()) if is_async else text_of(anthropic.AnthropicBedrock(**opts).messages.create(**kwargs)))
    assert text
    assert demo.requests[-1].route.endswith("/invoke-with-response-stream" if mode == "stream" else "/invoke")
    (span,) = telemetry.spans()
    assert span.name == SPAN
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert span.attributes[A.GEN_AI_RESPONSE_ID].startswith("msg_bdrk_demo")
    assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    (output,) = json.loads(span.attributes[A.GEN_AI_OUTPUT_MESSAGES])
    if mode == "tools":
        assert span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_call",)
        assert output["parts"][1] == {"type": "tool_call", "id": output["parts"][1]["id"], "name": "get_weather",
                                      "arguments": {"location": "Berlin", "unit": "celsius"}}
        assert json.loads(span.attributes[A.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "get_weather"
    else:
        assert output["parts"] == [{"type": "text", "content": text}]
