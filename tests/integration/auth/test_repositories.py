"""The SQLAlchemy repositories on real SQLite and PostgreSQL, including under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from auth_service.domain.errors import ClientNameTaken, EmailTaken
from auth_service.domain.scopes import Role
from auth_service.domain.throttle import AttemptKind
from auth_service.domain.tokens import RefreshToken
from auth_service.domain.users import ServiceClient, User
from auth_service.repository.unit_of_work import AuthSqlUnitOfWork

UowFactory = Callable[[], AuthSqlUnitOfWork]
WINDOW = timedelta(minutes=15)


def now() -> datetime:
    return datetime.now(UTC)


async def add_user(
    uow: UowFactory, email: str = "ann@example.com", roles: frozenset[Role] = frozenset({Role.STAFF})
) -> User:
    user = User(uuid.uuid4(), email, "Ann", "$argon2id$hash", roles, now())
    async with uow() as work:
        await work.users.add(user)
        await work.commit()
    return user


async def add_token(
    uow: UowFactory, user: User, *, family: uuid.UUID | None = None, ttl: timedelta = timedelta(days=1)
) -> RefreshToken:
    token_id = uuid.uuid4()
    token = RefreshToken(
        id=token_id,
        token_hash=uuid.uuid4().hex * 2,
        family_id=family or token_id,
        parent_id=None,
        user_id=user.id,
        scope=frozenset({"catalog.read"}),
        issued_at=now(),
        expires_at=now() + ttl,
    )
    async with uow() as work:
        await work.refresh_tokens.add(token)
        await work.commit()
    return token


async def test_a_user_round_trips_with_roles_and_aware_timestamps(uow: UowFactory) -> None:
    user = await add_user(uow, roles=frozenset({Role.STAFF, Role.ADMIN}))
    async with uow() as work:
        by_id = await work.users.get(user.id)
        by_email = await work.users.get_by_email("ann@example.com")
    assert by_id == by_email
    assert by_id is not None
    assert by_id.roles == {Role.STAFF, Role.ADMIN}
    assert by_id.created_at.tzinfo is not None
    assert abs(by_id.created_at - user.created_at) < timedelta(milliseconds=1)


async def test_a_duplicate_email_is_email_taken_and_changes_nothing(uow: UowFactory) -> None:
    await add_user(uow)
    with pytest.raises(EmailTaken):
        await add_user(uow)
    async with uow() as work:
        assert await work.users.get_by_email("ann@example.com") is not None


async def test_concurrent_registrations_of_one_email_let_exactly_one_win(uow: UowFactory) -> None:
    results = await asyncio.gather(*(add_user(uow) for _ in range(8)), return_exceptions=True)
    assert sum(isinstance(r, User) for r in results) == 1
    assert all(isinstance(r, User | EmailTaken) for r in results)


async def test_a_duplicate_client_name_is_client_name_taken(uow: UowFactory) -> None:
    async with uow() as work:
        await work.clients.add(
            ServiceClient(uuid.uuid4(), "billing", "$argon2id$s", frozenset({"catalog.read"}), now())
        )
        await work.commit()
    with pytest.raises(ClientNameTaken):
        async with uow() as work:
            await work.clients.add(
                ServiceClient(uuid.uuid4(), "billing", "$argon2id$s", frozenset({"x"}), now())
            )


async def test_replace_password_hash_is_compare_and_set(uow: UowFactory) -> None:
    user = await add_user(uow)
    async with uow() as work:
        assert await work.users.replace_password_hash(user.id, user.password_hash, "$argon2id$new", now())
        assert not await work.users.replace_password_hash(
            user.id, user.password_hash, "$argon2id$other", now()
        )
        await work.commit()
    async with uow() as work:
        stored = await work.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "$argon2id$new"


async def test_ten_concurrent_claims_of_one_token_succeed_exactly_once(uow: UowFactory) -> None:
    token = await add_token(uow, await add_user(uow))

    async def claim() -> bool:
        async with uow() as work:
            won = await work.refresh_tokens.claim(token.id, now())
            await work.commit()
            return won

    results = await asyncio.gather(*(claim() for _ in range(10)))

    assert results.count(True) == 1
    async with uow() as work:
        stored = await work.refresh_tokens.get_by_hash(token.token_hash)
    assert stored is not None
    assert stored.used_at is not None


async def test_revoked_or_expired_tokens_cannot_be_claimed(uow: UowFactory) -> None:
    user = await add_user(uow)
    revoked, expired = await add_token(uow, user), await add_token(uow, user, ttl=timedelta(seconds=1))
    async with uow() as work:
        await work.refresh_tokens.revoke_family(revoked.family_id, now())
        assert not await work.refresh_tokens.claim(revoked.id, now())
        assert not await work.refresh_tokens.claim(expired.id, now() + timedelta(seconds=2))


async def test_revoking_a_family_or_a_user_touches_nothing_else(uow: UowFactory) -> None:
    ann, bob = await add_user(uow), await add_user(uow, "bob@example.com")
    first = await add_token(uow, ann)
    sibling = await add_token(uow, ann, family=first.family_id)
    other_family = await add_token(uow, ann)
    bobs = await add_token(uow, bob)

    async with uow() as work:
        assert await work.refresh_tokens.revoke_family(first.family_id, now()) == 2
        assert await work.refresh_tokens.revoke_family(first.family_id, now()) == 0
        await work.commit()
    async with uow() as work:
        states = {
            t.id: (await work.refresh_tokens.get_by_hash(t.token_hash))
            for t in (first, sibling, other_family, bobs)
        }
    assert [states[t.id].revoked_at is not None for t in (first, sibling, other_family, bobs)] == [
        True,
        True,
        False,
        False,
    ]  # type: ignore[union-attr]

    async with uow() as work:
        assert await work.refresh_tokens.revoke_all_of_user(ann.id, now()) == 1
        await work.commit()


async def test_concurrent_attempts_each_get_their_own_count(uow: UowFactory) -> None:
    async def attempt() -> int:
        async with uow() as work:
            count = await work.login_attempts.add_attempt(
                AttemptKind.ACCOUNT, "ann@example.com", now(), WINDOW
            )
            await work.commit()
            return count.attempts

    counts = await asyncio.gather(*(attempt() for _ in range(12)))

    assert sorted(counts) == list(range(1, 13))


async def test_a_counter_starts_over_when_its_window_ends(uow: UowFactory) -> None:
    start = now()
    async with uow() as work:
        for _ in range(3):
            await work.login_attempts.add_attempt(AttemptKind.PEER, "203.0.113.7", start, WINDOW)
        current = await work.login_attempts.count(
            AttemptKind.PEER, "203.0.113.7", start + timedelta(minutes=5), WINDOW
        )
        assert current.attempts == 3
        assert 590 <= current.retry_after_seconds <= 600
        later = start + WINDOW + timedelta(seconds=1)
        assert (await work.login_attempts.count(AttemptKind.PEER, "203.0.113.7", later, WINDOW)).attempts == 0
        fresh = await work.login_attempts.add_attempt(AttemptKind.PEER, "203.0.113.7", later, WINDOW)
        assert fresh.attempts == 1
        assert fresh.retry_after_seconds == pytest.approx(WINDOW.total_seconds())
        await work.login_attempts.forget_attempt(AttemptKind.PEER, "203.0.113.7")
        await work.login_attempts.forget_attempt(AttemptKind.PEER, "203.0.113.7")
        assert (await work.login_attempts.count(AttemptKind.PEER, "203.0.113.7", later, WINDOW)).attempts == 0
        await work.login_attempts.reset(AttemptKind.PEER, "203.0.113.7")
        await work.commit()


async def test_revoked_access_tokens_are_idempotent_and_purged_after_expiry(uow: UowFactory) -> None:
    expires = now() + timedelta(minutes=15)
    async with uow() as work:
        await work.revoked_access_tokens.add("jti-1", expires, now())
        await work.revoked_access_tokens.add("jti-1", expires, now())
        await work.commit()
    async with uow() as work:
        assert await work.revoked_access_tokens.is_revoked("jti-1")
        assert not await work.revoked_access_tokens.is_revoked("jti-2")
        assert await work.revoked_access_tokens.delete_expired(now()) == 0
        assert await work.revoked_access_tokens.delete_expired(expires + timedelta(seconds=1)) == 1
        await work.commit()


async def test_expired_refresh_tokens_are_purged_and_children_keep_their_family(uow: UowFactory) -> None:
    user = await add_user(uow)
    parent = await add_token(uow, user, ttl=timedelta(seconds=5))
    child = RefreshToken(
        id=uuid.uuid4(),
        token_hash="c" * 64,
        family_id=parent.family_id,
        parent_id=parent.id,
        user_id=user.id,
        scope=frozenset({"catalog.read"}),
        issued_at=now(),
        expires_at=now() + timedelta(days=1),
    )
    async with uow() as work:
        await work.refresh_tokens.add(child)
        await work.commit()
    async with uow() as work:
        assert await work.refresh_tokens.delete_expired(now() + timedelta(seconds=10)) == 1
        await work.commit()
    async with uow() as work:
        kept = await work.refresh_tokens.get_by_hash("c" * 64)
    assert kept is not None
    assert (kept.family_id, kept.parent_id) == (parent.family_id, None)


async def test_purging_counters_deletes_only_finished_windows(uow: UowFactory) -> None:
    start = now()
    async with uow() as work:
        for n in range(3):
            await work.login_attempts.add_attempt(
                AttemptKind.PEER, f"198.51.100.{n}", start - WINDOW * 2, WINDOW
            )
        await work.login_attempts.add_attempt(AttemptKind.ACCOUNT, "ann@example.com", start, WINDOW)
        await work.commit()
    async with uow() as work:
        assert await work.login_attempts.delete_expired(start - WINDOW) == 3
        await work.commit()
    async with uow() as work:
        assert (
            await work.login_attempts.count(AttemptKind.ACCOUNT, "ann@example.com", start, WINDOW)
        ).attempts == 1
