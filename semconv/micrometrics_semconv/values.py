"""Well-known attribute values: operation names, provider names, token types."""

OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"
OPERATION_GENERATE_CONTENT = "generate_content"
OPERATION_RETRIEVAL = "retrieval"
OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_CREATE_AGENT = "create_agent"
OPERATION_INVOKE_WORKFLOW = "invoke_workflow"
OPERATION_EXECUTE_TOOL = "execute_tool"
#: ``gen_ai.tool.type`` values (v1.41 registry examples).
TOOL_TYPE_FUNCTION = "function"
TOOL_TYPE_EXTENSION = "extension"
TOOL_TYPE_DATASTORE = "datastore"

PROVIDER_OPENAI = "openai"
PROVIDER_AZURE_OPENAI = "azure.ai.openai"
PROVIDER_ANTHROPIC = "anthropic"
PROVIDER_AWS_BEDROCK = "aws.bedrock"
PROVIDER_GCP_VERTEX_AI = "gcp.vertex_ai"
PROVIDER_GCP_GEN_AI = "gcp.gen_ai"
PROVIDER_GCP_GEMINI = "gcp.gemini"
PROVIDER_DEEPSEEK = "deepseek"
PROVIDER_GROQ = "groq"
PROVIDER_MISTRAL_AI = "mistral_ai"
PROVIDER_PERPLEXITY = "perplexity"
PROVIDER_X_AI = "x_ai"
PROVIDER_AZURE_AI_INFERENCE = "azure.ai.inference"
PROVIDER_COHERE = "cohere"
PROVIDER_IBM_WATSONX_AI = "ibm.watsonx.ai"
#: Not in the conventions' list (v1.41), which allows other values: ours, the names these services go by
#: (docs/providers.md, "OpenAI-compatible servers").
PROVIDER_OLLAMA = "ollama"
PROVIDER_TOGETHER_AI = "together_ai"
PROVIDER_FIREWORKS_AI = "fireworks_ai"
PROVIDER_OPENROUTER = "openrouter"
#: A LiteLLM call whose provider LiteLLM cannot tell before the call (a Router's model group), until the response names it.
PROVIDER_LITELLM = "litellm"

#: ``gen_ai.usage.cost.currency``: our price table's currency.
COST_CURRENCY_USD = "USD"
#: ``gen_ai.usage.cost.source`` (proposal #443): computed here from usage and the price table.
COST_SOURCE_LOCAL = "local"

TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_OUTPUT = "output"

#: ``gen_ai.token.modality`` (conventions after v1.41) when the provider does not break usage down by modality.
TOKEN_MODALITY_UNKNOWN = "unknown"
#: A message part no other part type fits (conventions after v1.41, #584); the provider's type goes to ``generic_type``.
PART_TYPE_GENERIC = "generic"

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALL = "tool_call"
FINISH_CONTENT_FILTER = "content_filter"
FINISH_ERROR = "error"

#: ``openai.api.type``: the two values the registry defines (legacy completions and embeddings have none).
OPENAI_API_CHAT_COMPLETIONS = "chat_completions"
OPENAI_API_RESPONSES = "responses"

#: ``error.type`` of a ``gen_ai.evaluation.result`` whose metric did not finish in time (label ``timeout``).
ERROR_TYPE_TIMEOUT = "timeout"
#: ``error.type`` when nothing more specific is known (the error.type registry's fallback): a metric
#: that returned garbage, or an evaluator process that crashed.
ERROR_TYPE_OTHER = "_OTHER"

SCORE_KIND_SIMILARITY = "similarity"
SCORE_KIND_DISTANCE = "distance"

