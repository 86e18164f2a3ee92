"""``micrometrics eval`` end to end, as a subprocess: exit codes, the JSON report, the HTML page."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from offline_cli import DATASET, METRICS, ROOT

SCHEMA = json.loads((ROOT / "src" / "micrometrics" / "offline" / "report.schema.json").read_text())


def test_eval_of_the_example_dataset_writes_a_valid_report_and_a_self_contained_page(cli, tmp_path):
    report_path, page_path = tmp_path / "run.json", tmp_path / "run.html"
    done = cli("eval", DATASET, "--metrics", METRICS, "--json", report_path, "--html", page_path)
    assert done.code == 0, done.err

    # The terminal table: pass rate per metric, cost in the metric's currency, the failing rows.
    assert re.search(r"language_match\s+async\s+50\s+46\s+3\s+1\s+93\.9%\s+0\.94\s+12\.00 EUR", done.out), done.out
    assert re.search(r"response_length\s+async\s+50\s+49\s+1\s+0\s+98\.0%", done.out)
    assert "de-05        language_match=mismatch  expected German (de), the response is in English (en)" in done.out
    assert "pass rate by tag" in done.out and "pass rate by model" in done.out
    assert "banned_phrases (owner: brand-team) was due for review on 2026-06-30" in done.out

    report = json.loads(report_path.read_text())
    jsonschema.validate(report, SCHEMA)
    summary = report["summary"]["language_match"]
    assert (summary["passed"], summary["failed"], summary["labels"]) == (46, 3, {"match": 46, "mismatch": 3, "undetermined": 1})
    assert summary["cost"] == {"per_failure": 4.0, "currency": "EUR", "total": 12.0}
    assert summary["by_tag"]["es"]["pass_rate"] == 0.75
    assert sum(summary["score"]["histogram"]["counts"]) == summary["score"]["count"] == 49
    assert [m["name"] for m in report["metrics"] if m["overdue"]] == ["banned_phrases"]
    row = next(r for r in report["rows"] if r["id"] == "de-05")
    assert row["results"]["language_match"]["details"]["detected"] == "en"
    assert report["summary"]["retrieval_precision"]["evaluated"] == 2

    page = page_path.read_text()
    assert page.count('class="pass-rate-chart"') == 1
    assert page.count('class="score-histogram"') >= 2
    for failing in ("de-05", "es-03", "nl-01", "en-07", "en-11"):
        assert f'id="row-{failing}"' in page
    assert "expected Spanish (es), the response is in English (en)" in page
    assert "178 words &gt; max_words=80" in page
    assert "was due for review on 2026-06-30" in page
    # Viewable offline: no script, no fetched resource.
    assert "<script" not in page and "src=" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"url\(", page)


def test_json_to_stdout_is_the_report_alone(cli):
    done = cli("eval", DATASET, "--metric", "language_match", "--limit", "5", "--json", "-")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert [m["name"] for m in report["metrics"]] == ["language_match"]
    assert len(report["rows"]) == 5


def test_tags_select_rows(cli):
    done = cli("eval", DATASET, "--metric", "language_match", "--tag", "fr", "--tag", "it", "--json", "-")
    report = json.loads(done.out)
    assert {r["id"][:2] for r in report["rows"]} == {"fr", "it"}
    assert report["source"]["tags"] == ["fr", "it"]


def test_no_progress_bar_when_stderr_is_not_a_terminal(cli):
    done = cli("eval", DATASET, "--quiet")
    assert done.code == 0
    assert "\r" not in done.err


def test_progress_bar_draws_on_a_terminal():
    import io

    from micrometrics.offline.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with Progress(4, "replay", stream=stream) as bar:
        for _ in range(4):
            bar.advance()
    assert "[##############################] 4/4" in stream.getvalue()


@pytest.mark.parametrize(
    "args, message",
    [
        (("eval",), "give a dataset"),
        (("eval", "missing.jsonl"), "missing.jsonl: cannot read the dataset"),
        (("eval", DATASET, "--traces", DATASET), "not both or neither"),
        (("eval", DATASET, "--system-prompt", "x.txt"), "--system-prompt is sent with --replay"),
        (("eval", DATASET, "--metric", "no_such_metric"), "not a built-in metric"),
        (("eval", DATASET, "--metrics", "nowhere.py"), "no such file"),
        (("eval", DATASET, "--tag", "klingon"), "no row carries any of the tags klingon"),
        (("compare", DATASET, DATASET), "not JSON"),
        (("compare", "a.json", "b.json"), "a.json: cannot read"),
        (("compare", "a.json", "b.json", "--max-regression", "two"), "is not a number"),
        ((), "usage: micrometrics"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(cli, args, message):
    done = cli(*args)
    assert done.code == 2, (done.code, done.out, done.err)
    assert message in done.err
    assert "Traceback" not in done.err


def test_a_bad_dataset_line_is_named_with_its_line_number(cli, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(
        '{"id": "ok", "messages": [{"role": "user", "content": "hi there"}], "response": "hello"}\n'
        "\n"
        '{"id": "bad", "messages": [{"role": "customer", "content": "hi"}], "response": "hello"}\n'
    )
    done = cli("eval", data)
    assert done.code == 2
    assert f"{data}:3: messages[0]: role 'customer' is not one of" in done.err

    data.write_text('{"id": "x", "messages": [{"role": "user", "content": "hi"}], "respones": "typo"}\n')
    done = cli("eval", data)
    assert "unknown key(s) 'respones'" in done.err

    data.write_text('{"id": "x", "messages": [{"role": "user", "content": "hi"}]}\n')
    done = cli("eval", data)
    assert done.code == 2 and "have no 'response'" in done.err and "--replay MODEL" in done.err


def test_version_and_the_module_entry_point(cli):
    done = cli("--version")
    assert done.code == 0 and done.out.startswith("micrometrics ")


def test_the_example_gate_script_produces_the_reports_and_fails_the_gate(tmp_path):
    """examples/evaluation/gate.sh: the README's commands, from the repository root."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_", "MICROMETRICS_"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(["bash", "examples/evaluation/gate.sh", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL: language_match regressed beyond 2 points" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "candidate.html", "candidate.json", "recorded.json", "report.html"]
    assert 'class="pass-rate-chart"' in (tmp_path / "report.html").read_text()


def test_the_documented_eval_commands_write_only_into_a_git_ignored_directory():
    """Following the README or the evaluation docs from the repository root leaves nothing in the root."""
    root = ROOT
    ignored = {line.strip() for line in (root / ".gitignore").read_text().splitlines()}
    assert "eval-out/" in ignored
    for doc in ("README.md", "docs/evaluation.md", "examples/evaluation/README.md"):
        text = (root / doc).read_text(encoding="utf-8")
        outputs = re.findall(r"--(?:json|html|traces-out) (\S+)", text)
        outputs += [p for cmd in re.findall(r"micrometrics compare (\S+) (\S+)", text) for p in cmd]
        # Placeholders (FILE, BASELINE.json) and the CI example's checked-in baseline are not written by these commands.
        written = [p for p in outputs if p != "-" and not re.match(r"[A-Z$\"]", p) and not p.startswith("evals/")]
        assert written and all(p.startswith("eval-out/") for p in written), (doc, written)
    gate = (root / "examples/evaluation/gate.sh").read_text(encoding="utf-8")
    assert 'out="${1:-eval-out}"' in gate
