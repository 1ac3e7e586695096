"""Bad input on every RPC: INVALID_ARGUMENT naming every bad field, and the database left as it was."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from tests.support.inventory import (
    InventoryClient,
    create_product,
    database_snapshot,
    expect_error,
    money,
    order_request,
    pb,
)

ID = str(uuid.uuid4())
Line = pb.CreateOrderRequest.Line

# (RPC, request, every field that must be reported)
CASES: list[tuple[str, object, set[str]]] = [
    (
        "CreateProduct",
        pb.CreateProductRequest(
            product=pb.Product(
                sku="not a sku",
                name="",
                description="d" * 2001,
                price=pb.Money(currency_code="eur", minor_units=-1),
            ),
            initial_stock=-1,
            request_id="not-a-uuid",
        ),
        {
            "product.sku",
            "product.name",
            "product.description",
            "product.price.currency_code",
            "product.price.minor_units",
            "initial_stock",
            "request_id",
        },
    ),
    ("CreateProduct", pb.CreateProductRequest(), {"product"}),
    ("GetProduct", pb.GetProductRequest(id="42"), {"id"}),
    (
        "ListProducts",
        pb.ListProductsRequest(page_size=-1, page_token="%%%", sku_prefix="tea pot"),
        {"page_size", "page_token", "sku_prefix"},
    ),
    (
        "UpdateProduct",
        pb.UpdateProductRequest(
            product=pb.Product(id="x", name="n" * 201, etag="stale?"),
            update_mask=field_mask_pb2.FieldMask(paths=["name", "stock_on_hand", "price"]),
        ),
        {"product.id", "product.etag", "product.name", "product.price", "update_mask"},
    ),
    ("ArchiveProduct", pb.ArchiveProductRequest(id="", etag="1"), {"id", "etag"}),
    (
        "AdjustStock",
        pb.AdjustStockRequest(product_id="p", delta=0, reason=pb.STOCK_MOVEMENT_REASON_ORDER, request_id="r"),
        {"product_id", "delta", "reason", "request_id"},
    ),
    ("AdjustStock", pb.AdjustStockRequest(product_id=ID, delta=-1_000_001, reason=99), {"delta", "reason"}),
    (
        "ListStockMovements",
        pb.ListStockMovementsRequest(product_id="", page_size=-5, page_token="x"),
        {"product_id", "page_size", "page_token"},
    ),
    ("CreateOrder", pb.CreateOrderRequest(), {"lines"}),
    (
        "CreateOrder",
        pb.CreateOrderRequest(
            lines=[
                Line(product_id=ID, quantity=1),
                Line(product_id=ID, quantity=0),
                Line(product_id="?", quantity=10_001),
            ],
            request_id="again",
        ),
        {
            "lines[1].product_id",
            "lines[1].quantity",
            "lines[2].product_id",
            "lines[2].quantity",
            "request_id",
        },
    ),
    ("GetOrder", pb.GetOrderRequest(id=ID.upper()[:-1]), {"id"}),
    (
        "ListOrders",
        pb.ListOrdersRequest(page_size=-1, page_token="?", status=17, owner="x" * 300),
        {"page_size", "page_token", "status", "owner"},
    ),
    ("CancelOrder", pb.CancelOrderRequest(id="1", etag="w/1"), {"id", "etag"}),
    ("FulfillOrder", pb.FulfillOrderRequest(id="", etag="v"), {"id", "etag"}),
    ("GetSalesReport", pb.GetSalesReportRequest(limit=101), {"start_time", "end_time", "limit"}),
    (
        "GetSalesReport",
        pb.GetSalesReportRequest(
            start_time=timestamp_pb2.Timestamp(seconds=2_000_000_000),
            end_time=timestamp_pb2.Timestamp(seconds=1_000_000_000),
            limit=-1,
        ),
        {"end_time", "limit"},
    ),
]


async def test_every_rpc_reports_every_bad_field_and_changes_nothing(
    staff: InventoryClient, alice: InventoryClient, database_url: str, subtests: pytest.Subtests
) -> None:
    assert {rpc for rpc, _, _ in CASES} == set(
        pb.DESCRIPTOR.services_by_name["InventoryService"].methods_by_name
    )
    product = await create_product(staff, stock=5)
    await alice.CreateOrder(order_request((product.id, 1)))
    await staff.UpdateProduct(pb.UpdateProductRequest(product=pb.Product(id=product.id, price=money(7))))
    before = await database_snapshot(database_url)

    for rpc, request, fields in CASES:
        with subtests.test(rpc, fields=sorted(fields)):
            details = await expect_error(getattr(staff, rpc)(request), grpc.StatusCode.INVALID_ARGUMENT)
            assert details.bad_fields == fields
            assert details.error_info is not None
            assert details.error_info.domain == "inventory.tessera"
            assert details.request_info is not None
            assert details.request_info.request_id

    assert await database_snapshot(database_url) == before
