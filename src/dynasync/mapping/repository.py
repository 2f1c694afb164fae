"""Draft and published mapping versions: only a validated, published mapping runs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dynasync.clock import Clock, SystemClock
from dynasync.errors import MappingError
from dynasync.mapping.errors import MappingValidationError
from dynasync.mapping.spec import MappingSpec
from dynasync.mapping.validate import check_mapping
from dynasync.mapping.yaml_io import dump_mapping, load_mapping, write_text_atomic
from dynasync.synapses.base import StreamSpec


@dataclass(frozen=True, slots=True)
class PublishedVersion:
    """One published version of a synapse's mapping."""

    version: int
    published_at: dt.datetime
    summary: str
    checksum: str  # sha256 of the published YAML
    path: str


class MappingRepository(Protocol):
    """Where drafts and published versions of one synapse's mapping live (files today; a DB could follow)."""

    synapse: str

    def save_draft(self, spec: MappingSpec) -> None:
        """Store ``spec`` as the draft (replacing the previous draft)."""
        ...

    def draft(self) -> MappingSpec | None:
        """Return the draft, or None when there is none."""
        ...

    def publish(self, streams: Sequence[StreamSpec], *, summary: str = "") -> int:
        """Validate the draft against ``streams`` and publish it as the next version; return that version."""
        ...

    def published(self, version: int | None = None) -> MappingSpec | None:
        """Return a published version (default: the latest), or None when nothing was published."""
        ...

    def history(self) -> list[PublishedVersion]:
        """Return every published version, oldest first."""
        ...


class FileMappingRepository:
    """Mappings as files under one mappings directory.

    ``<root>/<synapse>.yaml`` is the draft users edit (config as code); ``<root>/published/<synapse>/v0001.yaml``
    plus ``index.json`` hold the immutable published snapshots.
    """

    def __init__(self, root: str | Path, synapse: str, *, clock: Clock | None = None) -> None:
        self.root = Path(root)
        self.synapse = synapse
        self.clock: Clock = clock or SystemClock()
        self.draft_path = self.root / f"{synapse}.yaml"
        self.published_dir = self.root / "published" / synapse
        self.index_path = self.published_dir / "index.json"

    def save_draft(self, spec: MappingSpec) -> None:
        """Write ``spec`` as the draft YAML (comments in a hand-edited draft are not kept).

        Raises:
            MappingError: the spec belongs to another synapse.
        """
        if spec.synapse != self.synapse:
            raise MappingError(
                f"this repository holds mappings of synapse '{self.synapse}', not '{spec.synapse}'",
                location=str(self.draft_path),
            )
        write_text_atomic(self.draft_path, dump_mapping(spec))

    def draft(self) -> MappingSpec | None:
        """Load the draft file; None when it does not exist.

        Raises:
            MappingValidationError: the draft has YAML syntax or shape problems.
        """
        if not self.draft_path.exists():
            return None
        return load_mapping(self.draft_path)

    def publish(self, streams: Sequence[StreamSpec], *, summary: str = "") -> int:
        """Validate the draft against the discovered schema and publish it as the next version.

        Raises:
            MappingError: there is no draft, or it belongs to another synapse.
            MappingValidationError: every problem of the draft, located in the draft file.
        """
        spec = self.draft()
        if spec is None:
            raise MappingError(
                f"no draft mapping for synapse '{self.synapse}'",
                location=str(self.draft_path),
                remedy="Save a draft first (dynasync mapping init writes the default mapping).",
            )
        if spec.synapse != self.synapse:
            raise MappingValidationError(
                [
                    MappingError(
                        f"the draft names synapse '{spec.synapse}', expected '{self.synapse}'",
                        location=f"{self.draft_path}:1",
                    )
                ]
            )
        check_mapping(spec, streams)
        history = self.history()
        version = history[-1].version + 1 if history else 1
        text = self.draft_path.read_text(encoding="utf-8")
        path = self.published_dir / f"v{version:04d}.yaml"
        write_text_atomic(path, text)
        entry = PublishedVersion(
            version=version,
            published_at=self.clock.now(),
            summary=summary,
            checksum=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            path=str(path),
        )
        self._write_index([*history, entry])
        return version

    def add_version(
        self, version: int, text: str, *, published_at: dt.datetime, summary: str
    ) -> PublishedVersion:
        """Write a snapshot validated and published elsewhere (e.g. the UDM store) as the next version.

        Unlike :meth:`publish` this does not validate: it mirrors a version that already passed validation.

        Raises:
            MappingError: ``version`` is not the next version of this synapse.
        """
        history = self.history()
        expected = history[-1].version + 1 if history else 1
        if version != expected:
            raise MappingError(
                f"cannot add mapping version {version} of synapse '{self.synapse}': the next version is {expected}",
                location=str(self.index_path),
            )
        path = self.published_dir / f"v{version:04d}.yaml"
        write_text_atomic(path, text)
        entry = PublishedVersion(
            version=version,
            published_at=published_at,
            summary=summary,
            checksum=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            path=str(path),
        )
        self._write_index([*history, entry])
        return entry

    def published(self, version: int | None = None) -> MappingSpec | None:
        """Load a published version (default: the latest); None when nothing was published.

        Raises:
            MappingError: the version does not exist or its snapshot was altered after publishing.
        """
        history = self.history()
        if not history:
            return None
        if version is None:
            entry = history[-1]
        else:
            found = [h for h in history if h.version == version]
            if not found:
                raise MappingError(
                    f"mapping version {version} of synapse '{self.synapse}' was never published"
                )
            entry = found[0]
        path = Path(entry.path)
        text = path.read_text(encoding="utf-8")
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != entry.checksum:
            raise MappingError(
                f"published mapping {path} was changed after publishing",
                location=str(path),
                remedy="Restore the file or publish a new version from the draft.",
            )
        return load_mapping(path)

    def history(self) -> list[PublishedVersion]:
        """Return every published version, oldest first."""
        if not self.index_path.exists():
            return []
        try:
            raw = json.loads(self.index_path.read_text(encoding="utf-8"))
            return [
                PublishedVersion(
                    version=int(item["version"]),
                    published_at=dt.datetime.fromisoformat(item["published_at"]),
                    summary=str(item["summary"]),
                    checksum=str(item["checksum"]),
                    path=str(self.published_dir / item["file"]),
                )
                for item in raw["versions"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise MappingError(
                f"mapping history index is damaged: {exc}", location=str(self.index_path)
            ) from None

    def _write_index(self, versions: list[PublishedVersion]) -> None:
        doc = {
            "synapse": self.synapse,
            "versions": [
                {
                    "version": v.version,
                    "published_at": v.published_at.isoformat(),
                    "summary": v.summary,
                    "checksum": v.checksum,
                    "file": Path(v.path).name,
                }
                for v in versions
            ],
        }
        write_text_atomic(self.index_path, json.dumps(doc, indent=2) + "\n")
