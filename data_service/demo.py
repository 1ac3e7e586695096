"""Demo data for a first look: a small tea-and-coffee shop with a few orders (`tessera-data seed-demo`).

Loaded through the same use cases as real data — the catalogue with the import, the orders with
CreateOrder — and idempotent: the products are imported (existing SKUs are left alone) and every demo
order has a fixed request id, so running it again returns the first orders instead of placing new ones.
The SKUs differ from the README walkthrough's `tea-green`, which the walkthrough creates itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from data_service.domain.orders import LineRequest, OrderStatus
from data_service.domain.values import Caller
from data_service.service.catalog_import import CatalogImport, ImportRecord, ImportTotals
from data_service.service.commands import ChangeOrderStatus, CreateOrder
from data_service.service.orders import OrderService
from data_service.service.ports import UnitOfWorkFactory

# sku, name, description, price (EUR cents), initial stock
CATALOGUE: tuple[tuple[str, str, str, int, int], ...] = (
    ("TEA-SENCHA", "Sencha", "Japanese steamed green tea, grassy and bright. 100 g.", 850, 40),
    ("TEA-EARL-GREY", "Earl Grey", "Black tea with bergamot oil. 100 g.", 620, 55),
    ("TEA-ASSAM", "Assam breakfast", "Malty Assam black tea, strong with milk. 250 g.", 990, 30),
    ("TEA-DARJEELING", "Darjeeling first flush", "Light, floral spring picking. 100 g.", 1450, 12),
    ("TEA-ROOIBOS", "Rooibos vanilla", "Caffeine-free South African red bush with vanilla. 100 g.", 560, 25),
    ("TEA-MATCHA", "Ceremonial matcha", "Stone-ground shade-grown green tea. 30 g tin.", 2400, 8),
    ("TEA-OOLONG", "Tieguanyin oolong", "Rolled Anxi oolong, orchid aroma. 100 g.", 1280, 0),
    ("COFFEE-ETHIOPIA", "Yirgacheffe beans", "Washed Ethiopian, citrus and jasmine. 250 g.", 1190, 35),
    ("COFFEE-BRAZIL", "Cerrado beans", "Natural Brazilian, chocolate and nut. 1 kg.", 2890, 18),
    ("COFFEE-DECAF", "Colombia decaf", "Sugar-cane decaffeinated, caramel. 250 g.", 1090, 20),
    ("MUG-STONEWARE", "Stoneware mug", "Glazed stoneware, 350 ml, dishwasher safe.", 1600, 60),
    ("KETTLE-GOOSENECK", "Gooseneck kettle", "1 l stainless steel kettle for pour-over.", 4500, 6),
)

DEMO_CUSTOMER = Caller(subject="demo-customer", scopes=frozenset({"orders.read", "orders.write"}))


@dataclass(frozen=True)
class DemoOrder:
    request_id: UUID
    lines: tuple[tuple[str, int], ...]
    # What happens to it after it is placed: stays placed, or is fulfilled or cancelled.
    then: OrderStatus


ORDERS = (
    DemoOrder(
        UUID("6d0a1c52-3e4b-4c1e-9a57-0d3f3a9e0001"),
        (("TEA-SENCHA", 2), ("MUG-STONEWARE", 1)),
        OrderStatus.FULFILLED,
    ),
    DemoOrder(UUID("6d0a1c52-3e4b-4c1e-9a57-0d3f3a9e0002"), (("COFFEE-ETHIOPIA", 1),), OrderStatus.PLACED),
    DemoOrder(
        UUID("6d0a1c52-3e4b-4c1e-9a57-0d3f3a9e0003"),
        (("TEA-EARL-GREY", 3), ("TEA-ASSAM", 1)),
        OrderStatus.CANCELLED,
    ),
)


@dataclass(frozen=True)
class DemoResult:
    catalogue: ImportTotals
    orders: int


async def seed_demo(unit_of_work: UnitOfWorkFactory) -> DemoResult:
    importer = CatalogImport(unit_of_work, update=False)
    await importer.add_batch(
        [
            ImportRecord(
                line,
                {
                    "sku": sku,
                    "name": name,
                    "description": description,
                    "price_currency": "EUR",
                    "price_minor_units": cents,
                    "initial_stock": stock,
                },
            )
            for line, (sku, name, description, cents, stock) in enumerate(CATALOGUE, start=1)
        ]
    )
    async with unit_of_work(read_only=True) as uow:
        products = await uow.products.find_by_skus([sku for sku, *_ in CATALOGUE])
    orders = OrderService(unit_of_work)
    for demo in ORDERS:
        lines = tuple(LineRequest(products[sku].id, quantity) for sku, quantity in demo.lines)
        order = await orders.create_order(DEMO_CUSTOMER, CreateOrder(lines=lines, request_id=demo.request_id))
        # The first run moves the order on; a later run finds it moved already.
        if order.status is OrderStatus.PLACED and demo.then is OrderStatus.FULFILLED:
            await orders.fulfill_order(_admin(), ChangeOrderStatus(order.id))
        elif order.status is OrderStatus.PLACED and demo.then is OrderStatus.CANCELLED:
            await orders.cancel_order(DEMO_CUSTOMER, ChangeOrderStatus(order.id))
    return DemoResult(importer.totals, len(ORDERS))


def _admin() -> Caller:
    return Caller(subject="demo-staff", scopes=frozenset({"orders.admin"}))
