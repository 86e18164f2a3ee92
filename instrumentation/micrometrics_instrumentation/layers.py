"""The wrapper chain of one instrumented method, when another GenAI instrumentation wraps it too.

Each instrumentation of a client method (ours, ``opentelemetry-instrumentation-openai-v2``,
``-genai-openai``, OpenLLMetry, OpenInference, ...) adds one wrapt layer on the class, in the
order the instrumentors ran, and each layer opens its own span: two inference spans per call
and token metrics counted twice. The rule here: **micrometrics' span is the one span of the
call**, whatever the install order, because the micro metrics, the guards' retries (one span per
attempt) and the evaluation events live on it. So, on a method that also carries another GenAI
instrumentation's layer:

* our layer is moved under the innermost GenAI layer (next to the library's own method), and
* every GenAI layer above it is *gated*: while micrometrics is active (``runtime.current()``), the
  gate calls straight through to the next layer, so that instrumentation opens no span, records no
  metric and emits no event for the call; when micrometrics is not active it runs as before.

Only the layers change; their order among themselves is kept, so that the other instrumentation's
own ``uninstrument()`` (``opentelemetry.instrumentation.utils.unwrap``, which removes the
*outermost* layer) still removes its layer and not ours. ``remove`` takes our layer out of the
chain wherever it is and restores the other layers' own wrappers.
"""

from __future__ import annotations

from typing import Any, Callable

import wrapt

from micrometrics import runtime

#: Modules whose wrappers on an LLM or vector-store client method are GenAI instrumentations.
#: On the methods we wrap, an OpenTelemetry instrumentation layer can only be one of those.
GENAI_INSTRUMENTATION_MODULES = (
    "opentelemetry.instrumentation.",  # contrib (openai-v2, genai-*, google-genai, ...) and OpenLLMetry
    "openinference.instrumentation.",
    "openlit.",
)

#: Attribute on our own wrapper functions (set by the instrumentor when it wraps).
OURS = "_micrometrics_layer"
#: Attribute on a wrapper that opens the call's span (micrometrics.calls sets it).
OPENS_SPAN = "opens_span"
#: Attribute on a gate: the other instrumentation's wrapper it stands for.
_GATED = "_micrometrics_gates"

_LAYERS = (wrapt.FunctionWrapper, wrapt.BoundFunctionWrapper)


def _wrapper_module(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or getattr(getattr(fn, "func", None), "__module__", None)
    return module if isinstance(module, str) else ""


def is_ours(fn: Any) -> bool:
    return getattr(fn, OURS, False) is True


def is_genai(fn: Any) -> bool:
    """Another GenAI instrumentation's wrapper (gated or not)."""
    if getattr(fn, _GATED, None) is not None:
        return True
    return not is_ours(fn) and _wrapper_module(fn).startswith(GENAI_INSTRUMENTATION_MODULES)


def _gate(theirs: Callable) -> Callable:
    if getattr(theirs, _GATED, None) is not None:
        return theirs

    def gate(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if runtime.current() is None:
            return theirs(wrapped, instance, args, kwargs)
        return wrapped(*args, **kwargs)  # our layer, below, traces the call

    setattr(gate, _GATED, theirs)
    return gate


def _ungate(fn: Callable) -> Callable:
    return getattr(fn, _GATED, None) or fn


def chain(owner: Any, method: str) -> tuple[list[tuple[Callable, Any]], Any]:
    """The layers of ``owner.method``, outermost first, as (wrapper, enabled); and the library's own method under them."""
    layers = []
    obj = vars(owner).get(method)  # the class's own entry: getattr would bind it
    obj = getattr(owner, method, None) if obj is None else obj
    while isinstance(obj, _LAYERS):
        layers.append((obj._self_wrapper, obj._self_enabled))
        obj = obj.__wrapped__
    return layers, obj


def _rebuild(owner: Any, method: str, layers: list[tuple[Callable, Any]], bottom: Any) -> None:
    obj = bottom
    for wrapper, enabled in reversed(layers):
        obj = wrapt.FunctionWrapper(obj, wrapper, enabled)
    setattr(owner, method, obj)


def ours_innermost(owner: Any, method: str) -> bool:
    """Make micrometrics' span the call's only one (see the module doc); True when the chain changed."""
    layers, bottom = chain(owner, method)
    genai = [i for i, (fn, _) in enumerate(layers) if is_genai(fn)]
    ours = [i for i, (fn, _) in enumerate(layers) if is_ours(fn)]
    if not genai or not any(getattr(layers[i][0], OPENS_SPAN, False) for i in ours):
        return False  # nothing to gate, or our layer there opens no span (a stream helper's close)
    if ours[-1] > genai[-1] and all(getattr(layers[i][0], _GATED, None) is not None for i in genai):
        return False  # already so
    mine = [layers[i] for i in ours]
    rest = [layer for i, layer in enumerate(layers) if i not in ours]
    below = max(i for i, (fn, _) in enumerate(rest) if is_genai(fn)) + 1
    rest = [(_gate(fn) if is_genai(fn) else fn, enabled) for fn, enabled in rest]
    _rebuild(owner, method, rest[:below] + mine + rest[below:], bottom)
    return True


def remove(owner: Any, method: str) -> None:
    """Take our layer out of ``owner.method`` wherever it is; the other layers get their own wrappers back."""
    layers, bottom = chain(owner, method)
    if not any(is_ours(fn) for fn, _ in layers):
        return
    kept = [(_ungate(fn), enabled) for fn, enabled in layers if not is_ours(fn)]
    if not kept:
        setattr(owner, method, bottom)
        return
    _rebuild(owner, method, kept, bottom)
