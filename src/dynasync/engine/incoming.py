"""Turn mapped source records into the UDM store's incoming rows: only changed fields, and echoes recognised.

A link keeps the per-field fingerprint of what the source held when we last read or wrote the row. An incoming
row carries only the fields whose fingerprint moved (so a stale value of an untouched field never overwrites a
newer UDM value), and the new fingerprint as its hash. A row that comes back right after our own write, differing
only in columns the source maintains itself (modifiedon, versionnumber, a full name built from the parts...), is
our echo: its server-maintained values are refreshed in the UDM under an echo policy, and it counts as an echo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dynasync.engine import echo
from dynasync.engine.policy import always_applies
from dynasync.synapses.base import LookupRef, SourceRecord
from dynasync.udm.store import StoreTx
from dynasync.udm.store_types import FieldPolicy, IncomingRow, Link


@dataclass(slots=True)
class Prepared:
    """One mapped record ready for the store: values to apply, references still missing, echo verdict."""

    record: SourceRecord
    values: dict[str, Any]
    missing: dict[str, LookupRef] = field(default_factory=dict)
    echo: bool = False  # our own write read back (only server-maintained fields moved)


def echo_policy(source: str) -> FieldPolicy:
    """The field policy for echo rows: the source's own bookkeeping values always replace the UDM's."""
    return always_applies(f"{source} wins: echo of our own write (value maintained by {source} refreshed)")


def build_row(p: Prepared, link: Link | None, server_fields: frozenset[str]) -> IncomingRow:
    """Build the store row of a prepared record and decide whether it is an echo (sets ``p.echo``).

    Args:
        p: the mapped record.
        link: its link to the UDM (None: never seen; every value is sent).
        server_fields: UDM fields read only from columns the source maintains itself.
    """
    record = p.record
    p.echo = False
    if link is None:
        # A new link: everything is sent, so no per-field hashing is needed until the row is read again.
        return IncomingRow(
            external_id=record.id,
            values=p.values,
            modified_on=record.modified_on,
            external_version=record.version,
            hash=echo.encode_values(p.values),
        )
    state = link.last_read_hash
    if state is not None and state != link.last_written_hash:
        # Still in values form (made by a create, never written to since): compare values, keep the form.
        found = echo.values_changes(state, p.values)
        if found is not None:
            names, text, held = found
            return IncomingRow(
                external_id=record.id,
                values={name: p.values[name] for name in names},
                modified_on=record.modified_on,
                external_version=record.version,
                hash=text,
                synced=held or None,
            )
    current = echo.fingerprint(p.values)
    base = echo.decode(link.last_read_hash)
    changed = {name: value for name, value in p.values.items() if base.get(name) != current[name]}
    if changed:
        merged = dict(base)
        merged.update(current)
        text = echo.encode(merged)
        # Our write is the last thing we know of the row (mark_written set both hashes) and only columns the
        # source keeps itself moved since: the row is that write coming back.
        p.echo = (
            link.last_written_hash is not None
            and link.last_read_hash == link.last_written_hash
            and changed.keys() <= server_fields
        )
    else:
        # Every value hashes as the link says (so the link's text is the encoded fingerprint, extra fields kept).
        text = link.last_read_hash or echo.encode(current)
    return IncomingRow(
        external_id=record.id,
        values=changed,
        modified_on=record.modified_on,
        external_version=record.version,
        hash=text,
        synced=base or None,
    )


def resolve(tx: StoreTx, synapse: str, prepared: Sequence[Prepared]) -> None:
    """Turn references into UDM ids through the synapse's links, one query per target table."""
    wanted: dict[str, set[str]] = {}
    for p in prepared:
        for ref in p.missing.values():
            wanted.setdefault(ref.table, set()).add(ref.id)
    if not wanted:
        return
    found: dict[tuple[str, str], str] = {}
    for table, ids in wanted.items():
        for ext_id, link in tx.get_links(synapse, table, ids).items():
            found[(table, ext_id)] = link.udm_id
    for p in prepared:
        if not p.missing:
            continue
        for name, ref in list(p.missing.items()):
            udm_id = found.get((ref.table, ref.id))
            if udm_id is not None:
                p.values[name] = udm_id
                del p.missing[name]
