"""Mapping drafts and immutable published versions kept in the UDM store (table ``ds_mappings``)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dynasync.clock import Clock, SystemClock
from dynasync.errors import MappingError
from dynasync.mapping.errors import MappingValidationError
from dynasync.mapping.repository import PublishedVersion
from dynasync.mapping.spec import MappingSpec
from dynasync.mapping.validate import check_mapping, wrong_synapse
from dynasync.mapping.yaml_io import dump_mapping, loads_mapping
from dynasync.synapses.base import StreamSpec
from dynasync.udm.store import UdmStore
from dynasync.udm.store_codec import UtcDateTime

DRAFT_VERSION = 0

# Query-side definition of the table migration m0002 creates (there it is frozen; here it reads aware UTC).
mappings_table = sa.Table(
    "ds_mappings",
    sa.MetaData(),
    sa.Column("synapse", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("yaml", sa.Text, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("published_by", sa.String(200)),
)
_m = mappings_table.c


def checksum(text: str) -> str:
    """Return the sha256 hex digest of a mapping's YAML text (the same digest the files' index keeps)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredMapping:
    """One row of ``ds_mappings``: the draft (version 0) or a published version."""

    synapse: str
    version: int
    yaml: str
    checksum: str
    summary: str
    created_at: dt.datetime
    published_by: str | None

    @property
    def is_draft(self) -> bool:
        """True for the draft row."""
        return self.version == DRAFT_VERSION


