"""The module each instrumentation wraps, by the name users pass to ``instrumentations=`` (our entry point less ``micrometrics_``).

Read by ``instrument()`` to learn which libraries are installed and to hook each one's import without
importing our instrumentation package (wrapt, opentelemetry-instrumentation, translators): so this
module imports nothing. Each instrumentor's ``library`` attribute is read from here, the one place it
is declared; every module an instrumentor wraps is this module or under it, so that the hook on it
fires first (tests/micrometrics/test_library_table.py checks both).
"""

LIBRARIES: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google_genai": "google.genai",
    "chromadb": "chromadb",
    "qdrant": "qdrant_client",
    "langchain": "langchain_core",
    "bedrock": "botocore",
    "mistral": "mistralai",
    "cohere": "cohere",
    "ollama": "ollama",
    "groq": "groq",
    "milvus": "pymilvus",
    "lancedb": "lancedb",
    "pinecone": "pinecone",
    "elasticsearch": "elasticsearch",
    "opensearch": "opensearchpy",
    "weaviate": "weaviate",
    "litellm": "litellm",
    "openai_agents": "agents",
    "mcp": "mcp",
    "llama_index": "llama_index.core",
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
}
