"""How long ``micrometrics.instrument()`` takes, and that it imports none of the instrumented libraries.

    python benchmarks/instrument_time.py [--runs 7] [--json out.json]

Each run is a fresh interpreter (what an application pays once, at start-up), with bytecode
caching on (an installed package has its ``.pyc``; a first run warms a private cache). Two
figures: ``instrument(exporter="none")`` right after ``import micrometrics`` (the SDK is not imported:
``instrument()`` returns once the libraries are hooked, and imports and builds the SDK's providers on a
background thread; the time until that set-up is done, and the SDK modules the application's thread
imported, which should be none, are reported beside it), and the same call when the application has
already imported the SDK (it may have configured OpenTelemetry itself: the set-up is done before
``instrument()`` returns). Every supported library that is
installed in this interpreter is selected (the default); the run fails if any of them, or any
module under them, was imported by ``instrument()``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_MS = 50.0

_CHILD = r"""
import json, sys, threading, time
class Watch:  # which thread imports each OpenTelemetry SDK module (imports nothing itself)
    seen = []
    def find_spec(self, name, path=None, target=None):
        if name.startswith("opentelemetry.sdk"):
            self.seen.append(threading.current_thread().name)
        return None
sys.meta_path.insert(0, Watch())
if {sdk_first}:
    import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, opentelemetry.sdk._logs, opentelemetry.sdk.resources
t0 = time.perf_counter()
import micrometrics
t1 = time.perf_counter()
from micrometrics import registry
libraries = {{name: registry.library(name) for name in registry.supported()}} if {probe} else {{}}
before = set(sys.modules)
caller_sdk_before = Watch.seen.count("MainThread")
t2 = time.perf_counter()
handle = micrometrics.instrument(exporter="none")
t3 = time.perf_counter()
caller_sdk = Watch.seen.count("MainThread") - caller_sdk_before
handle.tracer_provider  # waits for the set-up when it runs on a background thread
t4 = time.perf_counter()
new = set(sys.modules) - before
roots = sorted({{lib.split(".")[0] for lib in libraries.values()}} - {{"google"}})
leaked = sorted(m for m in new if any(m == r or m.startswith(r + ".") for r in roots) or m == "google.genai" or m.startswith("google.genai."))
print(json.dumps({{"import_ms": (t1 - t0) * 1e3, "instrument_ms": (t3 - t2) * 1e3, "ready_ms": (t4 - t2) * 1e3,
                   "caller_sdk_imports": caller_sdk, "selected": list(handle.instrumentations) if hasattr(handle, "instrumentations") else None,
                   "libraries": libraries, "leaked": leaked, "modules_imported": len(new)}}))
"""


def _run(sdk_first: bool, probe: bool, cache: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    code = _CHILD.format(sdk_first=sdk_first, probe=probe)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(HERE))
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(runs: int = 7) -> dict[str, Any]:
    cache = tempfile.mkdtemp(prefix="mm-pyc-")
    probe = _run(False, True, cache)  # warms the bytecode cache; names the libraries (loads our packages first, so not timed)
    out: dict[str, Any] = {"runs": runs, "libraries": probe["libraries"], "leaked": probe["leaked"]}
    for label, sdk_first in (("cold", False), ("sdk_imported", True)):
        got = [_run(sdk_first, False, cache) for _ in range(runs)]
        out[label] = {
            "instrument_ms": statistics.median(g["instrument_ms"] for g in got),
            "instrument_ms_min": min(g["instrument_ms"] for g in got),
            "import_ms": statistics.median(g["import_ms"] for g in got),
            "ready_ms": statistics.median(g["ready_ms"] for g in got),
            "caller_sdk_imports": max(g["caller_sdk_imports"] for g in got),
            "modules_imported": got[0]["modules_imported"],
            "leaked": sorted({m for g in got for m in g["leaked"]}),
        }
    out["leaked"] = sorted(set(out["leaked"]) | set(out["cold"]["leaked"]) | set(out["sdk_imported"]["leaked"]))
    return out


def report(r: dict[str, Any]) -> str:
    libs = ", ".join(sorted(set(r["libraries"].values())))
    return "\n".join([
        f"supported libraries installed here: {libs}",
        f"instrument() after import micrometrics: median {r['cold']['instrument_ms']:.1f} ms (min {r['cold']['instrument_ms_min']:.1f}; "
        f"import micrometrics {r['cold']['import_ms']:.1f} ms; {r['cold']['modules_imported']} modules imported by instrument() and its set-up)",
        f"  set-up done (on a background thread) {r['cold']['ready_ms']:.1f} ms after instrument() began; "
        f"OpenTelemetry SDK modules imported on the application's thread: {r['cold']['caller_sdk_imports']}",
        f"instrument() with the OpenTelemetry SDK already imported: median {r['sdk_imported']['instrument_ms']:.1f} ms (min {r['sdk_imported']['instrument_ms_min']:.1f}; "
        f"set up before it returns)",
        f"library modules imported by instrument(): {', '.join(r['leaked']) or 'none'}",
        f"{r['runs']} fresh interpreters each; target <= {TARGET_MS:.0f} ms",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    r = run(args.runs)
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    print(report(r))
    return 1 if r["leaked"] else 0


if __name__ == "__main__":
    sys.exit(main())
