"""pytest fixtures for the Sheets emulator; register with ``pytest_plugins = ["fakes.fixtures"]``.

``sheets_server`` runs one emulator for the whole session; ``emulator`` is that emulator with
its state reset for the test (spreadsheets, tokens, faults, quota and request log)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.feed import Feed
from fakes.sheets import SheetsEmulator


@pytest.fixture(scope="session")
def sheets_server() -> Iterator[SheetsEmulator]:
    with SheetsEmulator() as server:
        yield server


@pytest.fixture
def emulator(sheets_server: SheetsEmulator) -> Iterator[SheetsEmulator]:
    sheets_server.reset()
    yield sheets_server
    sheets_server.close_clients()


@pytest.fixture(scope="session")
def feed_server() -> Iterator[Feed]:
    server = Feed()
    yield server
    server.close()


@pytest.fixture
def feed(feed_server: Feed) -> Feed:
    """A JSON endpoint on loopback (127.0.0.1, on the test apps' allowlist), reset per test."""
    feed_server.reset()
    return feed_server
