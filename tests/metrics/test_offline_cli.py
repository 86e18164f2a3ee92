"""Each metric of the library through ``micrometrics eval`` on its own dataset: the counts a user gets from
the CLI's "by tag" table are the confusion counts the fidelity tests compute in process.

One metric runs the command as a user does (a subprocess); the others call the same ``main`` in
process, which spares an interpreter start each (seconds on a shared machine)."""

from __future__ import annotations

import json

import pytest

from micrometrics import cli

from fidelity import DATA
from offline.offline_cli import run_cli

#: metric -> (the tag of the rows it should fail, the tag of the rows it should pass, (true positives, false positives) measured in process)
CASES = {
    "refusal": ("refused", "answered", (94, 2)),
    "pii": ("pii", "no_pii", (66, 0)),
    "degenerate_output": ("degenerate", "clean", (70, 1)),
    "tool_call_validity": ("invalid", "valid", (66, 0)),
    "formality": ("mismatch", "match", (48, 0)),
    "groundedness": ("ungrounded", "grounded", (60, 0)),
    "semantic_similarity": ("different", "equivalent", (27, 23)),
}


@pytest.mark.parametrize("metric", list(CASES))
def test_micrometrics_eval_reproduces_the_measured_counts(metric, tmp_path):
    positive, negative, (tp, fp) = CASES[metric]
    report = tmp_path / "report.json"
    args = ["eval", str(DATA / f"{metric}.jsonl"), "--metric", metric, "--json", str(report), "--no-progress"]
    if metric == "tool_call_validity":  # rows with tools and tool calls, no response text
        done = run_cli(*args)
        assert done.code == 0, done.err
    else:
        assert cli.main(args) == 0
    by_tag = json.loads(report.read_text())["summary"][metric]["by_tag"]
    assert by_tag[positive]["failed"] == tp
    assert by_tag[negative]["failed"] == fp
