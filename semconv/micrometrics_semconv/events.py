"""Event names: span events and log records (``event.name``)."""

GEN_AI_EVALUATION_RESULT = "gen_ai.evaluation.result"
GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS = "gen_ai.client.inference.operation.details"
#: Log record (severity WARN) of a client call that raised: ``exception.type``; message and stacktrace only with content capture.
GEN_AI_CLIENT_OPERATION_EXCEPTION = "gen_ai.client.operation.exception"
MICROMETRICS_EVALUATION_EVENT = "micrometrics.evaluation"
#: The general conventions' span event for an exception (``exception.type`` and, with capture on, message and stacktrace).
EXCEPTION = "exception"
