"""Span, log-record and metric attribute keys."""

# --- GenAI semantic conventions (v1.41) ---------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"

GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"

GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"

GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"

# --- GenAI cost: the open proposal, not yet in the conventions ------------------------
# open-telemetry/semantic-conventions-genai#443 "Add per-operation cost conventions (gen_ai.usage.cost.*)":
# https://github.com/open-telemetry/semantic-conventions-genai/pull/443 (inference spans only; declared
# here until it lands, then taken from the vendored definitions).
#: double: what the call cost, in ``gen_ai.usage.cost.currency``.
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
#: ISO 4217 code; conditionally required with the amount (values.COST_CURRENCY_USD).
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
#: ``provider`` (the response carried the amount) or ``local`` (computed from usage and a price table).
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"

GEN_AI_EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"

GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"

# Agent, workflow and tool spans (v1.41 registry). Arguments and results are opt-in content.
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_AGENT_VERSION = "gen_ai.agent.version"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"

GEN_AI_DATA_SOURCE_ID = "gen_ai.data_source.id"
GEN_AI_RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"
GEN_AI_RETRIEVAL_QUERY_TEXT = "gen_ai.retrieval.query.text"

GEN_AI_EVALUATION_NAME = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"

# --- OpenAI (registry ``openai.*``), on calls whose provider is openai or azure.ai.openai ---
#: Which OpenAI API the call used (values.OPENAI_API_*).
OPENAI_API_TYPE = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"

# --- GenAI conventions after v1.41 ------------------------------------------------
# open-telemetry/semantic-conventions-genai (unreleased): model/gen-ai/registry.yaml and
# docs/gen-ai/non-normative/migration.md. Emitted only with
# OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (micrometrics.conventions).
#: Replaces ``gen_ai.usage.cache_creation.input_tokens`` (#440).
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
#: Replaces ``gen_ai.request.top_k`` on retrieval spans, an int (#217).
GEN_AI_RETRIEVAL_TOP_K = "gen_ai.retrieval.top_k"
#: The reasoning or thinking effort requested, as sent to the provider (#258).
GEN_AI_REQUEST_REASONING_LEVEL = "gen_ai.request.reasoning.level"
#: A previous response the request continues (OpenAI Responses ``previous_response_id``).
GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID = "gen_ai.request.previous_response.id"
#: A named prompt template and its version (OpenAI Responses ``prompt={id, version}``).
GEN_AI_PROMPT_NAME = "gen_ai.prompt.name"
GEN_AI_PROMPT_VERSION = "gen_ai.prompt.version"
#: On the usage counters, in place of ``gen_ai.token.type`` (#374).
GEN_AI_TOKEN_MODALITY = "gen_ai.token.modality"

# --- General conventions -------------------------------------------------------
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
DB_SYSTEM_NAME = "db.system.name"
DB_COLLECTION_NAME = "db.collection.name"
DB_OPERATION_NAME = "db.operation.name"
EVENT_NAME = "event.name"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
DEPLOYMENT_ENVIRONMENT_NAME = "deployment.environment.name"

# --- micrometrics ----------------------------------------------------------------
#: Prefix of every micro-metric result key: ``micrometrics.<metric>.<field>``.
MICROMETRIC_ATTRIBUTE_PREFIX = "micrometrics."
MICROMETRICS_ATTEMPT = "micrometrics.attempt"
MICROMETRICS_GUARD_FAILED = "micrometrics.guard.failed"
#: On a guard retry that failed itself (429, timeout): what the application got instead (values.GUARD_FALLBACK_*).
MICROMETRICS_GUARD_FALLBACK = "micrometrics.guard.fallback"
#: On the last attempt of a call a guard retried: USD its retries cost (attempts 2..n, pricing.py).
MICROMETRICS_GUARD_COST = "micrometrics.guard.cost"
#: On the span link from a guard retry to the attempt it replaces: that attempt's number.
MICROMETRICS_RETRY_OF = "micrometrics.retry_of"
MICROMETRICS_METRIC_MODE = "micrometrics.metric.mode"
MICROMETRICS_SCORE = "micrometrics.score"
MICROMETRICS_PASSED = "micrometrics.passed"
MICROMETRICS_STAGE = "micrometrics.stage"
MICROMETRICS_DROP_REASON = "micrometrics.drop.reason"
MICROMETRICS_COST_CURRENCY = "micrometrics.cost.currency"
MICROMETRICS_RETRIEVAL_SCORE_KIND = "micrometrics.retrieval.score_kind"
MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS = "micrometrics.retrieval.document_contents"
#: Content items (messages, system instruction parts, tool definitions, documents) left out of the
#: content attributes of a span so that each fits the SDK's attribute length limit (int).
MICROMETRICS_CONTENT_TRUNCATED = "micrometrics.content.truncated"
#: Key inside a ``gen_ai.retrieval.documents`` item: a distance (lower is closer), which is not the
#: conventions' relevance ``score``; set instead of it when the store returns distances.
MICROMETRICS_DISTANCE = "micrometrics.distance"

#: Result fields appended to ``micrometrics.<metric>.``
RESULT_LABEL = "label"
RESULT_SCORE = "score"
RESULT_PASSED = "passed"
RESULT_EXPLANATION = "explanation"
#: ``micrometrics.<metric>.cost``: USD of the instrumented LLM calls the metric made to evaluate (an LLM judge).
RESULT_COST = "cost"

#: The only attribute keys allowed on metric points (low cardinality by construction).
METRIC_DIMENSIONS = frozenset(
    {
        GEN_AI_OPERATION_NAME,
        GEN_AI_PROVIDER_NAME,
        GEN_AI_REQUEST_MODEL,
        GEN_AI_RESPONSE_MODEL,
        GEN_AI_TOKEN_TYPE,
        GEN_AI_TOKEN_MODALITY,
        SERVER_ADDRESS,
        SERVER_PORT,
        ERROR_TYPE,
        # The metric (and its label) of micrometrics.evaluations, .score, .evaluation.duration,
        # .failure.cost and .guard.retries: the conventions' evaluation names say it.
        GEN_AI_EVALUATION_NAME,
        GEN_AI_EVALUATION_SCORE_LABEL,
        # On gen_ai.client.operation.duration and gen_ai.client.token.usage (the conventions' OpenAI
        # refinement); openai.response.system_fingerprint is left off: a new value whenever OpenAI
        # changes its backend makes a new series, and the span carries it.
        OPENAI_RESPONSE_SERVICE_TIER,
        MICROMETRICS_METRIC_MODE,
        MICROMETRICS_STAGE,
        MICROMETRICS_DROP_REASON,
        MICROMETRICS_COST_CURRENCY,
    }
)

#: Lower-priority span attributes (app extras, content, results) left out to keep the core ones under the SDK's attribute limit.
MICROMETRICS_ATTRIBUTES_DROPPED = "micrometrics.attributes.dropped"

# MCP (the MCP semantic conventions: spans of a tool called over the Model Context Protocol)
MCP_METHOD_NAME = "mcp.method.name"
MCP_PROTOCOL_VERSION = "mcp.protocol.version"
JSONRPC_REQUEST_ID = "jsonrpc.request.id"
