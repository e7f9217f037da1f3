"""JSON that keeps number literals exactly as written.

The product's acceptance check compares exported values with the org's record files text by
text, so `1.50`, `-0`, `1e5` or `123456789012345678` must come back unchanged. Numbers are
loaded as `Lit` (a `str` subclass holding the literal) and the encoder writes them raw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# `json.encoder` exposes the C string escapers; they are what json.dumps uses internally.
_encode_str: Callable[[str], str] = json.encoder.encode_basestring
_encode_str_ascii: Callable[[str], str] = json.encoder.encode_basestring_ascii

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class Lit(str):
    """A JSON number kept as its source text; emitted without quotes by `dumps`."""

    __slots__ = ()


def is_number_literal(text: str) -> bool:
    """True when `text` is a valid JSON number (what a `Lit` may hold)."""
    return _NUMBER.fullmatch(text) is not None


def loads(text: str | bytes) -> Any:
    """Parse JSON, turning every number into a `Lit` with its exact source text."""
    return json.loads(text, parse_float=Lit, parse_int=Lit)


def dumps(value: Any) -> str:
    """Serialise JSON with `Lit` raw and strings unescaped (UTF-8 output)."""
    parts: list[str] = []
    _write(value, parts, _encode_str)
    return "".join(parts)


def dumps_bytes(value: Any) -> bytes:
    """UTF-8 bytes of `dumps(value)`; falls back to \\u escapes when a lone surrogate cannot be encoded."""
    try:
        return dumps(value).encode("utf-8")
    except UnicodeEncodeError:
        parts: list[str] = []
        _write(value, parts, _encode_str_ascii)
        return "".join(parts).encode("ascii")


def _write(value: Any, out: list[str], enc: Callable[[str], str]) -> None:
    # Order matters: Lit before str, bool before int (bool is an int subclass).
    if isinstance(value, Lit):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(enc(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int | float):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(enc(str(key)))
            out.append(":")
            _write(item, out, enc)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, enc)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")
