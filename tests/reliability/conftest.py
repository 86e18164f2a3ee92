"""Fixtures of the reliability suite: a fresh internal-error tally per test, an OTLP sink."""

from __future__ import annotations

import logging

import pytest

from micrometrics import internal_errors
from otlp_sink import OtlpSink
from reliability_libraries import close_clients


@pytest.fixture(scope="session", autouse=True)
def shared_clients():
    yield
    close_clients()


@pytest.fixture(autouse=True)
def fresh_safety():
    internal_errors.reset_for_tests()
    yield
    internal_errors.reset_for_tests()


@pytest.fixture
def sink():
    with OtlpSink() as s:
        yield s


@pytest.fixture
def debug_log(caplog):
    """The micrometrics logger's records, at debug level."""
    caplog.set_level(logging.DEBUG, logger="micrometrics")
    return caplog
