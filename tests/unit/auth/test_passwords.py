"""The real argon2id hasher (cheap parameters, except where the production ones are the point)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from argon2 import extract_parameters

from auth_service.domain.passwords import MIN_PASSWORD_LENGTH, PasswordPolicy, common_passwords
from auth_service.service.passwords import Argon2Parameters, Argon2Passwords
from shared.config import AuthSettings, argon2_meets_owasp_minimum

CHEAP = Argon2Parameters(memory_kib=1024, time_cost=1)


async def test_hashes_are_argon2id_and_verify() -> None:
    hasher = Argon2Passwords(CHEAP, max_concurrency=2)
    try:
        stored = await hasher.hash("correct horse battery staple")

        assert stored.startswith("$argon2id$")
        assert (await hasher.verify(stored, "correct horse battery staple")).matches
        assert not (await hasher.verify(stored, "correct horse battery stapler")).matches
        assert not (await hasher.verify("$argon2id$garbage", "anything at all")).matches
        await hasher.verify_dummy("anything at all")
    finally:
        await hasher.close()


async def test_a_hash_made_with_other_parameters_asks_for_a_rehash() -> None:
    old, new = (
        Argon2Passwords(CHEAP, max_concurrency=1),
        Argon2Passwords(Argon2Parameters(memory_kib=2048, time_cost=2), max_concurrency=1),
    )
    try:
        stored = await old.hash("correct horse battery staple")
        check = await new.verify(stored, "correct horse battery staple")
        assert check.matches
        assert check.needs_rehash
        assert not (await new.verify(await new.hash("x" * 12), "x" * 12)).needs_rehash
    finally:
        await old.close()
        await new.close()


async def test_the_production_defaults_are_owasp_grade() -> None:
    settings = AuthSettings()
    assert argon2_meets_owasp_minimum(settings.argon2_memory_kib, settings.argon2_time_cost)
    hasher = Argon2Passwords(
        Argon2Parameters(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        ),
        max_concurrency=1,
    )
    try:
        parameters = extract_parameters(await hasher.hash("correct horse battery staple"))
    finally:
        await hasher.close()
    # OWASP Password Storage Cheat Sheet: argon2id, at least 19 MiB, 2 iterations, 1 lane.
    assert parameters.type.name == "ID"
    assert parameters.memory_cost >= 19_456
    assert parameters.time_cost >= 2
    assert parameters.parallelism >= 1
    assert parameters.salt_len >= 16


def test_production_refuses_weaker_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_ENV", "production")
    # pydantic wraps the validator's InsecureSettingsError (a ValueError) in a ValidationError.
    with pytest.raises(ValueError, match="below the OWASP minimum"):
        AuthSettings(
            database_url="postgresql+asyncpg://db/auth",
            tls_cert_file="cert.pem",
            tls_key_file="key.pem",
            signing_key_file="key.pem",
            argon2_memory_kib=1024,
        )


async def test_no_more_hashes_run_at_once_than_the_cap() -> None:
    hasher = Argon2Passwords(CHEAP, max_concurrency=2)
    started: list[int] = []
    releases = [threading.Event() for _ in range(6)]
    running = 0
    most_running = 0
    lock = threading.Lock()

    def blocking_hash(number: int) -> str:
        nonlocal running, most_running
        with lock:
            started.append(number)
            running += 1
            most_running = max(most_running, running)
        releases[number].wait(timeout=10)
        with lock:
            running -= 1
        return "hash"

    async def wait_until(condition) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 5
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.005)

    try:
        hashing = [asyncio.ensure_future(hasher._run(blocking_hash, n)) for n in range(6)]
        await wait_until(lambda: len(started) == 2)
        # The event loop is free while the pool is saturated.
        assert await asyncio.wait_for(asyncio.sleep(0, result="loop alive"), timeout=1) == "loop alive"
        releases[started[0]].set()
        await wait_until(lambda: len(started) == 3)
        assert len(started) == 3
        for release in releases:
            release.set()
        await asyncio.gather(*hashing)
    finally:
        for release in releases:
            release.set()
        await hasher.close()
    assert most_running == 2


def test_the_shipped_common_password_list_is_large_and_used() -> None:
    common = common_passwords()
    assert len(common) >= 10_000
    policy = PasswordPolicy.default()
    long_common = sorted(p for p in common if len(p) >= MIN_PASSWORD_LENGTH)
    assert long_common
    assert policy.problem(long_common[0]) is not None
    assert policy.problem(long_common[0].upper()) is not None
    assert policy.problem("correct horse battery staple") is None
