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
* Vector stores: wraps the searches of every ``VectorStore`` (``similarity_search``, ``..._with_score``,
  ``..._with_relevance_scores``, ``..._by_vector``, ``max_marginal_relevance_search`` and their
  ``a*`` async twins): the base class's, and each subclass's own overrides (InMemoryVectorStore,
  PGVector, FAISS, yours), those defined before ``instrument()`` (found among the subclasses)
  and after it (``VectorStore.__init_subclass__``). A vector store query is one span: the first
  search the application called, or the vector-store retriever above it, has it; the searches
  it calls in turn and the store's own instrumented client (Chroma, Qdrant, pgvector SQL) open none.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, Iterable

import wrapt

from micrometrics import internal_errors
from micrometrics.calls import async_wrapper, run_async, run_sync, sync_wrapper
from micrometrics_instrumentation import layers
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target, _lock
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.langchain.translators import (
    SEARCHES,
    RetrieverTranslator,
    VectorStoreRetrieverTranslator,
    VectorStoreTranslator,
)

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


_VECTORSTORES = "langchain_core.vectorstores.base"
#: Marks the ``__init_subclass__`` we put on ``VectorStore``.
_OURS_INIT_SUBCLASS = "_micrometrics_init_subclass"


def _retriever_wrappers() -> tuple[Callable, Callable]:
    """``invoke`` / ``ainvoke``: a vector-store retriever suppresses the searches under it, a custom one does not."""
    custom, over_store = RetrieverTranslator(), VectorStoreRetrieverTranslator()

    def invoke(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        translator = over_store if getattr(instance, "vectorstore", None) is not None else custom
        return run_sync(translator, wrapped, instance, args, kwargs)

    async def ainvoke(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        translator = over_store if getattr(instance, "vectorstore", None) is not None else custom
        return await run_async(translator, wrapped, instance, args, kwargs)

    invoke.opens_span = ainvoke.opens_span = True  # type: ignore[attr-defined]
    return invoke, ainvoke


def _search_wrappers() -> dict[str, Callable]:
    """One wrapper per search name, sync and async, shared by every class that defines the method."""
    wrappers = {}
    for name in SEARCHES:
        wrappers[name] = sync_wrapper(VectorStoreTranslator(name))
        wrappers["a" + name] = async_wrapper(VectorStoreTranslator("a" + name))
    for wrapper in wrappers.values():
        setattr(wrapper, layers.OURS, True)
    return wrappers


def _subclasses(base: type) -> list[type]:
    found, stack = [], list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.append(cls)
            stack.extend(cls.__subclasses__())
    return found


class LangChainInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["langchain"]
    instruments = ("langchain-core >= 0.3",)

    def targets(self) -> Iterable[Target]:
        invoke, ainvoke = _retriever_wrappers()
        self._searches = _search_wrappers()
        return (
            (_RETRIEVERS, "BaseRetriever", "invoke", invoke),
            (_RETRIEVERS, "BaseRetriever", "ainvoke", ainvoke),
            *((_VECTORSTORES, "VectorStore", name, wrapper) for name, wrapper in self._searches.items()),
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
        with _lock:
            generation = self._hooks
            hook = self._on_vectorstores(generation)
            generation.append((_VECTORSTORES, hook))
        wrapt.register_post_import_hook(hook, _VECTORSTORES)

    def _on_vectorstores(self, generation: list) -> Callable[[Any], None]:
        """Once ``VectorStore`` exists: wrap the overrides of its subclasses, now and as they are defined."""

        def hook(module: Any) -> None:
            try:
                with _lock:
                    if self._hooks is not generation or not self._supported(generation):
                        return
                    base = getattr(module, "VectorStore", None)
                    if not isinstance(base, type):
                        return
                    self._watch_subclasses(base)
                    for cls in _subclasses(base):
                        self._wrap_overrides(cls)
            except Exception as exc:  # never fail the application's import
                internal_errors.report("instrument", exc)

        return hook

    def _wrap_overrides(self, cls: type) -> None:
        """Wrap the searches ``cls`` defines itself (inherited ones are wrapped where they are defined)."""
        for name, wrapper in self._searches.items():
            if name not in cls.__dict__:
                continue  # inherited: wrapped where it is defined
            chain, fn = layers.chain(cls, name)
            if any(layers.is_ours(layer) for layer, _ in chain) or not inspect.isfunction(fn):
                continue  # already ours, or not a plain method (a classmethod, a property)
            if inspect.iscoroutinefunction(fn) != name.startswith("a"):
                continue  # a subclass's own idea of the method: leave it
            wrapt.wrap_function_wrapper(cls, name, wrapper)
            self._wrapped.append((cls, name))
            layers.ours_innermost(cls, name)

    def _watch_subclasses(self, base: type) -> None:
        """``VectorStore.__init_subclass__``: a subclass defined from now on gets its searches wrapped as it is created."""
        current = base.__dict__.get("__init_subclass__")
        if getattr(getattr(current, "__func__", None), _OURS_INIT_SUBCLASS, False):
            return
        instrumentor = self

        def init_subclass(cls: type, **kwargs: Any) -> None:
            if current is not None:
                current.__func__(cls, **kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)
            try:
                with _lock:
                    if instrumentor.active:
                        instrumentor._wrap_overrides(cls)
            except Exception as exc:
                internal_errors.report("instrument", exc)

        hook = classmethod(init_subclass)
        setattr(init_subclass, _OURS_INIT_SUBCLASS, True)
        base.__init_subclass__ = hook  # type: ignore[method-assign]
        self._restore_init_subclass = (base, current)

    def _uninstrument(self, **kwargs: Any) -> None:
        restore = getattr(self, "_restore_init_subclass", None)
        if restore is not None:
            base, previous = restore
            if getattr(getattr(base.__dict__.get("__init_subclass__"), "__func__", None), _OURS_INIT_SUBCLASS, False):
                if previous is None:
                    del base.__init_subclass__
                else:
                    base.__init_subclass__ = previous  # type: ignore[method-assign]
            self._restore_init_subclass = None
        super()._uninstrument(**kwargs)
        _set_handler_active(False)
