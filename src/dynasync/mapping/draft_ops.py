"""Replacing a synapse's draft mapping from elsewhere, and rolling back to an earlier published version.

Config as code keeps the mapping in the user's own repository and publishes it from there (``dynasync mapping
publish --file``); a rollback publishes the text of an earlier version again, as the next version, so history
only grows. Both replace the draft, which may hold edits that were never published: those are never
overwritten silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from dynasync.errors import ConfigError, MappingError
from dynasync.mapping.errors import MappingValidationError
from dynasync.mapping.mirrored_repository import MirroredMappingRepository
from dynasync.mapping.spec import MappingSpec
from dynasync.mapping.validate import wrong_synapse
from dynasync.mapping.yaml_io import loads_mapping
from dynasync.synapses.base import StreamSpec

Check = Callable[[MappingSpec], Sequence[MappingError]]
"""Every problem publishing a mapping would meet (the caller knows the schema, the synapses, the UDM)."""


def checked_file(path: Path, synapse: str, check: Check) -> str:
    """Return the text of a mapping file once it passed ``check`` and names ``synapse``.

    Raises:
        MappingError: the file cannot be read.
        MappingValidationError: every problem (shape, the synapse it names, ``check``'s), located in the file.
    """
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping file: {exc.strerror}", location=name) from None
    spec = loads_mapping(text, name)
    wrong = wrong_synapse(spec, synapse, what="file")
    problems = [wrong] if wrong is not None else []
    problems.extend(check(spec))
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
    check: Check,
    *,
    summary: str = "",
    discard_draft: bool = False,
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
    problems = check(loads_mapping(text, str(path)))
    if problems:
        raise MappingValidationError(list(problems))
    replace_draft(repo, text, discard_draft=discard_draft)
    return repo.publish(streams, summary=summary or f"rollback to version {version}")
