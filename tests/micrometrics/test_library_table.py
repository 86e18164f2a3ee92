"""``instrument()`` learns each instrumentation's library from ``micrometrics_instrumentation.libraries`` and hooks its import by name.

The table is what ``instrument()`` reads instead of importing our instrumentation packages; these tests
keep it the one declaration (every entry point, its instrumentor's ``library``) and check that the
hook loads a package only when the application imports its library.
"""

from __future__ import annotations

import importlib
import importlib.resources
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from micrometrics import import_hooks, registry
from micrometrics_instrumentation.libraries import LIBRARIES

ROOT = Path(__file__).resolve().parents[2]
DECLARED = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["opentelemetry_instrumentor"]


def _instrumentor_class(target: str):
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def test_every_entry_point_declares_its_library_in_the_table_and_its_instrumentor_reads_it():
    names = {entry.removeprefix(registry.PREFIX) for entry in DECLARED}
    assert set(LIBRARIES) == names
    for entry, target in DECLARED.items():
        name = entry.removeprefix(registry.PREFIX)
        assert _instrumentor_class(target).library == LIBRARIES[name], entry
        assert registry.library(name) == LIBRARIES[name]


def test_every_wrapped_module_is_the_library_or_under_it():
    # The hook on the library fires before any of its modules can: the instrumentor's own hooks are in place in time.
    for entry, target in DECLARED.items():
        cls = _instrumentor_class(target)
        for module, *_ in cls().targets():
            assert module == cls.library or module.startswith(cls.library + "."), (entry, module)


def test_the_library_table_imports_nothing():
    source = (ROOT / "instrumentation" / "micrometrics_instrumentation" / "libraries.py").read_text()
    assert not [line for line in source.splitlines() if line.startswith(("import ", "from "))]


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A real package on disk, never imported yet: ``mm_hooktest_<n>`` with a submodule."""
    name = f"mm_hooktest_{os.getpid()}_{len(list(tmp_path.parent.iterdir()))}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("VALUE = 1\nfrom . import sub\n")
    (root / "sub.py").write_text("def f():\n    return 'f'\n")
    (root / "data.txt").write_text("resource")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def test_a_hook_runs_once_after_the_module_executes_and_the_module_keeps_its_own_loader(package):
    seen = []
    import_hooks.register(lambda m: seen.append((m.__name__, m.VALUE, hasattr(m, "sub"))), package)
    import_hooks.register(lambda m: seen.append((m.__name__, m.f())), package + ".sub")
    assert seen == []
    mod = importlib.import_module(package)
    assert seen == [(package + ".sub", "f"), (package, 1, True)]  # the submodule finishes first, inside the package's import
    assert type(mod.__loader__).__name__ == "SourceFileLoader" and mod.__spec__.loader is mod.__loader__
    assert (importlib.resources.files(package) / "data.txt").read_text() == "resource"
    importlib.reload(mod)
    assert len(seen) == 2  # a hook runs once


def test_a_hook_on_an_imported_module_runs_at_once_and_a_forgotten_hook_never_runs(package):
    seen = []
    hook = seen.append
    import_hooks.register(hook, package)
    import_hooks.forget(package, hook)
    mod = importlib.import_module(package)
    assert seen == []
    import_hooks.register(hook, package)
    assert seen == [mod]


def test_a_failing_import_runs_no_hook_and_a_retry_that_succeeds_does(tmp_path, monkeypatch):
    name = f"mm_hookfail_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    import_hooks.register(seen.append, name)
    with pytest.raises(RuntimeError, match="boom"):
        importlib.import_module(name)
    assert seen == []
    (tmp_path / f"{name}.py").write_text("OK = True\n")
    importlib.invalidate_caches()
    sys.modules.pop(name, None)
    mod = importlib.import_module(name)
    assert seen == [mod]
    del sys.modules[name]


def test_instrument_imports_no_instrumentation_package_and_loads_one_when_its_library_is_imported():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")])}
    script = textwrap.dedent("""
        import sys
        import micrometrics
        handle = micrometrics.instrument(exporter="none", metrics=[])
        ours = lambda: sorted(m for m in sys.modules if m.startswith("micrometrics_instrumentation."))
        print("LOADED", ours(), "wrapt" in sys.modules)
        from micrometrics_instrumentation.libraries import LIBRARIES
        # Not even the parent package of a dotted library (llama_index for llama_index.core) is imported to find it.
        print("PARENTS", sorted({lib.rpartition(".")[0] for lib in LIBRARIES.values() if "." in lib} & set(sys.modules)))
        print("HOOKED", "openai" in handle.instrumentations, "openai" in handle.pending)
        import openai
        from openai.resources.chat.completions import Completions
        print("LOADED", [m for m in ours() if m.count(".") == 1], type(Completions.__dict__["create"]).__name__, "openai" in handle.pending)
        micrometrics.uninstrument()
        print("RESTORED", type(Completions.__dict__["create"]).__name__)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "LOADED ['micrometrics_instrumentation.libraries'] False"
    assert lines[1] == "PARENTS []"
    lines = lines[1:]
    if lines[1] != "HOOKED True True":
        pytest.skip(f"openai is not among the installed entry points here: {lines[1]}")
    assert lines[2] == "LOADED ['micrometrics_instrumentation.instrumentor', 'micrometrics_instrumentation.layers', 'micrometrics_instrumentation.libraries', 'micrometrics_instrumentation.openai', 'micrometrics_instrumentation.translator'] FunctionWrapper False"
    assert lines[3] == "RESTORED function"


def test_the_registry_reads_the_entry_points_importlib_metadata_reads():
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("micrometrics")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("micrometrics is not installed in this interpreter: no entry_points.txt to read")
    expected = {ep.name: ep.value for ep in dist.entry_points if ep.group == "opentelemetry_instrumentor"}
    text = registry._entry_points_text()
    assert text is not None
    assert {ep.name: ep.value for ep in registry._parse_entry_points(text) if ep.group == "opentelemetry_instrumentor"} == expected
    parsed = registry._parse_entry_points("# c\n[console_scripts]\nx = a:b\n\n[opentelemetry_instrumentor]\nmicrometrics_openai = micrometrics_instrumentation.openai:OpenAIInstrumentor\n")
    assert [(ep.group, ep.name, ep.module) for ep in parsed] == [
        ("console_scripts", "x", "a"), ("opentelemetry_instrumentor", "micrometrics_openai", "micrometrics_instrumentation.openai")]
    assert parsed[1].load().__name__ == "OpenAIInstrumentor"
