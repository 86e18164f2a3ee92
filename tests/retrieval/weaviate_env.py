"""The virtual environment the Weaviate tests run the real client in, built once into ``$XDG_CACHE_HOME/micrometrics``
(or ``~/.cache/micrometrics``) like the coexistence folders (tests/coexistence/foreign.py).

Why its own: every ``weaviate-client`` 4.x requires grpcio < 1.80, protobuf < 7 and httpx < 0.29, while our
development environment has grpcio 1.85, protobuf 7 and httpx 0.29 (other clients' requirements). So the client
gets a venv of its own, with the OpenTelemetry packages at the versions this environment runs, and our three
import roots on ``PYTHONPATH``. Without a reachable package index the tests are skipped, saying so.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

INSTALL_TIMEOUT_S = 600.0
#: The client version the tests were written against, and what it needs that our environment cannot have.
CLIENT = ("weaviate-client==4.24.1", "grpcio<1.80", "protobuf<7", "httpx<0.29")
#: Our core dependencies the scenario imports, at the versions this environment runs.
OURS = ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "opentelemetry-instrumentation", "wrapt", "langdetect")


class Unavailable(RuntimeError):
    """The package index did not answer: the environment cannot be built here."""


def requirements() -> tuple[str, ...]:
    return (*CLIENT, *(f"{name}=={version(name)}" for name in OURS))


def folder() -> Path:
    digest = hashlib.sha256("\n".join((sys.version, *requirements())).encode()).hexdigest()[:10]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "micrometrics"
    return cache / f"weaviate-{digest}"


def python() -> Path:
    """The environment's interpreter (built with pip unless it is there); raises Unavailable without an index."""
    where = folder()
    interpreter = where / "bin" / "python"
    marker = where / ".installed"
    if marker.exists():
        return interpreter
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(where.parent / f".{where.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if marker.exists():
            return interpreter
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(where)], check=True, capture_output=True)
        cmd = [str(interpreter), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements()]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"pip did not finish installing {' '.join(requirements())} in {INSTALL_TIMEOUT_S:.0f} s") from exc
        # pip's resolver refusing our pins is ours to fix, not a missing index: fail, do not skip.
        assert "ResolutionImpossible" not in out.stderr, f"the Weaviate environment's requirements conflict: {out.stderr.strip()[-1500:]}"
        if out.returncode != 0:
            raise Unavailable(f"pip could not install {' '.join(requirements())}: {out.stderr.strip()[-400:]}")
        # The index answered: from here on a failure is ours (an environment that does not import the client).
        check = subprocess.run([str(interpreter), "-c", "import weaviate, grpc, opentelemetry.sdk"], capture_output=True, text=True)
        assert check.returncode == 0, f"the Weaviate environment {where} does not import: {check.stderr[-400:]}"
        marker.write_text("\n".join(requirements()))
    return interpreter
