"""Setting up a Dynamics 365 synapse, step by step as the setup guide tells users to.

Step 2 (name, Endpoint URL, Org URL) is :func:`add_dynamics`; Step 3 (Client ID, Client Secret, "Generate" the
OAuth redirect URL) is :func:`set_credentials`; Step 5 ("Authenticate") is :func:`begin_sign_in` +
:func:`complete_sign_in` (authorization code with PKCE) or :func:`use_client_credentials`; the connection test
is :func:`test_connection`. Activation (Step 6) lives in :mod:`dynasync.activation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dynasync.names import slug
from dynasync.secrets import Secret
from dynasync.synapses.dynamics.auth import (
    AuthCodeFlow,
    ClientCredentialsProvider,
    DelegatedTokenProvider,
    EncryptedTokenCache,
    PendingSignIn,
    SignedIn,
    TokenProvider,
    preflight_sign_in,
    redirect_url,
)
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.connection import ConnectionReport
from dynasync.synapses.dynamics.connection import test_connection as _probe
from dynasync.synapses.dynamics.errors import DynamicsConfigError
from dynasync.workspace import ACTIVE, INACTIVE, SynapseRecord, Workspace, now_iso

# Placeholders used only to validate Step 2 before the credentials of Step 3 exist; never stored.
_PLACEHOLDER_CLIENT_ID = "00000000-0000-0000-0000-000000000001"
_PLACEHOLDER_SECRET = "placeholder-not-stored"


def add_dynamics(
    ws: Workspace,
    *,
    name: str,
    endpoint_url: str,
    org_url: str,
    allow_local_emulator: bool = False,
    ca_bundle: Path | None = None,
    replace: bool = False,
) -> SynapseRecord:
    """Step 2: validate and save a synapse's name, Endpoint URL and Organization URL.

    Raises:
        DynamicsConfigError: Listing every wrong field with an example of a right value.
        ConfigError: A synapse of that name exists and ``replace`` is False.
    """
    config = _validate(
        name=name,
        endpoint_url=endpoint_url,
        org_url=org_url,
        client_id=_PLACEHOLDER_CLIENT_ID,
        client_secret=_PLACEHOLDER_SECRET,
        public_base_url=ws.settings.public_base_url,
        allow_local_emulator=allow_local_emulator,
        ca_bundle=ca_bundle,
        only=("name", "endpoint_url", "org_url", "ca_bundle", "public_base_url"),
    )
    if ws.exists(name) and not replace:
        from dynasync.errors import ConfigError

        existing = ws.get(name).name
        same = (
            f"A synapse named {name!r}"
            if existing == name
            else (f"Synapse {existing!r} (the same key, {slug(name)!r}, as {name!r})")
        )
        raise ConfigError(
            f"{same} already exists.",
            remedy="Pick another name, or pass --replace to overwrite it.",
        )
    record = SynapseRecord(
        name=config.name,
        kind="dynamics",
        endpoint_url=config.endpoint_url,
        org_url=config.org_url,
        allow_local_emulator=allow_local_emulator,
        ca_bundle=str(config.ca_bundle) if config.ca_bundle else None,
    )
    ws.save(record)
    return record


def set_credentials(ws: Workspace, record: SynapseRecord, *, client_id: str, client_secret: str) -> str:
    """Step 3: validate and save the Client ID and (encrypted) Client Secret; return the OAuth redirect URL."""
    _validate(
        name=record.name,
        endpoint_url=record.endpoint_url,
        org_url=record.org_url,
        client_id=client_id,
        client_secret=client_secret,
        public_base_url=ws.settings.public_base_url,
        allow_local_emulator=record.allow_local_emulator,
        ca_bundle=Path(record.ca_bundle) if record.ca_bundle else None,
        only=("client_id", "client_secret"),
    )
    record.client_id = client_id.strip().lower()
    ws.set_secret(record, Secret(client_secret))
    # An active (or paused) synapse keeps its status: new credentials are a rotation, not a new setup. The caller
    # restores the previous record should the sign-in with them fail.
    record.status = record.status if record.status in (ACTIVE, INACTIVE) else "configured"
    record.auth_mode = ""
    ws.save(record)
    return redirect_url(ws.settings.public_base_url, record.name)


def config_for(ws: Workspace, record: SynapseRecord) -> DynamicsConfig:
    """The validated DynamicsConfig of a saved synapse (secret decrypted in memory only)."""
    return DynamicsConfig.parse(
        {
            "name": record.name,
            "endpoint_url": record.endpoint_url,
            "org_url": record.org_url,
            "client_id": record.client_id,
            "client_secret": ws.secret(record).reveal(),
            "public_base_url": ws.settings.public_base_url,
            "allow_local_emulator": record.allow_local_emulator,
            "ca_bundle": record.ca_bundle,
        }
    )


def token_cache(ws: Workspace, record: SynapseRecord) -> EncryptedTokenCache:
    """The synapse's encrypted msal token cache."""
    return EncryptedTokenCache(ws.token_cache_path(record), ws.box, context=f"synapse:{record.name}")


