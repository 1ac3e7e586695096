"""Bulk catalogue import and export: CreateProduct's rules, applied one set-based batch at a time.

An import is idempotent: a row whose SKU exists with the same catalog data changes nothing; one whose
SKU exists with other data is reported (rejected, with the fields that differ) and only overwritten when
the caller asks for updates. `initial_stock` counts for new products only — it becomes their first
ledger entry, as with CreateProduct — never for existing ones, whose stock moves with orders and
adjustments. Each batch is one transaction: a bad row never stops the good ones around it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from data_service.domain.errors import ProductArchived
from data_service.domain.products import Product, ProductChanges
from data_service.domain.queries import ProductFilter
from data_service.domain.stock import MovementReason, StockMovement, initial_stock
from data_service.domain.values import (
    InvalidValue,
    Money,
    Sku,
    currency_code,
    new_id,
    price_minor_units,
    product_description,
    product_name,
)
from data_service.service.commands import CreateProduct
from data_service.service.ports import Clock, UnitOfWorkFactory, utc_now
from shared.errors import TransactionConflict
from shared.retry import retry_on_conflict

# The columns of an import or export file, in this order.
COLUMNS = ("sku", "name", "description", "price_currency", "price_minor_units", "initial_stock")
REQUIRED_COLUMNS = frozenset({"sku", "name", "price_currency", "price_minor_units"})
# Rows per transaction; a multi-row INSERT of 11 columns must stay under SQLite's and PostgreSQL's
# limits on bound parameters (32 766 and 32 767).
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 2000
EXPORT_PAGE_SIZE = 1000
_INTEGER = re.compile(r"-?[0-9]{1,19}")


class Outcome(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    UPDATED = "updated"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One row of the file: its (first) line number and its fields as read (strings or JSON values)."""

    line: int
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str
    record: Mapping[str, object]


@dataclass
class BatchResult:
    """What one batch did; its rejections in line order."""

    created: int = 0
    unchanged: int = 0
    updated: int = 0
    rejections: list[Rejection] = field(default_factory=list)


@dataclass
class ImportTotals:
    """The counts of a whole run (rejections themselves go to the reject file, batch by batch)."""

    created: int = 0
    unchanged: int = 0
    updated: int = 0
    rejected: int = 0

    @property
    def rows(self) -> int:
        return self.created + self.unchanged + self.updated + self.rejected


