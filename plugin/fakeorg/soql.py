"""Parser for the SOQL subset an exporter emits; produces a small AST with source positions.

    SELECT f, Rel.f | COUNT() FROM X [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...]
    [LIMIT n] [OFFSET n]
    cond: AND / OR / NOT, parentheses, = != <> < > <= >=, [NOT] IN (...), [NOT] LIKE '...'
Positions let errors carry Salesforce's caret line ("ERROR at Row:1:Column:16").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ApiError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Literal:
    kind: str  # string | number | date | datetime | boolean | null
    text: str  # source text; strings keep their escapes (LIKE needs them)
    pos: int

    def string_value(self) -> str:
        """A string literal with its SOQL escapes decoded."""
        return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", _unescape, self.text)


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code.startswith("u") and len(code) == 5:
        return chr(int(code[1:], 16))
    return _ESCAPES.get(code, "\\" + code)


@dataclass(frozen=True)
class Compare:
    field: FieldPath
    op: str  # = != < > <= >=
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldPath
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    field: FieldPath
    pattern: Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Compare | InList | Like | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    field: FieldPath
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    text: str
    fields: tuple[FieldPath, ...]
    is_count: bool
    sobject: str
    sobject_pos: int
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


def soql_error(query: str, pos: int, error_code: str, message: str) -> ApiError:
    """An ApiError whose message carries the query line and caret, as Salesforce writes it."""
    row = query.count("\n", 0, pos) + 1
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    col = pos - line_start
    text = f"\n{line}\n{' ' * col}^\nERROR at Row:{row}:Column:{col + 1}\n{message}"
    return ApiError(400, error_code, text)


def tokenize(query: str) -> list[Token]:
    """Split a query into tokens.

    Raises:
        ApiError: MALFORMED_QUERY at the first character no token matches.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:
            raise soql_error(query, pos, "MALFORMED_QUERY", f"unexpected token: '{query[pos]}'")
        kind = match.lastgroup or ""
        if kind != "ws":
            text = match.group()
            tokens.append(Token(kind, text[1:-1] if kind == "string" else text, pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(query)))
    return tokens


def parse(query: str) -> Query:
    """Parse a SOQL query of the supported subset.

    Raises:
        ApiError: MALFORMED_QUERY with Salesforce's caret message.
    """
    return _Parser(query).parse_query()


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Token | None = None, message: str | None = None) -> ApiError:
        tok = tok or self.tok
        shown = tok.text if tok.kind != "eof" else "<EOF>"
        return soql_error(self.query, tok.pos, "MALFORMED_QUERY", message or f"unexpected token: '{shown}'")

    def expect_kw(self, *words: str) -> Token:
        if not self.tok.is_kw(*words):
            raise self.fail()
        return self.next()

    def expect(self, kind: str, text: str | None = None) -> Token:
        if self.tok.kind != kind or (text is not None and self.tok.text != text):
            raise self.fail()
        return self.next()

    def parse_query(self) -> Query:
        self.expect_kw("SELECT")
        fields: list[FieldPath] = []
        is_count = False
        if self.tok.is_kw("COUNT") and self.tokens[self.i + 1].text == "(":
            self.next()
            self.expect("punct", "(")
            self.expect("punct", ")")
            is_count = True
        else:
            fields.append(self.field_path())
            while self.tok.text == ",":
                self.next()
                fields.append(self.field_path())
        self.expect_kw("FROM")
        sobject = self.expect("ident")
        where = None
        if self.tok.is_kw("WHERE"):
            self.next()
            where = self.condition()
        order: list[OrderItem] = []
        if self.tok.is_kw("ORDER"):
            self.next()
            self.expect_kw("BY")
            order.append(self.order_item())
            while self.tok.text == ",":
                self.next()
                order.append(self.order_item())
        limit = self.int_clause("LIMIT")
        offset = self.int_clause("OFFSET")
        if self.tok.kind != "eof":
            raise self.fail()
        return Query(self.query, tuple(fields), is_count, sobject.text, sobject.pos, where, tuple(order), limit, offset)

    def int_clause(self, word: str) -> int | None:
        if not self.tok.is_kw(word):
            return None
        self.next()
        tok = self.expect("number")
        if not tok.text.isdigit():
            raise self.fail(tok)
        return int(tok.text)

    def field_path(self) -> FieldPath:
        tok = self.tok
        if tok.kind != "ident" or tok.is_kw("FROM", "WHERE", "SELECT"):
            raise self.fail()
        self.next()
        return FieldPath(tuple(tok.text.split(".")), tok.pos)

    def order_item(self) -> OrderItem:
        path = self.field_path()
        descending = False
        if self.tok.is_kw("ASC", "DESC"):
            descending = self.next().text.upper() == "DESC"
        nulls_last = False
        if self.tok.is_kw("NULLS"):
            self.next()
            nulls_last = self.expect_kw("FIRST", "LAST").text.upper() == "LAST"
        return OrderItem(path, descending, nulls_last)

    def condition(self) -> Condition:
        items = [self.conjunction()]
        while self.tok.is_kw("OR"):
            self.next()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def conjunction(self) -> Condition:
        items = [self.negation()]
        while self.tok.is_kw("AND"):
            self.next()
            items.append(self.negation())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def negation(self) -> Condition:
        if self.tok.is_kw("NOT"):
            self.next()
            return Not(self.negation())
        if self.tok.text == "(":
            self.next()
            inner = self.condition()
            self.expect("punct", ")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        path = self.field_path()
        negated = False
        if self.tok.is_kw("NOT"):
            self.next()
            negated = True
            if not self.tok.is_kw("IN", "LIKE"):
                raise self.fail()
        if self.tok.is_kw("IN"):
            self.next()
            self.expect("punct", "(")
            values = [self.literal()]
            while self.tok.text == ",":
                self.next()
                values.append(self.literal())
            self.expect("punct", ")")
            return InList(path, tuple(values), negated)
        if self.tok.is_kw("LIKE"):
            self.next()
            pattern = self.literal()
            if pattern.kind != "string":
                raise self.fail(message="LIKE needs a quoted string pattern")
            like = Like(path, pattern)
            return Not(like) if negated else like
        op = self.expect("op").text
        return Compare(path, "!=" if op == "<>" else op, self.literal())

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind in ("string", "number", "date", "datetime"):
            self.next()
            return Literal(tok.kind, tok.text, tok.pos)
        if tok.is_kw("TRUE", "FALSE"):
            self.next()
            return Literal("boolean", tok.text.lower(), tok.pos)
        if tok.is_kw("NULL"):
            self.next()
            return Literal("null", "null", tok.pos)
        raise self.fail()
