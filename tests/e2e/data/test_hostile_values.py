"""Values an attacker or a careless import sends: unreadable text, made-up currencies, absurd prices.

Each is refused with INVALID_ARGUMENT naming the field and changes nothing; sums of money never
overflow into an error that looks like an outage. Runs on both databases (~3 s).
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.inventory import (
    InventoryClient,
    create_product,
    database_snapshot,
    expect_error,
    money,
    new_product,
    order_request,
    pb,
)

INT64_MAX = 2**63 - 1
PRICE_CEILING = 10**12

UNREADABLE = {
    "ANSI escape": "Tea \x1b[31mRED\x1b[0m",
    "carriage return": "Tea\rFake line",
    "line feed": "Tea\nINFO forged log line",
    "bell": "Tea\x07",
    "right-to-left override": "Tea \u202egnp.exe",
    "right-to-left isolate": "Tea \u2067x\u2069",
    "C1 control": "Tea\x9b31m",
    "line separator": "Tea\u2028two",
}


def _create(name: str = "Widget", description: str = "A thing", **price: object) -> pb.CreateProductRequest:
    product = new_product(name="Widget")
    product.name, product.description = name, description
    if price:
        product.price.CopyFrom(money(**price))  # type: ignore[arg-type]
    return pb.CreateProductRequest(product=product, initial_stock=1)


async def test_control_and_bidi_characters_are_refused_naming_the_field(
    staff: InventoryClient, database_url: str, subtests: pytest.Subtests
) -> None:
    existing = await create_product(staff, stock=1)
    before = await database_snapshot(database_url)
    for kind, value in UNREADABLE.items():
        with subtests.test(kind):
            details = await expect_error(
                staff.CreateProduct(_create(name=value)), grpc.StatusCode.INVALID_ARGUMENT
            )
            assert details.bad_fields == {"product.name"}
            update = pb.UpdateProductRequest(
                product=pb.Product(id=existing.id, name=value),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            )
            details = await expect_error(staff.UpdateProduct(update), grpc.StatusCode.INVALID_ARGUMENT)
            assert details.bad_fields == {"product.name"}
            if kind not in ("line feed",):
                details = await expect_error(
                    staff.CreateProduct(_create(description=value)), grpc.StatusCode.INVALID_ARGUMENT
                )
                assert details.bad_fields == {"product.description"}
    details = await expect_error(
        staff.ListOrders(pb.ListOrdersRequest(owner="alice\x1b[2K")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details.bad_fields == {"owner"}
    assert await database_snapshot(database_url) == before


async def test_descriptions_keep_their_line_breaks_and_names_their_letters(staff: InventoryClient) -> None:
    created = await staff.CreateProduct(
        _create(name="Thé vert · 緑茶 (Ünïcode)", description="Line one\nLine two\r\nLine three")
    )
    assert created.description == "Line one\nLine two\r\nLine three"
    assert created.name == "Thé vert · 緑茶 (Ünïcode)"


async def test_currencies_must_be_in_iso_4217(staff: InventoryClient, database_url: str) -> None:
    before = await database_snapshot(database_url)
    for code in ("ZZZ", "AAA", "XXX", "EUX"):
        details = await expect_error(
            staff.CreateProduct(_create(minor_units=100, currency=code)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert details.bad_fields == {"product.price.currency_code"}, code
    assert await database_snapshot(database_url) == before
    for code in ("EUR", "JPY", "CHF", "KWD"):
        assert (
            await staff.CreateProduct(_create(minor_units=100, currency=code))
        ).price.currency_code == code


async def test_a_price_above_the_ceiling_is_refused_and_the_ceiling_sums_exactly(
    staff: InventoryClient, alice: InventoryClient, database_url: str
) -> None:
    before = await database_snapshot(database_url)
    for price in (PRICE_CEILING + 1, INT64_MAX):
        details = await expect_error(
            staff.CreateProduct(_create(minor_units=price)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert details.bad_fields == {"product.price.minor_units"}
    assert await database_snapshot(database_url) == before

    # The most an order can cost: the ceiling price, the largest quantity, on the report to the unit.
    dearest = await create_product(staff, stock=20_000, price=PRICE_CEILING)
    for _ in range(2):
        await alice.CreateOrder(order_request((dearest.id, 10_000)))
    report = await staff.GetSalesReport(_whole_period())
    assert [(row.units_sold, row.revenue.minor_units) for row in report.rows] == [(20_000, 2 * 10**16)]


async def test_a_revenue_beyond_int64_is_out_of_range_not_an_outage(
    staff: InventoryClient, alice: InventoryClient, database_url: str
) -> None:
    # A product priced at 2^63-1 can no longer be created; one from before the ceiling still exists.
    legacy = await create_product(staff, stock=5, price=1)
    await _set_price_in_the_database(database_url, legacy.sku, INT64_MAX)
    assert (await alice.GetProduct(pb.GetProductRequest(id=legacy.id))).price.minor_units == INT64_MAX
    for _ in range(2):
        await alice.CreateOrder(order_request((legacy.id, 1)))

    details = await expect_error(staff.GetSalesReport(_whole_period()), grpc.StatusCode.OUT_OF_RANGE)

    assert details.reason == "AMOUNT_OUT_OF_RANGE"
    assert details.retry_info is None


def _whole_period() -> pb.GetSalesReportRequest:
    return pb.GetSalesReportRequest(
        start_time=timestamp_pb2.Timestamp(seconds=0),
        end_time=timestamp_pb2.Timestamp(seconds=4_000_000_000),
    )


async def _set_price_in_the_database(database_url: str, sku: str, minor_units: int) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            updated = await connection.execute(
                text("UPDATE products SET price_minor_units = :price WHERE sku = :sku"),
                {"price": minor_units, "sku": sku},
            )
            assert updated.rowcount == 1
    finally:
        await engine.dispose()
