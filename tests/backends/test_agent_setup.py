"""The test run needs no package index: Datadog's test agent is installed by the set-up step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_datadog_tests_skip_with_the_install_command_when_the_agent_is_not_installed(tmp_path):
    # An empty cache and a pip that cannot reach any index: what a machine without the set-up step sees.
    env = {k: v for k, v in os.environ.items() if k != "MICROMETRICS_DDAPM_TEST_AGENT_PYTHON"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PIP_NO_INDEX="1", PIP_FIND_LINKS="")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "-k", "test_delta_points_count_each_interval",
         str(ROOT / "tests" / "backends" / "test_datadog.py")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"\d+ skipped", out.stdout) and "failed" not in out.stdout and "error" not in out.stdout.lower()
    assert "python tests/backends/install_ddagent.py" in out.stdout  # the visible reason says how to get it
    assert not (tmp_path / "cache" / "micrometrics").exists() or not any((tmp_path / "cache" / "micrometrics").glob("ddapm-*"))


def test_the_readme_test_command_runs_the_set_up_step_before_pytest():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    step = ".venv/bin/python tests/backends/install_ddagent.py && .venv/bin/python -m pytest"
    assert step in readme and step in ci
