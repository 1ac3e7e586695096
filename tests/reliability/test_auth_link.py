"""The auth service killed (SIGKILL) while the data service is under load: not one call with a valid
token may fail. Both services run as real processes; the data service knows the keys only through the
real JWKS path (GetJwks over gRPC) and keeps trying to refresh them during the outage."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import grpc
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc
from tessera.inventory.v1 import inventory_pb2_grpc

from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    create_product,
    order_request,
    pb,
)
from tests.support.load import SCALE, Load
from tests.support.logs import wait_until
from tests.support.processes import ServiceProcesses
from tests.support.servers import ServerProcess

PASSWORD = "correct horse battery staple"
CUSTOMERS = 4


async def password_grant(auth: ServerProcess, email: str) -> str:
    async with grpc.aio.insecure_channel(auth.target) as channel:
        response = await auth_pb2_grpc.AuthServiceStub(channel).Token(
            auth_pb2.TokenRequest(password=auth_pb2.PasswordGrant(username=email, password=PASSWORD)),
            timeout=10,
        )
    return str(response.access_token)


def logged(process: ServerProcess, event: str) -> bool:
    return any(line.get("event") == event for line in process.log_lines())


async def test_killing_the_auth_service_fails_no_call_that_carries_a_valid_token(
    database_url: str, auth_database_url: str, tmp_path: Path
) -> None:
    async with ServiceProcesses(tmp_path) as services:
        customers = [(f"customer-{i}@example.com", "customer") for i in range(CUSTOMERS + 1)]
        await services.create_users(auth_database_url, [("staff@example.com", "staff"), *customers], PASSWORD)
        auth = await services.start_auth(auth_database_url)
        data = await services.start_data(
            database_url,
            auth.target,
            # Refreshing often: the outage is met by many failed fetches, each of which must keep the keys.
            DATA_JWKS_REFRESH_SECONDS="0.2",
        )
        staff_token = await password_grant(auth, "staff@example.com")
        tokens = [await password_grant(auth, f"customer-{i}@example.com") for i in range(CUSTOMERS)]
        # Issued before the outage, first shown to the data service after it began.
        unseen_token = await password_grant(auth, f"customer-{CUSTOMERS}@example.com")

        async with grpc.aio.insecure_channel(data.target) as channel:
            stub = inventory_pb2_grpc.InventoryServiceStub(channel)
            staff = InventoryClient(stub, staff_token, "staff")
            customers = [InventoryClient(stub, token, f"customer-{i}") for i, token in enumerate(tokens)]
            products = [await create_product(staff, stock=1_000_000) for _ in range(3)]

            async def one_call(number: int) -> None:
                product = products[number % len(products)]
                customer = customers[number % CUSTOMERS]
                kind = number % 4
                if kind == 0:
                    await customer.GetProduct(pb.GetProductRequest(id=product.id), timeout=5)
                elif kind == 1:
                    await customer.ListProducts(pb.ListProductsRequest(page_size=10), timeout=5)
                elif kind == 2:
                    await customer.CreateOrder(
                        order_request((product.id, 1), request_id=str(uuid.uuid4())), timeout=5
                    )
                else:
                    await staff.AdjustStock(
                        pb.AdjustStockRequest(
                            product_id=product.id, delta=1, reason=pb.STOCK_MOVEMENT_REASON_RESTOCK
                        ),
                        timeout=5,
                    )

            async with Load(workers=8, call=one_call) as load:
                await load.wait_for(lambda: load.count("OK") >= 40 * SCALE)
                killed_at = time.monotonic()
                auth.process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(auth.process.wait, 10)
                # The data service notices (its refreshes fail) and goes on with the keys it has.
                await wait_until(lambda: logged(data, "auth_link_degraded"), within=15)
                await load.wait_for(lambda: load.count("OK", since=killed_at) >= 200 * SCALE)
                newcomer = InventoryClient(stub, unseen_token, "newcomer")
                await newcomer.CreateOrder(order_request((products[0].id, 1)), timeout=5)
            report = load.report

    assert dict(report.codes) == {"OK": len(report.outcomes)}, report.codes
    after_kill = sum(1 for o in report.outcomes if o.started >= killed_at)
    await assert_ledger_consistent(database_url)
    print(
        f"\nRELIABILITY auth link: {len(report.outcomes)} calls by 8 clients, {after_kill} of them with the "
        f"auth service dead, codes {dict(report.codes)}"
    )
