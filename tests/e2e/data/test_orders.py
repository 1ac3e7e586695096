"""Orders over gRPC: placing, ownership, cancelling with restock, fulfilling, and the sales report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    create_product,
    database_snapshot,
    expect_error,
    money,
    order_request,
    pb,
)


def stamp(value: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


async def stock_of(client: InventoryClient, product_id: str) -> int:
    return int((await client.GetProduct(pb.GetProductRequest(id=product_id))).stock_on_hand)


async def test_an_order_captures_prices_and_reserves_stock(
    staff: InventoryClient, alice: InventoryClient, database_url: str
) -> None:
    tea = await create_product(staff, stock=10, sku="TEA", price=450)
    pot = await create_product(staff, stock=2, sku="POT", price=2500)

    order = await alice.CreateOrder(order_request((pot.id, 1), (tea.id, 3)))

    assert (order.owner, order.status) == ("alice", pb.ORDER_STATUS_PLACED)
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("POT", 1, money(2500)),
        ("TEA", 3, money(450)),
    ]
    assert order.total == money(3850)
    assert (await stock_of(alice, tea.id), await stock_of(alice, pot.id)) == (7, 1)
    # A later price change leaves the placed order as it was.
    await staff.UpdateProduct(pb.UpdateProductRequest(product=pb.Product(id=tea.id, price=money(999))))
    assert await alice.GetOrder(pb.GetOrderRequest(id=order.id)) == order
    movements = await staff.ListStockMovements(pb.ListStockMovementsRequest(product_id=tea.id))
    assert [(m.delta, m.reason, m.order_id) for m in movements.movements] == [
        (-3, pb.STOCK_MOVEMENT_REASON_ORDER, order.id),
        (10, pb.STOCK_MOVEMENT_REASON_RESTOCK, ""),
    ]
    await assert_ledger_consistent(database_url)


async def test_an_unservable_order_names_every_bad_line_and_changes_nothing(
    staff: InventoryClient, alice: InventoryClient, database_url: str
) -> None:
    fine = await create_product(staff, stock=5)
    short = await create_product(staff, stock=1)
    archived = await create_product(staff, stock=5)
    await staff.ArchiveProduct(pb.ArchiveProductRequest(id=archived.id))
    dollars = await create_product(staff, stock=5, currency="USD")
    missing = str(uuid.uuid4())
    before = await database_snapshot(database_url)

    details = await expect_error(
        alice.CreateOrder(
            order_request((fine.id, 1), (short.id, 2), (missing, 1), (archived.id, 1), (dollars.id, 1))
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "ORDER_NOT_SERVABLE",
    )

    assert [(v.type, v.subject) for v in details.precondition_failure.violations] == [
        ("INSUFFICIENT_STOCK", f"products/{short.id}"),
        ("NOT_FOUND", f"products/{missing}"),
        ("ARCHIVED", f"products/{archived.id}"),
        ("CURRENCY_MISMATCH", f"products/{dollars.id}"),
    ]
    assert await database_snapshot(database_url) == before


async def test_other_peoples_orders_answer_exactly_like_missing_ones(
    staff: InventoryClient, alice: InventoryClient, bob: InventoryClient
) -> None:
    product = await create_product(staff, stock=5)
    order = await alice.CreateOrder(order_request((product.id, 1)))
    missing = str(uuid.uuid4())

    for call_foreign, call_missing in (
        (bob.GetOrder(pb.GetOrderRequest(id=order.id)), bob.GetOrder(pb.GetOrderRequest(id=missing))),
        (
            bob.CancelOrder(pb.CancelOrderRequest(id=order.id)),
            bob.CancelOrder(pb.CancelOrderRequest(id=missing)),
        ),
    ):
        foreign = await expect_error(call_foreign, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        absent = await expect_error(call_missing, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        assert foreign.message.replace(order.id, "ID") == absent.message.replace(missing, "ID")
        assert (foreign.raw, foreign.precondition_failure) == (absent.raw, absent.precondition_failure)
    assert (await alice.GetOrder(pb.GetOrderRequest(id=order.id))).status == pb.ORDER_STATUS_PLACED
    assert (await staff.GetOrder(pb.GetOrderRequest(id=order.id))).owner == "alice"


async def test_customers_list_only_their_orders_and_admins_filter_by_owner(
    staff: InventoryClient, alice: InventoryClient, bob: InventoryClient
) -> None:
    product = await create_product(staff, stock=20)
    alices = [await alice.CreateOrder(order_request((product.id, 1))) for _ in range(3)]
    bobs = await bob.CreateOrder(order_request((product.id, 1)))
    await alice.CancelOrder(pb.CancelOrderRequest(id=alices[0].id))

    mine = await alice.ListOrders(pb.ListOrdersRequest())
    assert [o.id for o in mine.orders] == [o.id for o in reversed(alices)]
    placed = await alice.ListOrders(pb.ListOrdersRequest(status=pb.ORDER_STATUS_PLACED))
    assert [o.id for o in placed.orders] == [alices[2].id, alices[1].id]
    await expect_error(
        alice.ListOrders(pb.ListOrdersRequest(owner="bob")),
        grpc.StatusCode.PERMISSION_DENIED,
        "OWNER_FILTER_FORBIDDEN",
    )
    everybody = await staff.ListOrders(pb.ListOrdersRequest())
    assert len(everybody.orders) == 4
    only_bob = await staff.ListOrders(pb.ListOrdersRequest(owner="bob"))
    assert [o.id for o in only_bob.orders] == [bobs.id]


async def test_cancel_restocks_in_the_same_transaction_and_only_once(
    staff: InventoryClient, alice: InventoryClient, database_url: str
) -> None:
    product = await create_product(staff, stock=5)
    order = await alice.CreateOrder(order_request((product.id, 4)))
    await expect_error(
        alice.CancelOrder(pb.CancelOrderRequest(id=order.id, etag="v7")),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )

    cancelled = await alice.CancelOrder(pb.CancelOrderRequest(id=order.id, etag=order.etag))

    assert cancelled.status == pb.ORDER_STATUS_CANCELLED
    assert cancelled.etag != order.etag
    assert await stock_of(alice, product.id) == 5
    details = await expect_error(
        alice.CancelOrder(pb.CancelOrderRequest(id=order.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_ORDER_STATUS",
    )
    assert details.precondition_failure.violations[0].subject == f"orders/{order.id}"
    assert await stock_of(alice, product.id) == 5
    movements = await staff.ListStockMovements(pb.ListStockMovementsRequest(product_id=product.id))
    assert [m.reason for m in movements.movements] == [
        pb.STOCK_MOVEMENT_REASON_CANCELLATION,
        pb.STOCK_MOVEMENT_REASON_ORDER,
        pb.STOCK_MOVEMENT_REASON_RESTOCK,
    ]
    await assert_ledger_consistent(database_url)


async def test_fulfilment_is_for_admins_and_final(staff: InventoryClient, alice: InventoryClient) -> None:
    product = await create_product(staff, stock=5)
    order = await alice.CreateOrder(order_request((product.id, 2)))
    await expect_error(
        alice.FulfillOrder(pb.FulfillOrderRequest(id=order.id)), grpc.StatusCode.PERMISSION_DENIED
    )

    fulfilled = await staff.FulfillOrder(pb.FulfillOrderRequest(id=order.id, etag=order.etag))

    assert fulfilled.status == pb.ORDER_STATUS_FULFILLED
    for call in (
        alice.CancelOrder(pb.CancelOrderRequest(id=order.id)),
        staff.FulfillOrder(pb.FulfillOrderRequest(id=order.id)),
    ):
        await expect_error(call, grpc.StatusCode.FAILED_PRECONDITION, "INVALID_ORDER_STATUS")
    assert await stock_of(alice, product.id) == 3


async def test_the_sales_report_ranks_sold_units_in_the_period(
    staff: InventoryClient, alice: InventoryClient, bob: InventoryClient
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    tea = await create_product(staff, stock=100, sku="TEA", price=300)
    cup = await create_product(staff, stock=100, sku="CUP", price=800)
    pot = await create_product(staff, stock=100, sku="POT", price=2000)
    await alice.CreateOrder(order_request((tea.id, 5), (cup.id, 2)))
    fulfilled = await bob.CreateOrder(order_request((cup.id, 3)))
    await staff.FulfillOrder(pb.FulfillOrderRequest(id=fulfilled.id))
    cancelled = await bob.CreateOrder(order_request((pot.id, 50)))
    await bob.CancelOrder(pb.CancelOrderRequest(id=cancelled.id))
    # The price changes after the sale; revenue stays at the prices of the orders.
    await staff.UpdateProduct(
        pb.UpdateProductRequest(
            product=pb.Product(id=tea.id, price=money(1)),
            update_mask=field_mask_pb2.FieldMask(paths=["price"]),
        )
    )
    end = datetime.now(UTC) + timedelta(seconds=1)

    report = await staff.GetSalesReport(
        pb.GetSalesReportRequest(start_time=stamp(start), end_time=stamp(end))
    )

    assert [(r.sku, r.units_sold, r.revenue.minor_units) for r in report.rows] == [
        ("CUP", 5, 4000),
        ("TEA", 5, 1500),
    ]
    assert report.rows[0].product_id == cup.id
    top = await staff.GetSalesReport(
        pb.GetSalesReportRequest(start_time=stamp(start), end_time=stamp(end), limit=1)
    )
    assert [r.sku for r in top.rows] == ["CUP"]
    before = await staff.GetSalesReport(
        pb.GetSalesReportRequest(start_time=stamp(start - timedelta(hours=1)), end_time=stamp(start))
    )
    assert list(before.rows) == []
    await expect_error(
        alice.GetSalesReport(pb.GetSalesReportRequest(start_time=stamp(start), end_time=stamp(end))),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_order_pages_walk_newest_first(staff: InventoryClient, alice: InventoryClient) -> None:
    product = await create_product(staff, stock=50)
    placed = [await alice.CreateOrder(order_request((product.id, 1))) for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await alice.ListOrders(pb.ListOrdersRequest(page_size=2, page_token=token))
        seen += [o.id for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert seen == [o.id for o in reversed(placed)]
    # A customer's token is bound to the customer: an admin cannot resume it with other filters.
    first = await alice.ListOrders(pb.ListOrdersRequest(page_size=2))
    await expect_error(
        staff.ListOrders(pb.ListOrdersRequest(page_size=2, page_token=first.next_page_token)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )
