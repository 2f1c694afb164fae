"""Tokenizer for OData URL expressions (``$filter``, ``$orderby``, key segments), with the service's error texts."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal as TypingLiteral

from dynasync.emulator.errors import EmulatorError

TokenKind = TypingLiteral[
    "string", "number", "guid", "datetime", "date", "ident", "alias", "enum", "sym", "json", "end"
]

_GUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z_])"
)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})(?![0-9A-Za-z_])"
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![0-9A-Za-z_:T])")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|INF|NaN)([mMdDlLfF])?(?![0-9A-Za-z_])")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_.]*")
_ALIAS = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*")
_SYMBOLS = "(),/:="


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token; ``value`` holds the Python value of literals, the text of names and symbols."""

    kind: TokenKind
    value: object
    pos: int
    text: str
    literal_kind: str = ""


def query_error(message: str) -> EmulatorError:
    """A 400 with the OData URL parser's error code."""
    return EmulatorError(400, "0x80060888", message)


def syntax_error(pos: int, text: str) -> EmulatorError:
    """``Syntax error at position N in '...'``, as the OData parser words it."""
    return query_error(f"Syntax error at position {pos} in '{text}'.")


def parse_datetime_literal(text: str) -> dt.datetime:
    """Parse an unquoted ``Edm.DateTimeOffset`` literal into an aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _number(text: str, suffix: str | None) -> tuple[object, str]:
    body = text[:-1] if suffix else text
    if suffix in ("m", "M"):
        return Decimal(body), "decimal"
    if suffix in ("d", "D", "f", "F") or body in ("INF", "-INF", "NaN"):
        return float(body), "float"
    if suffix in ("l", "L") or re.fullmatch(r"-?\d+", body):
        return int(body), "int"
    try:
        return Decimal(body), "decimal"
    except InvalidOperation:  # pragma: no cover - regex guarantees a number
        return float(body), "float"


def _json_end(text: str, start: int) -> int:
    """Index just after the JSON array starting at ``start`` (which is ``[``); respects quoted strings."""
    depth = 0
    i = start
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise query_error(
        "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements in an array "
        "and properties of an object must be separated by commas."
    )


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens; raise the service's 400 on an unterminated string literal."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if ch == "'":
            j = i + 1
            parts: list[str] = []
            while True:
                k = text.find("'", j)
                if k < 0:
                    raise query_error(f"There is an unterminated literal at position {n} in '{text}'.")
                parts.append(text[j:k])
                if k + 1 < n and text[k + 1] == "'":
                    parts.append("'")
                    j = k + 2
                    continue
                break
            tokens.append(Token("string", "".join(parts), i, text[i : k + 1], "string"))
            i = k + 1
            continue
        if ch in _SYMBOLS:
            tokens.append(Token("sym", ch, i, ch))
            i += 1
            continue
        if ch == "[":
            end = _json_end(text, i)
            tokens.append(Token("json", text[i:end], i, text[i:end]))
            i = end
            continue
        if ch == "@":
            m = _ALIAS.match(text, i)
            if not m:
                raise syntax_error(i, text)
            tokens.append(Token("alias", m.group(), i, m.group()))
            i = m.end()
            continue
        m = _GUID.match(text, i)
        if m:
            tokens.append(Token("guid", uuid.UUID(m.group()), i, m.group(), "guid"))
            i = m.end()
            continue
        if ch.isdigit() or (ch == "-" and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == "I")):
            m = _DATETIME.match(text, i)
            if m:
                try:
                    value = parse_datetime_literal(m.group())
                except ValueError:
                    raise query_error(
                        f"Unrecognized 'Edm.DateTimeOffset' literal '{m.group()}' at '{i}' in '{text}'."
                    ) from None
                tokens.append(Token("datetime", value, i, m.group(), "datetime"))
                i = m.end()
                continue
            m = _DATE.match(text, i)
            if m:
                try:
                    day = dt.date.fromisoformat(m.group())
                except ValueError:
                    raise query_error(
                        f"Unrecognized 'Edm.Date' literal '{m.group()}' at '{i}' in '{text}'."
                    ) from None
                tokens.append(Token("date", day, i, m.group(), "date"))
                i = m.end()
                continue
            m = _NUMBER.match(text, i)
            if m:
                value_n, kind = _number(m.group(), m.group(1))
                tokens.append(Token("number", value_n, i, m.group(), kind))
                i = m.end()
                continue
            raise syntax_error(i, text)
        m = _IDENT.match(text, i)
        if m:
            word = m.group()
            if m.end() < n and text[m.end()] == "'" and "." in word:
                # An enum literal: Namespace.Type'Member'
                close = text.find("'", m.end() + 1)
                if close < 0:
                    raise query_error(f"There is an unterminated literal at position {n} in '{text}'.")
                member = text[m.end() + 1 : close]
                tokens.append(Token("enum", member, i, text[i : close + 1], "enum"))
                i = close + 1
                continue
            tokens.append(Token("ident", word, i, word))
            i = m.end()
            continue
        raise syntax_error(i, text)
    tokens.append(Token("end", None, n, ""))
    return tokens
