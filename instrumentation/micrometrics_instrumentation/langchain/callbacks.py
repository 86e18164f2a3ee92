"""The callback handler ``instrument()`` adds to every LangChain callback manager: LangChain's run events -> spans.

Which runs are spans (the tree stays readable):

* a LangGraph graph (``create_react_agent``, a ``StateGraph``, LangChain's ``create_agent``) or an
  ``AgentExecutor`` is ``invoke_agent {name}``; a graph run inside a tool (an agent called as a tool) is one too;
* a top-level chain that is no agent (an LCEL ``prompt | model | parser``) is ``invoke_workflow {name}``;
* every tool is ``execute_tool {name}``;
* every chat model or LLM call is one inference span (``operations.begin_inference``): the instrumented SDK's
  below it (``ChatOpenAI`` over ``openai``: its guards retry), else ours, opened after the fact;
* the chains inside an agent or workflow (graph nodes, ``RunnableSequence`` steps, prompts, parsers) are not spans:
  their children hang under the nearest span above them.

A span run's context is attached in its start callback and detached in its end callback, so that what runs
inside (an SDK call, a retriever, a raw client in a node) is its child; the handler runs inline
(``run_inline``), in the caller's context, sync or async. Nothing here raises into the application: every
callback reports its own failures, and ``abandon`` closes the runs of an event another handler
(``raise_error=True``) broke off. Open runs are bounded (``max_runs``): one that never ends is evicted.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import OrderedDict
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import context as otel_context

from micrometrics import callcontext, internal_errors, operations
from micrometrics_instrumentation.langchain import translators as T

__all__ = ["MicrometricsCallbackHandler", "HANDLER"]

AGENT, WORKFLOW, TOOL, MODEL, CHAIN, CANDIDATE = "agent", "workflow", "tool", "model", "chain", "candidate"
#: The tag LangGraph gives each node run of a graph: a run whose child carries it is a graph.
_GRAPH_STEP = "graph:step:"


class _State:
    """One open LangChain run: its span (if it is one), the context its children start in, what it attached."""

    __slots__ = ("kind", "run", "pending", "record", "ctx", "graph", "token", "conv_token", "attached", "start_ns",
                 "first_token", "inputs", "metadata", "serialized", "params", "chat", "name", "tool_call")

    def __init__(self, kind: str, ctx: Any, graph: bool) -> None:
        self.kind, self.ctx, self.graph = kind, ctx, graph
        self.run = self.pending = self.record = self.token = self.conv_token = self.attached = None
        self.first_token = self.inputs = self.metadata = self.serialized = self.params = self.name = self.tool_call = None
        self.chat = False
        self.start_ns = time.time_ns()


def _guarded(method: Any) -> Any:
    """A callback that never raises into LangChain (which would re-raise it with ``raise_error``)."""

    def callback(self: "MicrometricsCallbackHandler", *args: Any, **kwargs: Any) -> None:
        if not self.active:
            return
        try:
            method(self, *args, **kwargs)
        except Exception as exc:
            internal_errors.report("langchain_callback", exc)

    callback.__name__ = method.__name__
    callback.__doc__ = method.__doc__
    return callback


class MicrometricsCallbackHandler(BaseCallbackHandler):
    """LangChain's callbacks -> agent, workflow, tool and inference spans (see the module docstring)."""

    #: Called in the caller's context, not in an executor: the context a callback attaches is the one the run runs in.
    run_inline = True
    raise_error = False
    #: Retrievers have their own spans (``BaseRetriever.invoke`` is wrapped).
    ignore_retriever = True
    ignore_custom_event = True
    #: Open runs kept at most; beyond, the oldest (a run that never ended) is ended and forgotten.
    max_runs = 10_000

    def __init__(self) -> None:
        super().__init__()
        self.active = True
        self._runs: OrderedDict[UUID, _State] = OrderedDict()
        #: Ended runs whose context is still attached where they started (async: see ``_detach``).
        self._unreleased: OrderedDict[UUID, _State] = OrderedDict()
        self._lock = threading.Lock()

    # ---- run state ------------------------------------------------------------------------------

    def _get(self, run_id: Any) -> _State | None:
        if run_id is None:
            return None
        with self._lock:
            return self._runs.get(run_id)

    def _pop(self, run_id: Any) -> _State | None:
        with self._lock:
            return self._runs.pop(run_id, None)

    def _put(self, run_id: Any, state: _State) -> None:
        evicted = []
        with self._lock:
            self._runs[run_id] = state
            while len(self._runs) > self.max_runs:
                evicted.append(self._runs.popitem(last=False)[1])
        for old in evicted:  # never ended (its end event was lost): end its span where it stands
            if old.run is not None:
                old.run.end()

    def open_runs(self) -> int:
        with self._lock:
            return len(self._runs)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._unreleased.clear()

    @staticmethod
    def _parent_ctx(parent: _State | None) -> Any:
        return parent.ctx if parent is not None else otel_context.get_current()

    # ---- attaching a run's context in the caller's context ---------------------------------------

    @staticmethod
    def _attach(state: _State, ctx: Any) -> None:
        state.attached, state.token = ctx, otel_context.attach(ctx)

    def _detach(self, run_id: Any, state: _State) -> None:
        """Give back what the start callback attached, if this is the context it attached in. Else keep it for
        ``release``: LangChain's async end callbacks run in a task of their own (``@shielded``), a copy of the
        caller's context; the wrapped run manager's end method releases it in the caller's context once that
        task is done."""
        if not _reset(state):
            with self._lock:
                self._unreleased[run_id] = state
                while len(self._unreleased) > self.max_runs:
                    self._unreleased.popitem(last=False)

    def release(self, run_id: Any) -> None:
        """An async run's end event is done: give back its context, here in the caller's context."""
        with self._lock:
            state = self._unreleased.get(run_id)
        if state is not None and _reset(state):  # else still attached where it started (release_here)
            with self._lock:
                self._unreleased.pop(run_id, None)

    def release_here(self) -> None:
        """Give back every ended run's context attached in the current context (an async model's ``agenerate`` ends
        its calls through ``asyncio.gather``: in tasks of their own, whose run managers cannot release it)."""
        while True:
            current = otel_context.get_current()
            with self._lock:
                run_id = next((rid for rid, st in self._unreleased.items() if st.attached is current), None)
                state = self._unreleased.pop(run_id) if run_id is not None else None
            if state is None or not _reset(state):
                return

    # ---- chains: agents, workflows, and the chains inside them ---------------------------------------

    @_guarded
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       tags: Any = None, metadata: Any = None, **kwargs: Any) -> None:
        parent = self._get(parent_run_id)
        if parent is not None and parent.kind == CANDIDATE and _is_graph_step(tags):
            self._promote(parent)
        name = T.run_name(kwargs.get("name"), serialized)
        agent = T.is_agent(name, serialized, metadata)
        if parent is None:  # a top-level chain: an agent, or a workflow
            self._open_run(run_id, parent, name, inputs, metadata, agent)
        elif parent.kind == TOOL and agent and parent.graph:
            # Under a tool of a graph every chain inherits the graph's metadata: a graph only if its children are steps.
            state = _State(CANDIDATE, parent.ctx, parent.graph)
            state.name, state.inputs = name, inputs
            self._put(run_id, state)
        elif agent and not parent.graph:  # a graph under a workflow or under a tool outside any graph
            self._open_run(run_id, parent, name, inputs, metadata, agent)
        else:  # a chain inside an agent, a workflow or a tool: its children hang under the nearest span
            self._put(run_id, _State(CHAIN, parent.ctx, parent.graph))

    def _open_run(self, run_id: Any, parent: _State | None, name: Any, inputs: Any, metadata: Any, agent: bool) -> None:
        state = _State(AGENT if agent else WORKFLOW, None, agent or (parent is not None and parent.graph))
        thread = metadata.get("thread_id") if isinstance(metadata, dict) and agent else None
        if isinstance(thread, (str, int)) and not isinstance(thread, bool):
            # LangGraph's thread is the conversation: every call inside carries it (gen_ai.conversation.id).
            state.conv_token = callcontext.bind(conversation_id=str(thread))
        record = T.agent_record(name, inputs, workflow=not agent)
        state.run = operations.begin(record, parent=self._parent_ctx(parent))
        state.ctx = state.run.context if state.run is not None else self._parent_ctx(parent)
        self._attach(state, state.ctx)
        self._put(run_id, state)

    def _promote(self, state: _State) -> None:
        """A candidate under a tool turned out a graph: its agent span, from when it began (children parent on it).
        Under the lock: the graph's first steps may start at once, on several threads."""
        with self._lock:
            if state.kind != CANDIDATE:
                return
            record = T.agent_record(state.name, state.inputs, workflow=False)
            state.run = operations.begin(record, parent=state.ctx, start_time_ns=state.start_ns)
            state.kind, state.graph, state.inputs = AGENT, True, None
            if state.run is not None:
                state.ctx = state.run.context

    @_guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        state = self._pop(run_id)
        if state is None:
            return
        self._detach(run_id, state)
        if state.run is not None:
            _translate(T.agent_answer, state.run.record, outputs)
            state.run.end()

    @_guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error)

    def _fail(self, run_id: Any, error: BaseException) -> None:
        state = self._pop(run_id)
        if state is None:
            return
        self._detach(run_id, state)
        if state.run is not None:
            state.run.fail(error)
        elif state.pending is not None and not state.pending.taken:
            state.pending.fail(self._inference_record(state), error)

    # ---- tools ------------------------------------------------------------------------------------

    @_guarded
    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """An ``AgentExecutor`` is about to run the tool its model asked for: the call's id, for the tool's span."""
        state = self._get(run_id)
        call_id = getattr(action, "tool_call_id", None)
        if state is not None and isinstance(call_id, str):
            state.tool_call = call_id

    @_guarded
    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                      tags: Any = None, metadata: Any = None, inputs: Any = None, **kwargs: Any) -> None:
        parent = self._get(parent_run_id)
        if parent is not None and parent.kind == CANDIDATE and _is_graph_step(tags):
            self._promote(parent)
        call_id = kwargs.get("tool_call_id")
        if call_id is None and parent is not None and parent.tool_call is not None:
            call_id, parent.tool_call = parent.tool_call, None  # the action the executor announced
        record = T.tool_record(serialized, kwargs.get("name"), input_str, inputs, call_id)
        state = _State(TOOL, None, parent is not None and parent.graph)
        state.run = operations.begin(record, parent=self._parent_ctx(parent))
        state.ctx = state.run.context if state.run is not None else self._parent_ctx(parent)
        self._attach(state, state.ctx)
        self._put(run_id, state)

    @_guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        state = self._pop(run_id)
        if state is None:
            return
        self._detach(run_id, state)
        if state.run is not None:
            _translate(T.tool_result, state.run.record, output)
            state.run.end()

    @_guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error)

    # ---- chat models and LLMs ------------------------------------------------------------------------

    @_guarded
    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                            tags: Any = None, metadata: Any = None, **kwargs: Any) -> None:
        self._model_start(True, serialized, messages[0] if isinstance(messages, list) and messages else [], run_id,
                          parent_run_id, tags, metadata, kwargs)

    @_guarded
    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     tags: Any = None, metadata: Any = None, **kwargs: Any) -> None:
        self._model_start(False, serialized, prompts, run_id, parent_run_id, tags, metadata, kwargs)

    def _model_start(self, chat: bool, serialized: Any, inputs: Any, run_id: Any, parent_run_id: Any, tags: Any,
                     metadata: Any, kwargs: dict) -> None:
        parent = self._get(parent_run_id)
        if parent is not None and parent.kind == CANDIDATE and _is_graph_step(tags):
            self._promote(parent)
        state = _State(MODEL, None, parent is not None and parent.graph)
        state.chat, state.inputs, state.metadata, state.serialized = chat, inputs, metadata, serialized
        state.params = kwargs.get("invocation_params")
        state.pending = operations.begin_inference(parent=self._parent_ctx(parent))
        state.ctx = state.pending.context if state.pending is not None else self._parent_ctx(parent)
        self._attach(state, state.ctx)  # the SDK call below sees the pending call and takes it
        self._put(run_id, state)

    @_guarded
    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        state = self._get(run_id)
        if state is not None and state.first_token is None:
            state.first_token = time.time_ns()

    @_guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        state = self._pop(run_id)
        if state is None:
            return
        self._detach(run_id, state)
        if state.pending is None or state.pending.taken:
            return  # the instrumented SDK call below was the call's one inference span
        record = self._inference_record(state)
        _translate(T.inference_response, record, response)
        state.pending.end(record)

    @_guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error)

    @staticmethod
    def _inference_record(state: _State) -> Any:
        try:
            record = T.inference_record(state.chat, state.serialized, state.inputs, state.metadata, state.params)
        except Exception as exc:  # a payload we cannot read: the span still opens, with what is known
            internal_errors.report("request", exc)
            record = T.inference_record(state.chat, None, None, None, None)
        if state.first_token is not None:
            record.stream = True
            record.time_to_first_chunk = max(0.0, (state.first_token - state.pending.start_time_ns) / 1e9)
        return record

    # ---- an event another handler broke off ---------------------------------------------------------

    def abandon(self, run_id: Any, error: BaseException) -> None:
        """Another handler raised out of an event of run ``run_id`` (LangChain re-raises with ``raise_error``): the
        run will not report its end to us; end its span (failed) and give back its context now."""
        try:
            if self._get(run_id) is not None:
                self._fail(run_id, error)
        except Exception as exc:
            internal_errors.report("langchain_callback", exc)


#: The one handler of the process (the instrumentor makes it, turns it on and off).
HANDLER: MicrometricsCallbackHandler | None = None


def _reset(state: _State) -> bool:
    """Reset what ``state``'s start attached, if the current context is the one it attached in; whether it is done."""
    token, conv_token = state.token, state.conv_token
    if token is None:
        return True
    if otel_context.get_current() is not state.attached:
        return False
    try:
        if isinstance(token, contextvars.Token):
            token.var.reset(token)
        else:
            otel_context.detach(token)
    except (ValueError, RuntimeError):
        return False  # a copy of the context it was attached in (a task LangChain made for the end callback)
    state.token, state.conv_token = None, None
    callcontext.unbind(conv_token)
    return True


def _translate(fill: Any, record: Any, value: Any) -> None:
    """Fill a record from a run's output; a payload we cannot read leaves it as it was (the span still ends)."""
    try:
        fill(record, value)
    except Exception as exc:
        internal_errors.report("response", exc)


def _is_graph_step(tags: Any) -> bool:
    return isinstance(tags, list) and any(isinstance(t, str) and t.startswith(_GRAPH_STEP) for t in tags)
