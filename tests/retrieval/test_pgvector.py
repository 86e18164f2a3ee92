"""A user runs pgvector nearest-neighbour queries on a real PostgreSQL (pgserver: PostgreSQL + pgvector) through
psycopg 3, psycopg2, SQLAlchemy over either, and langchain-postgres' PGVector; and searches LangChain vector stores
(InMemoryVectorStore, FAISS, PGVector). Each query is one retrieval span with the table (or collection), k, the ids
and scores; any other SQL is left alone; the application's rows, cursors and errors are what they are without us."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

import micrometrics
from micrometrics.metrics import RetrievalPrecision
from micrometrics_semconv import attributes as A
from provider_contract import assert_failed_call, assert_retrieval_call
from store_scenario import DOCUMENTS, EXPECTED_IDS, QUERY_TEXT, QUERY_VECTOR, RELEVANT_IDS, TOP_K, assert_scenario

psycopg = pytest.importorskip("psycopg", reason="psycopg (3) is a dev dependency: pip install -e '.[dev]'")
psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2-binary is a dev dependency: pip install -e '.[dev]'")

from micrometrics_instrumentation.pgvector import Psycopg2Instrumentor, PsycopgInstrumentor  # noqa: E402
from postgres_server import start  # noqa: E402

QUERY = "[" + ",".join(str(x) for x in QUERY_VECTOR) + "]"
TABLE = "scenario_items"
COSINE_SQL = f"SELECT id, content, embedding <=> %s AS distance FROM {TABLE} ORDER BY distance LIMIT %s"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """One PostgreSQL with pgvector for the session, the scenario's four documents in ``scenario_items``."""
    try:
        pg, stop = start(tmp_path_factory.mktemp("pgvector"))
    except Exception as exc:  # no usable pgserver wheel for this machine, or PostgreSQL refused to start
        pytest.skip(f"PostgreSQL with pgvector (pgserver) could not start here: {type(exc).__name__}: {exc}")
    try:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f"CREATE TABLE {TABLE} (id text PRIMARY KEY, content text, metadata jsonb, embedding vector(4))")
            for doc_id, text, vector in DOCUMENTS:
                conn.execute(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)", (doc_id, text, json.dumps({"n": doc_id}), str(vector)))
        yield pg
    finally:
        stop()


@pytest.fixture
def instrument(telemetry):
    """``telemetry.instrument(...)`` plus the pgvector instrumentors: by their entry points once installed, else here."""
    started = []

    def run(**options):
        handle = telemetry.instrument(**options)
        for cls in (PsycopgInstrumentor, Psycopg2Instrumentor):
            inst = cls()
            if not inst.is_instrumented_by_opentelemetry:
                inst.instrument(skip_dep_check=True)
                started.append(inst)
        return handle

    yield run
    for inst in started:
        inst.uninstrument()


def retrieval_spans(telemetry):
    """The retrieval spans, in the order the calls started (a failed call's span ends before the monitors end the others')."""
    spans = [s for s in telemetry.spans() if s.attributes.get(A.GEN_AI_OPERATION_NAME) == "retrieval"]
    return sorted(spans, key=lambda s: s.start_time)


from langchain_core.embeddings import Embeddings  # noqa: E402


class ScenarioEmbeddings(Embeddings):
    """The scenario's vectors for its texts and its query."""

    def embed_documents(self, texts):
        vectors = {text: vector for _, text, vector in DOCUMENTS}
        return [vectors[t] for t in texts]

    def embed_query(self, text):
        assert text == QUERY_TEXT
        return QUERY_VECTOR

    async def aembed_documents(self, texts):
        return self.embed_documents(texts)

    async def aembed_query(self, text):
        return self.embed_query(text)


def lc_documents():
    from langchain_core.documents import Document

    return [Document(id=doc_id, page_content=text) for doc_id, text, _ in DOCUMENTS]


# ---- the shared scenario, through every way of querying -------------------------------------------------------


def _psycopg(pg):
    with psycopg.connect(pg.dsn) as conn, micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        rows = conn.execute(COSINE_SQL, (QUERY, TOP_K)).fetchall()
    return [r[0] for r in rows], TABLE, "postgresql", "similarity"


def _psycopg_async(pg):
    async def main():
        async with await psycopg.AsyncConnection.connect(pg.dsn) as conn:
            with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                cur = await conn.execute(COSINE_SQL.replace("%s AS", "%(q)s AS").replace("LIMIT %s", "LIMIT %(k)s"), {"q": QUERY, "k": TOP_K})
            return await cur.fetchall()

    return [r[0] for r in asyncio.run(main())], TABLE, "postgresql", "similarity"


