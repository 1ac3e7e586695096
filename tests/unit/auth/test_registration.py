from __future__ import annotations

import pytest

from auth_service.domain.errors import ClientNameTaken, EmailTaken, InvalidRequest, TooManyAttempts
from auth_service.domain.scopes import Role
from tests.unit.auth.conftest import PASSWORD, Auth


async def test_register_normalizes_the_email_and_makes_a_customer(auth: Auth) -> None:
    user = await auth.registration.register(email="  Ann@Example.COM ", password=PASSWORD, display_name="Ann")

    stored = auth.db.users[user.id]
    assert stored.email == "ann@example.com"
    assert stored.roles == {Role.CUSTOMER}
    assert stored.password_hash != PASSWORD
    assert auth.db.commits == 1


@pytest.mark.parametrize(
    "email", ["bob@example.com", "ops+alerts@shop.test", "x@a.b.c.invalid", "a.b@localhost.localdomain"]
)
async def test_special_use_domains_are_accepted(auth: Auth, email: str) -> None:
    user = await auth.registration.register(email=email, password=PASSWORD, display_name="")
    assert user.email == email


async def test_every_bad_field_is_reported_and_nothing_is_stored(auth: Auth) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await auth.registration.register(email="not an email", password="short", display_name="x" * 201)

    assert {v.field for v in raised.value.violations} == {"email", "password", "display_name"}
    assert raised.value.reason == "invalid_request"
    assert auth.db.users == {}


@pytest.mark.parametrize(
    ("password", "accepted"),
    [("x" * 11, False), ("x" * 12, True), ("y" * 128, True), ("y" * 129, False), ("Password1234", False)],
)
async def test_password_length_and_common_passwords(auth: Auth, password: str, accepted: bool) -> None:
    if accepted:
        await auth.registration.register(email="a@example.com", password=password, display_name="")
        return
    with pytest.raises(InvalidRequest) as raised:
        await auth.registration.register(email="a@example.com", password=password, display_name="")
    assert [v.field for v in raised.value.violations] == ["password"]
    assert password not in raised.value.violations[0].description


async def test_an_email_registers_once_whatever_its_case(auth: Auth) -> None:
    await auth.registration.register(email="ann@example.com", password=PASSWORD, display_name="")
    with pytest.raises(EmailTaken) as raised:
        await auth.registration.register(email="ANN@example.com", password=PASSWORD, display_name="")
    assert raised.value.reason == "email_taken"
    assert len(auth.db.users) == 1


async def test_a_client_gets_a_strong_secret_that_is_stored_only_hashed(auth: Auth) -> None:
    created = await auth.clients.create(name="billing", scopes="catalog.read  orders.read")

    stored = auth.db.clients[created.client.id]
    assert stored.scopes == {"catalog.read", "orders.read"}
    assert len(created.secret) >= 43
    assert created.secret not in stored.secret_hash
    with pytest.raises(ClientNameTaken):
        await auth.clients.create(name="billing", scopes="catalog.read")


async def test_a_client_with_unknown_or_no_scopes_is_refused(auth: Auth) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await auth.clients.create(name="", scopes="catalog.read catalog.destroy")
    assert {v.field for v in raised.value.violations} == {"name", "scopes"}
    with pytest.raises(InvalidRequest):
        await auth.clients.create(name="x", scopes="  ")
    assert auth.db.clients == {}


async def test_a_taken_email_costs_the_same_hash_as_a_new_one(auth: Auth) -> None:
    await auth.registration.register(email="ann@example.com", password=PASSWORD, display_name="")
    assert auth.hasher.hashes == 1

    with pytest.raises(EmailTaken):
        await auth.registration.register(email="ann@example.com", password=PASSWORD, display_name="")

    # One hash for the duplicate too: the answer takes as long, so it does not tell who is registered.
    assert auth.hasher.hashes == 2


async def test_registrations_per_address_are_limited_before_any_hash(auth: Auth) -> None:
    for n in range(10):
        await auth.registration.register(
            email=f"user{n}@example.com", password=PASSWORD, display_name="", peer="203.0.113.7"
        )
    with pytest.raises(TooManyAttempts) as refused:
        await auth.registration.register(
            email="user10@example.com", password=PASSWORD, display_name="", peer="203.0.113.7"
        )
    assert refused.value.retry_after_seconds > 0
    assert auth.hasher.hashes == 10
    # Another address has its own count; the command line (no peer) is not limited.
    await auth.registration.register(
        email="x@example.com", password=PASSWORD, display_name="", peer="198.51.100.1"
    )
    await auth.registration.register(email="y@example.com", password=PASSWORD, display_name="")


@pytest.mark.parametrize("display_name", ["Ann\u202egnp.exe", "Ann\x1b[2J", "Ann\nAdmin", "Ann\u2067x\u2069"])
async def test_display_names_refuse_control_and_bidi_characters(auth: Auth, display_name: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await auth.registration.register(
            email="ann@example.com", password=PASSWORD, display_name=display_name
        )
    assert [v.field for v in raised.value.violations] == ["display_name"]
    assert auth.db.users == {}
