"""InventoryService servicer: converts protos to use-case calls and results back to protos."""

from __future__ import annotations

from tessera.inventory.v1 import inventory_pb2_grpc


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    """RPCs not overridden here answer UNIMPLEMENTED (through the error interceptor)."""
