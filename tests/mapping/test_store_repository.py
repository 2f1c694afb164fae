"""Mappings in the UDM store (ds_mappings) and mirrored with the YAML files, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from db_targets import TARGET_PARAMS, Target, database_target
from dynasync.activation import mapping_repository
from dynasync.clock import FrozenClock
from dynasync.config import Settings
from dynasync.errors import MappingError
from dynasync.mapping import (
    FileMappingRepository,
    MappingValidationError,
    dump_mapping,
    format_problem,
    loads_mapping,
)
from dynasync.mapping.mirrored_repository import MirroredMappingRepository
from dynasync.mapping.store_repository import StoreMappingRepository, checksum
from dynasync.udm import migrations
from dynasync.udm.migrations import m0001_initial, m0002_mappings
from dynasync.udm.store import UdmStore, open_store
from dynasync.workspace import SynapseRecord, Workspace

from .sample import SAMPLE_YAML
from .streams import small_streams

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)

# Five problems on four tables' worth of lines: a misspelt column on two tables and a misspelt table.
BAD_YAML = (
    SAMPLE_YAML.replace("column: revenue", "column: revenu")
    .replace("column: lastname", "column: lastnme")
    .replace("table: systemuser", "table: systemusr")
)
BAD_PROBLEMS = [
    (12, "column 'revenu' does not exist on table 'account' (did you mean 'revenue'?)"),
    (
        28,
        "lookup 'account.ownerid' cannot point to table 'systemusr' (its targets: systemuser, team) "
        "(did you mean 'systemuser'?)",
    ),
    (37, "column 'lastnme' does not exist on table 'contact' (did you mean 'lastname'?)"),
    (
        43,
        "lookup 'contact.ownerid' cannot point to table 'systemusr' (its targets: systemuser, team) "
        "(did you mean 'systemuser'?)",
    ),
    (44, "table 'systemusr' does not exist in the synapse schema (did you mean 'systemuser'?)"),
]


@pytest.fixture(params=TARGET_PARAMS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    with database_target(request.param, tmp_path, schema_prefix="maptest") as found:
        yield found


@pytest.fixture
def opener(target: Target) -> Iterator[Callable[[], UdmStore]]:
    """Open the target store (again); every store opened is closed at teardown."""
    opened: list[UdmStore] = []

    def open_() -> UdmStore:
        store = open_store(target.url, schema=target.schema, clock=FrozenClock(T0))
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Callable[[], UdmStore]) -> UdmStore:
    return opener()


def files_repo(tmp_path: Path) -> FileMappingRepository:
    return FileMappingRepository(tmp_path / "mappings", "dynamics", clock=FrozenClock(T0))


def store_repo(store: UdmStore) -> StoreMappingRepository:
    return StoreMappingRepository(store, "dynamics", clock=FrozenClock(T0), published_by="ana")


def without_contacts_lookup() -> str:
    return SAMPLE_YAML.replace(
        "      - {column: primarycontactid, field: primary_contact_ref, type: reference, reference: Contact}\n",
        "",
    )


# --- the store repository ------------------------------------------------------------------------------
def test_store_draft_publish_history(store: UdmStore) -> None:
    repo = store_repo(store)
    assert repo.draft() is None and repo.published() is None and repo.history() == []
    with pytest.raises(MappingError, match="no draft mapping for synapse 'dynamics' in the UDM store"):
        repo.publish(small_streams())
    spec = loads_mapping(SAMPLE_YAML)
    repo.save_draft(spec)
    assert repo.draft() == spec
    assert repo.published() is None  # a draft never runs

    assert repo.publish(small_streams(), summary="first") == 1
    second = loads_mapping(without_contacts_lookup())
    repo.save_draft(second)
    assert repo.draft() == second
    assert repo.publish(small_streams(), summary="second", published_by="bo") == 2

    assert repo.published() == second
    assert repo.published(1) == spec
    assert [(h.version, h.summary, h.published_at, h.path) for h in repo.history()] == [
        (1, "first", T0, "udm:ds_mappings/dynamics/v0001"),
        (2, "second", T0, "udm:ds_mappings/dynamics/v0002"),
    ]
    assert [(r.version, r.published_by, r.checksum) for r in repo.records()] == [
        (1, "ana", checksum(dump_mapping(spec))),
        (2, "bo", checksum(dump_mapping(second))),
    ]
    with pytest.raises(MappingError, match="version 7 of synapse 'dynamics' was never published"):
        repo.published(7)
    with pytest.raises(MappingError, match="not 'other'"):
        repo.save_draft(replace(spec, synapse="other"))
    # Another synapse's rows are its own.
    assert StoreMappingRepository(store, "other").history() == []


def test_publish_refuses_an_invalid_draft_listing_every_problem(store: UdmStore) -> None:
    repo = store_repo(store)
    repo.save_draft_text(BAD_YAML)
    with pytest.raises(MappingValidationError) as info:
        repo.publish(small_streams())
    assert [format_problem(p) for p in info.value.problems] == [
        f"udm:ds_mappings/dynamics/draft:{line}: {message}" for line, message in BAD_PROBLEMS
    ]
    assert repo.history() == [] and repo.published() is None
    # The draft keeps the text as written, comments included.
    record = repo.record(0)
    assert record is not None and record.yaml == BAD_YAML


def test_draft_text_must_parse_and_name_the_synapse(store: UdmStore) -> None:
    repo = store_repo(store)
    with pytest.raises(MappingValidationError) as info:
        repo.save_draft_text("format: 1\nsynapse: dynamics\nentities: [\n")
    assert info.value.problems[0].location is not None
    assert info.value.problems[0].location.startswith("udm:ds_mappings/dynamics/draft:")
    with pytest.raises(MappingValidationError, match="the draft names synapse 'other', expected 'dynamics'"):
        repo.save_draft_text(SAMPLE_YAML.replace("synapse: dynamics", "synapse: other"))
    assert repo.record(0) is None


def test_published_versions_are_immutable_and_checked(store: UdmStore) -> None:
    repo = store_repo(store)
    repo.save_draft_text(SAMPLE_YAML)
    repo.publish(small_streams())
    # Re-adding the same text is a no-op; other text under a published version is refused.
    assert repo.add_version(1, SAMPLE_YAML, published_at=T0, summary="again").summary == ""
    with pytest.raises(MappingError, match="already exists in the UDM store with other content"):
        repo.add_version(1, SAMPLE_YAML + "# more\n", published_at=T0, summary="")
    with pytest.raises(MappingError, match="the next version is 2"):
        repo.add_version(5, SAMPLE_YAML, published_at=T0, summary="")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ds_mappings SET yaml = yaml || '# edited' WHERE version = 1"))
    with pytest.raises(MappingError, match="was changed in the UDM store after publishing") as info:
        repo.published()
    assert info.value.location == "udm:ds_mappings/dynamics/v0001"


def test_concurrent_publishers_get_distinct_versions(opener: Callable[[], UdmStore]) -> None:
    first = store_repo(opener())
    first.save_draft_text(SAMPLE_YAML)
    repos = [first, store_repo(opener()), store_repo(opener())]
    versions: list[int] = []
    errors: list[BaseException] = []

    def publish(repo: StoreMappingRepository) -> None:
        try:
            versions.append(repo.publish(small_streams()))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(r,)) for r in repos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(versions) == [1, 2, 3]


# --- the mirror ----------------------------------------------------------------------------------------
def test_mirror_records_saves_and_publishes_in_both_places(tmp_path: Path, store: UdmStore) -> None:
    files = files_repo(tmp_path)
    mirror = MirroredMappingRepository(files, store)
    spec = loads_mapping(SAMPLE_YAML)
    mirror.save_draft(spec)
    db = store_repo(store)
    record = db.record(0)
    assert record is not None and record.yaml == files.draft_path.read_text(encoding="utf-8")
    assert mirror.draft() == spec and db.draft() == spec

    # The user edits the draft file by hand (a comment and a removed field); publishing takes that text.
    edited = "# reviewed by ana\n" + without_contacts_lookup()
    files.draft_path.write_text(edited, encoding="utf-8")
    assert mirror.publish(small_streams(), summary="first", published_by="cy") == 1
    assert [r.published_by for r in db.records()] == ["cy"]
    assert db.record(0).yaml == edited  # type: ignore[union-attr]
    assert db.record(1).yaml == edited  # type: ignore[union-attr]
    assert Path(files.history()[0].path).read_text(encoding="utf-8") == edited

    expected = loads_mapping(edited)
    assert mirror.published() == expected == db.published() == files.published()
    as_files = [(h.version, h.summary, h.published_at, h.checksum) for h in files.history()]
    assert as_files == [(h.version, h.summary, h.published_at, h.checksum) for h in db.history()]
    assert as_files == [(1, "first", T0, checksum(edited))]
    assert [Path(h.path).name for h in mirror.history()] == ["v0001.yaml"]
    # The spec read through the mirror is located in the snapshot file.
    assert mirror.published().source == files.history()[0].path  # type: ignore[union-attr]


def test_mirror_publish_refuses_an_invalid_draft_in_file_terms(tmp_path: Path, store: UdmStore) -> None:
    files = files_repo(tmp_path)
    mirror = MirroredMappingRepository(files, store)
    with pytest.raises(MappingError, match="no draft mapping for synapse 'dynamics'"):
        mirror.publish(small_streams())
    files.draft_path.parent.mkdir(parents=True)
    files.draft_path.write_text(BAD_YAML, encoding="utf-8")
    with pytest.raises(MappingValidationError) as info:
        mirror.publish(small_streams())
    assert [format_problem(p) for p in info.value.problems] == [
        f"{files.draft_path}:{line}: {message}" for line, message in BAD_PROBLEMS
    ]
    assert files.history() == [] and store_repo(store).history() == []
    assert store_repo(store).record(0) is None  # a refused publish records nothing


def test_edited_published_file_is_refused_naming_both(tmp_path: Path, store: UdmStore) -> None:
    files = files_repo(tmp_path)
    mirror = MirroredMappingRepository(files, store)
    mirror.save_draft(loads_mapping(SAMPLE_YAML))
    mirror.publish(small_streams())
    snapshot = Path(files.history()[0].path)
    original = snapshot.read_text(encoding="utf-8")
    snapshot.write_text(original.replace("type: decimal", "type: string"), encoding="utf-8")
    with pytest.raises(MappingError) as info:
        mirror.published()
    message = info.value.message
    assert str(snapshot) in message and "udm:ds_mappings/dynamics/v0001" in message
    assert store.engine.url.render_as_string(hide_password=True) in message
    assert "its file was edited after publishing" in message
    assert info.value.location == str(snapshot)

    # Editing the index's checksum too does not help: the store still disagrees.
    index = json.loads(files.index_path.read_text(encoding="utf-8"))
    index["versions"][0]["checksum"] = checksum(snapshot.read_text(encoding="utf-8"))
    files.index_path.write_text(json.dumps(index), encoding="utf-8")
    for read in (mirror.published, mirror.history):
        with pytest.raises(MappingError, match=r"differs between the file .* and the UDM store"):
            read()
    with pytest.raises(MappingError, match="records other content"):
        mirror.publish(small_streams())
    assert store_repo(store).history()[0].version == 1 and len(store_repo(store).history()) == 1

    # Restoring the file (and index) makes both agree again.
    snapshot.write_text(original, encoding="utf-8")
    index["versions"][0]["checksum"] = checksum(original)
    files.index_path.write_text(json.dumps(index), encoding="utf-8")
    assert mirror.published() == loads_mapping(SAMPLE_YAML)


def test_files_that_lost_versions_are_rewritten_from_the_store(tmp_path: Path, store: UdmStore) -> None:
    files = files_repo(tmp_path)
    mirror = MirroredMappingRepository(files, store)
    mirror.save_draft(loads_mapping(SAMPLE_YAML))
    mirror.publish(small_streams(), summary="one")
    mirror.save_draft(loads_mapping(without_contacts_lookup()))
    mirror.publish(small_streams(), summary="two")
    before = [(h.version, h.summary, h.published_at, h.checksum) for h in files.history()]
    # A fresh checkout without the snapshots: the store still knows every published version.
    for path in files.published_dir.iterdir():
        path.unlink()
    files.published_dir.rmdir()
    assert [(h.version, h.summary, h.published_at, h.checksum) for h in mirror.history()] == before
    assert files.published(1) == loads_mapping(SAMPLE_YAML)
    assert mirror.published() == loads_mapping(without_contacts_lookup())


def test_legacy_file_history_is_copied_into_an_empty_store(tmp_path: Path, store: UdmStore) -> None:
    files = files_repo(tmp_path)
    files.save_draft(loads_mapping(SAMPLE_YAML))
    files.publish(small_streams(), summary="before the store")
    files.save_draft(loads_mapping(without_contacts_lookup()))
    files.publish(small_streams(), summary="still files only")
    mirror = MirroredMappingRepository(files, store)
    assert mirror.published(1) == loads_mapping(SAMPLE_YAML)
    db = store_repo(store)
    assert [(h.version, h.summary, h.checksum) for h in db.history()] == [
        (h.version, h.summary, h.checksum) for h in files.history()
    ]
    assert db.published() == files.published()
    # The next publish continues the shared numbering in both places.
    assert mirror.publish(small_streams(), summary="mirrored") == 3
    assert [h.version for h in files.history()] == [h.version for h in db.history()] == [1, 2, 3]


def test_files_ahead_of_a_non_empty_store_are_refused(tmp_path: Path, store: UdmStore) -> None:
    files = files_repo(tmp_path)
    mirror = MirroredMappingRepository(files, store)
    mirror.save_draft(loads_mapping(SAMPLE_YAML))
    mirror.publish(small_streams())
    # A version published to the files only (not through dynasync with this store).
    files.publish(small_streams(), summary="files only")
    with pytest.raises(
        MappingError, match=r"version 2 of synapse 'dynamics' exist in the mapping files"
    ) as info:
        mirror.published()
    assert "which has versions 1" in info.value.message
    assert store_repo(store).history()[-1].version == 1


def test_a_tampered_legacy_snapshot_is_not_imported(tmp_path: Path, store: UdmStore) -> None:
    files = files_repo(tmp_path)
    files.save_draft(loads_mapping(SAMPLE_YAML))
    files.publish(small_streams())
    snapshot = Path(files.history()[0].path)
    snapshot.write_text(snapshot.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    with pytest.raises(
        MappingError, match="was changed after publishing; it is not copied into the UDM store"
    ):
        MirroredMappingRepository(files, store).history()
    assert store_repo(store).history() == []


def test_mirror_store_lifetime(tmp_path: Path, target: Target) -> None:
    opened: list[UdmStore] = []

    def open_() -> UdmStore:
        opened.append(open_store(target.url, schema=target.schema, clock=FrozenClock(T0)))
        return opened[-1]

    files = files_repo(tmp_path)
    mirror = MirroredMappingRepository(files, open_)
    mirror.save_draft(loads_mapping(SAMPLE_YAML))
    assert mirror.draft() is not None  # the draft file alone: no store opened
    mirror.publish(small_streams())
    assert mirror.published() is not None
    assert len(opened) == 3 and all(s._closed for s in opened)
    with MirroredMappingRepository(files, open_) as held:
        assert held.published() is not None and held.history()[0].version == 1
        assert len(opened) == 4 and not opened[-1]._closed
    assert opened[-1]._closed
    # A store passed in open belongs to the caller: the mirror never closes it.
    own = open_()
    with MirroredMappingRepository(files, own) as borrowed:
        assert borrowed.published() is not None
    assert not own._closed and store_repo(own).history()[0].version == 1
    own.close()


def test_mapping_repository_of_a_workspace_mirrors_into_its_udm(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    ws = Workspace(settings)
    record = SynapseRecord(name="Dynamics", kind="dynamics", endpoint_url="", org_url="")
    repo = mapping_repository(ws, record)
    assert repo.draft_path == settings.mappings_dir / "dynamics.yaml"
    repo.save_draft(loads_mapping(SAMPLE_YAML))
    assert repo.publish(small_streams(), summary="wired") == 1
    with open_store(settings.resolved_udm_url()) as udm:
        assert StoreMappingRepository(udm, "dynamics").published() == loads_mapping(SAMPLE_YAML)
    assert repo.published() == loads_mapping(SAMPLE_YAML)
    assert [h.summary for h in repo.history()] == ["wired"]


# --- the migration -------------------------------------------------------------------------------------
def test_migration_is_idempotent_on_reopen(store: UdmStore, opener: Callable[[], UdmStore]) -> None:
    assert store.schema_version() == migrations.latest_version() >= 2
    repo = store_repo(store)
    repo.save_draft_text(SAMPLE_YAML)
    repo.publish(small_streams())
    store.close()
    again = opener()
    assert again.schema_version() == migrations.latest_version()
    assert store_repo(again).published() == loads_mapping(SAMPLE_YAML)
    with again.engine.begin() as conn:
        assert migrations.migrate(conn, T0) == []
        m0002_mappings.upgrade(conn)  # the table exists: nothing happens
        versions = conn.execute(sa.text("SELECT version FROM ds_schema_version ORDER BY version")).scalars()
        assert list(versions) == list(range(1, migrations.latest_version() + 1))
    columns = {c["name"]: c for c in sa.inspect(again.engine).get_columns("ds_mappings")}
    assert set(columns) == {"synapse", "version", "yaml", "checksum", "summary", "created_at", "published_by"}
    assert columns["published_by"]["nullable"] and not columns["yaml"]["nullable"]
    assert sa.inspect(again.engine).get_pk_constraint("ds_mappings")["constrained_columns"] == [
        "synapse",
        "version",
    ]
    with pytest.raises(sa.exc.IntegrityError), again.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ds_mappings (synapse, version, yaml, checksum, created_at) "
                "VALUES ('x', -1, '', '', '2025-03-01 09:00:00')"
            )
        )


def test_a_version_1_store_upgrades_to_the_latest(target: Target, opener: Callable[[], UdmStore]) -> None:
    engine = target.engine()
    try:
        with engine.begin() as conn:
            m0001_initial.upgrade(conn)
            conn.execute(
                sa.text(
                    "CREATE TABLE ds_schema_version (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
                    "applied_at TIMESTAMP WITH TIME ZONE NOT NULL)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ds_schema_version VALUES (1, 'initial system tables', '2025-03-01 09:00:00')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ds_runs (run_id, started_at, status) VALUES ('r1', '2025-03-01 09:00:00', 'ok')"
                )
            )
        assert not sa.inspect(engine).has_table("ds_mappings")
    finally:
        engine.dispose()
    store = opener()
    assert store.schema_version() == migrations.latest_version()
    assert sa.inspect(store.engine).has_table("ds_tombstones")  # migration 3
    run = store.get_run("r1")
    assert run is not None and run.status == "ok"  # version 1 data survives the upgrade
    repo = store_repo(store)
    repo.save_draft_text(SAMPLE_YAML)
    assert repo.publish(small_streams()) == 1
