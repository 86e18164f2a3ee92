"""micrometrics instrumentation for the OpenAI Agents SDK (``openai-agents``, imported as ``agents``).

When the application imports ``agents``, a tracing processor (processor.py) is added to the SDK's trace
provider, beside the application's own processors (added, never replacing: the SDK's exporter to OpenAI stays
as the application configured it). Agent runs become ``invoke_agent {agent}`` spans, function tools
``execute_tool {tool}`` spans, model calls one inference span each: the OpenAI instrumentation's (with its
guards) when the model is an OpenAI client, else ours from the SDK's generation span. ``set_trace_processors``
keeps our processor in the list it sets; ``uninstrument()`` removes it. Handoffs and guardrails open no span
of their own (no GenAI operation for them in v1.41): the agent a run hands off to is its own ``invoke_agent``
span, and a guardrail's tripwire fails the agent span with the SDK's exception (docs/frameworks.md).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from micrometrics import internal_errors
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.openai_agents.processor import MicrometricsProcessor

__all__ = ["OpenAIAgentsInstrumentor"]


class OpenAIAgentsInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["openai_agents"]
    instruments = ("openai-agents >= 0.2",)

    processor: MicrometricsProcessor | None = None

    def targets(self) -> Iterable[Target]:
        return (("agents", "tracing.provider.SynchronousMultiTracingProcessor", "set_processors", self._keep_ours()),)

    def _keep_ours(self) -> Callable:
        def set_processors(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
            try:
                processor = self.processor
                if processor is not None and processor.active:
                    processors = list(args[0] if args else kwargs.pop("processors"))
                    if not any(p is processor for p in processors):
                        processors.append(processor)  # the application replaced its processors: ours stays beside them
                    args = (processors, *args[1:])
            except Exception as exc:
                internal_errors.report("request", exc)
            return wrapped(*args, **kwargs)

        return set_processors

    def _on_import(self, generation: list, targets: list[Target]) -> Callable[[Any], None]:
        wrap = super()._on_import(generation, targets)

        def hook(module: Any) -> None:
            wrap(module)
            try:
                if self._hooks is generation and self._usable and self.processor is None:
                    self.processor = MicrometricsProcessor()
                    module.tracing.add_trace_processor(self.processor)
            except Exception as exc:  # never fail the application's import
                internal_errors.report("instrument", exc)

        return hook

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        processor, self.processor = self.processor, None
        if processor is None:
            return
        processor.active = False  # inert even where it cannot be removed (another provider, another SDK version)
        try:
            import sys

            tracing = sys.modules.get("agents.tracing")
            provider = tracing.get_trace_provider() if tracing is not None else None
            current = getattr(getattr(provider, "_multi_processor", None), "_processors", None)
            if isinstance(current, tuple) and any(p is processor for p in current):
                provider.set_processors([p for p in current if p is not processor])
        except Exception as exc:
            internal_errors.report("instrument", exc)
