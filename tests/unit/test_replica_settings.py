"""A read replica may lag; the read-your-writes window must outlast that lag (shared/config.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import DataSettings

REPLICA = "postgresql+asyncpg://tessera@/tessera_data?host=db2:5432&target_session_attrs=prefer-standby"


def test_a_read_your_writes_window_shorter_than_the_staleness_bound_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="DATA_READ_YOUR_WRITES_SECONDS must be at least 6"):
        DataSettings(read_replica_url=REPLICA, read_replica_max_lag_seconds=5, read_your_writes_seconds=5)


def test_the_defaults_fit_together_and_no_replica_means_no_constraint() -> None:
    assert DataSettings(read_replica_url=REPLICA).read_your_writes_seconds >= 6
    assert DataSettings(read_your_writes_seconds=0).read_replica_url is None
