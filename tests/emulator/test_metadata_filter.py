from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.metadata_filter import check_filter, matches
from dynasync.emulator.odata_ast import And, Call, Compare, Lambda, Literal, Not, Or, Property, QueryFunction

ITEM: dict[str, object] = {
    "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84",
    "LogicalName": "account",
    "ObjectTypeCode": 1,
    "IsCustomEntity": False,
    "PrimaryImageAttribute": None,
    "OwnershipType": "UserOwned",
    "CanCreateAttributes": {
        "Value": True,
        "CanBeChanged": True,
        "ManagedPropertyLogicalName": "cancreateattributes",
    },
    "DisplayName": {"LocalizedLabels": [], "UserLocalizedLabel": None},
}


def eq(name: str, value: object, kind: str = "string") -> Compare:
    return Compare("eq", Property((name,)), Literal(value, kind))  # type: ignore[arg-type]


def test_comparisons() -> None:
    assert matches(eq("LogicalName", "Account"), ITEM)  # case-insensitive, as the service
    assert matches(eq("MetadataId", uuid.UUID("70816501-EDB9-4740-A16C-6A5EFBC05D84"), "guid"), ITEM)
    assert matches(eq("OwnershipType", "UserOwned", "enum"), ITEM)
    assert not matches(eq("OwnershipType", "OrganizationOwned", "enum"), ITEM)
    assert matches(eq("PrimaryImageAttribute", None, "null"), ITEM)
    assert not matches(Compare("ne", Property(("PrimaryImageAttribute",)), Literal(None, "null")), ITEM)
    assert matches(Compare("ge", Property(("ObjectTypeCode",)), Literal(Decimal("1.0"), "decimal")), ITEM)
    assert not matches(Compare("gt", Property(("ObjectTypeCode",)), Literal(1, "int")), ITEM)
    assert matches(Compare("eq", Property(("CanCreateAttributes", "Value")), Literal(True, "bool")), ITEM)


def test_boolean_connectives_and_bare_properties() -> None:
    assert matches(Or(eq("LogicalName", "x"), Not(Property(("IsCustomEntity",)))), ITEM)
    assert not matches(And(eq("LogicalName", "account"), Property(("IsCustomEntity",))), ITEM)


def test_type_mismatch_is_400() -> None:
    with pytest.raises(EmulatorError) as caught:
        matches(eq("LogicalName", 5, "int"), ITEM)
    assert caught.value.status == 400
    assert "Edm.String" in caught.value.message and "Edm.Int32" in caught.value.message


def test_label_and_unknown_paths_are_400() -> None:
    with pytest.raises(EmulatorError):
        matches(Compare("eq", Property(("DisplayName", "UserLocalizedLabel")), Literal(None, "null")), ITEM)
    with pytest.raises(EmulatorError):
        matches(Compare("eq", Property(("CanCreateAttributes", "Nope")), Literal(True, "bool")), ITEM)
    with pytest.raises(EmulatorError) as caught:
        check_filter(eq("Nope", "x"), ITEM.keys(), "EntityMetadata")
    assert (
        caught.value.message
        == "Could not find a property named 'Nope' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
    )


@pytest.mark.parametrize(
    "node",
    [
        Call("contains", (Property(("LogicalName",)), Literal("acc", "string"))),
        QueryFunction("Today", "createdon", ()),
        Lambda("Attributes", "any", None, None),
    ],
)
def test_functions_and_lambdas_are_not_implemented(node: Call | QueryFunction | Lambda) -> None:
    with pytest.raises(EmulatorError) as caught:
        check_filter(And(eq("LogicalName", "a"), node), ITEM.keys(), "EntityMetadata")
    assert caught.value.status == 501
    with pytest.raises(EmulatorError):
        matches(node, ITEM)