class StoreMappingRepository:
    """A synapse's mapping in the UDM store: one draft row and immutable, checksummed published versions.

    Implements :class:`dynasync.mapping.repository.MappingRepository`. The store stays open and owned by the
    caller. Error locations name rows as ``udm:ds_mappings/<synapse>/draft`` or ``.../v0003``.
    """

    def __init__(
        self,
        store: UdmStore,
        synapse: str,
        *,
        clock: Clock | None = None,
        published_by: str | None = None,
    ) -> None:
        self.store = store
        self.synapse = synapse
        self.clock: Clock = clock or SystemClock()
        self.published_by = published_by
        self.draft_location = self.location(DRAFT_VERSION)

    def location(self, version: int) -> str:
        """Return how error messages name a row: ``udm:ds_mappings/<synapse>/draft`` or ``/v0001``."""
        name = "draft" if version == DRAFT_VERSION else f"v{version:04d}"
        return f"udm:ds_mappings/{self.synapse}/{name}"

    # --- draft ------------------------------------------------------------------------------------------
    def save_draft(self, spec: MappingSpec) -> None:
        """Store ``spec`` as the draft, replacing the previous draft.

        Raises:
            MappingError: the spec belongs to another synapse.
        """
        self._check_synapse(spec.synapse)
        self.save_draft_text(dump_mapping(spec))

    def save_draft_text(self, text: str, *, source: str | None = None) -> None:
        """Store YAML text (comments kept) as the draft after checking it parses.

        Args:
            text: The mapping YAML.
            source: How errors name the text (default: the draft row's location).

        Raises:
            MappingValidationError: syntax or shape problems, or the text names another synapse.
        """
        self._parse(text, source or self.draft_location)
        with self.store.transaction() as tx:
            conn = tx.connection
            _lock(conn, self.synapse)
            self._put_draft(conn, text)

    def draft(self) -> MappingSpec | None:
        """Return the draft, or None when there is none."""
        row = self.record(DRAFT_VERSION)
        return None if row is None else loads_mapping(row.yaml, self.draft_location)

    # --- publishing -------------------------------------------------------------------------------------
    def publish(
        self,
        streams: Sequence[StreamSpec],
        *,
        summary: str = "",
        published_by: str | None = None,
        text: str | None = None,
        source: str | None = None,
    ) -> int:
        """Validate the draft against the discovered schema and publish it as the next version; return it.

        Arguments and errors as :meth:`publish_row`.
        """
        return self.publish_row(
            streams, summary=summary, published_by=published_by, text=text, source=source
        ).version

    def publish_row(
        self,
        streams: Sequence[StreamSpec],
        *,
        summary: str = "",
        published_by: str | None = None,
        text: str | None = None,
        source: str | None = None,
    ) -> StoredMapping:
        """Validate the draft against the discovered schema, publish it as the next version and return its row.

        Args:
            streams: The discovered source schema the mapping must fit.
            summary: What changed.
            published_by: Who publishes (default: the repository's ``published_by``).
            text: YAML to store as the draft and publish in the same transaction (default: the stored draft).
            source: How problems are located in ``text`` (e.g. the draft file's path).

        Raises:
            MappingError: there is no draft.
            MappingValidationError: every problem of the draft, each with its location; nothing is written.
        """
        with self.store.transaction() as tx:
            conn = tx.connection
            _lock(conn, self.synapse)
            given = text is not None
            if text is None:
                draft = _row(conn, self.synapse, DRAFT_VERSION)
                if draft is None:
                    raise MappingError(
                        f"no draft mapping for synapse '{self.synapse}' in the UDM store",
                        location=self.draft_location,
                        remedy="Write one first: `dynasync mapping edit` starts from the published or default mapping.",
                    )
                text = draft.yaml
            spec = self._parse(text, source or self.draft_location)
            check_mapping(spec, streams)
            if given:
                self._put_draft(conn, text)
            row = StoredMapping(
                synapse=self.synapse,
                version=(_latest_version(conn, self.synapse) or 0) + 1,
                yaml=text,
                checksum=checksum(text),
                summary=summary,
                created_at=self.clock.now(),
                published_by=published_by if published_by is not None else self.published_by,
            )
            _insert(conn, row)
        return row

    def add_version(
        self,
        version: int,
        text: str,
        *,
        published_at: dt.datetime,
        summary: str,
        published_by: str | None = None,
    ) -> StoredMapping:
        """Record a version validated and published elsewhere (the mapping files) without validating again.

        Idempotent: the same text under the same version is accepted as is.

        Raises:
            MappingError: the version exists with different text, or is not the next version.
        """
        with self.store.transaction() as tx:
            conn = tx.connection
            _lock(conn, self.synapse)
            existing = _row(conn, self.synapse, version)
            wanted = checksum(text)
            if existing is not None:
                if existing.checksum != wanted:
                    raise MappingError(
                        f"published mapping version {version} of synapse '{self.synapse}' already exists in the "
                        f"UDM store with other content (sha256 {existing.checksum[:12]}, not {wanted[:12]})",
                        location=self.location(version),
                    )
                return existing
            expected = (_latest_version(conn, self.synapse) or 0) + 1
            if version != expected:
                raise MappingError(
                    f"cannot add mapping version {version} of synapse '{self.synapse}' to the UDM store: "
                    f"the next version is {expected}",
                    location=self.location(version),
                )
            row = StoredMapping(
                self.synapse, version, text, wanted, summary, published_at, published_by or self.published_by
            )
            _insert(conn, row)
            return row

    # --- reading ----------------------------------------------------------------------------------------
    def published(self, version: int | None = None) -> MappingSpec | None:
        """Return a published version (default: the latest), or None when nothing was published.

        Raises:
            MappingError: the version was never published, or its row was altered after publishing.
        """
        row = self.published_record(version)
        return None if row is None else loads_mapping(row.yaml, self.location(row.version))

    def published_record(self, version: int | None = None) -> StoredMapping | None:
        """Return a published row with its checksum verified (default: the latest); None when none exists.

        Raises:
            MappingError: the version was never published, or its text no longer matches its checksum.
        """
        if version is not None and version <= DRAFT_VERSION:
            raise MappingError(f"mapping versions start at 1; {version} is not a published version")
        with self.store.transaction(write=False) as tx:
            conn = tx.connection
            if version is None:
                latest = _latest_version(conn, self.synapse)
                row = None if latest is None else _row(conn, self.synapse, latest)
            else:
                row = _row(conn, self.synapse, version)
                if row is None:
                    raise MappingError(
                        f"mapping version {version} of synapse '{self.synapse}' was never published"
                    )
        return None if row is None else self.verify(row)

    def verify(self, row: StoredMapping) -> StoredMapping:
        """Return ``row`` when its text still matches its checksum.

        Raises:
            MappingError: the row was altered after publishing.
        """
        if checksum(row.yaml) != row.checksum:
            raise MappingError(
                f"published mapping version {row.version} of synapse '{self.synapse}' was changed in the UDM "
                "store after publishing",
                location=self.location(row.version),
                remedy="Published versions are immutable: restore the row or publish a new version.",
            )
        return row

    def describe_store(self) -> str:
        """Name the store in messages: its URL without the password."""
        return self.store.engine.url.render_as_string(hide_password=True)

    def record(self, version: int) -> StoredMapping | None:
        """Return one row as stored (version 0 = the draft), without verifying it; None when absent."""
        with self.store.transaction(write=False) as tx:
            return _row(tx.connection, self.synapse, version)

    def records(self) -> list[StoredMapping]:
        """Return every published row, oldest first (texts not verified; see :meth:`published_record`)."""
        with self.store.transaction(write=False) as tx:
            result = tx.connection.execute(
                sa.select(mappings_table)
                .where(_m.synapse == self.synapse, _m.version > DRAFT_VERSION)
                .order_by(_m.version)
            )
            return [_stored(r._mapping) for r in result]

    def history(self) -> list[PublishedVersion]:
        """Return every published version, oldest first; ``path`` is the row's ``udm:`` location."""
        return [
            PublishedVersion(
                version=r.version,
                published_at=r.created_at,
                summary=r.summary,
                checksum=r.checksum,
                path=self.location(r.version),
            )
            for r in self.records()
        ]

    # --- internals --------------------------------------------------------------------------------------
    def _check_synapse(self, name: str) -> None:
        if name != self.synapse:
            raise MappingError(
                f"this repository holds mappings of synapse '{self.synapse}', not '{name}'",
                location=self.draft_location,
            )

    def _parse(self, text: str, source: str) -> MappingSpec:
        spec = loads_mapping(text, source)
        wrong = wrong_synapse(spec, self.synapse, what="draft")
        if wrong is not None:
            raise MappingValidationError([wrong])
        return spec

    def _put_draft(self, conn: sa.Connection, text: str) -> None:
        values = {
            "yaml": text,
            "checksum": checksum(text),
            "summary": "",
            "created_at": self.clock.now(),
            "published_by": None,
        }
        where = (_m.synapse == self.synapse) & (_m.version == DRAFT_VERSION)
        if conn.execute(sa.update(mappings_table).where(where).values(**values)).rowcount == 0:
            conn.execute(
                sa.insert(mappings_table).values(synapse=self.synapse, version=DRAFT_VERSION, **values)
            )

    def __repr__(self) -> str:
        return f"StoreMappingRepository({self.store!r}, {self.synapse!r})"


