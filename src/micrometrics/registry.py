"""The libraries micrometrics can instrument, by the name users pass to ``instrumentations=``.

The list is our distribution's ``opentelemetry_instrumentor`` entry points (pyproject.toml), the
same ones ``opentelemetry-instrument`` loads: adding an instrumentation is adding its entry point.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from typing import Any

_DISTRIBUTION = "micrometrics"
_GROUP = "opentelemetry_instrumentor"
#: Entry points are named ``micrometrics_<name>`` (unique among every package's instrumentors); users pass ``<name>``.
_PREFIX = "micrometrics_"


@functools.cache
def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """name -> entry point, in our distribution only (another package's instrumentors are not ours to run)."""
    try:
        found = importlib.metadata.distribution(_DISTRIBUTION).entry_points
    except importlib.metadata.PackageNotFoundError:
        return {}
    return {ep.name.removeprefix(_PREFIX): ep for ep in found if ep.group == _GROUP}


@functools.cache
def _instrumentor_class(name: str) -> Any:
    # Imports our instrumentation package only: it imports its library when the application does.
    return _entry_points()[name].load()


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def supported() -> tuple[str, ...]:
    """Names whose instrumentation ships with this version of micrometrics."""
    return tuple(name for name, ep in _entry_points().items() if _exists(ep.module))


def library(name: str) -> str:
    """The module ``name``'s instrumentation wraps (``google.genai``)."""
    return _instrumentor_class(name).library


def installed(name: str) -> bool:
    """Whether ``name``'s library is installed (found without importing it)."""
    return _exists(library(name))


def importable() -> tuple[str, ...]:
    """Supported names whose library is installed: the default selection."""
    return tuple(n for n in supported() if installed(n))


def extra(name: str) -> str:
    """The pyproject extra that installs ``name``'s library (``pip install "micrometrics[google-genai]"``)."""
    return name.replace("_", "-")


def instrumentor(name: str) -> Any:
    return _instrumentor_class(name)()
