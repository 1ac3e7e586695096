"""argon2id password hashing off the event loop, with a cap on how many hashes run at once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import structlog
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from auth_service.service.ports import PasswordCheck

log = structlog.get_logger("tessera.auth.passwords")
T = TypeVar("T")


@dataclass(frozen=True)
class Argon2Parameters:
    """The cost of one hash. Defaults are OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane."""

    memory_kib: int = 19_456
    time_cost: int = 2
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16


class Argon2Passwords:
    """`PasswordHasher` over argon2-cffi.

    argon2 is CPU- and memory-heavy (~19 MiB per hash at the defaults) and releases the GIL while it
    runs. It runs in a dedicated pool of `max_concurrency` threads: memory stays bounded by
    `max_concurrency * memory_kib` however many logins arrive, and the event loop keeps serving other
    RPCs while hashes queue.
    """

    def __init__(self, parameters: Argon2Parameters, *, max_concurrency: int) -> None:
        self.parameters = parameters
        self._hasher = Argon2Hasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=parameters.hash_len,
            salt_len=parameters.salt_len,
            type=Type.ID,
        )
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="argon2")
        self._dummy_hash: str | None = None

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def hash(self, password: str) -> str:
        """A new PHC-format argon2id hash (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`)."""
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> PasswordCheck:
        """Whether `password` matches; `needs_rehash` when the hash used other parameters than ours."""
        return await self._run(self._verify_blocking, password_hash, password)

    def _verify_blocking(self, password_hash: str, password: str) -> PasswordCheck:
        try:
            self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return PasswordCheck(matches=False)
        except (InvalidHashError, VerificationError):
            # A corrupt stored hash must fail closed; the hash itself is not logged.
            log.error("password_hash_unusable")
            return PasswordCheck(matches=False)
        return PasswordCheck(matches=True, needs_rehash=self._hasher.check_needs_rehash(password_hash))

    async def verify_dummy(self, password: str) -> None:
        """Verify against a hash of a random password made with the current parameters."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(24))
        await self.verify(self._dummy_hash, password)

    async def close(self) -> None:
        """Stop the hashing threads; queued hashes are cancelled (their RPCs are gone by now)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
