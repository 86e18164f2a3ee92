"""Where each mode runs: our modes in this interpreter, each peer in its own virtual environment.

The peers pin OpenTelemetry and openai versions that may clash with ours and with each
other, so each gets a venv under ``~/.cache/micrometrics-bench/<mode>`` (outside the
repository), created on first use and reused while its spec is unchanged. Every venv
holds the same openai release as this interpreter unless the peer cannot run on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MICROMETRICS_BENCH_CACHE", Path.home() / ".cache" / "micrometrics-bench"))


def openai_version() -> str:
    return metadata.version("openai")


@dataclass
class Environment:
    """One interpreter and the modes measured in it (always with its own uninstrumented baseline)."""

    name: str
    modes: tuple[str, ...]
    packages: list[str] = field(default_factory=list)
    note: str = ""
    python: str = sys.executable

    def spec(self) -> str:
        return json.dumps({"packages": self.packages, "python": list(sys.version_info[:2]), "repo": str(REPO)}, sort_keys=True)


def peer_environments() -> list[Environment]:
    """The peers, pinned to the releases measured in RESULTS.md (``--latest`` drops the pins)."""
    ov = openai_version()
    return [
        Environment(
            "otel-openai-v2",
            ("none", "otel-openai-v2", "micrometrics-default"),
            ["opentelemetry-instrumentation-openai-v2==2.4b0", "opentelemetry-util-genai<1.2", "openai<3"],
            note=(
                "imports httpx, which openai 3.x no longer uses, and needs opentelemetry-util-genai < 1.2 "
                "(1.2 removed the module it imports): measured with the newest openai 2.x, against the "
                "uninstrumented client of that venv; micrometrics is measured there too"
            ),
        ),
        Environment("otel-genai-openai", ("none", "otel-genai-openai"), ["opentelemetry-instrumentation-genai-openai==1.3b0", f"openai=={ov}"]),
        Environment("openinference", ("none", "openinference"), ["openinference-instrumentation-openai==0.1.66", f"openai=={ov}"]),
        Environment("openllmetry", ("none", "openllmetry"), ["opentelemetry-instrumentation-openai==0.62.4", f"openai=={ov}"]),
    ]


def ours() -> Environment:
    import importlib.util

    # LiteLLM's row where it is installed (the dev extra): our added cost over LiteLLM alone.
    litellm = ("micrometrics-litellm",) if importlib.util.find_spec("litellm") is not None else ()
    # The floor (floor.py) runs in our venv: the SDK and the conventions' minimum, the reference for issue 21's ratios.
    return Environment("micrometrics", ("none", "micrometrics-default", "micrometrics-no-metrics", *litellm, "floor"))


def _unpinned(pkg: str) -> str:
    """``--latest``: the newest release of the peer itself; compatibility bounds stay."""
    return pkg.split("==")[0] if "==" in pkg and not pkg.startswith("openai") else pkg


def prepare(env: Environment, latest: bool = False, log=print) -> Environment:
    """Create (or reuse) the venv of ``env``; returns it with ``python`` set."""
    if latest:
        env.packages = [_unpinned(p) for p in env.packages]
    root = CACHE / env.name
    python = root / "bin" / "python"
    marker = root / ".micrometrics-bench-spec"
    spec = env.spec()
    if python.exists() and marker.exists() and marker.read_text() == spec:
        env.python = str(python)
        return env
    log(f"  creating venv {root} for {env.name} (once; reused by later runs)")
    root.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    cmd = [str(python), "-m", "pip", "install", "-q", "--pre", *env.packages, "httpx2", "-e", str(REPO)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"could not install {env.name}: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    marker.write_text(spec)
    env.python = str(python)
    return env


def cached(env: Environment) -> bool:
    """Whether ``env``'s venv exists with its current pins (run_all.py measures only those by default)."""
    marker = CACHE / env.name / ".micrometrics-bench-spec"
    return (CACHE / env.name / "bin" / "python").exists() and marker.exists() and marker.read_text() == env.spec()


def digest(envs: list[Environment]) -> str:
    return hashlib.sha1("".join(e.spec() for e in envs).encode()).hexdigest()[:8]
