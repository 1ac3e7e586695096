"""The generated TypeScript client logs in and places an order from Node against both real services."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from tessera.inventory.v1 import inventory_pb2

from data_service.app import create_server as create_data_server
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.client import AuthClient, InventoryClient
from shared.config import DataSettings
from shared.migrations import upgrade_to_head
from tests.support.auth_server import running_auth_server
from tests.support.databases import fresh_database
from tests.support.servers import running

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "ts"
NODE = shutil.which("node")
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the TypeScript client cannot run"
)


async def test_node_logs_in_and_places_an_order(backend: str, tmp_path: Path) -> None:
    assert (CLIENT_DIR / "node_modules").is_dir(), "run `make clients/ts/node_modules` (npm ci) first"
    async with (
        fresh_database(backend, tmp_path, "auth") as auth_url,
        fresh_database(backend, tmp_path, "data") as data_url,
        running_auth_server(auth_url, tmp_path) as auth,
    ):
        await upgrade_to_head(DATA_MIGRATIONS, data_url)
        data = await create_data_server(
            DataSettings(database_url=data_url, metrics_port=0, auth_target=auth.target)
        )
        async with running(data) as data_port:
            data_target = f"127.0.0.1:{data_port}"
            await auth.create_user("sam@example.com", PASSWORD, role="staff")
            customer_id = await auth.create_user("ada@example.com", PASSWORD)
            async with (
                AuthClient(auth.target) as staff_auth,
                InventoryClient(data_target, tokens=staff_auth.login("sam@example.com", PASSWORD)) as staff,
            ):
                product = await staff.create_product(
                    inventory_pb2.Product(
                        sku="ts-1",
                        name="Kettle",
                        price=inventory_pb2.Money(currency_code="EUR", minor_units=2500),
                    ),
                    initial_stock=5,
                )
                process = await asyncio.create_subprocess_exec(
                    str(NODE),
                    "e2e/place-order.mjs",
                    cwd=CLIENT_DIR,
                    env={
                        **os.environ,
                        "AUTH_TARGET": auth.target,
                        "DATA_TARGET": data_target,
                        "EMAIL": "ada@example.com",
                        "PASSWORD": PASSWORD,
                        "PRODUCT_ID": product.id,
                    },
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await asyncio.wait_for(process.communicate(), timeout=60)
                assert process.returncode == 0, err.decode()
                after = await staff.get_product(product.id)

    placed = json.loads(out.decode().strip().splitlines()[-1])
    assert placed["owner"] == customer_id
    assert placed["status"] == inventory_pb2.ORDER_STATUS_PLACED
    assert placed["quantity"] == 2
    assert placed["total"] == {"currency": "EUR", "minorUnits": "5000"}
    assert after.stock_on_hand == 3
