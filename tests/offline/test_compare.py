"""``micrometrics compare``: intervals against hand-computed values, the threshold, the CI gate."""

from __future__ import annotations

import json
import math

import pytest

from micrometrics.offline.compare import compare
from micrometrics.offline.stats import newcombe_paired, newcombe_unpaired, wilson
from offline_cli import DATASET, EXAMPLE, METRICS

Z = 1.959963984540054  # the 97.5% normal quantile


def test_wilson_interval_by_hand():
    # 8/10: centre (0.8 + z²/20) / (1 + z²/10), half-width z·sqrt(0.8·0.2/10 + z²/400) / (1 + z²/10)
    z2 = Z * Z
    centre = (0.8 + z2 / 20) / (1 + z2 / 10)
    half = Z * math.sqrt(0.016 + z2 / 400) / (1 + z2 / 10)
    low, high = wilson(8, 10)
    assert low == pytest.approx(centre - half, abs=1e-12) and high == pytest.approx(centre + half, abs=1e-12)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson(0, 10)[0] == pytest.approx(0.0) and wilson(10, 10)[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "baseline, candidate, expected",
    [
        # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10.
        ((48, 80), (56, 70), (0.2000, 0.0524, 0.3339)),
        ((3, 10), (9, 10), (0.6000, 0.1705, 0.8090)),
        ((0, 29), (5, 56), (0.0893, -0.0381, 0.1926)),
    ],
)
def test_unpaired_interval_matches_newcombes_published_values(baseline, candidate, expected):
    d = newcombe_unpaired(*baseline, *candidate)
    assert (round(d.delta, 4), round(d.low, 4), round(d.high, 4)) == expected


def test_paired_interval_by_hand():
    # 40 rows: 30 pass in both, 6 regress (baseline only), 1 fixed (candidate only), 3 fail in both.
    a, b, c, d, n = 30, 6, 1, 3, 40
    p1, p2 = (a + b) / n, (a + c) / n  # 0.9, 0.775
    l1, u1 = wilson(a + b, n)
    l2, u2 = wilson(a + c, n)
    ad_bc = a * d - b * c  # 84 > n/2 = 20: corrected to 64
    phi = (ad_bc - n / 2) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    low = (p2 - p1) - math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    high = (p2 - p1) + math.sqrt((u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2)
    got = newcombe_paired(a, b, c, d)
    assert got.delta == pytest.approx(-0.125)
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))
    assert (round(got.low, 4), round(got.high, 4)) == (-0.2677, 0.0125)
    # Pairing narrows the interval: the same rates as independent samples give a wider one.
    unpaired = newcombe_unpaired(36, 40, 31, 40)
    assert (round(unpaired.low, 4), round(unpaired.high, 4)) == (-0.2867, 0.0405)


def _report(labels: dict[str, bool | None], metric: str = "m", cost: float | None = None) -> dict:
    rows = [{"id": i, "results": {metric: {"label": {True: "pass", False: "fail", None: "undetermined"}[p], "passed": p, "score": None}}} for i, p in labels.items()]
    passed = sum(1 for p in labels.values() if p is True)
    failed = sum(1 for p in labels.values() if p is False)
    summary = {metric: {"passed": passed, "failed": failed, "pass_rate": passed / (passed + failed), "cost": {"total": failed * cost if cost else None, "currency": "EUR"}}}
    return {"summary": summary, "rows": rows}


def test_threshold_logic_and_flipped_rows():
    base = _report({f"r{i}": True for i in range(50)}, cost=4.0)
    one_down = _report({**{f"r{i}": True for i in range(50)}, "r7": False}, cost=4.0)  # -2 points exactly
    two_down = _report({**{f"r{i}": True for i in range(50)}, "r7": False, "r9": False}, cost=4.0)

    exact = compare(base, one_down, max_regression=0.02)
    assert exact.regressions == []  # a drop equal to the threshold is allowed
    change = exact.metrics[0]
    assert [f.id for f in change.regressed] == ["r7"] and change.fixed == []
    assert (change.baseline_cost, change.candidate_cost) == (0.0, 4.0)

    beyond = compare(base, two_down, max_regression=0.02)
    assert beyond.regressions == ["m"]
    assert beyond.metrics[0].difference.delta == pytest.approx(-0.04)
    # Two flips out of 50 are not significant: the interval still reaches above 0.
    assert beyond.metrics[0].difference.high > 0
    assert compare(base, two_down, max_regression=0.02, require_significant=True).regressions == []
    assert compare(base, two_down, max_regression=0.05).regressions == []
    # Improvements never fail the gate; undetermined rows are left out of the pairing.
    assert compare(two_down, base).regressions == []
    with_undetermined = _report({**{f"r{i}": True for i in range(50)}, "r3": None})
    assert compare(base, with_undetermined).metrics[0].paired_rows == 49


def test_runs_without_shared_rows_are_compared_as_independent_samples():
    base = _report({f"a{i}": i < 48 for i in range(80)})
    cand = _report({f"b{i}": i < 56 for i in range(70)})
    change = compare(base, cand).metrics[0]
    assert change.paired_rows == 0 and change.difference.method == "newcombe-unpaired"
    assert round(change.difference.low, 4) == 0.0524


def test_the_gate_catches_the_prompt_change_that_makes_german_drift_to_english(cli, tmp_path):
    """The README's story, end to end through the demo server: baseline vs candidate system prompt."""
    common = ("eval", DATASET, "--metrics", METRICS, "--tag", "de", "--tag", "en", "--replay", "gpt-4o-mini", "--quiet", "--no-progress")
    base = cli(*common, "--system-prompt", EXAMPLE / "baseline_prompt.txt", "--json", tmp_path / "baseline.json")
    assert base.code == 0, base.err
    assert "via the demo server" in base.err
    cand = cli(*common, "--system-prompt", EXAMPLE / "candidate_prompt.txt", "--json", tmp_path / "candidate.json")
    assert cand.code == 0, cand.err

    gate = cli("compare", tmp_path / "baseline.json", tmp_path / "candidate.json", "--max-regression", "0.02", "--json", tmp_path / "cmp.json")
    assert gate.code == 1, gate.out + gate.err
    assert "FAIL: language_match regressed beyond 2 points" in gate.out
    assert "de-05        match -> mismatch  expected German (de), the response is in English (en)" in gate.out
    result = json.loads((tmp_path / "cmp.json").read_text())
    lm = next(m for m in result["metrics"] if m["name"] == "language_match")
    # The German conversations of five user turns or more flip; nothing else does.
    assert sorted(f["id"] for f in lm["regressed"]) == [f"de-0{i}" for i in range(1, 9)]
    assert lm["paired_rows"] == 32 and lm["difference"]["delta"] == pytest.approx(-0.25)
    assert lm["difference"]["high"] < 0
    assert lm["candidate_cost"] - lm["baseline_cost"] == pytest.approx(8 * 4.0)
    assert result["regressions"] == ["language_match"] and result["passed"] is False

    # Same runs, a threshold the drop stays within: exit 0.
    assert cli("compare", tmp_path / "baseline.json", tmp_path / "candidate.json", "--max-regression", "30%").code == 0
    # A run compared with itself never fails.
    assert cli("compare", tmp_path / "baseline.json", tmp_path / "baseline.json").code == 0
