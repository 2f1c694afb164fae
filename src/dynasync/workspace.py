"""The dynasync home directory: synapse configurations (secrets encrypted), schema snapshots and token caches.

Layout under ``<home>``::

    secret.key                      AES-256-GCM keys for secrets at rest (0600)
    synapses/<name>.json            one synapse: settings, encrypted client secret, status (0600)
    synapses/<name>.tokens          its msal token cache, encrypted (0600)
    synapses/<name>.schema.json     the schema snapshot taken at activation / refresh
    mappings/<name>.yaml            its Sync Studio mapping draft (config as code)
    mappings/published/<name>/      its published mapping versions
    udm.db                          the default UDM store (SQLite)

``<name>`` is the synapse's :func:`slug`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dynasync.config import Settings
from dynasync.errors import ConfigError
from dynasync.names import slug
from dynasync.secrets import Secret, SecretBox, load_secret_box

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


ACTIVE = "active"
INACTIVE = "inactive"  # deactivated (paused) by the user: left out of syncs until activated again


class SynapseNotFoundError(ConfigError):
    """No synapse of that name is configured."""


@dataclass(slots=True)
class SynapseRecord:
    """One configured synapse as persisted; ``client_secret`` holds ciphertext, never the plain value."""

    name: str
    kind: str
    endpoint_url: str
    org_url: str
    client_id: str = ""
    client_secret: str = ""  # ciphertext from SecretBox
    auth_mode: str = ""  # "" (not authenticated), "auth_code" or "client_credentials"
    status: str = "configured"  # configured -> authenticated -> active <-> inactive (paused)
    allow_local_emulator: bool = False
    ca_bundle: str | None = None
    created_at: str = ""
    authenticated_at: str | None = None
    activated_at: str | None = None
    signed_in_as: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"SynapseRecord(name={self.name!r}, kind={self.kind!r}, org_url={self.org_url!r}, status={self.status!r})"


class Workspace:
    """Reads and writes the state kept in the dynasync home directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        """The secret box for this home (the key file is created on first use)."""
        if self._box is None:
            self._ensure_home()
            self._box = load_secret_box(
                self.home,
                key_material=self.settings.secret_key.get_secret_value()
                if self.settings.secret_key
                else None,
            )
        return self._box

    def _ensure_home(self) -> None:
        """Create the home directory; a ConfigError (not an OSError) when that is impossible."""
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.home.is_dir():
                raise NotADirectoryError(str(self.home))
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(
                f"The dynasync home {self.home} is not a directory.",
                remedy="Point --home (or DYNASYNC_HOME) at a directory.",
            ) from None
        except PermissionError:
            raise ConfigError(
                f"The dynasync home {self.home} cannot be created or written.",
                remedy="Point --home (or DYNASYNC_HOME) at a directory you own.",
            ) from None

    def _path(self, name: str, suffix: str) -> Path:
        return self.settings.synapses_dir / f"{slug(name)}{suffix}"

    def synapse_names(self) -> list[str]:
        """Names of all configured synapses, sorted by file name."""
        return [record.name for record in self.synapses()]

    def synapses(self) -> Iterator[SynapseRecord]:
        """Every configured synapse (each file read once)."""
        directory = self.settings.synapses_dir
        if not directory.exists():
            return
        for path in sorted(directory.glob("*.json")):
            if not path.name.endswith(".schema.json"):
                yield SynapseRecord(**json.loads(path.read_text()))

    def synapse_keys(self) -> set[str]:
        """The keys (slugs) of all configured synapses: how mappings name them (``synapse_wins``)."""
        return {slug(r.name) for r in self.synapses()}

    def exists(self, name: str) -> bool:
        """True when a synapse of this name is configured."""
        return self._path(name, ".json").exists()

    def get(self, name: str) -> SynapseRecord:
        """Load a synapse; raise SynapseNotFoundError naming the configured ones otherwise."""
        path = self._path(name, ".json")
        if not path.exists():
            known = ", ".join(self.synapse_names()) or "none yet"
            raise SynapseNotFoundError(
                f"No synapse named {name!r} is configured (configured: {known}).",
                remedy="Add one with `dynasync synapse add dynamics --name ...`.",
            )
        return SynapseRecord(**json.loads(path.read_text()))

    def only_or_named(self, name: str | None) -> SynapseRecord:
        """The named synapse, or the only one when no name is given."""
        if name:
            return self.get(name)
        names = self.synapse_names()
        if len(names) == 1:
            return self.get(names[0])
        if not names:
            raise SynapseNotFoundError(
                "No synapse is configured yet.", remedy="Add one with `dynasync synapse add dynamics`."
            )
        raise ConfigError(
            f"Several synapses are configured ({', '.join(names)}).", remedy="Name one with --synapse NAME."
        )

    def save(self, record: SynapseRecord) -> None:
        """Persist a synapse atomically with owner-only permissions."""
        if not _NAME.match(record.name):
            raise ConfigError(
                f"Synapse name {record.name!r} is not valid.",
                remedy="Use 1-64 letters, digits, spaces, dots, dashes or underscores, e.g. 'Dynamics Sales'.",
            )
        if not record.created_at:
            record.created_at = now_iso()
        self._ensure_home()
        _write_private(self._path(record.name, ".json"), json.dumps(asdict(record), indent=2))

    def delete(self, name: str) -> None:
        """Forget a synapse and its token cache and schema snapshot."""
        for suffix in (".json", ".tokens", ".schema.json"):
            self._path(name, suffix).unlink(missing_ok=True)

    def set_secret(self, record: SynapseRecord, secret: Secret | str) -> None:
        """Encrypt and attach the client secret (bound to this synapse's name)."""
        record.client_secret = self.box.encrypt(secret, context=f"synapse:{slug(record.name)}:client_secret")

    def secret(self, record: SynapseRecord) -> Secret:
        """Decrypt the client secret."""
        if not record.client_secret:
            raise ConfigError(
                f"Synapse {record.name!r} has no client secret yet.",
                remedy="Run `dynasync synapse auth` with --client-id and --client-secret.",
            )
        return self.box.decrypt_secret(
            record.client_secret, context=f"synapse:{slug(record.name)}:client_secret"
        )

    def token_cache_path(self, record: SynapseRecord) -> Path:
        """Where the synapse's encrypted msal token cache lives."""
        return self._path(record.name, ".tokens")

    def load_schema(self, record: SynapseRecord) -> list[dict[str, Any]] | None:
        """The schema snapshot (JSON list of tables) of a synapse, or None before activation."""
        path = self._path(record.name, ".schema.json")
        if not path.exists():
            return None
        data: list[dict[str, Any]] = json.loads(path.read_text())
        return data

    def save_schema(self, record: SynapseRecord, tables: list[dict[str, Any]]) -> None:
        """Persist the schema snapshot of a synapse."""
        _write_private(self._path(record.name, ".schema.json"), json.dumps(tables))

    def mappings_dir(self, record: SynapseRecord) -> Path:
        """The directory holding this synapse's published mapping versions (the draft is ``<slug>.yaml``)."""
        return self.settings.mappings_dir / "published" / slug(record.name)


def now_iso() -> str:
    """The current UTC time as ISO-8601 text."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _write_private(path: Path, text: str) -> None:
    # Write to a temporary file and rename, so a crash never leaves a half-written configuration behind.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
