"""The ``$filter`` parser: OData expression text to the :mod:`dynasync.emulator.odata_ast` tree."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import cast

from dynasync.emulator.odata_ast import (
    And,
    Call,
    Compare,
    CompareOp,
    Lambda,
    Literal,
    LiteralKind,
    Node,
    Not,
    Or,
    Property,
    QueryFunction,
)
from dynasync.emulator.odata_lexer import Token, query_error, syntax_error, tokenize

COMPARE_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
ARITHMETIC_OPS = frozenset({"add", "sub", "mul", "div", "divby", "mod", "has", "in"})
STRING_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})
# OData functions Dataverse does not offer; named in the 400 instead of the generic unknown-function text.
UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "length", "indexof", "substring", "tolower", "toupper", "trim", "concat", "matchesPattern",
        "year", "month", "day", "hour", "minute", "second", "fractionalseconds", "totalseconds", "date", "time",
        "totaloffsetminutes", "now", "mindatetime", "maxdatetime", "round", "floor", "ceiling", "cast", "isof",
        "geo.distance", "geo.length", "geo.intersects", "hassubset", "hassubsequence",
    }
)  # fmt: skip
CRM_PREFIX = "Microsoft.Dynamics.CRM."
_LITERAL_KINDS = {"string", "guid", "datetime", "date", "enum"}


class _FilterParser:
    """Recursive-descent parser over the token list of one expression."""

    def __init__(self, text: str, aliases: Mapping[str, str] | None, *, depth: int = 0) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.aliases = aliases or {}
        self.depth = depth
        self.variables: list[str] = []

    # -- token helpers ----------------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at_end(self) -> bool:
        return self.tok.kind == "end"

    def at_word(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.value in words

    def at_sym(self, sym: str) -> bool:
        return self.tok.kind == "sym" and self.tok.value == sym

    def expect_sym(self, sym: str) -> Token:
        if not self.at_sym(sym):
            if self.tok.kind == "end":
                raise query_error(f"')' or ',' expected at position {self.tok.pos} in '{self.text}'.")
            raise syntax_error(self.tok.pos, self.text)
        return self.advance()

    # -- grammar ----------------------------------------------------------------------------------------

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise query_error(f"Expression expected at position 0 in '{self.text}'.")
        node = self.parse_or()
        if not self.at_end():
            self._reject_operator()
            raise syntax_error(self.tok.pos, self.text)
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.at_word("or"):
            self.advance()
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.at_word("and"):
            self.advance()
            node = And(node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.at_word("not"):
            self.advance()
            return Not(self.parse_not())
        return self.parse_compare()

    def parse_compare(self) -> Node:
        left = self.parse_primary()
        self._reject_operator()
        if self.tok.kind == "ident" and self.tok.value in COMPARE_OPS:
            op = cast(CompareOp, self.advance().value)
            right = self.parse_primary()
            self._reject_operator()
            return Compare(op, left, right)
        return left

    def _reject_operator(self) -> None:
        if self.tok.kind == "ident" and self.tok.value in ARITHMETIC_OPS:
            raise query_error(
                f"The '{self.tok.value}' operator is not supported. Dataverse supports only the comparison "
                f"operators eq, ne, gt, ge, lt, le and the logical operators and, or, not."
            )

    def parse_primary(self) -> Node:
        tok = self.tok
        if tok.kind == "sym" and tok.value == "(":
            self.advance()
            node = self.parse_or()
            self.expect_sym(")")
            return node
        if tok.kind in _LITERAL_KINDS:
            self.advance()
            return Literal(tok.value, cast(LiteralKind, tok.literal_kind))
        if tok.kind == "number":
            self.advance()
            return Literal(tok.value, cast(LiteralKind, tok.literal_kind))
        if tok.kind == "alias":
            self.advance()
            return self._alias(str(tok.value), tok)
        if tok.kind == "ident":
            word = str(tok.value)
            if word in ("true", "false"):
                self.advance()
                return Literal(word == "true", "bool")
            if word == "null":
                self.advance()
                return Literal(None, "null")
            nxt = self.tokens[self.i + 1]
            if nxt.kind == "sym" and nxt.value == "(":
                return self.parse_call()
            return self.parse_path()
        if tok.kind == "end":
            raise query_error(f"Expression expected at position {tok.pos} in '{self.text}'.")
        raise syntax_error(tok.pos, self.text)

    def _alias(self, name: str, tok: Token) -> Node:
        if name not in self.aliases:
            return Literal(None, "null")  # an unassigned alias is null, per the OData spec
        if self.depth > 4:
            raise syntax_error(tok.pos, self.text)
        sub = _FilterParser(self.aliases[name], self.aliases, depth=self.depth + 1)
        node = sub.parse_primary()
        if sub.tok.kind != "end":
            raise syntax_error(sub.tok.pos, sub.text)
        return node

    def parse_path(self) -> Node:
        segments = [str(self.advance().value)]
        while self.at_sym("/"):
            self.advance()
            if (
                self.at_word("any", "all")
                and self.tokens[self.i + 1].kind == "sym"
                and self.tokens[self.i + 1].value == "("
            ):
                return self.parse_lambda(segments)
            if self.tok.kind != "ident":
                raise syntax_error(self.tok.pos, self.text)
            segments.append(str(self.advance().value))
        return Property(tuple(segments))

    def parse_lambda(self, segments: list[str]) -> Node:
        kind = str(self.advance().value)
        self.expect_sym("(")
        if self.at_sym(")"):
            self.advance()
            if kind == "all":
                raise syntax_error(self.tok.pos, self.text)
            return Lambda("/".join(segments), "any", None, None)
        if self.tok.kind != "ident":
            raise syntax_error(self.tok.pos, self.text)
        variable = str(self.advance().value)
        self.expect_sym(":")
        self.variables.append(variable)
        predicate = self.parse_or()
        self.variables.pop()
        self.expect_sym(")")
        return Lambda("/".join(segments), "any" if kind == "any" else "all", variable, predicate)

    def parse_call(self) -> Node:
        name_tok = self.advance()
        name = str(name_tok.value)
        if name.startswith(CRM_PREFIX):
            return self.parse_query_function(name[len(CRM_PREFIX) :], name_tok)
        if name in UNSUPPORTED_FUNCTIONS:
            raise query_error(
                f"The '{name}' function is not supported. Dataverse supports only the contains, startswith and "
                f"endswith functions and the Microsoft.Dynamics.CRM query functions."
            )
        if name not in STRING_FUNCTIONS:
            raise query_error(
                f"An unknown function with name '{name}' was found. This may also be a function import or a key "
                "lookup on a navigation property, which is not allowed."
            )
        self.expect_sym("(")
        args: list[Node] = [self.parse_or()]
        while self.at_sym(","):
            self.advance()
            args.append(self.parse_or())
        self.expect_sym(")")
        if len(args) != 2:
            raise query_error(
                f"No function signature for the function with name '{name}' matches the specified arguments."
            )
        return Call(name, tuple(args))

    def parse_query_function(self, name: str, name_tok: Token) -> Node:
        self.expect_sym("(")
        params: dict[str, object] = {}
        while not self.at_sym(")"):
            if self.tok.kind != "ident":
                raise syntax_error(self.tok.pos, self.text)
            pname = str(self.advance().value)
            self.expect_sym("=")
            params[pname] = self._parameter_value()
            if self.at_sym(","):
                self.advance()
            elif not self.at_sym(")"):
                raise syntax_error(self.tok.pos, self.text)
        self.advance()
        prop = params.pop("PropertyName", None)
        if not isinstance(prop, str):
            raise query_error(
                f"The parameter 'PropertyName' of function '{CRM_PREFIX}{name}' must be a string literal."
            )
        values: list[object] = []
        for key in ("PropertyValue", "PropertyValue1", "PropertyValue2", "PropertyValues"):
            if key in params:
                value = params.pop(key)
                if key == "PropertyValues":
                    if not isinstance(value, list):
                        raise query_error(
                            f"The parameter 'PropertyValues' of function '{CRM_PREFIX}{name}' must be a JSON array."
                        )
                    values.extend(value)
                else:
                    values.append(value)
        if params:
            raise query_error(
                f"The parameter '{next(iter(params))}' is not valid for function '{CRM_PREFIX}{name}'."
            )
        return QueryFunction(name, prop, tuple(values))

    def _parameter_value(self) -> object:
        tok = self.advance()
        if tok.kind == "alias":
            text = self.aliases.get(str(tok.value))
            if text is None:
                return None
            text = text.strip()
            if text.startswith("["):
                return _json_array(text)
            sub = _FilterParser(text, None, depth=self.depth + 1)
            node = sub.parse_primary()
            if not isinstance(node, Literal) or sub.tok.kind != "end":
                raise syntax_error(0, text)
            return node.value
        if tok.kind == "json":
            return _json_array(str(tok.value))
        if tok.kind in _LITERAL_KINDS or tok.kind == "number":
            return tok.value
        if tok.kind == "ident" and tok.value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[str(tok.value)]
        raise syntax_error(tok.pos, self.text)


def _json_array(text: str) -> list[object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:  # the docs also show single-quoted arrays: ['account','contact']
            value = json.loads(_single_to_double_quotes(text))
        except json.JSONDecodeError:
            raise query_error(
                "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements in an "
                "array and properties of an object must be separated by commas."
            ) from None
    if not isinstance(value, list):
        raise query_error("Invalid JSON. An array was expected.")
    return value


def _single_to_double_quotes(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            j = i + 1
            buf: list[str] = []
            while j < len(text):
                if text[j] == "'" and j + 1 < len(text) and text[j + 1] == "'":
                    buf.append("'")
                    j += 2
                    continue
                if text[j] == "'":
                    break
                buf.append(text[j])
                j += 1
            out.append(json.dumps("".join(buf)))
            i = j + 1
            continue
        if ch == '"':
            end = text.index('"', i + 1) if '"' in text[i + 1 :] else len(text) - 1
            out.append(text[i : end + 1])
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_operand(text: str) -> Node:
    """Parse one operand (a literal, alias-free property path or function call), e.g. a key value or alias."""
    parser = _FilterParser(text, None)
    node = parser.parse_primary()
    if not parser.at_end():
        raise syntax_error(parser.tok.pos, text)
    return node


def parse_filter(text: str, aliases: Mapping[str, str] | None = None) -> Node:
    """Parse a ``$filter`` value into a syntax tree.

    Args:
        text: The decoded ``$filter`` value.
        aliases: Parameter aliases from the query string (``{"@p1": "'x'"}``); unassigned aliases are null.

    Raises:
        EmulatorError: 400 ``0x80060888`` with the service's parser message.
    """
    return _FilterParser(text, aliases).parse()
