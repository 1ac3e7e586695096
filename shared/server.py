"""Building, running and stopping a Tessera gRPC server.

The interceptor chain is declared once here, outermost first, so its order is read in one place:
calls in progress → request id + access log → metrics → (extra) → errors → concurrency limits → drain
gate → auth → handler. Metrics sit outside the error mapping so that they count the status the client
really gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import tls
from shared.config import ServiceSettings
from shared.health import DatabaseProbe, HealthService
from shared.interceptors.drain import DrainGate
from shared.interceptors.errors import ErrorInterceptor
from shared.interceptors.limits import ConcurrencyLimits
from shared.interceptors.request_context import RequestContextInterceptor
from shared.metrics import MetricsEndpoint, MetricsInterceptor, ServiceMetrics, metrics_host
from shared.readiness import Prerequisite
from shared.reflection import enable_reflection

log = structlog.get_logger("tessera.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def install_uvloop() -> None:
    """uvloop is ~20 % more throughput for grpc.aio (BENCHMARKING.md); plain asyncio where absent."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def database_application_name(settings: ServiceSettings) -> str:
    """How the service's connections are named in pg_stat_activity (`tessera-data`, `tessera-auth`)."""
    return f"tessera-{settings.service_name}"


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """TLS from `*_TLS_CERT_FILE`/`*_TLS_KEY_FILE`, mTLS with `*_TLS_CLIENT_CA_FILE`; None = plaintext."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return tls.server_credentials(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)


@dataclass
class GrpcServer:
    """A grpc.aio server with health, reflection and the interceptor chain, and its shutdown sequence."""

    settings: ServiceSettings
    domain: str
    service_names: Sequence[str]
    register: Callable[[grpc.aio.Server], None]
    inner_interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
    outer_interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
    on_stopped: Sequence[Callable[[], Awaitable[None]]] = ()
    # The service's database: probed for health, its pool exported as gauges.
    engine: AsyncEngine | None = None
    health: HealthService = field(default_factory=HealthService)
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    port: int = 0
    metrics_port: int = 0
    # SERVING only once each is met (the data service's signing keys); logged while waiting.
    prerequisites: Sequence[Prerequisite] = ()
    not_ready_log_interval_seconds: float = 30.0
    _server: grpc.aio.Server | None = None
    _stopping: bool = False
    _probe: DatabaseProbe | None = None
    _drain: DrainGate | None = None
    _metrics_endpoint: MetricsEndpoint | None = None
    _database_serving: bool = False
    _readiness_task: asyncio.Task[None] | None = None

    async def start(self, listen: str | None = None) -> int:
        """Bind and start serving; returns the bound port (useful with port 0)."""
        self._drain = DrainGate(self.service_names)
        interceptors = [
            # Outermost: a call counts as in progress from the moment it reaches Python.
            self._drain.calls,
            RequestContextInterceptor(),
            MetricsInterceptor(self.metrics, [*self.service_names, "grpc.health.v1.Health"]),
            *self.outer_interceptors,
            ErrorInterceptor(self.domain),
            ConcurrencyLimits(
                max_unary=self.settings.max_concurrent_rpcs, max_streams=self.settings.max_concurrent_streams
            ),
            self._drain,
            *self.inner_interceptors,
        ]
        max_bytes = self.settings.max_message_bytes
        # No `maximum_concurrent_rpcs`: it counts streams and unary calls alike (ConcurrencyLimits).
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", max_bytes),
                ("grpc.max_send_message_length", max_bytes),
                # Oversized metadata (a forged giant token) is refused by the transport itself.
                ("grpc.max_metadata_size", 16 * 1024),
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.keepalive_timeout_ms", 20_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.so_reuseport", 0),
                ("grpc.max_concurrent_streams", self.settings.max_streams_per_connection),
                ("grpc.max_connection_age_ms", int(self.settings.max_connection_age_seconds * 1000)),
                (
                    "grpc.max_connection_age_grace_ms",
                    int(self.settings.max_connection_age_grace_seconds * 1000),
                ),
            ],
        )
        self.register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        enable_reflection(server, [*self.service_names, "grpc.health.v1.Health"])
        address = listen or self.settings.listen
        credentials = server_credentials(self.settings)
        if credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, credentials)
        if self.port == 0:
            raise RuntimeError(f"could not bind {address}")
        await server.start()
        self._server = server
        if self.engine is None:
            await self.set_serving(True)
        else:
            self.metrics.watch_pool(self.engine)
            self._probe = DatabaseProbe(
                self.engine,
                self._database_reachable,
                interval=self.settings.db_health_interval_seconds,
                timeout=self.settings.db_health_timeout_seconds,
                application_name=f"{database_application_name(self.settings)}-health",
            )
            # The first answer decides the initial health; later ones come from the background probe.
            await self._probe.probe_once()
            self._probe.start()
        self._watch_prerequisites()
        self._start_metrics_endpoint(address)
        log.info(
            "server_started",
            address=address,
            port=self.port,
            tls=credentials is not None,
            mtls=credentials is not None and self.settings.tls_client_ca_file is not None,
            metrics_port=self.metrics_port or None,
            services=list(self.service_names),
        )
        return self.port

    def _start_metrics_endpoint(self, address: str) -> None:
        if self.settings.metrics_port == 0:
            return
        endpoint = MetricsEndpoint(self.metrics.registry)
        host = metrics_host(address)
        try:
            self.metrics_port = endpoint.start(host, self.settings.metrics_port)
        except OSError as exc:
            # Losing metrics is no reason to refuse RPCs; the error says which port to fix.
            log.error("metrics_unavailable", host=host, port=self.settings.metrics_port, error=str(exc))
            return
        self._metrics_endpoint = endpoint

    def _watch_prerequisites(self) -> None:
        pending = [p for p in self.prerequisites if not p.met]
        if pending:
            self._readiness_task = asyncio.create_task(self._await_prerequisites(pending), name="readiness")

    async def _await_prerequisites(self, pending: list[Prerequisite]) -> None:
        for prerequisite in pending:
            while not prerequisite.met:
                log.warning(
                    "not_ready",
                    waiting_for=prerequisite.name,
                    detail=prerequisite.waiting_for,
                    health="NOT_SERVING",
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.not_ready_log_interval_seconds):
                        await prerequisite.wait()
        log.info("ready", met=[p.name for p in pending])
        await self.set_serving(self._database_serving)

    async def _database_reachable(self, reachable: bool) -> None:
        self.metrics.set_dependency_up("database", reachable)
        await self.set_serving(reachable)

    async def set_serving(self, serving: bool) -> None:
        """Health of "" and of every service name; stays NOT_SERVING once shutdown began, and until every
        prerequisite is met."""
        self._database_serving = serving
        ready = all(p.met for p in self.prerequisites)
        status = SERVING if serving and ready and not self._stopping else NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def stop(
        self, grace: float | None = None, *, drain_at_least: float = 0.0, leave_transport: bool = False
    ) -> None:
        """SIGTERM path: NOT_SERVING → refuse new calls (UNAVAILABLE) while the running ones finish →
        stop the gRPC server → close resources. Everything within `grace` seconds.

        The drain lasts `drain_at_least` seconds even when nothing is running, so that load balancers
        polling health see NOT_SERVING (and stop sending) before the server goes away.

        `leave_transport`: for a process that exits right after (see `run_until_signalled`), the gRPC
        server is not stopped. grpc.aio's `stop()` cancels the calls that reach the transport in its
        last moments, whatever the grace (the client sees CANCELLED, which it must not retry blindly);
        when the process exits instead, their connections close and clients see UNAVAILABLE, which they
        retry. Nothing is lost: every call that was in progress has ended by then.
        """
        if self._server is None or self._stopping:
            return
        self._stopping = True
        grace = grace if grace is not None else self.settings.shutdown_grace_seconds
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        ends_at = started_at + grace
        await self.health.enter_graceful_shutdown()
        assert self._drain is not None
        self._drain.close()
        log.info("server_stopping", grace_seconds=grace, in_progress=self._drain.in_progress)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.sleep(min(drain_at_least, grace))
                await self._drain.drained()
        log.info(
            "server_drained",
            drain_seconds=round(loop.time() - started_at, 3),
            in_progress=self._drain.in_progress,
        )
        if self._probe is not None:
            await self._probe.stop()
        if self._readiness_task is not None:
            self._readiness_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._readiness_task
        if not leave_transport:
            # Whatever is still running now (a call that outlived the grace period) gets what is left of
            # the grace period, then is cancelled.
            await self._server.stop(max(0.0, ends_at - loop.time()))
        for close in self.on_stopped:
            await close()
        if self._metrics_endpoint is not None:
            await self._metrics_endpoint.stop()
        log.info("server_stopped")

    async def wait_for_termination(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()


async def run_until_signalled(
    server: GrpcServer, *, ready: Callable[[int], None] | None = None, exit_when_stopped: bool = False
) -> None:
    """Start `server`, serve until SIGTERM or SIGINT, then stop it gracefully.

    With `exit_when_stopped` (the services' `serve` command) the process then exits with code 0
    straight away, leaving the gRPC transport to the operating system (see `GrpcServer.stop`).
    """
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        port = await server.start()
        if ready is not None:
            ready(port)
        await stop_requested.wait()
    except BaseException:
        await server.stop()
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    drain_at_least = server.settings.shutdown_drain_seconds
    if not exit_when_stopped:
        await server.stop(drain_at_least=drain_at_least)
        return
    await server.stop(drain_at_least=drain_at_least, leave_transport=True)
    # Not through the interpreter's shutdown: that would cancel the calls still arriving (CANCELLED)
    # and stop the gRPC server, which does the same.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
