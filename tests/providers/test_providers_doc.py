"""docs/providers.md names, for each client and capability, the test that proves it: those tests exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "providers"
REFERENCE = re.compile(r"`(test_[a-z0-9_]+\.py)::([A-Za-z_][A-Za-z0-9_]*)`")


def coverage_table() -> list[str]:
    doc = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    section = doc.split("## What each client is proven to do", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| client")]


def defined(path: Path) -> set[str]:
    """Test functions and classes at any depth of a test module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def test_every_test_the_coverage_table_names_exists():
    rows = coverage_table()
    assert len(rows) >= 4
    missing = []
    for row in rows:
        for file, name in REFERENCE.findall(row):
            if not (TESTS / file).exists() or name not in defined(TESTS / file):
                missing.append(f"{file}::{name}")
    assert missing == []


def test_every_row_has_a_test_or_a_reason_in_every_column():
    for row in coverage_table():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7, row  # client, sync, async, stream, tools, embeddings, guard
        for cell in cells[1:]:
            assert REFERENCE.search(cell) or cell.startswith(("none:", "not covered:")), (cells[0], cell)
        assert "test_language_guard.py::test_language_guard_retries_in_the_conversation_language" in cells[6], cells[0]
