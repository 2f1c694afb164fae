"""The per-invocation state handed from the root command to subcommands."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from dynasync.cli.output import Output
from dynasync.config import Settings
from dynasync.workspace import Workspace


@dataclass(slots=True)
class State:
    """Settings and output options of one CLI invocation."""

    settings: Settings
    json: bool = False
    debug: bool = False
    _workspace: Workspace | None = field(default=None, repr=False)
    _out: Output | None = field(default=None, repr=False)

    @property
    def out(self) -> Output:
        """The output helper (one per invocation, so every command shares its consoles)."""
        if self._out is None:
            self._out = Output(json=self.json, debug=self.debug)
        return self._out

    @property
    def workspace(self) -> Workspace:
        """The home-directory state."""
        if self._workspace is None:
            self._workspace = Workspace(self.settings)
        return self._workspace


def state_of(ctx: typer.Context) -> State:
    """The State set by the root command."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        raise RuntimeError("dynasync CLI state missing")
    return obj


# Shared by every command that acts on one synapse (typer reads the default; one definition keeps help alike).
SYNAPSE_OPTION = typer.Option(None, "--synapse", help="Synapse name (default: the only one).")
