"""Page tokens are tamper-evident: forged, mutated or foreign tokens answer INVALID_ARGUMENT
(INVALID_PAGE_TOKEN), never INTERNAL, on every listing and both databases; replicas that share
DATA_PAGE_TOKEN_KEY accept each other's tokens. Hypothesis generates the tokens, derandomized
(TESSERA_FUZZ_EXAMPLES per listing, 45 by default; ~15 s for both databases).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_service.api.page_tokens import PageTokenSeal
from tests.reliability.conftest import DataRig, StartData
from tests.support.inventory import InventoryClient, create_product, expect_error, order_request, pb
from tests.support.status import details_of

T = TypeVar("T")
EXAMPLES = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "45"))
KEY = b"a page-token key that replicas share, 32+ bytes"
OTHER_KEY = b"the key of another deployment, also 32+ bytes!"
# The key that made ListOrders and ListStockMovements answer INTERNAL before tokens were signed.
OUT_OF_RANGE_TIME = "0001-01-01T00:00:00+14:00"


def body_of(token: str) -> dict[str, Any]:
    body = token.rpartition(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def encoded(body: object) -> str:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


Listing = Callable[[InventoryClient, str], Coroutine[Any, Any, Any]]


async def _seeded(rig: DataRig) -> dict[str, tuple[Listing, str]]:
    """Each listing with a real next-page token of its first page."""
    staff = rig.staff
    products = [await create_product(staff, stock=10) for _ in range(2)]
    for _ in range(2):
        await staff.CreateOrder(order_request((products[0].id, 1)))
    first = products[0].id

    async def products_page(client: InventoryClient, token: str) -> Any:
        return await client.ListProducts(pb.ListProductsRequest(page_size=1, page_token=token))

    async def movements_page(client: InventoryClient, token: str) -> Any:
        request = pb.ListStockMovementsRequest(product_id=first, page_size=1, page_token=token)
        return await client.ListStockMovements(request)

    async def orders_page(client: InventoryClient, token: str) -> Any:
        return await client.ListOrders(pb.ListOrdersRequest(page_size=1, page_token=token))

    seeded: dict[str, tuple[Listing, str]] = {}
    for name, listing in (
        ("ListProducts", products_page),
        ("ListStockMovements", movements_page),
        ("ListOrders", orders_page),
    ):
        token = (await listing(staff, "")).next_page_token
        assert token
        seeded[name] = (listing, token)
    return seeded


async def test_an_out_of_range_time_in_a_token_is_invalid_page_token_even_when_signed(
    start_data: StartData,
) -> None:
    rig = await start_data(page_token_key=KEY)
    seeded = await _seeded(rig)
    for name in ("ListOrders", "ListStockMovements"):
        listing, real = seeded[name]
        forged = encoded({"f": body_of(real)["f"], "k": [OUT_OF_RANGE_TIME, str(uuid.uuid4())]})
        # As the attack was made: the fingerprint recomputed, no signature.
        for token in (forged, f"{forged}.{real.rpartition('.')[2]}", PageTokenSeal(KEY).seal(forged)):
            details = await expect_error(listing(rig.staff, token), grpc.StatusCode.INVALID_ARGUMENT)
            assert (details.reason, details.bad_fields) == ("INVALID_PAGE_TOKEN", {"page_token"}), name


async def test_replicas_sharing_the_key_accept_each_others_tokens_and_no_one_else_does(
    start_data: StartData,
) -> None:
    first = await start_data(page_token_key=KEY)
    second = await start_data(page_token_key=KEY)
    stranger = await start_data(page_token_key=OTHER_KEY)
    seeded = await _seeded(first)
    for name, (listing, token) in seeded.items():
        assert (await listing(second.staff, token)).next_page_token is not None, name
        details = await expect_error(listing(stranger.staff, token), grpc.StatusCode.INVALID_ARGUMENT)
        assert details.reason == "INVALID_PAGE_TOKEN", name


def _mutations(real: str) -> st.SearchStrategy[str]:
    """Tokens near a real one and far from it, signed with the wrong key, or with the right key and
    anything at all inside."""
    body = real.rpartition(".")[0]
    position = st.integers(min_value=0, max_value=len(real) - 1)
    flipped = st.tuples(position, st.sampled_from("AZaz09-_.=")).map(
        lambda change: real[: change[0]] + change[1] + real[change[0] + 1 :]
    )
    values = st.one_of(
        st.text(max_size=40),
        st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
        st.sampled_from([OUT_OF_RANGE_TIME, "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00"]),
        st.uuids().map(str),
        st.integers(),
        st.none(),
    )
    inside = st.fixed_dictionaries(
        {"f": st.one_of(st.just(body_of(real)["f"]), st.text(max_size=20)), "k": st.lists(values, max_size=3)}
    ).map(encoded)
    return st.one_of(
        flipped.filter(lambda token: token != real),
        st.integers(min_value=1, max_value=len(real) - 1).map(lambda n: real[:n]),
        st.text(max_size=80).map(lambda tail: real + tail).filter(lambda token: token != real),
        st.text(max_size=200),
        st.binary(max_size=120).map(lambda b: base64.urlsafe_b64encode(b).decode()),
        inside.map(PageTokenSeal(OTHER_KEY).seal),
        inside.map(lambda token: token + "." + real.rpartition(".")[2]),
        inside.map(PageTokenSeal(KEY).seal),
        st.just(body),
    )


async def test_generated_page_tokens_are_invalid_page_token_never_internal(start_data: StartData) -> None:
    rig = await start_data(page_token_key=KEY)
    seeded = await _seeded(rig)
    loop = asyncio.get_running_loop()
    codes: Counter[str] = Counter()

    def on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    async def attempt(listing: Listing, token: str) -> grpc.aio.AioRpcError | None:
        try:
            await listing(rig.staff, token)
        except grpc.aio.AioRpcError as error:
            return error
        return None

    def checker(name: str, listing: Listing, real: str) -> Callable[[], None]:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(_mutations(real))
        def check(token: str) -> None:
            error = on_loop(attempt(listing, token))
            codes[error.code().name if error else "OK"] += 1
            if error is None:
                # Only a token this server signed gets through (the generator signs some on purpose).
                assert PageTokenSeal(KEY).seal(token.rpartition(".")[0]) == token, (name, token)
                return
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, token, error.details())
            details = details_of(error)
            assert (details.reason, details.bad_fields) == ("INVALID_PAGE_TOKEN", {"page_token"}), token

        return check

    for name, (listing, real) in seeded.items():
        await asyncio.to_thread(checker(name, listing, real))

    print(f"\nRELIABILITY page-token fuzz: {sum(codes.values())} tokens, {dict(codes)}")
    assert codes["INVALID_ARGUMENT"] > 0
    assert set(codes) <= {"OK", "INVALID_ARGUMENT"}
