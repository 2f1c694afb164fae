"""Publishing from a file kept elsewhere, replacing drafts safely, and rolling back to earlier versions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynasync.clock import FrozenClock
from dynasync.errors import ConfigError
from dynasync.mapping import FileMappingRepository, MappingValidationError, format_problem, validate_mapping
from dynasync.mapping.draft_ops import Check, checked_file, replace_draft, rollback, unpublished_draft
from dynasync.mapping.mirrored_repository import MirroredMappingRepository
from dynasync.synapses.base import StreamSpec
from dynasync.udm.store import UdmStore, open_store

from .sample import SAMPLE_YAML
from .streams import small_streams

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
V2_YAML = "# v2: no primary contact\n" + SAMPLE_YAML.replace(
    "      - {column: primarycontactid, field: primary_contact_ref, type: reference, reference: Contact}\n",
    "",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[UdmStore]:
    udm = open_store(f"sqlite:///{tmp_path / 'udm.db'}")
    yield udm
    udm.close()


@pytest.fixture
def repo(tmp_path: Path, store: UdmStore) -> MirroredMappingRepository:
    """Version 1 is the sample mapping, version 2 drops the account's primary contact lookup."""
    files = FileMappingRepository(tmp_path / "mappings", "dynamics", clock=FrozenClock(T0))
    mirror = MirroredMappingRepository(files, store)
    mirror.save_draft_text(SAMPLE_YAML)
    mirror.publish(small_streams(), summary="first")
    mirror.save_draft_text(V2_YAML)
    mirror.publish(small_streams(), summary="no primary contact")
    return mirror


def _checks(streams: list[StreamSpec]) -> Check:
    """What the CLI checks before publishing, as far as a test without a workspace can: the schema."""
    return lambda spec: validate_mapping(spec, streams)


def _without_column(streams: list[StreamSpec], table: str, column: str) -> list[StreamSpec]:
    return [
        dataclasses.replace(s, columns={k: c for k, c in s.columns.items() if k != column})
        if s.name == table
        else s
        for s in streams
    ]


def test_rollback_publishes_the_earlier_text_as_the_next_version(repo: MirroredMappingRepository) -> None:
    assert rollback(repo, 1, small_streams(), _checks(small_streams())) == 3
    history = repo.history()
    assert [(h.version, h.summary) for h in history] == [
        (1, "first"),
        (2, "no primary contact"),
        (3, "rollback to version 1"),
    ]
    assert Path(history[2].path).read_text(encoding="utf-8") == SAMPLE_YAML
    assert repo.draft_path.read_text(encoding="utf-8") == SAMPLE_YAML
    assert repo.published() == repo.published(1)
    # Rolling forward again is one more rollback, with the summary given.
    assert (
        rollback(repo, 2, small_streams(), _checks(small_streams()), summary="contact lookup broke imports")
        == 4
    )
    assert repo.history()[-1].summary == "contact lookup broke imports"
    assert Path(repo.history()[-1].path).read_text(encoding="utf-8") == V2_YAML


def test_rollback_names_the_versions_it_cannot_use(repo: MirroredMappingRepository) -> None:
    with pytest.raises(ConfigError, match=r"no published mapping version 7 \(versions 1 to 2\)"):
        rollback(repo, 7, small_streams(), _checks(small_streams()))
    with pytest.raises(ConfigError, match="Version 2 is the published mapping"):
        rollback(repo, 2, small_streams(), _checks(small_streams()))
    assert len(repo.history()) == 2


def test_rollback_to_a_version_that_no_longer_fits_the_schema_is_refused(
    repo: MirroredMappingRepository,
) -> None:
    streams = _without_column(small_streams(), "account", "primarycontactid")
    with pytest.raises(MappingValidationError) as info:
        rollback(repo, 1, streams, _checks(streams))
    (problem,) = info.value.problems
    assert problem.location is not None and problem.location.startswith(repo.history()[0].path + ":")
    assert "primarycontactid" in format_problem(problem)
    assert len(repo.history()) == 2 and repo.draft_path.read_text(encoding="utf-8") == V2_YAML


def test_a_draft_with_unpublished_edits_is_never_replaced_silently(repo: MirroredMappingRepository) -> None:
    assert unpublished_draft(repo) is None  # the draft is what version 2 published
    edited = V2_YAML + "# work in progress\n"
    repo.draft_path.write_text(edited, encoding="utf-8")
    assert unpublished_draft(repo) == edited
    with pytest.raises(ConfigError, match="never published") as info:
        rollback(repo, 1, small_streams(), _checks(small_streams()))
    assert "--discard-draft" in (info.value.remedy or "")
    assert repo.draft_path.read_text(encoding="utf-8") == edited and len(repo.history()) == 2
    replace_draft(repo, edited, discard_draft=False)  # the same text loses nothing
    assert rollback(repo, 1, small_streams(), _checks(small_streams()), discard_draft=True) == 3


def test_checked_file_reports_every_problem_located_in_that_file(tmp_path: Path) -> None:
    path = tmp_path / "repo" / "dynamics.yaml"
    path.parent.mkdir()
    path.write_text(SAMPLE_YAML.replace("synapse: dynamics", "synapse: crm"), encoding="utf-8")
    streams = _without_column(small_streams(), "account", "revenue")
    with pytest.raises(MappingValidationError) as info:
        checked_file(path, "dynamics", _checks(streams))
    found = [format_problem(p) for p in info.value.problems]
    assert found[0] == f"{path}:2: the file names synapse 'crm', expected 'dynamics'"
    assert any(p.startswith(f"{path}:") and "revenue" in p for p in found[1:])
    path.write_text(SAMPLE_YAML, encoding="utf-8")
    assert checked_file(path, "dynamics", _checks(small_streams())) == SAMPLE_YAML
