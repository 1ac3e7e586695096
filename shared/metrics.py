"""Prometheus metrics: the gRPC server series Go services export, database pool gauges, auth counters.

Every server owns a `ServiceMetrics` with its own registry, so two servers in one process (tests, or the
two services started side by side) never share or collide on a series. The names and labels of the gRPC
series are those of go-grpc-middleware's `grpc_prometheus`, so dashboards and alerts written for Go
services work unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import grpc
import prometheus_client
import structlog
from google.protobuf import descriptor_pool
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.interceptors._handlers import wrap_handler

log = structlog.get_logger("tessera.metrics")

# Go's client emits no `<name>_created` series; dashboards written for Go services do not expect them.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# prometheus.DefBuckets of the Go client, which grpc_prometheus uses for the handling-time histogram.
GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_METHOD_LABELS = ("grpc_type", "grpc_service", "grpc_method")


def grpc_type(client_streaming: bool, server_streaming: bool) -> str:
    """grpc_prometheus's names for the four kinds of RPC."""
    if client_streaming and server_streaming:
        return "bidi_stream"
    if client_streaming:
        return "client_stream"
    if server_streaming:
        return "server_stream"
    return "unary"


class ServiceMetrics:
    """All series of one server, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.started = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            _METHOD_LABELS,
            registry=self.registry,
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*_METHOD_LABELS, "grpc_code"),
            registry=self.registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled "
            "by the server.",
            _METHOD_LABELS,
            buckets=GO_DEFAULT_BUCKETS,
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "tessera_dependency_up",
            "1 while a dependency (the database; for the data service also the auth service's keys) "
            "answers, 0 while it does not.",
            ("dependency",),
            registry=self.registry,
        )

    def set_dependency_up(self, dependency: str, up: bool) -> None:
        self.dependency_up.labels(dependency).set(1 if up else 0)

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Export the engine's connection pool gauges, read at scrape time."""
        self.registry.register(PoolCollector(engine))


class PoolCollector(Collector):
    """Reads the SQLAlchemy pool's counters when Prometheus scrapes: no background task, never stale."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Describing without reading the pool lets the registry check names at registration.
        return [GaugeMetricFamily(name, documentation) for name, documentation, _ in self._gauges()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool: Any = self._engine.pool
        for name, documentation, read in self._gauges():
            reader = getattr(pool, read, None)
            if reader is None:
                # NullPool and StaticPool keep no such counts; export nothing rather than a lie.
                continue
            value = reader()
            if read == "overflow":
                # QueuePool counts overflow from -pool_size up; below zero means "not in overflow".
                value = max(value, 0)
            yield GaugeMetricFamily(name, documentation, value=value)

    @staticmethod
    def _gauges() -> tuple[tuple[str, str, str], ...]:
        return (
            ("tessera_db_pool_checked_out", "Database connections currently lent to requests.", "checkedout"),
            ("tessera_db_pool_checked_in", "Idle database connections held by the pool.", "checkedin"),
            ("tessera_db_pool_size", "Connections the pool keeps open at most without overflow.", "size"),
            ("tessera_db_pool_overflow", "Connections open beyond the pool size.", "overflow"),
        )


class AuthMetrics:
    """Counters of the auth service's grants and brute-force throttling.

    Results are the RFC 6749 error codes the grant answered with (`invalid_grant`, `invalid_client`,
    `invalid_scope`, `invalid_request`), `success`, or `throttled`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.grants = Counter(
            "tessera_auth_grants_total",
            "Token grants by grant type and result.",
            ("grant_type", "result"),
            registry=registry,
        )
        self.throttled_attempts = Counter(
            "tessera_auth_throttled_attempts_total",
            "Token requests refused by the brute-force limits, by the limit that refused them.",
            ("limit",),
            registry=registry,
        )

    def grant(self, grant_type: str, result: str) -> None:
        """Count one grant: `grant_type` password / refresh_token / client_credentials."""
        self.grants.labels(grant_type, result).inc()

    def throttled(self, limit: str) -> None:
        """Count one refused attempt: `limit` account / client / peer."""
        self.throttled_attempts.labels(limit).inc()


