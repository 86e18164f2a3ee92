"""micrometrics instrumentation for pgvector nearest-neighbour queries on PostgreSQL.

Two instrumentors, each requiring only its own driver:

* ``PsycopgInstrumentor`` (``psycopg`` 3): wraps ``Cursor.execute``, ``AsyncCursor.execute`` and the
  server-side ``ServerCursor`` / ``AsyncServerCursor.execute`` (``Connection.execute`` goes through them);
* ``Psycopg2Instrumentor`` (``psycopg2`` or ``psycopg2-binary``): ``psycopg2``'s cursor is a C type that
  cannot be wrapped, so ``psycopg2.connect`` is: the connections it makes hand out cursors of a subclass
  of the cursor class asked for (yours, ``RealDictCursor``, ...) whose ``execute`` is traced.

SQLAlchemy (over either driver) and ``langchain-postgres`` run their statements through these cursors:
they need no instrumentor of their own. A statement that is not a pgvector search costs one regex scan
(statements.py) and is run as it is; a search becomes one ``retrieval {table}`` span.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any, Callable, Collection, Iterable

from micrometrics import internal_errors
from micrometrics.calls import run_async, run_sync
from micrometrics.runtime import current as current_runtime
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.pgvector import statements
from micrometrics_instrumentation.pgvector.translators import RowReader, StatementTranslator, psycopg2_rows, psycopg_rows

__all__ = ["PsycopgInstrumentor", "Psycopg2Instrumentor"]


def _composed_plan(query: Any, cursor: Any) -> statements.Plan | None:
    """A psycopg ``sql.Composed`` / ``sql.SQL``: its SQL snippets are checked first, so other composed SQL
    is never rendered."""
    from psycopg import sql  # the application imported psycopg: we are inside its cursor

    if isinstance(query, sql.SQL):
        return statements.plan(query.as_string(None))
    if not isinstance(query, sql.Composed):
        return None
    stack, found = [query], False
    while stack and not found:
        part = stack.pop()
        if isinstance(part, sql.Composed):
            stack.extend(part)
        elif isinstance(part, sql.SQL):
            found = statements.OPERATOR.search(part.as_string(None)) is not None
    return statements.plan(query.as_string(cursor)) if found else None


def _translator(instance: Any, args: tuple, kwargs: dict, read_rows: RowReader | None, params_name: str) -> StatementTranslator | None:
    """The call's translator when it runs a pgvector search; None (run it untouched) otherwise."""
    try:
        query = args[0] if args else kwargs.get("query")
        if isinstance(query, (str, bytes)):
            plan = statements.plan(query)
        elif query is None:
            return None
        else:
            plan = _composed_plan(query, instance)
        if plan is None or current_runtime() is None:
            return None
        params = args[1] if len(args) > 1 else kwargs.get(params_name)
        if not statements.is_retrieval(plan, params):
            return None
        return StatementTranslator(plan, instance, read_rows, params_name)
    except Exception as exc:
        internal_errors.report("request", exc)
        return None


def _sync_execute(read_rows: RowReader | None) -> Callable:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        translator = _translator(instance, args, kwargs, read_rows, "params")
        if translator is None:
            return wrapped(*args, **kwargs)
        return run_sync(translator, wrapped, instance, args, kwargs)

    return wrapper  # no ``opens_span``: a database instrumentation's span on the same method is not ours to gate


def _async_execute(read_rows: RowReader | None) -> Callable:
    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        translator = _translator(instance, args, kwargs, read_rows, "params")
        if translator is None:
            return await wrapped(*args, **kwargs)
        return await run_async(translator, wrapped, instance, args, kwargs)

    return wrapper


class PsycopgInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["psycopg"]
    instruments = ("psycopg >= 3.1",)

    def targets(self) -> Iterable[Target]:
        return (
            ("psycopg", "Cursor", "execute", _sync_execute(psycopg_rows)),
            ("psycopg", "AsyncCursor", "execute", _async_execute(psycopg_rows)),
            # Server-side cursors: the span has the query's table and k; the rows stay the application's to fetch.
            ("psycopg", "ServerCursor", "execute", _sync_execute(None)),
            ("psycopg", "AsyncServerCursor", "execute", _async_execute(None)),
        )


