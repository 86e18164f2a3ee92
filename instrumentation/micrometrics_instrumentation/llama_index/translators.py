"""LlamaIndex objects (LLMs, chat messages, events, nodes, tools, agents) -> micrometrics records. Translation only."""

from __future__ import annotations

from typing import Any, Mapping

from micrometrics.reading import json_or_text
from micrometrics.records import AgentRecord, Document, EmbeddingsRecord, InferenceRecord, RetrievalRecord, ToolRecord, text_part
from micrometrics_semconv import values as V

#: LlamaIndex LLM / embedding class names (their integration packages) -> ``gen_ai.provider.name``; any other: ``llama_index``.
_PROVIDERS = (
    ("azureopenai", V.PROVIDER_AZURE_OPENAI), ("openai", V.PROVIDER_OPENAI), ("anthropic", V.PROVIDER_ANTHROPIC),
    ("bedrock", V.PROVIDER_AWS_BEDROCK), ("vertex", V.PROVIDER_GCP_VERTEX_AI), ("gemini", V.PROVIDER_GCP_GEN_AI),
    ("googlegenai", V.PROVIDER_GCP_GEN_AI), ("mistral", V.PROVIDER_MISTRAL_AI), ("groq", V.PROVIDER_GROQ),
    ("cohere", V.PROVIDER_COHERE), ("ollama", V.PROVIDER_OLLAMA), ("deepseek", V.PROVIDER_DEEPSEEK),
)
#: Vector store class names -> ``db.system.name``.
_DB_SYSTEMS = (("chroma", V.DB_SYSTEM_CHROMA), ("qdrant", V.DB_SYSTEM_QDRANT))
#: LlamaIndex message roles -> the conventions' roles (``chatbot``, ``model``: a provider's name for the assistant).
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "chatbot": "assistant",
          "model": "assistant", "tool": "tool", "function": "tool"}
#: ``VectorIndexRetriever``'s default ``similarity_top_k``.
_DEFAULT_TOP_K = 2


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def provider_of(model: Any) -> str:
    """A LlamaIndex LLM or embedding model's provider, from its class name (``OpenAI``, ``BedrockConverse``...)."""
    name = type(model).__name__.lower()
    return next((provider for key, provider in _PROVIDERS if key in name), V.PROVIDER_LLAMA_INDEX)


def llm_model(llm: Any) -> str | None:
    """The model an LLM calls: ``metadata.model_name`` (``unknown`` when the LLM does not say), else a ``model`` field."""
    try:
        name = _str(getattr(getattr(llm, "metadata", None), "model_name", None))
    except Exception:  # a user LLM's metadata property that raises: no model name
        name = None
    return name or _str(getattr(llm, "model", None))


# ---- messages ---------------------------------------------------------------------------------


def _role(message: Any) -> str:
    role = getattr(message, "role", None)
    role = getattr(role, "value", role)
    return _ROLES.get(role, "user") if isinstance(role, str) else "user"


def _message_text(message: Any) -> str:
    try:
        content = message.content  # the text blocks joined (a property; it may raise on odd blocks)
    except Exception:
        content = None
    return content if isinstance(content, str) else ""


def _tool_call_parts(message: Any) -> list[dict[str, Any]]:
    """Tool calls an assistant message carries: OpenAI style in ``additional_kwargs``, or LlamaIndex ``ToolCallBlock``s."""
    parts: list[dict[str, Any]] = []
    extra = getattr(message, "additional_kwargs", None)
    calls = extra.get("tool_calls") if isinstance(extra, Mapping) else None
    for call in calls if isinstance(calls, (list, tuple)) else ():
        fn = call.get("function") if isinstance(call, Mapping) else getattr(call, "function", None)
        read = (lambda o, k: o.get(k)) if isinstance(fn, Mapping) else getattr
        parts.append({"type": "tool_call", "id": _str(call.get("id") if isinstance(call, Mapping) else getattr(call, "id", None)),
                      "name": _str(read(fn, "name") if fn is not None else None), "arguments": json_or_text(read(fn, "arguments") if fn is not None else None)})
    for block in getattr(message, "blocks", None) or ():
        if getattr(block, "block_type", None) == "tool_call":
            parts.append({"type": "tool_call", "id": _str(getattr(block, "tool_call_id", None)),
                          "name": _str(getattr(block, "tool_name", None)), "arguments": getattr(block, "tool_kwargs", None)})
    return parts


def chat_message(message: Any) -> dict[str, Any]:
    """A LlamaIndex ``ChatMessage`` -> the conventions' message (text, tool calls, a tool's response)."""
    role = _role(message)
    if role == "tool":
        extra = getattr(message, "additional_kwargs", None) or {}
        call_id = extra.get("tool_call_id") if isinstance(extra, Mapping) else None
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": _str(call_id), "response": _message_text(message)}]}
    text = _message_text(message)
    parts = [text_part(text)] if text else []
    return {"role": role, "parts": parts + _tool_call_parts(message)}


