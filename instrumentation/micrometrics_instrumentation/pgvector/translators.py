"""A pgvector query on a psycopg / psycopg2 cursor and the rows it returned -> a retrieval record. Translation only.

Which result columns are what (docs/retrieval.md, "pgvector"):

* the id: the first column named ``id``, else the first whose name ends in ``_id`` (SQLAlchemy labels
  ``items.id`` as ``items_id``);
* the distance: the column of the selected distance expression, found by its alias, else by its
  position in the select list; a query that orders by the operator without selecting it has ids only;
* the content: the first column named (or ending in ``_``) ``content``, ``document``, ``page_content``,
  ``text``, ``chunk`` or ``body`` holding text; the metadata: a ``metadata`` / ``cmetadata`` column
  holding a JSON object.

Scores: ``<->`` (L2) and ``<+>`` (L1) are distances, exported as such; ``<=>`` is the cosine distance
``1 - cos``, so ``1 - d`` is the cosine similarity; ``<#>`` is the negative inner product, so ``-d`` is
the inner product. Both are exported as similarities, as for Chroma's cosine and ip collections.
The query vector is a parameter of the statement: it is never read into the record.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Callable, Mapping, Sequence

from micrometrics.reading import per_client
from micrometrics.records import Document, RetrievalRecord
from micrometrics_instrumentation.pgvector import statements
from micrometrics_instrumentation.pgvector.statements import Plan
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: Documents read from one result at most: a query's top-k, not a table dump.
MAX_DOCUMENTS = 1000
_CONTENT_NAMES = ("content", "document", "page_content", "text", "chunk", "body")
_METADATA_NAMES = ("metadata", "cmetadata")
#: (score kind, score from the operator's value)
_SCORES: dict[str, tuple[str, Callable[[float], float]]] = {
    statements.L2: (V.SCORE_KIND_DISTANCE, float),
    statements.L1: (V.SCORE_KIND_DISTANCE, float),
    statements.COSINE: (V.SCORE_KIND_SIMILARITY, lambda d: 1.0 - d),
    statements.NEGATIVE_INNER_PRODUCT: (V.SCORE_KIND_SIMILARITY, lambda d: -d),
}


@per_client
def connection_server(connection: Any) -> tuple[str | None, int | None, str | None]:
    """(server.address, server.port, database) of a psycopg or psycopg2 connection: a host name, an IP address
    or a Unix socket's directory, as libpq reports it."""
    info = getattr(connection, "info", None)
    host, port, dbname = getattr(info, "host", None), getattr(info, "port", None), getattr(info, "dbname", None)
    host = host if isinstance(host, str) and host else None
    port = int(port) if host and isinstance(port, (int, str)) and str(port).isdigit() else None
    return host, port, dbname if isinstance(dbname, str) and dbname else None


def _named(names: Sequence[str], wanted: Sequence[str]) -> int | None:
    for want in wanted:
        for i, name in enumerate(names):
            if name == want or name.endswith("_" + want):
                return i
    return None


class Columns:
    """Where a result's id, distance, content and metadata are (None: not in the result)."""

    __slots__ = ("id", "distance", "content", "metadata")

    def __init__(self, plan: Plan, names: Sequence[str]) -> None:
        lower = [n.lower() for n in names]
        self.id = lower.index("id") if "id" in lower else next((i for i, n in enumerate(lower) if n.endswith("_id")), None)
        distance = None
        if plan.distance_alias is not None and plan.distance_alias in names:
            distance = names.index(plan.distance_alias)
        elif plan.distance_position is not None and plan.distance_position < len(names):
            distance = plan.distance_position
        self.distance = distance
        self.content = _named(lower, _CONTENT_NAMES)
        self.metadata = _named(lower, _METADATA_NAMES)

    def wanted(self) -> list[int]:
        return sorted({i for i in (self.id, self.distance, self.content, self.metadata) if i is not None})


def documents(plan: Plan, columns: Columns, rows: Sequence[Mapping[int, Any]]) -> list[Document]:
    """The rows (values by column number) -> documents in rank order."""
    score_of = _SCORES[plan.operator][1]
    docs = []
    for row in rows:
        doc_id = row.get(columns.id) if columns.id is not None else None
        distance = row.get(columns.distance) if columns.distance is not None else None
        content = row.get(columns.content) if columns.content is not None else None
        metadata = row.get(columns.metadata) if columns.metadata is not None else None
        if type(distance) is not float:  # psycopg's float8; anything else is checked the slow way
            distance = float(distance) if isinstance(distance, Real) and not isinstance(distance, bool) else None
        score = None if distance is None else score_of(distance)
        docs.append(
            Document(
                id=None if doc_id is None else str(doc_id),
                score=score,
                content=content if isinstance(content, str) else None,
                metadata=metadata if isinstance(metadata, dict) else None,
            )
        )
    return docs


