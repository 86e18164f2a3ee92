"""Amazon Bedrock runtime calls (boto3 ``bedrock-runtime``) -> call records. Translation only: no OpenTelemetry here.

A translator reads the operation's parameters as botocore received them (``modelId``,
``messages``, ``body``, ...) and its parsed response: a dict, whose InvokeModel ``body`` the
instrumentor has read already (its bytes are in ``read_bodies``) and whose stream it hands the
accumulator as an iterator of events.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from micrometrics.records import CallRecord, EmbeddingsRecord, InferenceRecord
from micrometrics.reading import is_stream, per_client, server
from micrometrics_instrumentation.bedrock import bodies, converse
from micrometrics_instrumentation.bedrock.converse import count
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: InvokeModel bodies the instrumentor read for the application (handing it a fresh, unread body): their bytes.
read_bodies: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()

#: The HTTP headers of an InvokeModel response that count its tokens, whatever the model family.
_INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
_OUTPUT_TOKENS_HEADER = "x-amzn-bedrock-output-token-count"
#: Where each stream chunk of InvokeModelWithResponseStream may carry the invocation's token counts.
_INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"


@per_client
def endpoint(client: Any) -> tuple[str | None, int | None]:
    """(server.address, server.port) of a boto3 client: its endpoint URL (``endpoint_url=`` or the region's)."""
    return server(getattr(getattr(client, "meta", None), "endpoint_url", None))


def _model(kwargs: dict) -> str | None:
    model = kwargs.get("modelId")
    return model if isinstance(model, str) and model else None


class ConverseTranslator(Translator):
    """``converse`` and ``converse_stream``."""

    def __init__(self, streams: bool = False) -> None:
        self.streams = streams

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        host, port = endpoint(instance)
        return InferenceRecord(
            operation=V.OPERATION_CHAT,
            provider=V.PROVIDER_AWS_BEDROCK,
            model=_model(kwargs),
            server_address=host,
            server_port=port,
            params=converse.inference_params(kwargs.get("inferenceConfig")),
            stream=self.streams,
            input_messages=converse.input_messages(kwargs.get("messages")),
            system_instructions=converse.system_parts(kwargs.get("system")),
            tool_definitions=converse.tool_definitions(kwargs.get("toolConfig")),
            output_type=converse.output_type(kwargs.get("outputConfig")),
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        converse.apply_output(record, response)

    def accumulator(self, record: InferenceRecord, stream: Any) -> converse.EventFold | None:
        return converse.EventFold(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        """The request with ``instruction`` as one more system block, the Converse way."""
        system = kwargs.get("system")
        blocks = list(system) if isinstance(system, (list, tuple)) else [{"text": system}] if isinstance(system, str) and system else []
        return {**kwargs, "system": [*blocks, {"text": instruction}]}


def _request_body(kwargs: dict) -> dict | None:
    return bodies.parse(kwargs.get("body"))


class InvokeModelTranslator(Translator):
    """``invoke_model`` and ``invoke_model_with_response_stream``: the model family's own body."""

    def __init__(self, streams: bool = False) -> None:
        self.streams = streams

    def request(self, instance: Any, args: tuple, kwargs: dict) -> CallRecord:
        host, port = endpoint(instance)
        model = _model(kwargs)
        body = _request_body(kwargs)
        family = bodies.family(model, body)
        common = dict(operation=family.operation, provider=V.PROVIDER_AWS_BEDROCK, model=model, server_address=host, server_port=port)
        record: CallRecord = EmbeddingsRecord(**common) if family.embeddings else InferenceRecord(**common, stream=self.streams)
        if body is not None:
            family.request(record, body)
        return record

    def response(self, record: CallRecord, response: Any) -> None:
        if not isinstance(response, dict):
            return
        body = bodies.parse(_bytes_read(response.get("body")))
        if body is not None:
            bodies.family(record.model, body).response(record, body)
        meta = response.get("ResponseMetadata")
        headers = meta.get("HTTPHeaders") if isinstance(meta, dict) else None
        if isinstance(headers, dict):  # the counts Bedrock reports for every model family
            if record.input_tokens is None:
                record.input_tokens = _header_count(headers.get(_INPUT_TOKENS_HEADER))
            if record.output_tokens is None and isinstance(record, InferenceRecord):
                record.output_tokens = _header_count(headers.get(_OUTPUT_TOKENS_HEADER))

    def accumulator(self, record: CallRecord, stream: Any) -> "ChunkAccumulator | None":
        return ChunkAccumulator(record) if isinstance(record, InferenceRecord) and is_stream(stream) else None

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict] | None:
        """None for a body given as a file: the first attempt consumed it, so there is nothing to resend (the app keeps its answer)."""
        body = kwargs.get("body")
        if body is not None and not isinstance(body, (bytes, bytearray, str)):
            return None
        return super().retry(args, kwargs, instruction)

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        """The body with ``instruction`` where the family takes one (a system prompt, a preamble); raw prompts are resent as they are."""
        raw = kwargs.get("body")
        body = bodies.parse(raw)
        if body is None:
            return kwargs
        changed = bodies.family(_model(kwargs), body).with_instruction(body, instruction)
        if changed is None:
            return kwargs
        encoded = json.dumps(changed, ensure_ascii=False)
        return {**kwargs, "body": encoded if isinstance(raw, str) else encoded.encode("utf-8")}


def _bytes_read(body: Any) -> bytes | None:
    try:
        return read_bodies.get(body)
    except TypeError:  # not weakly referenceable: not a body we read
        return None


def _header_count(value: Any) -> int | None:
    try:
        return count(int(value)) if isinstance(value, str) else None
    except ValueError:
        return None


class ChunkAccumulator:
    """Folds InvokeModelWithResponseStream events (``{"chunk": {"bytes": <model JSON>}}``) through the family's fold."""

    __slots__ = ("record", "fold", "metrics")

    def __init__(self, record: InferenceRecord) -> None:
        self.record = record
        self.fold: Any = None  # chosen at the first chunk: by model id, else by the chunk's shape
        self.metrics: dict | None = None

    @property
    def text(self) -> str:
        return self.fold.text if self.fold is not None else ""

    @property
    def non_text(self) -> bool:
        return self.fold is not None and self.fold.non_text is True

    def add(self, event: Any) -> None:
        chunk = event.get("chunk") if type(event) is dict else None
        data = chunk.get("bytes") if type(chunk) is dict else None
        if type(data) is not bytes:
            return
        payload = bodies.parse(data)
        if payload is None:
            return
        if self.fold is None:
            self.fold = bodies.family(self.record.model, payload).fold(self.record)
        self.fold.add(payload)
        metrics = payload.get(_INVOCATION_METRICS)
        if type(metrics) is dict:
            self.metrics = metrics

    def apply(self) -> None:
        if self.fold is not None:
            self.fold.apply()
        if self.metrics is not None:  # Bedrock's own counts, when the family's chunks carried none
            record = self.record
            if record.input_tokens is None:
                record.input_tokens = count(self.metrics.get("inputTokenCount"))
            if record.output_tokens is None:
                record.output_tokens = count(self.metrics.get("outputTokenCount"))
