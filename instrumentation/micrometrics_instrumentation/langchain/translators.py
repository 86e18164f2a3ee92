"""LangChain -> records, translation only: retriever invocations and their documents -> retrieval records; the
callback payloads of chains, agents, tools and models -> run and inference records (callbacks.py)."""

from __future__ import annotations

from numbers import Real
from typing import Any

from micrometrics import nesting
from micrometrics.records import AgentRecord, Document, InferenceRecord, RetrievalRecord, ToolRecord, text_part, tool_definition, tool_definitions
from micrometrics.retrieval import to_document
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: ``VectorStore.similarity_search``'s default ``k``.
_VECTORSTORE_K_DEFAULT = 4
#: Vector store class names (lowercased, any class of its MRO) -> ``db.system.name``.
_DB_SYSTEMS = (
    ("chroma", V.DB_SYSTEM_CHROMA),
    ("qdrant", V.DB_SYSTEM_QDRANT),
    ("pgvector", V.DB_SYSTEM_POSTGRESQL),
    ("faiss", V.DB_SYSTEM_FAISS),
    ("inmemoryvectorstore", V.DB_SYSTEM_LANGCHAIN_IN_MEMORY),
)
#: What ``similarity_search_with_score`` returns, per store (docs/retrieval.md): ``None`` when we do not know,
#: and then its scores are not exported (a distance must never pass for a similarity).
_WITH_SCORE_KINDS = (
    ("inmemoryvectorstore", V.SCORE_KIND_SIMILARITY),  # cosine similarity
    ("pgvector", V.SCORE_KIND_DISTANCE),  # the strategy's distance: cosine distance, L2, or negative inner product
    ("chroma", V.SCORE_KIND_DISTANCE),  # the collection's distance
    ("qdrant", V.SCORE_KIND_SIMILARITY),  # Qdrant's score
)


def _class_names(store: Any) -> list[str]:
    return [c.__name__.lower() for c in type(store).__mro__]


def _lookup(store: Any, table: tuple[tuple[str, str], ...]) -> str | None:
    for name in _class_names(store):
        for key, value in table:
            if key in name:
                return value
    return None


def db_system(store: Any) -> str | None:
    return _lookup(store, _DB_SYSTEMS)


def with_score_kind(store: Any) -> str | None:
    """Whether the store's ``similarity_search_with_score`` scores are similarities or distances."""
    if any("faiss" in name for name in _class_names(store)):
        # IndexFlatIP under MAX_INNER_PRODUCT (inner products), else IndexFlatL2 (squared L2 distances).
        return V.SCORE_KIND_SIMILARITY if str(getattr(store, "distance_strategy", "")).upper().endswith("MAX_INNER_PRODUCT") else V.SCORE_KIND_DISTANCE
    return _lookup(store, _WITH_SCORE_KINDS)


def _collection(vectorstore: Any) -> str | None:
    # langchain-qdrant and langchain-postgres: ``collection_name``; langchain-chroma: ``_collection.name``.
    for value in (getattr(vectorstore, "collection_name", None), getattr(getattr(vectorstore, "_collection", None), "name", None)):
        if isinstance(value, str) and value:
            return value
    return None


