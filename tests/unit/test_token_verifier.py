"""Attacks on the shared access-token verifier (used by both services): every one must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.jwk import public_jwk, thumbprint
from shared.tokens import MAX_TOKEN_BYTES, AccessTokenVerifier, InvalidToken, KeySet, UnknownKeyId

ISSUER, AUDIENCE = "tessera-auth", "tessera-inventory"
KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
KID = thumbprint(PUBLIC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": str(uuid.uuid4()),
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "scope": "catalog.read",
        "client_id": "tessera",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def header(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": "EdDSA", "typ": "at+jwt", "kid": KID}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(
    head: dict[str, Any] | None = None, body: dict[str, Any] | None = None, key: Ed25519PrivateKey = KEY
) -> str:
    signing_input = f"{b64json(head or header())}.{b64json(body or claims())}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def hs256(secret: bytes, body: dict[str, Any] | None = None) -> str:
    signing_input = f"{b64json(header(alg='HS256'))}.{b64json(body or claims())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def verifier(clock: Any = time.time) -> AccessTokenVerifier:
    keys = KeySet()
    keys.replace([(KID, PUBLIC)])
    return AccessTokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, clock=clock)


def test_a_correct_token_is_accepted() -> None:
    body = claims(scope="catalog.read orders.read")
    principal = verifier().verify(signed(body=body))
    assert principal.subject == body["sub"]
    assert principal.scopes == {"catalog.read", "orders.read"}
    assert principal.token_id == body["jti"]
    assert (principal.issued_at, principal.expires_at) == (body["iat"], body["exp"])


def test_the_long_media_type_form_of_typ_is_accepted() -> None:
    assert verifier().verify(signed(header(typ="application/AT+JWT")))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "noNe"])
@pytest.mark.parametrize("signature", ["", "AAAA"])
def test_alg_none_is_refused_in_every_casing(alg: str, signature: str) -> None:
    token = f"{b64json(header(alg=alg))}.{b64json(claims())}.{signature}"
    with pytest.raises(InvalidToken):
        verifier().verify(token)


@pytest.mark.parametrize(
    "secret",
    [
        PUBLIC.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        PUBLIC.public_bytes(Encoding.Raw, PublicFormat.Raw),
        json.dumps(public_jwk(PUBLIC)).encode(),
        json.dumps(public_jwk(PUBLIC), separators=(",", ":")).encode(),
        public_jwk(PUBLIC)["x"].encode(),
    ],
    ids=["pem", "raw", "jwk-json", "jwk-json-compact", "jwk-x"],
)
def test_hs256_signed_with_the_public_key_is_refused(secret: bytes) -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(hs256(secret))


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "PS256", "Ed25519", "eddsa", ""])
def test_other_algorithms_are_refused(alg: str) -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(signed(header(alg=alg)))


def test_a_tampered_payload_is_refused() -> None:
    head, _, signature = signed().split(".")
    forged_body = b64json(claims(scope="auth.admin auth.introspect"))
    with pytest.raises(InvalidToken):
        verifier().verify(f"{head}.{forged_body}.{signature}")


def test_a_tampered_header_is_refused() -> None:
    _, body, signature = signed().split(".")
    with pytest.raises(InvalidToken):
        verifier().verify(f"{b64json(header(extra='x'))}.{body}.{signature}")


@pytest.mark.parametrize("keep", [0, 1, 10, 85])
def test_a_truncated_signature_is_refused(keep: int) -> None:
    token = signed()
    head, body, signature = token.split(".")
    with pytest.raises(InvalidToken):
        verifier().verify(f"{head}.{body}.{signature[:keep]}")


def test_a_signature_by_another_key_under_our_kid_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(signed(key=Ed25519PrivateKey.generate()))


def test_an_embedded_jwk_header_is_ignored_not_trusted() -> None:
    attacker = Ed25519PrivateKey.generate()
    head = header(jwk=public_jwk(attacker.public_key()))
    with pytest.raises(InvalidToken):
        verifier().verify(signed(head, key=attacker))


def test_an_expired_token_is_refused() -> None:
    now = int(time.time())
    with pytest.raises(InvalidToken):
        verifier().verify(signed(body=claims(iat=now - 600, exp=now - 60)))


def test_a_cached_token_is_refused_once_it_expires() -> None:
    now = time.time()
    clock = {"now": now}
    check = verifier(clock=lambda: clock["now"])
    token = signed(body=claims(exp=int(now) + 60))
    assert check.verify(token)
    clock["now"] = now + 120
    with pytest.raises(InvalidToken):
        check.verify(token)


def test_a_token_not_yet_valid_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(signed(body=claims(nbf=int(time.time()) + 600)))


def test_a_token_issued_in_the_future_is_refused() -> None:
    now = int(time.time())
    with pytest.raises(InvalidToken):
        verifier().verify(signed(body=claims(iat=now + 600, exp=now + 900)))


@pytest.mark.parametrize(
    "body",
    [
        claims(iss="https://evil.example"),
        claims(iss=None),
        claims(aud="someone-else"),
        claims(aud=["someone-else"]),
        claims(aud=None),
        claims(exp=None),
        claims(iat=None),
        claims(sub=None),
        claims(jti=None),
        claims(sub=""),
        claims(sub=42),
        claims(exp=True),
        claims(scope=["catalog.read"]),
        claims(exp="soon"),
    ],
    ids=[
        "wrong-iss",
        "no-iss",
        "wrong-aud",
        "wrong-aud-list",
        "no-aud",
        "no-exp",
        "no-iat",
        "no-sub",
        "no-jti",
        "empty-sub",
        "int-sub",
        "bool-exp",
        "list-scope",
        "string-exp",
    ],
)
def test_wrong_or_missing_claims_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(signed(body=body))


def test_an_unknown_kid_asks_for_a_key_refresh() -> None:
    with pytest.raises(UnknownKeyId):
        verifier().verify(signed(header(kid="some-other-kid")))


@pytest.mark.parametrize("kid", [None, "", 7])
def test_a_missing_kid_is_refused(kid: Any) -> None:
    head = header(kid=kid) if kid is not None else {"alg": "EdDSA", "typ": "at+jwt"}
    with pytest.raises(InvalidToken) as raised:
        verifier().verify(signed(head))
    assert not isinstance(raised.value, UnknownKeyId)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt ", "id+jwt", 1])
def test_a_missing_or_wrong_typ_is_refused(typ: Any) -> None:
    head = header(typ=typ) if typ is not None else {"alg": "EdDSA", "kid": KID}
    with pytest.raises(InvalidToken):
        verifier().verify(signed(head))


def test_an_oversized_token_is_refused_before_decoding() -> None:
    token = signed(body=claims(padding="x" * MAX_TOKEN_BYTES))
    assert len(token) > MAX_TOKEN_BYTES
    with pytest.raises(InvalidToken) as raised:
        verifier().verify(token)
    assert raised.value.why == "oversized"


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "x"])
def test_a_crit_header_is_refused(crit: Any) -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(signed(header(crit=crit, b64=False) if crit == ["b64"] else header(crit=crit)))


def test_an_unencoded_payload_header_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(signed(header(b64=False)))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "..",
        f"{b64(b'[1]')}.{b64json(claims())}.x",
        f"{b64json(header())}.{b64(b'[1]')}.x",
        f"{b64json(header())}.{b64(b'not json')}.x",
    ],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(token)


def test_a_payload_that_is_not_an_object_is_refused_even_when_signed() -> None:
    signing_input = f"{b64json(header())}.{b64(b'[1, 2]')}"
    with pytest.raises(InvalidToken):
        verifier().verify(f"{signing_input}.{b64(KEY.sign(signing_input.encode()))}")


def test_a_withdrawn_key_no_longer_verifies_even_cached_tokens() -> None:
    keys = KeySet()
    keys.replace([(KID, PUBLIC)])
    check = AccessTokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    token = signed()
    assert check.verify(token)
    keys.replace([])
    with pytest.raises(UnknownKeyId):
        check.verify(token)


def test_a_token_claiming_a_lifetime_beyond_the_maximum_is_refused() -> None:
    now = int(time.time())
    lenient = AccessTokenVerifier(_keys(), issuer=ISSUER, audience=AUDIENCE, max_lifetime_seconds=900)
    # Within the maximum plus the leeway: accepted.
    assert lenient.verify(signed(body=claims(iat=now, exp=now + 900 + 5))).expires_at == now + 905
    for exp in (now + 900 + 6, 253_402_300_799):  # just beyond; year 9999
        with pytest.raises(InvalidToken) as refused:
            lenient.verify(signed(body=claims(iat=now, exp=exp)))
        assert refused.value.why == "lifetime exceeds the maximum"


def test_a_token_issued_in_the_future_is_refused_by_the_verifiers_own_clock() -> None:
    now = int(time.time())
    # The verifier's clock runs a minute behind the wall clock: a token issued "now" is from its future.
    behind = verifier(clock=lambda: now - 60)
    assert verifier().verify(signed(body=claims(iat=now, exp=now + 300))).issued_at == now
    with pytest.raises(InvalidToken) as refused:
        behind.verify(signed(body=claims(iat=now, exp=now + 300)))
    assert refused.value.why == "issued in the future"
    # Within the leeway it is accepted.
    assert (
        verifier(clock=lambda: now - 5).verify(signed(body=claims(iat=now, exp=now + 300))).issued_at == now
    )


def _keys() -> KeySet:
    keys = KeySet()
    keys.replace([(KID, PUBLIC)])
    return keys
