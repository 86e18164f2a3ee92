"""Metric instrument names, units and bucket advice."""

GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
#: Streams: one point per chunk after the first, the time from the previous chunk's arrival to this one's.
GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"

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
