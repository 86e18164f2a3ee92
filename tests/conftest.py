"""Shared fixtures: the loopback demo server and micrometrics wired to in-memory exporters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests"))

from demo_server import DemoServer  # noqa: E402
from telemetry_harness import Telemetry, emitted_names  # noqa: E402


@pytest.fixture(scope="session")
def server():
    with DemoServer() as srv:
        yield srv


@pytest.fixture
def demo(server):
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def telemetry():
    """In-memory span/metric/log exporters, torn down (uninstrument) after the test."""
    t = Telemetry()
    yield t
    t.close()


def pytest_sessionfinish(session, exitstatus):
    # The declared-names test reads what the whole suite emitted.
    pass
