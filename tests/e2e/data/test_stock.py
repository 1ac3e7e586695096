"""Manual stock adjustments and the ledger over gRPC."""

from __future__ import annotations

import uuid

import grpc

from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    create_product,
    database_snapshot,
    expect_error,
    pb,
)


def adjustment(
    product_id: str, delta: int, reason: int = pb.STOCK_MOVEMENT_REASON_RESTOCK, request_id: str = ""
):  # type: ignore[no-untyped-def]
    return pb.AdjustStockRequest(product_id=product_id, delta=delta, reason=reason, request_id=request_id)


async def test_adjustments_change_stock_and_append_a_movement(
    staff: InventoryClient, database_url: str
) -> None:
    product = await create_product(staff, stock=5)
    added = await staff.AdjustStock(adjustment(product.id, 1_000_000))
    assert added.product.stock_on_hand == 1_000_005
    assert (added.movement.delta, added.movement.reason, added.movement.product_id) == (
        1_000_000,
        pb.STOCK_MOVEMENT_REASON_RESTOCK,
        product.id,
    )
    removed = await staff.AdjustStock(adjustment(product.id, -1_000_000, pb.STOCK_MOVEMENT_REASON_DAMAGE))
    assert removed.product.stock_on_hand == 5
    # Stock changes are not catalog changes: the etag stays.
    assert removed.product.etag == product.etag
    await assert_ledger_consistent(database_url)


async def test_stock_never_goes_below_zero(staff: InventoryClient, database_url: str) -> None:
    product = await create_product(staff, stock=3)
    before = await database_snapshot(database_url)
    details = await expect_error(
        staff.AdjustStock(adjustment(product.id, -4, pb.STOCK_MOVEMENT_REASON_CORRECTION)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_STOCK",
    )
    assert details.precondition_failure.violations[0].subject == f"products/{product.id}"
    assert await database_snapshot(database_url) == before


async def test_a_repeated_adjustment_is_applied_once(staff: InventoryClient, database_url: str) -> None:
    product = await create_product(staff, stock=0)
    request_id = str(uuid.uuid4())
    first = await staff.AdjustStock(adjustment(product.id, 7, request_id=request_id))
    again = await staff.AdjustStock(adjustment(product.id, 7, request_id=request_id))
    assert again.movement == first.movement
    assert again.product.stock_on_hand == 7
    await expect_error(
        staff.AdjustStock(adjustment(product.id, 8, request_id=request_id)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    assert (await assert_ledger_consistent(database_url)).movements == 1


async def test_archived_products_cannot_be_adjusted(staff: InventoryClient) -> None:
    product = await create_product(staff, stock=3)
    await staff.ArchiveProduct(pb.ArchiveProductRequest(id=product.id))
    await expect_error(
        staff.AdjustStock(adjustment(product.id, 1)), grpc.StatusCode.FAILED_PRECONDITION, "PRODUCT_ARCHIVED"
    )


async def test_the_ledger_pages_newest_first(staff: InventoryClient) -> None:
    product = await create_product(staff, stock=1)
    deltas = [1, -1, 2, 3, -2]
    for delta in deltas:
        reason = pb.STOCK_MOVEMENT_REASON_RESTOCK if delta > 0 else pb.STOCK_MOVEMENT_REASON_DAMAGE
        await staff.AdjustStock(adjustment(product.id, delta, reason))
    seen: list[int] = []
    token = ""
    while True:
        page = await staff.ListStockMovements(
            pb.ListStockMovementsRequest(product_id=product.id, page_size=2, page_token=token)
        )
        seen += [m.delta for m in page.movements]
        token = page.next_page_token
        if not token:
            break
    assert seen == [*reversed(deltas), 1]
    other = await create_product(staff, stock=1)
    first = await staff.ListStockMovements(pb.ListStockMovementsRequest(product_id=product.id, page_size=1))
    await expect_error(
        staff.ListStockMovements(
            pb.ListStockMovementsRequest(product_id=other.id, page_token=first.next_page_token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )
