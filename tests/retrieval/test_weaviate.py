"""A user instruments an app that queries Weaviate with the v4 client (``collection.query.near_vector``,
``near_text``, ``near_object``, ``hybrid``, ``bm25``; ``WeaviateClient`` and ``WeaviateAsyncClient``): what their
backend shows.

The client cannot share our environment (it needs grpcio < 1.80, protobuf < 7, httpx < 0.29: weaviate_env.py),
so weaviate_scenario.py runs in its own cached venv: the real client over loopback against a server speaking
Weaviate's REST ``/v1/meta`` and gRPC ``weaviate.v1.Weaviate/Search`` (the client's own protobuf classes), with
micrometrics instrumenting into in-memory exporters. It prints what each case's backend received; these tests
assert on that.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from micrometrics_semconv import attributes as A
from store_scenario import DOCUMENTS, QUERY_TEXT, RELEVANT_IDS, assert_scenario
from telemetry_harness import emitted_names, record_values
from weaviate_env import Unavailable, python

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [text for _, text, _ in DOCUMENTS]
SCRIPT_TIMEOUT_S = 120


def oid(doc_id: str) -> str:
    return str(uuid.UUID(int=int(doc_id)))


@pytest.fixture(scope="module")
def cases() -> dict:
    try:
        interpreter = python()
    except Unavailable as exc:
        pytest.skip(f"the Weaviate test environment cannot be built here: {exc}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("src", "semconv", "instrumentation"))}
    out = subprocess.run([str(interpreter), str(Path(__file__).with_name("weaviate_scenario.py"))],
                         capture_output=True, text=True, env=env, timeout=SCRIPT_TIMEOUT_S)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    for case in result["cases"].values():
        for span in case["spans"]:  # the conventions check (tests/test_zz_conventions.py) validates these too
            emitted_names["attributes"].update(span["attributes"])
            record_values("span", str(span["attributes"].get(A.GEN_AI_OPERATION_NAME) or span["name"]), span["attributes"])
        case["grpc_port"] = result["grpc_port"]
    return result["cases"]


def the_span(case: dict) -> SimpleNamespace:
    (span,) = case["spans"]
    return SimpleNamespace(**span)


def documents(span: SimpleNamespace) -> list[dict]:
    return json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])


def test_the_shared_scenario_scores_the_same_on_weaviate(cases):
    """near_vector with distances asked for, labels by object uuid: the same precision, recall, MRR and NDCG as every store."""
    case = cases["scenario"]
    assert [o["uuid"] for o in case["got"]] == [oid(i) for i in ("1", "2", "3")]
    span = the_span(case)
    assert (span.kind, span.status, span.parent) == ("CLIENT", "UNSET", False)
    attrs = assert_scenario(span, data_source="Docs", db_system="weaviate", score_kind="distance")
    assert (attrs[A.DB_COLLECTION_NAME], attrs[A.DB_OPERATION_NAME], attrs[A.GEN_AI_PROVIDER_NAME]) == ("Docs", "near_vector", "weaviate")
    assert (attrs[A.SERVER_ADDRESS], attrs[A.SERVER_PORT]) == ("localhost", case["grpc_port"])  # searches go over gRPC
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in attrs  # ids and scores are opt-in content, as on every store
    assert RELEVANT_IDS == ["1", "3", "4"]
    (point,) = case["metrics"]["gen_ai.client.operation.duration"]
    assert (point[A.GEN_AI_OPERATION_NAME], point[A.GEN_AI_PROVIDER_NAME]) == ("retrieval", "weaviate")


def test_content_only_with_capture(cases):
    off, on = the_span(cases["near_text_capture_false"]), the_span(cases["near_text_capture_true"])
    assert not any(t in json.dumps(off.attributes) for t in [QUERY_TEXT, *TEXTS])
    assert off.attributes[A.DB_OPERATION_NAME] == "near_text" and off.attributes[A.GEN_AI_REQUEST_TOP_K] == 3.0
    assert on.attributes[A.GEN_AI_RETRIEVAL_QUERY_TEXT] == QUERY_TEXT
    # near_text asked for no metadata: ids in rank order, no scores, no score kind.
    assert documents(on) == [{"id": oid(i)} for i in ("1", "2", "3")]
    assert A.MICROMETRICS_RETRIEVAL_SCORE_KIND not in on.attributes
    contents = json.loads(on.attributes[A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS])
    assert contents == [{"id": oid(i), "content": t} for i, t in (("1", TEXTS[0]), ("2", TEXTS[1]), ("3", TEXTS[2]))]


@pytest.mark.parametrize(("case", "operation", "kind", "field", "key"), [
    ("near_vector_certainty", "near_vector", "similarity", "certainty", "score"),
    ("near_vector_both", "near_vector", "distance", "distance", A.MICROMETRICS_DISTANCE),  # distance wins over certainty
    ("near_object_distance", "near_object", "distance", "distance", A.MICROMETRICS_DISTANCE),
    ("hybrid_score", "hybrid", "similarity", "score", "score"),
    ("bm25_score", "bm25", "similarity", "score", "score"),  # MetadataQuery.full(): the ranking score, not distance
])
def test_scores_are_what_the_query_asked_for(cases, case, operation, kind, field, key):
    got = cases[case]["got"]
    span = the_span(cases[case])
    assert span.attributes[A.DB_OPERATION_NAME] == operation
    assert span.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == kind
    assert documents(span) == [{"id": o["uuid"], key: pytest.approx(o[field])} for o in got]
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == float(len(got))


def test_a_query_without_metadata_is_sent_as_the_user_wrote_it(cases):
    """We never ask the server for scores the user did not: the request and the result are the ones without us."""
    case = cases["near_vector_no_metadata"]
    assert case["request"] == case["request_without_us"]
    assert not any(case["request"].get(k) for k in ("distance", "certainty", "score"))
    assert case["got"] == case["got_without_us"]
    assert documents(the_span(case)) == [{"id": o["uuid"]} for o in case["got"]]


def test_async_client(cases):
    case = cases["async"]
    vector, hybrid = (SimpleNamespace(**s) for s in case["spans"])
    assert [o["uuid"] for o in case["got"]] == [oid(i) for i in ("1", "2", "3")]
    assert_scenario(vector, data_source="Docs", db_system="weaviate", score_kind="distance")
    assert documents(vector) == [{"id": o["uuid"], A.MICROMETRICS_DISTANCE: pytest.approx(o["distance"])} for o in case["got"]]
    assert (hybrid.attributes[A.DB_OPERATION_NAME], hybrid.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND]) == ("hybrid", "similarity")
    assert [d["id"] for d in documents(hybrid)] == [o["uuid"] for o in case["got_hybrid"]]


def test_a_refused_search_raises_the_same_error_and_uninstrument_restores(cases):
    case = cases["error"]
    with_us, without_us = case["errors"]
    assert with_us == without_us and with_us["type"] == "weaviate.exceptions.WeaviateQueryError"
    span = the_span(case)
    assert (span.name, span.status) == ("retrieval Broken", "ERROR")
    assert span.attributes[A.ERROR_TYPE] == "weaviate.exceptions.WeaviateQueryError"
    assert [e["name"] for e in span.events] == ["exception"]
    assert QUERY_TEXT not in json.dumps(span.events) + json.dumps(case["logs"])  # the error quotes the query: not without capture
    (point,) = case["metrics"]["gen_ai.client.operation.duration"]
    assert point[A.ERROR_TYPE] == "weaviate.exceptions.WeaviateQueryError"
    assert case["wrapped_after_uninstrument"] == []


def test_a_refused_search_shows_its_message_only_with_capture(cases):
    span = the_span(cases["error_capture"])
    (event,) = span.events
    assert QUERY_TEXT in event["attributes"][A.EXCEPTION_MESSAGE]
    (record,) = [r for r in cases["error_capture"]["logs"] if r["event_name"] == "gen_ai.client.operation.exception"]
    assert record["severity"] == "WARN" and QUERY_TEXT in record["attributes"][A.EXCEPTION_MESSAGE]


def test_odd_answers_are_recorded_as_far_as_they_go(cases):
    """No objects; a NaN distance and a null text; concepts given as a list and no limit: the app gets what the
    client decodes, the span what there is."""
    case = cases["odd"]
    empty, odd, concepts = (SimpleNamespace(**s) for s in case["spans"])
    assert case["got_empty"] == [] and empty.status == "UNSET"
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in empty.attributes
    assert [o["distance"] for o in case["got_odd"]] == ["nan", "0.25"]
    assert documents(odd) == [{"id": oid("4")}, {"id": oid("2"), A.MICROMETRICS_DISTANCE: 0.25}]
    assert odd.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "distance"
    assert A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS not in odd.attributes  # no text in either object
    assert [d["id"] for d in documents(concepts)] == [o["uuid"] for o in case["got_concepts"]]
    assert A.GEN_AI_REQUEST_TOP_K not in concepts.attributes and A.GEN_AI_RETRIEVAL_QUERY_TEXT not in concepts.attributes


@pytest.mark.parametrize(("case", "query"), [("hybrid_score", QUERY_TEXT), ("bm25_score", QUERY_TEXT), ("near_vector_certainty", None),
                                              ("near_object_distance", None)])
def test_the_query_text_under_capture_is_the_text_searched_for(cases, case, query):
    assert the_span(cases[case]).attributes.get(A.GEN_AI_RETRIEVAL_QUERY_TEXT) == query
