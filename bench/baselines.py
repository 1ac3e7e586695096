"""The two floors the full stack is measured against, run as their own processes.

- `echo` (baseline A): a bare grpc.aio server that returns the request bytes; no interceptors, no
  protobuf, no database. What the interpreter, grpc.aio and the loop cost per call.
- `pk` (baseline B): `GetProduct` answered by one primary-key SELECT through a raw asyncpg pool and a
  hand-built `Product`: what a minimal handler with a database costs. It serves the same method path,
  request and response as the data service, so one h2load body measures both and the response sizes
  must match byte for byte.

Both use the interpreter and loop policy the services use (`shared.server.install_uvloop`) and log one
JSON `server_started` line, as the services do, so the harness starts all four the same way.

    python -m bench.baselines echo --listen 127.0.0.1:0
    python -m bench.baselines pk --listen 127.0.0.1:0 --dsn postgresql://postgres@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import grpc

from bench import catalog
from shared.server import install_uvloop

ECHO_METHOD = "/tessera.bench.v1.Echo/Echo"


def _identity(payload: bytes) -> bytes:
    return payload


class _Echo(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers one raw-bytes method with its request, and nothing else."""

    def __init__(self) -> None:
        async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
            return request

        self._handler = grpc.unary_unary_rpc_method_handler(echo, _identity, _identity)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handler if handler_call_details.method == ECHO_METHOD else None


class _PrimaryKeyLookup(grpc.GenericRpcHandler):  # type: ignore[misc]
    """`GetProduct` as one raw asyncpg SELECT by primary key; NOT_FOUND when there is no row."""

    def __init__(self, pool: Any) -> None:
        product_by_id = catalog.PRODUCT_BY_ID_SQL

        async def get_product(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with pool.acquire() as connection:
                row = await connection.fetchrow(product_by_id, catalog.parse_product_id(request.id))
            if row is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such product")
            return catalog.product_message(row)

        self._handler = grpc.unary_unary_rpc_method_handler(
            get_product, catalog.GetProductRequest.FromString, catalog.serialize_product
        )

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handler if handler_call_details.method == catalog.GET_PRODUCT_METHOD else None


async def serve(kind: str, listen: str, dsn: str | None, pool_size: int) -> None:
    pool: Any = None
    if kind == "pk":
        import asyncpg

        if dsn is None:
            raise SystemExit("pk needs --dsn")
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        handler: grpc.GenericRpcHandler = _PrimaryKeyLookup(pool)
    else:
        handler = _Echo()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(listen)
    await server.start()
    print(json.dumps({"event": "server_started", "port": port, "baseline": kind}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1.0)
    if pool is not None:
        await pool.close()
    print(json.dumps({"event": "server_stopped"}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("kind", choices=["echo", "pk"])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--dsn", help="asyncpg DSN of the data service's database (pk only)")
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args(argv)
    install_uvloop()
    asyncio.run(serve(args.kind, args.listen, args.dsn, args.pool_size))


if __name__ == "__main__":
    main(sys.argv[1:])
