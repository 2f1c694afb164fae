"""Unbound Web API functions sync clients call: WhoAmI, RetrieveVersion, RetrieveTotalRecordCount."""

from __future__ import annotations

import re

from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.http_types import ODataResponse
from dynasync.emulator.webctx import Ctx, segment_not_found

_CALL = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.]*)(?:\((?P<args>.*)\))?$", re.DOTALL)
FUNCTIONS = ("WhoAmI", "RetrieveVersion", "RetrieveTotalRecordCount")
# Real Dataverse operations the emulator does not implement: 501 naming them, rather than a 404 that would
# suggest a typo.
NOT_IMPLEMENTED = frozenset(
    {
        "RetrieveCurrentOrganization",
        "InitializeFrom",
        "BulkDelete",
        "WinOpportunity",
        "LoseOpportunity",
        "CloseIncident",
        "QualifyLead",
        "Merge",
        "ExecuteWorkflow",
        "RetrieveUserPrivileges",
        "RetrievePrincipalAccess",
        "GrantAccess",
        "RevokeAccess",
        "Assign",
        "SetState",
    }
)


def parse_call(segment: str) -> tuple[str, str | None] | None:
    """Split ``Name(args)`` into name and argument text; None when the segment is not call-shaped."""
    match = _CALL.match(segment)
    if match is None:
        return None
    return match.group("name"), match.group("args")


def is_function(segment: str) -> bool:
    """True when ``segment`` calls one of the implemented unbound functions."""
    call = parse_call(segment)
    return call is not None and call[0] in FUNCTIONS


def is_unimplemented(segment: str) -> bool:
    """True when ``segment`` names a real Dataverse function/action the emulator does not implement."""
    call = parse_call(segment)
    return call is not None and call[0] in NOT_IMPLEMENTED


def call_function(ctx: Ctx, segment: str) -> ODataResponse:
    """Run an unbound function (GET only); 501 for known but unimplemented operations."""
    call = parse_call(segment)
    if call is not None and call[0] in NOT_IMPLEMENTED:
        raise not_implemented(f"the '{call[0]}' function/action")
    if call is None or call[0] not in FUNCTIONS:
        raise segment_not_found(segment)
    name, args = call
    if ctx.request.method != "GET":
        raise EmulatorError(
            405, "0x80040315", f"The HTTP method '{ctx.request.method}' is not allowed for function '{name}'."
        )
    context = f"{ctx.base_url}$metadata#Microsoft.Dynamics.CRM.{name}Response"
    store = ctx.emulator.store
    if name == "WhoAmI":
        return ctx.json(
            200,
            {
                "@odata.context": context,
                "BusinessUnitId": str(store.business_unit_id),
                "UserId": str(ctx.caller) if ctx.caller else None,
                "OrganizationId": str(store.organization_id),
            },
        )
    if name == "RetrieveVersion":
        return ctx.json(200, {"@odata.context": context, "Version": ctx.emulator.settings.version})
    names = _entity_names(ctx, args or "")
    values = []
    for logical in names:
        if ctx.emulator.catalog.entity(logical) is None:
            raise EmulatorError(
                400, "0x80041102", f"The entity with a name = '{logical}' was not found in the MetadataCache."
            )
        values.append(store.count(logical, None))
    return ctx.json(
        200,
        {
            "@odata.context": context,
            "EntityRecordCountCollection": {
                "Count": len(names),
                "IsReadOnly": False,
                "Keys": names,
                "Values": values,
            },
        },
    )


def _entity_names(ctx: Ctx, args: str) -> list[str]:
    name, _, value = args.partition("=")
    if name.strip() != "EntityNames":
        raise EmulatorError(
            400, "0x80060888", "The function 'RetrieveTotalRecordCount' requires the parameter 'EntityNames'."
        )
    value = value.strip()
    if value.startswith("@"):
        value = ctx.aliases.get(value, "")
    value = value.strip()
    if not (value.startswith("[") and value.endswith("]")):
        raise EmulatorError(
            400, "0x80060888", f"The parameter value '{value}' is not a valid array of strings."
        )
    items = [item.strip() for item in value[1:-1].split(",") if item.strip()]
    names: list[str] = []
    for item in items:
        if len(item) < 2 or item[0] != item[-1] or item[0] not in "'\"":
            raise EmulatorError(
                400, "0x80060888", f"The parameter value '{value}' is not a valid array of strings."
            )
        names.append(item[1:-1])
    return names
