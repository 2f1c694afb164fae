"""Pure parsers for OData query options and key segments (``$select``, ``$orderby``, ``$expand``, keys).

``$filter`` lives in :mod:`dynasync.emulator.odata_filter` and is re-exported here. Nothing here knows the
catalog: names are checked against tables by the store and the Web API layer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.odata_ast import Literal, Node, Property
from dynasync.emulator.odata_filter import parse_filter, parse_operand
from dynasync.emulator.odata_lexer import query_error, syntax_error, tokenize

__all__ = [
    "ExpandItem",
    "parse_expand",
    "parse_filter",
    "parse_key",
    "parse_orderby",
    "parse_select",
    "split_top_level",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")
MAX_EXPANDS = 15
_EXPAND_OPTIONS = frozenset({"$select", "$filter", "$orderby", "$top", "$expand"})


@dataclass(slots=True)
class ExpandItem:
    """One ``$expand`` entry with its nested options.

    ``select`` is None when not given (all columns); ``ref`` is True for ``nav/$ref``.
    """

    navigation: str
    select: list[str] | None = None
    filter: Node | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    top: int | None = None
    expand: list[ExpandItem] = field(default_factory=list)
    ref: bool = False


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses, brackets and single-quoted literals (``''`` is an escaped quote)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    i += 1
                else:
                    quoted = False
        elif ch == "'":
            quoted = True
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise query_error(f"There is an unterminated literal at position {len(text)} in '{text}'.")
    parts.append(text[start:])
    return parts


def parse_select(text: str) -> list[str]:
    """Parse ``$select`` into the list of names as written (``name``, ``_parentcustomerid_value``...).

    Raises:
        EmulatorError: 400 on an empty item or a malformed name.
    """
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            raise syntax_error(len(text), text)
        if name == "*":
            names.append(name)
            continue
        if not _NAME.fullmatch(name):
            raise query_error(
                f"Syntax error: character '{_first_bad(name)}' is not valid at position 0 in '{text}'."
            )
        names.append(name)
    return names


def _first_bad(name: str) -> str:
    for ch in name:
        if not (ch.isalnum() or ch in "_/"):
            return ch
    return name[:1]


def parse_orderby(text: str, aliases: Mapping[str, str] | None = None) -> list[tuple[str, bool]]:
    """Parse ``$orderby`` into ``(name, descending)`` pairs; names may come from parameter aliases.

    Raises:
        EmulatorError: 400 on syntax errors, ``0x80048d16`` when a column is listed twice.
    """
    result: list[tuple[str, bool]] = []
    for raw in split_top_level(text, ","):
        item = raw.strip()
        if not item:
            raise syntax_error(len(text), text)
        parts = item.split()
        if len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
            raise syntax_error(text.find(item) + len(parts[0]) + 1, text)
        name = parts[0]
        if name.startswith("@"):
            alias = (aliases or {}).get(name)
            if alias is None:
                raise query_error(f"The parameter alias '{name}' has no value in '{text}'.")
            node = parse_operand(alias)
            if not isinstance(node, Property):
                raise query_error(f"The $orderby expression '{alias}' must be a property.")
            name = "/".join(node.path)
        elif not _NAME.fullmatch(name):
            raise syntax_error(text.find(item), text)
        if any(existing == name for existing, _ in result):
            raise EmulatorError(
                400, "0x80048d16", f"The column '{name}' is specified more than once in $orderby."
            )
        result.append((name, len(parts) == 2 and parts[1] == "desc"))
    return result


def parse_expand(text: str) -> list[ExpandItem]:
    """Parse ``$expand`` (with nested ``;``-separated options) into :class:`ExpandItem` values.

    Raises:
        EmulatorError: 400 for syntax errors, unsupported nested options ($skip, $count, $levels, $search) and more
            than 15 expanded navigations.
    """
    items = _parse_expand(text)
    if _count_expands(items) > MAX_EXPANDS:
        raise query_error(f"The number of $expand options exceeds the maximum of {MAX_EXPANDS}.")
    return items


def _count_expands(items: list[ExpandItem]) -> int:
    return sum(1 + _count_expands(item.expand) for item in items)


def _parse_expand(text: str) -> list[ExpandItem]:
    items: list[ExpandItem] = []
    for raw in split_top_level(text, ","):
        entry = raw.strip()
        if not entry:
            raise syntax_error(len(text), text)
        options_text = ""
        if "(" in entry:
            head, _, rest = entry.partition("(")
            if not rest.endswith(")"):
                raise query_error(f"')' or ',' expected at position {len(text)} in '{text}'.")
            options_text = rest[:-1]
            entry = head.strip()
        ref = entry.endswith("/$ref")
        if ref:
            entry = entry[: -len("/$ref")]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", entry):
            raise syntax_error(text.find(entry), text)
        item = ExpandItem(entry, ref=ref)
        if options_text.strip():
            _apply_expand_options(item, options_text)
        items.append(item)
    return items


def _apply_expand_options(item: ExpandItem, text: str) -> None:
    for raw in split_top_level(text, ";"):
        option = raw.strip()
        if not option:
            continue
        name, eq, value = option.partition("=")
        name = name.strip()
        if not eq:
            raise syntax_error(0, text)
        if name not in _EXPAND_OPTIONS:
            if name in ("$skip", "$count", "$search", "$levels", "$apply", "$compute"):
                raise query_error(f"The query option '{name}' is not supported inside $expand.")
            raise query_error(f"The query parameter '{name}' is not supported.")
        if name == "$select":
            item.select = parse_select(value)
        elif name == "$filter":
            item.filter = parse_filter(value)
        elif name == "$orderby":
            item.orderby = parse_orderby(value)
        elif name == "$top":
            if not value.strip().isdigit():
                raise query_error(
                    f"Invalid value '{value}' for $top query option found. The $top query option requires a non-negative integer value."
                )
            item.top = int(value)
        else:
            item.expand = _parse_expand(value)


def parse_key(text: str) -> uuid.UUID | dict[str, object]:
    """Parse the text inside a key segment's parentheses.

    ``78914942-34cb-ed11-b596-0022481d68cd`` gives a UUID; ``accountnumber='A1'`` or
    ``firstname='Joe',emailaddress1='a@b.c'`` or ``_primarycontactid_value=<guid>`` give ``{name: value}``
    (values as Python literals: str, int, Decimal, UUID, bool, datetime...).

    Raises:
        EmulatorError: 400 ``0x80060888`` for malformed keys (braces around GUIDs included).
    """
    stripped = text.strip()
    if not stripped:
        raise query_error("Bad Request - Error in query syntax.")
    tokens = tokenize(stripped)
    if len(tokens) == 2 and tokens[0].kind == "guid":
        value = tokens[0].value
        assert isinstance(value, uuid.UUID)
        return value
    result: dict[str, object] = {}
    i = 0
    while tokens[i].kind != "end":
        name, eq, lit = tokens[i], tokens[i + 1], tokens[i + 2]
        if (
            name.kind != "ident"
            or eq.kind != "sym"
            or eq.value != "="
            or lit.kind in ("end", "sym", "json", "alias")
        ):
            raise query_error("Bad Request - Error in query syntax.")
        node = parse_operand(lit.text) if lit.kind == "ident" else Literal(lit.value, "string")
        if lit.kind == "ident" and not isinstance(node, Literal):
            raise query_error("Bad Request - Error in query syntax.")
        result[str(name.value)] = node.value if isinstance(node, Literal) else lit.value
        i += 3
        if tokens[i].kind == "sym" and tokens[i].value == ",":
            i += 1
        elif tokens[i].kind != "end":
            raise query_error("Bad Request - Error in query syntax.")
    if not result:
        raise query_error("Bad Request - Error in query syntax.")
    return result
