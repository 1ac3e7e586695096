"""initial schema: products, stock ledger, orders, idempotency keys

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SKU = sa.String(64).with_variant(postgresql.VARCHAR(64, collation="C"), "postgresql")
TIME = sa.DateTime(timezone=True)

# The ledger is append-only: history is corrected by new movements, never rewritten.
PG_APPEND_ONLY = [
    """
    CREATE FUNCTION stock_movements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'stock_movements is append-only' USING ERRCODE = 'restrict_violation';
    END;
    $$
    """,
    "CREATE TRIGGER stock_movements_append_only BEFORE UPDATE OR DELETE ON stock_movements "
    "FOR EACH ROW EXECUTE FUNCTION stock_movements_append_only()",
]
SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER stock_movements_no_update BEFORE UPDATE ON stock_movements "
    "BEGIN SELECT RAISE(ABORT, 'stock_movements is append-only'); END",
    "CREATE TRIGGER stock_movements_no_delete BEFORE DELETE ON stock_movements "
    "BEGIN SELECT RAISE(ABORT, 'stock_movements is append-only'); END",
]


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sku", SKU, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("price_currency", sa.String(3), nullable=False),
        sa.Column("price_minor_units", sa.BigInteger(), nullable=False),
        sa.Column("stock_on_hand", sa.BigInteger(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("create_time", TIME, nullable=False),
        sa.Column("update_time", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("sku", name="uq_products_sku"),
        sa.CheckConstraint("price_minor_units >= 0", name=op.f("ck_products_price_not_negative")),
        sa.CheckConstraint("stock_on_hand >= 0", name=op.f("ck_products_stock_not_negative")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_products_version_positive")),
    )
    op.create_index(
        "ix_products_active_sku",
        "products",
        ["sku"],
        postgresql_where=sa.text("NOT archived"),
        sqlite_where=sa.text("NOT archived"),
    )
    op.create_index(
        "ix_products_in_stock_sku",
        "products",
        ["sku"],
        postgresql_where=sa.text("stock_on_hand > 0 AND NOT archived"),
        sqlite_where=sa.text("stock_on_hand > 0 AND NOT archived"),
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("create_time", TIME, nullable=False),
        sa.Column("update_time", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.CheckConstraint("status IN ('PLACED', 'FULFILLED', 'CANCELLED')", name=op.f("ck_orders_status_known")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_orders_version_positive")),
    )
    op.create_index("ix_orders_owner_create_time_id", "orders", ["owner", "create_time", "id"])
    op.create_index("ix_orders_status_create_time_id", "orders", ["status", "create_time", "id"])
    op.create_index("ix_orders_create_time_id", "orders", ["create_time", "id"])

    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("sku", SKU, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_currency", sa.String(3), nullable=False),
        sa.Column("unit_price_minor_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "product_id", name="pk_order_lines"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name="fk_order_lines_product_id_products"),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.CheckConstraint("unit_price_minor_units >= 0", name=op.f("ck_order_lines_unit_price_not_negative")),
        sa.CheckConstraint("line_number >= 0", name=op.f("ck_order_lines_line_number_not_negative")),
    )
    op.create_index(
        "ix_order_lines_order_id_report",
        "order_lines",
        ["order_id"],
        postgresql_include=["product_id", "sku", "quantity", "unit_price_currency", "unit_price_minor_units"],
    )

    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("create_time", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stock_movements"),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name="fk_stock_movements_product_id_products"
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_stock_movements_order_id_orders"),
        sa.CheckConstraint("delta <> 0", name=op.f("ck_stock_movements_delta_not_zero")),
        sa.CheckConstraint(
            "(reason IN ('ORDER', 'CANCELLATION') AND order_id IS NOT NULL)"
            " OR (reason IN ('RESTOCK', 'CORRECTION', 'DAMAGE') AND order_id IS NULL)",
            name=op.f("ck_stock_movements_reason_matches_order"),
        ),
    )
    op.create_index(
        "ix_stock_movements_product_id_create_time_id",
        "stock_movements",
        ["product_id", "create_time", "id"],
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("create_time", TIME, nullable=False),
        sa.PrimaryKeyConstraint("caller", "request_id", name="pk_idempotency_keys"),
    )

    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in PG_APPEND_ONLY if postgres else SQLITE_APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    # Dropping the table drops its triggers; PostgreSQL keeps the function unless told.
    op.drop_index("ix_stock_movements_product_id_create_time_id", table_name="stock_movements")
    op.drop_table("stock_movements")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS stock_movements_append_only()")
    op.drop_index("ix_order_lines_order_id_report", table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index("ix_orders_create_time_id", table_name="orders")
    op.drop_index("ix_orders_status_create_time_id", table_name="orders")
    op.drop_index("ix_orders_owner_create_time_id", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_products_in_stock_sku", table_name="products")
    op.drop_index("ix_products_active_sku", table_name="products")
    op.drop_table("products")
