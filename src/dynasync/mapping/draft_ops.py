"""Replacing a synapse's draft mapping from elsewhere, and rolling back to an earlier published version.

Config as code keeps the mapping in the user's own repository and publishes it from there (``dynasync mapping
publish --file``); a rollback publishes the text of an earlier version again, as the next version, so history
only grows. Both replace the draft, which may hold edits that were never published: those are never
overwritten silently.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from dynasync.errors import ConfigError, MappingError
from dynasync.mapping.errors import MappingValidationError
from dynasync.mapping.mirrored_repository import MirroredMappingRepository
from dynasync.mapping.spec import MappingSpec
from dynasync.mapping.validate import validate_mapping
from dynasync.mapping.yaml_io import key_line, loads_mapping
from dynasync.synapses.base import StreamSpec


def checked_file(
    path: Path, synapse: str, streams: Sequence[StreamSpec], *, synapses: Collection[str] | None = None
) -> str:
    """Return the text of a mapping file once it passed every check a publish makes.

    Raises:
        MappingError: the file cannot be read.
        MappingValidationError: every problem (shape, the synapse it names, the schema), located in the file.
    """
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping file: {exc.strerror}", location=name) from None
    spec = loads_mapping(text, name)
    problems: list[MappingError] = []
    if spec.synapse != synapse:
        problems.append(
            MappingError(
                f"the file names synapse '{spec.synapse}', expected '{synapse}'",
                location=f"{name}:{key_line(text, 'synapse')}",
            )
        )
    problems.extend(validate_mapping(spec, streams, synapses=synapses))
    if problems:
        raise MappingValidationError(problems)
    return text


def unpublished_draft(repo: MirroredMappingRepository) -> str | None:
    """Return the draft's text when it differs from the latest published version (else None)."""
    if not repo.draft_path.exists():
        return None
    draft = repo.draft_path.read_text(encoding="utf-8")
    history = repo.history()
    if history and Path(history[-1].path).read_text(encoding="utf-8") == draft:
        return None
    return draft


def replace_draft(repo: MirroredMappingRepository, text: str, *, discard_draft: bool) -> None:
    """Make ``text`` the draft (file and store, comments kept).

    Raises:
        ConfigError: the draft holds unpublished edits (other than ``text``) and ``discard_draft`` is off.
    """
    pending = unpublished_draft(repo)
    if pending is not None and pending != text and not discard_draft:
        raise ConfigError(
            f"The draft mapping {repo.draft_path} has changes that were never published; replacing it would "
            "lose them.",
            remedy="Publish them first (dynasync mapping publish), copy the file elsewhere, or pass "
            "--discard-draft to replace them.",
        )
    repo.save_draft_text(text)


def rollback(
    repo: MirroredMappingRepository,
    version: int,
    streams: Sequence[StreamSpec],
    *,
    summary: str = "",
    discard_draft: bool = False,
    synapses: Collection[str] | None = None,
    fits: Callable[[MappingSpec], Sequence[MappingError]] | None = None,
) -> int:
    """Publish the text of published ``version`` again, as the next version; return that version.

    Raises:
        ConfigError: no such version, it is the published one already, or the draft holds unpublished edits.
        MappingError: the mapping files and the UDM store disagree about that version.
        MappingValidationError: the version no longer fits today's schema (problems located in its snapshot).
    """
    history = repo.history()
    versions = [h.version for h in history]
    if version not in versions:
        known = f"versions {versions[0]} to {versions[-1]}" if versions else "no versions yet"
        raise ConfigError(
            f"Synapse '{repo.synapse}' has no published mapping version {version} ({known}).",
            remedy="See them with `dynasync mapping history`.",
        )
    if version == versions[-1]:
        raise ConfigError(
            f"Version {version} is the published mapping of synapse '{repo.synapse}' already.",
            remedy="Name an earlier version (dynasync mapping history).",
        )
    repo.published(version)  # the files and the store must hold the same text for it
    path = Path(history[versions.index(version)].path)
    text = path.read_text(encoding="utf-8")
    spec = loads_mapping(text, str(path))
    problems = validate_mapping(spec, streams, synapses=synapses)
    if not problems and fits is not None:
        problems = list(fits(spec))  # e.g. the UDM fields it shares with the UDM and other synapses
    if problems:
        raise MappingValidationError(problems)
    replace_draft(repo, text, discard_draft=discard_draft)
    return repo.publish(streams, summary=summary or f"rollback to version {version}")
