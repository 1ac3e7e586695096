"""Use cases of the product catalog: create, read, list, update, archive."""

from __future__ import annotations

from uuid import UUID

from data_service.domain.errors import EtagMismatch, ProductNotFound
from data_service.domain.products import Product
from data_service.domain.stock import MovementReason, StockMovement
from data_service.domain.values import Caller, Sku, new_id
from data_service.service.commands import ArchiveProduct, CreateProduct, ListProducts, UpdateProduct
from data_service.service.idempotency import first_result
from data_service.service.pagination import Page, filters_digest, page_of, parse_key, resume_key
from data_service.service.ports import Clock, UnitOfWork, UnitOfWorkFactory, utc_now
from shared.errors import TransactionConflict
from shared.retry import retry_on_conflict


class CatalogService:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def create_product(self, caller: Caller, command: CreateProduct) -> Product:
        """Create a product and record its initial stock as a RESTOCK movement, in one transaction.

        Repeating a request id returns the product the first call created.
        """
        return await retry_on_conflict(lambda: self._create_product(caller, command))

    async def _create_product(self, caller: Caller, command: CreateProduct) -> Product:
        now = self._clock()
        product = Product.new(
            id=new_id(),
            sku=command.sku,
            name=command.name,
            description=command.description,
            price=command.price,
            initial_stock=command.initial_stock,
            now=now,
        )
        async with self._unit_of_work() as uow:
            first = await first_result(
                uow,
                caller,
                command.request_id,
                operation="CreateProduct",
                fields=command.fingerprint_fields(),
                result_id=product.id,
                now=now,
            )
            if first is not None:
                return await _existing_product(uow, first)
            await uow.products.add(product)
            # A zero initial stock needs no movement: the ledger's sum is zero either way.
            if product.stock_on_hand:
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
                    ]
                )
            await uow.commit()
        return product

    async def get_product(self, product_id: UUID) -> Product:
        """One product, archived or not."""
        async with self._unit_of_work(read_only=True, stale_ok=True) as uow:
            return await _existing_product(uow, product_id)

    async def list_products(self, command: ListProducts) -> Page[Product]:
        """One page of products ordered by SKU, continuing after the page token's SKU."""
        query = command.filter
        digest = filters_digest("products", query.sku_prefix, query.in_stock_only, query.include_archived)
        after_sku = parse_key(resume_key(command.page_token, digest), _sku_key)
        async with self._unit_of_work(read_only=True, stale_ok=True) as uow:
            rows = await uow.products.list_page(query, after_sku=after_sku, limit=command.page_size + 1)
        return page_of(rows, command.page_size, digest, lambda product: (product.sku.value,))

    async def update_product(self, command: UpdateProduct) -> Product:
        """Change name, description and/or price; ABORTED when the etag is stale."""
        return await retry_on_conflict(lambda: self._update_product(command))

    async def _update_product(self, command: UpdateProduct) -> Product:
        async with self._unit_of_work() as uow:
            product = await _existing_product(uow, command.product_id)
            _check_version(product, command.expected_version)
            updated = product.changed(command.changes, self._clock())
            await _save(uow, updated, product.version, command.expected_version)
            await uow.commit()
        return updated

    async def archive_product(self, command: ArchiveProduct) -> Product:
        """Soft-delete a product: hidden from lists, cannot be ordered, its history kept."""
        return await retry_on_conflict(lambda: self._archive_product(command))

    async def _archive_product(self, command: ArchiveProduct) -> Product:
        async with self._unit_of_work() as uow:
            product = await _existing_product(uow, command.product_id)
            _check_version(product, command.expected_version)
            archived = product.archived_at(self._clock())
            if archived is product:
                return product
            await _save(uow, archived, product.version, command.expected_version)
            await uow.commit()
        return archived


def _sku_key(key: tuple[str, ...]) -> str:
    (sku,) = key
    return Sku(sku).value


async def _existing_product(uow: UnitOfWork, product_id: UUID) -> Product:
    product = await uow.products.get(product_id)
    if product is None:
        raise ProductNotFound(product_id)
    return product


def _check_version(product: Product, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != product.version:
        raise EtagMismatch(f"product {product.id}")


async def _save(uow: UnitOfWork, product: Product, read_version: int, expected_version: int | None) -> None:
    if await uow.products.save_details(product, expected_version=read_version):
        return
    # Someone changed the product between our read and our write.
    if expected_version is not None:
        raise EtagMismatch(f"product {product.id}")
    raise TransactionConflict("the product changed concurrently")
