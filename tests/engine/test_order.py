from __future__ import annotations

from dynasync.engine.order import dependency_order
from dynasync.udm.model import FieldType, UdmEntity, UdmField


def _entity(name: str, **refs: str) -> UdmEntity:
    fields = {"name": UdmField("name", FieldType.STRING)}
    for field, target in refs.items():
        fields[field] = UdmField(field, FieldType.REFERENCE, reference=target)
    return UdmEntity(name, fields)


def test_parents_first() -> None:
    entities = {
        "Opportunity": _entity("Opportunity", account="Account", contact="Contact", owner="User"),
        "Contact": _entity("Contact", account="Account", owner="User"),
        "Account": _entity("Account", parent="Account", owner="User"),
        "User": _entity("User"),
    }
    assert dependency_order(entities) == ["User", "Account", "Contact", "Opportunity"]
    assert dependency_order(entities, ["Contact", "User"]) == ["User", "Contact"]
    assert dependency_order(entities, ["Nope"]) == []


def test_cycles_are_broken_not_fatal() -> None:
    entities = {
        "Account": _entity("Account", primary_contact="Contact"),
        "Contact": _entity("Contact", account="Account"),
        "Lead": _entity("Lead"),
    }
    order = dependency_order(entities)
    assert sorted(order) == ["Account", "Contact", "Lead"]
    assert order[0] == "Lead"
