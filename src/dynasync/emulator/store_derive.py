"""Columns the service derives on write (owner unit, base amounts, full name, addresses) and state rules.

Also the org defaults they read: the root business unit and the base currency.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.store_base import StoreBase
from dynasync.emulator.store_plan import TablePlan
from dynasync.emulator.store_schema import table_name
from dynasync.emulator.values import LookupValue


def compose_address(values: Mapping[str, object], n: int) -> str | None:
    """The ``addressN_composite`` text: street lines, then ``city, state postal``, then country (CRLF-separated)."""
    get = values.get
    p = f"address{n}_"
    lines = [str(v) for v in (get(p + "line1"), get(p + "line2"), get(p + "line3")) if v]
    city, region, postal, country = (
        get(p + "city"),
        get(p + "stateorprovince"),
        get(p + "postalcode"),
        get(p + "country"),
    )
    city_line = f"{city}, {region}" if city and region else str(city or region or "")
    if postal:
        city_line = f"{city_line} {postal}".strip()
    if city_line:
        lines.append(city_line)
    if country:
        lines.append(str(country))
    return "\r\n".join(lines) if lines else None


class DeriveMixin(StoreBase):
    """Derived columns and org defaults used by the write half."""

    # -- org defaults (small tables; read per write) ----------------------------------------------------

    def _scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def _default_business_unit(self) -> uuid.UUID | None:
        if "businessunit" not in self.catalog.entities:
            return None
        value = self._scalar(
            'SELECT "businessunitid" FROM "e_businessunit" WHERE "parentbusinessunitid" IS NULL '
            'ORDER BY "createdon", "businessunitid" LIMIT 1'
        )
        return uuid.UUID(value) if value else None

    def _base_currency(self) -> uuid.UUID | None:
        value = None
        if "organization" in self.catalog.entities:
            value = self._scalar('SELECT "basecurrencyid" FROM "e_organization" LIMIT 1')
        if value is None and "transactioncurrency" in self.catalog.entities:
            value = self._scalar(
                'SELECT "transactioncurrencyid" FROM "e_transactioncurrency" ORDER BY "createdon" LIMIT 1'
            )
        return uuid.UUID(value) if value else None

    def _exchange_rate(self, currency: uuid.UUID) -> Decimal:
        value = self._scalar(
            'SELECT "exchangerate" FROM "e_transactioncurrency" WHERE "transactioncurrencyid" = ?',
            (str(currency),),
        )
        return Decimal(repr(value)) if value else Decimal(1)

    def _owner_business_unit(self, owner: LookupValue) -> uuid.UUID | None:
        if owner.entity not in ("systemuser", "team") or owner.entity not in self.catalog.entities:
            return None
        pk = "systemuserid" if owner.entity == "systemuser" else "teamid"
        value = self._scalar(
            f'SELECT "businessunitid" FROM {table_name(owner.entity)} WHERE "{pk}" = ?', (str(owner.id),)
        )
        return uuid.UUID(value) if value else None

    def _admin_caller(self) -> uuid.UUID | None:
        value = self._scalar("SELECT value FROM ds_meta WHERE key = 'admin_user_id'")
        return uuid.UUID(value) if value else None

    # -- derived columns --------------------------------------------------------------------------------

    def _derive(
        self, plan: TablePlan, row: dict[str, object], changed: AbstractSet[str], cache: dict[Any, Any]
    ) -> None:
        """Recompute derived columns of ``row`` (a full row of store values) whose inputs are in ``changed``."""
        attrs = plan.attributes
        if plan.computed_fullname and ("firstname" in changed or "lastname" in changed):
            first, last = row.get("firstname"), row.get("lastname")
            row["fullname"] = f"{first} {last}" if first and last else (first or last or None)
        for n, composite, parts in plan.addresses:
            if not parts.isdisjoint(changed):
                row[composite] = compose_address(row, n)
        if "ownerid" in changed and "ownerid" in attrs:
            owner = row.get("ownerid")
            if isinstance(owner, LookupValue):
                if "owninguser" in attrs:
                    row["owninguser"] = owner if owner.entity == "systemuser" else None
                if "owningteam" in attrs:
                    row["owningteam"] = owner if owner.entity == "team" else None
                if "owningbusinessunit" in attrs:
                    key = ("bu", owner.id)
                    if key not in cache:
                        cache[key] = self._owner_business_unit(owner) or self._default_business_unit()
                    bu = cache[key]
                    row["owningbusinessunit"] = LookupValue("businessunit", bu) if bu else None
        money = plan.money
        if money and "exchangerate" in attrs and "transactioncurrencyid" in attrs:
            currency = row.get("transactioncurrencyid")
            if "transactioncurrencyid" in changed:
                if isinstance(currency, LookupValue):
                    key = ("rate", currency.id)
                    if key not in cache:
                        cache[key] = self._exchange_rate(currency.id)
                    row["exchangerate"] = cache[key]
                else:
                    row["exchangerate"] = None
            rate = row.get("exchangerate")
            for attribute in money:
                base = f"{attribute.logical_name}_base"
                if base in attrs and (
                    attribute.logical_name in changed or "transactioncurrencyid" in changed
                ):
                    value = row.get(attribute.logical_name)
                    if value is None or not isinstance(rate, Decimal) or rate == 0:
                        row[base] = None
                    else:
                        amount = value if isinstance(value, Decimal) else Decimal(str(value))
                        amount = amount.quantize(
                            Decimal(1).scaleb(-(attribute.precision or 2)), rounding=ROUND_HALF_UP
                        )
                        row[base] = (amount / rate).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)

    def _check_state(self, e: EntityDef, row: Mapping[str, object], row_id: uuid.UUID) -> None:
        state_attr, status_attr = e.attributes.get("statecode"), e.attributes.get("statuscode")
        if state_attr is None or status_attr is None:
            return
        state, status = row.get("statecode"), row.get("statuscode")
        state_option = next((o for o in state_attr.options if o.value == state), None)
        if state_option is None:
            allowed = ",".join(str(o.value) for o in state_attr.options)
            raise EmulatorError(
                400,
                "0x8004431A",
                f"A validation error occurred. The value {state} of 'statecode' on record of type "
                f"'{e.logical_name}' is outside the valid range. Accepted Values: {allowed}",
            )
        if not any(o.value == status and o.state == state for o in status_attr.options):
            raise EmulatorError(
                400,
                "0x80048408",
                f"{status} is not a valid status code for state code {e.schema_name}State."
                f"{state_option.invariant_name or state_option.label} on {e.logical_name} with Id {row_id}.",
            )

    def _default_status(self, e: EntityDef, state: object) -> int | None:
        state_attr = e.attributes.get("statecode")
        if state_attr is None:
            return None
        option = next((o for o in state_attr.options if o.value == state), None)
        return option.default_status if option else None
