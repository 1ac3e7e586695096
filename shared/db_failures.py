"""What a failed database call means for the client, decided by SQLSTATE and exception type.

The same PostgreSQL refusal reaches us in several wrappings: asyncpg's own exception (the data service's
driver fast path), SQLAlchemy's emulated DBAPI error around it (a pool connect outside any
`Connection`, e.g. `engine.raw_connection()`), and `sqlalchemy.exc.DBAPIError` around that (everything
else, with `.orig`). So the whole chain is read (`.orig` and `__cause__`), and the answer never depends
on message text, which changes with the server's language and version.

- UNAVAILABLE: the database went away or refuses work for now; the same request may succeed later or
  on another instance. Lost and refused connections (SQLSTATE class 08, sockets), the server shutting
  down, starting up or crashed (57P01/57P02/57P03, class 57P), too many connections and other
  exhausted resources (class 53), a demoted primary that became read-only (25006), and SQLite's
  can't-open / I/O / full / out-of-memory / read-only codes.
- CONFLICT: the database gave up on this transaction because of a concurrent one (40001, 40P01,
  SQLite's busy/locked); running the whole transaction again is the fix.
- DEADLINE: our own statement timeout (57014) derived from the caller's deadline fired.
- None: the request or our code is at fault (data errors, class 22, among them: they repeat on every
  retry, so they must never look like an outage).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator

import asyncpg
from sqlalchemy.exc import DBAPIError


class Failure(enum.Enum):
    UNAVAILABLE = "unavailable"
    CONFLICT = "conflict"
    DEADLINE = "deadline"


_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
# query_canceled: a statement timeout (ours, from the deadline) or an operator's pg_cancel_backend.
QUERY_CANCELED = "57014"
# connection_exception, insufficient_resources, operator_intervention (57P01 admin shutdown,
# 57P02 crash shutdown, 57P03 cannot connect now, 57P04 database dropped, 57P05 idle session timeout).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")
# read_only_sql_transaction: a primary demoted to a standby by failover refuses writes until clients
# reconnect to the new primary.
_UNAVAILABLE_SQLSTATES = frozenset({"25006"})

# SQLite primary result codes (https://sqlite.org/rescode.html); the extended code's low byte.
_SQLITE_CONFLICT_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
_SQLITE_UNAVAILABLE_CODES = frozenset(
    {7, 8, 10, 13, 14}  # SQLITE_NOMEM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it wraps: a DBAPI error's `.orig` and explicit causes, each at most once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) and id(orig) not in seen else current.__cause__


def sqlstate_in_chain(exc: BaseException) -> str | None:
    """The first SQLSTATE anywhere in the chain (asyncpg's `sqlstate`, psycopg-style `pgcode`)."""
    for link in exception_chain(exc):
        for attribute in ("sqlstate", "pgcode"):
            code = getattr(link, attribute, None)
            if isinstance(code, str) and code:
                return code
    return None


def sqlite_code_in_chain(exc: BaseException) -> int | None:
    """The primary SQLite result code of the first sqlite3 error in the chain."""
    for link in exception_chain(exc):
        if isinstance(link, sqlite3.Error):
            code = getattr(link, "sqlite_errorcode", None)
            return code & 0xFF if isinstance(code, int) else None
    return None


def classify_sqlstate(state: str) -> Failure | None:
    if state in _CONFLICT_SQLSTATES:
        return Failure.CONFLICT
    if state == QUERY_CANCELED:
        return Failure.DEADLINE
    if state in _UNAVAILABLE_SQLSTATES or state.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
        return Failure.UNAVAILABLE
    return None


def classify(exc: BaseException) -> Failure | None:
    """What `exc` (raised by a database call, however wrapped) means; None when it is not ours to say."""
    state = sqlstate_in_chain(exc)
    if state is not None:
        return classify_sqlstate(state)
    sqlite_code = sqlite_code_in_chain(exc)
    if sqlite_code is not None:
        if sqlite_code in _SQLITE_CONFLICT_CODES:
            return Failure.CONFLICT
        return Failure.UNAVAILABLE if sqlite_code in _SQLITE_UNAVAILABLE_CODES else None
    for link in exception_chain(exc):
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            # SQLAlchemy found the connection dead (and dropped it from the pool).
            return Failure.UNAVAILABLE
        if isinstance(link, (OSError, asyncpg.TargetServerAttributeNotMatched)):
            # Refused, reset or timed-out sockets, unresolvable hosts; no host of a multi-host URL
            # is the primary (`target_session_attrs`) while a failover is under way.
            return Failure.UNAVAILABLE
    return None


# SQLSTATE 22003, numeric_value_out_of_range: a sum or product outgrew its type.
_NUMERIC_OUT_OF_RANGE = "22003"
# SQLite reports an integer overflow in SUM() as a plain SQLITE_ERROR (code 1, shared with every other
# error), so its fixed text is the only thing that tells it apart.
_SQLITE_INTEGER_OVERFLOW = "integer overflow"


def is_numeric_overflow(exc: BaseException) -> bool:
    """A number outgrew its type: SQLSTATE 22003 or SQLite's integer overflow."""
    if sqlstate_in_chain(exc) == _NUMERIC_OUT_OF_RANGE:
        return True
    return any(
        isinstance(link, sqlite3.Error) and str(link) == _SQLITE_INTEGER_OVERFLOW
        for link in exception_chain(exc)
    )
