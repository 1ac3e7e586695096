"""Fixtures every test layer shares: real databases on each enabled backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.logging import configure_logging
from tests.support.databases import enabled_backends, fresh_database


@pytest.fixture(scope="session", autouse=True)
def _service_logging() -> None:
    # The services' own logging set-up: plain tracebacks (the default renderer's rich ones take
    # seconds per exception) and the same processors as production.
    configure_logging("console", "INFO", "test")


@pytest.fixture(params=enabled_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """Runs the test once per enabled database backend (sqlite, postgres)."""
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own, dropped after the test."""
    async with fresh_database(backend, tmp_path) as url:
        yield url
