"""When the database is gone the service says UNAVAILABLE (never INTERNAL) and recovers by itself."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from data_service.app import create_server
from shared.config import DataSettings
from tests.support.data_server import RunningDataServer
from tests.support.inventory import InventoryClient, client_for, create_product, expect_error, pb
from tests.support.servers import running
from tests.support.tokens import STAFF_SCOPES, TokenMinter


async def test_an_unreachable_database_answers_unavailable_with_retry_info() -> None:
    minter = TokenMinter()
    settings = DataSettings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        listen="127.0.0.1:0",
        metrics_port=0,
        db_pool_timeout_seconds=1,
    )
    server = await create_server(settings, key_set=minter.key_set())
    async with running(server) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        staff = client_for(channel, minter, "staff-1", STAFF_SCOPES)
        for call in (
            staff.ListProducts(pb.ListProductsRequest()),
            staff.CreateProduct(
                pb.CreateProductRequest(
                    product=pb.Product(sku="X", name="x", price=pb.Money(currency_code="EUR", minor_units=1))
                )
            ),
        ):
            details = await expect_error(call, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")
            assert details.retry_info is not None


async def test_the_service_recovers_after_its_connections_are_killed(
    backend: str, data_server: RunningDataServer, staff: InventoryClient, database_url: str
) -> None:
    if backend != "postgres":
        pytest.skip("killing server connections is a PostgreSQL matter")
    product = await create_product(staff, stock=1)
    admin = create_async_engine(database_url)
    try:
        async with admin.connect() as connection:
            killed = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert killed.all()
    finally:
        await admin.dispose()
    # Dead pooled connections are noticed on checkout and replaced: the next calls just work.
    assert (await staff.GetProduct(pb.GetProductRequest(id=product.id))).id == product.id
    await staff.AdjustStock(
        pb.AdjustStockRequest(product_id=product.id, delta=1, reason=pb.STOCK_MOVEMENT_REASON_RESTOCK)
    )
