"""The API layer turns requests into commands and reports every bad field at once."""

from __future__ import annotations

import inspect
import uuid

import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from tessera.inventory.v1 import error_reason_pb2
from tessera.inventory.v1 import inventory_pb2 as pb

from data_service.api import requests
from data_service.api.page_tokens import PageTokenSeal
from data_service.domain import errors as domain_errors
from data_service.domain.values import Money
from shared.errors import InvalidArgument, TesseraError

ID = str(uuid.uuid4())
SEAL = PageTokenSeal(b"k" * 32)


def bad_fields(parse, request) -> set[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument) as raised:
        parse(request)
    return {v.field for v in raised.value.violations}


def test_every_bad_field_of_a_new_product_is_reported() -> None:
    request = pb.CreateProductRequest(
        product=pb.Product(
            sku="no spaces",
            name="",
            description="x" * 2001,
            price=pb.Money(currency_code="eu", minor_units=-1),
        ),
        initial_stock=-5,
        request_id="nope",
    )
    assert bad_fields(requests.create_product, request) == {
        "product.sku",
        "product.name",
        "product.description",
        "product.price.currency_code",
        "product.price.minor_units",
        "initial_stock",
        "request_id",
    }


def test_a_missing_product_or_price_is_reported() -> None:
    assert bad_fields(requests.create_product, pb.CreateProductRequest()) == {"product"}
    request = pb.CreateProductRequest(product=pb.Product(sku="A", name="n"))
    assert bad_fields(requests.create_product, request) == {"product.price"}


def test_a_valid_new_product_becomes_a_command() -> None:
    command = requests.create_product(
        pb.CreateProductRequest(
            product=pb.Product(
                sku="ab-1", name="A", price=pb.Money(currency_code="EUR", minor_units=0), stock_on_hand=99
            ),
            initial_stock=3,
            request_id=ID,
        )
    )
    assert (command.sku.value, command.price, command.initial_stock, str(command.request_id)) == (
        "AB-1",
        Money("EUR", 0),
        3,
        ID,
    )


def test_update_masks_may_name_only_name_description_and_price() -> None:
    request = pb.UpdateProductRequest(
        product=pb.Product(id="x", etag="bogus", name=""),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "sku", "stock_on_hand"]),
    )
    with pytest.raises(InvalidArgument) as raised:
        requests.update_product(request)
    fields = [v.field for v in raised.value.violations]
    assert sorted(fields) == sorted(
        ["product.id", "product.etag", "update_mask", "update_mask", "product.name"]
    )


def test_without_a_mask_the_populated_fields_are_updated() -> None:
    command = requests.update_product(
        pb.UpdateProductRequest(product=pb.Product(id=ID, name="N", sku="IGNORED"))
    )
    assert (command.changes.name, command.changes.description, command.changes.price) == ("N", None, None)
    assert bad_fields(requests.update_product, pb.UpdateProductRequest(product=pb.Product(id=ID))) == {
        "update_mask"
    }
    star = requests.update_product(
        pb.UpdateProductRequest(
            product=pb.Product(
                id=ID, name="N", price=pb.Money(currency_code="EUR", minor_units=1), etag="v3"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["*"]),
        )
    )
    assert (star.changes.description, star.expected_version) == ("", 3)


def test_order_lines_are_checked_one_by_one() -> None:
    request = pb.CreateOrderRequest(
        lines=[
            pb.CreateOrderRequest.Line(product_id=ID, quantity=1),
            pb.CreateOrderRequest.Line(product_id="bad", quantity=0),
            pb.CreateOrderRequest.Line(product_id=ID, quantity=10_001),
        ],
        request_id="bad",
    )
    assert bad_fields(requests.create_order, request) == {
        "lines[1].product_id",
        "lines[1].quantity",
        "lines[2].product_id",
        "lines[2].quantity",
        "request_id",
    }
    assert bad_fields(requests.create_order, pb.CreateOrderRequest()) == {"lines"}
    too_many = pb.CreateOrderRequest(
        lines=[pb.CreateOrderRequest.Line(product_id=str(uuid.uuid4()), quantity=1) for _ in range(101)]
    )
    assert bad_fields(requests.create_order, too_many) == {"lines"}


