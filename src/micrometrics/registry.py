"""The libraries micrometrics can instrument, by the name users pass to ``instrumentations=``.

The list is our distribution's ``opentelemetry_instrumentor`` entry points (pyproject.toml), the
same ones ``opentelemetry-instrument`` loads: adding an instrumentation is adding its entry point.
An entry point is named ``micrometrics_<library>`` (``micrometrics_openai``), apart from other
packages' instrumentors of the same library, which are named ``<library>``; users pass the library
name (``instrumentations=["openai"]``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any

_DISTRIBUTION = "micrometrics"
_GROUP = "opentelemetry_instrumentor"
#: Our entry points' names are this + the library name.
PREFIX = "micrometrics_"
_DISABLED = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


@dataclass(frozen=True)
class EntryPoint:
    """One of our entry points as ``entry_points.txt`` declares it; ``load()`` imports the instrumentation package."""

    name: str
    value: str
    group: str = _GROUP

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    def load(self) -> Any:
        obj = importlib.import_module(self.module)
        for attr in filter(None, self.value.partition(":")[2].strip().split(".")):
            obj = getattr(obj, attr)
        return obj


@functools.cache
def _entry_points() -> dict[str, Any]:
    """name -> entry point, in our distribution only (another package's instrumentors are not ours to run)."""
    text = _entry_points_text()
    if text is None:
        # Not in a metadata directory on sys.path (a zipped install, say): importlib.metadata knows every layout.
        import importlib.metadata

        try:
            found = importlib.metadata.distribution(_DISTRIBUTION).entry_points
        except importlib.metadata.PackageNotFoundError:
            return {}
        return {ep.name.removeprefix(PREFIX): ep for ep in found if ep.group == _GROUP}
    return {ep.name.removeprefix(PREFIX): ep for ep in _parse_entry_points(text) if ep.group == _GROUP}


def _entry_points_text() -> str | None:
    """Our distribution's ``entry_points.txt``: the first ``micrometrics`` metadata directory on sys.path, as importlib.metadata finds it.

    Read directly because importing importlib.metadata (email, zipfile, csv, ...) costs instrument() ~10 ms.
    """
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except (OSError, TypeError, ValueError):
            continue
        for name in names:
            low = name.lower()
            stem, dot, suffix = low.rpartition(".")
            if dot and suffix in ("dist-info", "egg-info") and stem.partition("-")[0].replace("-", "_").replace(".", "_") == _DISTRIBUTION:
                path = os.path.join(entry or ".", name)
                if not os.path.isdir(path):
                    return None  # an egg-info file, or a layout we do not read: ask importlib.metadata
                try:
                    with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as f:
                        return f.read()
                except FileNotFoundError:
                    return ""
                except OSError:
                    return None
    return None


def _parse_entry_points(text: str) -> list[EntryPoint]:
    """``entry_points.txt`` (an ini file: ``[group]`` then ``name = module:attr``), as importlib.metadata reads it."""
    found, group = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            continue
        name, sep, value = line.partition("=")
        if sep:
            found.append(EntryPoint(name.strip(), value.strip(), group))
    return found


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


@functools.cache
def _ships(module: str) -> bool:
    """Our instrumentation module exists (it cannot appear or vanish while the process runs: read once)."""
    return _exists(module)


def supported() -> tuple[str, ...]:
    """Names whose instrumentation ships with this version of micrometrics."""
    return tuple(name for name, ep in _entry_points().items() if _ships(ep.module))


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
