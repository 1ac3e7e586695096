"""`InventoryClient`: the data service (`tessera.inventory.v1.InventoryService`) over the generated stubs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime

from google.protobuf import field_mask_pb2, timestamp_pb2
from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from shared.client.base import ServiceClient

OrderLine = inventory_pb2.CreateOrderRequest.Line


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime (e.g. datetime.now(UTC)); a naive one is ambiguous")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _lines(lines: Iterable[OrderLine | tuple[str, int]]) -> list[OrderLine]:
    return [
        line if isinstance(line, OrderLine) else OrderLine(product_id=line[0], quantity=line[1])
        for line in lines
    ]


class InventoryClient(ServiceClient):
    """Products, stock and orders. Every call needs a token source (`tokens=`).

    Creates and stock adjustments get a fresh `request_id` unless you pass one; it is sent unchanged on
    every retry of that call, so a retried create never creates twice. Pass your own to make a retry of
    your own (after a crash, say) idempotent too.
    """

    SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
    STUB = inventory_pb2_grpc.InventoryServiceStub

    async def create_product(
        self,
        product: inventory_pb2.Product,
        *,
        initial_stock: int = 0,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> inventory_pb2.Product:
        request = inventory_pb2.CreateProductRequest(
            product=product, initial_stock=initial_stock, request_id=request_id or str(uuid.uuid4())
        )
        return await self._call(self.stub.CreateProduct, request, timeout)

    async def get_product(self, id: str, *, timeout: float | None = None) -> inventory_pb2.Product:
        return await self._call(self.stub.GetProduct, inventory_pb2.GetProductRequest(id=id), timeout)

    async def list_products(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        sku_prefix: str = "",
        in_stock_only: bool = False,
        include_archived: bool = False,
        timeout: float | None = None,
    ) -> inventory_pb2.ListProductsResponse:
        request = inventory_pb2.ListProductsRequest(
            page_size=page_size,
            page_token=page_token,
            sku_prefix=sku_prefix,
            in_stock_only=in_stock_only,
            include_archived=include_archived,
        )
        return await self._call(self.stub.ListProducts, request, timeout)

    async def iter_products(
        self,
        *,
        page_size: int = 0,
        sku_prefix: str = "",
        in_stock_only: bool = False,
        include_archived: bool = False,
    ) -> AsyncIterator[inventory_pb2.Product]:
        """Every matching product, page after page."""
        page_token = ""
        while True:
            page = await self.list_products(
                page_size=page_size,
                page_token=page_token,
                sku_prefix=sku_prefix,
                in_stock_only=in_stock_only,
                include_archived=include_archived,
            )
            for product in page.products:
                yield product
            if not page.next_page_token:
                return
            page_token = page.next_page_token

    async def update_product(
        self, product: inventory_pb2.Product, update_mask: Sequence[str], *, timeout: float | None = None
    ) -> inventory_pb2.Product:
        """Change the fields named in `update_mask` (`name`, `description`, `price`); `product.etag`, if
        set, must be current."""
        request = inventory_pb2.UpdateProductRequest(
            product=product, update_mask=field_mask_pb2.FieldMask(paths=list(update_mask))
        )
        return await self._call(self.stub.UpdateProduct, request, timeout)

    async def archive_product(
        self, id: str, *, etag: str = "", timeout: float | None = None
    ) -> inventory_pb2.Product:
        request = inventory_pb2.ArchiveProductRequest(id=id, etag=etag)
        return await self._call(self.stub.ArchiveProduct, request, timeout)

    async def adjust_stock(
        self,
        product_id: str,
        delta: int,
        reason: inventory_pb2.StockMovementReason,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> inventory_pb2.AdjustStockResponse:
        request = inventory_pb2.AdjustStockRequest(
            product_id=product_id, delta=delta, reason=reason, request_id=request_id or str(uuid.uuid4())
        )
        return await self._call(self.stub.AdjustStock, request, timeout)

    async def list_stock_movements(
        self, product_id: str, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> inventory_pb2.ListStockMovementsResponse:
        request = inventory_pb2.ListStockMovementsRequest(
            product_id=product_id, page_size=page_size, page_token=page_token
        )
        return await self._call(self.stub.ListStockMovements, request, timeout)

    async def create_order(
        self,
        lines: Iterable[OrderLine | tuple[str, int]],
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> inventory_pb2.Order:
        """Order `lines`, given as `(product_id, quantity)` pairs or `CreateOrderRequest.Line`s."""
        request = inventory_pb2.CreateOrderRequest(
            lines=_lines(lines), request_id=request_id or str(uuid.uuid4())
        )
        return await self._call(self.stub.CreateOrder, request, timeout)

    async def get_order(self, id: str, *, timeout: float | None = None) -> inventory_pb2.Order:
        return await self._call(self.stub.GetOrder, inventory_pb2.GetOrderRequest(id=id), timeout)

    async def list_orders(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        status: inventory_pb2.OrderStatus = inventory_pb2.ORDER_STATUS_UNSPECIFIED,
        owner: str = "",
        timeout: float | None = None,
    ) -> inventory_pb2.ListOrdersResponse:
        request = inventory_pb2.ListOrdersRequest(
            page_size=page_size, page_token=page_token, status=status, owner=owner
        )
        return await self._call(self.stub.ListOrders, request, timeout)

    async def cancel_order(
        self, id: str, *, etag: str = "", timeout: float | None = None
    ) -> inventory_pb2.Order:
        request = inventory_pb2.CancelOrderRequest(id=id, etag=etag)
        return await self._call(self.stub.CancelOrder, request, timeout)

    async def fulfill_order(
        self, id: str, *, etag: str = "", timeout: float | None = None
    ) -> inventory_pb2.Order:
        request = inventory_pb2.FulfillOrderRequest(id=id, etag=etag)
        return await self._call(self.stub.FulfillOrder, request, timeout)

    async def get_sales_report(
        self, start_time: datetime, end_time: datetime, *, limit: int = 0, timeout: float | None = None
    ) -> inventory_pb2.GetSalesReportResponse:
        request = inventory_pb2.GetSalesReportRequest(
            start_time=_timestamp(start_time), end_time=_timestamp(end_time), limit=limit
        )
        return await self._call(self.stub.GetSalesReport, request, timeout)