def _integer(raw: object, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidValue(f"{what} must be a whole number")
    if isinstance(raw, str):
        if not _INTEGER.fullmatch(raw.strip()):
            raise InvalidValue(f"{what} must be a whole number, not {raw[:40]!r}")
        return int(raw)
    return raw


def _text(raw: object, what: str) -> str:
    if not isinstance(raw, str):
        raise InvalidValue(f"{what} must be text")
    return raw


def product_from_record(fields: Mapping[str, object]) -> CreateProduct:
    """The CreateProduct command a row stands for, checked with CreateProduct's rules.

    `InvalidValue` names every bad field at once ("price_currency: ...; initial_stock: ...").
    """
    unknown = sorted(set(fields) - set(COLUMNS))
    problems = [f"{name}: unknown column" for name in unknown]

    def check(name: str, rule: Callable[[object], object], *, default: object = None) -> object:
        raw = fields.get(name)
        if raw is None:
            raw = default
        if raw is None or (raw == "" and name in REQUIRED_COLUMNS):
            problems.append(f"{name}: is required")
            return None
        try:
            return rule(raw)
        except InvalidValue as exc:
            message = str(exc)
            problems.append(message if message.startswith(name) else f"{name}: {message}")
            return None

    sku = check("sku", lambda raw: Sku.parse(_text(raw, "sku")))
    name = check("name", lambda raw: product_name(_text(raw, "name")))
    description = check("description", lambda raw: product_description(_text(raw, "description")), default="")
    currency = check("price_currency", lambda raw: currency_code(_text(raw, "price_currency")))
    units = check("price_minor_units", lambda raw: price_minor_units(_integer(raw, "price_minor_units")))
    stock = check(
        "initial_stock",
        lambda raw: initial_stock(0 if raw == "" else _integer(raw, "initial_stock")),
        default=0,
    )
    if problems:
        raise InvalidValue("; ".join(problems))
    # No problem means every rule returned its value.
    return CreateProduct(
        sku=cast(Sku, sku),
        name=cast(str, name),
        description=cast(str, description),
        price=Money(cast(str, currency), cast(int, units)),
        initial_stock=cast(int, stock),
    )


def _differences(product: Product, command: CreateProduct) -> list[str]:
    return [
        name
        for name, stored, wanted in (
            ("name", product.name, command.name),
            ("description", product.description, command.description),
            ("price", product.price, command.price),
        )
        if stored != wanted
    ]


def record_of(product: Product) -> dict[str, object]:
    """A product as a row of an import file (its current stock as `initial_stock`)."""
    return {
        "sku": product.sku.value,
        "name": product.name,
        "description": product.description,
        "price_currency": product.price.currency_code,
        "price_minor_units": product.price.minor_units,
        "initial_stock": product.stock_on_hand,
    }


@dataclass(frozen=True, slots=True)
class _Row:
    record: ImportRecord
    command: CreateProduct


class CatalogImport:
    """One import run: feed it batches in file order; it keeps the running summary.

    A SKU seen earlier in the same file is rejected on its later lines (naming the first), so a file
    with a SKU twice gives the same result in one batch or across two.
    """

    def __init__(self, unit_of_work: UnitOfWorkFactory, *, update: bool, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._update = update
        self._clock = clock
        self._first_line_of_sku: dict[str, int] = {}
        self.totals = ImportTotals()

    async def add_batch(
        self, records: Sequence[ImportRecord], unreadable: Sequence[Rejection] = ()
    ) -> BatchResult:
        """Check and load one batch in one transaction; returns what this batch did.

        `unreadable`: lines of the batch that the file reader could not even turn into fields; they
        are counted and reported with the rest.
        """
        batch = BatchResult(rejections=list(unreadable))
        rows: list[_Row] = []
        for record in records:
            try:
                command = product_from_record(record.fields)
            except InvalidValue as exc:
                batch.rejections.append(Rejection(record.line, str(exc), record.fields))
                continue
            first = self._first_line_of_sku.setdefault(command.sku.value, record.line)
            if first != record.line:
                reason = f"sku: {command.sku.value} appears again (first on line {first})"
                batch.rejections.append(Rejection(record.line, reason, record.fields))
                continue
            rows.append(_Row(record, command))
        if rows:
            await retry_on_conflict(lambda: self._load(rows, batch))
        batch.rejections.sort(key=lambda rejection: rejection.line)
        self.totals.created += batch.created
        self.totals.unchanged += batch.unchanged
        self.totals.updated += batch.updated
        self.totals.rejected += len(batch.rejections)
        return batch

    async def _load(self, rows: list[_Row], batch: BatchResult) -> None:
        now = self._clock()
        created = unchanged = updated = 0
        rejections: list[Rejection] = []
        async with self._unit_of_work() as uow:
            existing = await uow.products.find_by_skus([row.command.sku.value for row in rows])
            new_products: list[Product] = []
            for row in rows:
                command = row.command
                stored = existing.get(command.sku.value)
                if stored is None:
                    new_products.append(
                        Product.new(
                            id=new_id(),
                            sku=command.sku,
                            name=command.name,
                            description=command.description,
                            price=command.price,
                            initial_stock=command.initial_stock,
                            now=now,
                        )
                    )
                    continue
                differences = _differences(stored, command)
                if not differences:
                    unchanged += 1
                elif not self._update:
                    reason = (
                        f"sku: {command.sku.value} exists with another {', '.join(differences)}; "
                        "not changed (--update overwrites)"
                    )
                    rejections.append(Rejection(row.record.line, reason, row.record.fields))
                else:
                    try:
                        changed = stored.changed(
                            ProductChanges(
                                name=command.name, description=command.description, price=command.price
                            ),
                            now,
                        )
                    except ProductArchived:
                        reason = f"sku: {command.sku.value} is archived and cannot be changed"
                        rejections.append(Rejection(row.record.line, reason, row.record.fields))
                        continue
                    if not await uow.products.save_details(changed, expected_version=stored.version):
                        raise TransactionConflict("a product changed while the batch was loaded")
                    updated += 1
            inserted = await uow.products.add_new(new_products)
            if len(inserted) != len(new_products):
                # Someone created one of these SKUs since we looked: run the batch again, which then
                # compares that row with what they stored.
                raise TransactionConflict("a product with one of these SKUs was created concurrently")
            # As CreateProduct: initial stock is the first entry of the ledger (stock = sum of the ledger).
            await uow.movements.add(
                [
                    StockMovement(
                        id=new_id(),
                        product_id=product.id,
                        delta=product.stock_on_hand,
                        reason=MovementReason.RESTOCK,
                        order_id=None,
                        create_time=now,
                    )
                    for product in new_products
                    if product.stock_on_hand
                ]
            )
            await uow.commit()
        created = len(new_products)
        batch.created, batch.unchanged, batch.updated = created, unchanged, updated
        batch.rejections.extend(rejections)


async def export_products(
    unit_of_work: UnitOfWorkFactory, *, include_archived: bool = False, page_size: int = EXPORT_PAGE_SIZE
) -> AsyncIterator[Product]:
    """Every product by SKU, a keyset page at a time: never the whole table in memory."""
    query = ProductFilter(include_archived=include_archived)
    after: str | None = None
    while True:
        async with unit_of_work(read_only=True) as uow:
            page = await uow.products.list_page(query, after_sku=after, limit=page_size)
        for product in page:
            yield product
        if len(page) < page_size:
            return
        after = page[-1].sku.value
