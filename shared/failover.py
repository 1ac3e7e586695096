"""Following the primary of a replicated PostgreSQL (Patroni) through failovers and switchovers.

The services connect with a multi-host URL and `target_session_attrs=read-write` (README, "High
availability"): asyncpg tries the hosts in order and keeps the first that accepts writes. That choice is
made once per connection, so the pool must also let go of connections whose server stopped being the
primary, and a moment with no primary at all must read as "retry shortly", not as a bug.
"""

from __future__ import annotations

from typing import Any

from asyncpg.exceptions import InternalClientError, TargetServerAttributeNotMatched
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

# read_only_sql_transaction: a write reached a server that is (no longer) the primary.
READ_ONLY_SQLSTATE = "25006"


def follow_the_primary(engine: AsyncEngine) -> None:
    """Treat "this server takes no writes" like a lost connection.

    SQLAlchemy then discards the connection and, because its pool invalidates every connection older
    than a disconnect, all its siblings as well (they point at the same demoted server); the next
    checkout connects anew and `target_session_attrs` finds the new primary. The error itself becomes a
    lost connection, which callers see as UNAVAILABLE with RetryInfo. The same holds when a new
    connection finds no host that accepts writes: mid-failover, before a standby has been promoted.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _treat_as_disconnect(context: ExceptionContext) -> None:
        error = context.original_exception
        if _is_read_only_refusal(error) or _no_writable_host(error) or protocol_out_of_step(error):
            context.is_disconnect = True


def protocol_out_of_step(exc: BaseException) -> bool:
    """asyncpg found its connection mid-way through another exchange ("cannot switch to state …").

    Seen when a member shuts down (switchover): its "terminating connection" error reaches a pooled
    connection between two queries, and the next query trips over it before the socket closes. The
    query was never sent; the connection is useless: a lost connection, which the caller may retry.
    """
    for error in (exc, exc.__cause__, getattr(exc, "orig", None)):
        if isinstance(error, InternalClientError) and str(error).startswith("cannot switch to state"):
            return True
    return False


def _is_read_only_refusal(exc: BaseException) -> bool:
    return _sqlstate(exc) == READ_ONLY_SQLSTATE or _sqlstate(exc.__cause__) == READ_ONLY_SQLSTATE


def _no_writable_host(exc: BaseException) -> bool:
    return isinstance(exc, TargetServerAttributeNotMatched) or isinstance(
        exc.__cause__, TargetServerAttributeNotMatched
    )


def _sqlstate(exc: BaseException | None) -> str | None:
    code: Any = getattr(exc, "sqlstate", None)
    return code if isinstance(code, str) else None