# ---- psycopg2: traced subclasses of the cursor classes the application's connections use ----

#: Whether psycopg2 cursors made while instrumented trace their searches (the classes outlive ``uninstrument()``).
_psycopg2_active = False
_traced_cursors: dict[type, type] = {}
_traced_connections: dict[type, type] = {}


class _TracedExecute:
    """Mixed in before the application's cursor class: ``execute`` traced, everything else theirs."""

    __slots__ = ()

    def execute(self, query: Any, vars: Any = None) -> Any:  # noqa: A002 - psycopg2's parameter name
        base = super().execute  # type: ignore[misc]
        if not _psycopg2_active:
            return base(query, vars)
        translator = _translator(self, (query, vars), {}, psycopg2_rows, "vars")
        if translator is None:
            return base(query, vars)
        return run_sync(translator, base, self, (query, vars), {})


def traced_cursor(factory: Any) -> Any:
    """The traced subclass of a cursor class (made once per class); anything else (a factory function) as it is."""
    from psycopg2 import extensions

    if not isinstance(factory, type) or not issubclass(factory, extensions.cursor) or issubclass(factory, _TracedExecute):
        return factory
    traced = _traced_cursors.get(factory)
    if traced is None:
        traced = type(factory.__name__, (_TracedExecute, factory), {"__module__": factory.__module__, "__qualname__": factory.__qualname__})
        _traced_cursors[factory] = traced
    return traced


def _traced_connection(base: type) -> type:
    """A subclass of the application's connection class whose ``cursor()`` hands out traced cursors.

    The cursor override sits right above psycopg2's own ``connection`` in the method order, below the
    application's class: a ``LoggingConnection`` still picks its cursor class, which is then traced.
    """
    from psycopg2 import extensions

    traced = _traced_connections.get(base)
    if traced is not None:
        return traced

    class _TracedCursors(extensions.connection):
        __slots__ = ()

        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            if len(args) > 1:
                args = (args[0], traced_cursor(args[1] or self.cursor_factory or extensions.cursor), *args[2:])
            else:
                kwargs["cursor_factory"] = traced_cursor(kwargs.get("cursor_factory") or self.cursor_factory or extensions.cursor)
            return super().cursor(*args, **kwargs)

    bases = (_TracedCursors,) if base is extensions.connection else (base, _TracedCursors)
    traced = type(base.__name__, bases, {"__module__": base.__module__, "__qualname__": base.__qualname__})
    _traced_connections[base] = traced
    return traced


def _psycopg2_connect(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        from psycopg2 import extensions

        if len(args) > 1:
            args = (args[0], _traced_connection(args[1] or extensions.connection), *args[2:])
        else:
            kwargs = {**kwargs, "connection_factory": _traced_connection(kwargs.get("connection_factory") or extensions.connection)}
    except Exception as exc:  # a connection factory we cannot subclass: connect untraced
        internal_errors.report("instrument", exc)
    return wrapped(*args, **kwargs)


class Psycopg2Instrumentor(LibraryInstrumentor):
    library = LIBRARIES["psycopg2"]
    instruments = ("psycopg2 >= 2.8",)

    def instrumentation_dependencies(self) -> Collection[str]:
        # The same module ships as ``psycopg2`` and as ``psycopg2-binary``: require whichever is installed.
        for name in ("psycopg2", "psycopg2-binary"):
            try:
                importlib.metadata.distribution(name)
                return (f"{name} >= 2.8",)
            except importlib.metadata.PackageNotFoundError:
                continue
        return self.instruments

    def targets(self) -> Iterable[Target]:
        return (("psycopg2", "", "connect", _psycopg2_connect),)

    def _instrument(self, **kwargs: Any) -> None:
        global _psycopg2_active
        super()._instrument(**kwargs)
        _psycopg2_active = True

    def _uninstrument(self, **kwargs: Any) -> None:
        global _psycopg2_active
        _psycopg2_active = False
        super()._uninstrument(**kwargs)
