"""Parsing of metadata URLs and query options: path segments, key predicates, ``$select`` and ``$expand`` lists.

Only the small, metadata-specific grammar lives here; ``$filter`` text is parsed by :mod:`dynasync.emulator.odata`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from dynasync.emulator.errors import EmulatorError

PARSE_ERROR_CODE = "0x80060888"
SEGMENT_NOT_FOUND = "Resource not found for the segment '{segment}'."
UNSUPPORTED_OPTION = "The query parameter '{name}' is not supported."  # wording [I]
BAD_KEY = "Bad Request - Error in query syntax: the key '{key}' of segment '{segment}' is not valid."  # [I]
BAD_SYNTAX = "Bad Request - Error in query syntax: '{text}'."  # [I]


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment: ``name`` plus the raw text between its parentheses, if any."""

    name: str
    key: str | None = None

    @property
    def text(self) -> str:
        """The segment as written."""
        return self.name if self.key is None else f"{self.name}({self.key})"


@dataclass(frozen=True, slots=True)
class ExpandSpec:
    """One ``$expand`` item with its nested options (``$select``, ``$filter``...) as raw text."""

    navigation: str
    options: dict[str, str] = field(default_factory=dict)


def _split_top(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside single-quoted strings and parentheses."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted  # '' inside a string toggles twice, so escapes need no special case
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == separator:
            parts.append(text[start:index])
            start = index + 1
    if quoted or depth != 0:
        raise EmulatorError(400, PARSE_ERROR_CODE, BAD_SYNTAX.format(text=text))
    parts.append(text[start:])
    return parts


def split_path(path: str) -> list[Segment]:
    """Split a metadata path (``EntityDefinitions(LogicalName='a')/Attributes``) into segments."""
    segments: list[Segment] = []
    for raw in _split_top(path.strip("/"), "/"):
        if not raw:
            raise EmulatorError(404, PARSE_ERROR_CODE, SEGMENT_NOT_FOUND.format(segment=raw))
        if raw.endswith(")") and "(" in raw:
            name, _, rest = raw.partition("(")
            segments.append(Segment(name, rest[:-1]))
        else:
            segments.append(Segment(raw))
    return segments


def _unquote(value: str, aliases: Mapping[str, str], segment: Segment) -> str:
    value = value.strip()
    if value.startswith("@"):
        if value not in aliases:
            raise EmulatorError(400, PARSE_ERROR_CODE, BAD_KEY.format(key=value, segment=segment.name))
        value = aliases[value].strip()
    if len(value) >= 2 and value.startswith("'") and value.endswith("'"):
        return value[1:-1].replace("''", "'")
    raise EmulatorError(400, PARSE_ERROR_CODE, BAD_KEY.format(key=value, segment=segment.name))


def parse_key(segment: Segment, aliases: Mapping[str, str]) -> uuid.UUID | tuple[str, str]:
    """Parse a metadata key predicate: a bare MetadataId GUID, or ``Name='value'`` (value may be an alias)."""
    text = (segment.key or "").strip()
    if "=" not in text:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise EmulatorError(
                400, PARSE_ERROR_CODE, BAD_KEY.format(key=text, segment=segment.name)
            ) from None
    name, _, value = text.partition("=")
    return name.strip(), _unquote(value, aliases, segment)


def parse_select(text: str | None) -> list[str] | None:
    """Return the ``$select`` names in order without duplicates, or None when absent."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    return list(dict.fromkeys(names))


def parse_expand(text: str | None) -> list[ExpandSpec]:
    """Parse ``$expand=Attributes($select=a,b;$filter=x eq 1),Keys`` into specs with raw nested options."""
    if not text:
        return []
    specs: list[ExpandSpec] = []
    for raw in _split_top(text, ","):
        item = raw.strip()
        if not item:
            continue
        options: dict[str, str] = {}
        if item.endswith(")") and "(" in item:
            name, _, rest = item.partition("(")
            for option in _split_top(rest[:-1], ";"):
                if not option.strip():
                    continue
                key, sep, value = option.partition("=")
                if not sep:
                    raise EmulatorError(400, PARSE_ERROR_CODE, BAD_SYNTAX.format(text=option))
                options[key.strip()] = value.strip()
            item = name
        specs.append(ExpandSpec(item.strip(), options))
    return specs


def unsupported_option(name: str) -> EmulatorError:
    """The 400 for a query option metadata requests do not support (``$top``, ``$orderby``...)."""
    return EmulatorError(400, PARSE_ERROR_CODE, UNSUPPORTED_OPTION.format(name=name))


def segment_not_found(segment: str) -> EmulatorError:
    """The 404 for a path segment that addresses nothing."""
    return EmulatorError(404, PARSE_ERROR_CODE, SEGMENT_NOT_FOUND.format(segment=segment))
