"""Run the ``micrometrics`` command the way a user does: a subprocess, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "evaluation"
DATASET = EXAMPLE / "dataset.jsonl"
METRICS = EXAMPLE / "metrics.py"


@dataclass
class Completed:
    code: int
    out: str
    err: str


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> Completed:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_", "MICROMETRICS_"))}
    environ["NO_COLOR"] = "1"
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "micrometrics", *map(str, args)], cwd=cwd, env=environ,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)