def _psycopg2(pg):
    conn = psycopg2.connect(pg.dsn)
    try:
        cur = conn.cursor()
        with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
            cur.execute(COSINE_SQL, (QUERY, TOP_K))
        return [r[0] for r in cur.fetchall()], TABLE, "postgresql", "similarity"
    finally:
        conn.close()


def _sqlalchemy(driver):
    def run(pg):
        import sqlalchemy as sa
        from pgvector.sqlalchemy import Vector
        from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

        class Base(DeclarativeBase):
            pass

        class Item(Base):  # the ORM's way (no annotations: this module has ``from __future__ import annotations``)
            __tablename__ = TABLE
            id = mapped_column(sa.Text, primary_key=True)
            content = mapped_column(sa.Text)
            embedding = mapped_column(Vector(4))

        engine = sa.create_engine(pg.url(driver))
        try:
            distance = Item.embedding.cosine_distance(QUERY_VECTOR).label("distance")
            with Session(engine) as session, micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                rows = session.execute(sa.select(Item.id, Item.content, distance).order_by(distance).limit(TOP_K)).all()
        finally:
            engine.dispose()
        return [r.id for r in rows], TABLE, "postgresql", "similarity"

    return run


def _pgvector_store(pg):
    from langchain_postgres import PGVector

    name = f"scenario-{uuid.uuid4().hex[:8]}"
    store = PGVector(ScenarioEmbeddings(), collection_name=name, connection=pg.url("psycopg"), use_jsonb=True)
    try:
        store.add_documents(lc_documents())
        with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
            hits = store.similarity_search_with_score(QUERY_TEXT, k=TOP_K)
    finally:
        store.delete_collection()
        store._engine.dispose()
    return [d.id for d, _ in hits], name, "postgresql", "distance"  # PGVector's _with_score: the cosine distance


def _pgvector_store_async(pg):
    from langchain_postgres import PGVector

    name = f"scenario-{uuid.uuid4().hex[:8]}"

    async def main():
        store = PGVector(ScenarioEmbeddings(), collection_name=name, connection=pg.url("psycopg"), use_jsonb=True, async_mode=True)
        try:
            await store.aadd_documents(lc_documents())
            with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                return await store.asimilarity_search(QUERY_TEXT, k=TOP_K)
        finally:
            await store.adelete_collection()
            await store._async_engine.dispose()

    return [d.id for d in asyncio.run(main())], name, "postgresql", None  # documents without scores


def _in_memory(pg):
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(ScenarioEmbeddings())
    store.add_documents(lc_documents())
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        hits = store.similarity_search_with_score(QUERY_TEXT, k=TOP_K)
    return [d.id for d, _ in hits], "InMemoryVectorStore", "langchain.in_memory", "similarity"


def _faiss(pg):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    pytest.importorskip("langchain_community", reason="langchain-community is not installed")
    from langchain_community.vectorstores import FAISS

    store = FAISS.from_texts([t for _, t, _ in DOCUMENTS], ScenarioEmbeddings(), ids=[i for i, _, _ in DOCUMENTS])
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        hits = store.similarity_search_with_score(QUERY_TEXT, k=TOP_K)
    return [d.id for d, _ in hits], "FAISS", "faiss", "distance"  # IndexFlatL2: squared L2 distances


STORES = {
    "psycopg": _psycopg,
    "psycopg-async": _psycopg_async,
    "psycopg2": _psycopg2,
    "sqlalchemy-psycopg": _sqlalchemy("psycopg"),
    "sqlalchemy-psycopg2": _sqlalchemy("psycopg2"),
    "langchain-pgvector": _pgvector_store,
    "langchain-pgvector-async": _pgvector_store_async,
    "langchain-in-memory": _in_memory,
    "langchain-faiss": _faiss,
}


@pytest.mark.parametrize("store", list(STORES.values()), ids=list(STORES))
def test_the_labelled_query_scores_the_same_on_every_store(postgres, instrument, telemetry, store):
    instrument(metrics=[RetrievalPrecision()])
    ids, data_source, db_system, score_kind = store(postgres)
    assert ids == EXPECTED_IDS
    # One span per query, whichever layers saw it (PGVector's search, its SQLAlchemy statement, the driver's cursor).
    (span,) = retrieval_spans(telemetry)
    assert_scenario(span, data_source=data_source, db_system=db_system, score_kind=score_kind)


