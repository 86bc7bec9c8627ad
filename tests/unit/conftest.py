"""The unit tier runs without a database and without sockets: a test that asks for one fails
at once, naming the tier it belongs in."""

from __future__ import annotations

import pytest


@pytest.fixture
def server_url() -> str:
    raise pytest.UsageError("a unit test has no database: move it to tests/db or tests/e2e")
