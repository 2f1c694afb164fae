"""Selecting, filtering and shaping metadata items: ``$select``/``$filter`` per metadata type and context URLs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dynasync.emulator.catalog import Catalog
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.metadata_filter import UNKNOWN_PROPERTY, check_filter, matches
from dynasync.emulator.metadata_query import PARSE_ERROR_CODE, ExpandSpec, parse_select, unsupported_option
from dynasync.emulator.odata import parse_filter
from dynasync.emulator.odata_ast import Node

NESTED_OPTIONS = frozenset({"$select", "$filter"})


@dataclass(frozen=True, slots=True)
class View:
    """One metadata type as far as queries go: its name, structural properties and navigation properties."""

    type_name: str
    properties: tuple[str, ...]
    navigations: tuple[str, ...] = ()

    def unknown(self, name: str) -> EmulatorError:
        """The 400 for a property this type does not have."""
        return EmulatorError(400, PARSE_ERROR_CODE, UNKNOWN_PROPERTY.format(name=name, type=self.type_name))


@dataclass(frozen=True, slots=True)
class Options:
    """The parsed ``$select`` and ``$filter`` that apply to one collection or item."""

    select: list[str] | None
    filter: Node | None


def options_for(
    view: View,
    select_text: str | None,
    filter_text: str | None,
    aliases: Mapping[str, str],
) -> Options:
    """Parse and check ``$select``/``$filter`` against ``view``; raise the service's 400 for unknown names."""
    select = parse_select(select_text)
    if select is not None:
        if "*" in select:
            select = None
        else:
            for name in select:
                if name not in view.properties and name not in view.navigations:
                    raise view.unknown(name)
    node: Node | None = None
    if filter_text is not None:
        node = parse_filter(filter_text, aliases)
        check_filter(node, view.properties, view.type_name)
    return Options(select, node)


def nested_options(view: View, spec: ExpandSpec, aliases: Mapping[str, str]) -> Options:
    """Options of an ``$expand`` item; anything but ``$select``/``$filter`` is refused by name."""
    for key in spec.options:
        if key not in NESTED_OPTIONS:
            raise unsupported_option(key)
    return options_for(view, spec.options.get("$select"), spec.options.get("$filter"), aliases)


def shape(item: Mapping[str, object], select: list[str] | None, view: View) -> dict[str, object]:
    """Keep the selected structural properties (``@odata.type`` and ``MetadataId`` always)."""
    if select is None:
        return dict(item)
    shaped: dict[str, object] = {}
    if "@odata.type" in item:
        shaped["@odata.type"] = item["@odata.type"]
    for name in select:
        if name in view.navigations:
            continue  # a selected navigation appears only when expanded
        shaped[name] = item.get(name)
    if "MetadataId" not in shaped:
        shaped["MetadataId"] = item.get("MetadataId")
    return shaped


def select_items(
    items: Iterable[Mapping[str, object]], options: Options, view: View
) -> list[dict[str, object]]:
    """Filter then shape a collection of metadata items."""
    node = options.filter
    return [shape(item, options.select, view) for item in items if node is None or matches(node, item)]


def select_suffix(select: list[str] | None, expands: Iterable[ExpandSpec]) -> str:
    """Return the ``(a,b,Nav(c))`` part of a context URL, or ``""`` when nothing narrows the shape."""
    parts = list(select or [])
    for spec in expands:
        nested = spec.options.get("$select")
        parts.append(f"{spec.navigation}({nested})" if nested else spec.navigation)
    return f"({','.join(parts)})" if parts else ""


@dataclass(frozen=True, slots=True)
class Call:
    """One metadata request: the catalog, the context URL prefix and the decoded query options."""

    catalog: Catalog
    context: str  # "<service root>$metadata#"
    query: Mapping[str, str]
    aliases: Mapping[str, str]
    expands: list[ExpandSpec]

    def options(self, view: View) -> Options:
        """The top-level ``$select``/``$filter`` checked against ``view``."""
        return options_for(view, self.query.get("$select"), self.query.get("$filter"), self.aliases)

    def single_options(self, view: View) -> Options:
        """Options for a single item: ``$filter`` makes no sense there and is refused."""
        if "$filter" in self.query:
            raise unsupported_option("$filter")
        return self.options(view)

    def suffix(self, select: list[str] | None) -> str:
        """The context URL select part for this request."""
        return select_suffix(select, self.expands)