def _engine_server(vectorstore: Any) -> tuple[str | None, int | None]:
    """langchain-postgres: the SQLAlchemy engine's host and port (already parsed: no I/O)."""
    for name in ("_engine", "_async_engine"):
        url = getattr(getattr(vectorstore, name, None), "url", None)
        host = getattr(url, "host", None)
        if isinstance(host, str) and host:
            port = getattr(url, "port", None)
            return host, port if isinstance(port, int) else 5432
    return None, None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RetrieverTranslator(Translator):
    """``BaseRetriever.invoke`` / ``ainvoke``: every retriever built on langchain-core."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        query = args[0] if args else kwargs.get("input")
        vectorstore = getattr(instance, "vectorstore", None)
        name = getattr(instance, "name", None)
        top_k = None
        system = None
        collection = None
        host, port = None, None
        if vectorstore is not None:
            search_kwargs = getattr(instance, "search_kwargs", None) or {}
            extra = {k: v for k, v in kwargs.items() if k != "config"}
            top_k = _int({**search_kwargs, **extra}.get("k", _VECTORSTORE_K_DEFAULT))
            system = db_system(vectorstore)
            collection = _collection(vectorstore)
            host, port = _engine_server(vectorstore)
            source = name or collection or type(vectorstore).__name__
        else:
            top_k = _int(getattr(instance, "k", None)) or _int(getattr(instance, "top_k", None))
            source = name or type(instance).__name__
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_LANGCHAIN,
            server_address=host,
            server_port=port,
            data_source=source,
            query=query if isinstance(query, str) else None,
            top_k=top_k,
            # LangChain documents carry scores only when a retriever puts them in metadata.
            score_kind=V.SCORE_KIND_SIMILARITY,
            db_system=system,
            # The store's method (similarity_search, mmr...) is LangChain's, not the database's: no db.operation.name.
            db_collection=collection,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        # ``Document(id=..., page_content=..., metadata=...)``; a score only if the retriever put one in metadata.
        record.documents = [to_document(item) for item in response] if isinstance(response, list) else []


# ---- callback payloads (chains, tools, chat models) -> run and inference records ------------------------

#: LangChain message types -> the conventions' roles.
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "developer": "system", "tool": "tool", "function": "tool",
          "user": "user", "assistant": "assistant", "AIMessageChunk": "assistant", "HumanMessageChunk": "user",
          "SystemMessageChunk": "system", "ToolMessageChunk": "tool", "FunctionMessageChunk": "tool"}
#: LangChain's ``ls_provider`` (what each chat model reports) -> ``gen_ai.provider.name``.
_PROVIDERS = {
    "openai": V.PROVIDER_OPENAI, "azure": V.PROVIDER_AZURE_OPENAI, "anthropic": V.PROVIDER_ANTHROPIC,
    "google_genai": V.PROVIDER_GCP_GEN_AI, "google_vertexai": V.PROVIDER_GCP_VERTEX_AI, "amazon_bedrock": V.PROVIDER_AWS_BEDROCK,
    "bedrock": V.PROVIDER_AWS_BEDROCK, "bedrock_converse": V.PROVIDER_AWS_BEDROCK, "mistralai": V.PROVIDER_MISTRAL_AI,
    "groq": V.PROVIDER_GROQ, "cohere": V.PROVIDER_COHERE, "ollama": V.PROVIDER_OLLAMA, "deepseek": V.PROVIDER_DEEPSEEK,
    "xai": V.PROVIDER_X_AI, "perplexity": V.PROVIDER_PERPLEXITY, "together": V.PROVIDER_TOGETHER_AI,
    "fireworks": V.PROVIDER_FIREWORKS_AI, "openrouter": V.PROVIDER_OPENROUTER,
}
#: LangChain's finish reasons (each provider's own words) -> the conventions'.
_FINISH = {"tool_calls": V.FINISH_TOOL_CALL, "tool_use": V.FINISH_TOOL_CALL, "function_call": V.FINISH_TOOL_CALL,
           "end_turn": "stop", "STOP": "stop", "MAX_TOKENS": "length", "max_tokens": "length"}
#: The metadata LangGraph (``langgraph``) and LangChain's ``create_agent`` put on an agent graph's runs.
AGENT_INTEGRATIONS = ("langgraph", "langchain_create_agent")
#: Chains that are agents by their class (LangChain's classic agent loop).
AGENT_CHAINS = ("AgentExecutor",)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A message's content (text, or a list of text and other blocks) -> the conventions' text parts."""
    if isinstance(content, str):
        return [text_part(content)] if content else []
    parts = []
    for block in content if isinstance(content, (list, tuple)) else ():
        if isinstance(block, str):
            parts.append(text_part(block))
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(text_part(block["text"]))
    return parts


