"""Requests → commands: every field checked, every bad one reported (with its path) in one error."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from google.protobuf.timestamp_pb2 import Timestamp
from tessera.inventory.v1 import inventory_pb2

from data_service.api.fields import FieldErrors
from data_service.api.page_tokens import PageTokenSeal
from data_service.domain.orders import MAX_LINES, LineRequest, OrderStatus, order_quantity
from data_service.domain.products import ProductChanges
from data_service.domain.queries import ProductFilter
from data_service.domain.reports import report_limit
from data_service.domain.stock import MovementReason, adjustment_delta, initial_stock
from data_service.domain.values import (
    InvalidValue,
    Money,
    Sku,
    currency_code,
    optional_request_id,
    parse_uuid,
    price_minor_units,
    product_description,
    product_name,
    sku_prefix,
    subject,
    version_of_etag,
)
from data_service.service import commands
from data_service.service.pagination import PageToken, page_size

INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"  # noqa: S105 - an ErrorInfo reason, not a secret
# AIP-134: the fields UpdateProduct may change; "*" means all of them.
UPDATABLE_FIELDS = ("name", "description", "price")

_STATUSES: dict[int, OrderStatus] = {
    inventory_pb2.ORDER_STATUS_PLACED: OrderStatus.PLACED,
    inventory_pb2.ORDER_STATUS_FULFILLED: OrderStatus.FULFILLED,
    inventory_pb2.ORDER_STATUS_CANCELLED: OrderStatus.CANCELLED,
}
_MANUAL_REASONS: dict[int, MovementReason] = {
    inventory_pb2.STOCK_MOVEMENT_REASON_RESTOCK: MovementReason.RESTOCK,
    inventory_pb2.STOCK_MOVEMENT_REASON_CORRECTION: MovementReason.CORRECTION,
    inventory_pb2.STOCK_MOVEMENT_REASON_DAMAGE: MovementReason.DAMAGE,
}
_ORDER_REASONS = {inventory_pb2.STOCK_MOVEMENT_REASON_ORDER, inventory_pb2.STOCK_MOVEMENT_REASON_CANCELLATION}
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _id(what: str) -> Callable[[str], UUID]:
    return lambda raw: parse_uuid(raw, what=what)


def _optional_etag(raw: str) -> int | None:
    return version_of_etag(raw) if raw else None


def _page_token(seal: PageTokenSeal) -> Callable[[str], PageToken | None]:
    return lambda raw: PageToken.decode(seal.open(raw))


def _price(errors: FieldErrors, field: str, message: inventory_pb2.Money) -> Money:
    code = errors.check(f"{field}.currency_code", currency_code, message.currency_code)
    units = errors.check(f"{field}.minor_units", price_minor_units, message.minor_units)
    return errors.combine(Money, code, units)


def _order_status(value: int) -> OrderStatus | None:
    if value == inventory_pb2.ORDER_STATUS_UNSPECIFIED:
        return None
    if value not in _STATUSES:
        raise InvalidValue(f"status {value} is not an OrderStatus")
    return _STATUSES[value]


def _manual_reason(value: int) -> MovementReason:
    if value in _MANUAL_REASONS:
        return _MANUAL_REASONS[value]
    if value in _ORDER_REASONS:
        raise InvalidValue(
            "ORDER and CANCELLATION movements are written by orders; use RESTOCK, CORRECTION or DAMAGE"
        )
    if value == inventory_pb2.STOCK_MOVEMENT_REASON_UNSPECIFIED:
        raise InvalidValue("reason is required: RESTOCK, CORRECTION or DAMAGE")
    raise InvalidValue(f"reason {value} is not a StockMovementReason")


def _time(message: Timestamp) -> datetime:
    if not _MIN_SECONDS <= message.seconds <= _MAX_SECONDS or not 0 <= message.nanos < 1_000_000_000:
        raise InvalidValue("must be a valid timestamp between years 1 and 9999")
    return message.ToDatetime(tzinfo=UTC)


def _owner_filter(raw: str) -> str | None:
    return subject(raw) if raw else None


def create_product(request: inventory_pb2.CreateProductRequest) -> commands.CreateProduct:
    errors = FieldErrors()
    request_id = errors.check("request_id", optional_request_id, request.request_id)
    stock = errors.check("initial_stock", initial_stock, request.initial_stock)
    if not request.HasField("product"):
        errors.add("product", "product is required (sku, name and price)")
        errors.raise_if_any()
    product = request.product
    sku = errors.check("product.sku", Sku.parse, product.sku)
    name = errors.check("product.name", product_name, product.name)
    description = errors.check("product.description", product_description, product.description)
    price = (
        _price(errors, "product.price", product.price)
        if product.HasField("price")
        else errors.missing("product.price", "price is required")
    )
    errors.raise_if_any()
    return commands.CreateProduct(
        sku=sku, name=name, description=description, price=price, initial_stock=stock, request_id=request_id
    )


def product_id(request: inventory_pb2.GetProductRequest) -> UUID:
    errors = FieldErrors()
    product = errors.check("id", _id("id"), request.id)
    errors.raise_if_any()
    return product


def list_products(request: inventory_pb2.ListProductsRequest, seal: PageTokenSeal) -> commands.ListProducts:
    errors = FieldErrors()
    size = errors.check("page_size", page_size, request.page_size)
    token = errors.check("page_token", _page_token(seal), request.page_token, reason=INVALID_PAGE_TOKEN)
    prefix = errors.check("sku_prefix", sku_prefix, request.sku_prefix)
    errors.raise_if_any()
    return commands.ListProducts(
        filter=ProductFilter(
            sku_prefix=prefix,
            in_stock_only=request.in_stock_only,
            include_archived=request.include_archived,
        ),
        page_size=size,
        page_token=token,
    )


def _update_paths(errors: FieldErrors, request: inventory_pb2.UpdateProductRequest) -> set[str]:
    """The fields to update: the mask's, or (AIP-134) the populated ones when there is no mask."""
    product = request.product
    paths = list(request.update_mask.paths)
    if not paths:
        implied = {
            "name": bool(product.name),
            "description": bool(product.description),
            "price": product.HasField("price"),
        }
        chosen = {field for field, present in implied.items() if present}
        if not chosen:
            errors.add("update_mask", "nothing to update: name the fields (name, description, price)")
        return chosen
    if paths == ["*"]:
        return set(UPDATABLE_FIELDS)
    for path in paths:
        if path not in UPDATABLE_FIELDS:
            errors.add(
                "update_mask", f"{path!r} cannot be updated; the mask may name name, description, price"
            )
    return {path for path in paths if path in UPDATABLE_FIELDS}


