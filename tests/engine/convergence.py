"""Checks shared by the crash and property tests: the UDM and the fake source hold the same records."""

from __future__ import annotations

from typing import Any

from dynasync.engine.echo import values_equal
from dynasync.synapses.base import LookupRef

from .fake_synapse import FakeSynapse
from .harness import World

TABLES = {"systemuser": "User", "account": "Account", "contact": "Contact", "opportunity": "Opportunity"}
COLUMNS = {
    "systemuser": {"name": "name"},
    "account": {
        "name": "name",
        "city": "city",
        "revenue": "revenue",
        "parentaccountid": "parent",
        "ownerid": "owner",
        "modifiedon": "modified_on",  # the UDM holds the source's latest modification time (echoes refresh it)
    },
    "contact": {"name": "name", "email": "email", "parentcustomerid": "account"},
    "opportunity": {"name": "name", "amount": "amount", "customerid": "account", "contactid": "contact"},
}


def mismatches(world: World, fake: FakeSynapse | None = None) -> list[str]:
    """Return every difference between the source and the UDM (empty when converged)."""
    source = fake or world.fake
    problems: list[str] = []
    links_by_table: dict[str, dict[str, str]] = {}
    for table in TABLES:
        links_by_table[table] = {lk.external_id: lk.udm_id for lk in world.store.iter_links("dyn", table)}
    for table, entity in TABLES.items():
        rows = source.rows(table)
        udm = world.udm(entity)
        links = links_by_table[table]
        if len(rows) != len(udm):
            problems.append(f"{table}: {len(rows)} source rows, {len(udm)} live UDM records")
        seen: set[str] = set()
        for ext_id, values in rows.items():
            udm_id = links.get(ext_id)
            if udm_id is None or udm_id not in udm:
                problems.append(f"{table} {ext_id}: no live UDM record linked")
                continue
            if udm_id in seen:
                problems.append(f"{table} {ext_id}: UDM record {udm_id} linked twice")
            seen.add(udm_id)
            record = udm[udm_id]
            for column, field in COLUMNS[table].items():
                expected: Any = values.get(column)
                if isinstance(expected, LookupRef):
                    expected = links_by_table[expected.table].get(expected.id, f"<unlinked {expected.id}>")
                if not values_equal(expected, record.get(field)):
                    problems.append(
                        f"{table} {ext_id}.{column}: source {expected!r} != udm {record.get(field)!r}"
                    )
        for udm_id in set(udm) - seen:
            problems.append(f"{entity} {udm_id}: live UDM record with no source row")
    return problems
