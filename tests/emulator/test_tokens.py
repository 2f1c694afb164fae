from __future__ import annotations

import datetime as dt
from pathlib import Path

import jwt
import pytest

from dynasync.clock import FrozenClock
from dynasync.emulator.grants import (
    AuthCode,
    CodeRegistry,
    GrantError,
    RefreshGrant,
    RefreshTokenRegistry,
    pkce_matches,
)
from dynasync.emulator.tokens import InvalidToken, SigningKey, TokenIssuer, normalize_resource

ORG = "https://contoso.crm.dynamics.com"
TID = "11111111-2222-3333-4444-555555555555"
START = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def issuer(key: SigningKey, clock: FrozenClock | None = None, lifetime: int = 3599) -> TokenIssuer:
    return TokenIssuer(clock or FrozenClock(START), key, access_token_lifetime=lifetime)


def test_access_token_claims_for_app_only(key: SigningKey) -> None:
    tokens = issuer(key)
    issued = tokens.issue_access_token(tenant_id=TID, audience=ORG + "/", app_id="app-1", object_id="sp-1")

    claims = jwt.decode(
        issued.token, key.public_key, algorithms=["RS256"], audience=ORG, options={"verify_exp": False}
    )
    assert claims["aud"] == ORG
    assert claims["iss"] == f"https://sts.windows.net/{TID}/"
    assert claims["ver"] == "1.0"
    assert claims["appid"] == "app-1" and claims["oid"] == "sp-1" and claims["tid"] == TID
    assert claims["exp"] - claims["iat"] == 3599 == issued.expires_in
    assert claims["iat"] == claims["nbf"] == int(START.timestamp())
    assert "scp" not in claims and "upn" not in claims
    assert jwt.get_unverified_header(issued.token)["kid"] == key.kid


def test_delegated_token_has_scp_and_upn(key: SigningKey) -> None:
    tokens = issuer(key)
    issued = tokens.issue_access_token(
        tenant_id=TID,
        audience=ORG,
        app_id="app-1",
        object_id="user-1",
        scopes=["user_impersonation"],
        upn="user@contoso.onmicrosoft.com",
        name="User",
    )
    claims = tokens.verify_access_token(issued.token, ORG)
    assert claims.scopes == ("user_impersonation",)
    assert claims.upn == "user@contoso.onmicrosoft.com"
    assert not claims.is_app_only
    assert claims.object_id == "user-1" and claims.app_id == "app-1"


def test_verify_accepts_audience_with_or_without_trailing_slash(key: SigningKey) -> None:
    tokens = issuer(key)
    token = tokens.issue_access_token(tenant_id=TID, audience=ORG, app_id="a", object_id="o").token
    assert tokens.verify_access_token(token, ORG + "/").audience == ORG
    assert tokens.verify_access_token(token, "HTTPS://Contoso.crm.dynamics.com").is_app_only


def test_verify_rejects_wrong_audience(key: SigningKey) -> None:
    tokens = issuer(key)
    token = tokens.issue_access_token(tenant_id=TID, audience=ORG, app_id="a", object_id="o").token
    with pytest.raises(InvalidToken) as info:
        tokens.verify_access_token(token, "https://other.crm.dynamics.com")
    assert info.value.reason == "wrong_audience"


def test_expiry_follows_the_injected_clock(key: SigningKey) -> None:
    clock = FrozenClock(START)
    tokens = issuer(key, clock, lifetime=60)
    token = tokens.issue_access_token(tenant_id=TID, audience=ORG, app_id="a", object_id="o").token
    clock.advance(dt.timedelta(seconds=59))
    tokens.verify_access_token(token, ORG)
    clock.advance(dt.timedelta(seconds=1))
    with pytest.raises(InvalidToken) as info:
        tokens.verify_access_token(token, ORG)
    assert info.value.reason == "expired"


def test_not_yet_valid(key: SigningKey) -> None:
    clock = FrozenClock(START)
    tokens = issuer(key, clock)
    token = tokens.issue_access_token(tenant_id=TID, audience=ORG, app_id="a", object_id="o").token
    clock.advance(dt.timedelta(seconds=-5))
    with pytest.raises(InvalidToken) as info:
        tokens.verify_access_token(token, ORG)
    assert info.value.reason == "not_yet_valid"