# ---- what a pgvector span shows -------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_a_psycopg_query_is_a_retrieval_span_with_ids_and_scores(postgres, instrument, telemetry, capture):
    instrument(capture_content=capture, metrics=[])
    with psycopg.connect(postgres.dsn) as conn:
        rows = conn.execute(COSINE_SQL, (QUERY, TOP_K)).fetchall()
    span = assert_retrieval_call(
        telemetry, provider="pgvector", data_source=TABLE, top_k=TOP_K, db_system="postgresql",
        documents=[{"id": doc_id, "score": pytest.approx(1 - d)} for doc_id, _, d in rows],
        score_kind="similarity", server=(postgres.host, postgres.port), capture=capture,
        db_collection=TABLE, db_operation="SELECT", hidden=[QUERY, *(t for _, t, _ in DOCUMENTS)],
    )
    if capture:
        contents = json.loads(span.attributes[A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS])
        assert contents == [{"id": doc_id, "content": text} for doc_id, text, _ in rows]
    # The query vector is a statement parameter: never exported, with or without capture.
    assert not any(QUERY in str(v) or "0.99" in str(v) for v in span.attributes.values())


@pytest.mark.parametrize(
    "operator, score_kind, score",
    [("<->", "distance", lambda d: d), ("<+>", "distance", lambda d: d), ("<=>", "similarity", lambda d: 1 - d), ("<#>", "similarity", lambda d: -d)],
    ids=["l2", "l1", "cosine", "negative-inner-product"],
)
def test_each_operator_has_its_score_kind(postgres, instrument, telemetry, operator, score_kind, score):
    with psycopg.connect(postgres.dsn) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    statement = f"SELECT id, embedding {operator} %s AS d FROM {TABLE} ORDER BY d LIMIT 2"
    instrument(capture_content=True, metrics=[])
    if operator == "<+>" and tuple(int(p) for p in version.split(".")[:2]) < (0, 7):
        # pgserver bundles pgvector 0.6, whose L1 is a function (<+> came in 0.7): the query is still seen as a
        # search, and the server's error reaches the application unchanged.
        with psycopg.connect(postgres.dsn) as conn, pytest.raises(psycopg.errors.UndefinedFunction, match="<\\+>"):
            conn.execute(statement, (QUERY,))
        (span,) = retrieval_spans(telemetry)
        assert span.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == score_kind
        assert span.attributes[A.ERROR_TYPE] == "psycopg.errors.UndefinedFunction"
        return
    with psycopg.connect(postgres.dsn) as conn:
        rows = conn.execute(statement, (QUERY,)).fetchall()
    (span,) = retrieval_spans(telemetry)
    assert span.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == score_kind
    key = "score" if score_kind == "similarity" else "micrometrics.distance"
    assert json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": i, key: pytest.approx(score(d))} for i, d in rows]
    assert [r[0] for r in rows] == ["1", "2"]


def test_ordered_by_the_operator_without_selecting_it_gives_ids_only(postgres, instrument, telemetry):
    instrument(capture_content=True, metrics=[])
    with psycopg.connect(postgres.dsn) as conn:
        rows = conn.execute(f"SELECT * FROM {TABLE} ORDER BY embedding <-> %(q)s LIMIT %(k)s", {"q": QUERY, "k": 2}).fetchall()
    (span,) = retrieval_spans(telemetry)
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == 2.0
    assert json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": r[0]} for r in rows]


def test_binary_results_composed_sql_and_a_literal_vector(postgres, instrument, telemetry):
    from psycopg import sql

    instrument(capture_content=True, metrics=[])
    with psycopg.connect(postgres.dsn) as conn:
        cur = conn.cursor(binary=True)
        binary = cur.execute(COSINE_SQL, (QUERY, 1)).fetchall()
        composed = conn.execute(
            sql.SQL("SELECT id, embedding <=> %s AS distance FROM {} ORDER BY distance LIMIT 1").format(sql.Identifier(TABLE)), (QUERY,)
        ).fetchall()
        literal = conn.execute(f"SELECT id, embedding <-> '{QUERY}' AS d FROM {TABLE} ORDER BY 2 LIMIT 1").fetchall()
    spans = retrieval_spans(telemetry)
    assert [s.name for s in spans] == [f"retrieval {TABLE}"] * 3
    documents = [json.loads(s.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) for s in spans]
    assert documents[0] == [{"id": "1", "score": pytest.approx(1 - binary[0][2])}]
    assert documents[1] == [{"id": "1", "score": pytest.approx(1 - composed[0][1])}]
    assert documents[2] == [{"id": "1", "micrometrics.distance": pytest.approx(literal[0][1])}]


