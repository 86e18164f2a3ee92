"""pinecone ``Index.query`` / ``AsyncIndex.query`` calls and matches -> retrieval records. Translation only."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Mapping

from micrometrics.records import Document, RetrievalRecord
from micrometrics.reading import field, per_client, server
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: Metadata keys that usually hold a record's text (LangChain, LlamaIndex, plain).
_CONTENT_KEYS = ("text", "page_content", "content", "document", "chunk", "body")
#: A serverless or pod index's host: ``{index}-{project id}.svc.{environment}.pinecone.io``.
_PINECONE_DOMAIN = ".pinecone.io"


@per_client
def index_endpoint(index: Any) -> tuple[str | None, str | None, int | None]:
    """(index name, server.address, server.port) of an index client, from its host.

    The name is read from a Pinecone host; any other host (Pinecone Local, a proxy) names the source by itself.
    """
    host = getattr(index, "_host", None) or getattr(getattr(index, "_config", None), "host", None)
    if not isinstance(host, str) or not host:
        return None, None, None
    address, port = server(host if "://" in host else f"https://{host}")
    if not address:
        return None, None, None
    name = address
    if address.endswith(_PINECONE_DOMAIN):
        label = address.split(".", 1)[0]
        name = label.rsplit("-", 1)[0] if "-" in label else label
    return name, address, port


def _score(match: Any) -> float | None:
    score = field(match, "score")
    return float(score) if isinstance(score, Real) and not isinstance(score, bool) and math.isfinite(score) else None


def _content(metadata: Any) -> str | None:
    if not isinstance(metadata, Mapping):
        return None
    return next((metadata[k] for k in _CONTENT_KEYS if isinstance(metadata.get(k), str)), None)


class QueryTranslator(Translator):
    """``query`` (keyword-only): the namespace's nearest matches, closest first."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        name, host, port = index_endpoint(instance)
        top_k = kwargs.get("top_k")
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_PINECONE,
            server_address=host,
            server_port=port,
            data_source=name,
            top_k=top_k if isinstance(top_k, int) and not isinstance(top_k, bool) else None,
            # cosine and dotproduct (the default metric is cosine); a euclidean index is read from the order below.
            score_kind=V.SCORE_KIND_SIMILARITY,
            db_system=V.DB_SYSTEM_PINECONE,
            db_collection=name if host != name else None,
            db_operation=V.DB_OPERATION_PINECONE_QUERY,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        matches = field(response, "matches")
        docs = []
        for match in matches if isinstance(matches, (list, tuple)) else ():
            match_id = field(match, "id")
            metadata = field(match, "metadata")
            docs.append(Document(
                id=None if match_id is None else str(match_id),
                score=_score(match),
                content=_content(metadata),
                metadata=dict(metadata) if isinstance(metadata, Mapping) else None,
            ))
        record.documents = docs
        scores = [d.score for d in docs if d.score is not None]
        # Matches come closest first: scores rising all the way are euclidean distances.
        if len(scores) > 1 and all(a < b for a, b in zip(scores, scores[1:])):
            record.score_kind = V.SCORE_KIND_DISTANCE
