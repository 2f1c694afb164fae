"""Server-side grants of the emulated Entra ID: single-use authorization codes and rotating refresh tokens.

Both are opaque random strings mapped to what they grant; times come from the injected clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field, replace

from dynasync.clock import Clock

__all__ = ["AuthCode", "CodeRegistry", "GrantError", "RefreshGrant", "RefreshTokenRegistry", "pkce_matches"]


class GrantError(Exception):
    """A code or refresh token cannot be redeemed; ``kind`` is ``unknown``, ``redeemed`` or ``expired``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class AuthCode:
    """What an authorization code grants, bound to the client, redirect URI and PKCE challenge."""

    tenant_id: str
    client_id: str
    redirect_uri: str
    user_object_id: str
    resource: str
    scopes: tuple[str, ...]  # OIDC scopes requested alongside the resource, e.g. openid, offline_access
    permissions: tuple[str, ...]  # delegated permissions on the resource, e.g. user_impersonation
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: dt.datetime
    redeemed: bool = False


@dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token grants: a user's delegated access for one client."""

    tenant_id: str
    client_id: str
    user_object_id: str
    resource: str
    permissions: tuple[str, ...]
    scopes: tuple[str, ...]
    expires_at: dt.datetime = field(compare=False)


def pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    """Return True when ``verifier`` satisfies ``challenge`` under ``method`` (``S256`` or ``plain``)."""
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return hmac.compare_digest(computed, challenge)
    return hmac.compare_digest(verifier, challenge)


class CodeRegistry:
    """Issued authorization codes; each can be redeemed once before it expires."""

    def __init__(self, clock: Clock, lifetime: dt.timedelta = dt.timedelta(minutes=10)) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self._codes: dict[str, AuthCode] = {}
        self._lock = threading.Lock()

    def issue(self, code: AuthCode) -> str:
        """Store ``code`` (its ``expires_at`` is recomputed from the clock) and return the opaque value."""
        value = "1.A" + secrets.token_urlsafe(48)
        with self._lock:
            self._prune()
            self._codes[value] = replace(code, expires_at=self._clock.now() + self.lifetime)
        return value

    def redeem(self, value: str) -> AuthCode:
        """Mark the code used and return it.

        Raises:
            GrantError: ``unknown``, ``redeemed`` (second use) or ``expired``.
        """
        with self._lock:
            code = self._codes.get(value)
            if code is None:
                raise GrantError("unknown")
            if code.redeemed:
                raise GrantError("redeemed")
            if self._clock.now() >= code.expires_at:
                raise GrantError("expired")
            self._codes[value] = replace(code, redeemed=True)
            return code

    def _prune(self) -> None:
        # Keep redeemed codes until a while after expiry so reuse answers "already redeemed", not "unknown".
        horizon = self._clock.now() - self.lifetime
        for key in [k for k, c in self._codes.items() if c.expires_at < horizon]:
            del self._codes[key]


class RefreshTokenRegistry:
    """Refresh tokens; redeeming one revokes it and the caller issues its replacement (rotation)."""

    def __init__(self, clock: Clock, lifetime: dt.timedelta = dt.timedelta(days=90)) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self._tokens: dict[str, RefreshGrant] = {}
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _key(value: str) -> str:
        # Store only a digest so a dump of the registry does not leak usable tokens.
        return hashlib.sha256(value.encode()).hexdigest()

    def issue(self, grant: RefreshGrant) -> str:
        """Store a grant (expiry recomputed from the clock, sliding) and return a new opaque token."""
        value = "0.A" + secrets.token_urlsafe(64)
        with self._lock:
            self._tokens[self._key(value)] = replace(grant, expires_at=self._clock.now() + self.lifetime)
        return value

    def redeem(self, value: str) -> RefreshGrant:
        """Revoke the token and return its grant.

        Raises:
            GrantError: ``unknown``, ``redeemed`` (already rotated away) or ``expired``.
        """
        key = self._key(value)
        with self._lock:
            if key in self._revoked:
                raise GrantError("redeemed")
            grant = self._tokens.get(key)
            if grant is None:
                raise GrantError("unknown")
            if self._clock.now() >= grant.expires_at:
                del self._tokens[key]
                raise GrantError("expired")
            del self._tokens[key]
            self._revoked.add(key)
            return grant

    def revoke_user(self, user_object_id: str) -> int:
        """Revoke every refresh token of a user (e.g. after a password change); return how many."""
        with self._lock:
            keys = [k for k, g in self._tokens.items() if g.user_object_id == user_object_id]
            for key in keys:
                del self._tokens[key]
                self._revoked.add(key)
            return len(keys)