#: Retrieval: ``db.system.name`` / ``gen_ai.provider.name`` of the vector stores we instrument.
DB_SYSTEM_CHROMA = "chroma"
DB_SYSTEM_QDRANT = "qdrant"
PROVIDER_CHROMA = "chroma"
PROVIDER_QDRANT = "qdrant"
PROVIDER_LANGCHAIN = "langchain"
#: LlamaIndex runs (retrievers, agents, workflows) and LlamaIndex models of a provider we cannot name from their class.
PROVIDER_LLAMA_INDEX = "llama_index"
#: pgvector queries (psycopg, psycopg2, SQLAlchemy over them, langchain-postgres): the extension is the provider,
#: PostgreSQL (a well-known ``db.system.name``) the database.
PROVIDER_PGVECTOR = "pgvector"
DB_SYSTEM_POSTGRESQL = "postgresql"
#: LangChain vector stores with no database server: FAISS (langchain-community) and langchain-core's InMemoryVectorStore.
DB_SYSTEM_FAISS = "faiss"
DB_SYSTEM_LANGCHAIN_IN_MEMORY = "langchain.in_memory"
#: ``db.operation.name`` of a pgvector query: the SQL statement's verb.
DB_OPERATION_SELECT = "SELECT"
#: ``db.operation.name`` of the vector store calls we instrument: the client method's name.
DB_OPERATION_CHROMA_QUERY = "query"
DB_OPERATION_QDRANT_QUERY_POINTS = "query_points"
DB_OPERATION_QDRANT_SEARCH = "search"
#: Milvus, LanceDB, Pinecone, Elasticsearch, OpenSearch: db.system.name is the conventions' well-known value where
#: one exists (elasticsearch, opensearch), the store's own lower-case name otherwise; the provider is the same name.
DB_SYSTEM_MILVUS = "milvus"
DB_SYSTEM_LANCEDB = "lancedb"
DB_SYSTEM_PINECONE = "pinecone"
DB_SYSTEM_ELASTICSEARCH = "elasticsearch"
DB_SYSTEM_OPENSEARCH = "opensearch"
PROVIDER_MILVUS = "milvus"
PROVIDER_LANCEDB = "lancedb"
PROVIDER_PINECONE = "pinecone"
PROVIDER_ELASTICSEARCH = "elasticsearch"
PROVIDER_OPENSEARCH = "opensearch"
DB_OPERATION_MILVUS_SEARCH = "search"
#: LanceDB: a vector query's execution (``to_list``/``to_pandas``/``to_arrow``, sync and async).
DB_OPERATION_LANCEDB_VECTOR_SEARCH = "vector_search"
DB_OPERATION_PINECONE_QUERY = "query"
DB_OPERATION_SEARCH = "search"
#: Weaviate (no well-known db.system.name member): ``db.operation.name`` is the v4 query method
#: (``near_vector``, ``near_text``, ``near_object``, ``hybrid``, ``bm25``).
DB_SYSTEM_WEAVIATE = "weaviate"
PROVIDER_WEAVIATE = "weaviate"
DB_OPERATION_WEAVIATE_NEAR_VECTOR = "near_vector"
DB_OPERATION_WEAVIATE_NEAR_TEXT = "near_text"
DB_OPERATION_WEAVIATE_NEAR_OBJECT = "near_object"
DB_OPERATION_WEAVIATE_HYBRID = "hybrid"
DB_OPERATION_WEAVIATE_BM25 = "bm25"
#: ``@micrometrics.retriever`` / ``record_retrieval`` when the caller names no provider.
PROVIDER_CUSTOM = "custom"

#: ``micrometrics.guard.fallback``: the guard retry failed; the application got the previous
#: attempt's response (``on_fail="return"``) or a ``GuardError`` carrying it (``on_fail="raise"``).
GUARD_FALLBACK_PREVIOUS = "previous_attempt"
GUARD_FALLBACK_ERROR = "guard_error"
#: ``micrometrics.drop.reason`` on ``micrometrics.evaluations.dropped``: why a call's monitors did not run.
DROP_REASON_QUEUE_FULL = "queue_full"
DROP_REASON_SHUTDOWN = "shutdown"
#: ``micrometrics.<metric>.label`` of a monitor that shutdown left no time to evaluate (the span still ends).
LABEL_SKIPPED = "skipped"
#: ``error.type`` of a stream the application closed or dropped before its end: no convention names
#: this case (the GenAI conventions allow instrumentation-defined values), and it is no success.
ERROR_TYPE_STREAM_ABANDONED = "micrometrics.stream.abandoned"

#: ``mcp.method.name`` of a tool call; ``error.type`` of a tool that answered ``isError`` (MCP conventions).
MCP_METHOD_TOOLS_CALL = "tools/call"
ERROR_TYPE_TOOL_ERROR = "tool_error"
