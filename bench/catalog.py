"""What baseline B knows of the data service: the `products` row and the `Product` it becomes.

Baseline B answers `GetProduct` with the same method path, request and response bytes as the data
service, so its only differences from the full stack are the ones being measured: interceptors, the
layers, SQLAlchemy and the unit of work.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from google.protobuf import timestamp_pb2
from tessera.inventory.v1 import inventory_pb2

from data_service.domain.values import etag_of

GET_PRODUCT_METHOD = "/tessera.inventory.v1.InventoryService/GetProduct"
GetProductRequest = inventory_pb2.GetProductRequest

PRODUCT_BY_ID_SQL = """
    SELECT id, sku, name, description, price_currency, price_minor_units, stock_on_hand, archived,
           version, create_time, update_time
    FROM products WHERE id = $1
"""


def parse_product_id(raw: str) -> UUID:
    return UUID(raw)


def _timestamp(value: Any) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def product_message(row: Any) -> inventory_pb2.Product:
    """The `Product` message of one `products` row, built by hand."""
    return inventory_pb2.Product(
        id=str(row["id"]),
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        price=inventory_pb2.Money(currency_code=row["price_currency"], minor_units=row["price_minor_units"]),
        stock_on_hand=row["stock_on_hand"],
        archived=row["archived"],
        etag=etag_of(row["version"]),
        create_time=_timestamp(row["create_time"]),
        update_time=_timestamp(row["update_time"]),
    )


def serialize_product(product: inventory_pb2.Product) -> bytes:
    return bytes(product.SerializeToString())
