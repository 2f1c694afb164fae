"""Prefer-header parsing and the Dataverse ``$skiptoken`` paging cookie (keyset position, no server state)."""

from __future__ import annotations

import re
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.settings import EmulatorSettings

INVALID_COOKIE = EmulatorError(400, "0x8004112A", "Invalid page number in paging cookie.")
ORDER_MISMATCH = EmulatorError(400, "0x80041129", "Order by columns do not match those in paging cookie.")


@dataclass(slots=True)
class Preferences:
    """The preferences of one request, from one or several ``Prefer`` headers."""

    return_representation: bool = False
    maxpagesize: int | None = None
    include_annotations: str | None = None  # the raw quoted list, e.g. '"*"'
    track_changes: bool = False
    continue_on_error: bool = False
    annotation_patterns: tuple[str, ...] = ()

    def wants(self, term: str) -> bool:
        """Return True when ``odata.include-annotations`` asks for annotation ``term``."""
        included = False
        for pattern in self.annotation_patterns:
            negate = pattern.startswith("-")
            name = pattern[1:] if negate else pattern
            if name == "*" or name == term or (name.endswith("*") and term.startswith(name[:-1])):
                if negate:
                    return False
                included = True
        return included


_PREF_SPLIT = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')


def parse_prefer(header: str | None) -> Preferences:
    """Parse a ``Prefer`` header value; repeated headers arrive joined with ``,``.

    Commas inside quoted values (``odata.include-annotations="a,b"``) do not split preferences.
    """
    prefs = Preferences()
    if not header:
        return prefs
    for raw in _PREF_SPLIT.split(header):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if name == "return" and value.lower() == "representation":
            prefs.return_representation = True
        elif name == "odata.maxpagesize":
            try:
                prefs.maxpagesize = int(value.strip('"'))
            except ValueError:
                raise EmulatorError(
                    400, "0x80060888", f"The value '{value}' of odata.maxpagesize is not valid."
                ) from None
        elif name == "odata.include-annotations":
            prefs.include_annotations = value if value.startswith('"') else f'"{value}"'
            prefs.annotation_patterns = tuple(p.strip() for p in value.strip('"').split(",") if p.strip())
        elif name == "odata.track-changes":
            prefs.track_changes = True
        elif name == "odata.continue-on-error":
            prefs.continue_on_error = True
    return prefs


def page_size(
    prefs: Preferences, top: int | None, settings: EmulatorSettings
) -> tuple[int, int | None, bool]:
    """Decide the page size, the effective ``$top`` and whether maxpagesize was applied.

    Returns:
        ``(page_size, top, maxpagesize_applied)``; ``top`` is None when ignored.
    """
    requested = prefs.maxpagesize
    if requested is not None:
        if requested < 1:
            raise EmulatorError(
                400, "0x80060888", f"The value '{requested}' of odata.maxpagesize is not valid."
            )
        if requested > settings.max_page_size:
            if settings.above_max_page_size == "error":
                raise EmulatorError(
                    400,
                    "0x80060888",
                    f"The odata.maxpagesize value {requested} exceeds the maximum of {settings.max_page_size}.",
                )
            requested = settings.max_page_size
    if requested is not None and top is not None:
        if settings.top_with_maxpagesize == "ignore_top":
            return requested, None, True
        return settings.default_page_size, top, False
    if requested is not None:
        return requested, None, True
    return settings.default_page_size, top, False


@dataclass(slots=True)
class PagingPosition:
    """Where the next page starts: ``values`` of the order columns (strings; None for null) after the last row.

    ``columns`` lists the cookie's element names in order (order columns, then the primary key); ``extra``
    carries attributes of the inner ``<cookie>`` element (change tracking keeps its window there).
    """

    page: int  # number of the page that was returned (the next one is page + 1)
    columns: list[str]
    last: list[str | None]
    first: list[str | None]
    tracking: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _quote_lower(text: str) -> str:
    """URL-encode everything but letters and digits with lower-case hex, as the FetchXML paging cookie does."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(text, safe=""))


def _guid_form(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return "{" + str(uuid.UUID(value)).upper() + "}"
    except ValueError:
        return value


def encode_skiptoken(position: PagingPosition, *, pk: str) -> str:
    """Render the ``$skiptoken`` value exactly as it appears in a Dataverse ``@odata.nextLink``.

    The inner FetchXML cookie is encoded twice with lower-case hex; the outer element once more, keeping
    ``=``, ``/`` and ``%`` as the service does (so ``%253c`` appears in the link).
    """
    parts = [f"<cookie page={quoteattr(str(position.page))}"]
    for key, value in position.extra.items():
        parts.append(f" {key}={quoteattr(value)}")
    parts.append(">")
    for column, last, first in zip(position.columns, position.last, position.first, strict=True):
        if column == pk:
            last, first = _guid_form(last), _guid_form(first)
        attrs = ""
        if last is not None:
            attrs += f" last={quoteattr(last)}"
        if first is not None:
            attrs += f" first={quoteattr(first)}"
        parts.append(f"<{column}{attrs} />")
    parts.append("</cookie>")
    inner = "".join(parts)
    paging_cookie = _quote_lower(_quote_lower(inner))
    outer = (
        f'<cookie pagenumber="{position.page + 1}" pagingcookie="{paging_cookie}" '
        f'istracking="{"True" if position.tracking else "False"}" />'
    )
    return urllib.parse.quote(outer, safe="=/%!'()*-._~")


def decode_skiptoken(token: str) -> PagingPosition:
    """Parse a ``$skiptoken`` (already URL-decoded once by the query parser); 400 with the service's code if bad."""
    text = token
    for _ in range(2):
        if text.lstrip().startswith("<"):
            break
        text = urllib.parse.unquote(text)
    try:
        outer = ET.fromstring(text)
    except ET.ParseError:
        raise INVALID_COOKIE from None
    if outer.tag != "cookie":
        raise INVALID_COOKIE
    try:
        page_number = int(outer.get("pagenumber", ""))
    except ValueError:
        raise INVALID_COOKIE from None
    inner_text = outer.get("pagingcookie", "")
    for _ in range(3):
        if inner_text.lstrip().startswith("<"):
            break
        inner_text = urllib.parse.unquote(inner_text)
    try:
        inner = ET.fromstring(inner_text)
    except ET.ParseError:
        raise INVALID_COOKIE from None
    try:
        page = int(inner.get("page", ""))
    except ValueError:
        raise INVALID_COOKIE from None
    if inner.tag != "cookie" or page != page_number - 1 or page < 1:
        raise INVALID_COOKIE
    columns: list[str] = []
    last: list[str | None] = []
    first: list[str | None] = []
    for element in inner:
        columns.append(element.tag)
        last.append(element.get("last"))
        first.append(element.get("first"))
    if not columns:
        raise INVALID_COOKIE
    extra = {k: v for k, v in inner.attrib.items() if k != "page"}
    return PagingPosition(
        page=page,
        columns=columns,
        last=last,
        first=first,
        tracking=outer.get("istracking", "False").lower() == "true",
        extra=extra,
    )


def next_link(request_url: str, skiptoken: str) -> str:
    """Return the original request URL with ``$skiptoken`` replaced (or appended), other options verbatim."""
    base, _, query = request_url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(("$skiptoken=", "%24skiptoken="))]
    kept.append(f"$skiptoken={skiptoken}")
    return f"{base}?{'&'.join(kept)}"
