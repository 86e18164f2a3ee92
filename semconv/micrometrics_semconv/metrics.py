"""Metric instrument names, units and bucket advice."""

GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
#: Streams: one point per chunk after the first, the time from the previous chunk's arrival to this one's.
GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"

# GenAI conventions after v1.41 (semantic-conventions-genai, unreleased: docs/gen-ai/client-inference.md,
# client-embeddings.md, gen-ai-token-metrics.md); emitted only with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental.
# Inference and embeddings leave gen_ai.client.operation.duration (#521) and gen_ai.client.token.usage (#374).
GEN_AI_CLIENT_INFERENCE_DURATION = "gen_ai.client.inference.duration"
GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK = "gen_ai.client.inference.time_to_first_chunk"
GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.inference.time_per_output_chunk"
#: Per-operation token histograms, one per direction (no ``gen_ai.token.type``).
GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS = "gen_ai.client.inference.operation.input_tokens"
GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS = "gen_ai.client.inference.operation.output_tokens"
#: Token usage counters, by ``gen_ai.token.modality``; cache and reasoning ones are subsets of input and output.
GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS = "gen_ai.client.inference.usage.input_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS = "gen_ai.client.inference.usage.output_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.client.inference.usage.cache_read.input_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.client.inference.usage.cache_write.input_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.client.inference.usage.reasoning.output_tokens"
GEN_AI_CLIENT_EMBEDDINGS_DURATION = "gen_ai.client.embeddings.duration"
GEN_AI_CLIENT_EMBEDDINGS_OPERATION_INPUT_TOKENS = "gen_ai.client.embeddings.operation.input_tokens"

MICROMETRICS_EVALUATIONS = "micrometrics.evaluations"
MICROMETRICS_SCORE_HISTOGRAM = "micrometrics.score"
MICROMETRICS_EVALUATION_DURATION = "micrometrics.evaluation.duration"
MICROMETRICS_EVALUATIONS_DROPPED = "micrometrics.evaluations.dropped"
MICROMETRICS_GUARD_RETRIES = "micrometrics.guard.retries"
MICROMETRICS_FAILURE_COST = "micrometrics.failure.cost"
#: USD spent on LLM calls (counter), by provider, model and operation, and the metric that caused them.
MICROMETRICS_COST = "micrometrics.cost"
# micrometrics.failure.cost has unit "{currency}": UCUM has no currencies and each metric names its
# own (micrometrics.cost.currency on every point), so one instrument carries them all with a UCUM
# annotation saying the value is an amount of money: sum by currency, never across currencies.
MICROMETRICS_INTERNAL_ERRORS = "micrometrics.internal.errors"

# Bucket advice from the GenAI conventions (time_to_first_chunk and time_per_output_chunk take DURATION_BUCKETS too).
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SCORE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
EVALUATION_DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
