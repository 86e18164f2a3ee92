"""Which SQL a pgvector span is made for, and what is read from it: the statement plans, without a server.

(test_pgvector.py runs the same statements on a real PostgreSQL; these pin the parser's edge cases.)"""

from __future__ import annotations

import pytest

from micrometrics_instrumentation.pgvector import statements
from micrometrics_instrumentation.pgvector.statements import is_retrieval, plan, top_k


@pytest.mark.parametrize(
    "sql, operator, table, limit, limit_param, alias, position",
    [
        ("SELECT id, embedding <=> %s AS distance FROM items ORDER BY distance LIMIT 5", "<=>", "items", 5, None, "distance", 1),
        ("SELECT id FROM items ORDER BY embedding <-> %s LIMIT %s", "<->", "items", None, 1, None, None),
        ('SELECT "Id", embedding <#> $1 FROM public."My Items" ORDER BY 2 FETCH FIRST $2 ROWS ONLY', "<#>", "public.My Items", None, 1, None, 1),
        ("select id, embedding <+> %(q)s d from docs order by d asc limit %(k)s", "<+>", "docs", None, "k", "d", 1),
        ("/* knn */ SELECT id -- the id\n, embedding <=> %s AS dist FROM t WHERE note <> '<->' ORDER BY dist LIMIT 3", "<=>", "t", 3, None, "dist", 1),
        ("SELECT *, embedding <=> %s AS d FROM t ORDER BY d LIMIT 3", "<=>", "t", 3, None, "d", None),  # after *: found by alias only
        ("WITH c AS (SELECT 1) SELECT id FROM items ORDER BY embedding <=> '[1,2,3]'::vector LIMIT 2", "<=>", "items", 2, None, None, None),
    ],
)
def test_a_nearest_neighbour_statement_is_planned(sql, operator, table, limit, limit_param, alias, position):
    p = plan(sql)
    assert p is not None
    assert (p.operator, p.table, p.limit, p.limit_param, p.distance_alias, p.distance_position) == (operator, table, limit, limit_param, alias, position)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT id FROM items ORDER BY id LIMIT 3",
        "SELECT id FROM items WHERE embedding <=> %s < 0.3",  # a distance filter, not an ordering
        "SELECT id FROM items WHERE note = '<=>' ORDER BY id",  # the operator inside a string
        "SELECT id FROM items WHERE note = $$ <-> $$ ORDER BY id",  # inside a dollar-quoted string
        "SELECT id FROM items ORDER BY id -- embedding <-> %s",  # inside a comment
        "SELECT name FROM words ORDER BY name <<-> %s LIMIT 3",  # pg_trgm's word distance
        "SELECT id FROM shapes ORDER BY geom <<->> %s LIMIT 3",  # PostGIS' n-d distance
        "UPDATE items SET rank = 1 WHERE embedding <=> %s < 0.2",
    ],
)
def test_other_statements_are_not(sql):
    assert plan(sql) is None


def test_l2_and_inner_product_need_a_vector_operand_cosine_and_l1_do_not():
    knn = plan("SELECT id FROM shapes ORDER BY geom <-> %s LIMIT %s")
    assert is_retrieval(knn, ([0.1, 0.2, 0.3], 5)) and is_retrieval(knn, ("[0.1,0.2]", 5))
    assert not is_retrieval(knn, ("POINT(1 2)", 5))  # PostGIS: a geometry
    assert not is_retrieval(knn, (x for x in ([0.1], 5)))  # a generator: never read, so no evidence
    np = pytest.importorskip("numpy")
    assert is_retrieval(knn, (np.array([0.1, 0.2], dtype=np.float32), 5))
    assert not is_retrieval(plan("SELECT id FROM t ORDER BY point(1, 2) <-> point(0, 0) LIMIT 2"), None)
    assert is_retrieval(plan("SELECT id FROM t ORDER BY embedding <=> (SELECT embedding FROM t WHERE id = 1) LIMIT 2"), None)


def test_k_comes_from_the_literal_or_the_bound_parameter():
    assert top_k(plan("SELECT id FROM t ORDER BY e <=> %s LIMIT 7"), ("[1]",)) == 7
    assert top_k(plan("SELECT id FROM t ORDER BY e <=> %s LIMIT %s"), ("[1]", 4)) == 4
    assert top_k(plan("SELECT id FROM t ORDER BY e <=> %(q)s LIMIT %(k)s"), {"q": "[1]", "k": 9}) == 9
    assert top_k(plan("SELECT id FROM t ORDER BY e <=> %s LIMIT %s"), ("[1]", True)) is None  # not a count
    assert top_k(plan("SELECT id FROM t ORDER BY e <=> %s"), ("[1]",)) is None
    assert top_k(plan("SELECT id FROM t ORDER BY e <=> %s LIMIT ALL"), ("[1]",)) is None


def test_bytes_statements_and_the_plan_cache():
    sql = "SELECT id FROM t ORDER BY e <=> %s LIMIT 2"
    assert plan(sql.encode()) == plan(sql)
    assert plan(sql) is plan(sql)  # parsed once per statement text
    assert plan(None) is None and plan(42) is None
    assert statements.OPERATOR.search("a <-> b")
