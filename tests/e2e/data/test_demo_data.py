"""`tessera-data seed-demo` (`make demo-data`): a first look that shows something, and stays the same.

Run where `make run` runs — no settings, so into the embedded default, SQLite under ./var/ — twice: the
second run changes nothing. Then a data server over that database answers the README's first
ListProducts with the demo teas, and staff see the demo orders. ~5 s.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tessera.inventory.v1 import inventory_pb2

from tests.support.data_server import running_data_server
from tests.support.inventory import client_for
from tests.support.tokens import CUSTOMER_SCOPES, STAFF_SCOPES, TokenMinter

TESSERA_DATA = str(Path(sys.executable).with_name("tessera-data"))


async def seed_demo(cwd: Path) -> tuple[int, str]:
    # No DATA_* settings at all: the defaults `make run` uses.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATA_")}
    process = await asyncio.create_subprocess_exec(
        TESSERA_DATA,
        "seed-demo",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    return process.returncode, stdout.decode()


async def counts(url: str) -> dict[str, object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            found: dict[str, object] = {}
            for table in ("products", "orders", "order_lines", "stock_movements", "idempotency_keys"):
                found[table] = (await connection.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one()  # noqa: S608
            found["stock"] = (
                await connection.execute(
                    text("SELECT sku, stock_on_hand, version FROM products ORDER BY sku")
                )
            ).all()
            return found
    finally:
        await engine.dispose()


async def test_seed_demo_fills_the_embedded_default_once_and_the_first_list_shows_it(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'data.db'}"

    _, first = await seed_demo(tmp_path)
    after_first = await counts(url)
    _, second = await seed_demo(tmp_path)

    assert "created 12, unchanged 0, rejected 0; 3 demo orders" in first
    assert "created 0, unchanged 12, rejected 0; 3 demo orders" in second
    assert await counts(url) == after_first
    assert after_first["products"] == 12
    assert after_first["orders"] == 3

    minter = TokenMinter()
    async with (
        running_data_server(url, minter.key_set()) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        customer = client_for(channel, minter, "ann", CUSTOMER_SCOPES)
        # The README walkthrough's first ListProducts.
        page = await customer.ListProducts(
            inventory_pb2.ListProductsRequest(sku_prefix="tea", in_stock_only=True)
        )
        skus = [product.sku for product in page.products]
        assert len(skus) >= 5
        assert all(sku.startswith("TEA-") for sku in skus)
        assert "TEA-OOLONG" not in skus  # out of stock

        staff = client_for(channel, minter, "sam", STAFF_SCOPES)
        orders = await staff.ListOrders(inventory_pb2.ListOrdersRequest(page_size=10))
        statuses = sorted(inventory_pb2.OrderStatus.Name(order.status) for order in orders.orders)
        assert statuses == ["ORDER_STATUS_CANCELLED", "ORDER_STATUS_FULFILLED", "ORDER_STATUS_PLACED"]
