"""The JWKS key source against a scripted fetcher and a manual clock (no network, no waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.jwk import public_jwk
from shared.jwks import AuthLinkState, JwksKeySource, KeysUnavailable
from shared.tokens import KeySet
from tests.support.logs import CapturedLogs, captured_logs


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScriptedAuthService:
    """Publishes `keys`; raises while `down`; counts fetches."""

    def __init__(self) -> None:
        self.keys = [Ed25519PrivateKey.generate()]
        self.down = False
        self.fetches = 0
        self.extra: list[dict[str, str]] = []
        self.gate: asyncio.Event | None = None

    async def fetch(self) -> Sequence[Mapping[str, str]]:
        self.fetches += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionError("auth service unreachable")
        return [*self.extra, *(public_jwk(key.public_key()) for key in self.keys)]

    def kid(self, index: int = 0) -> str:
        return public_jwk(self.keys[index].public_key())["kid"]


def make_source(
    auth: ScriptedAuthService,
    key_set: KeySet,
    clock: ManualClock,
    *,
    min_refetch: float = 5.0,
    startup_wait: float = 1.0,
    link_changes: list[bool] | None = None,
) -> JwksKeySource:
    return JwksKeySource(
        key_set,
        auth.fetch,
        refresh_seconds=300,
        min_refetch_seconds=min_refetch,
        startup_wait_seconds=startup_wait,
        clock=clock,
        on_link_change=None if link_changes is None else link_changes.append,
    )


@pytest.fixture
def logs() -> CapturedLogs:  # type: ignore[misc]
    with captured_logs() as events:
        yield events


async def test_start_loads_the_published_keys_and_reports_a_healthy_link() -> None:
    auth, key_set = ScriptedAuthService(), KeySet()
    source = make_source(auth, key_set, ManualClock())

    await source.start()
    try:
        assert set(key_set.keys) == {auth.kid()}
        assert source.state is AuthLinkState.HEALTHY
        assert not source.degraded
    finally:
        await source.stop()


async def test_start_gives_up_waiting_when_the_auth_service_is_not_up_and_tokens_get_unavailable(
    logs: CapturedLogs,
) -> None:
    auth, key_set = ScriptedAuthService(), KeySet()
    auth.down = True
    source = make_source(auth, key_set, ManualClock(), startup_wait=0)

    await source.start()
    try:
        assert not source.has_keys
        assert source.degraded
        assert logs.named("jwks_not_loaded_at_startup")
        with pytest.raises(KeysUnavailable):
            await source.refresh_for_unknown_kid()
    finally:
        await source.stop()


async def test_an_outage_keeps_the_last_good_keys_and_is_logged_once_until_the_link_returns(
    logs: CapturedLogs,
) -> None:
    auth, key_set, clock = ScriptedAuthService(), KeySet(), ManualClock()
    link_changes: list[bool] = []
    source = make_source(auth, key_set, clock, link_changes=link_changes)
    await source.refresh()

    auth.down = True
    for _ in range(3):
        assert not await source.refresh(cause="periodic")

    assert set(key_set.keys) == {auth.kid()}
    assert source.degraded
    assert source.consecutive_failures == 3
    [degraded] = logs.named("auth_link_degraded")
    assert degraded["log_level"] == "warning"
    assert degraded["error"] == "ConnectionError"

    auth.down = False
    clock.now += 30
    assert await source.refresh(cause="periodic")

    assert source.state is AuthLinkState.HEALTHY
    assert logs.named("auth_link_restored", failed_attempts=3)
    assert link_changes == [True, False, True]
    assert source.seconds_since_last_success == 0


async def test_unknown_kid_refetches_at_most_once_per_interval() -> None:
    auth, key_set, clock = ScriptedAuthService(), KeySet(), ManualClock()
    source = make_source(auth, key_set, clock, min_refetch=5.0)
    await source.refresh()
    auth.fetches = 0

    assert not await source.refresh_for_unknown_kid()  # the startup fetch was just now
    clock.now += 5.0
    assert not await source.refresh_for_unknown_kid()  # refetched: nothing new
    assert not await source.refresh_for_unknown_kid()
    clock.now += 4.9
    assert not await source.refresh_for_unknown_kid()

    assert auth.fetches == 1


async def test_a_rotated_key_is_learnt_by_the_unknown_kid_refetch() -> None:
    auth, key_set, clock = ScriptedAuthService(), KeySet(), ManualClock()
    source = make_source(auth, key_set, clock, min_refetch=5.0)
    await source.refresh()
    auth.keys.insert(0, Ed25519PrivateKey.generate())
    clock.now += 5.0

    assert await source.refresh_for_unknown_kid()
    assert set(key_set.keys) == {auth.kid(0), auth.kid(1)}


async def test_concurrent_unknown_kids_share_one_fetch() -> None:
    auth, key_set, clock = ScriptedAuthService(), KeySet(), ManualClock()
    source = make_source(auth, key_set, clock, min_refetch=0)
    await source.refresh()
    auth.fetches = 0
    auth.keys.insert(0, Ed25519PrivateKey.generate())
    auth.gate = asyncio.Event()

    waiting = [asyncio.create_task(source.refresh_for_unknown_kid()) for _ in range(20)]
    await asyncio.sleep(0)  # let them all queue behind the first fetch
    auth.gate.set()
    results = await asyncio.gather(*waiting)

    assert results == [True] * 20
    assert auth.fetches == 1


async def test_an_unchanged_key_set_keeps_its_version_so_verified_tokens_stay_cached() -> None:
    auth, key_set = ScriptedAuthService(), KeySet()
    source = make_source(auth, key_set, ManualClock())
    await source.refresh()
    version = key_set.version

    await source.refresh(cause="periodic")

    assert key_set.version == version


async def test_a_malformed_key_is_skipped_and_an_answer_without_usable_keys_keeps_the_old_ones(
    logs: CapturedLogs,
) -> None:
    auth, key_set = ScriptedAuthService(), KeySet()
    source = make_source(auth, key_set, ManualClock())
    auth.extra = [{"kid": "rsa", "kty": "RSA", "n": "xx", "e": "AQAB"}]
    await source.refresh()

    assert set(key_set.keys) == {auth.kid()}
    assert logs.named("jwk_skipped", kid="rsa")

    auth.keys = []
    assert not await source.refresh(cause="periodic")
    assert key_set.keys
    assert source.degraded


async def test_stop_ends_the_refresh_task_and_closes_the_channel() -> None:
    auth, key_set = ScriptedAuthService(), KeySet()
    closed = asyncio.Event()

    async def close() -> None:
        closed.set()

    source = JwksKeySource(
        key_set,
        auth.fetch,
        refresh_seconds=300,
        min_refetch_seconds=5,
        startup_wait_seconds=1,
        on_close=close,
    )
    await source.start()
    task = source._task

    await source.stop()

    assert task is not None
    assert task.done()
    assert closed.is_set()
