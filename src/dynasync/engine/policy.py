"""Conflict policy per field: decide whether an incoming value replaces the UDM value, and say why.

The rules are data in the mapping (:class:`dynasync.mapping.spec.ConflictPolicy` per field); this module turns
them into the store's :class:`dynasync.udm.store_types.FieldPolicy` callable for one source synapse. The decision
text names the winner and the reason; the store records it in the transactions log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from dynasync.engine.echo import is_empty
from dynasync.mapping.spec import DEFAULT_CONFLICT, ConflictPolicy, ConflictRule
from dynasync.udm.store_types import FieldPolicy, source_is_newer


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def decide(
    *,
    current: Any,
    current_time: dt.datetime | None,
    incoming: Any,
    incoming_time: dt.datetime | None,
    source: str,
    conflict: ConflictPolicy,
    contested: bool = True,
) -> tuple[bool, str]:
    """Decide one field of an existing UDM record: does ``incoming`` (from ``source``) replace ``current``?

    Args:
        current: the UDM value.
        current_time: when the UDM field last changed (None: unknown, the incoming value wins "latest").
        incoming: the value the source sent (already known to differ from ``current``).
        incoming_time: when the source changed the record (None: unknown, treated as newest).
        source: the synapse the value comes from.
        conflict: the field's policy.
        contested: False when the UDM value is still the one ``source`` last held, so only ``source`` changed
            the field since: the "selected synapse" and "latest update" rules settle simultaneous changes only,
            and a lone edit wins (a clock running behind in one system must not undo its users' edits).

    Returns:
        ``(source_wins, decision)``; the decision starts with the winner ("<source> wins" / "udm wins") and the rule.
    """
    if conflict.reject_empty and is_empty(incoming) and not is_empty(current):
        return False, "udm wins: reject_empty (an empty value never replaces a value)"
    if conflict.rule is ConflictRule.UDM_WINS:
        if is_empty(current):
            return True, f"{source} wins: udm_wins, but the UDM field was blank"
        return False, "udm wins: udm_wins"
    uncontested = f"{source} wins: no conflict (the UDM value is still the one {source} last held)"
    if conflict.rule is ConflictRule.SYNAPSE_WINS:
        trusted = conflict.synapse
        if trusted is None or trusted == source:
            return True, f"{source} wins: synapse_wins ({source} is the selected synapse)"
        if not contested:
            return True, uncontested
        if is_empty(current):
            return True, f"{source} wins: synapse_wins ({trusted} selected), first non-blank value accepted"
        return False, f"udm wins: synapse_wins ({trusted} selected, not {source})"
    if not contested:
        return True, uncontested
    if current_time is None or incoming_time is None:
        return True, f"{source} wins: latest_update_wins (no earlier update time known)"
    source_at, udm_at = _aware(incoming_time), _aware(current_time)
    if source_is_newer(source_at, udm_at):
        return True, (
            f"{source} wins: latest_update_wins ({source} changed at {source_at.isoformat()}, "
            f"udm at {udm_at.isoformat()})"
        )
    return False, (
        f"udm wins: latest_update_wins (udm changed at {udm_at.isoformat()}, {source} at {source_at.isoformat()})"
    )


def always_applies(decision: str) -> FieldPolicy:
    """A field policy under which every incoming value replaces the UDM's, logged with ``decision``."""

    def policy(
        field: str,
        current: Any,
        current_time: dt.datetime | None,
        incoming: Any,
        incoming_time: dt.datetime,
        *,
        contested: bool = True,
    ) -> tuple[bool, str]:
        return True, decision

    return policy


def field_policy(source: str, conflicts: Mapping[str, ConflictPolicy]) -> FieldPolicy:
    """Return the store's per-field policy callable for records coming from ``source``.

    Args:
        source: the synapse whose records are applied.
        conflicts: the mapping's policy per UDM field (others use the default, latest update wins).
    """

    def policy(
        field: str,
        current: Any,
        current_time: dt.datetime | None,
        incoming: Any,
        incoming_time: dt.datetime,
        *,
        contested: bool = True,
    ) -> tuple[bool, str]:
        return decide(
            current=current,
            current_time=current_time,
            incoming=incoming,
            incoming_time=incoming_time,
            source=source,
            conflict=conflicts.get(field, DEFAULT_CONFLICT),
            contested=contested,
        )

    return policy
