"""Products over gRPC: create, read, list, update with etags, archive; and the scopes they need."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2
from tessera.inventory.v1 import inventory_pb2_grpc

from tests.support.inventory import (
    InventoryClient,
    client_for,
    create_product,
    database_snapshot,
    expect_error,
    ledger_state,
    money,
    new_product,
    order_request,
    pb,
)
from tests.support.tokens import STAFF_SCOPES, TokenMinter


async def test_a_new_product_has_its_initial_stock_in_the_ledger(
    staff: InventoryClient, database_url: str
) -> None:
    created = await staff.CreateProduct(
        pb.CreateProductRequest(product=new_product("mug-blue_1", price=1299), initial_stock=12)
    )
    assert created.sku == "MUG-BLUE_1"
    assert (created.stock_on_hand, created.archived, created.price) == (12, False, money(1299))
    assert created.etag
    assert uuid.UUID(created.id)
    assert created.create_time == created.update_time
    fetched = await staff.GetProduct(pb.GetProductRequest(id=created.id))
    assert fetched == created
    movements = await staff.ListStockMovements(pb.ListStockMovementsRequest(product_id=created.id))
    assert [(m.delta, m.reason) for m in movements.movements] == [(12, pb.STOCK_MOVEMENT_REASON_RESTOCK)]


async def test_a_taken_sku_is_already_exists_whatever_its_case(staff: InventoryClient) -> None:
    await create_product(staff, sku="DUP-1")
    await expect_error(
        staff.CreateProduct(pb.CreateProductRequest(product=new_product("dup-1"))),
        grpc.StatusCode.ALREADY_EXISTS,
        "SKU_TAKEN",
    )


async def test_create_product_is_idempotent_per_caller_and_request_id(
    staff: InventoryClient, database_url: str
) -> None:
    request = pb.CreateProductRequest(
        product=new_product("ONCE"), initial_stock=4, request_id=str(uuid.uuid4())
    )
    first = await staff.CreateProduct(request)
    assert await staff.CreateProduct(request) == first
    assert (await ledger_state(database_url)).movements == 1
    changed = pb.CreateProductRequest(
        product=new_product("ONCE"), initial_stock=5, request_id=request.request_id
    )
    details = await expect_error(
        staff.CreateProduct(changed), grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED"
    )
    assert details.bad_fields == {"request_id"}


async def test_unknown_products_are_not_found(staff: InventoryClient) -> None:
    missing = str(uuid.uuid4())
    for call in (
        staff.GetProduct(pb.GetProductRequest(id=missing)),
        staff.ArchiveProduct(pb.ArchiveProductRequest(id=missing)),
        staff.UpdateProduct(pb.UpdateProductRequest(product=pb.Product(id=missing, name="x"))),
        staff.AdjustStock(
            pb.AdjustStockRequest(product_id=missing, delta=1, reason=pb.STOCK_MOVEMENT_REASON_RESTOCK)
        ),
        staff.ListStockMovements(pb.ListStockMovementsRequest(product_id=missing)),
    ):
        await expect_error(call, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


async def test_update_changes_the_masked_fields_and_a_stale_etag_is_aborted(
    staff: InventoryClient, database_url: str
) -> None:
    product = await create_product(staff, stock=3, name="Old name")
    updated = await staff.UpdateProduct(
        pb.UpdateProductRequest(
            product=pb.Product(id=product.id, name="New name", description="ignored", etag=product.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
    )
    assert (updated.name, updated.description, updated.price) == (
        "New name",
        product.description,
        product.price,
    )
    assert updated.etag != product.etag
    assert updated.update_time.ToDatetime() > product.update_time.ToDatetime()

    before = await database_snapshot(database_url)
    await expect_error(
        staff.UpdateProduct(
            pb.UpdateProductRequest(
                product=pb.Product(id=product.id, price=money(1), etag=product.etag),
                update_mask=field_mask_pb2.FieldMask(paths=["price"]),
            )
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    assert await database_snapshot(database_url) == before


async def test_stock_changes_do_not_make_a_catalog_etag_stale(
    staff: InventoryClient, alice: InventoryClient
) -> None:
    product = await create_product(staff, stock=3)
    await alice.CreateOrder(order_request((product.id, 1)))
    updated = await staff.UpdateProduct(
        pb.UpdateProductRequest(product=pb.Product(id=product.id, name="Renamed", etag=product.etag))
    )
    assert (updated.name, updated.stock_on_hand) == ("Renamed", 2)


async def test_a_mask_naming_other_fields_is_invalid(staff: InventoryClient) -> None:
    product = await create_product(staff)
    details = await expect_error(
        staff.UpdateProduct(
            pb.UpdateProductRequest(
                product=pb.Product(id=product.id, sku="NEW", stock_on_hand=99),
                update_mask=field_mask_pb2.FieldMask(paths=["sku", "stock_on_hand"]),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.bad_fields == {"update_mask"}
    assert len(details.bad_request.field_violations) == 2


async def test_an_archived_product_is_hidden_frozen_and_cannot_be_ordered(
    staff: InventoryClient, alice: InventoryClient
) -> None:
    kept = await create_product(staff, stock=5, sku="KEEP")
    gone = await create_product(staff, stock=5, sku="GONE")
    await expect_error(
        staff.ArchiveProduct(pb.ArchiveProductRequest(id=gone.id, etag="v9")), grpc.StatusCode.ABORTED
    )
    archived = await staff.ArchiveProduct(pb.ArchiveProductRequest(id=gone.id, etag=gone.etag))
    assert archived.archived
    assert (await staff.GetProduct(pb.GetProductRequest(id=gone.id))).archived

    listed = await alice.ListProducts(pb.ListProductsRequest())
    assert [p.sku for p in listed.products] == ["KEEP"]
    listed = await alice.ListProducts(pb.ListProductsRequest(include_archived=True))
    assert [p.sku for p in listed.products] == ["GONE", "KEEP"]

    details = await expect_error(
        alice.CreateOrder(order_request((kept.id, 1), (gone.id, 1))),
        grpc.StatusCode.FAILED_PRECONDITION,
        "ORDER_NOT_SERVABLE",
    )
    assert [(v.type, v.subject) for v in details.precondition_failure.violations] == [
        ("ARCHIVED", f"products/{gone.id}")
    ]
    await expect_error(
        staff.UpdateProduct(pb.UpdateProductRequest(product=pb.Product(id=gone.id, name="x"))),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PRODUCT_ARCHIVED",
    )
    # Archiving again changes nothing.
    assert await staff.ArchiveProduct(pb.ArchiveProductRequest(id=gone.id)) == archived


async def test_listing_filters_by_prefix_and_stock(staff: InventoryClient, alice: InventoryClient) -> None:
    for sku, stock in (("TEA-GREEN", 0), ("TEA-BLACK", 3), ("TEAPOT", 1), ("COFFEE", 9)):
        await create_product(staff, stock=stock, sku=sku)
    prefixed = await alice.ListProducts(pb.ListProductsRequest(sku_prefix="tea-"))
    assert [p.sku for p in prefixed.products] == ["TEA-BLACK", "TEA-GREEN"]
    in_stock = await alice.ListProducts(pb.ListProductsRequest(sku_prefix="TEA", in_stock_only=True))
    assert [p.sku for p in in_stock.products] == ["TEA-BLACK", "TEAPOT"]


async def test_page_tokens_walk_every_product_once_and_only_with_their_filters(
    staff: InventoryClient,
) -> None:
    skus = sorted(f"W-{i:02d}" for i in range(7))
    for sku in reversed(skus):
        await create_product(staff, sku=sku)
    seen: list[str] = []
    token = ""
    while True:
        page = await staff.ListProducts(
            pb.ListProductsRequest(page_size=3, page_token=token, sku_prefix="W-")
        )
        seen += [p.sku for p in page.products]
        token = page.next_page_token
        if not token:
            break
        other_filters = pb.ListProductsRequest(page_size=3, page_token=token, sku_prefix="W-0")
        details = await expect_error(
            staff.ListProducts(other_filters), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN"
        )
        assert details.bad_fields == {"page_token"}
    assert seen == skus
    await expect_error(
        staff.ListProducts(pb.ListProductsRequest(page_token="bm90IGEgdG9rZW4")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


# Each RPC with a token that has every inventory scope except the one it declares.
SCOPE_CASES = [
    ("catalog.write", "CreateProduct", pb.CreateProductRequest(product=new_product())),
    ("catalog.write", "UpdateProduct", pb.UpdateProductRequest()),
    ("catalog.write", "ArchiveProduct", pb.ArchiveProductRequest()),
    ("catalog.read", "GetProduct", pb.GetProductRequest()),
    ("catalog.read", "ListProducts", pb.ListProductsRequest()),
    ("stock.write", "AdjustStock", pb.AdjustStockRequest()),
    ("stock.write", "ListStockMovements", pb.ListStockMovementsRequest()),
    ("orders.write", "CreateOrder", pb.CreateOrderRequest()),
    ("orders.write", "CancelOrder", pb.CancelOrderRequest()),
    ("orders.read", "GetOrder", pb.GetOrderRequest()),
    ("orders.read", "ListOrders", pb.ListOrdersRequest()),
    ("orders.admin", "FulfillOrder", pb.FulfillOrderRequest()),
    ("orders.admin", "GetSalesReport", pb.GetSalesReportRequest()),
]


async def test_each_rpc_needs_its_scope(
    channel: grpc.aio.Channel, minter: TokenMinter, subtests: pytest.Subtests
) -> None:
    every_scope = {scope for scope, _, _ in SCOPE_CASES}
    assert {rpc for _, rpc, _ in SCOPE_CASES} == set(
        pb.DESCRIPTOR.services_by_name["InventoryService"].methods_by_name
    )
    for scope, rpc, request_message in SCOPE_CASES:
        with subtests.test(rpc):
            client = client_for(channel, minter, "someone", tuple(every_scope - {scope}))
            await expect_error(
                getattr(client, rpc)(request_message), grpc.StatusCode.PERMISSION_DENIED, "insufficient_scope"
            )


async def test_calls_without_a_valid_token_are_unauthenticated(
    channel: grpc.aio.Channel, minter: TokenMinter
) -> None:
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListProducts(pb.ListProductsRequest())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    stranger = TokenMinter()  # a key the server never saw
    for token in (
        stranger.mint("staff-1", STAFF_SCOPES),
        minter.mint("staff-1", STAFF_SCOPES, ttl_seconds=-60),
        minter.mint("staff-1", STAFF_SCOPES, aud="someone-else"),
    ):
        client = InventoryClient(stub, token, "staff-1")
        await expect_error(
            client.ListProducts(pb.ListProductsRequest()), grpc.StatusCode.UNAUTHENTICATED, "invalid_token"
        )
