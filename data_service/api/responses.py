"""Domain results → protos."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from tessera.inventory.v1 import inventory_pb2

from data_service.domain.orders import Order, OrderStatus
from data_service.domain.products import Product
from data_service.domain.reports import SalesReportRow
from data_service.domain.stock import MovementReason, StockMovement
from data_service.domain.values import Money

_STATUSES = {
    OrderStatus.PLACED: inventory_pb2.ORDER_STATUS_PLACED,
    OrderStatus.FULFILLED: inventory_pb2.ORDER_STATUS_FULFILLED,
    OrderStatus.CANCELLED: inventory_pb2.ORDER_STATUS_CANCELLED,
}
_REASONS = {
    MovementReason.RESTOCK: inventory_pb2.STOCK_MOVEMENT_REASON_RESTOCK,
    MovementReason.CORRECTION: inventory_pb2.STOCK_MOVEMENT_REASON_CORRECTION,
    MovementReason.DAMAGE: inventory_pb2.STOCK_MOVEMENT_REASON_DAMAGE,
    MovementReason.ORDER: inventory_pb2.STOCK_MOVEMENT_REASON_ORDER,
    MovementReason.CANCELLATION: inventory_pb2.STOCK_MOVEMENT_REASON_CANCELLATION,
}


def timestamp(value: datetime) -> Timestamp:
    message = Timestamp()
    message.FromDatetime(value)
    return message


def money(value: Money) -> inventory_pb2.Money:
    return inventory_pb2.Money(currency_code=value.currency_code, minor_units=value.minor_units)


def product(value: Product) -> inventory_pb2.Product:
    return inventory_pb2.Product(
        id=str(value.id),
        sku=value.sku.value,
        name=value.name,
        description=value.description,
        price=money(value.price),
        stock_on_hand=value.stock_on_hand,
        archived=value.archived,
        etag=value.etag,
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )


def movement(value: StockMovement) -> inventory_pb2.StockMovement:
    return inventory_pb2.StockMovement(
        id=str(value.id),
        product_id=str(value.product_id),
        delta=value.delta,
        reason=_REASONS[value.reason],
        order_id=str(value.order_id) if value.order_id else "",
        create_time=timestamp(value.create_time),
    )


def order(value: Order) -> inventory_pb2.Order:
    return inventory_pb2.Order(
        id=str(value.id),
        owner=value.owner,
        status=_STATUSES[value.status],
        lines=[
            inventory_pb2.OrderLine(
                product_id=str(line.product_id),
                sku=line.sku.value,
                quantity=line.quantity,
                unit_price=money(line.unit_price),
            )
            for line in value.lines
        ],
        total=money(value.total),
        etag=value.etag,
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )


def sales_report_row(value: SalesReportRow) -> inventory_pb2.SalesReportRow:
    return inventory_pb2.SalesReportRow(
        product_id=str(value.product_id),
        sku=value.sku,
        units_sold=value.units_sold,
        revenue=money(value.revenue),
    )
