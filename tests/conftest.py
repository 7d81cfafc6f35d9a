"""Shared pytest settings, and the guarantee that no process outlives its test."""

import signal
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.tools import processes

settings.register_profile("roomcast", max_examples=200, deadline=None)
settings.load_profile("roomcast")


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    """Whatever the test (or a function-scoped fixture) started and left running is killed
    when it ends, pass or fail.  Processes of wider-scoped fixtures, started before, stay."""
    before = processes.owned()
    yield
    processes.end_all_but(before)


def pytest_configure() -> None:
    # SIGTERM (a CI job cancelled) ends the run as Ctrl-C does: fixtures' finally blocks run,
    # so the processes the tests started (each in a session of its own) are ended too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def pytest_sessionfinish() -> None:
    processes.end_all_but()
