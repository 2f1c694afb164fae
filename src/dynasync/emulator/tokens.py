"""Signed tokens of the emulated Entra ID: the RS256 key, JWKS, access and ID tokens, and bearer verification.

Access tokens look like the v1 tokens Dataverse receives: ``aud`` is the org URL without a trailing slash,
``iss`` is ``https://sts.windows.net/<tid>/``, ``ver`` is ``"1.0"``. Times come from an injectable
:class:`~dynasync.clock.Clock`, so tests expire tokens by moving the clock; verification also uses that clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dynasync.clock import Clock, SystemClock

__all__ = [
    "DEFAULT_ACCESS_TOKEN_LIFETIME",
    "InvalidToken",
    "IssuedToken",
    "SigningKey",
    "TokenClaims",
    "TokenIssuer",
    "normalize_resource",
]

DEFAULT_ACCESS_TOKEN_LIFETIME = 3599
_ID_TOKEN_LIFETIME = dt.timedelta(hours=1)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def normalize_resource(url: str) -> str:
    """Return an org URL in token-audience form: lower-case scheme and host, no trailing slash."""
    text = url.strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


class SigningKey:
    """An RSA key pair that signs tokens, with a stable key id (``kid``) derived from the public key."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._private_key = private_key
        der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = _b64url(hashlib.sha256(der).digest()[:20])

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a fresh 2048-bit key kept in memory."""
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, path: Path | str) -> SigningKey:
        """Load the PEM key at ``path``, creating it (mode 0600) when missing, so tokens survive restarts."""
        key_path = Path(path)
        if key_path.exists():
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{key_path} does not hold an RSA private key")
            return cls(loaded)
        key = cls.generate()
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = key._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return key

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The private key (for signing)."""
        return self._private_key

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The public key (for verification)."""
        return self._private_key.public_key()

    def jwk(self) -> dict[str, Any]:
        """Return the public key as a JWK entry."""
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


class InvalidToken(Exception):
    """A bearer token was rejected; ``reason`` is one of the ``REASONS`` and ``str(e)`` explains it."""

    REASONS = (
        "missing",
        "malformed",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_audience",
        "wrong_issuer",
    )

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims of an access token.

    Attributes:
        app_id: ``appid``: the client id of the calling application.
        object_id: ``oid``: the signed-in user, or the app's service principal for app-only tokens.
        tenant_id: ``tid``.
        audience: ``aud`` as issued (the org URL).
        scopes: Delegated permissions from ``scp`` (empty for app-only tokens).
        roles: Application permissions from ``roles``.
        upn: The user's UPN for delegated tokens, else None.
        expires_at: ``exp`` as an aware UTC datetime.
        raw: All claims.
    """

    app_id: str
    object_id: str
    tenant_id: str
    audience: str
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    upn: str | None
    expires_at: dt.datetime
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def is_app_only(self) -> bool:
        """True for client-credentials tokens (no user): no ``scp`` claim."""
        return not self.scopes


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and when it expires."""

    token: str = field(repr=False)
    expires_in: int
    expires_at: dt.datetime
    claims: dict[str, Any] = field(repr=False)


class TokenIssuer:
    """Signs and verifies the emulator's tokens.

    Args:
        clock: Time source for ``iat``/``nbf``/``exp`` and for verification.
        signing_key: The RS256 key (default: a fresh in-memory key).
        access_token_lifetime: Seconds an access token lives (``expires_in``); default 3599.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        signing_key: SigningKey | None = None,
        *,
        access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.signing_key = signing_key or SigningKey.generate()
        self.access_token_lifetime = access_token_lifetime

    def jwks(self) -> dict[str, Any]:
        """Return the JSON Web Key Set document."""
        return {"keys": [self.signing_key.jwk()]}

    def _sign(self, claims: dict[str, Any]) -> str:
        headers = {"typ": "JWT", "kid": self.signing_key.kid}
        return jwt.encode(claims, self.signing_key.private_key, algorithm="RS256", headers=headers)

    def issue_access_token(
        self,
        *,
        tenant_id: str,
        audience: str,
        app_id: str,
        object_id: str,
        scopes: Sequence[str] = (),
        roles: Sequence[str] = (),
        upn: str | None = None,
        name: str | None = None,
        lifetime: int | None = None,
    ) -> IssuedToken:
        """Issue a v1-format access token for ``audience`` (the org URL).

        Args:
            tenant_id: ``tid`` and the issuer's tenant.
            audience: The org URL; stored without a trailing slash.
            app_id: ``appid``: the client id.
            object_id: ``oid``: the user, or the app's service principal for app-only tokens.
            scopes: Delegated permissions (``scp``, space-joined); empty for app-only tokens.
            roles: Application permissions (``roles``); only emitted when non-empty.
            upn: The user's UPN (delegated tokens only).
            name: The user's display name.
            lifetime: Seconds until expiry (default: the issuer's ``access_token_lifetime``).
        """
        now = self.clock.now()
        seconds = self.access_token_lifetime if lifetime is None else lifetime
        iat = int(now.timestamp())
        claims: dict[str, Any] = {
            "aud": normalize_resource(audience),
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": iat,
            "nbf": iat,
            "exp": iat + seconds,
            "appid": app_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tenant_id}/",
            "oid": object_id,
            "sub": object_id,
            "tid": tenant_id,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "1.0",
        }
        if scopes:
            claims["scp"] = " ".join(scopes)
        else:
            claims["idtyp"] = "app"
        if roles:
            claims["roles"] = list(roles)
        if upn:
            claims["upn"] = upn
            claims["unique_name"] = upn
        if name:
            claims["name"] = name
        return IssuedToken(self._sign(claims), seconds, now + dt.timedelta(seconds=seconds), claims)

    def issue_id_token(
        self,
        *,
        issuer: str,
        client_id: str,
        tenant_id: str,
        object_id: str,
        preferred_username: str,
        name: str,
        nonce: str | None = None,
    ) -> str:
        """Issue a v2.0 ID token (``aud`` = client id, ``iss`` = the v2 issuer from the discovery document)."""
        now = int(self.clock.now().timestamp())
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + int(_ID_TOKEN_LIFETIME.total_seconds()),
            "name": name,
            "oid": object_id,
            "preferred_username": preferred_username,
            # A pairwise subject, as the real service gives: stable per (user, app).
            "sub": _b64url(hashlib.sha256(f"{object_id}:{client_id}".encode()).digest()),
            "tid": tenant_id,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def verify_access_token(self, token: str, audience: str) -> TokenClaims:
        """Check signature, issuer, audience and lifetime (by this issuer's clock) and return the claims.

        Args:
            token: The compact JWT (without the ``Bearer`` prefix).
            audience: The org URL the token must be for; a trailing slash on either side is ignored.

        Raises:
            InvalidToken: With ``reason`` ``malformed``, ``bad_signature``, ``wrong_issuer``,
                ``wrong_audience``, ``expired`` or ``not_yet_valid``.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise InvalidToken("malformed", f"The token is not a JWT: {exc}") from exc
        if header.get("alg") != "RS256":
            raise InvalidToken("bad_signature", f"Unsupported token algorithm {header.get('alg')!r}.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.signing_key.public_key,
                algorithms=["RS256"],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["aud", "iss", "exp", "nbf", "tid", "oid", "appid"],
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("bad_signature", "The token signature is invalid.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed", f"The token could not be read: {exc}") from exc
        if claims["iss"] != f"https://sts.windows.net/{claims['tid']}/":
            raise InvalidToken("wrong_issuer", f"The token issuer {claims['iss']!r} is not trusted.")
        if normalize_resource(str(claims["aud"])) != normalize_resource(audience):
            raise InvalidToken(
                "wrong_audience",
                f"The token audience {claims['aud']!r} is not {normalize_resource(audience)!r}.",
            )
        now = self.clock.now().timestamp()
        if now >= float(claims["exp"]):
            raise InvalidToken("expired", "The token is expired.")
        if now < float(claims["nbf"]):
            raise InvalidToken("not_yet_valid", "The token is not valid yet.")
        scopes = tuple(str(claims.get("scp", "")).split())
        return TokenClaims(
            app_id=str(claims["appid"]),
            object_id=str(claims["oid"]),
            tenant_id=str(claims["tid"]),
            audience=str(claims["aud"]),
            scopes=scopes,
            roles=tuple(str(r) for r in claims.get("roles", ())),
            upn=str(claims["upn"]) if "upn" in claims else None,
            expires_at=dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC),
            raw=claims,
        )
