from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.auth_server import RunningAuthServer, running_auth_server


@pytest.fixture
async def auth(database_url: str, tmp_path: Path) -> AsyncIterator[RunningAuthServer]:
    async with running_auth_server(database_url, tmp_path) as server:
        yield server
