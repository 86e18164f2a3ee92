"""Fixtures of the offline-evaluation tests."""

from __future__ import annotations

import pytest

from offline_cli import run_cli


@pytest.fixture
def cli():
    return run_cli
