"""Keyset pages stay exact while other clients write: every row that existed is listed exactly once."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

from tests.support.inventory import InventoryClient, create_product, order_request, pb


async def test_walking_products_while_others_insert_lists_every_earlier_product_once(
    staff: InventoryClient, alice: InventoryClient, bob: InventoryClient
) -> None:
    rng = random.Random(5)

    def random_sku() -> str:
        return (
            "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") for _ in range(6))
            + uuid.uuid4().hex[:4]
        )

    existing = {(await create_product(staff, sku=random_sku())).sku for _ in range(30)}
    writers = [staff, staff, staff]
    seen: Counter[str] = Counter()
    token = ""
    while True:
        page = await alice.ListProducts(pb.ListProductsRequest(page_size=4, page_token=token))
        seen.update(p.sku for p in page.products)
        token = page.next_page_token
        if not token:
            break
        # New products land before and after the walker's position, from several clients at once.
        await asyncio.gather(*(create_product(writer, sku=random_sku()) for writer in writers))

    assert {sku: seen[sku] for sku in existing} == dict.fromkeys(existing, 1)
    assert max(seen.values()) == 1


async def test_walking_orders_while_others_order_lists_every_earlier_order_once(
    staff: InventoryClient, alice: InventoryClient, bob: InventoryClient
) -> None:
    product = await create_product(staff, stock=500)
    owners: dict[str, str] = {}
    for i in range(20):
        customer = alice if i % 2 else bob
        owners[(await customer.CreateOrder(order_request((product.id, 1)))).id] = customer.subject

    for walker in (staff, alice):
        seen: Counter[str] = Counter()
        token = ""
        while True:
            page = await walker.ListOrders(pb.ListOrdersRequest(page_size=3, page_token=token))
            seen.update(o.id for o in page.orders)
            token = page.next_page_token
            if not token:
                break
            await asyncio.gather(
                alice.CreateOrder(order_request((product.id, 1))),
                bob.CreateOrder(order_request((product.id, 1))),
            )
        expected = {o for o, owner in owners.items() if walker is staff or owner == walker.subject}
        assert {order_id: seen[order_id] for order_id in expected} == dict.fromkeys(expected, 1)
        assert max(seen.values()) == 1
    mine = await alice.ListOrders(pb.ListOrdersRequest(page_size=1000))
    assert all(order.owner == "alice" for order in mine.orders)
