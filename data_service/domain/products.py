"""Products: what can be stocked and ordered."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from data_service.domain.errors import InsufficientStock, ProductArchived
from data_service.domain.values import Money, Sku, etag_of


@dataclass(frozen=True, slots=True)
class ProductChanges:
    """The editable fields an update sets; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    price: Money | None = None


@dataclass(frozen=True, slots=True)
class Product:
    """A product with its stock on hand.

    `version` counts changes of the catalog data (name, description, price, archived) and is what the
    etag stands for. Stock changes do not bump it: stock moves with every order, and an etag that did
    would make every catalog edit of a best seller fail as stale.
    """

    id: UUID
    sku: Sku
    name: str
    description: str
    price: Money
    stock_on_hand: int
    archived: bool
    version: int
    create_time: datetime
    update_time: datetime

    @classmethod
    def new(
        cls,
        *,
        id: UUID,
        sku: Sku,
        name: str,
        description: str,
        price: Money,
        initial_stock: int,
        now: datetime,
    ) -> Product:
        return cls(
            id=id,
            sku=sku,
            name=name,
            description=description,
            price=price,
            stock_on_hand=initial_stock,
            archived=False,
            version=1,
            create_time=now,
            update_time=now,
        )

    @property
    def etag(self) -> str:
        return etag_of(self.version)

    def changed(self, changes: ProductChanges, now: datetime) -> Product:
        """The product with `changes` applied; an archived product cannot be changed."""
        if self.archived:
            raise ProductArchived(self.id)
        return replace(
            self,
            name=self.name if changes.name is None else changes.name,
            description=self.description if changes.description is None else changes.description,
            price=self.price if changes.price is None else changes.price,
            version=self.version + 1,
            update_time=now,
        )

    def archived_at(self, now: datetime) -> Product:
        """The product archived; archiving it again changes nothing."""
        if self.archived:
            return self
        return replace(self, archived=True, version=self.version + 1, update_time=now)

    def stock_adjusted(self, delta: int, now: datetime) -> Product:
        """The product after a manual stock adjustment, which may never take stock below zero."""
        if self.archived:
            raise ProductArchived(self.id)
        if self.stock_on_hand + delta < 0:
            raise InsufficientStock(
                self.id, f"{self.stock_on_hand} in stock, cannot remove {-delta}; stock never goes below zero"
            )
        return replace(self, stock_on_hand=self.stock_on_hand + delta, update_time=now)
