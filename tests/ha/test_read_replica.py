"""GetProduct/ListProducts from a standby (`DATA_READ_REPLICA_URL`): stale by at most the documented
bound, and never for the caller's own writes.

Replay is paused on every standby of the test's Patroni cluster, so the replica falls behind for real
while the primary goes on (synchronous replication waits for the standby to store the WAL, not to apply
it).
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from shared.replicas import PROBE_INTERVAL_SECONDS
from tests.support.data_server import running_data_server
from tests.support.ha_cluster import HaCluster, ha_cluster
from tests.support.inventory import client_for, create_product, pb
from tests.support.logs import wait_until
from tests.support.tokens import CUSTOMER_SCOPES, STAFF_SCOPES, TokenMinter

MAX_LAG_SECONDS = 4.0
STALENESS_BOUND_SECONDS = MAX_LAG_SECONDS + 2 * PROBE_INTERVAL_SECONDS
# The time between a call's start and the server's choice of database, on a loaded machine.
SCHEDULING_SLACK_SECONDS = 0.5


async def test_replica_reads_are_stale_within_the_bound_and_never_for_the_callers_own_writes(
    tmp_path: Path,
) -> None:
    async with ha_cluster(tmp_path) as cluster:
        replica_url = cluster.data_url.replace(
            "target_session_attrs=read-write", "target_session_attrs=prefer-standby"
        )
        minter = TokenMinter()
        async with (
            running_data_server(
                cluster.data_url,
                minter.key_set(),
                read_replica_url=replica_url,
                read_replica_max_lag_seconds=MAX_LAG_SECONDS,
                read_your_writes_seconds=STALENESS_BOUND_SECONDS,
            ) as server,
            grpc.aio.insecure_channel(server.target) as channel,
        ):
            staff = client_for(channel, minter, "staff-1", STAFF_SCOPES)
            reader = client_for(channel, minter, "reader", CUSTOMER_SCOPES)
            product = await create_product(staff, stock=5, name="First name")
            # A write the standbys have replayed just before replay stops: the replica starts out fresh.
            await create_product(staff, stock=1)
            await wait_until(lambda: _standbys_see(cluster, 2), within=30, interval=0.1)
            await reader.GetProduct(pb.GetProductRequest(id=product.id))
            # The replica's pool is connected to a standby.
            standby_holds_replica_reads = [
                count
                for primary, count in (await cluster.service_connections("tessera-data-replica%")).values()
                if not primary
            ]
            assert sum(standby_holds_replica_reads) > 0

            assert await cluster.on_standbys("SELECT pg_wal_replay_pause()") != []
            renamed = pb.Product(id=product.id, name="Second name")
            await staff.UpdateProduct(
                pb.UpdateProductRequest(product=renamed, update_mask=FieldMask(paths=["name"]))
            )
            acknowledged = time.monotonic()

            # The writer reads its own write at once, though the replica has not replayed it.
            assert (await staff.GetProduct(pb.GetProductRequest(id=product.id))).name == "Second name"

            # Anyone else may read the old name, from the replica, but only within the bound; then the
            # stale replica is left for the primary.
            reads: list[tuple[float, str]] = []

            async def read_until_current() -> bool:
                started = time.monotonic()
                name = (await reader.GetProduct(pb.GetProductRequest(id=product.id))).name
                reads.append((started - acknowledged, name))
                return name == "Second name"

            await wait_until(read_until_current, within=STALENESS_BOUND_SECONDS + 10, interval=0.05)
            stale = [after for after, name in reads if name == "First name"]
            assert stale, "the first reads should come from the (paused) replica"
            assert max(stale) <= STALENESS_BOUND_SECONDS + SCHEDULING_SLACK_SECONDS, reads
            # …and also ListProducts.
            listed = await reader.ListProducts(pb.ListProductsRequest(page_size=10))
            assert product.id in {p.id for p in listed.products if p.name == "Second name"}

            await cluster.on_standbys("SELECT pg_wal_replay_resume()")
            print(
                f"\nRELIABILITY read replica: bound {STALENESS_BOUND_SECONDS:.1f} s "
                f"(max lag {MAX_LAG_SECONDS:.1f} s + 2 probes); replay paused: {len(stale)} stale reads, "
                f"the last {max(stale):.2f} s after the write; the writer's own read was current"
            )


async def _standbys_see(cluster: HaCluster, products: int) -> bool:
    counts = await cluster.on_standbys("SELECT count(*) FROM products", database="tessera_data")
    return bool(counts) and all(count == products for count in counts)
