"""Creating accounts: users (Register, `create-user`) and service clients (`create-client`)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from auth_service.domain.errors import InvalidRequest
from auth_service.domain.passwords import PasswordPolicy
from auth_service.domain.scopes import KNOWN_SCOPES, Role, ScopeSyntaxError, parse_scope
from auth_service.domain.throttle import DEFAULT_THROTTLE, AttemptKind, ThrottlePolicy
from auth_service.domain.users import (
    ServiceClient,
    User,
    client_name_problem,
    display_name_problem,
    email_problem,
    normalize_email,
)
from auth_service.service.ports import Clock, PasswordHasher, UnitOfWorkFactory
from auth_service.service.throttling import reserve_attempts
from shared.errors import FieldViolation

# 32 random bytes: a client secret is a credential nobody types, so it can be as strong as a key.
CLIENT_SECRET_BYTES = 32


class Registration:
    """Registers users.

    `hasher` should be a pool of its own (app.py): a burst of registrations then queues behind itself,
    never in front of the logins.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        clock: Clock,
        throttle: ThrottlePolicy = DEFAULT_THROTTLE,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._policy = policy
        self._clock = clock
        self._throttle = throttle

    async def register(
        self,
        *,
        email: str,
        password: str,
        display_name: str,
        roles: Iterable[Role] = (Role.CUSTOMER,),
        peer: str | None = None,
    ) -> User:
        """Create a user with a normalized, unique email and an argon2id hash of the password.

        Every invalid field is reported at once (`InvalidRequest`); a taken email is `EmailTaken`,
        decided by the database's unique constraint, so two concurrent registrations cannot both win.
        A taken email costs the same hash as a new one, so the time of the answer does not tell whether
        an address is registered. With `peer` (the Register RPC), at most `registration_limit` calls per
        address and window get to the hash, counted in the database so that replicas share the count;
        beyond it `TooManyAttempts`.
        """
        normalized = normalize_email(email)
        violations = [
            FieldViolation(name, problem)
            for name, problem in (
                ("email", email_problem(normalized)),
                ("password", self._policy.problem(password)),
                ("display_name", display_name_problem(display_name)),
            )
            if problem is not None
        ]
        role_set = frozenset(roles)
        if not role_set:
            violations.append(FieldViolation("roles", "at least one role is required"))
        if violations:
            raise InvalidRequest(violations)
        if peer is not None:
            async with self._uow() as uow:
                counter = (AttemptKind.REGISTRATION, peer)
                await reserve_attempts(uow, self._throttle, [counter], self._clock())
                await uow.commit()
        # Hash before the transaction opens: no connection or lock is held during the slow part.
        password_hash = await self._hasher.hash(password)
        user = User(
            id=uuid.uuid4(),
            email=normalized,
            display_name=display_name.strip(),
            password_hash=password_hash,
            roles=role_set,
            created_at=self._clock(),
        )
        async with self._uow() as uow:
            await uow.users.add(user)
            await uow.commit()
        return user


@dataclass(frozen=True)
class CreatedClient:
    client: ServiceClient
    # Shown once; only its hash is stored.
    secret: str


class ServiceClients:
    """Creates service accounts (the client credentials grant's clients)."""

    def __init__(self, uow: UnitOfWorkFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock

    async def create(self, *, name: str, scopes: str) -> CreatedClient:
        """A new client with a random secret and the given scopes (each must be a known scope)."""
        violations = []
        problem = client_name_problem(name)
        if problem is not None:
            violations.append(FieldViolation("name", problem))
        try:
            scope_set = parse_scope(scopes)
        except ScopeSyntaxError as exc:
            violations.append(FieldViolation("scopes", str(exc)))
        else:
            unknown = scope_set.difference(KNOWN_SCOPES)
            if not scope_set:
                violations.append(FieldViolation("scopes", "at least one scope is required"))
            elif unknown:
                violations.append(
                    FieldViolation(
                        "scopes", f"unknown scopes {sorted(unknown)}; known: {' '.join(KNOWN_SCOPES)}"
                    )
                )
        if violations:
            raise InvalidRequest(violations)
        secret = secrets.token_urlsafe(CLIENT_SECRET_BYTES)
        client = ServiceClient(
            id=uuid.uuid4(),
            name=name.strip(),
            secret_hash=await self._hasher.hash(secret),
            scopes=scope_set,
            created_at=self._clock(),
        )
        async with self._uow() as uow:
            await uow.clients.add(client)
            await uow.commit()
        return CreatedClient(client=client, secret=secret)
