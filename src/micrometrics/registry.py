"""The libraries micrometrics can instrument, by the name users pass to ``instrumentations=``.

The list is our distribution's ``opentelemetry_instrumentor`` entry points (pyproject.toml), the
same ones ``opentelemetry-instrument`` loads: adding an instrumentation is adding its entry point.
An entry point is named ``micrometrics_<library>`` (``micrometrics_openai``), apart from other
packages' instrumentors of the same library, which are named ``<library>``; users pass the library
name (``instrumentations=["openai"]``).
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
from typing import Any

_DISTRIBUTION = "micrometrics"
_GROUP = "opentelemetry_instrumentor"
#: Our entry points' names are this + the library name.
PREFIX = "micrometrics_"
_DISABLED = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


@functools.cache
def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """name -> entry point, in our distribution only (another package's instrumentors are not ours to run)."""
    try:
        found = importlib.metadata.distribution(_DISTRIBUTION).entry_points
    except importlib.metadata.PackageNotFoundError:
        return {}
    return {ep.name.removeprefix(PREFIX): ep for ep in found if ep.group == _GROUP}


def entry_point_name(name: str) -> str:
    """What ``opentelemetry-instrument`` calls ``name``'s instrumentor (``micrometrics_openai``)."""
    return PREFIX + name


def disabled() -> tuple[str, ...]:
    """The names whose entry point ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` lists (``micrometrics_openai``: ``openai``).

    A bare ``openai`` there turns off other packages' ``openai`` instrumentors, not ours.
    """
    listed = {part.strip() for part in os.environ.get(_DISABLED, "").split(",")}
    return tuple(name for name in _entry_points() if entry_point_name(name) in listed)


@functools.cache
def _instrumentor_class(name: str) -> Any:
    # Imports our instrumentation package only: it imports its library when the application does.
    return _entry_points()[name].load()


def _exists(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it or its parent packages (``llama_index`` for ``llama_index.core``)."""
    try:
        parent, _, _ = module.rpartition(".")
        if not parent or parent in sys.modules:
            return importlib.util.find_spec(module) is not None
        spec = importlib.util.find_spec(module.partition(".")[0])
        for depth, part in enumerate(module.split(".")[1:], start=2):
            if spec is None or not spec.submodule_search_locations:
                return False
            name = ".".join(module.split(".")[:depth])
            spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
        return spec is not None
    except (ImportError, ValueError):
        return False


def supported() -> tuple[str, ...]:
    """Names whose instrumentation ships with this version of micrometrics."""
    return tuple(name for name, ep in _entry_points().items() if _exists(ep.module))


def library(name: str) -> str:
    """The module ``name``'s instrumentation wraps (``google.genai``), read without importing our instrumentation package."""
    declared = _declared_libraries().get(name)
    # An entry point the table does not list (added by a test, or a newer package): ask its instrumentor.
    return declared if declared is not None else _instrumentor_class(name).library


@functools.cache
def _declared_libraries() -> dict[str, str]:
    try:
        from micrometrics_instrumentation.libraries import LIBRARIES
    except ImportError:
        return {}
    return LIBRARIES


def installed(name: str) -> bool:
    """Whether ``name``'s library is installed (found without importing it)."""
    return _exists(library(name))


def importable() -> tuple[str, ...]:
    """Supported names whose library is installed and that ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` leaves on: the default selection."""
    off = disabled()
    return tuple(n for n in supported() if installed(n) and n not in off)


def extra(name: str) -> str:
    """The pyproject extra that installs ``name``'s library (``pip install "micrometrics[google-genai]"``)."""
    return name.replace("_", "-")


def instrumentor(name: str) -> Any:
    return _instrumentor_class(name)()
