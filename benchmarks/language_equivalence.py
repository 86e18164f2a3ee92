"""Old detector against new: the same answer on every text of the test suite and tests/data/.

    python benchmarks/language_equivalence.py                 # against the detector of --against (default: the
    python benchmarks/language_equivalence.py --against f75039f   # commit before the performance work)

Loads ``src/micrometrics/metrics/language.py`` as it was at ``--against`` (``git show``) next to
the current one and compares ``detect_language`` (language, confidence, reason: the whole
``Detection``, so LanguageMatch's labels, scores and details too) on:

- every string of ``tests/data/*.jsonl`` (texts, responses, messages, contexts, documents);
- every string literal of ``tests/**/*.py`` with a letter in it (implicit concatenations folded)
  and every string held in the globals of the detector's own test module (its tables);
- the benchmarks' corpus cut into 2,000 distinct ~300-character answers, and its whole answers;
- pairwise concatenations of the test module's support answers (mixed languages, long text);

each with three parameter sets (defaults; ``min_chars=0, min_confidence=0``, which shows every
score; ``max_chars=50``, which samples), twice (cold token cache, then warm). Prints the count
of texts and of differences, and the differences; exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO), str(HERE)]

#: The last commit before the detector was made faster (issue 21).
BASELINE = "f75039f"
PARAMETERS = ({}, {"min_chars": 0, "min_confidence": 0.0}, {"max_chars": 50})


def _old_module(ref: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{ref}:src/micrometrics/metrics/language.py"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "language_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("micrometrics.metrics.language_before", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 4:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, depth + 1)
            yield from _strings(v, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v, depth + 1)


def texts() -> list[str]:
    out: dict[str, None] = {}
    for path in sorted((REPO / "tests" / "data").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                # language_cases has "text"; the other metrics' datasets have a "response" and user messages
                for s in _strings(json.loads(line)):
                    out[s] = None
    for path in sorted((REPO / "tests").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(c.isalpha() for c in node.value):
                out[node.value] = None
    spec = importlib.util.spec_from_file_location("test_language_detection", REPO / "tests" / "micrometrics" / "test_language_detection.py")
    assert spec and spec.loader
    test_module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = test_module
    spec.loader.exec_module(test_module)
    for name, value in vars(test_module).items():
        if not name.startswith("__"):
            for s in _strings(value):
                out[s] = None
    support = getattr(test_module, "SUPPORT", {})
    answers = [" ".join(v) if isinstance(v, (list, tuple)) else str(v) for v in support.values()]
    for a in answers:
        for b in answers:
            out[a + " " + b] = None
    import workload

    for _, text in workload.responses(2000):
        out[text] = None
    for text in workload.CORPUS.values():
        out[text] = None
    out[workload.ANSWER] = None
    return list(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default=BASELINE, help=f"git revision of the old detector (default {BASELINE})")
    args = ap.parse_args(argv)
    old = _old_module(args.against)
    from micrometrics.metrics import language as new

    corpus = texts()
    differences = []
    compared = 0
    for attempt in ("cold", "warm"):
        for params in PARAMETERS:
            for text in corpus:
                a, b = old.detect_language(text, **params), new.detect_language(text, **params)
                compared += 1
                if (a.language, a.confidence, a.reason) != (b.language, b.confidence, b.reason):
                    differences.append((attempt, params, text, a, b))
    print(f"{len(corpus):,} texts x {len(PARAMETERS)} parameter sets x cold/warm = {compared:,} detections, "
          f"old = {args.against}, new = working tree: {len(differences)} differences")
    for attempt, params, text, a, b in differences[:20]:
        print(f"  {attempt} {params} {text[:80]!r}: {a} -> {b}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
