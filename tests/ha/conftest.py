"""The high-availability cases start a Patroni cluster of their own (three PostgreSQL members and etcd):
about a minute each, so they run with `make ha-test` (which .ci/run calls), not in every `make test`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.ha_cluster import ha_tools_missing

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("TESSERA_HA_TESTS") == "1":
        reason = ha_tools_missing()
    else:
        reason = "starts a Patroni cluster: run with `make ha-test` (TESSERA_HA_TESTS=1)"
    if reason is None:
        return
    for item in items:
        if item.path.parent == HERE:
            item.add_marker(pytest.mark.skip(reason=reason))
