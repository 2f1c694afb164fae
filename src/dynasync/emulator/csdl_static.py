"""The fixed parts of the ``$metadata`` document, those that do not come from the catalog.

Vocabulary references, base types, complex types, and the functions and actions the emulator serves.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
NAMESPACE = "Microsoft.Dynamics.CRM"
ALIAS = "mscrm"

_VOCABULARIES = (
    ("http://vocabularies.odata.org/OData.Community.Keys.V1.xml", "OData.Community.Keys.V1", "Keys"),
    ("http://vocabularies.odata.org/OData.Community.Display.V1.xml", "OData.Community.Display.V1", "Display"),
    (
        "http://docs.oasis-open.org/odata/odata/v4.0/os/vocabularies/Org.OData.Core.V1.xml",
        "Org.OData.Core.V1",
        "Core",
    ),
    (
        "http://docs.oasis-open.org/odata/odata/v4.0/os/vocabularies/Org.OData.Capabilities.V1.xml",
        "Org.OData.Capabilities.V1",
        "Capabilities",
    ),
)


def element(name: str, attributes: dict[str, str] | None = None, children: list[str] | None = None) -> str:
    """Return one XML element as text; attribute values are escaped, children are already XML."""
    attrs = "".join(f" {key}={quoteattr(value)}" for key, value in (attributes or {}).items())
    if not children:
        return f"<{name}{attrs}/>"
    return f"<{name}{attrs}>{''.join(children)}</{name}>"


def references() -> list[str]:
    """The ``edmx:Reference`` elements for the vocabularies the annotations use."""
    return [
        element(
            "edmx:Reference",
            {"Uri": uri},
            [
                element("edmx:Include", {"Namespace": namespace, "Alias": alias}),
                element("edmx:IncludeAnnotations", {"TermNamespace": namespace}),
            ],
        )
        for uri, namespace, alias in _VOCABULARIES
    ]


def _property(name: str, edm_type: str, *, nullable: bool = True) -> str:
    attributes = {"Name": name, "Type": edm_type}
    if not nullable:
        attributes["Nullable"] = "false"
    return element("Property", attributes)


def base_types() -> list[str]:
    """The abstract base entity types: ``crmbaseentity`` (all tables) and ``principal`` (systemuser, team)."""
    return [
        element("EntityType", {"Name": "crmbaseentity", "Abstract": "true"}),
        element(
            "EntityType",
            {"Name": "principal", "BaseType": f"{ALIAS}.crmbaseentity", "Abstract": "true"},
            [
                element("Key", None, [element("PropertyRef", {"Name": "ownerid"})]),
                _property("ownerid", "Edm.Guid", nullable=False),
            ],
        ),
    ]


def complex_types() -> list[str]:
    """Response complex types of the functions and actions the emulator implements."""
    return [
        element(
            "ComplexType",
            {"Name": "WhoAmIResponse"},
            [
                _property("BusinessUnitId", "Edm.Guid", nullable=False),
                _property("UserId", "Edm.Guid", nullable=False),
                _property("OrganizationId", "Edm.Guid", nullable=False),
            ],
        ),
        element("ComplexType", {"Name": "RetrieveVersionResponse"}, [_property("Version", "Edm.String")]),
        element(
            "ComplexType",
            {"Name": "EntityRecordCountCollection"},
            [
                _property("Count", "Edm.Int32", nullable=False),
                _property("IsReadOnly", "Edm.Boolean", nullable=False),
                _property("Keys", "Collection(Edm.String)"),
                _property("Values", "Collection(Edm.Int64)"),
            ],
        ),
        element(
            "ComplexType",
            {"Name": "RetrieveTotalRecordCountResponse"},
            [_property("EntityRecordCountCollection", f"{ALIAS}.EntityRecordCountCollection")],
        ),
        element(
            "ComplexType", {"Name": "CreateMultipleResponse"}, [_property("Ids", "Collection(Edm.Guid)")]
        ),
    ]


def _return(type_name: str) -> str:
    return element("ReturnType", {"Type": type_name, "Nullable": "false"})


def _parameter(name: str, type_name: str) -> str:
    return element("Parameter", {"Name": name, "Type": type_name, "Nullable": "false"})


def operations() -> list[str]:
    """The ``Function`` and ``Action`` declarations.

    WhoAmI, RetrieveVersion, RetrieveTotalRecordCount and the collection-bound CreateMultiple,
    UpdateMultiple and UpsertMultiple.
    """
    targets = f"Collection({ALIAS}.crmbaseentity)"
    bulk = [
        element(
            "Action",
            {"Name": name, "IsBound": "true"},
            [_parameter("entityset", targets), _parameter("Targets", targets), *returns],
        )
        for name, returns in (
            ("CreateMultiple", [_return(f"{ALIAS}.CreateMultipleResponse")]),
            ("UpdateMultiple", []),
            ("UpsertMultiple", []),
        )
    ]
    return [
        element("Function", {"Name": "WhoAmI"}, [_return(f"{ALIAS}.WhoAmIResponse")]),
        element("Function", {"Name": "RetrieveVersion"}, [_return(f"{ALIAS}.RetrieveVersionResponse")]),
        element(
            "Function",
            {"Name": "RetrieveTotalRecordCount"},
            [
                _parameter("EntityNames", "Collection(Edm.String)"),
                _return(f"{ALIAS}.RetrieveTotalRecordCountResponse"),
            ],
        ),
        *bulk,
    ]


def function_imports() -> list[str]:
    """``FunctionImport`` entries of the container for the unbound functions."""
    return [
        element(
            "FunctionImport",
            {"Name": name, "Function": f"{NAMESPACE}.{name}", "IncludeInServiceDocument": "false"},
        )
        for name in ("WhoAmI", "RetrieveVersion", "RetrieveTotalRecordCount")
    ]
