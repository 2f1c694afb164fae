"""Order UDM entities so that parents are synced before the children that reference them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dynasync.udm.model import FieldType, UdmEntity


def reference_targets(entity: UdmEntity) -> set[str]:
    """Return the UDM entities that ``entity``'s reference fields point to (itself excluded)."""
    return {
        f.reference
        for f in entity.fields.values()
        if f.type is FieldType.REFERENCE and f.reference is not None and f.reference != entity.name
    }


def dependency_order(entities: Mapping[str, UdmEntity], selected: Iterable[str] | None = None) -> list[str]:
    """Return entity names, parents first (User before Account before Contact before Opportunity).

    Reference cycles (Account.primary contact <-> Contact.account) cannot all be honoured; the cycle is broken at
    the entity with the fewest unmet dependencies (ties by name) and the engine's pending records resolve the
    rest later in the run. Only entities in ``selected`` (all when None) are returned, in that dependency order.
    """
    names = set(entities) if selected is None else {n for n in selected if n in entities}
    deps = {n: reference_targets(entities[n]) & names for n in names}
    ordered: list[str] = []
    done: set[str] = set()
    while len(done) < len(names):
        ready = sorted(n for n in names - done if deps[n] <= done)
        if not ready:
            # A cycle: take the entity that waits on the fewest others; pending records cover the missing links.
            remaining = names - done
            ready = [min(remaining, key=lambda n: (len(deps[n] - done), n))]
        for name in ready:
            ordered.append(name)
            done.add(name)
    return ordered