def update_product(request: inventory_pb2.UpdateProductRequest) -> commands.UpdateProduct:
    errors = FieldErrors()
    if not request.HasField("product"):
        errors.add("product", "product is required (its id and the new values)")
        errors.raise_if_any()
    product = request.product
    target = errors.check("product.id", _id("product.id"), product.id)
    expected = errors.check("product.etag", _optional_etag, product.etag)
    paths = _update_paths(errors, request)
    name = errors.check("product.name", product_name, product.name) if "name" in paths else None
    description = (
        errors.check("product.description", product_description, product.description)
        if "description" in paths
        else None
    )
    price = None
    if "price" in paths:
        price = (
            _price(errors, "product.price", product.price)
            if product.HasField("price")
            else errors.missing("product.price", "price is in the update mask but not set")
        )
    errors.raise_if_any()
    return commands.UpdateProduct(
        product_id=target,
        changes=ProductChanges(name=name, description=description, price=price),
        expected_version=expected,
    )


def archive_product(request: inventory_pb2.ArchiveProductRequest) -> commands.ArchiveProduct:
    errors = FieldErrors()
    target = errors.check("id", _id("id"), request.id)
    expected = errors.check("etag", _optional_etag, request.etag)
    errors.raise_if_any()
    return commands.ArchiveProduct(product_id=target, expected_version=expected)


