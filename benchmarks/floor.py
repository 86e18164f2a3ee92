"""The floor: the least an OpenTelemetry-SDK instrumentation of an OpenAI chat call can do and still
emit what the GenAI conventions (v1.41) ask of every call. A benchmark mode, not a product.

What it does per call, each step the cheapest we know through the public API:

- wrap ``Completions.create`` with ``wrapt`` (as we and the peers do);
- start a CLIENT span ``chat {model}`` with the five request attributes known before the call
  (operation, provider, request model, server address and port), make it current, call;
- set the response attributes (id, model, finish reasons, input and output tokens) and end it;
- record ``gen_ai.client.operation.duration`` and two ``gen_ai.client.token.usage`` points;
- streamed: time to first chunk, one ``time_per_output_chunk`` point per later chunk, the span
  ended when the stream is exhausted (a generator, not a proxy: no ``close()``, no context manager).

No content, no cost, no micro metrics, no error handling beyond ending the span. Its added cost
over the uninstrumented client is what the OpenTelemetry SDK and the conventions cost by
themselves in this harness: issue 21's ratios to a peer are measured against it too.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from micrometrics_semconv import metrics as M  # the conventions' names and bucket advice (vocabulary, not our runtime)


class FloorInstrumentor:
    """``instrument(tracer_provider=, meter_provider=, logger_provider=)`` / ``uninstrument()``, like a peer's."""

    def __init__(self) -> None:
        self._original: Any = None

    def instrument(self, tracer_provider: Any, meter_provider: Any, logger_provider: Any = None) -> None:
        import wrapt
        from openai.resources.chat import completions
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        tracer = tracer_provider.get_tracer("floor")
        meter = meter_provider.get_meter("floor")
        seconds, counts = list(M.DURATION_BUCKETS), list(M.TOKEN_BUCKETS)
        duration = meter.create_histogram(M.GEN_AI_CLIENT_OPERATION_DURATION, unit="s", explicit_bucket_boundaries_advisory=seconds)
        tokens = meter.create_histogram(M.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}", explicit_bucket_boundaries_advisory=counts)
        ttfc = meter.create_histogram(M.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, unit="s", explicit_bucket_boundaries_advisory=seconds)
        tpoc = meter.create_histogram(M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK, unit="s", explicit_bucket_boundaries_advisory=seconds)
        attach, detach, in_context = otel_context.attach, otel_context.detach, trace.set_span_in_context
        perf = time.perf_counter

        def streamed(stream: Any, span: Any, dims: dict, start: float) -> Iterator[Any]:
            previous = response_id = model = None
            finish, usage = [], None
            for chunk in stream:
                now = perf()
                if previous is None:
                    response_id, model = chunk.id, chunk.model
                    ttfc.record(now - start, dims)
                else:
                    tpoc.record(now - previous, dims)
                previous = now
                for choice in chunk.choices:
                    if choice.finish_reason:
                        finish.append(choice.finish_reason)
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
            _finish(span, dims, start, finish, usage, response_id, model)

        def _finish(span: Any, dims: dict, start: float, finish: list, usage: Any, response_id: Any, model: Any) -> None:
            attrs: dict[str, Any] = {"gen_ai.response.finish_reasons": finish}
            if response_id:
                attrs["gen_ai.response.id"] = response_id
            if model:
                attrs["gen_ai.response.model"] = model
            if usage is not None:
                attrs["gen_ai.usage.input_tokens"] = usage.prompt_tokens
                attrs["gen_ai.usage.output_tokens"] = usage.completion_tokens
            span.set_attributes(attrs)
            duration.record(perf() - start, dims)
            if usage is not None:
                tokens.record(usage.prompt_tokens, {**dims, "gen_ai.token.type": "input"})
                tokens.record(usage.completion_tokens, {**dims, "gen_ai.token.type": "output"})
            span.end()

        def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
            model = kwargs.get("model")
            url = instance._client.base_url
            dims = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
                "server.address": url.host, "server.port": url.port or 443,
            }
            span = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=dims)
            token = attach(in_context(span))
            start = perf()
            try:
                response = wrapped(*args, **kwargs)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.end()
                raise
            finally:
                detach(token)
            if kwargs.get("stream") is True:
                return streamed(response, span, dims, start)
            _finish(span, dims, start, [c.finish_reason for c in response.choices], response.usage, response.id, response.model)
            return response

        self._original = completions.Completions.create
        wrapt.wrap_function_wrapper(completions, "Completions.create", wrapper)

    def uninstrument(self) -> None:
        from openai.resources.chat import completions

        if self._original is not None:
            completions.Completions.create = self._original
            self._original = None
