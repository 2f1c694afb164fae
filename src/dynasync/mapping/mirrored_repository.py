"""Mappings as YAML files (config as code) mirrored into the UDM store, refusing to run when the two disagree."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeAlias

from dynasync.errors import MappingError
from dynasync.mapping.repository import FileMappingRepository, PublishedVersion
from dynasync.mapping.spec import MappingSpec
from dynasync.mapping.store_repository import StoredMapping, StoreMappingRepository, checksum
from dynasync.mapping.yaml_io import loads_mapping, write_text_atomic
from dynasync.synapses.base import StreamSpec
from dynasync.udm.store import UdmStore

StoreSource: TypeAlias = UdmStore | Callable[[], UdmStore]


class MirroredMappingRepository:
    """A synapse's mapping kept in the mapping files and in the UDM store at once.

    The draft file ``<root>/<synapse>.yaml`` is what users edit; every save and publish is recorded in the
    store too, and a published version reads the same from either place. Before reading or publishing, the
    two histories are compared: a version whose text differs (someone edited a published file, or a row) is
    refused with an error naming both places. Versions on one side only are copied to the other when that
    cannot hide a change: store versions missing from the files are written back (the files lost them), and
    a store with no versions of this synapse takes the files' history (workspaces from before the store held
    mappings). Files with versions the store lacks while the store has others are refused.

    ``store`` is an open :class:`UdmStore` (owned by the caller, never closed here) or a function opening
    one. With a function, each call opens and closes its own store, unless the repository is used as a
    context manager, which holds one store open until the block ends.
    """

    def __init__(
        self, files: FileMappingRepository, store: StoreSource, *, published_by: str | None = None
    ) -> None:
        self.files = files
        self.synapse = files.synapse
        self.draft_path: Path = files.draft_path
        self.published_by = published_by
        self._store = store
        self._held: UdmStore | None = None

    # --- store lifetime ---------------------------------------------------------------------------------
    def __enter__(self) -> MirroredMappingRepository:
        if not isinstance(self._store, UdmStore) and self._held is None:
            self._held = self._store()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store this repository opened (a store passed in open is left to its owner)."""
        held, self._held = self._held, None
        if held is not None:
            held.close()

    @contextlib.contextmanager
    def store_repository(self) -> Iterator[StoreMappingRepository]:
        """Yield the store side (opening the store for this block when the repository does not hold one)."""
        if isinstance(self._store, UdmStore):
            yield self._store_repo(self._store)
            return
        if self._held is not None:
            yield self._store_repo(self._held)
            return
        opened = self._store()
        try:
            yield self._store_repo(opened)
        finally:
            opened.close()

    def _store_repo(self, store: UdmStore) -> StoreMappingRepository:
        return StoreMappingRepository(
            store, self.synapse, clock=self.files.clock, published_by=self.published_by
        )

    # --- the MappingRepository protocol -----------------------------------------------------------------
    def save_draft(self, spec: MappingSpec) -> None:
        """Write the draft file and record the same text as the store's draft.

        Raises:
            MappingError: the spec belongs to another synapse.
        """
        self.files.save_draft(spec)
        text = self.draft_path.read_text(encoding="utf-8")
        with self.store_repository() as repo:
            repo.save_draft_text(text, source=str(self.draft_path))

    def save_draft_text(self, text: str) -> None:
        """Make YAML text the draft as written (comments kept), in the file and in the store.

        Raises:
            MappingValidationError: syntax or shape problems, or the text names another synapse; nothing is
                written.
        """
        with self.store_repository() as repo:
            repo.save_draft_text(text, source=str(self.draft_path))  # checks the text before writing anything
        write_text_atomic(self.draft_path, text)

    def draft(self) -> MappingSpec | None:
        """Load the draft file (the source users edit; the store is not consulted)."""
        return self.files.draft()

    def publish(
        self, streams: Sequence[StreamSpec], *, summary: str = "", published_by: str | None = None
    ) -> int:
        """Validate the draft file and publish it as the next version in the store and in the files.

        The store commits first (draft text and version in one transaction); the file snapshot follows. Should
        writing the file fail, the next call writes it from the store.

        Args:
            streams: The discovered source schema the mapping must fit.
            summary: What changed.
            published_by: Who publishes, kept in the store (default: the repository's ``published_by``).

        Raises:
            MappingError: there is no draft file, or the two places disagree.
            MappingValidationError: every problem of the draft, located in the draft file; nothing is written.
        """
        if not self.draft_path.exists():
            raise MappingError(
                f"no draft mapping for synapse '{self.synapse}'",
                location=str(self.draft_path),
                remedy="Write one first: `dynasync mapping edit` starts from the published or default mapping.",
            )
        text = self.draft_path.read_text(encoding="utf-8")
        with self.store_repository() as repo:
            self._reconcile(repo)
            row = repo.publish_row(
                streams, summary=summary, published_by=published_by, text=text, source=str(self.draft_path)
            )
            # Writes the new snapshot (and any a concurrent publisher committed just before it), in order.
            self._reconcile(repo)
        return row.version

    def published(self, version: int | None = None) -> MappingSpec | None:
        """Return a published version (default: the latest) after checking both places hold the same text.

        Raises:
            MappingError: the version was never published, or the files and the store disagree about it.
        """
        with self.store_repository() as repo:
            self._reconcile(repo)
            row = repo.published_record(version)
            if row is None:
                return None
            entry = next(h for h in self.files.history() if h.version == row.version)
            path = Path(entry.path)
            text = _read_snapshot(path)
            if checksum(text) != row.checksum:
                raise self._disagreement(
                    repo, row, path, checksum(text), "its file was edited after publishing"
                )
        return loads_mapping(text, str(path))

    def history(self) -> list[PublishedVersion]:
        """Return every published version, oldest first (``path`` is the snapshot file)."""
        with self.store_repository() as repo:
            self._reconcile(repo)
        return self.files.history()

    # --- keeping the two places equal -------------------------------------------------------------------
    def _reconcile(self, repo: StoreMappingRepository) -> None:
        files = {h.version: h for h in self.files.history()}
        rows = {r.version: r for r in repo.records()}
        for version in sorted(files.keys() & rows.keys()):
            if files[version].checksum != rows[version].checksum:
                raise self._disagreement(
                    repo,
                    rows[version],
                    Path(files[version].path),
                    files[version].checksum,
                    f"the index {self.files.index_path} records other content",
                )
        only_files = sorted(files.keys() - rows.keys())
        only_store = sorted(rows.keys() - files.keys())
        if only_files and rows:
            raise MappingError(
                f"published mapping version{'s' if len(only_files) > 1 else ''} "
                f"{', '.join(map(str, only_files))} of synapse '{self.synapse}' exist in the mapping files "
                f"({self.files.index_path}) but not in the UDM store ({_label(repo)}), which has versions "
                f"{', '.join(map(str, sorted(rows)))}",
                location=str(self.files.index_path),
                remedy="Published versions are recorded by `dynasync mapping publish`; remove the versions "
                "added by hand from the files and publish the draft instead.",
            )
        if only_files:
            self._import_files(repo, [files[v] for v in only_files])
        if only_store:
            newest_file = max(files, default=0)
            if only_store[0] <= newest_file:
                raise MappingError(
                    f"published mapping version {only_store[0]} of synapse '{self.synapse}' is in the UDM store "
                    f"({_label(repo)}) but missing from the mapping files ({self.files.index_path}), which have "
                    "later versions",
                    location=str(self.files.index_path),
                    remedy="Restore the missing snapshot and its index entry from version control.",
                )
            for version in only_store:
                row = repo.verify(rows[version])
                self.files.add_version(version, row.yaml, published_at=row.created_at, summary=row.summary)

    def _import_files(self, repo: StoreMappingRepository, entries: list[PublishedVersion]) -> None:
        """Copy the files' published history into a store that has none for this synapse."""
        for entry in entries:
            path = Path(entry.path)
            text = _read_snapshot(path)
            if checksum(text) != entry.checksum:
                raise MappingError(
                    f"published mapping {path} was changed after publishing; it is not copied into the UDM "
                    f"store ({_label(repo)})",
                    location=str(path),
                    remedy="Restore the file or publish a new version from the draft.",
                )
            repo.add_version(entry.version, text, published_at=entry.published_at, summary=entry.summary)

    def _disagreement(
        self, repo: StoreMappingRepository, row: StoredMapping, path: Path, file_sum: str, why: str
    ) -> MappingError:
        return MappingError(
            f"published mapping version {row.version} of synapse '{self.synapse}' differs between the file "
            f"{path} (sha256 {file_sum[:12]}) and the UDM store {_label(repo)} at {repo.location(row.version)} "
            f"(sha256 {row.checksum[:12]}): {why}; refusing to use either",
            location=str(path),
            remedy=f"Published versions are immutable: restore {path} and {self.files.index_path} from version "
            "control, then make changes in the draft and publish a new version.",
        )

    def __repr__(self) -> str:
        return f"MirroredMappingRepository({str(self.files.root)!r}, {self.synapse!r})"


def _read_snapshot(path: Path) -> str:
    """The text of a published snapshot file; MappingError naming the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(
            f"cannot read published mapping {path}: {exc.strerror}", location=str(path)
        ) from None


def _label(repo: StoreMappingRepository) -> str:
    return repo.describe_store()
