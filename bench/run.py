"""`make bench`: every configuration, interleaved, repeated; medians, paired ratios, pass/fail.

One repetition runs each configuration once, in a rotated order (so no configuration always follows the
same neighbour); the table shows the median of the repetitions, and every target is the median of the
per-repetition ratios of two configurations measured minutes apart at most.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jwt
from tessera.inventory.v1 import inventory_pb2

from bench import catalog_import, client, explain, h2load, seed
from bench.baselines import ECHO_METHOD
from bench.catalog import GET_PRODUCT_METHOD
from bench.h2load import Load, Target, VerificationFailed
from bench.plan import Plan
from bench.processes import CpuMeter, Profiler, ServerProcess, top_frames
from bench.report import Check, Report, Sample
from bench.stack import Stack, databases, migrate, running_stack

INVENTORY = "/tessera.inventory.v1.InventoryService"
LIST_PRODUCTS_METHOD = f"{INVENTORY}/ListProducts"
CREATE_ORDER_METHOD = f"{INVENTORY}/CreateOrder"
CREATE_PRODUCT_METHOD = f"{INVENTORY}/CreateProduct"


def throughput(calls: int) -> Load:
    """`calls` calls over 16 connections with 4 streams each, as BENCHMARKING.md's reference figures."""
    return Load(requests=calls, clients=16, streams=4)


# Product numbers (see bench.seed): one read by GetProduct, one ordered by every client of the hot run.
READ_PRODUCT = 2
HOT_PRODUCT = 1


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Measured:
    """A target with the response size a real client saw, so h2load's byte count can be checked."""

    target: Target
    expected: int | tuple[int, int]


async def measured(target: Target, calls: int = 3) -> Measured:
    return Measured(target, client.size_expectation(await client.response_sizes(target, calls)))