def test_a_unix_socket_connection_reports_the_socket_directory(postgres, instrument, telemetry):
    instrument(metrics=[])
    with psycopg.connect(host=postgres.socket_dir, port=postgres.port, dbname="postgres", user="postgres") as conn:
        conn.execute(COSINE_SQL, (QUERY, 1)).fetchall()
    (span,) = retrieval_spans(telemetry)
    assert (span.attributes[A.SERVER_ADDRESS], span.attributes[A.SERVER_PORT]) == (postgres.socket_dir, postgres.port)


OTHER_SQL = [
    f"SELECT id, content FROM {TABLE} ORDER BY id LIMIT 2",
    f"SELECT id FROM {TABLE} WHERE content <> '<=> is not an operator in a string' ORDER BY id",
    # PostgreSQL's own geometric distance: <-> without a vector operand is not a vector search.
    f"SELECT id, point(1, 2) <-> point(0, 0) AS d FROM {TABLE} ORDER BY d LIMIT 2",
    f"SELECT count(*) FROM {TABLE} WHERE embedding <=> '{QUERY}' < 0.5",  # filtered by distance, not ordered: no top-k
]


@pytest.mark.parametrize("statement", OTHER_SQL, ids=["plain", "operator-in-a-string", "geometric-distance", "not-ordered"])
def test_other_sql_is_left_alone(postgres, instrument, telemetry, statement):
    from micrometrics_instrumentation.pgvector import statements

    instrument(metrics=[])
    parsed_before = statements._cached.cache_info()
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute(statement).fetchall()
    conn2 = psycopg2.connect(postgres.dsn)
    try:
        cur = conn2.cursor()
        cur.execute(statement)
        cur.fetchall()
    finally:
        conn2.close()
    assert retrieval_spans(telemetry) == []
    if "<" not in statement:  # the substring pre-check: never parsed, never cached
        assert statements._cached.cache_info() == parsed_before


# ---- the application's cursor, rows and errors are its own ------------------------------------------------------