def _lock(conn: sa.Connection, synapse: str) -> None:
    """Serialise writers of one synapse's mapping until the transaction ends.

    SQLite store transactions already begin with ``BEGIN IMMEDIATE``; PostgreSQL takes an advisory lock so
    two publishers never pick the same version number.
    """
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"ds_mappings:{synapse}".encode()).digest()[:8], "big") >> 1
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _row(conn: sa.Connection, synapse: str, version: int) -> StoredMapping | None:
    found = conn.execute(
        sa.select(mappings_table).where(_m.synapse == synapse, _m.version == version)
    ).first()
    return None if found is None else _stored(found._mapping)


def _latest_version(conn: sa.Connection, synapse: str) -> int | None:
    value = conn.execute(
        sa.select(sa.func.max(_m.version)).where(_m.synapse == synapse, _m.version > DRAFT_VERSION)
    ).scalar()
    return None if value is None else int(value)


def _insert(conn: sa.Connection, row: StoredMapping) -> None:
    conn.execute(
        sa.insert(mappings_table).values(
            synapse=row.synapse,
            version=row.version,
            yaml=row.yaml,
            checksum=row.checksum,
            summary=row.summary,
            created_at=row.created_at,
            published_by=row.published_by,
        )
    )


def _stored(values: Any) -> StoredMapping:
    return StoredMapping(
        synapse=str(values["synapse"]),
        version=int(values["version"]),
        yaml=str(values["yaml"]),
        checksum=str(values["checksum"]),
        summary=str(values["summary"]),
        created_at=values["created_at"],
        published_by=values["published_by"],
    )