def test_stock_adjustments_accept_only_manual_reasons() -> None:
    for reason in (pb.STOCK_MOVEMENT_REASON_UNSPECIFIED, pb.STOCK_MOVEMENT_REASON_ORDER, 99):
        request = pb.AdjustStockRequest(product_id=ID, delta=1, reason=reason)
        assert bad_fields(requests.adjust_stock, request) == {"reason"}
    request = pb.AdjustStockRequest(product_id="", delta=0, reason=pb.STOCK_MOVEMENT_REASON_CANCELLATION)
    assert bad_fields(requests.adjust_stock, request) == {"product_id", "delta", "reason"}


def test_list_requests_check_size_token_and_filters_together() -> None:
    request = pb.ListOrdersRequest(page_size=-1, page_token="garbage!", status=42, owner="a\x00b")
    assert bad_fields(lambda r: requests.list_orders(r, SEAL), request) == {
        "page_size",
        "page_token",
        "status",
        "owner",
    }
    products = pb.ListProductsRequest(page_size=-3, sku_prefix="a b")
    assert bad_fields(lambda r: requests.list_products(r, SEAL), products) == {"page_size", "sku_prefix"}


def test_a_bad_page_token_alone_has_its_own_reason() -> None:
    with pytest.raises(InvalidArgument) as raised:
        requests.list_products(pb.ListProductsRequest(page_token="garbage!"), SEAL)
    assert raised.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument) as raised:
        requests.list_products(pb.ListProductsRequest(page_token="garbage!", page_size=-1), SEAL)
    assert raised.value.reason == "INVALID_ARGUMENT"


def test_report_periods_must_be_set_valid_and_ordered() -> None:
    assert bad_fields(requests.sales_report, pb.GetSalesReportRequest(limit=101)) == {
        "start_time",
        "end_time",
        "limit",
    }
    backwards = pb.GetSalesReportRequest(
        start_time=timestamp_pb2.Timestamp(seconds=100), end_time=timestamp_pb2.Timestamp(seconds=100)
    )
    assert bad_fields(requests.sales_report, backwards) == {"end_time"}
    out_of_range = pb.GetSalesReportRequest(
        start_time=timestamp_pb2.Timestamp(seconds=-(10**12)),
        end_time=timestamp_pb2.Timestamp(seconds=1, nanos=-1),
    )
    assert bad_fields(requests.sales_report, out_of_range) == {"start_time", "end_time"}
    report = requests.sales_report(
        pb.GetSalesReportRequest(
            start_time=timestamp_pb2.Timestamp(seconds=0), end_time=timestamp_pb2.Timestamp(seconds=60)
        )
    )
    assert report.limit == 10


def test_ids_and_etags_of_single_resource_requests() -> None:
    assert bad_fields(requests.product_id, pb.GetProductRequest(id="1")) == {"id"}
    assert bad_fields(requests.archive_product, pb.ArchiveProductRequest(id="1", etag="1")) == {"id", "etag"}
    assert bad_fields(requests.change_order_status, pb.CancelOrderRequest(id=ID, etag="x")) == {"etag"}
    assert requests.change_order_status(pb.FulfillOrderRequest(id=ID)).expected_version is None


def test_every_inventory_reason_the_domain_sends_is_declared_in_the_proto() -> None:
    declared = {
        name.removeprefix("INVENTORY_ERROR_REASON_")
        for name in error_reason_pb2.InventoryErrorReason.DESCRIPTOR.values_by_name
    }
    sent: set[str] = set()
    for _, cls in inspect.getmembers(domain_errors, inspect.isclass):
        if issubclass(cls, TesseraError) and cls.__module__ == domain_errors.__name__:
            parameters = inspect.signature(cls).parameters
            arguments = {
                name: uuid.uuid4() if name.endswith("_id") else [] if name == "violations" else "x"
                for name in parameters
            }
            sent.add(cls(**arguments).reason)
    assert sent
    assert sent <= declared, sent - declared