def test_rejects_token_signed_by_another_key(key: SigningKey) -> None:
    forged = issuer(SigningKey.generate()).issue_access_token(
        tenant_id=TID, audience=ORG, app_id="a", object_id="o"
    )
    with pytest.raises(InvalidToken) as info:
        issuer(key).verify_access_token(forged.token, ORG)
    assert info.value.reason == "bad_signature"


def test_rejects_garbage_and_hs256(key: SigningKey) -> None:
    tokens = issuer(key)
    with pytest.raises(InvalidToken) as info:
        tokens.verify_access_token("not-a-jwt", ORG)
    assert info.value.reason == "malformed"
    hs = jwt.encode({"aud": ORG}, "k" * 32, algorithm="HS256")
    with pytest.raises(InvalidToken) as info:
        tokens.verify_access_token(hs, ORG)
    assert info.value.reason == "bad_signature"


def test_id_token_shape(key: SigningKey) -> None:
    tokens = issuer(key)
    token = tokens.issue_id_token(
        issuer=f"https://127.0.0.1:9/{TID}/v2.0",
        client_id="client-1",
        tenant_id=TID,
        object_id="user-1",
        preferred_username="user@contoso.onmicrosoft.com",
        name="User",
        nonce="n-1",
    )
    claims = jwt.decode(
        token, key.public_key, algorithms=["RS256"], audience="client-1", options={"verify_exp": False}
    )
    assert claims["iss"] == f"https://127.0.0.1:9/{TID}/v2.0"
    assert claims["nonce"] == "n-1" and claims["ver"] == "2.0"
    assert claims["preferred_username"] == "user@contoso.onmicrosoft.com"


def test_jwks_verifies_tokens(key: SigningKey) -> None:
    tokens = issuer(key)
    token = tokens.issue_access_token(tenant_id=TID, audience=ORG, app_id="a", object_id="o").token
    jwk = jwt.PyJWK.from_dict(tokens.jwks()["keys"][0])
    assert (
        jwt.decode(token, jwk.key, algorithms=["RS256"], audience=ORG, options={"verify_exp": False})["oid"]
        == "o"
    )


def test_signing_key_persists(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = SigningKey.load_or_create(path)
    second = SigningKey.load_or_create(path)
    assert first.kid == second.kid
    assert path.stat().st_mode & 0o777 == 0o600


def test_normalize_resource() -> None:
    assert normalize_resource("HTTPS://Contoso.CRM.dynamics.com/") == ORG
    assert normalize_resource("https://127.0.0.1:8443") == "https://127.0.0.1:8443"


def _code(challenge: str | None = None) -> AuthCode:
    return AuthCode(
        TID, "c", "https://r", "u", ORG, ("openid",), ("user_impersonation",), None, challenge, "S256", START
    )


def test_codes_are_single_use_and_expire() -> None:
    clock = FrozenClock(START)
    codes = CodeRegistry(clock)
    value = codes.issue(_code())
    assert codes.redeem(value).user_object_id == "u"
    with pytest.raises(GrantError) as info:
        codes.redeem(value)
    assert info.value.kind == "redeemed"

    late = codes.issue(_code())
    clock.advance(dt.timedelta(minutes=10))
    with pytest.raises(GrantError) as info:
        codes.redeem(late)
    assert info.value.kind == "expired"
    with pytest.raises(GrantError) as info:
        codes.redeem("nope")
    assert info.value.kind == "unknown"


def test_refresh_tokens_rotate_and_expire() -> None:
    clock = FrozenClock(START)
    registry = RefreshTokenRegistry(clock, lifetime=dt.timedelta(days=1))
    grant = RefreshGrant(TID, "c", "u", ORG, ("user_impersonation",), ("offline_access",), START)
    first = registry.issue(grant)
    assert registry.redeem(first).user_object_id == "u"
    with pytest.raises(GrantError) as info:
        registry.redeem(first)
    assert info.value.kind == "redeemed"

    second = registry.issue(grant)
    clock.advance(dt.timedelta(days=1))
    with pytest.raises(GrantError) as info:
        registry.redeem(second)
    assert info.value.kind == "expired"

    third = registry.issue(grant)
    assert registry.revoke_user("u") == 1
    with pytest.raises(GrantError):
        registry.redeem(third)


def test_pkce() -> None:
    # RFC 7636 appendix B example.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce_matches(verifier, challenge, "S256")
    assert not pkce_matches(verifier + "x", challenge, "S256")
    assert pkce_matches("plain-value", "plain-value", None)
