"""AuthService servicer: converts protos to use-case calls and results back to protos."""

from __future__ import annotations

from tessera.auth.v1 import auth_pb2_grpc


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """RPCs not overridden here answer UNIMPLEMENTED (through the error interceptor)."""
