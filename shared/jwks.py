"""The data service's source of signing keys: the auth service's `GetJwks`, fetched over gRPC.

How the link behaves (the decisions, in one place):

- **Start-up.** `start()` fetches at once and retries with backoff while the auth service is not up yet,
  but waits for the first key set at most `startup_wait_seconds` (`DATA_JWKS_STARTUP_WAIT_SECONDS`):
  the two services may start in any order, and a data service must not hang because the auth service is
  late. After that wait the server starts anyway; health and reflection are served, and calls that carry
  a token answer UNAVAILABLE (with `RetryInfo`, so clients retry) until keys arrive. That is not a token
  verdict: a valid token is not called invalid just because we could not look at the keys yet.
- **Refresh.** Every `refresh_seconds` (`DATA_JWKS_REFRESH_SECONDS`); after a failure, sooner, with a
  capped backoff, until the auth service answers again.
- **Unknown `kid`.** A token signed by a key we do not know triggers one refetch, at most once every
  `min_refetch_seconds` (`DATA_JWKS_MIN_REFETCH_SECONDS`) whatever the number of such tokens; concurrent
  requests share the fetch. A flood of forged kids costs the auth service one call per interval. The
  fetch runs in the request's context, so it carries that request's `x-request-id` and deadline.
- **Outage.** A failed fetch never drops keys: the last good set stays in force, so valid tokens keep
  working while the auth service is down. The link's state is logged on each change
  (`auth_link_degraded` as a warning, `auth_link_restored`) and exposed as `state` / `degraded` for
  metrics and health.
- **What counts as keys.** Only Ed25519 signing keys; a malformed entry is skipped with a warning, and an
  answer with no usable key is treated as a failed fetch (keeping the old keys) rather than a
  withdrawal of every key.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import StrEnum

import grpc
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared.client.channel import ChannelSettings, Keepalive, TlsOptions, create_channel
from shared.client.interceptors import outbound_interceptors
from shared.config import DataSettings
from shared.errors import Unavailable
from shared.jwk import InvalidJwk, public_key_from_jwk
from shared.tokens import KeySet

log = structlog.get_logger("tessera.jwks")

# Returns the published keys as JWK members (`kid, kty, crv, x, alg, use`); raises when it cannot.
JwksFetcher = Callable[[], Awaitable[Sequence[Mapping[str, str]]]]

AUTH_SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
# A key fetch never waits longer than this, even inside an RPC with a longer deadline.
FETCH_TIMEOUT_SECONDS = 5.0
KEYS_MISSING_RETRY_AFTER_SECONDS = 1.0


class AuthLinkState(StrEnum):
    STARTING = "starting"  # no fetch has finished yet
    HEALTHY = "healthy"  # the last fetch succeeded
    DEGRADED = "degraded"  # the last fetch failed; serving with the last good keys (if any)


class KeysUnavailable(Unavailable):
    """No key set has been loaded yet, so no token can be judged: retry shortly."""

    def __init__(self) -> None:
        super().__init__(
            "the service cannot verify access tokens yet: the auth service's keys are not loaded",
            retry_after_seconds=KEYS_MISSING_RETRY_AFTER_SECONDS,
        )


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def grpc_jwks_fetcher(channel: object) -> JwksFetcher:
    """Fetch `GetJwks` over `channel` (which carries the request-id and deadline interceptors)."""
    stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, unannotated

    async def fetch() -> list[dict[str, str]]:
        response = await stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=FETCH_TIMEOUT_SECONDS)
        return [
            {"kid": k.kid, "kty": k.kty, "crv": k.crv, "x": k.x, "alg": k.alg, "use": k.use}
            for k in response.keys
        ]

    return fetch


class JwksKeySource:
    """Keeps a `KeySet` filled with the auth service's published keys; see the module docstring."""

    def __init__(
        self,
        key_set: KeySet,
        fetch: JwksFetcher,
        *,
        refresh_seconds: float,
        min_refetch_seconds: float,
        startup_wait_seconds: float,
        initial_backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_close: Callable[[], Awaitable[None]] | None = None,
        on_link_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._key_set = key_set
        self._fetch = fetch
        self._refresh_seconds = refresh_seconds
        self._min_refetch_seconds = min_refetch_seconds
        self._startup_wait_seconds = startup_wait_seconds
        self._initial_backoff = initial_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._clock = clock
        self._on_close = on_close
        # Told True / False whenever the link turns healthy / degraded (e.g. a metrics gauge).
        self._on_link_change = on_link_change
        self._lock = asyncio.Lock()
        self._state = AuthLinkState.STARTING
        self._last_attempt_at: float | None = None
        self._last_success_at: float | None = None
        self._consecutive_failures = 0
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_auth_service(
        cls,
        settings: DataSettings,
        key_set: KeySet | None = None,
        *,
        on_link_change: Callable[[bool], None] | None = None,
    ) -> JwksKeySource:
        """The data service's key source: a channel to `DATA_AUTH_TARGET`.

        TLS when `DATA_AUTH_TLS_CA_FILE` is set; with `DATA_AUTH_TLS_CERT_FILE`/`..._KEY_FILE` as the client
        certificate when the auth service requires mTLS.
        """
        tls = None
        if settings.auth_tls_ca_file is not None:
            tls = TlsOptions(
                root_certificates=settings.auth_tls_ca_file,
                client_certificate=settings.auth_tls_cert_file,
                client_key=settings.auth_tls_key_file,
            )
        channel = create_channel(
            settings.auth_target,
            services=[AUTH_SERVICE_NAME],
            # No retry policy: the source has its own backoff, and an unknown-kid refetch inside an RPC
            # should fail fast rather than spend the caller's deadline on retries.
            settings=ChannelSettings(tls=tls, retry=None, keepalive=Keepalive()),
            interceptors=outbound_interceptors(
                default_timeout_seconds=FETCH_TIMEOUT_SECONDS,
                max_inherited_timeout_seconds=FETCH_TIMEOUT_SECONDS,
            ),
        )
        return cls(
            key_set if key_set is not None else KeySet(),
            grpc_jwks_fetcher(channel),
            refresh_seconds=settings.jwks_refresh_seconds,
            min_refetch_seconds=settings.jwks_min_refetch_seconds,
            startup_wait_seconds=settings.jwks_startup_wait_seconds,
            on_close=channel.close,
            on_link_change=on_link_change,
        )

    @property
    def key_set(self) -> KeySet:
        """The keys this source keeps current; give it to the `AccessTokenVerifier`."""
        return self._key_set

    @property
    def state(self) -> AuthLinkState:
        return self._state

    @property
    def degraded(self) -> bool:
        """True while the last fetch failed (the service runs on the last good keys, if any)."""
        return self._state is AuthLinkState.DEGRADED

    @property
    def has_keys(self) -> bool:
        return bool(self._key_set.keys)

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    @property
    def seconds_since_last_success(self) -> float | None:
        return None if self._last_success_at is None else self._clock() - self._last_success_at

    async def start(self) -> None:
        """Start fetching; return once keys are loaded or `startup_wait_seconds` have passed."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="jwks-refresh")
        try:
            await asyncio.wait_for(self._loaded.wait(), self._startup_wait_seconds)
        except TimeoutError:
            log.warning(
                "jwks_not_loaded_at_startup",
                waited_seconds=self._startup_wait_seconds,
                consequence="calls with tokens answer UNAVAILABLE until the auth service answers",
            )

    async def stop(self) -> None:
        """Stop refreshing and close the channel (a GrpcServer `on_stopped` hook)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._on_close is not None:
            await self._on_close()

    async def refresh(self, *, cause: str = "manual") -> bool:
        """Fetch now. True when it succeeded; failures are logged and keep the current keys."""
        async with self._lock:
            return await self._refresh_locked(cause)

    async def refresh_for_unknown_kid(self) -> bool:
        """The auth interceptor's hook for a token with an unknown `kid`: refetch once, rate-limited.

        True when the key set changed, so the token is worth verifying again. Raises `KeysUnavailable`
        (UNAVAILABLE) while no keys were ever loaded.
        """
        version_seen = self._key_set.version
        async with self._lock:
            if self._key_set.version != version_seen:
                # Someone refreshed while we waited: verify against what they got.
                changed = True
            elif self._rate_limited():
                changed = False
            else:
                before = self._key_set.version
                await self._refresh_locked("unknown_kid")
                changed = self._key_set.version != before
        if not self._key_set.keys:
            raise KeysUnavailable
        return changed

    def _rate_limited(self) -> bool:
        last = self._last_attempt_at
        return last is not None and self._clock() - last < self._min_refetch_seconds

    async def _refresh_locked(self, cause: str) -> bool:
        self._last_attempt_at = self._clock()
        try:
            published = await self._fetch()
            keys = self._parse(published)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._record_failure(cause, exc)
            return False
        self._apply(keys, cause)
        self._record_success()
        return True

    def _parse(self, published: Sequence[Mapping[str, str]]) -> dict[str, Ed25519PublicKey]:
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in published:
            try:
                kid, key = public_key_from_jwk(jwk)
            except InvalidJwk as exc:
                log.warning("jwk_skipped", kid=jwk.get("kid"), why=str(exc))
                continue
            keys[kid] = key
        if not keys:
            raise InvalidJwk("the auth service published no usable key")
        return keys

    def _apply(self, keys: dict[str, Ed25519PublicKey], cause: str) -> None:
        current = {kid: _raw(key) for kid, key in self._key_set.keys.items()}
        if current == {kid: _raw(key) for kid, key in keys.items()}:
            # Unchanged: leave the version alone so the verifier keeps its cache of verified tokens.
            return
        self._key_set.replace(keys.items())
        log.info(
            "jwks_updated",
            cause=cause,
            kids=sorted(keys),
            added=sorted(set(keys) - set(current)),
            removed=sorted(set(current) - set(keys)),
        )

    def _record_success(self) -> None:
        previous, failures = self._state, self._consecutive_failures
        self._state = AuthLinkState.HEALTHY
        self._consecutive_failures = 0
        self._last_success_at = self._clock()
        self._loaded.set()
        if previous is not AuthLinkState.HEALTHY and self._on_link_change is not None:
            self._on_link_change(True)
        if previous is AuthLinkState.DEGRADED:
            log.info("auth_link_restored", failed_attempts=failures, keys=len(self._key_set.keys))

    def _record_failure(self, cause: str, exc: Exception) -> None:
        self._consecutive_failures += 1
        error = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__
        if self._state is not AuthLinkState.DEGRADED:
            self._state = AuthLinkState.DEGRADED
            if self._on_link_change is not None:
                self._on_link_change(False)
            log.warning(
                "auth_link_degraded",
                cause=cause,
                error=error,
                keys=len(self._key_set.keys),
                consequence=(
                    "serving with the last good keys"
                    if self._key_set.keys
                    else "no keys yet: calls with tokens answer UNAVAILABLE"
                ),
            )
        else:
            log.debug("jwks_fetch_failed", cause=cause, error=error, attempts=self._consecutive_failures)

    async def _run(self) -> None:
        backoff = self._initial_backoff
        while True:
            cause = "periodic" if self._loaded.is_set() else "startup"
            if await self.refresh(cause=cause):
                delay, backoff = self._refresh_seconds, self._initial_backoff
            else:
                # Jittered, so that replicas which lost the auth service together do not return in step.
                delay = min(random.uniform(backoff / 2, backoff), self._refresh_seconds)  # noqa: S311
                backoff = min(backoff * 2, self._max_backoff)
            await asyncio.sleep(delay)
