from __future__ import annotations

import datetime as dt

from dynasync.engine.policy import decide, field_policy
from dynasync.mapping.spec import ConflictPolicy, ConflictRule

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def _decide(
    current: object,
    incoming: object,
    policy: ConflictPolicy,
    *,
    src_time: dt.datetime | None = T1,
    udm_time: dt.datetime | None = T0,
    source: str = "dynamics",
) -> tuple[bool, str]:
    return decide(
        current=current,
        current_time=udm_time,
        incoming=incoming,
        incoming_time=src_time,
        source=source,
        conflict=policy,
    )


def test_latest_update_wins_compares_source_time_with_field_time() -> None:
    latest = ConflictPolicy()
    wins, why = _decide("a", "b", latest, src_time=T1, udm_time=T0)
    assert wins and why.startswith("dynamics wins: latest_update_wins")
    wins, why = _decide("a", "b", latest, src_time=T0, udm_time=T1)
    assert not wins and why.startswith("udm wins: latest_update_wins")
    # A tie goes to the source (the newer delivery); an unknown time on either side too.
    assert _decide("a", "b", latest, src_time=T0, udm_time=T0)[0]
    assert _decide("a", "b", latest, udm_time=None)[0]
    assert _decide("a", "b", latest, src_time=None)[0]


def test_selected_synapse_wins_and_others_only_fill_blanks() -> None:
    policy = ConflictPolicy(ConflictRule.SYNAPSE_WINS, synapse="dynamics")
    assert _decide("a", "b", policy, src_time=T0, udm_time=T1)[0]
    wins, why = _decide("a", "b", policy, source="hubspot")
    assert not wins and "dynamics selected" in why
    wins, why = _decide(None, "b", policy, source="hubspot")
    assert wins and "first non-blank" in why


def test_udm_wins_keeps_values_but_fills_blanks() -> None:
    policy = ConflictPolicy(ConflictRule.UDM_WINS)
    assert not _decide("a", "b", policy)[0]
    assert _decide("", "b", policy)[0]


def test_reject_empty_never_replaces_a_value_with_an_empty_one() -> None:
    policy = ConflictPolicy(reject_empty=True)
    wins, why = _decide("a", None, policy)
    assert not wins and "reject_empty" in why
    assert not _decide("a", "  ", policy)[0]
    # Without the switch an empty value is an ordinary (newer) change.
    assert _decide("a", None, ConflictPolicy())[0]


def test_field_policy_uses_each_fields_rule() -> None:
    policy = field_policy("dynamics", {"name": ConflictPolicy(ConflictRule.UDM_WINS)})
    assert policy("name", "a", T0, "b", T1) == (False, "udm wins: udm_wins")
    assert policy("city", "a", T0, "b", T1)[0]  # default: latest update wins


def test_a_source_clock_of_whole_seconds_is_compared_at_whole_seconds() -> None:
    latest = ConflictPolicy()
    udm_at = T0 + dt.timedelta(seconds=4, microseconds=114_000)
    # Dataverse's modifiedon: 04.000 for a change made at, say, 04.600, after the UDM's change at 04.114.
    assert _decide("udm", "dyn", latest, src_time=T0 + dt.timedelta(seconds=4), udm_time=udm_at)[0]
    assert not _decide("udm", "dyn", latest, src_time=T0 + dt.timedelta(seconds=3), udm_time=udm_at)[0]
    # A source with sub-second times is compared as it is.
    assert not _decide(
        "udm", "src", latest, src_time=T0 + dt.timedelta(seconds=4, microseconds=1), udm_time=udm_at
    )[0]