def message(item: Any) -> dict[str, Any] | None:
    """A LangChain message (``BaseMessage``, a ``{"role", "content"}`` dict or a ``(role, content)`` tuple) -> the
    conventions' message; None for anything else."""
    if isinstance(item, dict):
        role, content, calls, call_id = item.get("role") or item.get("type"), item.get("content"), item.get("tool_calls"), item.get("tool_call_id")
    elif isinstance(item, tuple) and len(item) == 2:
        (role, content), calls, call_id = item, None, None
    elif isinstance(item, str):
        role, content, calls, call_id = "human", item, None, None
    else:
        role, content = getattr(item, "type", None), getattr(item, "content", None)
        # Only the fields the message's type has: a pydantic model's miss costs microseconds (it raises).
        calls = getattr(item, "tool_calls", None) if role in ("ai", "AIMessageChunk") else None
        call_id = getattr(item, "tool_call_id", None) if role in ("tool", "ToolMessageChunk") else None
    role = _ROLES.get(role) if isinstance(role, str) else None
    if role is None:
        return None
    if role == "tool":
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": content}]}
    parts = content_parts(content)
    for call in calls if isinstance(calls, (list, tuple)) else ():
        if isinstance(call, dict) and call.get("name"):
            parts.append({"type": "tool_call", "id": call.get("id"), "name": call["name"], "arguments": call.get("args")})
    return {"role": role, "parts": parts}


def messages(items: Any) -> list[dict[str, Any]]:
    return [m for m in (message(i) for i in (items if isinstance(items, (list, tuple)) else ())) if m is not None]


def run_messages(value: Any) -> list[dict[str, Any]]:
    """An agent's input or output: a graph state (``{"messages": [...]}``), a message list, a text, or a chain's
    ``{"input": ...}`` / ``{"output": ...}``."""
    if isinstance(value, dict):
        if "messages" in value:
            return messages(value["messages"])
        for key in ("input", "output", "question", "query"):
            if isinstance(value.get(key), str):
                return [{"role": "assistant" if key == "output" else "user", "parts": [text_part(value[key])]}]
        return []
    if isinstance(value, str):
        return [{"role": "user", "parts": [text_part(value)]}]
    return messages(value)


def is_agent(name: Any, serialized: Any, metadata: Any) -> bool:
    """A chain run that is an agent: a LangGraph graph (or ``create_agent``'s), or a classic ``AgentExecutor``."""
    if isinstance(metadata, dict) and metadata.get("ls_integration") in AGENT_INTEGRATIONS:
        return True
    ids = serialized.get("id") if isinstance(serialized, dict) else None
    return name in AGENT_CHAINS or (isinstance(ids, list) and bool(ids) and ids[-1] in AGENT_CHAINS)


def run_name(name: Any, serialized: Any) -> str | None:
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, dict):
        if isinstance(serialized.get("name"), str) and serialized["name"]:
            return serialized["name"]
        ids = serialized.get("id")
        if isinstance(ids, list) and ids and isinstance(ids[-1], str):
            return ids[-1]
    return None


def agent_record(name: str | None, inputs: Any, workflow: bool) -> AgentRecord:
    """A graph or agent chain (``invoke_agent {name}``), or a top-level chain (``invoke_workflow {name}``)."""
    if workflow:
        return AgentRecord(operation=V.OPERATION_INVOKE_WORKFLOW, provider=V.PROVIDER_LANGCHAIN, workflow_name=name,
                           input_messages=run_messages(inputs))
    return AgentRecord(operation=V.OPERATION_INVOKE_AGENT, provider=V.PROVIDER_LANGCHAIN, agent_name=name,
                       input_messages=run_messages(inputs))


def agent_answer(record: AgentRecord, outputs: Any) -> None:
    """The run's answer: the last assistant message of its output state, or its text."""
    if isinstance(outputs, str):
        answer = [{"role": "assistant", "parts": [text_part(outputs)]}]
    else:
        answer = [m for m in run_messages(outputs) if m["role"] == "assistant" and any(p.get("type") == "text" for p in m["parts"])]
    if answer:
        record.output_messages = [dict(answer[-1], role="assistant", finish_reason="stop")]


def tool_record(serialized: Any, name: Any, input_str: Any, inputs: Any, tool_call_id: Any) -> ToolRecord:
    tool_name = run_name(name, serialized)
    description = serialized.get("description") if isinstance(serialized, dict) else None
    return ToolRecord(
        operation=V.OPERATION_EXECUTE_TOOL, tool_name=tool_name, tool_type=V.TOOL_TYPE_FUNCTION,
        tool_call_id=tool_call_id if isinstance(tool_call_id, str) and tool_call_id else None,
        tool_description=description.strip().splitlines()[0] if isinstance(description, str) and description.strip() else None,
        arguments=inputs if inputs is not None else (input_str if isinstance(input_str, str) else None),
    )


