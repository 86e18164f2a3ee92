"""examples/rag_pipeline.py runs as a user would run it, and shows both spans with their metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rag_pipeline.py"


def test_rag_example_prints_retrieval_precision_and_context_utilization():
    run = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "span 'retrieval support-kb'" in out and "span 'chat gpt-4o-mini'" in out
    assert "micrometrics.retrieval_precision.label = pass" in out
    assert "micrometrics.context_utilization.used_ids = shipping-germany" in out
    # The labelled run: recall and graded NDCG (gains 3, 1, 0 against the ideal 3, 2, 1).
    assert "micrometrics.retrieval_precision.recall_at_k = 0.6667" in out
    assert "micrometrics.retrieval_precision.ndcg_at_k = 0.7625" in out
    # The console exporter's one line per span, on stderr.
    assert "retrieval support-kb" in run.stderr and "context_utilization=pass" in run.stderr
