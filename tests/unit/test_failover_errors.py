"""Which driver errors count as a lost connection while a PostgreSQL cluster fails over (shared/failover.py).

The situations themselves are produced for real in tests/reliability/test_following_the_primary.py and
tests/ha; this pins the one that only a race at a member's shutdown produces.
"""

from __future__ import annotations

from asyncpg.exceptions import InternalClientError
from sqlalchemy.exc import DBAPIError

from shared.db import translate_infrastructure_error
from shared.errors import Unavailable
from shared.failover import protocol_out_of_step

OUT_OF_STEP = "cannot switch to state 12; another operation (2) is in progress"


def test_a_connection_caught_mid_exchange_at_shutdown_is_a_lost_connection_callers_may_retry() -> None:
    error = InternalClientError(OUT_OF_STEP)
    assert protocol_out_of_step(error)
    wrapped = DBAPIError.instance(None, None, error, Exception, connection_invalidated=True)
    assert protocol_out_of_step(wrapped)
    assert isinstance(translate_infrastructure_error(wrapped), Unavailable)


def test_other_internal_driver_errors_stay_bugs() -> None:
    assert not protocol_out_of_step(InternalClientError("unexpected message type"))
    assert not protocol_out_of_step(ValueError(OUT_OF_STEP))