def tool_result(record: ToolRecord, output: Any) -> None:
    """A ``ToolMessage`` (the tool was called with a model's tool call) -> its content; anything else as it is."""
    content = getattr(output, "content", None) if hasattr(output, "tool_call_id") else output
    if content is not None and not isinstance(content, (str, int, float, bool, list, dict)):
        content = str(content)
    record.result = content
    call_id = getattr(output, "tool_call_id", None)
    if record.tool_call_id is None and isinstance(call_id, str) and call_id:
        record.tool_call_id = call_id


#: LiteLLM's model prefixes (``openai/gpt-4o-mini``) that name a provider ``_PROVIDERS`` does not spell the same way.
_LITELLM_PREFIXES = {"gemini": V.PROVIDER_GCP_GEMINI, "vertex_ai": V.PROVIDER_GCP_VERTEX_AI, "mistral": V.PROVIDER_MISTRAL_AI,
                     "together_ai": V.PROVIDER_TOGETHER_AI, "fireworks_ai": V.PROVIDER_FIREWORKS_AI}


def provider(metadata: Any, model: Any = None) -> str:
    """``gen_ai.provider.name`` of a chat model: its ``ls_provider`` (LiteLLM's: its model's prefix), else LangChain
    (a model that names no provider we know)."""
    ls = metadata.get("ls_provider") if isinstance(metadata, dict) else None
    if ls == "litellm" and isinstance(model, str) and "/" in model:
        prefix = model.split("/", 1)[0]
        return _LITELLM_PREFIXES.get(prefix) or _PROVIDERS.get(prefix, V.PROVIDER_LANGCHAIN)
    return _PROVIDERS.get(ls, V.PROVIDER_LANGCHAIN) if isinstance(ls, str) else V.PROVIDER_LANGCHAIN


