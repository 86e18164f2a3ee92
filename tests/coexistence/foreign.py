"""Other packages' OpenAI instrumentations, each installed into its own cached folder beside our environment.

They cannot share one environment: ``opentelemetry-instrumentation-openai-v2`` 2.4b0 imports
``opentelemetry.util.genai.instruments``, which util-genai 1.2 moved (its metadata accepts any
util-genai >= 0.4b0, so pip picks 1.3 and the import fails), while
``opentelemetry-instrumentation-genai-openai`` needs util-genai >= 1.3. Each is installed with its
own pins (``pip install --target``, no dependencies: the OpenTelemetry API, SDK and wrapt they need
are ours) into ``$XDG_CACHE_HOME/micrometrics`` (or ``~/.cache/micrometrics``), once, at the first
test that needs it; the scenarios run with that folder first on ``PYTHONPATH``. Without a
reachable package index the tests are skipped, saying so.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

INSTALL_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Foreign:
    name: str
    requirements: tuple[str, ...]
    #: Its instrumentor's module (``OpenAIInstrumentor`` in it).
    module: str
    #: Whether it honours a suppression key we set (util-genai >= 1.2's inference data, OpenLLMetry's key).
    honours_suppression: bool
    #: Its own ``uninstrument()`` leaves its ``chat.completions.create`` layer (OpenLLMetry 0.62.4 unwraps a path that
    #: openai 1.5x+ moved), so instrumenting it again adds a second layer: two spans of its own, with or without us.
    leaves_its_layer: bool = False


FOREIGN = {
    f.name: f
    for f in (
        Foreign(
            "openai-v2",
            ("opentelemetry-instrumentation-openai-v2==2.4b0", "opentelemetry-util-genai==1.1b0"),
            "opentelemetry.instrumentation.openai_v2",
            honours_suppression=False,
        ),
        Foreign(
            "genai-openai",
            ("opentelemetry-instrumentation-genai-openai==1.3b0", "opentelemetry-util-genai==1.3b0"),
            "opentelemetry.instrumentation.genai.openai",
            honours_suppression=True,
        ),
        Foreign(
            "openllmetry",
            ("opentelemetry-instrumentation-openai==0.62.4", "opentelemetry-semantic-conventions-ai==0.5.1"),
            "opentelemetry.instrumentation.openai",
            honours_suppression=True,
            leaves_its_layer=True,
        ),
    )
}


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "micrometrics"


def folder(foreign: Foreign) -> Path:
    digest = hashlib.sha256("\n".join(foreign.requirements).encode()).hexdigest()[:10]
    return _cache() / f"coexistence-{foreign.name}-{digest}"


class Unavailable(RuntimeError):
    """The package index did not answer: the other instrumentation cannot be installed here."""


def _imports(where: Path, module: str) -> bool:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, env=env).returncode == 0


def install(foreign: Foreign) -> Path:
    """The folder holding ``foreign`` (built with pip unless it is there); raises Unavailable without an index."""
    where = folder(foreign)
    marker = where / ".installed"
    if marker.exists():
        return where
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(where.parent / f".{where.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if marker.exists():
            return where
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--upgrade",
               "--target", str(where), *foreign.requirements]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"pip did not finish installing {' '.join(foreign.requirements)} in {INSTALL_TIMEOUT_S:.0f} s") from exc
        if out.returncode != 0:
            raise Unavailable(f"pip could not install {' '.join(foreign.requirements)}: {out.stderr.strip()[-400:]}")
        # The index answered: from here on a failure is ours (a folder that does not import).
        assert _imports(where, foreign.module), f"{foreign.module} does not import from {where}"
        marker.write_text("\n".join(foreign.requirements))
    return where
