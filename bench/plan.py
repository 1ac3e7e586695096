"""How big and how long: the full benchmark and the quick smoke run differ only in these numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Plan:
    quick: bool
    products: int  # seeded products, and as many seeded orders
    repetitions: int
    page_size: int
    deep_page: int  # the page number whose latency is compared with page 1
    # h2load -n per measured run (a short discarded run warms each target up first)
    echo_calls: int
    primary_key_calls: int
    get_product_calls: int
    list_calls: int
    warm_up_calls: int
    # CreateOrder: one h2load process per client, each placing this many orders one after the other
    order_clients: int
    order_products: int  # the products the clients' orders are spread over
    order_calls_per_client: int
    sell_out_stock: int  # the stock of the product the sell-out check empties
    # GetJwks latency at a fixed low rate, idle and while `storm_clients` log in without pause
    jwks_seconds: float
    jwks_clients: int
    jwks_rate_per_client: int
    storm_clients: int
    # Rows of the `tessera-data import-products` file whose throughput is measured
    import_products: int
    # Soak
    soak_seconds: float
    soak_sample_seconds: float

    @classmethod
    def full(cls) -> Plan:
        return cls(
            quick=False,
            products=1_000_000,
            repetitions=3,
            page_size=50,
            deep_page=10_000,
            echo_calls=30_000,
            primary_key_calls=15_000,
            get_product_calls=10_000,
            list_calls=3_000,
            warm_up_calls=1_000,
            order_clients=64,
            order_products=1_000,
            order_calls_per_client=50,
            sell_out_stock=500,
            jwks_seconds=8.0,
            jwks_clients=2,
            jwks_rate_per_client=50,
            storm_clients=8,
            import_products=1_000_000,
            soak_seconds=300.0,
            soak_sample_seconds=10.0,
        )

    @classmethod
    def smoke(cls) -> Plan:
        """Tiny numbers: proves the harness end to end in well under a minute; the figures mean nothing."""
        return cls(
            quick=True,
            products=2_000,
            repetitions=1,
            page_size=50,
            deep_page=20,
            echo_calls=300,
            primary_key_calls=200,
            get_product_calls=200,
            list_calls=60,
            warm_up_calls=20,
            order_clients=8,
            order_products=100,
            order_calls_per_client=10,
            sell_out_stock=20,
            jwks_seconds=1.0,
            jwks_clients=1,
            jwks_rate_per_client=20,
            storm_clients=2,
            import_products=2_000,
            soak_seconds=6.0,
            soak_sample_seconds=1.0,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, assignments: list[str]) -> Plan:
        """This plan with `field=value` assignments applied (values parsed as the field's type)."""
        values = self.as_dict()
        for assignment in assignments:
            name, _, raw = assignment.partition("=")
            if name not in values or name == "quick":
                raise SystemExit(f"unknown plan field {name!r}; see bench/plan.py")
            kind = type(values[name])
            values[name] = kind(float(raw)) if kind is int else kind(raw)
        return Plan(**values)