def apply_messages(record: InferenceRecord, messages: Any) -> None:
    """The request's messages: system messages are the system instructions, the others the input."""
    for message in messages if isinstance(messages, (list, tuple)) else ():
        converted = chat_message(message)
        if converted["role"] == "system":
            record.system_instructions.extend(converted["parts"])
        else:
            record.input_messages.append(converted)


def _usage(record: InferenceRecord, response: Any) -> None:
    """Token counts: ``additional_kwargs`` (the LlamaIndex OpenAI LLM's keys), else the raw SDK response's usage."""
    extra = getattr(response, "additional_kwargs", None)
    if isinstance(extra, Mapping):
        record.input_tokens = _int(extra.get("prompt_tokens")) or record.input_tokens
        record.output_tokens = _int(extra.get("completion_tokens")) or record.output_tokens
    raw = getattr(response, "raw", None)
    usage = raw.get("usage") if isinstance(raw, Mapping) else getattr(raw, "usage", None)
    if usage is None or record.input_tokens is not None:
        return
    read = (lambda k: usage.get(k)) if isinstance(usage, Mapping) else (lambda k: getattr(usage, k, None))
    record.input_tokens = _int(read("prompt_tokens")) or _int(read("input_tokens"))
    record.output_tokens = _int(read("completion_tokens")) or _int(read("output_tokens"))


def apply_chat_response(record: InferenceRecord, response: Any) -> None:
    """``LLMChatEndEvent.response`` (a ``ChatResponse``; the last chunk of a stream holds the whole text)."""
    message = getattr(response, "message", None)
    if message is not None:
        out = chat_message(message)
        tool_calls = any(p.get("type") == "tool_call" for p in out["parts"])
        record.output_messages = [{"role": "assistant", "parts": out["parts"], "finish_reason": "tool_call" if tool_calls else "stop"}]
        record.finish_reasons = ["tool_call" if tool_calls else "stop"]
    raw = getattr(response, "raw", None)
    record.response_id = _str(raw.get("id") if isinstance(raw, Mapping) else getattr(raw, "id", None))
    _usage(record, response)


def apply_completion_response(record: InferenceRecord, response: Any) -> None:
    text = getattr(response, "text", None)
    if isinstance(text, str):
        record.output_messages = [{"role": "assistant", "parts": [text_part(text)], "finish_reason": "stop"}]
        record.finish_reasons = ["stop"]
    _usage(record, response)


def inference(llm: Any, operation: str, stream: bool) -> InferenceRecord:
    return InferenceRecord(operation=operation, provider=provider_of(llm), model=llm_model(llm), stream=stream)


def embeddings(model: Any) -> EmbeddingsRecord:
    return EmbeddingsRecord(operation=V.OPERATION_EMBEDDINGS, provider=provider_of(model), model=_str(getattr(model, "model_name", None)))


def apply_embeddings(record: EmbeddingsRecord, chunks: Any, vectors: Any) -> None:
    """``EmbeddingEndEvent``: a batch's texts and vectors (a call may embed in several batches)."""
    record.inputs.extend(c for c in (chunks if isinstance(chunks, list) else ()) if isinstance(c, str))
    record.input_count = len(record.inputs)
    first = vectors[0] if isinstance(vectors, list) and vectors else None
    if isinstance(first, (list, tuple)):
        record.dimension_count = len(first)


# ---- retrieval --------------------------------------------------------------------------------


def _store_of(retriever: Any) -> Any:
    for holder in (retriever, getattr(retriever, "_index", None)):
        store = getattr(holder, "_vector_store", None) or getattr(holder, "vector_store", None)
        if store is not None:
            return store
    return None


def _collection(store: Any) -> str | None:
    # ChromaVectorStore: ``_collection.name`` (or ``collection_name``); QdrantVectorStore: ``collection_name``.
    for value in (getattr(store, "collection_name", None), getattr(getattr(store, "_collection", None), "name", None)):
        if _str(value):
            return value
    return None


def query_text(query: Any) -> str | None:
    """A retriever's query: text, or a ``QueryBundle``'s ``query_str``."""
    return query if isinstance(query, str) else _str(getattr(query, "query_str", None))


def retrieval(retriever: Any, query: Any) -> RetrievalRecord:
    """A LlamaIndex retriever's query; the vector store under it names the data source (its collection) and db system."""
    store = _store_of(retriever)
    collection = _collection(store) if store is not None else None
    kind = type(store).__name__.lower() if store is not None else ""
    db_system = next((system for key, system in _DB_SYSTEMS if key in kind), None)
    top_k = _int(getattr(retriever, "_similarity_top_k", None)) or _int(getattr(retriever, "similarity_top_k", None))
    if top_k is None and type(retriever).__name__ == "VectorIndexRetriever":
        top_k = _DEFAULT_TOP_K
    return RetrievalRecord(
        operation=V.OPERATION_RETRIEVAL,
        provider=V.PROVIDER_LLAMA_INDEX,
        data_source=collection or type(retriever).__name__,
        query=query_text(query),
        top_k=top_k,
        # LlamaIndex hands back similarities (its stores turn distances into scores, higher is better).
        score_kind=V.SCORE_KIND_SIMILARITY,
        db_system=db_system,
        db_collection=collection,
    )