class RowReader:
    """How one driver's cursor gives its result's column names and the values of some columns, without moving it."""

    __slots__ = ("names", "values")

    def __init__(self, names: Callable[[Any], list[str] | None], values: Callable[[Any, list[int]], list[dict[int, Any]]]) -> None:
        self.names, self.values = names, values


class StatementTranslator(Translator):
    """One call of a planned statement on one cursor (made per call: the response is read from the cursor)."""

    __slots__ = ("plan", "cursor", "read_rows", "params_name")

    def __init__(self, plan: Plan, cursor: Any, read_rows: RowReader | None, params_name: str) -> None:
        self.plan, self.cursor, self.read_rows, self.params_name = plan, cursor, read_rows, params_name

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        params = args[1] if len(args) > 1 else kwargs.get(self.params_name)
        host, port, dbname = connection_server(getattr(self.cursor, "connection", None))
        source = self.plan.table or dbname
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_PGVECTOR,
            server_address=host,
            server_port=port,
            data_source=source,
            top_k=statements.top_k(self.plan, params),
            score_kind=_SCORES[self.plan.operator][0],
            db_system=V.DB_SYSTEM_POSTGRESQL,
            db_collection=self.plan.table,
            db_operation=V.DB_OPERATION_SELECT,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        if self.read_rows is None:
            return  # a server-side cursor: the rows stay on the server until the application fetches them
        names = self.read_rows.names(self.cursor)
        if not names:
            return
        columns = Columns(self.plan, names)
        wanted = columns.wanted()
        if wanted:
            record.documents = documents(self.plan, columns, self.read_rows.values(self.cursor, wanted))


def _psycopg_names(cursor: Any) -> list[str] | None:
    result = getattr(cursor, "pgresult", None)
    if result is None or not result.nfields:
        return None  # pipeline mode (the result comes later), or a statement without rows
    encoding = cursor.connection.info.encoding
    return [result.fname(i).decode(encoding, "replace") for i in range(result.nfields)]


def _psycopg_values(cursor: Any, wanted: list[int]) -> list[dict[int, Any]]:
    """psycopg 3: the values of the result the cursor holds (``pgresult``), decoded by the cursor's own loaders,
    leaving its position, its row factory and the rows the application fetches untouched."""
    result = cursor.pgresult
    adapters = cursor.adapters
    loaders = {}
    for i in wanted:
        oid, fmt = result.ftype(i), result.fformat(i)
        loader = adapters.get_loader(oid, fmt) or adapters.get_loader(0, fmt)
        loaders[i] = loader(oid, cursor) if loader is not None else None
    rows = []
    for r in range(min(result.ntuples, MAX_DOCUMENTS)):
        row = {}
        for i, loader in loaders.items():
            raw = result.get_value(r, i)
            row[i] = None if raw is None or loader is None else loader.load(raw)
        rows.append(row)
    return rows


def _psycopg2_names(cursor: Any) -> list[str] | None:
    description = cursor.description
    if not description or cursor.name is not None or cursor.rowcount <= 0:
        return None  # no rows, or a named cursor's (on the server)
    return [c[0] for c in description]


def _psycopg2_values(cursor: Any, wanted: list[int]) -> list[dict[int, Any]]:
    """psycopg2: a client-side cursor holds its whole result; read it and scroll back to where the cursor was,
    so that the application's ``fetchone`` / ``fetchmany`` / iteration get every row, as without us."""
    names = [c[0] for c in cursor.description]
    position = cursor.rownumber
    try:
        fetched = cursor.fetchmany(MAX_DOCUMENTS)
    finally:
        cursor.scroll(position, mode="absolute")
    rows = []
    for values in fetched:
        if isinstance(values, Mapping):  # RealDictCursor
            rows.append({i: values.get(names[i]) for i in wanted})
        else:
            rows.append({i: values[i] for i in wanted if i < len(values)})
    return rows


#: psycopg 3: the result the cursor holds (``pgresult``), decoded by the cursor's own loaders, leaving its position,
#: its row factory and the rows the application fetches untouched.
psycopg_rows = RowReader(_psycopg_names, _psycopg_values)
psycopg2_rows = RowReader(_psycopg2_names, _psycopg2_values)
