"""Datadog's own test agent (ddapm-test-agent), run as a subprocess on free loopback ports.

The test agent releases that receive OTLP (traces, metrics and logs, over HTTP and gRPC) pin
``opentelemetry-proto<1.37``, while our exporters need the current one, so the agent cannot
share the project's environment. It gets a private virtual environment instead, built with pip
into a cache folder (``$XDG_CACHE_HOME/micrometrics`` or ``~/.cache``) by the set-up step,
``python tests/backends/install_ddagent.py`` (part of the README's test command), so the test run
itself never needs the package index: without the agent, the Datadog tests are skipped, saying how
to install it. ``MICROMETRICS_DDAPM_TEST_AGENT_PYTHON`` points at another interpreter that has it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from otlp_receiver import free_port, from_json

#: First releases with OTLP receivers are 1.33; 1.69.1 is the one these tests were written against.
DDAPM_TEST_AGENT = "ddapm-test-agent==1.69.1"
READY_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 600.0


def _has_otlp(python: str) -> bool:
    probe = "import ddapm_test_agent.traces_otlp, ddapm_test_agent.metrics, ddapm_test_agent.logs"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


class AgentUnavailable(RuntimeError):
    """The test agent is not installed (the set-up step did not run, or could not reach the index)."""


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "micrometrics"


def _venv() -> Path:
    return _cache() / DDAPM_TEST_AGENT.replace("==", "-")


def agent_python() -> str:
    """An interpreter that runs a test agent with OTLP receivers; raises AgentUnavailable when none is installed."""
    override = os.environ.get("MICROMETRICS_DDAPM_TEST_AGENT_PYTHON")
    if override:
        return override
    if _has_otlp(sys.executable):
        return sys.executable
    python = _venv() / "bin" / "python"
    if (_venv() / ".installed").exists() and _has_otlp(str(python)):
        return str(python)
    raise AgentUnavailable(
        f"{DDAPM_TEST_AGENT} is not installed in {_venv()}: run `python tests/backends/install_ddagent.py` "
        "(the README's test command does), or point MICROMETRICS_DDAPM_TEST_AGENT_PYTHON at an interpreter that has it"
    )


def install() -> str:
    """Build the test agent's virtual environment (pip, from the package index) unless it is there; its interpreter."""
    cache = _cache()
    cache.mkdir(parents=True, exist_ok=True)
    venv = _venv()
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    with open(cache / ".ddapm-test-agent.lock", "w") as lock:
        # Parallel set-ups build it once.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and _has_otlp(str(python))):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", DDAPM_TEST_AGENT],
                check=True, timeout=INSTALL_TIMEOUT_S,
            )
            marker.write_text(DDAPM_TEST_AGENT + "\n")
    return str(python)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class TestAgent:
    """One running test agent: APM port, OTLP HTTP port, OTLP gRPC port; read back per session."""

    __test__ = False

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port, self.otlp_http_port, self.otlp_grpc_port = free_port(), free_port(), free_port()
        while len({self.port, self.otlp_http_port, self.otlp_grpc_port}) < 3:
            self.otlp_grpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "ddapm-test-agent.log"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    def start(self) -> "TestAgent":
        # No Datadog credentials reach the agent: it must never forward anything anywhere.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "OTEL_"))}
        env["PYTHONUNBUFFERED"] = "1"
        args = [
            agent_python(), "-m", "ddapm_test_agent.agent", "--host", "127.0.0.1",
            "--port", str(self.port), "--otlp-http-port", str(self.otlp_http_port),
            "--otlp-grpc-port", str(self.otlp_grpc_port), "--snapshot-dir", str(self.workdir / "snapshots"),
            "--disable-llmobs-data-forwarding", "--log-level", "WARNING",
        ]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ddapm-test-agent exited with {self.process.returncode}:\n{self.log_path.read_text()[-4000:]}")
            if all(_listening(p) for p in (self.port, self.otlp_http_port, self.otlp_grpc_port)):
                try:
                    self.clear()
                    return self
                except OSError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ddapm-test-agent did not get ready in {READY_TIMEOUT_S:.0f}s:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    # -- the session endpoints on the OTLP HTTP port

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.otlp_http_endpoint + path, timeout=10) as resp:
            return resp.read()

    def clear(self) -> None:
        self._get("/test/session/clear")

    def requests(self, signal: str) -> list[Any]:
        """What the agent received for ``signal`` ("traces", "metrics", "logs"), as protobuf requests, oldest first."""
        newest_first = json.loads(self._get(f"/test/session/{signal}"))
        return from_json(signal, newest_first[::-1])