def inference_record(chat: bool, serialized: Any, inputs: Any, metadata: Any, params: Any) -> InferenceRecord:
    """A chat model's (``chat``) or an LLM's (``text_completion``) call, from its start callback."""
    metadata = metadata if isinstance(metadata, dict) else {}
    params = params if isinstance(params, dict) else {}
    model = metadata.get("ls_model_name") or params.get("model") or params.get("model_name") or params.get("model_id")
    request: dict[str, Any] = {}
    for key, source in ((A.GEN_AI_REQUEST_TEMPERATURE, "ls_temperature"), (A.GEN_AI_REQUEST_MAX_TOKENS, "ls_max_tokens")):
        value = metadata.get(source)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            request[key] = value
    stop = metadata.get("ls_stop")
    if isinstance(stop, (list, tuple)) and stop:
        request[A.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(s for s in stop if isinstance(s, str))
    if chat:
        input_messages = messages(inputs)
    else:
        input_messages = [{"role": "user", "parts": [text_part(p)]} for p in (inputs or ()) if isinstance(p, str)]
    return InferenceRecord(
        operation=V.OPERATION_CHAT if chat else V.OPERATION_TEXT_COMPLETION, provider=provider(metadata, model),
        model=model if isinstance(model, str) and model else None, params=request, input_messages=input_messages,
        tool_definitions=tool_definitions(params.get("tools"), _tool),
    )


def _tool(tool: Any) -> dict[str, Any] | None:
    """A bound tool as the model was sent it (OpenAI's ``{"type": "function", "function": {...}}``, LangChain's
    default format) -> the conventions' definition."""
    spec = tool.get("function") if isinstance(tool, dict) and isinstance(tool.get("function"), dict) else tool
    if not isinstance(spec, dict):
        return None
    return tool_definition("function", spec.get("name"), spec.get("description"), spec.get("parameters"))


def _finish(reason: Any) -> str:
    return _FINISH.get(reason, reason) if isinstance(reason, str) and reason else "stop"


def inference_response(record: InferenceRecord, response: Any) -> None:
    """An ``LLMResult`` -> the record: the first generation's message, finish reason, usage, response id and model."""
    generations = getattr(response, "generations", None) or []
    first = generations[0][0] if generations and generations[0] else None
    info = getattr(first, "generation_info", None) or {}
    ai = getattr(first, "message", None)
    meta = getattr(ai, "response_metadata", None) or {}
    reason = meta.get("finish_reason") or meta.get("stop_reason") or info.get("finish_reason")
    if ai is not None:
        out = message(ai) or {"role": "assistant", "parts": []}
    else:
        out = {"role": "assistant", "parts": [text_part(_text(getattr(first, "text", None)))]}
    out = dict(out, role="assistant", finish_reason=_finish(reason))
    record.output_messages = [out] if first is not None else []
    record.finish_reasons = [out["finish_reason"]] if first is not None else []
    usage = getattr(ai, "usage_metadata", None)
    llm_output = getattr(response, "llm_output", None) or {}
    if isinstance(usage, dict):
        record.input_tokens, record.output_tokens = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    elif isinstance(llm_output.get("token_usage"), dict):
        usage = llm_output["token_usage"]
        record.input_tokens, record.output_tokens = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    response_id = getattr(ai, "id", None) if isinstance(getattr(ai, "id", None), str) and not str(getattr(ai, "id")).startswith("lc_run") else None
    record.response_id = meta.get("id") if isinstance(meta.get("id"), str) else response_id
    model = meta.get("model_name") or meta.get("model") or llm_output.get("model_name")
    record.response_model = model if isinstance(model, str) and model else None
class VectorStoreRetrieverTranslator(RetrieverTranslator):
    """A retriever over a LangChain vector store: its span is the query's one span; the store's search under it
    (wrapped too) and the store's client or SQL under that open none (``nesting.SUPPRESS``)."""

    nested = nesting.SUPPRESS


#: The searches of ``VectorStore`` (and of the subclasses that override them), sync; the async ones are ``a`` + these.
SEARCHES = (
    "similarity_search",
    "similarity_search_with_score",
    "similarity_search_with_relevance_scores",
    "similarity_search_by_vector",
    "similarity_search_with_score_by_vector",
    "max_marginal_relevance_search",
    "max_marginal_relevance_search_by_vector",
)
_RELEVANCE = "similarity_search_with_relevance_scores"


class VectorStoreTranslator(Translator):
    """One search method of any LangChain ``VectorStore``: ``retrieval {collection or class}``.

    The first search the application called has the span: the searches it calls in turn (``similarity_search``
    over ``similarity_search_with_score``, an async one over its sync one) and the store's own instrumented client
    (Chroma, Qdrant, pgvector SQL) open none.
    """

    nested = nesting.SUPPRESS

    def __init__(self, method: str = "similarity_search") -> None:
        self.method = method.removeprefix("a") if method.startswith("a") and method[1:] in SEARCHES else method
        self.by_vector = "by_vector" in self.method

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        query = None if self.by_vector else (args[0] if args else kwargs.get("query"))
        k = args[1] if len(args) > 1 else kwargs.get("k", _VECTORSTORE_K_DEFAULT)
        collection = _collection(instance)
        host, port = _engine_server(instance)
        if self.method == _RELEVANCE:
            score_kind = V.SCORE_KIND_SIMILARITY  # LangChain's relevance: 0 dissimilar .. 1 most similar
        elif "with_score" in self.method:
            score_kind = with_score_kind(instance)
        else:
            score_kind = None  # documents without scores
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_LANGCHAIN,
            server_address=host,
            server_port=port,
            data_source=collection or type(instance).__name__,
            query=query if isinstance(query, str) else None,  # a query vector is never recorded
            top_k=_int(k),
            score_kind=score_kind,
            db_system=db_system(instance),
            db_collection=collection,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        if not isinstance(response, list):
            return
        with_scores = "score" in self.method
        docs = []
        for item in response:
            if with_scores and isinstance(item, tuple) and len(item) == 2:
                doc, score = to_document(item[0]), item[1]
                known = record.score_kind is not None and isinstance(score, Real) and not isinstance(score, bool)
                docs.append(Document(id=doc.id, score=float(score) if known else None, content=doc.content, metadata=doc.metadata))
            else:
                docs.append(to_document(item))
        record.documents = docs
