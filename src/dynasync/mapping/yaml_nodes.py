"""Parse YAML text into plain data plus the line and column of every key and item (for located errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from dynasync.errors import MappingError
from dynasync.mapping.errors import MappingValidationError

Path = tuple[str | int, ...]


@dataclass(slots=True)
class Positions:
    """Where each path of the parsed document sits: 1-based (line, column) of a key or of a sequence item."""

    at: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """Return the line of ``path`` or, when it is absent, of its nearest recorded ancestor."""
        probe = tuple(path)
        while probe:
            found = self.at.get(probe)
            if found is not None:
                return found[0]
            probe = probe[:-1]
        found = self.at.get(())
        return found[0] if found else None

    def keys_of(self, path: Path) -> dict[str, int]:
        """Return the line of every string key directly under ``path``."""
        depth = len(path)
        return {
            str(p[depth]): pos[0]
            for p, pos in self.at.items()
            if len(p) == depth + 1 and p[:depth] == path and isinstance(p[depth], str)
        }


def parse_located(text: str, source: str) -> tuple[Any, Positions]:
    """Parse one YAML document into plain data and its positions.

    Raises:
        MappingValidationError: on a syntax error (located at line and column) or duplicate keys (every one).
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise MappingValidationError([_syntax_problem(exc, source)]) from None
        except yaml.YAMLError as exc:  # unmarked YAML errors are rare; still report the file
            raise MappingValidationError([MappingError(f"invalid YAML: {exc}", location=source)]) from None
        positions = Positions()
        if node is None:
            return None, positions
        problems: list[MappingError] = []
        try:
            data = _walk(loader, node, (), positions, problems, source)
        except yaml.MarkedYAMLError as exc:
            raise MappingValidationError([_syntax_problem(exc, source)]) from None
        if problems:
            raise MappingValidationError(problems)
        positions.at.setdefault((), (node.start_mark.line + 1, node.start_mark.column + 1))
        return data, positions
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> MappingError:
    mark = exc.problem_mark or exc.context_mark
    what = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    location = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    return MappingError(f"YAML syntax error: {what}", location=location)


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: Path,
    positions: Positions,
    problems: list[MappingError],
    source: str,
) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool) and key is not None:
                problems.append(
                    MappingError("mapping keys must be plain values", location=f"{source}:{line}")
                )
                continue
            if key in result:
                problems.append(MappingError(f"duplicate key {key!r}", location=f"{source}:{line}"))
                continue
            child: Path = (*path, key if isinstance(key, str | int) else str(key))
            positions.at[child] = (line, key_node.start_mark.column + 1)
            result[key] = _walk(loader, value_node, child, positions, problems, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        items: list[Any] = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            positions.at[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_walk(loader, item, child, positions, problems, source))
        return items
    return loader.construct_object(node, deep=True)
