"""`make soak`: a bounded mixed load for five minutes while each service's memory is sampled.

Bounded means a fixed request rate well below saturation (h2load `--rps`), so what grows is memory the
services keep (caches without bounds, leaked tasks, log buffers), not queues of work they cannot keep
up with. The first fifth of the run is warm-up (pools fill, caches and allocator arenas settle); the
verdict compares the median RSS of the second fifth with the median of the last fifth.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tessera.inventory.v1 import inventory_pb2

from bench import client, h2load, seed
from bench.h2load import Load, Target, VerificationFailed
from bench.plan import Plan
from bench.processes import ServerProcess
from bench.report import Check, Report
from bench.run import CREATE_ORDER_METHOD, LIST_PRODUCTS_METHOD, READ_PRODUCT, log
from bench.stack import Stack, databases, migrate, running_stack

TOLERANCE = 0.10
SOAK_PRODUCTS = 20_000
# Orders go to products far from the first page, so ListProducts answers stay the same size.
ORDERED_PRODUCTS = range(1_000, 2_000)


@dataclass
class Stream:
    """One kind of call at a fixed rate for the whole soak."""

    name: str
    target: Target
    rate: int  # calls per second, over `clients` connections
    clients: int = 2
    varying: bool = False  # answers carry fresh timestamps or tokens
    expected: int | tuple[int, int] = 0
    results: list[h2load.H2LoadResult] = field(default_factory=list)


def streams(stack: Stack, token: str, quick: bool) -> list[Stream]:
    data, auth = stack.data.port, stack.auth.port
    get = inventory_pb2.GetProductRequest(id=str(seed.product_id(READ_PRODUCT)))
    listing = inventory_pb2.ListProductsRequest(page_size=50)
    products = [i for i in ORDERED_PRODUCTS if seed.orderable(i)]
    order = inventory_pb2.CreateOrderRequest(
        lines=[
            inventory_pb2.CreateOrderRequest.Line(product_id=str(seed.product_id(i)), quantity=1)
            for i in products[:3]
        ]
    )
    scale = 1 if not quick else 0.25
    return [
        Stream(
            "GetProduct",
            Target(data, "/tessera.inventory.v1.InventoryService/GetProduct", get.SerializeToString(), token),
            int(200 * scale),
        ),
        Stream(
            "ListProducts",
            Target(data, LIST_PRODUCTS_METHOD, listing.SerializeToString(), token),
            int(20 * scale) or 2,
        ),
        Stream(
            "CreateOrder",
            Target(data, CREATE_ORDER_METHOD, order.SerializeToString(), token),
            int(20 * scale) or 2,
            varying=True,
        ),
        Stream("GetJwks", Target(auth, client.GET_JWKS_METHOD, b""), int(40 * scale) or 2),
        Stream(
            "Token (password)",
            Target(auth, client.TOKEN_METHOD, client.password_grant(stack.email, stack.password)),
            2,
            clients=1,
        ),
    ]


async def _sample_memory(
    servers: list[ServerProcess], every_s: float, until: float
) -> dict[str, list[tuple[float, int]]]:
    samples: dict[str, list[tuple[float, int]]] = {server.name: [] for server in servers}
    started = time.monotonic()
    while time.monotonic() < until:
        for server in servers:
            server.ensure_running()
            samples[server.name].append((round(time.monotonic() - started, 1), server.rss_bytes()))
        await asyncio.sleep(every_s)
    return samples


def memory_check(name: str, series: list[tuple[float, int]]) -> Check:
    values = [rss for _, rss in series]
    fifth = max(1, len(values) // 5)
    reference = statistics.median(values[fifth : 2 * fifth])
    final = statistics.median(values[-fifth:])
    change = (final - reference) / reference
    mib = 1024 * 1024
    return Check(
        f"{name} RSS flat over the soak",
        f"{reference / mib:.1f} → {final / mib:.1f} MiB ({change:+.1%}; peak {max(values) / mib:.1f})",
        f"within ±{TOLERANCE:.0%}",
        abs(change) <= TOLERANCE,
    )


async def soak(plan: Plan, results: Path) -> Report:
    report = Report(kind="soak", quick=plan.quick, plan=plan.as_dict())
    with tempfile.TemporaryDirectory(prefix="tessera-soak-") as tmp:
        folder = Path(tmp)
        async with databases() as (auth_dsn, data_dsn):
            await migrate(auth_dsn, data_dsn, folder)
            await seed.seed(data_dsn, SOAK_PRODUCTS if not plan.quick else plan.products)
            async with running_stack(auth_dsn, data_dsn, folder, baselines=False) as stack:
                token = await stack.token()
                calls = streams(stack, token, plan.quick)
                for stream in calls:
                    sizes = await client.response_sizes(stream.target, 2)
                    stream.expected = client.size_expectation(sizes, varying=stream.varying)
                log(f"soak: {plan.soak_seconds:g} s of {', '.join(f'{s.name} {s.rate}/s' for s in calls)}")
                until = time.monotonic() + plan.soak_seconds
                sampler = asyncio.create_task(_sample_memory(stack.services, plan.soak_sample_seconds, until))
                loads = [
                    h2load.run(
                        stream.target,
                        Load(
                            clients=stream.clients,
                            streams=1,
                            duration_s=plan.soak_seconds,
                            rate_per_client=max(1, stream.rate // stream.clients),
                        ),
                        timeout_s=plan.soak_seconds + 120,
                    )
                    for stream in calls
                ]
                outcomes = await asyncio.gather(*loads)
                memory = await sampler
                for stream, outcome in zip(calls, outcomes, strict=True):
                    try:
                        outcome.verify(stream.expected)
                        passed, measured = True, f"{outcome.succeeded} calls OK"
                    except VerificationFailed as failure:
                        passed, measured = False, str(failure)
                    report.checks.append(
                        Check(f"soak calls really succeeded: {stream.name}", measured, "all OK", passed)
                    )
                invariants = await seed.check_invariants(stack.data_dsn)
                report.checks.append(
                    Check(
                        "no oversell after the soak",
                        f"{invariants.negative} negative, {invariants.mismatched} mismatched",
                        "0 and 0",
                        invariants.hold,
                    )
                )
            report.targets = [memory_check(name, series) for name, series in memory.items()]
            report.extra["rss_samples"] = {
                name: [{"t": t, "rss_bytes": rss} for t, rss in series] for name, series in memory.items()
            }
    output = report.write(results)
    log(f"results written to {output}")
    return report