def node_document(item: Any) -> Document:
    """A ``NodeWithScore`` -> ``Document``: node id, score, the node's text as content."""
    node = getattr(item, "node", None)
    score = getattr(item, "score", None)
    try:
        content = node.get_content() if node is not None else None
    except Exception:  # a node type whose content cannot be read: ids and scores only
        content = None
    return Document(
        id=_str(getattr(node, "node_id", None)),
        score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        content=content if isinstance(content, str) else None,
    )


def apply_nodes(record: RetrievalRecord, nodes: Any) -> None:
    record.documents = [node_document(n) for n in nodes] if isinstance(nodes, list) else []


# ---- tools, agents, workflows ---------------------------------------------------------------------


def tool(instance: Any, arguments: Any, call_id: str | None) -> ToolRecord:
    metadata = getattr(instance, "metadata", None)
    name = None
    try:
        name = metadata.get_name() if metadata is not None else None
    except Exception:  # a tool without a name
        name = _str(getattr(metadata, "name", None))
    description = _str(getattr(metadata, "description", None))
    return ToolRecord(
        operation=V.OPERATION_EXECUTE_TOOL, tool_name=_str(name) or type(instance).__name__, tool_type=V.TOOL_TYPE_FUNCTION,
        tool_description=description.strip().splitlines()[0] if description and description.strip() else None,
        tool_call_id=call_id, arguments=arguments,
    )


def tool_arguments(bound_args: Any) -> Any:
    """The arguments a tool was called with (``call(**kwargs)`` or ``call(input)``), as the model sent them."""
    arguments = dict(getattr(bound_args, "arguments", None) or {})
    kwargs = arguments.pop("kwargs", None)
    args = arguments.pop("args", None)
    out = {**arguments, **(kwargs if isinstance(kwargs, dict) else {})}
    if args:
        out["args"] = list(args)
    return out or None


def tool_result(output: Any) -> Any:
    """A ``ToolOutput``'s result: its raw output when it is JSON-able text or data, else its text."""
    raw = getattr(output, "raw_output", None)
    if isinstance(raw, (str, int, float, bool, dict, list)):
        return raw
    content = getattr(output, "content", None)
    return content if isinstance(content, str) else None


def tool_failed(output: Any) -> bool:
    return getattr(output, "is_error", False) is True


def start_messages(start_event: Any) -> list[dict[str, Any]]:
    """An agent's input: the start event's ``chat_history`` then ``user_msg`` (text or a ``ChatMessage``)."""
    out: list[dict[str, Any]] = []
    history = getattr(start_event, "chat_history", None) if start_event is not None else None
    for message in history if isinstance(history, list) else ():
        out.append(chat_message(message))
    user_msg = getattr(start_event, "user_msg", None) if start_event is not None else None
    if isinstance(user_msg, str):
        out.append({"role": "user", "parts": [text_part(user_msg)]})
    elif user_msg is not None and hasattr(user_msg, "role"):
        out.append(chat_message(user_msg))
    return [m for m in out if m["role"] != "system"]


def agent(workflow: Any, start_event: Any, name: str) -> AgentRecord:
    llm = getattr(workflow, "llm", None)
    description = _str(getattr(workflow, "description", None))
    return AgentRecord(
        operation=V.OPERATION_INVOKE_AGENT, provider=provider_of(llm) if llm is not None else V.PROVIDER_LLAMA_INDEX,
        model=llm_model(llm) if llm is not None else None, agent_name=name,
        agent_description=description, input_messages=start_messages(start_event),
    )


def workflow(name: str, inputs: list[dict[str, Any]]) -> AgentRecord:
    return AgentRecord(operation=V.OPERATION_INVOKE_WORKFLOW, provider=V.PROVIDER_LLAMA_INDEX, workflow_name=name, input_messages=inputs)


def query_messages(query: Any) -> list[dict[str, Any]]:
    text = query_text(query)
    return [{"role": "user", "parts": [text_part(text)]}] if text else []


def answer_text(result: Any) -> str | None:
    """A run's answer: an agent's ``StopEvent(result=AgentOutput)``, a query engine's ``Response``, or text."""
    for _ in range(3):  # StopEvent -> AgentOutput -> ChatMessage
        if isinstance(result, str):
            return result
        if result is None:
            return None
        if hasattr(result, "role") and hasattr(result, "blocks"):
            return _message_text(result)
        inner = getattr(result, "result", None) or getattr(result, "response", None)
        if inner is None:
            return None
        result = inner
    return result if isinstance(result, str) else None


def apply_answer(record: AgentRecord, result: Any) -> None:
    text = answer_text(result)
    if text:
        record.output_messages = [{"role": "assistant", "parts": [text_part(text)], "finish_reason": "stop"}]

