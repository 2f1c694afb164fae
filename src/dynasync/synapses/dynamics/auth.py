"""Entra ID sign-in for the Dynamics synapse: redirect URL, auth-code + PKCE flow, client credentials, token cache.

msal does the protocol work; this module chooses its settings (authority, CA handling for the emulator), keeps the
msal token cache encrypted on disk through :mod:`dynasync.secrets`, runs msal's blocking calls in worker threads,
and turns every msal failure into a typed error with a remedy (:mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx
import msal
import requests

from dynasync.secrets import SecretBox
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.errors import (
    AuthFlowError,
    DynamicsError,
    ErrorContext,
    ReauthenticationRequiredError,
    from_aad_result,
    from_msal_exception,
)

__all__ = [
    "AuthCodeFlow",
    "ClientCredentialsProvider",
    "DelegatedTokenProvider",
    "EncryptedTokenCache",
    "PendingSignIn",
    "SignedIn",
    "StaticTokenProvider",
    "TokenProvider",
    "build_msal_app",
    "preflight_sign_in",
    "redirect_url",
]

_FLOW_TTL_SECONDS = 600.0  # Entra's authorization codes live about ten minutes; so does a pending sign-in.
_MSAL_TIMEOUT = 30


@runtime_checkable
class TokenProvider(Protocol):
    """Gives the Web API client a bearer token for the org; ``force_refresh`` bypasses any cache."""

    async def token(self, force_refresh: bool = False) -> str:
        """Return a valid access token."""
        ...


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "synapse"


def redirect_url(public_base_url: str, synapse_name: str) -> str:
    """Return the OAuth redirect URL to register on the app (setup Step 3 "Generate").

    Example: ``redirect_url("https://sync.example.com", "Dynamics Prod")`` ->
    ``https://sync.example.com/oauth/dynamics/dynamics-prod/callback``.
    """
    return f"{public_base_url.rstrip('/')}/oauth/dynamics/{quote(_slug(synapse_name))}/callback"


class StaticTokenProvider:
    """A provider returning fixed tokens in turn (tests, or a token obtained elsewhere); refresh moves on."""

    def __init__(self, *tokens: str) -> None:
        if not tokens:
            raise ValueError("StaticTokenProvider needs at least one token")
        self._tokens = list(tokens)
        self._index = 0
        self.refreshes = 0

    async def token(self, force_refresh: bool = False) -> str:
        """Return the current token; on ``force_refresh`` the next one (the last one repeats)."""
        if force_refresh:
            self.refreshes += 1
            self._index = min(self._index + 1, len(self._tokens) - 1)
        return self._tokens[self._index]

    def __repr__(self) -> str:
        return f"StaticTokenProvider(<{len(self._tokens)} tokens>)"


def msal_http_client(config: DynamicsConfig) -> requests.Session | None:
    """Return the ``requests`` session msal must use, or None for msal's default.

    For an emulator org the session trusts exactly the emulator's CA. ``trust_env`` is off because requests lets
    ``REQUESTS_CA_BUNDLE`` override an explicit ``verify=`` otherwise. Microsoft hosts keep msal's defaults.
    """
    if not config.is_emulator:
        return None
    session = requests.Session()
    session.trust_env = False
    session.verify = str(config.ca_bundle) if config.ca_bundle else True
    return session


def build_msal_app(config: DynamicsConfig, *, token_cache: Any = None) -> Any:
    """Create the ``msal.ConfidentialClientApplication`` for this synapse (blocking: it fetches discovery).

    Raises:
        DynamicsError: Mapped from msal's failure (unknown tenant, TLS, network ...).
    """
    ctx = config.error_context(redirect_url=redirect_url(config.public_base_url, config.name))
    kwargs: dict[str, Any] = {
        "client_credential": config.client_secret.get_secret_value(),
        "authority": config.authority,
        "token_cache": token_cache,
        "timeout": _MSAL_TIMEOUT,
        "app_name": "dynasync",
    }
    if config.is_emulator:
        kwargs["http_client"] = msal_http_client(config)
        kwargs["instance_discovery"] = False
    try:
        return msal.ConfidentialClientApplication(config.client_id, **kwargs)
    except Exception as exc:  # noqa: BLE001 - msal raises ValueError/requests errors/OSError; all are mapped
        raise from_msal_exception(exc, ctx) from None


class _MsalHolder:
    """Builds the msal app once, lazily, off the event loop; serialises msal calls for one synapse."""

    def __init__(self, config: DynamicsConfig, token_cache: Any = None) -> None:
        self.config = config
        self.ctx: ErrorContext = config.error_context(
            redirect_url=redirect_url(config.public_base_url, config.name)
        )
        self._token_cache = token_cache
        self._app: Any = None
        self._build_lock = threading.Lock()

    def app(self) -> Any:
        with self._build_lock:
            if self._app is None:
                self._app = build_msal_app(self.config, token_cache=self._token_cache)
            return self._app

    async def call(self, fn: Callable[[Any], Any]) -> Any:
        def run() -> Any:
            try:
                return fn(self.app())
            except DynamicsError:
                raise
            except Exception as exc:  # noqa: BLE001 - every msal failure becomes a typed error
                raise from_msal_exception(exc, self.ctx) from None

        return await asyncio.to_thread(run)

    def close(self) -> None:
        # msal wraps the session we gave it (a throttling wrapper keeps it as ``.http_client``; older
        # releases used ``._http_client``): close whichever layer is the requests session.
        client = getattr(self._app, "http_client", None)
        candidates = (client, getattr(client, "http_client", None), getattr(client, "_http_client", None))
        for candidate in candidates:
            if isinstance(candidate, requests.Session):
                candidate.close()


class ClientCredentialsProvider:
    """App-only tokens (scope ``<org>/.default``) for unattended runs; cached until shortly before expiry.

    Args:
        config: The synapse settings.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(self, config: DynamicsConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._msal = _MsalHolder(config)
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.acquisitions = 0

    def __repr__(self) -> str:
        return f"ClientCredentialsProvider(synapse={self._msal.config.name!r})"

    async def token(self, force_refresh: bool = False) -> str:
        """Return an app-only access token, asking Entra ID only when the cached one is near expiry or refused."""
        async with self._lock:
            if not force_refresh and self._token and self._clock() < self._expires_at:
                return self._token
            scope = self._msal.config.scope

            def acquire(app: Any) -> Any:
                if force_refresh:
                    app.remove_tokens_for_client()
                return app.acquire_token_for_client(scopes=[scope])

            result = await self._msal.call(acquire)
            token, lifetime = _token_of(result, self._msal.ctx)
            self.acquisitions += 1
            self._token = token
            self._expires_at = self._clock() + lifetime - min(300.0, lifetime / 2)
            return token

    def close(self) -> None:
        """Close msal's HTTP session (emulator only)."""
        self._msal.close()


def _token_of(result: Any, ctx: ErrorContext) -> tuple[str, float]:
    if not isinstance(result, Mapping):
        raise ReauthenticationRequiredError(
            "No token is available for this synapse.", remedy="Click Authenticate on the synapse and sign in."
        )
    if "access_token" not in result:
        raise from_aad_result(result, ctx)
    try:
        lifetime = float(result.get("expires_in") or 3600)
    except (TypeError, ValueError):
        lifetime = 3600.0
    return str(result["access_token"]), lifetime


class EncryptedTokenCache:
    """An msal ``SerializableTokenCache`` persisted encrypted (AES-GCM via :class:`SecretBox`) at ``path``.

    The file is written atomically with mode 0600 and only when msal changed the cache.
    """

    def __init__(self, path: Path, box: SecretBox, *, context: str) -> None:
        self.path = path
        self._box = box
        self._context = f"msal-cache|{context}"
        self._lock = threading.Lock()
        self.cache: Any = msal.SerializableTokenCache()
        if path.exists():
            self.cache.deserialize(
                box.decrypt(path.read_text(encoding="ascii").strip(), context=self._context)
            )

    def __repr__(self) -> str:
        return f"EncryptedTokenCache(path={str(self.path)!r})"

    def persist(self) -> None:
        """Write the cache if msal changed it since the last write."""
        with self._lock:
            if not self.cache.has_state_changed:
                return
            sealed = self._box.encrypt(self.cache.serialize(), context=self._context)
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(sealed + "\n")
            os.replace(tmp, self.path)
            self.cache.has_state_changed = False

    def clear(self) -> None:
        """Forget every token (sign out) and delete the file."""
        with self._lock:
            self.cache = msal.SerializableTokenCache()
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A started sign-in: send the browser to ``auth_url``; keep ``sealed`` (encrypted msal flow) until the callback."""

    auth_url: str
    state: str
    sealed: str

    def __repr__(self) -> str:
        return f"PendingSignIn(state={self.state!r})"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who signed in: their user name, Entra object id and tenant id (from the ID token)."""

    username: str | None
    object_id: str | None
    tenant_id: str | None


class AuthCodeFlow:
    """The interactive "Authenticate" step: authorization code with state, nonce and PKCE (S256) via msal.

    Args:
        config: The synapse settings.
        cache: Where the resulting refresh and access tokens are kept (encrypted).
        box: Encrypts the pending flow (it holds the PKCE verifier) between :meth:`begin` and :meth:`complete`.
        clock: Wall-clock seconds for the pending flow's expiry.
    """

    def __init__(
        self,
        config: DynamicsConfig,
        cache: EncryptedTokenCache,
        box: SecretBox,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.redirect_url = redirect_url(config.public_base_url, config.name)
        self._cache = cache
        self._box = box
        self._clock = clock
        self._msal = _MsalHolder(config, token_cache=cache.cache)
        self._context = f"authflow|{config.name}|{config.client_id}"

    async def begin(self, *, login_hint: str | None = None, prompt: str | None = None) -> PendingSignIn:
        """Start a sign-in and return the Microsoft sign-in URL plus the sealed flow to keep for the callback."""
        scopes = [self.config.delegated_scope]
        flow = await self._msal.call(
            lambda app: app.initiate_auth_code_flow(
                scopes=scopes,
                redirect_uri=self.redirect_url,
                login_hint=login_hint,
                prompt=prompt,
                # form_post keeps the authorization code out of URLs, browser history and proxy logs (RFC 9700).
                response_mode="form_post",
            )
        )
        if "error" in flow:
            raise from_aad_result(flow, self._msal.ctx)
        sealed = self._box.encrypt(
            json.dumps({"flow": flow, "created": self._clock()}), context=self._context
        )
        return PendingSignIn(str(flow["auth_uri"]), str(flow["state"]), sealed)

    async def complete(self, sealed: str, callback_query: Mapping[str, str]) -> SignedIn:
        """Finish the sign-in with the fields the browser brought back to the redirect URL.

        The sign-in uses ``response_mode=form_post``: Entra answers with a form the browser POSTs to the redirect
        URL (``code``, ``state``, ``session_state`` or ``error``, ``error_description``); pass those form fields
        (query parameters work too). Find ``sealed`` by the ``state`` field: a cross-site POST carries no
        SameSite=Lax cookie.

        Raises:
            AuthFlowError: The callback does not belong to this sign-in, or it expired.
            DynamicsAuthError: Entra ID refused (consent, secret, redirect URI ...), mapped with a remedy.
        """
        ctx = self._msal.ctx
        query = {str(k): str(v) for k, v in callback_query.items()}
        if "error" in query:
            raise from_aad_result(query, ctx)
        envelope = json.loads(self._box.decrypt(sealed, context=self._context))
        if self._clock() - float(envelope["created"]) > _FLOW_TTL_SECONDS:
            raise AuthFlowError(
                "The sign-in took too long and expired.",
                remedy="Click Authenticate again and finish within ten minutes.",
            )
        flow = envelope["flow"]
        if query.get("state") != flow.get("state"):
            raise AuthFlowError(
                "The sign-in answer does not belong to the sign-in dynasync started (state mismatch).",
                remedy="Click Authenticate again; do not reuse an old sign-in link.",
            )
        if "code" not in query:
            raise AuthFlowError(
                "The sign-in answer carries no authorization code.", remedy="Click Authenticate again."
            )

        def exchange(app: Any) -> Any:
            try:
                return app.acquire_token_by_auth_code_flow(flow, query)
            except ValueError as exc:  # msal raises ValueError for state/flow mismatches
                raise AuthFlowError(
                    f"The sign-in answer was refused: {exc}", remedy="Click Authenticate again."
                ) from None

        result = await self._msal.call(exchange)
        if "error" in result:
            raise from_aad_result(result, ctx)
        await asyncio.to_thread(self._cache.persist)
        claims = result.get("id_token_claims") or {}
        return SignedIn(claims.get("preferred_username"), claims.get("oid"), claims.get("tid"))

    def close(self) -> None:
        """Close msal's HTTP session (emulator only)."""
        self._msal.close()


_AADSTS_ON_PAGE = re.compile(r"AADSTS(\d{4,7})")


async def preflight_sign_in(
    config: DynamicsConfig, auth_url: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Load the sign-in URL once, without a browser, to catch errors Entra shows on its own page.

    A wrong client id, an unknown tenant or an unregistered redirect URL (AADSTS50011) are shown on Microsoft's
    error page instead of coming back to the redirect URL, so dynasync would never hear of them. Calling this
    before sending the user to ``auth_url`` turns them into typed errors with remedies. Redirects are not
    followed; only the sign-in host of the configured authority is contacted.

    Raises:
        DynamicsAuthError: The page names an AADSTS error.
    """
    authority = httpx.URL(config.authority)
    target = httpx.URL(auth_url)
    ctx = config.error_context(redirect_url=redirect_url(config.public_base_url, config.name))
    if (target.scheme, target.host, target.port) != (authority.scheme, authority.host, authority.port):
        raise AuthFlowError(
            f"The sign-in URL points at {target.host}, not at the configured sign-in host {authority.host}.",
            remedy="Check the Endpoint URL.",
        )
    if config.is_emulator:
        context = ssl.create_default_context(cafile=str(config.ca_bundle) if config.ca_bundle else None)
        client = httpx.AsyncClient(
            transport=transport, verify=context, trust_env=False, follow_redirects=False
        )
    else:
        client = httpx.AsyncClient(transport=transport, follow_redirects=False)
    async with client:
        try:
            response = await client.get(auth_url, timeout=_MSAL_TIMEOUT)
        except httpx.HTTPError as exc:
            raise from_msal_exception(exc, ctx) from None
    if response.is_redirect:
        return  # straight back to the app (or to a federated sign-in): nothing to report here
    found = _AADSTS_ON_PAGE.search(response.text)
    if found:
        sentence = _error_sentence(response.text)
        raise from_aad_result(
            {"error_description": sentence, "error_codes": [int(found.group(1))]},
            ctx,
            status=response.status_code,
        )


class _TextNodes(HTMLParser):
    """Collects the text nodes of a page (outside scripts and styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        text = re.sub(r"\s+", " ", data).strip()
        if text and not self._skip:
            self.nodes.append(text)


def _error_sentence(page: str) -> str:
    """The AADSTS message of an error page: the text of the element that holds it, without page chrome."""
    parser = _TextNodes()
    parser.feed(page)
    for node in parser.nodes:
        if _AADSTS_ON_PAGE.search(node):
            return node
    found = _AADSTS_ON_PAGE.search(page)
    return found.group(0) if found else ""


class DelegatedTokenProvider:
    """Tokens for the signed-in user (scope ``<org>/user_impersonation``), refreshed silently from the cache."""

    def __init__(self, config: DynamicsConfig, cache: EncryptedTokenCache) -> None:
        self._cache = cache
        self._msal = _MsalHolder(config, token_cache=cache.cache)
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"DelegatedTokenProvider(synapse={self._msal.config.name!r})"

    async def token(self, force_refresh: bool = False) -> str:
        """Return the user's access token, using the refresh token when needed."""
        scopes = [self._msal.config.delegated_scope]
        async with self._lock:

            def acquire(app: Any) -> Any:
                accounts = app.get_accounts()
                if not accounts:
                    return None
                return app.acquire_token_silent_with_error(
                    scopes, account=accounts[0], force_refresh=force_refresh
                )

            result = await self._msal.call(acquire)
            token, _ = _token_of(result, self._msal.ctx)
            await asyncio.to_thread(self._cache.persist)
            return token

    def close(self) -> None:
        """Close msal's HTTP session (emulator only)."""
        self._msal.close()
