"""The public metric API: ``MicroMetric``, ``Result``, ``@micro_metric`` and ``CallView``."""

from __future__ import annotations

import datetime as _dt
import math
import re
import threading
import time
from time import perf_counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from micrometrics.records import Call, CallRecord, Document, InferenceRecord, RetrievalRecord, EmbeddingsRecord, ToolRecord, message_text
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V

MODES = ("async", "guard")
#: How fast a metric decides: ``realtime`` (milliseconds, fit for a guard on the request path) or
#: ``async`` (seconds, a model call or a re-ask: a monitor, sampled, or offline).
LATENCY_CLASSES = ("realtime", "async")
ON_FAIL = ("return", "raise")
#: Labels every metric may produce; a metric may add domain labels (``match``/``mismatch``).
STANDARD_LABELS = ("pass", "fail", "undetermined", "error", "timeout")
PASSING_LABELS = frozenset({"pass", "match"})
FAILING_LABELS = frozenset({"fail", "mismatch"})
OPERATIONS = (
    V.OPERATION_CHAT,
    V.OPERATION_TEXT_COMPLETION,
    V.OPERATION_GENERATE_CONTENT,
    V.OPERATION_EMBEDDINGS,
    V.OPERATION_RETRIEVAL,
    # Agent work and tool runs: a metric applies to them only when asked (``applies_to=``), e.g. on an agent's final answer.
    V.OPERATION_INVOKE_AGENT,
    V.OPERATION_INVOKE_WORKFLOW,
    V.OPERATION_EXECUTE_TOOL,
)
INFERENCE_OPERATIONS = (V.OPERATION_CHAT, V.OPERATION_TEXT_COMPLETION, V.OPERATION_GENERATE_CONTENT)


#: A metric name: lowercase snake case, 1-64 characters, starting with a letter. It becomes the
#: ``micrometrics.<name>.`` attribute prefix and the ``gen_ai.evaluation.name`` of its results and metric points.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: Result fields written under ``micrometrics.<name>.``: a ``details`` key may not take their place.
RESERVED_DETAIL_KEYS = frozenset({A.RESULT_LABEL, A.RESULT_SCORE, A.RESULT_PASSED, A.RESULT_EXPLANATION, A.RESULT_COST})


def _emitted_prefixes() -> frozenset[str]:
    """The ``<x>`` of every ``micrometrics.<x>...`` name we emit (read from semconv, so new ones are reserved too)."""
    out = set()
    for module in (A, E, M):
        for value in vars(module).values():
            if isinstance(value, str) and value.startswith(A.MICROMETRIC_ATTRIBUTE_PREFIX):
                head = value[len(A.MICROMETRIC_ATTRIBUTE_PREFIX) :].split(".")[0]
                if head:
                    out.add(head)
    return frozenset(out)


#: Names a metric may not take: each is (or may become) one of our own ``micrometrics.<x>.`` namespaces.
RESERVED_NAMES = _emitted_prefixes() | frozenset(
    {"micrometrics", "guard", "attempt", "internal", "evaluation", "evaluations", "metric", "score", "label", "passed", "explanation"}
)


