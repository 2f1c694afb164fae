"""Process-wide settings (home directory, UDM store URL, public base URL), read once at the edge.

Precedence: CLI flag > environment variable (``DYNASYNC_...``) > default. Library code never reads the
environment itself; the CLI builds one :class:`Settings` and passes it down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """The default dynasync home directory: ``~/.dynasync``."""
    return Path.home() / ".dynasync"


class Settings(BaseSettings):
    """Where dynasync keeps its state and how it is reached."""

    model_config = SettingsConfigDict(env_prefix="DYNASYNC_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=default_home, description="state directory (keys, synapses, mappings)")
    udm_url: str | None = Field(
        default=None,
        description="UDM store URL; default sqlite:///<home>/udm.db; or postgresql+psycopg://...",
    )
    public_base_url: str = Field(
        default="http://localhost:8765",
        description="the URL users reach dynasync at; OAuth redirect URLs are built from it",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="encryption key for secrets at rest; default: a key file in <home>"
    )

    def resolved_udm_url(self) -> str:
        """The UDM store URL, defaulting to a SQLite file in the home directory."""
        return self.udm_url or f"sqlite:///{self.home / 'udm.db'}"

    @property
    def mappings_dir(self) -> Path:
        """Directory of mapping YAML files (draft and published)."""
        return self.home / "mappings"

    @property
    def synapses_dir(self) -> Path:
        """Directory of synapse configurations (secrets encrypted)."""
        return self.home / "synapses"

    @property
    def emulator_dir(self) -> Path:
        """Directory of the local emulator's data and CA."""
        return self.home / "emulator"