def _read_lazily(cur):
    first = cur.fetchone()
    two = cur.fetchmany(2)
    rest = list(cur)
    return [first, *two, *rest]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_rows_fetched_one_by_one_many_or_by_iteration_are_the_same_as_without_us(postgres, instrument, telemetry, driver):
    statement = f"SELECT id, content, embedding <=> %s AS distance FROM {TABLE} ORDER BY distance LIMIT 4"

    def run():
        if driver == "psycopg":
            with psycopg.connect(postgres.dsn) as conn:
                cur = conn.execute(statement, (QUERY,))
                assert cur.rownumber == 0
                return _read_lazily(cur)
        conn = psycopg2.connect(postgres.dsn)
        try:
            cur = conn.cursor()
            cur.execute(statement, (QUERY,))
            assert cur.rownumber == 0
            return _read_lazily(cur)
        finally:
            conn.close()

    without_us = run()
    instrument(capture_content=True, metrics=[])
    assert run() == without_us and len(without_us) == 4
    (span,) = retrieval_spans(telemetry)
    assert [d["id"] for d in json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == [r[0] for r in without_us]


@pytest.mark.parametrize("factory", ["DictCursor", "RealDictCursor", "NamedTupleCursor"])
def test_psycopg2_cursor_classes_keep_their_rows_and_class(postgres, instrument, telemetry, factory):
    from psycopg2 import extras

    cls = getattr(extras, factory)

    def run(per_cursor: bool):
        conn = psycopg2.connect(postgres.dsn, **({} if per_cursor else {"cursor_factory": cls}))
        try:
            cur = conn.cursor(cursor_factory=cls) if per_cursor else conn.cursor()
            assert isinstance(cur, cls)
            cur.execute(COSINE_SQL, (QUERY, TOP_K))
            return [dict(r) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    without_us = run(per_cursor=True)
    instrument(capture_content=True, metrics=[])
    assert run(per_cursor=True) == without_us
    assert run(per_cursor=False) == without_us
    spans = retrieval_spans(telemetry)
    assert len(spans) == 2
    for span in spans:
        assert [d["id"] for d in json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == EXPECTED_IDS


def test_psycopg2_logging_connection_still_logs_and_is_traced(postgres, instrument, telemetry, caplog):
    import logging

    from psycopg2 import extras

    instrument(metrics=[])
    conn = psycopg2.connect(postgres.dsn, connection_factory=extras.LoggingConnection)
    try:
        conn.initialize(logging.getLogger("test-pgvector"))
        assert isinstance(conn, extras.LoggingConnection)
        cur = conn.cursor()
        assert isinstance(cur, extras.LoggingCursor)
        with caplog.at_level(logging.DEBUG, logger="test-pgvector"):
            cur.execute(COSINE_SQL, (QUERY, TOP_K))
        assert [r[0] for r in cur.fetchall()] == EXPECTED_IDS
    finally:
        conn.close()
    assert any("embedding <=>" in r.getMessage() for r in caplog.records)
    assert len(retrieval_spans(telemetry)) == 1


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_failing_query_raises_the_same_error_and_marks_the_span(postgres, instrument, telemetry, driver):
    broken = f"SELECT id, embedding <=> %s AS distance FROM {TABLE} ORDER BY distance LIMT 3"

    def run():
        if driver == "psycopg":
            with psycopg.connect(postgres.dsn) as conn:
                with pytest.raises(psycopg.errors.SyntaxError) as info:
                    conn.execute(broken, (QUERY,))
        else:
            conn = psycopg2.connect(postgres.dsn)
            try:
                with pytest.raises(psycopg2.errors.SyntaxError) as info:
                    conn.cursor().execute(broken, (QUERY,))
            finally:
                conn.close()
        return type(info.value), str(info.value)

    without_us = run()
    instrument(metrics=[RetrievalPrecision()])
    assert run() == without_us
    assert_failed_call(telemetry, f"retrieval {TABLE}", provider="pgvector", error_type=f"{without_us[0].__module__}.{without_us[0].__qualname__}")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_named_server_side_cursor_has_k_and_leaves_the_rows_on_the_server(postgres, instrument, telemetry, driver):
    instrument(capture_content=True, metrics=[])
    if driver == "psycopg":
        with psycopg.connect(postgres.dsn) as conn, conn.transaction():
            with conn.cursor(name="knn") as cur:
                cur.execute(COSINE_SQL, (QUERY, TOP_K))
                rows = cur.fetchmany(1) + cur.fetchall()
    else:
        conn = psycopg2.connect(postgres.dsn)
        try:
            cur = conn.cursor(name="knn")
            cur.execute(COSINE_SQL, (QUERY, TOP_K))
            rows = cur.fetchmany(1) + cur.fetchall()
        finally:
            conn.close()
    assert [r[0] for r in rows] == EXPECTED_IDS
    (span,) = retrieval_spans(telemetry)
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == float(TOP_K)
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in span.attributes  # we never fetch the application's rows for it


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_parameters_as_a_generator_are_left_to_the_driver(postgres, instrument, telemetry, driver):
    def run():
        params = (p for p in (QUERY, TOP_K))
        try:
            if driver == "psycopg":
                with psycopg.connect(postgres.dsn) as conn:
                    return "rows", [r[0] for r in conn.execute(COSINE_SQL, params).fetchall()], list(params)
            conn = psycopg2.connect(postgres.dsn)
            try:
                cur = conn.cursor()
                cur.execute(COSINE_SQL, params)
                return "rows", [r[0] for r in cur.fetchall()], list(params)
            finally:
                conn.close()
        except Exception as exc:
            return type(exc), str(exc), list(params)

    without_us = run()
    instrument(metrics=[])
    assert run() == without_us


def test_dict_parameters_give_k(postgres, instrument, telemetry):
    instrument(metrics=[])
    conn = psycopg2.connect(postgres.dsn)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT id, embedding <#> %(q)s AS ip FROM {TABLE} ORDER BY ip LIMIT %(k)s", {"q": QUERY, "k": 2})
        assert [r[0] for r in cur.fetchall()] == ["1", "2"]
    finally:
        conn.close()
    (span,) = retrieval_spans(telemetry)
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == 2.0


def test_uninstrument_restores_the_drivers(postgres, instrument, telemetry):
    original_execute = psycopg.Cursor.__dict__["execute"]
    original_connect = psycopg2.connect
    instrument(metrics=[])
    assert psycopg.Cursor.__dict__["execute"] is not original_execute and psycopg2.connect is not original_connect
    micrometrics.uninstrument()
    PsycopgInstrumentor().uninstrument()
    Psycopg2Instrumentor().uninstrument()
    assert psycopg.Cursor.__dict__["execute"] is original_execute and psycopg2.connect is original_connect
    with psycopg.connect(postgres.dsn) as conn:
        assert [r[0] for r in conn.execute(COSINE_SQL, (QUERY, TOP_K)).fetchall()] == EXPECTED_IDS
    assert telemetry.spans() == []


# ---- LangChain vector stores: one span per query ----------------------------------------------------------------


def test_pgvector_store_search_is_one_span_not_three(postgres, instrument, telemetry):
    from langchain_postgres import PGVector

    instrument(capture_content=True, metrics=[])
    name = f"kb-{uuid.uuid4().hex[:8]}"
    store = PGVector(ScenarioEmbeddings(), collection_name=name, connection=postgres.url("psycopg"), use_jsonb=True)
    try:
        store.add_documents(lc_documents())
        hits = store.similarity_search_with_score(QUERY_TEXT, k=2)
        docs = store.as_retriever(search_kwargs={"k": 2}).invoke(QUERY_TEXT)
        mmr = store.max_marginal_relevance_search(QUERY_TEXT, k=2, fetch_k=4)
    finally:
        store.delete_collection()
        store._engine.dispose()
    spans = retrieval_spans(telemetry)
    assert [s.name for s in spans] == [f"retrieval {name}"] * 3  # the store's search; the retriever; mmr: never the SQL's
    search, retriever, mmr_span = spans
    assert search.attributes[A.GEN_AI_PROVIDER_NAME] == "langchain" and search.attributes[A.DB_SYSTEM_NAME] == "postgresql"
    assert (search.attributes[A.SERVER_ADDRESS], search.attributes[A.SERVER_PORT]) == (postgres.host, postgres.port)
    assert json.loads(search.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [
        {"id": d.id, "micrometrics.distance": pytest.approx(s)} for d, s in hits
    ]
    assert json.loads(retriever.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": d.id} for d in docs]
    assert [d["id"] for d in json.loads(mmr_span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == [d.id for d in mmr]
    assert retriever.attributes[A.GEN_AI_REQUEST_TOP_K] == 2.0


def test_in_memory_store_every_search_sync_and_async_is_one_span(telemetry):
    from langchain_core.vectorstores import InMemoryVectorStore

    telemetry.instrument(capture_content=True, metrics=[])
    store = InMemoryVectorStore(ScenarioEmbeddings())
    store.add_documents(lc_documents())

    async def searches():
        return [
            await store.asimilarity_search(QUERY_TEXT, k=2),
            await store.asimilarity_search_with_score(QUERY_TEXT, k=2),
            await store.asimilarity_search_by_vector(QUERY_VECTOR, k=2),
            await store.amax_marginal_relevance_search(QUERY_TEXT, k=2, fetch_k=4),
            await store.as_retriever(search_kwargs={"k": 2}).ainvoke(QUERY_TEXT),
        ]

    sync = [
        store.similarity_search(QUERY_TEXT, k=2),
        store.similarity_search_with_score(QUERY_TEXT, k=2),
        store.similarity_search_by_vector(QUERY_VECTOR, k=2),
        store.max_marginal_relevance_search(QUERY_TEXT, k=2, fetch_k=4),
        store.as_retriever(search_kwargs={"k": 2}).invoke(QUERY_TEXT),
    ]
    results = sync + asyncio.run(searches())
    spans = retrieval_spans(telemetry)
    assert [s.name for s in spans] == ["retrieval InMemoryVectorStore"] * 10
    for span, result in zip(spans, results):
        ids = [(item[0] if isinstance(item, tuple) else item).id for item in result]
        assert [d["id"] for d in json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == ids
        assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == 2.0
        assert QUERY_TEXT not in json.dumps(dict(span.attributes)) or span.attributes.get(A.GEN_AI_RETRIEVAL_QUERY_TEXT) == QUERY_TEXT
    with_score = spans[1]
    assert with_score.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "similarity"
    assert [d["score"] for d in json.loads(with_score.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == pytest.approx([s for _, s in results[1]])
    by_vector = spans[2]
    assert A.GEN_AI_RETRIEVAL_QUERY_TEXT not in by_vector.attributes  # a query vector is never exported


def test_a_subclass_defined_after_instrument_and_its_super_calls_are_one_span(telemetry):
    from langchain_core.vectorstores import InMemoryVectorStore

    telemetry.instrument(capture_content=True, metrics=[])

    class RerankedStore(InMemoryVectorStore):
        def similarity_search(self, query, k=4, **kwargs):
            return list(reversed(super().similarity_search(query, k=k, **kwargs)))

    store = RerankedStore(ScenarioEmbeddings())
    store.add_documents(lc_documents())
    docs = store.similarity_search(QUERY_TEXT, k=3)
    (span,) = telemetry.spans()
    assert span.name == "retrieval RerankedStore"
    assert [d["id"] for d in json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == [d.id for d in docs] == ["3", "2", "1"]
    micrometrics.uninstrument()
    assert type(RerankedStore.__dict__["similarity_search"]).__name__ == "function"  # the class's own method again


def test_a_store_whose_scores_we_do_not_know_exports_ids_only(telemetry):
    from langchain_core.vectorstores import VectorStore

    class TinyStore(VectorStore):
        def add_texts(self, texts, metadatas=None, **kwargs):
            return []

        @classmethod
        def from_texts(cls, texts, embedding, metadatas=None, **kwargs):
            return cls()

        def similarity_search(self, query, k=4, **kwargs):
            return [d for d, _ in self.similarity_search_with_score(query, k)]

        def similarity_search_with_score(self, query, k=4, **kwargs):
            return [(d, 0.25 * i) for i, d in enumerate(lc_documents()[:k])]

    telemetry.instrument(capture_content=True, metrics=[])
    hits = TinyStore().similarity_search_with_score("q", k=2)
    (span,) = telemetry.spans()
    assert A.MICROMETRICS_RETRIEVAL_SCORE_KIND not in span.attributes
    assert json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": d.id} for d, _ in hits]
    assert A.DB_SYSTEM_NAME not in span.attributes


def _client_backed_store(kind, client):
    """A LangChain vector store over a real (instrumented) Chroma collection or Qdrant client, as langchain-chroma and
    langchain-qdrant are: its search calls the client's query method."""
    from langchain_core.documents import Document
    from langchain_core.vectorstores import VectorStore

    from vectors import embed

    class ClientStore(VectorStore):
        collection_name = "kb"

        def add_texts(self, texts, metadatas=None, **kwargs):
            return []

        @classmethod
        def from_texts(cls, texts, embedding, metadatas=None, **kwargs):
            return cls()

        def similarity_search_with_score(self, query, k=4, **kwargs):
            if kind == "chroma":
                result = client.query(query_texts=[query], n_results=k)
                return [(Document(id=i, page_content=t), d) for i, t, d in zip(result["ids"][0], result["documents"][0], result["distances"][0])]
            points = client.query_points("kb", query=embed(query), limit=k, with_payload=True).points
            return [(Document(id=p.payload["slug"], page_content=p.payload["text"]), p.score) for p in points]

        def similarity_search(self, query, k=4, **kwargs):
            return [d for d, _ in self.similarity_search_with_score(query, k)]

    ClientStore.__name__ = "Chroma" if kind == "chroma" else "QdrantVectorStore"  # as the LangChain integrations name them
    return ClientStore()


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_a_vector_store_over_an_instrumented_client_is_one_span(request, telemetry, kind):
    from corpus import SHIPPING_QUESTION

    client = request.getfixturevalue("kb" if kind == "chroma" else "qdrant")
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])
    store = _client_backed_store(kind, client)
    with micrometrics.context(relevant_document_ids=["shipping-germany"]):
        hits = store.similarity_search_with_score(SHIPPING_QUESTION, k=2)
        docs = store.as_retriever(search_kwargs={"k": 2}).invoke(SHIPPING_QUESTION)
        adocs = asyncio.run(store.asimilarity_search(SHIPPING_QUESTION, k=2))  # LangChain runs the sync search in a thread
    assert [d.id for d, _ in hits] == [d.id for d in docs] == [d.id for d in adocs]
    spans = retrieval_spans(telemetry)
    # The store's search (or the retriever above it) has the span; the client's query under it opens none.
    assert [s.attributes[A.GEN_AI_PROVIDER_NAME] for s in spans] == ["langchain"] * 3
    assert {s.attributes[A.DB_SYSTEM_NAME] for s in spans} == {kind}
    search = spans[0]
    assert search.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == ("distance" if kind == "chroma" else "similarity")
    key = "micrometrics.distance" if kind == "chroma" else "score"
    assert json.loads(search.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": d.id, key: pytest.approx(s)} for d, s in hits]
    assert all(s.attributes["micrometrics.retrieval_precision.mrr"] == 1.0 for s in spans)


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
@pytest.mark.parametrize("way", ["psycopg", "psycopg-async", "psycopg2", "sqlalchemy-psycopg", "sqlalchemy-psycopg2", "langchain-pgvector", "langchain-in-memory", "langchain-faiss"])
def test_contents_are_exported_only_under_capture(postgres, instrument, telemetry, way, capture):
    instrument(capture_content=capture, metrics=[])
    ids = STORES[way](postgres)[0]
    (span,) = retrieval_spans(telemetry)
    texts = {doc_id: text for doc_id, text, _ in DOCUMENTS}
    if capture:
        assert json.loads(span.attributes[A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS]) == [{"id": i, "content": texts[i]} for i in ids]
    else:
        assert A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS not in span.attributes and A.GEN_AI_RETRIEVAL_DOCUMENTS not in span.attributes
        assert not any(text in str(v) for v in span.attributes.values() for text in texts.values())


def test_faiss_async_searches_are_one_span_each(telemetry):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    pytest.importorskip("langchain_community", reason="langchain-community is not installed")
    from langchain_community.vectorstores import FAISS

    store = FAISS.from_texts([t for _, t, _ in DOCUMENTS], ScenarioEmbeddings(), ids=[i for i, _, _ in DOCUMENTS])
    telemetry.instrument(capture_content=True, metrics=[])  # FAISS was defined before: its overrides are found then

    async def main():
        return (
            await store.asimilarity_search(QUERY_TEXT, k=2),
            await store.asimilarity_search_with_score(QUERY_TEXT, k=2),
            await store.amax_marginal_relevance_search(QUERY_TEXT, k=2, fetch_k=4),
        )

    docs, hits, mmr = asyncio.run(main())
    spans = retrieval_spans(telemetry)
    assert [s.name for s in spans] == ["retrieval FAISS"] * 3
    assert [d["id"] for d in json.loads(spans[0].attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == [d.id for d in docs] == ["1", "2"]
    assert json.loads(spans[1].attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": d.id, "micrometrics.distance": pytest.approx(s)} for d, s in hits]
    assert [d["id"] for d in json.loads(spans[2].attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])] == [d.id for d in mmr]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_pgvector_adapters_and_numpy_query_vectors(postgres, instrument, telemetry, driver):
    """``pgvector.psycopg(2).register_vector`` (C-level type checks on psycopg2's connection) and a numpy query vector:
    the evidence that makes ``<->`` a vector search."""
    np = pytest.importorskip("numpy")
    statement = f"SELECT id, embedding, embedding <-> %s AS d FROM {TABLE} ORDER BY d LIMIT %s"
    query = np.array(QUERY_VECTOR, dtype=np.float32)
    instrument(capture_content=True, metrics=[])
    if driver == "psycopg":
        from pgvector.psycopg import register_vector

        with psycopg.connect(postgres.dsn) as conn:
            register_vector(conn)
            rows = conn.execute(statement, (query, TOP_K)).fetchall()
    else:
        from pgvector.psycopg2 import register_vector

        conn = psycopg2.connect(postgres.dsn)
        try:
            register_vector(conn)
            cur = conn.cursor()
            cur.execute(statement, (query, TOP_K))
            rows = cur.fetchall()
        finally:
            conn.close()
    assert [r[0] for r in rows] == EXPECTED_IDS
    assert isinstance(rows[0][1], np.ndarray)  # the application's own typecaster still decodes its rows
    (span,) = retrieval_spans(telemetry)
    assert json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": r[0], "micrometrics.distance": pytest.approx(r[2])} for r in rows]


def test_async_named_cursor_and_async_failure(postgres, instrument, telemetry):
    instrument(metrics=[])

    async def main():
        async with await psycopg.AsyncConnection.connect(postgres.dsn) as conn:
            async with conn.transaction():
                async with conn.cursor(name="aknn") as cur:
                    await cur.execute(COSINE_SQL, (QUERY, TOP_K))
                    rows = await cur.fetchall()
            with pytest.raises(psycopg.errors.UndefinedTable):
                await conn.execute("SELECT id, embedding <=> %s AS d FROM no_such_table ORDER BY d LIMIT 1", (QUERY,))
            return rows

    assert [r[0] for r in asyncio.run(main())] == EXPECTED_IDS
    spans = retrieval_spans(telemetry)
    assert len(spans) == 2, [(s.name, dict(s.attributes)) for s in spans]
    ok, failed = spans
    assert ok.name == f"retrieval {TABLE}" and A.ERROR_TYPE not in ok.attributes
    assert failed.name == "retrieval no_such_table" and failed.attributes[A.ERROR_TYPE] == "psycopg.errors.UndefinedTable"


def test_uninstrument_restores_every_vector_store(telemetry):
    import types

    from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

    originals = {name: InMemoryVectorStore.__dict__[name] for name in ("similarity_search", "asimilarity_search_with_score")}
    telemetry.instrument(metrics=[])
    assert all(InMemoryVectorStore.__dict__[n] is not f for n, f in originals.items())
    assert "__init_subclass__" in VectorStore.__dict__
    micrometrics.uninstrument()
    assert all(InMemoryVectorStore.__dict__[n] is f for n, f in originals.items())
    assert type(VectorStore.__dict__["similarity_search_with_score"]) is types.FunctionType  # not a wrapt proxy
    assert "__init_subclass__" not in VectorStore.__dict__

    class Later(InMemoryVectorStore):  # defined after uninstrument(): not wrapped
        def similarity_search(self, query, k=4, **kwargs):
            return super().similarity_search(query, k=k, **kwargs)

    assert type(Later.__dict__["similarity_search"]) is types.FunctionType