def check_name(owner: str, name: Any) -> None:
    """ValueError unless ``name`` is a valid, unreserved metric name."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{owner}: name={name!r} is not allowed; a metric name is lowercase snake case matching {NAME_PATTERN.pattern!r} (e.g. 'polite_tone')"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"{owner}: name={name!r} is reserved for micrometrics' own attributes; reserved: {', '.join(sorted(RESERVED_NAMES))}")


class DetailKeyDropped(ValueError):
    """A ``details`` key that would overwrite a result field reached emission: dropped, and counted under this type."""


def check_details(details: Any) -> None:
    """TypeError/ValueError unless ``details`` maps non-empty str keys, none of them a result field."""
    if not isinstance(details, Mapping):
        raise TypeError(f"Result.details must be a mapping of str to values, got {type(details).__name__}")
    for key in details:
        if not isinstance(key, str) or not key:
            raise TypeError(f"Result.details keys must be non-empty str, got {key!r}")
        if key in RESERVED_DETAIL_KEYS:
            raise ValueError(f"Result.details key {key!r} is reserved (it would overwrite the result's own field); reserved: {', '.join(sorted(RESERVED_DETAIL_KEYS))}")


class _ThreadState(threading.local):
    #: A class default: elsewhere than on the monitor thread the read finds it, instead of raising and catching
    #: AttributeError (about 0.3 µs, on every call's path).
    state: "_MonitorState | None" = None


_monitor_thread = _ThreadState()


#: How long the monitor thread naps at a yield point while it keeps up with the calls. A bare
#: ``time.sleep(0)`` releases the interpreter lock but usually takes it back before a waiting
#: thread has woken up; a nap this short (plus the kernel's timer slack) lets it in for sure.
POLITE_NAP_S = 20e-6
#: The monitor thread yields at a yield point only once it has held the interpreter lock this
#: long since it last let go: a caller whose answer arrives waits at most about this long (plus
#: the step in progress; the interpreter's own switch interval is 5 ms), and short steps do not
#: pay a switch each. A switch costs more than its system call: the other thread evicts the
#: worker's caches. At 100 µs (about eight naps per default evaluation) the naps and the colder
#: detection cost ~270 µs of CPU per call more than at 1 ms (benchmarks/profile_call.py, issue 21).
MONITOR_SLICE_S = 1e-3


class _MonitorState:
    __slots__ = ("nap", "since")

    def __init__(self) -> None:
        self.nap = 0.0  # seconds to nap at a yield point (0: release and retake at once)
        self.since = 0.0  # perf_counter() when this thread last (re)took the lock


def yield_point() -> None:
    """Let the application's threads run: a long metric calls it between its steps.

    On the monitor thread it releases the interpreter lock, once the thread has held it for
    ``MONITOR_SLICE_S``, so that a caller whose answer just arrived does not wait for the
    evaluation (up to the 5 ms switch interval). While the monitors keep up with the calls
    it naps (``POLITE_NAP_S``), which hands the lock over for sure; with a backlog it only
    releases it (``time.sleep(0)``), so that evaluation still gets its share. Elsewhere
    (guards, offline runs) it does nothing.
    """
    state = _monitor_thread.state
    if state is not None and perf_counter() - state.since >= MONITOR_SLICE_S:
        time.sleep(state.nap)
        state.since = perf_counter()


def mark_monitor_thread() -> None:
    _monitor_thread.state = _MonitorState()


def on_monitor_thread() -> bool:
    return _monitor_thread.state is not None


def set_monitor_backlog(behind: bool) -> None:
    """The monitor thread says, per job, whether it is behind (greedy) or keeping up (polite)."""
    _monitor_thread.state.nap = 0.0 if behind else POLITE_NAP_S


def restart_slice() -> None:
    """The monitor thread has just taken the lock back after blocking (waiting for work, or for
    the evaluator process): its slice starts now. Elsewhere it does nothing."""
    state = _monitor_thread.state
    if state is not None:
        state.since = perf_counter()


@dataclass(frozen=True, slots=True)
class Result:
    """One evaluation of one metric on one call.

    ``passed`` defaults from the label: True for pass/match, False for fail/mismatch,
    None otherwise (undetermined, error, timeout).
    """

    label: str
    score: float | None = None
    passed: bool | None = None
    explanation: str | None = None
    details: Mapping[str, Any] | None = None
    #: Label ``error``: the exception's text, which may quote content; exported only with capture on, through ``redact``.
    error_message: str | None = field(default=None, repr=False, compare=False)
    #: USD the evaluation spent (``micrometrics.<name>.cost``): micrometrics adds the cost of the instrumented
    #: LLM calls the metric made (an LLM judge); a metric that pays otherwise may set its own.
    cost: float | None = field(default=None, compare=False)
    #: Label ``error``: the qualified class name of what the metric raised (low cardinality: the
    #: ``error.type`` of its ``gen_ai.evaluation.result``); set by micrometrics, None for a metric's own Result.
    error_type: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise TypeError(f"Result.label must be a non-empty str such as 'pass' or 'fail', got {self.label!r}")
        if self.passed is None:
            if self.label in PASSING_LABELS:
                object.__setattr__(self, "passed", True)
            elif self.label in FAILING_LABELS:
                object.__setattr__(self, "passed", False)
        if self.score is not None:
            if isinstance(self.score, bool) or not isinstance(self.score, (int, float)) or math.isnan(self.score):
                raise TypeError(f"Result.score must be a number, got {self.score!r}")
            object.__setattr__(self, "score", float(self.score))
        if self.details is not None:
            check_details(self.details)
        if self.cost is not None:
            if isinstance(self.cost, bool) or not isinstance(self.cost, (int, float)) or not 0 <= self.cost < math.inf:
                raise TypeError(f"Result.cost must be a finite number of USD >= 0, got {self.cost!r}")
            object.__setattr__(self, "cost", float(self.cost))

    @property
    def failed(self) -> bool:
        return self.passed is False


class CallView:
    """Read-only view of a call for metrics: what was asked, what came back, the context.

    Metrics always see the content in-process, whether or not content export is on.
    """

    __slots__ = ("_r", "_c")

    def __init__(self, record: CallRecord, call: Call | None = None) -> None:
        """``call``: the runtime's state of the call (attempt, context, retrieved documents); none: a record alone."""
        self._r = record
        self._c = call if call is not None else Call(record=record)

    operation = property(lambda self: self._r.operation)
    provider = property(lambda self: self._r.provider)
    model = property(lambda self: self._r.response_model or self._r.model)
    request_model = property(lambda self: self._r.model)
    attempt = property(lambda self: self._c.attempt)
    finish_reasons = property(lambda self: tuple(self._r.finish_reasons))
    params = property(lambda self: MappingProxyType(self._r.params))

    @property
    def context(self) -> Mapping[str, Any]:
        return self._c.context

    @property
    def usage(self) -> Mapping[str, int | None]:
        r = self._r
        return MappingProxyType(
            {
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cache_read_input_tokens": r.cache_read_tokens,
                "cache_creation_input_tokens": r.cache_creation_tokens,
                "reasoning_output_tokens": r.reasoning_tokens,
            }
        )

    @property
    def input_messages(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(getattr(self._r, "input_messages", ()))

    @property
    def system_instructions(self) -> str:
        parts = getattr(self._r, "system_instructions", ())
        return "\n".join(p.get("content") or "" for p in parts if p.get("type") == "text")

    @property
    def output_messages(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(getattr(self._r, "output_messages", ()))

    @property
    def output_text(self) -> str:
        """The answer's text: a model's or an agent's first choice, a tool's result text."""
        r = self._r
        return r.output_text if isinstance(r, (InferenceRecord, ToolRecord)) else ""

    @property
    def output_type(self) -> str | None:
        return getattr(self._r, "output_type", None)

    @property
    def tool_definitions(self) -> tuple[Mapping[str, Any], ...]:
        """The tools the request offered, as the conventions' tool definitions (``type``, ``name``, ``parameters``)."""
        return tuple(getattr(self._r, "tool_definitions", None) or ())

    def user_texts(self) -> list[str]:
        """Text of the user turns, oldest first."""
        return [message_text(m) for m in getattr(self._r, "input_messages", ()) if m.get("role") == "user"]

    @property
    def documents(self) -> tuple[Document, ...]:
        r = self._r
        if isinstance(r, RetrievalRecord):
            return tuple(r.documents)
        return ()

    @property
    def retrieved_documents(self) -> tuple[Document, ...]:
        """Inference calls: the documents retrieved before them in the same ``context()`` block or trace."""
        return self._c.retrieved_documents

    @property
    def query(self) -> str | None:
        return getattr(self._r, "query", None)

    @property
    def data_source(self) -> str | None:
        return getattr(self._r, "data_source", None)

    @property
    def score_kind(self) -> str | None:
        return getattr(self._r, "score_kind", None)

    @property
    def embedding_inputs(self) -> tuple[str, ...]:
        r = self._r
        return tuple(r.inputs) if isinstance(r, EmbeddingsRecord) else ()

    def __repr__(self) -> str:
        return f"<CallView {self.operation} {self.provider} {self.model}>"


def _check_choice(owner: str, option: str, value: Any, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{owner}: {option}={value!r} is not allowed; use one of {', '.join(map(repr, allowed))}")


class MicroMetric:
    """Base class of every micro metric.

    Subclass it, set ``name`` (and ``applies_to``), and implement ``evaluate(call)``.
    ``mode="async"`` (default) evaluates off the request path as a monitor;
    ``mode="guard"`` evaluates on the request path and may retry the call
    (``max_retries``) and then return or raise (``on_fail``).
    """

    name: str = ""
    applies_to: tuple[str, ...] = INFERENCE_OPERATIONS
    mode: str = "async"
    #: ``realtime``: decides in milliseconds without I/O, so it may run as a guard; ``async``: calls a
    #: model or waits (an LLM judge), so it runs as a monitor only. Custom metrics default to realtime.
    latency_class: str = "realtime"
    sample_rate: float = 1.0
    #: Guards only: retries after a failing result, and what to do after the last one.
    max_retries: int = 0
    on_fail: str = "return"
    #: Guards only: time budget; a guard over budget reports ``timeout`` and never retries.
    budget_s: float = 0.05
    #: Monitors only: seconds an evaluation may take before it is ``timeout`` and the metric quarantined, when longer
    #: than ``instrument(evaluation_deadline_s=...)`` (a metric that waits for a model: LlmJudge, AnswerConsistency).
    deadline_s: float | None = None
    #: Streams: a guard with this set decides on the first N characters, before any reach the caller.
    stream_prefix_chars: int | None = None
    cost_per_failure: float | None = None
    currency: str = "USD"
    owner: str | None = None
    review_by: _dt.date | None = None
    #: Monitors only: True lets micrometrics evaluate the metric in its evaluator process,
    #: off the application's interpreter lock, when ``instrument(evaluator="process")``.
    #: Set it on a metric whose class is importable by module path, whose
    #: instance pickles, and which keeps no state between calls that matters: the process
    #: works on a copy. Every built-in metric is process-safe.
    process_safe: bool = False
    #: The ``micrometrics.context(...)`` keys this metric reads; ``context()`` warns once on keys no active metric reads.
    context_keys: tuple[str, ...] = ()

    #: Whether ``evaluate`` reads ``call.retrieved_documents``: when no active metric does,
    #: micrometrics remembers no retrieved documents at all. True unless a metric says otherwise,
    #: so a custom groundedness metric works as written; built-ins that do not read them say False.
    reads_retrieved_documents: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A bad class-level name is refused where it is written, not at instrument().
        name = cls.__dict__.get("name")
        if isinstance(name, str) and name:
            check_name(cls.__name__, name)

    def __init__(
        self,
        *,
        name: str | None = None,
        mode: str | None = None,
        applies_to: Iterable[str] | None = None,
        sample_rate: float | None = None,
        max_retries: int | None = None,
        on_fail: str | None = None,
        budget_s: float | None = None,
        cost_per_failure: float | None = None,
        currency: str | None = None,
        owner: str | None = None,
        review_by: _dt.date | str | None = None,
    ) -> None:
        if name is not None:
            check_name(type(self).__name__, name)
            self.name = name
        if mode is not None:
            self.mode = mode
        if applies_to is not None:
            self.applies_to = (applies_to,) if isinstance(applies_to, str) else tuple(applies_to)
        if sample_rate is not None:
            self.sample_rate = sample_rate
        if max_retries is not None:
            self.max_retries = max_retries
        if on_fail is not None:
            self.on_fail = on_fail
        if budget_s is not None:
            self.budget_s = budget_s
        if cost_per_failure is not None:
            self.cost_per_failure = cost_per_failure
        if currency is not None:
            self.currency = currency
        if owner is not None:
            self.owner = owner
        if review_by is not None:
            self.review_by = _dt.date.fromisoformat(review_by) if isinstance(review_by, str) else review_by

    def evaluate(self, call: CallView) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.evaluate(call) must return a micrometrics.Result")

    def prepare(self) -> None:
        """Load what evaluation needs (models, profiles). ``instrument()`` calls it for guards,
        so their first decision is not spent loading; monitors load on first use."""

    def applies(self, call: CallView) -> bool:
        """False skips this call without a result (e.g. JsonFormat on a call that did not ask for JSON)."""
        return True

    def corrective_instruction(self, call: CallView, result: Result) -> str | None:
        """A system instruction for the retry of a failed guard; None retries unchanged."""
        return None

    def validate(self) -> None:
        """Raise ValueError/TypeError for a bad configuration; called by ``instrument()``."""
        owner = type(self).__name__
        check_name(owner, self.name)
        _check_choice(owner, "mode", self.mode, MODES)
        _check_choice(owner, "latency_class", self.latency_class, LATENCY_CLASSES)
        if self.mode == "guard" and self.latency_class != "realtime":
            raise ValueError(f"{owner}: mode='guard' needs a realtime metric; latency_class={self.latency_class!r} runs as mode='async' only")
        _check_choice(owner, "on_fail", self.on_fail, ON_FAIL)
        for op in self.applies_to:
            _check_choice(owner, "applies_to", op, OPERATIONS)
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"{owner}: sample_rate={rate!r} must be a number between 0 and 1")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"{owner}: max_retries={self.max_retries!r} must be an int >= 0")
        if isinstance(self.budget_s, bool) or not isinstance(self.budget_s, (int, float)) or not 0 < self.budget_s < math.inf:
            raise ValueError(f"{owner}: budget_s={self.budget_s!r} must be a finite positive number of seconds, e.g. 0.05")
        if self.cost_per_failure is not None and (
            isinstance(self.cost_per_failure, bool) or not isinstance(self.cost_per_failure, (int, float))
            or not 0 <= self.cost_per_failure < math.inf
        ):
            raise ValueError(f"{owner}: cost_per_failure={self.cost_per_failure!r} must be a number >= 0")
        if self.review_by is not None and not isinstance(self.review_by, _dt.date):
            raise TypeError(f"{owner}: review_by={self.review_by!r} must be a date or an ISO date string")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, mode={self.mode!r})"


