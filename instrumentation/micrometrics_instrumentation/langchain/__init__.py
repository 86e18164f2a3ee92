"""micrometrics instrumentation for LangChain and LangGraph (``langchain-core``).

* Retrievers: ``BaseRetriever.invoke`` and ``ainvoke``, which every retriever built on langchain-core inherits
  (vector store retrievers, custom subclasses, ``batch``, ``get_relevant_documents``), are wrapped: a retriever
  that calls an instrumented client (Chroma, Qdrant) has that call's span as its child.
* Chains, agents, tools and models: ``BaseCallbackManager.__init__`` is wrapped to add our callback handler
  (callbacks.py) to every callback manager LangChain builds, once, with no change to the application's code;
  ``handle_event`` / ``ahandle_event`` are wrapped so that a run whose event another handler broke off
  (``raise_error=True``) is closed; the async run managers' end methods are wrapped to give a run's context back in
  the caller's context (LangChain runs their callbacks in a task of their own). ``uninstrument()`` restores them and turns the handler off in the managers
  that still hold it.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable

from micrometrics import internal_errors
from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.langchain.translators import RetrieverTranslator

__all__ = ["LangChainInstrumentor"]

_RETRIEVERS = "langchain_core.retrievers"
_MANAGER = "langchain_core.callbacks.manager"
_CALLBACKS = "micrometrics_instrumentation.langchain.callbacks"
#: The async run managers' end methods LangChain runs in a task of their own (``@shielded``).
_SHIELDED = {"AsyncCallbackManagerForChainRun": ("on_chain_end", "on_chain_error"),
             "AsyncCallbackManagerForLLMRun": ("on_llm_end", "on_llm_error")}


#: The one handler of this process (also ``callbacks.HANDLER``), read on every callback manager LangChain builds.
_HANDLER: Any = None


def _handler() -> Any:
    """The one handler, made when LangChain builds its first callback manager (langchain_core is imported by then:
    callbacks.py subclasses its handler)."""
    global _HANDLER
    if _HANDLER is None:
        from micrometrics_instrumentation.langchain import callbacks

        if callbacks.HANDLER is None:
            callbacks.HANDLER = callbacks.MicrometricsCallbackHandler()
        _HANDLER = callbacks.HANDLER
    return _HANDLER


def _add_handler(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        handler = _HANDLER or _handler()
        if handler not in instance.inheritable_handlers:  # handlers compare by identity
            instance.add_handler(handler, True)  # inheritable: the child managers of its runs carry it
    except Exception as exc:
        internal_errors.report("instrument", exc)
    return result


def _abandon(kwargs: dict, exc: BaseException) -> None:
    handler = getattr(sys.modules.get(_CALLBACKS), "HANDLER", None)
    if handler is not None and handler.active:
        handler.abandon(kwargs.get("run_id"), exc)


def _close_broken_runs(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:  # another handler raised (raise_error): its run reports no more events to us
        _abandon(kwargs, exc)
        raise


async def _aclose_broken_runs(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as exc:
        _abandon(kwargs, exc)
        raise


async def _release_after(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """An async run manager's end method: LangChain runs the callbacks in a task of their own (``@shielded``), so the
    run's context is given back here, in the caller's context, once they are done."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        handler = _HANDLER
        if handler is not None:
            handler.release(getattr(instance, "run_id", None))


async def _release_here_after(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """An async model's ``agenerate``: its calls end in tasks of their own (``asyncio.gather``); their contexts are
    given back here, in the caller's context."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        handler = _HANDLER
        if handler is not None:
            handler.release_here()


def _set_handler_active(active: bool) -> None:
    handler = getattr(sys.modules.get(_CALLBACKS), "HANDLER", None)
    if handler is not None:
        handler.active = active
        if not active:
            handler.clear()


class LangChainInstrumentor(LibraryInstrumentor):
    library = "langchain_core"
    instruments = ("langchain-core >= 0.3",)

    def targets(self) -> Iterable[Target]:
        retriever = RetrieverTranslator()
        return (
            (_RETRIEVERS, "BaseRetriever", "invoke", sync_wrapper(retriever)),
            (_RETRIEVERS, "BaseRetriever", "ainvoke", async_wrapper(retriever)),
            (_MANAGER, "BaseCallbackManager", "__init__", _add_handler),
            (_MANAGER, "", "handle_event", _close_broken_runs),
            (_MANAGER, "", "ahandle_event", _aclose_broken_runs),
            *((_MANAGER, owner, method, _release_after) for owner, methods in _SHIELDED.items() for method in methods),
            ("langchain_core.language_models.chat_models", "BaseChatModel", "agenerate", _release_here_after),
            ("langchain_core.language_models.llms", "BaseLLM", "agenerate", _release_here_after),
        )

    def _instrument(self, **kwargs: Any) -> None:
        _set_handler_active(True)
        super()._instrument(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        _set_handler_active(False)
