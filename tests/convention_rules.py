"""The GenAI semantic conventions v1.41 (tests/conventions/) as rules, and the check of sampled telemetry against them.

``violations(samples)`` takes what tests/telemetry_harness.py sampled (signal, where, key -> types, values,
JSON) and returns one line per deviation: the key, what we emitted, what the conventions say.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

from micrometrics_semconv import values as V

FOLDER = Path(__file__).resolve().parent / "conventions"

#: The namespaces the conventions define and we validate; other keys are ours (micrometrics.*, checked
#: by test_zz_declared_names.py) or the application's (context attributes).
VALIDATED_PREFIXES = ("gen_ai.", "server.", "error.", "db.")
#: Enums whose members are the only values: the conventions name every operation, output and token type we report.
CLOSED_ENUMS = frozenset({"gen_ai.operation.name", "gen_ai.output.type", "gen_ai.token.type"})
#: Content attributes -> the JSON schema their value must follow.
SCHEMAS = {
    "gen_ai.input.messages": "gen-ai-input-messages.json",
    "gen_ai.output.messages": "gen-ai-output-messages.json",
    "gen_ai.system_instructions": "gen-ai-system-instructions.json",
    "gen_ai.tool.definitions": "gen-ai-tool-definitions.json",
    "gen_ai.retrieval.documents": "gen-ai-retrieval-documents.json",
}

#: Values outside a convention's open enum that we declare and document (docs/providers.md, docs/retrieval.md).
DECLARED_VALUES: dict[str, dict[str, str]] = {
    "gen_ai.provider.name": {
        V.PROVIDER_CHROMA: "Chroma retrieval spans (docs/retrieval.md)",
        V.PROVIDER_QDRANT: "Qdrant retrieval spans (docs/retrieval.md)",
        V.PROVIDER_LANGCHAIN: "LangChain retriever spans (docs/retrieval.md); LangChain/LangGraph agent and workflow spans, and "
                              "the chat span of a model that names no provider (docs/frameworks.md)",
        V.PROVIDER_LLAMA_INDEX: "LlamaIndex retriever, agent and workflow spans, and models of an unnamed provider (docs/frameworks.md)",
        V.PROVIDER_CUSTOM: "@micrometrics.retriever / record_retrieval without a provider (docs/retrieval.md)",
        V.PROVIDER_PGVECTOR: "pgvector queries through psycopg / psycopg2 / SQLAlchemy (docs/retrieval.md)",
        V.PROVIDER_OLLAMA: "Ollama, native client and OpenAI-compatible /v1 (no well-known member; docs/providers.md)",
        V.PROVIDER_TOGETHER_AI: "OpenAI-compatible host api.together.xyz (docs/providers.md)",
        V.PROVIDER_FIREWORKS_AI: "OpenAI-compatible host api.fireworks.ai (docs/providers.md)",
        V.PROVIDER_OPENROUTER: "OpenAI-compatible host openrouter.ai (docs/providers.md)",
        V.PROVIDER_MILVUS: "Milvus retrieval spans (docs/retrieval.md)",
        V.PROVIDER_LANCEDB: "LanceDB retrieval spans (docs/retrieval.md)",
        V.PROVIDER_PINECONE: "Pinecone retrieval spans (docs/retrieval.md)",
        V.PROVIDER_ELASTICSEARCH: "Elasticsearch kNN retrieval spans, as its well-known db.system.name (docs/retrieval.md)",
        V.PROVIDER_OPENSEARCH: "OpenSearch k-NN retrieval spans, as its well-known db.system.name (docs/retrieval.md)",
        V.PROVIDER_WEAVIATE: "Weaviate retrieval spans (docs/retrieval.md)",
        V.PROVIDER_LITELLM: "a LiteLLM Router call that failed before a deployment answered (docs/providers.md, LiteLLM)",
    },
    "db.system.name": {
        V.DB_SYSTEM_CHROMA: "Chroma (no well-known db.system.name member; docs/retrieval.md)",
        V.DB_SYSTEM_QDRANT: "Qdrant (no well-known db.system.name member; docs/retrieval.md)",
        V.DB_SYSTEM_MILVUS: "Milvus (no well-known db.system.name member; docs/retrieval.md)",
        V.DB_SYSTEM_LANCEDB: "LanceDB (no well-known db.system.name member; docs/retrieval.md)",
        V.DB_SYSTEM_PINECONE: "Pinecone (no well-known db.system.name member; docs/retrieval.md)",
        V.DB_SYSTEM_WEAVIATE: "Weaviate (no well-known db.system.name member; docs/retrieval.md)",
        V.DB_SYSTEM_FAISS: "FAISS through LangChain (no well-known db.system.name member; docs/retrieval.md)",
        V.DB_SYSTEM_LANGCHAIN_IN_MEMORY: "LangChain's InMemoryVectorStore (no database; docs/retrieval.md)",
    },
}

#: Values the tests' applications pass themselves (``@micrometrics.retriever(db_system=...)``): the caller's choice, used as given.
APPLICATION_VALUES: dict[str, dict[str, str]] = {
    "gen_ai.provider.name": {"pgvector": "tests/retrieval/test_retriever_decorator.py: db_system='pgvector', the default provider",
                             "custom-store": "tests/retrieval/test_store_scenario.py: db_system='custom-store', the default provider"},
    "db.system.name": {"pgvector": "tests/retrieval/test_retriever_decorator.py: db_system='pgvector'",
                       "custom-store": "tests/retrieval/test_store_scenario.py: db_system='custom-store'"},
}

#: Attributes not in v1.41 that we emit under an open proposal's names, each documented: key -> where it comes from.
PROPOSED: dict[str, str] = {
    key: "cost in money: open-telemetry/semantic-conventions-genai PR #443 (docs/cost.md), declared in micrometrics_semconv"
    for key in ("gen_ai.usage.cost.amount", "gen_ai.usage.cost.currency", "gen_ai.usage.cost.source")
}

#: Attributes a span or event carries beyond its convention's definition, each documented: (definition id, key) -> why.
EXTENSIONS: dict[tuple[str, str], str] = {
    ("span.gen_ai.embeddings.client", "gen_ai.response.id"):
        "the inference spans' attribute, set when an OpenAI-compatible server returns an id (vLLM does); docs/providers.md",
    ("span.gen_ai.embeddings.client", "gen_ai.conversation.id"):
        "from micrometrics.context(conversation_id=...), on every span of the block; docs/providers.md",
    ("span.gen_ai.retrieval.client", "gen_ai.conversation.id"):
        "from micrometrics.context(conversation_id=...), on every span of the block; docs/providers.md",
    ("span.gen_ai.execute_tool.internal", "gen_ai.conversation.id"):
        "from micrometrics.context(conversation_id=...) or an Agents SDK run's group_id, on every span of the run; docs/frameworks.md",
    ("span.gen_ai.retrieval.client", "db.system.name"):
        "the registry's note on gen_ai.data_source.id: retrieval MAY add db.* attributes; docs/retrieval.md",
    ("span.gen_ai.retrieval.client", "db.collection.name"):
        "the registry's note on gen_ai.data_source.id: retrieval MAY add db.* attributes; docs/retrieval.md",
    ("event.gen_ai.evaluation.result", "gen_ai.operation.name"):
        "log backends filter evaluation records by operation without joining the span; README (Logs), docs/evaluation.md",
    ("event.gen_ai.evaluation.result", "gen_ai.provider.name"):
        "log backends filter evaluation records by provider without joining the span; README (Logs), docs/evaluation.md",
    ("span.gen_ai.retrieval.client", "db.operation.name"):
        "the registry's note on gen_ai.data_source.id: retrieval MAY add db.* attributes; docs/retrieval.md",
}

#: Deviations the test found that belong to another part of the house: (rule, key, text the message contains)
#: -> owner and what is wrong. Each owner removes its line with its fix; the test warns of lines that match nothing.
KNOWN_DEVIATIONS: dict[tuple[str, str, str], str] = {
    ("schema", "gen_ai.retrieval.documents", "'score' is a required property"):
        "deliberate (issue 16 item 3): a document the store gave no relevance score for (a distance, Chroma l2, or none) "
        "is exported without `score`, never with null or a distance as a score; docs/retrieval.md",
    ("schema", "gen_ai.retrieval.documents", "'id' is a required property"):
        "deliberate (issue 16 item 3): a document the retriever returned without an id is exported with its score only, "
        "never with a null or invented id; docs/retrieval.md",
    ("schema", "gen_ai.tool.definitions", "'description' is a required property"):
        "deliberate: a tool the application defined without a description is exported without one, never with an "
        "invented text; docs/providers.md",
}


@dataclass
class Definition:
    id: str
    attributes: frozenset[str]
    operations: tuple[str, ...] = ()


@dataclass
class Conventions:
    #: key -> the registry entry (type, members, deprecated, stability)
    attributes: dict[str, dict[str, Any]]
    spans: list[Definition]
    events: dict[str, Definition]
    metrics: dict[str, Definition]
    schemas: dict[str, Any] = field(default_factory=dict)

    def span_for(self, operation: str) -> Definition | None:
        return next((d for d in self.spans if operation in d.operations), None)


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((FOLDER / name).read_text(encoding="utf-8"))


def _refs(group: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(a["ref"] for a in group.get("attributes") or ())


@lru_cache(maxsize=1)
def conventions() -> Conventions:
    attributes = {a["id"]: a for g in _load("registry.yaml")["groups"] for a in g["attributes"]}
    spans = [Definition(g["id"], _refs(g), tuple(g.get("operations") or ())) for g in _load("spans.yaml")["groups"]]
    by_id = {d.id: d for d in spans}
    events = {}
    for g in _load("events.yaml")["groups"]:
        refs = _refs(g) | (by_id[g["extends"]].attributes if g.get("extends") else frozenset())
        events[g["name"]] = Definition(g["id"], refs)
    metrics = {g["metric_name"]: Definition(g["id"], _refs(g)) for g in _load("metrics.yaml")["groups"]}
    schemas = {key: json.loads((FOLDER / name).read_text(encoding="utf-8")) for key, name in SCHEMAS.items()}
    return Conventions(attributes, spans, events, metrics, schemas)


def members(entry: Mapping[str, Any]) -> set[str] | None:
    kind = entry.get("type")
    return {m["value"] for m in kind["members"]} if isinstance(kind, dict) else None


def expected_types(entry: Mapping[str, Any], signal: str) -> set[str]:
    """The value types a registry entry allows (an enum is a string; ``any`` is JSON text on spans, structured on logs)."""
    kind = entry.get("type")
    if isinstance(kind, dict):
        return {"string"}
    if kind == "any":
        return {"string", "map", "map[]", "any[]"} if signal == "log" else {"string"}
    return {kind}


def _definition(conv: Conventions, signal: str, where: str) -> Definition | None:
    if signal == "span":
        return conv.span_for(where)
    if signal == "log":
        return conv.events.get(where)
    if signal == "metric":
        return conv.metrics.get(where)
    return None


def _json_values(values: Iterable[Any]) -> Iterable[tuple[Any, Any]]:
    """(as emitted, parsed) for each content value; parsed is a ValueError when the text is not JSON."""
    for value in values:
        if isinstance(value, str):
            try:
                yield value, json.loads(value)
            except ValueError as exc:
                yield value, exc
        else:
            yield value, _as_json(value)


def _as_json(value: Any) -> Any:
    """A structured log attribute as JSON reads it: the SDK stores a log record's lists as tuples (OTLP: arrays)."""
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value) if not isinstance(value, str) or len(value) < 60 else value
    return text if len(text) <= limit else text[:limit] + "…"


