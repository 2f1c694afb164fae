"""The "Test connection" probe: WhoAmI plus the org's name and version, proving token, org URL and app user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynasync.synapses.dynamics.auth import ClientCredentialsProvider, TokenProvider
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.errors import RequestRejectedError
from dynasync.synapses.dynamics.odata import entity_path, query

__all__ = ["ConnectionReport", "check_connection", "test_connection"]


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What a successful connection test found."""

    org_url: str
    organization_id: str
    organization_name: str | None
    version: str | None
    user_id: str
    user_name: str | None
    application_id: str | None
    business_unit_id: str
    change_tracking_days: int | None

    def summary(self) -> str:
        """One line for the CLI and the setup page."""
        org = self.organization_name or self.organization_id
        user = self.user_name or self.user_id
        version = f", version {self.version}" if self.version else ""
        return f"Connected to {org} ({self.org_url}{version}) as {user}."


def _text(body: Any, key: str) -> str | None:
    value = body.get(key) if isinstance(body, dict) else None
    return str(value) if value is not None else None


async def test_connection(client: DataverseClient) -> ConnectionReport:
    """Prove the whole chain (sign-in, org URL, application user, read privileges) and say who we are.

    Raises:
        DynamicsError: The first failure, mapped to its remedy (consent, secret, application user ...).
    """
    who = await client.get_json("WhoAmI")
    user_id, org_id, bu_id = (_text(who, k) for k in ("UserId", "OrganizationId", "BusinessUnitId"))
    if not user_id or not org_id or not bu_id:
        raise RequestRejectedError(
            "WhoAmI answered without UserId, OrganizationId or BusinessUnitId.",
            remedy="The Organization URL does not point at a Dataverse Web API.",
        )
    version = _text(await client.get_json("RetrieveVersion()"), "Version")
    org = await client.get_json(
        entity_path("organizations", org_id) + "?" + query(select_=["name", "expirechangetrackingindays"]),
        table="organization",
    )
    user = await client.get_json(
        entity_path("systemusers", user_id) + "?" + query(select_=["fullname", "applicationid"]),
        table="systemuser",
    )
    days = org.get("expirechangetrackingindays") if isinstance(org, dict) else None
    return ConnectionReport(
        org_url=client.config.org_url,
        organization_id=org_id,
        organization_name=_text(org, "name"),
        version=version,
        user_id=user_id,
        user_name=_text(user, "fullname"),
        application_id=_text(user, "applicationid"),
        business_unit_id=bu_id,
        change_tracking_days=int(days) if isinstance(days, int | float) else None,
    )


# Keep pytest from collecting the probe as a test when a test module imports it by name.
test_connection.__test__ = False  # type: ignore[attr-defined]


async def check_connection(config: DynamicsConfig, tokens: TokenProvider | None = None) -> ConnectionReport:
    """Build a client (client-credentials tokens unless ``tokens`` is given), run :func:`test_connection`, close."""
    provider = tokens or ClientCredentialsProvider(config)
    try:
        async with DataverseClient(config, provider) as client:
            return await test_connection(client)
    finally:
        if isinstance(provider, ClientCredentialsProvider) and tokens is None:
            provider.close()
