"""Products in the database. Core statements throughout: the hot paths skip the ORM's identity map."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from data_service.domain.errors import SkuTaken
from data_service.domain.products import Product
from data_service.domain.queries import ProductFilter
from data_service.domain.values import Money, Sku
from data_service.repository.errors import database_errors
from data_service.repository.models import products
from shared.db import driver_connection, reads_outside_transactions


def product_from_row(row: Row[Any]) -> Product:
    return product_from_values(row._mapping)


def product_from_values(values: Mapping[Any, Any]) -> Product:
    """A product from a row's columns by name: a SQLAlchemy row's mapping or an asyncpg record."""
    return Product(
        id=values["id"],
        sku=Sku(values["sku"]),
        name=values["name"],
        description=values["description"],
        price=Money(values["price_currency"], values["price_minor_units"]),
        stock_on_hand=values["stock_on_hand"],
        archived=values["archived"],
        version=values["version"],
        create_time=values["create_time"],
        update_time=values["update_time"],
    )


# Hot statements are built once: constructing a Core statement and its cache key on every call costs
# more CPU than the round trip it sends (~200 µs of a ~1.5 ms GetProduct; see bench/README.md).
_BY_ID = select(products).where(products.c.id == bindparam("product_id"))
# GetProduct, the hottest read, goes to the driver directly on PostgreSQL: SQLAlchemy's execution and
# result machinery cost more than the query (bench/README.md). Same statement, compiled once.
_BY_ID_POSTGRES = str(_BY_ID.compile(dialect=postgresql_asyncpg.dialect()))  # type: ignore[no-untyped-call]
_LOCK_FOR_STOCK_CHANGE = (
    select(products)
    .where(products.c.id.in_(bindparam("product_ids", expanding=True)))
    .order_by(products.c.id)
    .with_for_update(key_share=True)
)

_BY_SKUS = select(products).where(products.c.sku.in_(bindparam("skus", expanding=True)))
_ADD_NEW = {
    name: dialect.insert(products)
    .on_conflict_do_nothing(index_elements=[products.c.sku])
    .returning(products.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def _prefix_upper_bound(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix` (byte order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class SqlProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, product: Product) -> None:
        """Insert a new product; `SkuTaken` when its SKU exists (the unique key decides, also in a race)."""
        with database_errors({"uq_products_sku": lambda: SkuTaken(product.sku.value)}):
            connection = await self._session.connection()
            await connection.execute(
                insert(products).values(
                    id=product.id,
                    sku=product.sku.value,
                    name=product.name,
                    description=product.description,
                    price_currency=product.price.currency_code,
                    price_minor_units=product.price.minor_units,
                    stock_on_hand=product.stock_on_hand,
                    archived=product.archived,
                    version=product.version,
                    create_time=product.create_time,
                    update_time=product.update_time,
                )
            )

    async def get(self, product_id: UUID) -> Product | None:
        """One product by primary key, archived or not."""
        with database_errors():
            if reads_outside_transactions(self._session):
                async with driver_connection(self._session) as driver:
                    record = await driver.fetchrow(_BY_ID_POSTGRES, product_id)
                return None if record is None else product_from_values(record)
            connection = await self._session.connection()
            row = (await connection.execute(_BY_ID, {"product_id": product_id})).first()
        return None if row is None else product_from_row(row)

    async def lock_for_stock_change(self, product_ids: Collection[UUID]) -> dict[UUID, Product]:
        """The existing products among `product_ids`, row-locked in ascending id order.

        `FOR NO KEY UPDATE` (PostgreSQL) blocks other stock changes of these rows but not inserts that
        merely reference them. SQLite has no row locks; its write transactions already run one at a time.
        """
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(
                _LOCK_FOR_STOCK_CHANGE, {"product_ids": sorted(set(product_ids))}
            )
            return {row.id: product_from_row(row) for row in result}

    async def change_stock(self, deltas: Mapping[UUID, int], now: datetime) -> None:
        """Add each delta to its product's stock, in ascending id order (the order locks are taken in)."""
        if not deltas:
            return
        statement = (
            update(products)
            .where(products.c.id == bindparam("target_id", type_=products.c.id.type))
            .values(
                stock_on_hand=products.c.stock_on_hand
                + bindparam("delta", type_=products.c.stock_on_hand.type),
                update_time=now,
            )
        )
        with database_errors():
            connection = await self._session.connection()
            await connection.execute(
                statement,
                [{"target_id": product_id, "delta": delta} for product_id, delta in sorted(deltas.items())],
            )

    async def save_details(self, product: Product, *, expected_version: int) -> bool:
        """Compare-and-set of the catalog fields: writes only if the stored version is `expected_version`."""
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(
                update(products)
                .where(products.c.id == product.id, products.c.version == expected_version)
                .values(
                    name=product.name,
                    description=product.description,
                    price_currency=product.price.currency_code,
                    price_minor_units=product.price.minor_units,
                    archived=product.archived,
                    version=product.version,
                    update_time=product.update_time,
                )
            )
        return bool(result.rowcount == 1)

    async def list_page(self, query: ProductFilter, *, after_sku: str | None, limit: int) -> list[Product]:
        """Up to `limit` products by SKU after `after_sku`: one range scan of a SKU index."""
        statement = select(products)
        if not query.include_archived:
            statement = statement.where(~products.c.archived)
        if query.in_stock_only:
            # A literal, not a parameter: PostgreSQL must see that the partial index's predicate holds.
            statement = statement.where(products.c.stock_on_hand > literal_column("0"))
        if query.sku_prefix:
            statement = statement.where(
                products.c.sku >= query.sku_prefix, products.c.sku < _prefix_upper_bound(query.sku_prefix)
            )
        if after_sku is not None:
            statement = statement.where(products.c.sku > after_sku)
        statement = statement.order_by(products.c.sku).limit(limit)
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(statement)
            return [product_from_row(row) for row in result]

    async def find_by_skus(self, skus: Collection[str]) -> dict[str, Product]:
        """The products (archived too) among `skus`, by SKU: one lookup of the SKU index per batch."""
        if not skus:
            return {}
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(_BY_SKUS, {"skus": sorted(set(skus))})
            return {row.sku: product_from_row(row) for row in result}

    async def add_new(self, new_products: Sequence[Product]) -> set[UUID]:
        """Insert the products whose SKU is still free, in one statement; the ids of those inserted.

        `INSERT ... ON CONFLICT (sku) DO NOTHING RETURNING id`: a SKU created meanwhile by someone else
        is skipped instead of failing the batch, and the caller sees which rows went in.
        """
        if not new_products:
            return set()
        with database_errors():
            connection = await self._session.connection()
            statement = _ADD_NEW[connection.dialect.name]
            # One statement with many parameter sets: SQLAlchemy sends it as multi-row INSERTs
            # ("insertmanyvalues") from one cached compilation, RETURNING included.
            result = await connection.execute(statement, [_columns(product) for product in new_products])
            return {row.id for row in result}


def _columns(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "sku": product.sku.value,
        "name": product.name,
        "description": product.description,
        "price_currency": product.price.currency_code,
        "price_minor_units": product.price.minor_units,
        "stock_on_hand": product.stock_on_hand,
        "archived": product.archived,
        "version": product.version,
        "create_time": product.create_time,
        "update_time": product.update_time,
    }
