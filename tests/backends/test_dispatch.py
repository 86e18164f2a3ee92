"""Export in one place: every ``exporter=`` value has one builder, and every OTLP preset goes through the one outbox."""

from __future__ import annotations

import pytest

from micrometrics import export, settings
from micrometrics.export import outbox


def test_every_exporter_name_has_one_pipeline_builder():
    assert set(export.PIPELINES) == set(settings.EXPORTERS)


@pytest.mark.parametrize("name", ["otlp", "jaeger", "datadog"])
def test_every_otlp_preset_sends_spans_through_the_outbox(name):
    pipe = export.pipeline_for(settings.resolve(exporter=name, endpoint="http://127.0.0.1:9", metrics=[], instrumentations=[]))
    try:
        assert isinstance(pipe.span_processor, outbox.FlushingBatchSpanProcessor)
        assert isinstance(pipe.span_processor.guarded.outbox, outbox.Outbox)
        if name != "jaeger":
            assert isinstance(pipe.metric_reader._exporter, outbox.GuardedMetricExporter)
            assert isinstance(pipe.log_processor, outbox.FlushingBatchLogRecordProcessor)
    finally:
        for part in (pipe.span_processor, pipe.metric_reader, pipe.log_processor):
            if part is not None:
                part.shutdown()