class _MethodSeries:
    """One method's label children, made once so a call costs no label lookups."""

    __slots__ = ("_handled", "_labels", "handled_family", "handling", "started")

    def __init__(self, metrics: ServiceMetrics, method: str, kind: str) -> None:
        service, _, name = method[1:].partition("/")
        self._labels = (kind, service, name)
        self.started = metrics.started.labels(*self._labels)
        self.handling = metrics.handling_seconds.labels(*self._labels)
        self.handled_family = metrics.handled
        # Children per code appear on first use: most methods only ever see a few codes.
        self._handled: dict[str, Any] = {}

    def handled(self, code: str) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self.handled_family.labels(*self._labels, code)
        return child


def _code_name(context: grpc.aio.ServicerContext, default: str) -> str:
    code = context.code()
    return str(code.name) if isinstance(code, grpc.StatusCode) else default


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts started and handled RPCs and times them, for all four kinds of RPC."""

    def __init__(self, metrics: ServiceMetrics, service_names: Iterable[str] = ()) -> None:
        self._metrics = metrics
        self._methods: dict[str, _MethodSeries] = {}
        for service_name in service_names:
            self._prepare(service_name)

    def _prepare(self, service_name: str) -> None:
        """Create the series of every method of a service up front, so dashboards see zeros."""
        try:
            service = descriptor_pool.Default().FindServiceByName(service_name)
        except KeyError:
            return
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            kind = grpc_type(method.client_streaming, method.server_streaming)
            self._methods[path] = _MethodSeries(self._metrics, path, kind)

    def _series(self, method: str, handler: grpc.RpcMethodHandler) -> _MethodSeries:
        series = self._methods.get(method)
        if series is None:
            kind = grpc_type(handler.request_streaming, handler.response_streaming)
            # Only methods with a registered handler get here, so the label set stays bounded.
            series = self._methods[method] = _MethodSeries(self._metrics, method, kind)
        return series

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        series = self._series(handler_call_details.method, handler)

        def finish(context: grpc.aio.ServicerContext, started: float, default_code: str) -> None:
            series.handling.observe(time.perf_counter() - started)
            series.handled(_code_name(context, default_code)).inc()

        async def unary(call: Callable[[], Awaitable[Any]], context: grpc.aio.ServicerContext) -> Any:
            series.started.inc()
            started = time.perf_counter()
            outcome = "UNKNOWN"
            try:
                response = await call()
                outcome = "OK"
                return response
            except asyncio.CancelledError:
                outcome = "CANCELLED"
                raise
            finally:
                finish(context, started, outcome)

        async def stream(
            call: Callable[[], AsyncIterator[Any]], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            series.started.inc()
            started = time.perf_counter()
            outcome = "UNKNOWN"
            try:
                async for item in call():
                    yield item
                outcome = "OK"
            except (asyncio.CancelledError, GeneratorExit):
                outcome = "CANCELLED"
                raise
            finally:
                finish(context, started, outcome)

        return wrap_handler(handler, unary, stream)


class MetricsEndpoint:
    """Prometheus text at `http://HOST:PORT/metrics`, served from prometheus-client's own thread.

    The HTTP server never runs on the event loop, so a slow scraper cannot stall RPCs.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._server: Any = None
        self.port = 0

    def start(self, host: str, port: int) -> int:
        """Listen on `host:port` and return the bound port."""
        server, _thread = prometheus_client.start_http_server(port, addr=host, registry=self._registry)
        self._server = server
        self.port = int(server.server_port)
        return self.port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # shutdown() waits for the serving thread's poll loop to notice; off the event loop.
        await asyncio.to_thread(server.shutdown)
        server.server_close()


def metrics_host(listen: str) -> str:
    """The interface of the gRPC listener (`host:port`, `[v6]:port`), where metrics are served too."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    host = host.strip("[]")
    return host or "0.0.0.0"  # noqa: S104 - an empty host in a listen address means every interface