async def begin_sign_in(ws: Workspace, record: SynapseRecord) -> tuple[AuthCodeFlow, PendingSignIn]:
    """Step 5, first half: the Microsoft sign-in URL to open (errors Entra shows on its own page are raised)."""
    config = config_for(ws, record)
    flow = AuthCodeFlow(config, token_cache(ws, record), ws.box)
    try:
        pending = await flow.begin()
        await preflight_sign_in(config, pending.auth_url)
    except BaseException:
        flow.close()  # the caller never sees the flow, so its HTTP session is closed here
        raise
    return flow, pending


async def complete_sign_in(
    ws: Workspace,
    record: SynapseRecord,
    flow: AuthCodeFlow,
    pending: PendingSignIn,
    callback_query: Mapping[str, str],
) -> tuple[SignedIn, ConnectionReport]:
    """Step 5, second half: exchange the code from the redirect, prove the connection, mark authenticated."""
    try:
        signed_in = await flow.complete(pending.sealed, callback_query)
    finally:
        flow.close()
    record.auth_mode = "auth_code"
    report = await test_connection(ws, record)
    record.status = authenticated_status(record)
    record.authenticated_at = now_iso()
    record.signed_in_as = signed_in.username
    ws.save(record)
    return signed_in, report


def authenticated_status(record: SynapseRecord) -> str:
    """The status after a successful sign-in: an active or paused synapse stays so; any other is authenticated."""
    return record.status if record.status in (ACTIVE, INACTIVE) else "authenticated"


async def use_client_credentials(ws: Workspace, record: SynapseRecord) -> ConnectionReport:
    """Authenticate app-only (client credentials, for unattended runs) and prove the connection."""
    record.auth_mode = "client_credentials"
    report = await test_connection(ws, record)
    record.status = authenticated_status(record)
    record.authenticated_at = now_iso()
    record.signed_in_as = report.user_name
    ws.save(record)
    return report


def token_provider(ws: Workspace, record: SynapseRecord) -> TokenProvider:
    """Tokens for this synapse by its authentication mode."""
    config = config_for(ws, record)
    if record.auth_mode == "auth_code":
        return DelegatedTokenProvider(config, token_cache(ws, record))
    if record.auth_mode == "client_credentials":
        return ClientCredentialsProvider(config)
    from dynasync.errors import AuthError

    raise AuthError(
        f"Synapse {record.name!r} is not authenticated yet.",
        remedy="Run `dynasync synapse auth` (Step 5 of the setup guide).",
    )


class SynapseClient(DataverseClient):
    """A Web API client that also closes its token provider (msal's HTTP session) when it is closed."""

    def __init__(self, config: DynamicsConfig, tokens: TokenProvider) -> None:
        super().__init__(config, tokens)
        self._provider = tokens

    async def aclose(self) -> None:
        """Close pooled connections, then the token provider's keep-alive connections to Entra ID."""
        try:
            await super().aclose()
        finally:
            close = getattr(self._provider, "close", None)
            if callable(close):
                close()


def open_client(ws: Workspace, record: SynapseRecord) -> DataverseClient:
    """A Web API client for this synapse (closing it also closes its token provider)."""
    return SynapseClient(config_for(ws, record), token_provider(ws, record))


async def test_connection(ws: Workspace, record: SynapseRecord) -> ConnectionReport:
    """WhoAmI and the org's name and version: proves sign-in, org URL and the application user."""
    async with open_client(ws, record) as client:
        return await _probe(client)


def _validate(*, only: tuple[str, ...], **fields: object) -> DynamicsConfig:
    try:
        return DynamicsConfig.parse(fields)
    except DynamicsConfigError as error:
        relevant = [p for p in error.problems if p.field in only]
        if relevant:
            raise DynamicsConfigError(relevant) from None
        # Problems only in fields this step does not own (they are placeholders here): build unchecked.
        return DynamicsConfig.model_construct(**fields)  # type: ignore[arg-type]