class Bench:
    """The configurations of one run against one stack."""

    def __init__(self, stack: Stack, plan: Plan, report: Report, profile: Path | None = None) -> None:
        self.stack = stack
        self.profiler = Profiler(profile)
        self.round = 0
        self.echo, self.pk = stack.baselines
        self.plan = plan
        self.report = report
        self.token = ""
        self.owner = ""
        self.deep_token = ""
        self.storm_users: list[tuple[str, str]] = []

    async def prepare(self) -> None:
        """A token, whose orders are whose, and the page token of the deep page."""
        await self.refresh_token()
        self.owner = owner_of(self.token)
        await self.verification_has_teeth()
        self.storm_users = await self.register_storm_users()
        log(f"walking the listing to page {self.plan.deep_page:,} for its token")
        self.deep_token = await self.deep_page_token()

    async def register_storm_users(self) -> list[tuple[str, str]]:
        """The accounts of the login storm, registered through the API as customers sign up."""
        users = [
            (f"storm-{n}@example.com", secrets.token_urlsafe(18)) for n in range(self.plan.storm_clients)
        ]
        await asyncio.gather(
            *(
                client.call_raw(
                    Target(self.stack.auth.port, client.REGISTER_METHOD, client.registration(email, password))
                )
                for email, password in users
            )
        )
        return users

    async def verification_has_teeth(self) -> None:
        """h2load reports calls without a token as succeeded; the byte check must say otherwise."""
        honest = await measured(self.get_product())
        tokenless = Target(honest.target.port, honest.target.method, honest.target.request, token=None)
        result = await h2load.run(tokenless, Load(requests=50, clients=2, streams=2))
        try:
            result.verify(honest.expected)
            caught, why = False, "accepted"
        except VerificationFailed as failure:
            caught, why = True, str(failure)
        self.report.checks.append(
            Check(
                f"verification catches gRPC errors (h2load: {result.succeeded}/{result.done} "
                "'succeeded' without a token)",
                "rejected" if caught else why,
                "rejected",
                caught,
            )
        )

    # -- the targets -------------------------------------------------------------------------------

    async def refresh_token(self) -> None:
        self.token = await self.stack.token()

    def inventory(self, method: str, request: bytes) -> Target:
        return Target(port=self.stack.data.port, method=method, request=request, token=self.token)

    def get_product(self, port: int | None = None) -> Target:
        request = inventory_pb2.GetProductRequest(id=str(seed.product_id(READ_PRODUCT))).SerializeToString()
        return Target(
            port=self.stack.data.port if port is None else port,
            method=GET_PRODUCT_METHOD,
            request=request,
            token=self.token if port is None else None,
        )

    def list_products(self, page_token: str = "") -> Target:
        request = inventory_pb2.ListProductsRequest(page_size=self.plan.page_size, page_token=page_token)
        return self.inventory(LIST_PRODUCTS_METHOD, request.SerializeToString())

    def create_order(self, product: int) -> Target:
        request = inventory_pb2.CreateOrderRequest(
            lines=[
                inventory_pb2.CreateOrderRequest.Line(product_id=str(seed.product_id(product)), quantity=1)
            ]
        )
        return self.inventory(CREATE_ORDER_METHOD, request.SerializeToString())

    def spread_products(self) -> list[int]:
        """One orderable product per client, spaced evenly over the first `order_products` products."""
        candidates = [i for i in range(3, self.plan.order_products + 1) if seed.orderable(i)]
        step = len(candidates) / self.plan.order_clients
        return [candidates[int(k * step)] for k in range(self.plan.order_clients)]

    async def deep_page_token(self) -> str:
        """The token of page `deep_page`, reached by walking the listing as a client would.

        Big pages get most of the way (a token is bound to the filters, not to the page size), pages of
        the measured size the rest.
        """
        rows_before = (self.plan.deep_page - 1) * self.plan.page_size
        token, walked, big = "", 0, 1000
        while walked < rows_before:
            size = big if rows_before - walked >= big else self.plan.page_size
            request = inventory_pb2.ListProductsRequest(page_size=size, page_token=token)
            raw = await client.call_raw(self.inventory(LIST_PRODUCTS_METHOD, request.SerializeToString()))
            page = inventory_pb2.ListProductsResponse.FromString(raw)
            if len(page.products) != size or not page.next_page_token:
                raise RuntimeError(f"the listing ended after {walked + len(page.products)} products")
            token, walked = page.next_page_token, walked + size
        return token

    # -- measuring -----------------------------------------------------------------------------------

    async def measure(
        self,
        key: str,
        label: str,
        measured_target: Measured,
        load: Load,
        servers: Sequence[ServerProcess],
        *,
        warm_up: bool = True,
    ) -> Sample | None:
        """One verified h2load run, recorded under `key`; None (and a failed check) if not verified."""
        figure = self.report.figure(key, label, describe(load))
        if warm_up:
            await h2load.run(
                measured_target.target, Load(requests=self.plan.warm_up_calls, clients=4, streams=4)
            )
        meter = CpuMeter(servers)
        if servers:
            await self.profiler.start(servers[0], f"{key}-{self.round + 1}")
        meter.start()
        result = await h2load.run(measured_target.target, load)
        cpu = meter.stop()
        await self.profiled(key)
        try:
            result.verify(measured_target.expected)
        except VerificationFailed as failure:
            self.unverified(label, str(failure))
            return None
        sample = Sample.of(result, cpu)
        figure.samples.append(sample)
        return sample

    async def profiled(self, key: str) -> None:
        """Keep the profile of the run that just ended (with `--profile`), and its top frames."""
        path = await self.profiler.stop()
        if path is not None:
            profiles = self.report.extra.setdefault("profiles", {})
            profiles[f"{key}-{self.round + 1}"] = {"file": str(path), "top": top_frames(path)}

    def unverified(self, label: str, why: str) -> None:
        log(f"NOT VERIFIED {label}: {why}")
        self.report.checks.append(Check(f"calls really succeeded: {label}", why, "every call OK", False))

    # -- configurations ----------------------------------------------------------------------------

    async def baseline_echo(self) -> None:
        target = Target(port=self.echo.port, method=ECHO_METHOD, request=self.get_product().request)
        load = throughput(self.plan.echo_calls)
        await self.measure(
            "echo", "baseline A: bare grpc.aio echo", Measured(target, len(target.request)), load, [self.echo]
        )

    async def baseline_primary_key(self) -> None:
        target = await measured(self.get_product(port=self.pk.port))
        load = throughput(self.plan.primary_key_calls)
        await self.measure("pk", "baseline B: raw asyncpg PK SELECT", target, load, [self.pk])

    async def get_product_full_stack(self) -> None:
        target = await measured(self.get_product())
        load = throughput(self.plan.get_product_calls)
        await self.measure("get_product", "GetProduct, full stack", target, load, [self.stack.data])

    async def list_first_page(self) -> None:
        target = await measured(self.list_products())
        load = throughput(self.plan.list_calls)
        await self.measure("list_page_1", "ListProducts page 1", target, load, [self.stack.data])

    async def list_deep_page(self) -> None:
        target = await measured(self.list_products(self.deep_token))
        load = throughput(self.plan.list_calls)
        label = f"ListProducts page {self.plan.deep_page:,}".replace(",", " ")
        await self.measure("list_page_deep", label, target, load, [self.stack.data])

    async def create_orders(self, key: str, label: str, products: Sequence[int]) -> None:
        """One h2load process per client (h2load sends one body per process), each ordering one unit of
        its product `order_calls_per_client` times; verified by the orders that reached the database."""
        targets = [self.create_order(product) for product in products]
        sizes: list[int] = []
        for target in {t.request: t for t in targets}.values():
            sizes += await client.response_sizes(target, calls=2)
        # Order timestamps vary in encoded length; the database count below is the exact check.
        expected = client.size_expectation(sizes, varying=True)
        calls = self.plan.order_calls_per_client
        figure = self.report.figure(key, label, f"{len(targets)} x (-n {calls} -c 1 -m 1)")
        before = await seed.count_rows(self.stack.data_dsn, "orders", "owner = $1", self.owner)
        meter = CpuMeter([self.stack.data])
        await self.profiler.start(self.stack.data, f"{key}-{self.round + 1}")
        meter.start()
        results = await h2load.run_many(targets, Load(requests=calls, clients=1, streams=1))
        cpu = meter.stop()
        await self.profiled(key)
        result = h2load.merge(results)
        placed = await seed.count_rows(self.stack.data_dsn, "orders", "owner = $1", self.owner) - before
        try:
            result.verify(expected)
            if placed != result.succeeded:
                raise VerificationFailed(
                    f"h2load counted {result.succeeded} calls, the database has {placed} new orders"
                )
        except VerificationFailed as failure:
            self.unverified(label, str(failure))
            return
        figure.samples.append(Sample.of(result, cpu))

    async def orders_spread(self) -> None:
        products = self.spread_products()
        spread = f"{self.plan.order_products:,}".replace(",", " ")
        label = f"CreateOrder, {len(products)} clients over {spread} products"
        await self.create_orders("order_spread", label, products)

    async def orders_hot(self) -> None:
        label = f"CreateOrder, {self.plan.order_clients} clients, 1 hot product"
        await self.create_orders("order_hot", label, [HOT_PRODUCT] * self.plan.order_clients)

    def jwks_load(self) -> Load:
        return Load(
            clients=self.plan.jwks_clients,
            streams=1,
            duration_s=self.plan.jwks_seconds,
            rate_per_client=self.plan.jwks_rate_per_client,
        )

    async def jwks_idle(self) -> None:
        target = await measured(Target(port=self.stack.auth.port, method=client.GET_JWKS_METHOD, request=b""))
        await self.measure(
            "jwks_idle", "GetJwks, idle", target, self.jwks_load(), [self.stack.auth], warm_up=False
        )

    async def jwks_during_login_storm(self) -> None:
        """GetJwks at the same low rate while `storm_clients` users log in back to back, each on its own
        connection (argon2 saturated). One account per client: a single account with many logins in
        flight is what the brute-force throttle is there to stop."""
        jwks = await measured(Target(port=self.stack.auth.port, method=client.GET_JWKS_METHOD, request=b""))
        logins = [
            Target(self.stack.auth.port, client.TOKEN_METHOD, client.password_grant(email, password))
            for email, password in self.storm_users
        ]
        sizes = [size for login in logins for size in await client.response_sizes(login, calls=1)]
        login_expected = client.size_expectation(sizes)
        storm_figure = self.report.figure(
            "token", "Token (password grant), login storm", f"{len(logins)} users x (-c 1 -m 1)"
        )
        meter = CpuMeter([self.stack.auth])
        meter.start()
        calm = asyncio.Event()
        storm = asyncio.create_task(self.login_storm(logins, calm))
        await asyncio.sleep(1.0)  # let the storm fill the argon2 workers first
        await self.measure(
            "jwks_storm", "GetJwks, during the login storm", jwks, self.jwks_load(), [], warm_up=False
        )
        calm.set()
        result = await storm
        cpu = meter.stop()
        try:
            result.verify(login_expected)
        except VerificationFailed as failure:
            self.unverified("Token (password grant)", str(failure))
            return
        storm_figure.samples.append(Sample.of(result, cpu))

    @staticmethod
    async def login_storm(logins: Sequence[Target], calm: asyncio.Event) -> h2load.H2LoadResult:
        """Every user logs in over and over until `calm` is set.

        In short complete rounds rather than for a duration: h2load cuts calls still in flight when a
        duration ends, and the auth service rightly counts an abandoned login as a failed attempt (enough
        of them lock the account and throttle the peer).
        """
        started = time.perf_counter()
        rounds: list[h2load.H2LoadResult] = []
        while not calm.is_set():
            rounds += await h2load.run_many(logins, Load(requests=2, clients=1, streams=1))
        result = h2load.merge(rounds)
        result.elapsed_s = time.perf_counter() - started
        return result

    def steps(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Every configuration, under the name `--only` selects it by."""
        return [
            ("echo", self.baseline_echo),
            ("pk", self.baseline_primary_key),
            ("get_product", self.get_product_full_stack),
            ("list_page_1", self.list_first_page),
            ("list_page_deep", self.list_deep_page),
            ("order_spread", self.orders_spread),
            ("order_hot", self.orders_hot),
            ("jwks_idle", self.jwks_idle),
            ("jwks_storm", self.jwks_during_login_storm),
        ]

    async def repetition(self, index: int, only: frozenset[str] = frozenset()) -> None:
        self.round = index
        await self.refresh_token()
        steps = [(name, step) for name, step in self.steps() if not only or name in only]
        shift = index % len(steps)
        for name, step in steps[shift:] + steps[:shift]:
            log(f"repetition {index + 1}/{self.plan.repetitions}: {name}")
            await step()
            self.stack.ensure_running()

    # -- correctness checks after the load ----------------------------------------------------------

    async def sell_out(self) -> None:
        """Many clients race for the last units of one product: exactly the stock is sold, no more."""
        stock = self.plan.sell_out_stock
        create = inventory_pb2.CreateProductRequest(
            product=inventory_pb2.Product(
                sku="BENCH-SELL-OUT",
                name="Sell-out",
                price=inventory_pb2.Money(currency_code="EUR", minor_units=1),
            ),
            initial_stock=stock,
        )
        raw = await client.call_raw(self.inventory(CREATE_PRODUCT_METHOD, create.SerializeToString()))
        product = inventory_pb2.Product.FromString(raw)
        request = inventory_pb2.CreateOrderRequest(
            lines=[inventory_pb2.CreateOrderRequest.Line(product_id=product.id, quantity=1)]
        ).SerializeToString()
        clients = self.plan.order_clients
        calls_each = max(1, 3 * stock // clients)
        results = await h2load.run_many(
            [self.inventory(CREATE_ORDER_METHOD, request)] * clients,
            Load(requests=calls_each, clients=1, streams=1),
        )
        result = h2load.merge(results)
        sold = await seed.count_rows(self.stack.data_dsn, "order_lines", "product_id = $1::uuid", product.id)
        left = await seed.count_rows(
            self.stack.data_dsn, "products", "id = $1::uuid AND stock_on_hand = 0", product.id
        )
        self.report.checks.append(
            Check(
                f"sell-out: {result.done} orders race for {stock} units",
                f"{sold} sold, stock {'0' if left else 'not 0'}",
                f"exactly {stock} sold, stock 0",
                sold == stock and left == 1,
            )
        )

    async def invariants(self) -> None:
        found = await seed.check_invariants(self.stack.data_dsn)
        self.report.checks.append(
            Check(
                "no oversell: stock ≥ 0 and stock = Σ movements (every product)",
                f"{found.negative} negative, {found.mismatched} mismatched",
                "0 and 0",
                found.hold,
            )
        )


def describe(load: Load) -> str:
    if load.duration_s:
        rate = f" @{load.rate_per_client}/s each" if load.rate_per_client else ""
        return f"-c {load.clients} -m {load.streams}{rate}, {load.duration_s:g} s"
    return f"-n {load.requests} -c {load.clients} -m {load.streams}"


def paired_ratios(report: Report, numerator: str, denominator: str, attribute: str) -> list[float]:
    """numerator/denominator per repetition (the i-th samples of both were taken in the same one)."""
    top, bottom = report.figures.get(numerator), report.figures.get(denominator)
    if top is None or bottom is None:
        return []
    pairs = zip(top.samples, bottom.samples, strict=False)
    return [
        float(getattr(a, attribute)) / float(getattr(b, attribute))
        for a, b in pairs
        if float(getattr(b, attribute)) > 0
    ]


def ratio_check(
    report: Report,
    name: str,
    numerator: str,
    denominator: str,
    attribute: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    stretch: float | None = None,
) -> Check:
    ratios = paired_ratios(report, numerator, denominator, attribute)
    if not ratios:
        return Check(name, "not measured", "", None)
    value = statistics.median(ratios)
    if at_least is not None:
        required, passed = f"≥ {at_least:.0%}", value >= at_least
    else:
        assert at_most is not None
        required, passed = f"≤ {at_most:g}x", value <= at_most
    note = ""
    if stretch is not None:
        note = f"stretch {stretch:.0%}: {'met' if value >= stretch else 'not met'}"
        required += f" (stretch {stretch:.0%})"
    measured_text = f"{value:.0%}" if at_least is not None else f"{value:.2f}x"
    spread = ", ".join(f"{r:.2f}" for r in ratios)
    return Check(name, f"{measured_text} (runs: {spread})", required, passed, note)


def targets(report: Report) -> list[Check]:
    checks = [
        ratio_check(
            report, "GetProduct RPS / baseline B RPS", "get_product", "pk", "rps", at_least=0.5, stretch=0.7
        ),
    ]
    figure = report.figures.get("get_product")
    if figure and figure.samples:
        tail = [s.p99_ms / s.p50_ms for s in figure.samples if s.p50_ms > 0]
        value = statistics.median(tail)
        checks.append(Check("GetProduct p99 / p50", f"{value:.2f}x", "≤ 3x", value <= 3))
    checks += [
        ratio_check(
            report,
            "ListProducts deep page p50 / page 1 p50",
            "list_page_deep",
            "list_page_1",
            "p50_ms",
            at_most=1.3,
        ),
        ratio_check(
            report,
            "CreateOrder (spread) RPS / GetProduct RPS",
            "order_spread",
            "get_product",
            "rps",
            at_least=0.25,
        ),
        ratio_check(
            report, "GetJwks p99 during login storm / idle", "jwks_storm", "jwks_idle", "p99_ms", at_most=3.0
        ),
    ]
    return checks


def owner_of(token: str) -> str:
    """The `sub` of an access token: who the orders it places belong to."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return str(claims["sub"])


async def run(
    plan: Plan, results: Path, only: frozenset[str] = frozenset(), profile: Path | None = None
) -> Report:
    """Set up, measure every configuration `plan.repetitions` times, check, tear down, report."""
    report = Report(kind="bench", quick=plan.quick, plan=plan.as_dict())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        folder = Path(tmp)
        async with databases() as (auth_dsn, data_dsn):
            log("migrating (tessera-auth migrate, tessera-data migrate)")
            await migrate(auth_dsn, data_dsn, folder)
            log(f"seeding {plan.products:,} products and as many orders")
            timings = await seed.seed(data_dsn, plan.products)
            report.extra["seed_seconds"] = timings.seconds_by_table
            log(f"seeded in {timings.total_seconds:.1f} s")
            log("EXPLAIN of the list, filter and report queries")
            report.explains = await explain.explain_all(data_dsn, products=plan.products, quick=plan.quick)
            async with running_stack(auth_dsn, data_dsn, folder) as stack:
                bench = Bench(stack, plan, report, profile)
                await bench.prepare()
                for index in range(plan.repetitions):
                    await bench.repetition(index, only)
                log("sell-out race and ledger invariants")
                await bench.sell_out()
                await bench.invariants()
            for server in stack.services:
                code = server.process.returncode
                report.checks.append(
                    Check(f"{server.name} exits 0 after SIGTERM", f"exit {code}", "exit 0", code == 0)
                )
            log(f"import-products of {plan.import_products:,} rows, then the same file again")
            imported = await catalog_import.measure_import(data_dsn, folder, plan.import_products)
            report.extra["import_products"] = imported.as_dict()
    report.targets = targets(report)
    report.targets.append(catalog_import.import_target(imported, timings.seconds_by_table, plan.products))
    judged = [entry for entry in report.explains if entry["judged"]]
    seq_scanned = [entry["name"] for entry in judged if not entry["index_only_access"]]
    report.targets.insert(
        0,
        Check(
            f"EXPLAIN at {plan.products:,} rows: no sequential scan ({len(judged)} statements)".replace(
                ",", " "
            ),
            "seq scan in: " + ", ".join(seq_scanned) if seq_scanned else "index scans only",
            "index scans only",
            not seq_scanned,
            "quick run: seq scans disabled, so this only proves an index exists" if plan.quick else "",
        ),
    )
    report.extra["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    output = report.write(results)
    log(f"results written to {output}")
    return report
