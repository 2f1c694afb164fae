from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from dynasync.clock import FrozenClock
from dynasync.errors import MappingError
from dynasync.mapping import FileMappingRepository, MappingValidationError, format_problem, loads_mapping

from .sample import SAMPLE_YAML
from .streams import small_streams

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def repo(tmp_path: Path) -> FileMappingRepository:
    return FileMappingRepository(tmp_path / "mappings", "dynamics", clock=FrozenClock(T0))


def test_draft_publish_history(tmp_path: Path) -> None:
    store = repo(tmp_path)
    assert store.draft() is None and store.published() is None and store.history() == []
    spec = loads_mapping(SAMPLE_YAML)
    store.save_draft(spec)
    assert store.draft() == spec
    assert store.published() is None  # a draft never runs

    assert store.publish(small_streams(), summary="first") == 1
    changed = replace(spec, entities=spec.entities[:1] + spec.entities[2:])
    # Contact gone: account.primarycontactid now targets an unmapped table, so publishing must fail...
    store.save_draft(changed)
    with pytest.raises(MappingValidationError) as info:
        store.publish(small_streams())
    draft_path = str(tmp_path / "mappings" / "dynamics.yaml")
    assert [format_problem(p) for p in info.value.problems] == [
        f"{draft_path}:28: lookup 'account.primarycontactid' targets table 'contact', which is not mapped to "
        "any UDM entity (map 'contact' or remove this field)"
    ]
    # ...and the published version is untouched.
    assert store.published() == spec
    fixed_account = replace(
        changed.entities[0],
        fields=tuple(f for f in changed.entities[0].fields if f.column != "primarycontactid"),
    )
    fixed = replace(changed, entities=(fixed_account, *changed.entities[1:]))
    store.save_draft(fixed)
    assert store.publish(small_streams(), summary="drop contacts") == 2

    assert store.published() == fixed
    assert store.published(1) == spec
    history = store.history()
    assert [(h.version, h.summary, h.published_at) for h in history] == [
        (1, "first", T0),
        (2, "drop contacts", T0),
    ]
    assert Path(history[0].path).name == "v0001.yaml"
    with pytest.raises(MappingError, match="version 7"):
        store.published(7)


def test_publish_without_draft_and_tampering(tmp_path: Path) -> None:
    store = repo(tmp_path)
    with pytest.raises(MappingError, match="no draft mapping"):
        store.publish(small_streams())
    store.save_draft(loads_mapping(SAMPLE_YAML))
    store.publish(small_streams())
    snapshot = Path(store.history()[0].path)
    snapshot.write_text(snapshot.read_text() + "# edited\n")
    with pytest.raises(MappingError, match="changed after publishing"):
        store.published()


def test_wrong_synapse_and_bad_draft_yaml(tmp_path: Path) -> None:
    store = repo(tmp_path)
    with pytest.raises(MappingError, match="not 'other'"):
        store.save_draft(replace(loads_mapping(SAMPLE_YAML), synapse="other"))
    store.draft_path.parent.mkdir(parents=True)
    store.draft_path.write_text("synapse: dynamics\nentities:\n  - table: [\n")
    with pytest.raises(MappingValidationError) as info:
        store.publish(small_streams())
    assert info.value.problems[0].location == f"{store.draft_path}:4:1"
