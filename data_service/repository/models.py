"""SQLAlchemy models of the data service's own database (tables only: repositories use Core statements).

Integrity lives here, in the database: unique SKUs and idempotency keys, stock and prices that can never
go negative, positive quantities, foreign keys. Every list, filter and report query has an index.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase

from shared.sqltypes import UtcDateTime

# Deterministic constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Byte order ("C") on PostgreSQL, as SQLite's BINARY: keyset pages and prefix ranges over SKUs then mean
# the same on both databases, and a prefix is one contiguous range of the index.
SKU = String(64).with_variant(postgresql.VARCHAR(64, collation="C"), "postgresql")
CURRENCY = String(3)

MANUAL_REASONS_SQL = "('RESTOCK', 'CORRECTION', 'DAMAGE')"
ORDER_REASONS_SQL = "('ORDER', 'CANCELLATION')"

products = Table(
    "products",
    Base.metadata,
    Column("id", Uuid, nullable=False),
    Column("sku", SKU, nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", String(2000), nullable=False),
    Column("price_currency", CURRENCY, nullable=False),
    Column("price_minor_units", BigInteger, nullable=False),
    Column("stock_on_hand", BigInteger, nullable=False),
    Column("archived", Boolean, nullable=False),
    # Bumped by every catalog change; the etag stands for it.
    Column("version", BigInteger, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("sku"),
    CheckConstraint("price_minor_units >= 0", name="price_not_negative"),
    CheckConstraint("stock_on_hand >= 0", name="stock_not_negative"),
    CheckConstraint("version >= 1", name="version_positive"),
    # ListProducts' default (archived hidden) and in-stock filters walk their own slice of SKUs; with
    # include_archived the unique index on sku serves.
    Index(
        "ix_products_active_sku",
        "sku",
        postgresql_where=text("NOT archived"),
        sqlite_where=text("NOT archived"),
    ),
    Index(
        "ix_products_in_stock_sku",
        "sku",
        postgresql_where=text("stock_on_hand > 0 AND NOT archived"),
        sqlite_where=text("stock_on_hand > 0 AND NOT archived"),
    ),
)

orders = Table(
    "orders",
    Base.metadata,
    Column("id", Uuid, nullable=False),
    # The `sub` of the caller who placed the order.
    Column("owner", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("id"),
    CheckConstraint("status IN ('PLACED', 'FULFILLED', 'CANCELLED')", name="status_known"),
    CheckConstraint("version >= 1", name="version_positive"),
    # Newest-first keysets: a customer's orders, orders by status, everybody's (and the sales report's
    # time range).
    Index("ix_orders_owner_create_time_id", "owner", "create_time", "id"),
    Index("ix_orders_status_create_time_id", "status", "create_time", "id"),
    Index("ix_orders_create_time_id", "create_time", "id"),
)

order_lines = Table(
    "order_lines",
    Base.metadata,
    Column("order_id", Uuid, ForeignKey("orders.id"), nullable=False),
    Column("product_id", Uuid, ForeignKey("products.id"), nullable=False),
    # Position in the request, so lines come back in the order they were asked for.
    Column("line_number", Integer, nullable=False),
    # Captured when the order is placed.
    Column("sku", SKU, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_currency", CURRENCY, nullable=False),
    Column("unit_price_minor_units", BigInteger, nullable=False),
    # One line per product and order; the key also serves loading an order's lines.
    PrimaryKeyConstraint("order_id", "product_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("unit_price_minor_units >= 0", name="unit_price_not_negative"),
    CheckConstraint("line_number >= 0", name="line_number_not_negative"),
    # The sales report joins a time range of orders to their lines and sums them: with every column it
    # reads in the index, PostgreSQL answers a day's report from the index alone instead of choosing a
    # sequential pass over all lines (which it did at a million lines; bench/README.md, EXPLAIN).
    Index(
        "ix_order_lines_order_id_report",
        "order_id",
        postgresql_include=["product_id", "sku", "quantity", "unit_price_currency", "unit_price_minor_units"],
    ),
)

stock_movements = Table(
    "stock_movements",
    Base.metadata,
    Column("id", Uuid, nullable=False),
    Column("product_id", Uuid, ForeignKey("products.id"), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("order_id", Uuid, ForeignKey("orders.id"), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("id"),
    CheckConstraint("delta <> 0", name="delta_not_zero"),
    # Order movements name their order; manual ones name none.
    CheckConstraint(
        f"(reason IN {ORDER_REASONS_SQL} AND order_id IS NOT NULL)"
        f" OR (reason IN {MANUAL_REASONS_SQL} AND order_id IS NULL)",
        name="reason_matches_order",
    ),
    # A product's ledger, newest first.
    Index("ix_stock_movements_product_id_create_time_id", "product_id", "create_time", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    Base.metadata,
    Column("caller", Text, nullable=False),
    Column("request_id", Uuid, nullable=False),
    # SHA-256 (hex) of the operation and its fields: the same id with another request is refused.
    Column("request_hash", String(64), nullable=False),
    # The id of what the first request produced (product, movement or order).
    Column("result_id", Uuid, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    # The unique key that makes a request id count once per caller, even when two calls race.
    PrimaryKeyConstraint("caller", "request_id"),
)