def violations(samples: Mapping[tuple[str, str, str], Any]) -> list[tuple[str, str, str]]:
    """(rule, key, message) for every deviation from the conventions in ``samples``."""
    conv = conventions()
    found: list[tuple[str, str, str]] = []

    def add(rule: str, key: str, message: str) -> None:
        found.append((rule, key, message))

    for (signal, where, key), sample in sorted(samples.items()):
        if not key.startswith(VALIDATED_PREFIXES):
            continue
        at = f"{signal} {where!r}"
        entry = conv.attributes.get(key)
        if entry is None and key in PROPOSED:
            continue
        if entry is None:
            add("undefined", key, f"on {at}: not an attribute of the conventions v1.41 (values {', '.join(_short(v) for v in sample.values[:3])})")
            continue
        if entry.get("deprecated"):
            add("deprecated", key, f"on {at}: deprecated by the conventions ({entry['deprecated']})")
        allowed = expected_types(entry, signal)
        wrong = sorted(sample.types - allowed)
        if wrong:
            add("type", key, f"on {at}: emitted as {'/'.join(wrong)} (e.g. {', '.join(_short(v) for v in sample.values[:3])}); the conventions define {entry['type'] if not isinstance(entry['type'], dict) else 'an enum of strings'}")
        enum = members(entry)
        if enum is not None:
            declared = {**DECLARED_VALUES.get(key, {}), **APPLICATION_VALUES.get(key, {})}
            for value in sample.values:
                if value in enum:
                    continue
                if key in CLOSED_ENUMS:
                    add("enum", key, f"on {at}: {value!r} is not one of {sorted(enum)}")
                elif key != "error.type" and value not in declared:
                    add("enum", key, f"on {at}: {value!r} is neither a well-known value {sorted(enum)} nor one we declare {sorted(declared)}")
        definition = _definition(conv, signal, where)
        if definition is not None and key not in definition.attributes and (definition.id, key) not in EXTENSIONS:
            add("definition", key, f"on {at}: {definition.id} does not define {key} (defines {sorted(a for a in definition.attributes if a.startswith(VALIDATED_PREFIXES))})")
        schema = conv.schemas.get(key)
        if schema is not None:
            validator = jsonschema.Draft202012Validator(schema)
            for raw, parsed in _json_values(sample.json):
                if isinstance(parsed, ValueError):
                    add("json", key, f"on {at}: not JSON ({parsed}): {_short(raw)}")
                    continue
                error = jsonschema.exceptions.best_match(validator.iter_errors(parsed))
                if error is not None:
                    path = "/".join(str(p) for p in error.absolute_path)
                    add("schema", key, f"on {at}: {error.message} at /{path}: {_short(raw)}")
                    continue
                for problem in part_problems(schema, parsed):
                    add("schema", key, f"on {at}: {problem}: {_short(raw)}")
    return found


