"""Shared by the examples: a real OpenAI client, or the local demo server when no API key is set."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))


#: Client library an example imports -> (module to look for, the extra that installs it).
_EXTRAS = {
    "openai": ("openai", "openai"),
    "anthropic": ("anthropic", "anthropic"),
    "google-genai": ("google.genai", "google-genai"),
    "chromadb": ("chromadb", "chromadb"),
    "boto3": ("boto3", "bedrock"),
}


def require(*libraries: str) -> None:
    """Exit with the install command when a client library this example needs is missing."""
    import importlib.util

    def found(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ImportError:  # a missing parent package (google)
            return False

    missing = [name for name in libraries if not found(_EXTRAS[name][0])]
    if missing:
        extras = ",".join(_EXTRAS[name][1] for name in libraries)
        raise SystemExit(
            f"{Path(sys.argv[0]).name} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed. "
            f'From the repository root: pip install -e ".[{extras}]"'
        )


@contextmanager
def openai_client(async_: bool = False) -> Iterator[object]:
    import openai

    cls = openai.AsyncOpenAI if async_ else openai.OpenAI
    if os.environ.get("OPENAI_API_KEY"):
        yield cls()
        return
    from demo_server import DemoServer

    with DemoServer(chunk_delay=0.01) as server:
        print(f"OPENAI_API_KEY is not set: using the local demo server at {server.openai_base_url}\n", file=sys.stderr)
        yield cls(base_url=server.openai_base_url, api_key="demo", max_retries=0)


def model() -> str:
    return os.environ.get("MICROMETRICS_EXAMPLE_MODEL", "gpt-4o-mini")
