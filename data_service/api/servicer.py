"""InventoryService servicer: converts protos to use-case calls and results back to protos."""

from __future__ import annotations

from typing import Any

from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from data_service.api import requests, responses
from data_service.api.page_tokens import PageTokenSeal
from data_service.domain.values import Caller
from data_service.service.catalog import CatalogService
from data_service.service.orders import OrderService
from data_service.service.stock import StockService
from shared.errors import Unauthenticated
from shared.principal import current_principal


def _caller() -> Caller:
    """The verified caller of this RPC, as the use cases know it."""
    principal = current_principal()
    if principal is None:
        # Every inventory RPC declares a scope, so the auth interceptor has set one; never guess.
        raise Unauthenticated("an access token is required", reason="invalid_token")
    return Caller(subject=principal.subject, scopes=principal.scopes)


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    """Each RPC: request → command (every bad field reported), use case, result → response."""

    def __init__(
        self, catalog: CatalogService, stock: StockService, orders: OrderService, page_tokens: PageTokenSeal
    ) -> None:
        self._page_tokens = page_tokens
        self._catalog = catalog
        self._stock = stock
        self._orders = orders

    async def CreateProduct(
        self, request: inventory_pb2.CreateProductRequest, context: Any
    ) -> inventory_pb2.Product:
        caller = _caller()
        product = await self._catalog.create_product(caller, requests.create_product(request))
        return responses.product(product)

    async def GetProduct(
        self, request: inventory_pb2.GetProductRequest, context: Any
    ) -> inventory_pb2.Product:
        return responses.product(await self._catalog.get_product(requests.product_id(request)))

    async def ListProducts(
        self, request: inventory_pb2.ListProductsRequest, context: Any
    ) -> inventory_pb2.ListProductsResponse:
        page = await self._catalog.list_products(requests.list_products(request, self._page_tokens))
        return inventory_pb2.ListProductsResponse(
            products=[responses.product(p) for p in page.items],
            next_page_token=self._page_tokens.seal(page.next_page_token),
        )

    async def UpdateProduct(
        self, request: inventory_pb2.UpdateProductRequest, context: Any
    ) -> inventory_pb2.Product:
        return responses.product(await self._catalog.update_product(requests.update_product(request)))

    async def ArchiveProduct(
        self, request: inventory_pb2.ArchiveProductRequest, context: Any
    ) -> inventory_pb2.Product:
        return responses.product(await self._catalog.archive_product(requests.archive_product(request)))

    async def AdjustStock(
        self, request: inventory_pb2.AdjustStockRequest, context: Any
    ) -> inventory_pb2.AdjustStockResponse:
        caller = _caller()
        result = await self._stock.adjust_stock(caller, requests.adjust_stock(request))
        return inventory_pb2.AdjustStockResponse(
            product=responses.product(result.product), movement=responses.movement(result.movement)
        )

    async def ListStockMovements(
        self, request: inventory_pb2.ListStockMovementsRequest, context: Any
    ) -> inventory_pb2.ListStockMovementsResponse:
        page = await self._stock.list_movements(requests.list_stock_movements(request, self._page_tokens))
        return inventory_pb2.ListStockMovementsResponse(
            movements=[responses.movement(m) for m in page.items],
            next_page_token=self._page_tokens.seal(page.next_page_token),
        )

    async def CreateOrder(
        self, request: inventory_pb2.CreateOrderRequest, context: Any
    ) -> inventory_pb2.Order:
        caller = _caller()
        return responses.order(await self._orders.create_order(caller, requests.create_order(request)))

    async def GetOrder(self, request: inventory_pb2.GetOrderRequest, context: Any) -> inventory_pb2.Order:
        caller = _caller()
        return responses.order(await self._orders.get_order(caller, requests.order_id(request)))

    async def ListOrders(
        self, request: inventory_pb2.ListOrdersRequest, context: Any
    ) -> inventory_pb2.ListOrdersResponse:
        caller = _caller()
        page = await self._orders.list_orders(caller, requests.list_orders(request, self._page_tokens))
        return inventory_pb2.ListOrdersResponse(
            orders=[responses.order(o) for o in page.items],
            next_page_token=self._page_tokens.seal(page.next_page_token),
        )

    async def CancelOrder(
        self, request: inventory_pb2.CancelOrderRequest, context: Any
    ) -> inventory_pb2.Order:
        caller = _caller()
        return responses.order(await self._orders.cancel_order(caller, requests.change_order_status(request)))

    async def FulfillOrder(
        self, request: inventory_pb2.FulfillOrderRequest, context: Any
    ) -> inventory_pb2.Order:
        caller = _caller()
        return responses.order(
            await self._orders.fulfill_order(caller, requests.change_order_status(request))
        )

    async def GetSalesReport(
        self, request: inventory_pb2.GetSalesReportRequest, context: Any
    ) -> inventory_pb2.GetSalesReportResponse:
        caller = _caller()
        rows = await self._orders.sales_report(caller, requests.sales_report(request))
        return inventory_pb2.GetSalesReportResponse(rows=[responses.sales_report_row(r) for r in rows])