def _parts(value: Any) -> Iterable[tuple[str, Any]]:
    """(path, part) of every message part in a messages or parts value."""
    for i, item in enumerate(value if isinstance(value, list) else ()):
        if isinstance(item, dict) and isinstance(item.get("parts"), list):
            for j, part in enumerate(item["parts"]):
                yield f"/{i}/parts/{j}", part
        else:
            yield f"/{i}", item


def part_problems(schema: Mapping[str, Any], value: Any) -> list[str]:
    """What the schema's ``anyOf`` lets through its GenericPart but the named part says: a part whose ``type``
    is a known part's (``blob``, ``uri``, ``tool_call``...) must be that part; a ``uri`` is no base64 data URL."""
    defs = schema.get("$defs") or {}
    by_type = {d["properties"]["type"]["const"]: name for name, d in defs.items() if "const" in (d.get("properties", {}).get("type") or {})}
    problems = []
    for path, part in _parts(value):
        if not isinstance(part, dict) or part.get("type") not in by_type:
            continue
        name = by_type[part["type"]]
        sub = {"$defs": defs, **defs[name]}
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(sub).iter_errors(part))
        if error is not None:
            problems.append(f"{name}: {error.message} at {path}")
        elif part["type"] == "uri" and isinstance(part.get("uri"), str) and part["uri"].startswith("data:"):
            problems.append(f"UriPart: a base64 data URL at {path}, which the schema says is a `blob` part")
    return problems


def known_entry(rule: str, key: str, message: str) -> tuple[str, str, str] | None:
    return next((k for k in KNOWN_DEVIATIONS if k[0] == rule and k[1] == key and k[2] in message), None)


def split_known(found: list[tuple[str, str, str]]) -> tuple[list[tuple[str, str, str]], dict[tuple[str, str, str], list[str]], list[tuple[str, str, str]]]:
    """(new violations, known ones by their KNOWN_DEVIATIONS entry, entries that matched nothing)."""
    new, known = [], {}
    for rule, key, message in found:
        entry = known_entry(rule, key, message)
        if entry is not None:
            known.setdefault(entry, []).append(message)
        else:
            new.append((rule, key, message))
    stale = [k for k in KNOWN_DEVIATIONS if k not in known]
    return new, known, stale