def adjust_stock(request: inventory_pb2.AdjustStockRequest) -> commands.AdjustStock:
    errors = FieldErrors()
    target = errors.check("product_id", _id("product_id"), request.product_id)
    delta = errors.check("delta", adjustment_delta, request.delta)
    reason = errors.check("reason", _manual_reason, request.reason)
    request_id = errors.check("request_id", optional_request_id, request.request_id)
    errors.raise_if_any()
    return commands.AdjustStock(product_id=target, delta=delta, reason=reason, request_id=request_id)


def list_stock_movements(
    request: inventory_pb2.ListStockMovementsRequest, seal: PageTokenSeal
) -> commands.ListStockMovements:
    errors = FieldErrors()
    target = errors.check("product_id", _id("product_id"), request.product_id)
    size = errors.check("page_size", page_size, request.page_size)
    token = errors.check("page_token", _page_token(seal), request.page_token, reason=INVALID_PAGE_TOKEN)
    errors.raise_if_any()
    return commands.ListStockMovements(product_id=target, page_size=size, page_token=token)


def create_order(request: inventory_pb2.CreateOrderRequest) -> commands.CreateOrder:
    errors = FieldErrors()
    request_id = errors.check("request_id", optional_request_id, request.request_id)
    if not 1 <= len(request.lines) <= MAX_LINES:
        errors.add("lines", f"an order has 1 to {MAX_LINES} lines, not {len(request.lines)}")
        errors.raise_if_any()
    lines: list[LineRequest] = []
    first_line_of: dict[UUID, int] = {}
    for index, line in enumerate(request.lines):
        field = f"lines[{index}]"
        ordered = errors.check(f"{field}.product_id", _id("product_id"), line.product_id)
        quantity = errors.check(f"{field}.quantity", order_quantity, line.quantity)
        if isinstance(ordered, UUID):
            if ordered in first_line_of:
                errors.add(
                    f"{field}.product_id",
                    f"repeats the product of lines[{first_line_of[ordered]}]; order each product once",
                )
            first_line_of.setdefault(ordered, index)
        lines.append(errors.combine(LineRequest, ordered, quantity))
    errors.raise_if_any()
    return commands.CreateOrder(lines=tuple(lines), request_id=request_id)


def order_id(request: inventory_pb2.GetOrderRequest) -> UUID:
    errors = FieldErrors()
    order = errors.check("id", _id("id"), request.id)
    errors.raise_if_any()
    return order


def list_orders(request: inventory_pb2.ListOrdersRequest, seal: PageTokenSeal) -> commands.ListOrders:
    errors = FieldErrors()
    size = errors.check("page_size", page_size, request.page_size)
    token = errors.check("page_token", _page_token(seal), request.page_token, reason=INVALID_PAGE_TOKEN)
    status = errors.check("status", _order_status, request.status)
    owner = errors.check("owner", _owner_filter, request.owner)
    errors.raise_if_any()
    return commands.ListOrders(page_size=size, status=status, owner=owner, page_token=token)


def change_order_status(
    request: inventory_pb2.CancelOrderRequest | inventory_pb2.FulfillOrderRequest,
) -> commands.ChangeOrderStatus:
    errors = FieldErrors()
    order = errors.check("id", _id("id"), request.id)
    expected = errors.check("etag", _optional_etag, request.etag)
    errors.raise_if_any()
    return commands.ChangeOrderStatus(order_id=order, expected_version=expected)


def sales_report(request: inventory_pb2.GetSalesReportRequest) -> commands.SalesReport:
    errors = FieldErrors()
    times: dict[str, datetime] = {}
    for field in ("start_time", "end_time"):
        if request.HasField(field):
            parsed = errors.check(field, _time, getattr(request, field))
            if isinstance(parsed, datetime):
                times[field] = parsed
        else:
            errors.add(field, f"{field} is required")
    if len(times) == 2 and times["end_time"] <= times["start_time"]:
        errors.add("end_time", "end_time must be after start_time")
    limit = errors.check("limit", report_limit, request.limit)
    errors.raise_if_any()
    return commands.SalesReport(start_time=times["start_time"], end_time=times["end_time"], limit=limit)
