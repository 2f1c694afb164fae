"""Per-table plans: column kinds, encoders, write-time facts and the cached generated row converters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dynasync.emulator.catalog import AttributeDef, AttributeType, EntityDef
from dynasync.emulator.store_codegen import (
    SelectPlan,
    WirePlan,
    build_insert_encoder,
    build_select_plan,
    build_wire_plan,
)
from dynasync.emulator.store_schema import (
    K_LOOKUP,
    encode_uuid,
    encoder_for,
    storage_kind,
    stored_attributes,
    table_name,
)
from dynasync.emulator.values import LookupValue

ADDRESS_PARTS = ("line1", "line2", "line3", "city", "stateorprovince", "postalcode", "country")


@dataclass(slots=True)
class TablePlan:
    """Everything the store needs to read and write one table; rebuilt when columns are added."""

    entity: EntityDef
    table: str
    pk: str
    attributes: dict[str, AttributeDef]
    kinds: dict[str, str]
    encoders: dict[str, Callable[[object], Any]]
    bool_defaults: dict[str, bool]
    money: list[AttributeDef]
    computed_fullname: bool
    addresses: list[tuple[int, str, frozenset[str]]]
    select_plans: dict[tuple[str, ...], SelectPlan] = field(default_factory=dict)
    wire_plans: dict[tuple[tuple[str, ...], tuple[str, ...]], WirePlan] = field(default_factory=dict)
    insert_plans: dict[tuple[str, ...], tuple[str, Callable[[dict[str, object]], tuple[Any, ...]]]] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, entity: EntityDef) -> TablePlan:
        """Build the plan of an entity from its catalog definition."""
        attributes = {a.logical_name: a for a in stored_attributes(entity)}
        return cls(
            entity=entity,
            table=table_name(entity.logical_name),
            pk=entity.primary_id,
            attributes=attributes,
            kinds={n: storage_kind(a) for n, a in attributes.items()},
            encoders={n: encoder_for(a) for n, a in attributes.items() if not a.is_lookup},
            bool_defaults={
                n: bool(a.default_value) for n, a in attributes.items() if a.type == AttributeType.BOOLEAN
            },
            money=[
                a for a in attributes.values() if a.type == AttributeType.MONEY and a.attribute_of is None
            ],
            computed_fullname="fullname" in attributes and not attributes["fullname"].valid_for_create,
            addresses=[
                (n, f"address{n}_composite", frozenset(f"address{n}_{p}" for p in ADDRESS_PARTS))
                for n in (1, 2, 3)
                if f"address{n}_composite" in attributes
            ],
        )

    def select_plan(self, names: tuple[str, ...]) -> SelectPlan:
        """The cached typed-row plan for these logical names (in this order)."""
        plan = self.select_plans.get(names)
        if plan is None:
            plan = build_select_plan(self.entity, [self.attributes[n] for n in names])
            self.select_plans[names] = plan
        return plan

    def wire_plan(self, shown: tuple[str, ...], hidden: tuple[str, ...]) -> WirePlan:
        """The cached wire-row plan (``shown`` output in order, ``hidden`` fetched for paging only)."""
        plan = self.wire_plans.get((shown, hidden))
        if plan is None:
            plan = build_wire_plan(
                self.entity, [self.attributes[n] for n in shown], [self.attributes[n] for n in hidden]
            )
            self.wire_plans[(shown, hidden)] = plan
        return plan

    def insert_plan(
        self, names: tuple[str, ...]
    ) -> tuple[str, Callable[[dict[str, object]], tuple[Any, ...]]]:
        """The cached INSERT statement and tuple encoder for rows carrying these columns."""
        plan = self.insert_plans.get(names)
        if plan is None:
            columns, encode = build_insert_encoder(self.entity, [self.attributes[n] for n in names])
            sql = f"INSERT INTO {self.table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            plan = (sql, encode)
            self.insert_plans[names] = plan
        return plan

    def encode(self, values: Mapping[str, object]) -> dict[str, object]:
        """Encode store values into SQL column values (lookups become ``x`` and ``x__t``)."""
        out: dict[str, object] = {}
        for name, value in values.items():
            if self.kinds[name] == K_LOOKUP:
                if value is None:
                    out[name] = None
                    out[name + "__t"] = None
                else:
                    assert isinstance(value, LookupValue)
                    out[name] = encode_uuid(value.id)
                    out[name + "__t"] = value.entity
            else:
                out[name] = self.encoders[name](value)
        return out
