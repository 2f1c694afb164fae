"""``dynasync mapping ...``: Sync Studio mappings as YAML (config as code), drafts and published versions."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dynasync.cli.context import SYNAPSE_OPTION, state_of
from dynasync.cli.output import Output, escape, reported
from dynasync.errors import ConfigError, MappingError
from dynasync.mapping import MappingValidationError

if TYPE_CHECKING:  # imported when a command runs: the CLI starts faster without them
    from dynasync.mapping.mirrored_repository import MirroredMappingRepository
    from dynasync.mapping.spec import MappingSpec
    from dynasync.synapses.base import StreamSpec
    from dynasync.workspace import SynapseRecord, Workspace

app = typer.Typer(help="Sync Studio mappings (YAML, draft and published versions).", no_args_is_help=True)

FILE_OPTION = typer.Option(
    None,
    "--file",
    "-f",
    help="A mapping YAML kept elsewhere (e.g. in your repository) instead of the draft.",
    dir_okay=False,
)
DISCARD_OPTION = typer.Option(
    False, "--discard-draft", help="Replace a draft that holds edits never published (they are lost)."
)


@app.command("show")
def show(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
    draft: bool = typer.Option(False, "--draft", help="Show the draft instead of the published mapping."),
    default: bool = typer.Option(
        False, "--default", help="Show the default mapping for the replicated schema."
    ),
) -> None:
    """Print the published mapping (or the draft, or the default one) as YAML."""
    from dynasync.activation import default_spec, load_streams, mapping_repository
    from dynasync.mapping import dump_mapping

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        repo = mapping_repository(state.workspace, record)
        if default:
            text = dump_mapping(default_spec(repo.synapse, load_streams(state.workspace, record)))
        else:
            spec = repo.draft() if draft else repo.published()
            if spec is None:
                missing = "draft" if draft else "published mapping"
                raise ConfigError(
                    f"Synapse {record.name!r} has no {missing}.",
                    remedy="Activate with --default-mapping, or write one with `dynasync mapping edit`.",
                )
            text = dump_mapping(spec)
        which = "default" if default else "draft" if draft else "published"
        version = None
        if which == "published":
            history = repo.history()
            version = history[-1].version if history else None
        out.emit(
            {"synapse": record.name, "which": which, "version": version, "yaml": text},
            lambda: print(text, end=""),  # noqa: T201 - plain YAML, so it can be redirected to a file
        )


@app.command("edit")
def edit(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
) -> None:
    """Open the draft mapping in $EDITOR (created from the published or default mapping), then validate it."""
    from dynasync.activation import default_spec, load_streams, mapping_repository, publish_problems

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        repo = mapping_repository(state.workspace, record)
        streams = load_streams(state.workspace, record)
        if not repo.draft_path.exists():
            base = repo.published() or default_spec(repo.synapse, streams)
            repo.save_draft(base)
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        try:
            subprocess.run([*shlex.split(editor), str(repo.draft_path)], check=False)
        except OSError as error:
            raise ConfigError(
                f"Cannot start the editor {editor!r}: {error.strerror or error}.",
                remedy=f"Set $EDITOR to an installed editor, or edit {repo.draft_path} directly "
                "and run `dynasync mapping validate`.",
            ) from None
        draft = repo.draft()
        if draft is None:
            raise ConfigError(
                f"The draft mapping {repo.draft_path} is gone after editing.",
                remedy="Run `dynasync mapping edit` again; it starts from the published or default mapping.",
            )
        _report_problems(out, publish_problems(state.workspace, record, draft, streams), str(repo.draft_path))


@app.command("validate")
def validate(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
    file: Path | None = FILE_OPTION,
) -> None:
    """Validate the draft mapping (or --file) against the schema; report every problem with its location."""
    from dynasync.activation import load_streams, mapping_repository, publish_problems
    from dynasync.mapping.draft_ops import checked_file

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        repo = mapping_repository(state.workspace, record)
        streams = load_streams(state.workspace, record)

        def check(spec: MappingSpec) -> list[MappingError]:
            return publish_problems(state.workspace, record, spec, streams)

        if file is not None:
            checked_file(file, repo.synapse, check)
            _report_problems(
                out, [], str(file), publish=f"dynasync mapping publish --file {shlex.quote(str(file))}"
            )
            return
        draft = repo.draft()
        if draft is None:
            raise ConfigError(
                f"Synapse {record.name!r} has no draft mapping.", remedy="Run `dynasync mapping edit`."
            )
        _report_problems(out, check(draft), str(repo.draft_path))


def _report_problems(
    out: Output, problems: Sequence[MappingError], path: str, *, publish: str = "dynasync mapping publish"
) -> None:
    if problems:
        raise MappingValidationError(list(problems))
    out.emit(
        {"valid": True, "path": path},
        lambda: out.say(f"[green]Valid:[/] {escape(path)}. Publish it with `{escape(publish)}`."),
    )


@app.command("publish")
def publish(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
    summary: str = typer.Option("", "--summary", "-m", help="What changed."),
    file: Path | None = FILE_OPTION,
    discard_draft: bool = DISCARD_OPTION,
) -> None:
    """Validate the draft (or --file, which becomes it) and publish it as the next version; only that runs."""
    from dynasync.activation import load_streams, mapping_repository, publish_problems
    from dynasync.mapping.draft_ops import checked_file, replace_draft

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        repo = mapping_repository(state.workspace, record)
        streams = load_streams(state.workspace, record)

        def check(spec: MappingSpec) -> list[MappingError]:
            return publish_problems(state.workspace, record, spec, streams)

        # The repository checks the mapping itself; `check` also checks what it shares with the UDM and the other
        # synapses, so a mapping that could not run is never published.
        if file is not None:
            replace_draft(repo, checked_file(file, repo.synapse, check), discard_draft=discard_draft)
        else:
            draft = repo.draft()  # None: the repository says there is no draft
            problems = check(draft) if draft is not None else []
            if problems:
                raise MappingValidationError(problems)
        version = repo.publish(streams, summary=summary)
        _announce(out, state.workspace, record, repo, streams, version, "Published")


@app.command("history")
def history(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
) -> None:
    """List the published versions of the mapping, oldest first (the last one runs)."""
    from dynasync.activation import mapping_repository

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        versions = mapping_repository(state.workspace, record).history()
        rows = [
            {"version": v.version, "published_at": v.published_at.isoformat(), "summary": v.summary}
            for v in versions
        ]

        def human() -> None:
            if not rows:
                out.say(f"Synapse {escape(record.name)} has no published mapping yet.")
                return
            for row in rows:
                mark = "  (runs)" if row is rows[-1] else ""
                out.say(escape(f"v{row['version']}  {row['published_at']}  {row['summary'] or '-'}{mark}"))

        out.emit({"synapse": record.name, "versions": rows}, human)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    version: int = typer.Argument(..., help="The earlier published version to run again.", min=1),
    synapse: str | None = SYNAPSE_OPTION,
    summary: str = typer.Option("", "--summary", "-m", help="Why (default: 'rollback to version N')."),
    discard_draft: bool = DISCARD_OPTION,
) -> None:
    """Publish an earlier version again, as the next version (it is checked against today's schema)."""
    from dynasync.activation import load_streams, mapping_repository, publish_problems
    from dynasync.mapping import draft_ops

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        repo = mapping_repository(state.workspace, record)
        streams = load_streams(state.workspace, record)
        new = draft_ops.rollback(
            repo,
            version,
            streams,
            lambda spec: publish_problems(state.workspace, record, spec, streams),
            summary=summary,
            discard_draft=discard_draft,
        )
        _announce(out, state.workspace, record, repo, streams, new, f"Rolled back to version {version} as")


def _announce(
    out: Output,
    ws: Workspace,
    record: SynapseRecord,
    repo: MirroredMappingRepository,
    streams: Sequence[StreamSpec],
    version: int,
    verb: str,
) -> None:
    """Create the UDM entities of the newly published version and say what was published."""
    from dynasync.activation import ensure_udm_entities

    published = repo.published()
    entities = ensure_udm_entities(ws, published, streams) if published else []
    out.emit(
        {"synapse": record.name, "version": version, "udm_entities": entities},
        lambda: out.say(f"[green]{verb} version {version}.[/] UDM entities: {escape(', '.join(entities))}"),
    )