class _FunctionMetric(MicroMetric):
    def __init__(self, fn: Callable[[CallView], Result], **options: Any) -> None:
        self._fn = fn
        super().__init__(**options)

    def evaluate(self, call: CallView) -> Result:
        return self._fn(call)


def micro_metric(
    fn: Callable[[CallView], Result] | None = None,
    *,
    name: str | None = None,
    applies_to: Iterable[str] | None = None,
    mode: str = "async",
    context_keys: Iterable[str] = (),
    **options: Any,
) -> Any:
    """Turn ``fn(call) -> Result`` into a MicroMetric instance.

    ``@micro_metric`` or ``@micro_metric(name="polite", mode="guard", max_retries=1)``;
    ``context_keys``: the ``micrometrics.context(...)`` keys the function reads.
    """

    def build(f: Callable[[CallView], Result]) -> MicroMetric:
        if not callable(f):
            raise TypeError(f"@micro_metric decorates a function taking a call, got {f!r}")
        metric = _FunctionMetric(f, name=name or f.__name__, applies_to=applies_to, mode=mode, **options)
        if isinstance(context_keys, str) or not all(isinstance(k, str) for k in context_keys):
            raise TypeError(f"@micro_metric(context_keys={context_keys!r}) takes a list of context key names")
        metric.context_keys = tuple(context_keys)
        metric.validate()
        return metric

    return build(fn) if fn is not None else build
