"""A server that stops taking writes, and a URL that lists several servers (shared/failover.py).

After a failover the old primary takes no writes (SQLSTATE 25006, read_only_sql_transaction). Here a
database set to `default_transaction_read_only` plays that server, in the test's own database on the
shared cluster: a write refused that way must answer UNAVAILABLE with RetryInfo, and the pool must let go
of that connection so that, once a writable server is back, the retry goes through. The full failover
with Patroni is in tests/ha (`make ha-test`).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from sqlalchemy.engine import make_url

from tests.reliability.conftest import StartData
from tests.support.databases import POSTGRES_ADMIN_DSN
from tests.support.faults import DATA_APP, postgres_admin
from tests.support.inventory import assert_ledger_consistent, create_product, order_request, pb
from tests.support.status import details_of


@pytest.fixture
def postgres(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("read-only servers and multi-host URLs are PostgreSQL's")


async def _set_read_only(database_url: str, read_only: bool) -> None:
    """New sessions of the database start read-only (or no longer do); existing ones keep what they had."""
    name = make_url(database_url).database
    # From the maintenance database: a session of the read-only database could not change it back.
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        if read_only:
            await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        else:
            await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
    finally:
        await admin.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def read_write_again(database_url: str) -> AsyncIterator[None]:
    yield
    # The database is dropped afterwards by a connection that must not be read-only.
    await _set_read_only(database_url, False)


@pytest.mark.usefixtures("postgres", "read_write_again")
async def test_a_write_refused_as_read_only_answers_unavailable_and_the_pool_drops_that_connection(
    database_url: str, start_data: StartData
) -> None:
    # One pooled connection: without the drop, every later write would get the same read-only one.
    data = await start_data(db_pool_size=1, db_max_overflow=0)
    staff, alice = data.staff, data.customer()
    product = await create_product(staff, stock=5)

    # The server behind the pool turns read-only (a demoted primary), and the pool reconnects to it.
    await _set_read_only(database_url, True)
    async with postgres_admin(database_url) as admin:
        assert await admin.terminate_idle(DATA_APP) == 1
    request_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await alice.CreateOrder(order_request((product.id, 2), request_id=request_id))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
    assert details_of(refused.value).retry_info is not None
    async with postgres_admin(database_url) as admin:
        # The connection that was refused is closed, not kept for the next caller.
        assert await admin.backends(DATA_APP) == []
    assert (await assert_ledger_consistent(database_url)).orders == 0

    # A writable server again: the retry of the same request is placed, once.
    await _set_read_only(database_url, False)
    order = await alice.CreateOrder(order_request((product.id, 2), request_id=request_id))
    again = await alice.CreateOrder(order_request((product.id, 2), request_id=request_id))
    assert again.id == order.id
    state = await assert_ledger_consistent(database_url)
    assert (state.orders, state.stock[product.id]) == (1, 3)


@pytest.mark.usefixtures("postgres", "read_write_again")
async def test_a_multi_host_url_skips_dead_hosts_and_waits_out_a_moment_without_a_primary(
    database_url: str, start_data: StartData
) -> None:
    url = make_url(database_url)
    live = f"{url.host}:{url.port}"

    def multi_host(*hosts: str) -> str:
        # The form the README documents for Patroni: every member, the primary found at connect time.
        listed = "&".join(f"host={host}" for host in hosts)
        return f"postgresql+asyncpg://{url.username}@/{url.database}?{listed}&target_session_attrs=read-write"

    # A member that is down (first in the list) is skipped.
    past_a_dead_member = await start_data(multi_host(f"127.0.0.1:{_closed_port()}", live))
    product = await create_product(past_a_dead_member.staff, stock=5)
    await past_a_dead_member.customer().CreateOrder(order_request((product.id, 1)))

    # Every listed member answers but none takes writes (a switchover, before the standby is promoted):
    # UNAVAILABLE with RetryInfo, and the order goes through once a primary is back.
    no_primary = await start_data(multi_host(live, live), db_pool_size=1, db_max_overflow=0)
    await _set_read_only(database_url, True)
    async with postgres_admin(database_url) as admin:
        await admin.terminate_idle(DATA_APP)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await no_primary.customer().CreateOrder(order_request((product.id, 1)))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
    assert details_of(refused.value).retry_info is not None
    # Reads too (they take the driver's connection straight from the pool, past SQLAlchemy's wrapping).
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await no_primary.customer().GetProduct(pb.GetProductRequest(id=product.id))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
    assert details_of(refused.value).retry_info is not None

    await _set_read_only(database_url, False)
    await no_primary.customer().CreateOrder(order_request((product.id, 1)))
    assert (await assert_ledger_consistent(database_url)).stock[product.id] == 3
