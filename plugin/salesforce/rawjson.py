"""The exact bytes of JSON values inside a larger JSON document.

A Composite answer carries each describe as the ``body`` of one ``compositeResponse`` entry; the
backup keeps a describe as the bytes Salesforce sent, so the bytes of each body are cut out of
the answer rather than serialised again (which would change spacing, escapes and number forms).
The document is walked with ``json.JSONDecoder.raw_decode``, which parses one value and says where
it ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _peek(self) -> str:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
        return self.text[self.pos : self.pos + 1]

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ValueError(f"expected {char!r} at character {self.pos}")
        self.pos += 1

    def value(self) -> tuple[Any, int, int]:
        """The next value, parsed, and where its text starts and ends."""
        self._peek()
        start = self.pos
        value, self.pos = _DECODER.raw_decode(self.text, start)
        return value, start, self.pos

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here; the caller reads each value (``value``)."""
        self._expect("{")
        if self._peek() == "}":
            self.pos += 1
            return
        while True:
            key, _, _ = self.value()
            if not isinstance(key, str):
                raise ValueError(f"expected a member name at character {self.pos}")
            self._expect(":")
            yield key
            if self._peek() == ",":
                self.pos += 1
                continue
            self._expect("}")
            return

    def elements(self) -> Iterator[None]:
        """Once per element of the array that starts here; the caller reads each one."""
        self._expect("[")
        if self._peek() == "]":
            self.pos += 1
            return
        while True:
            yield None
            if self._peek() == ",":
                self.pos += 1
                continue
            self._expect("]")
            return

    def end(self) -> None:
        if self._peek():
            raise ValueError(f"unexpected data after the document at character {self.pos}")


def entries_with_raw(document: bytes, array: str, member: str) -> list[tuple[dict[str, Any], bytes]]:
    """The objects of the top-level ``array``, each parsed, with the exact bytes of its ``member``.

    ``entries_with_raw(answer, "compositeResponse", "body")`` gives every subresponse and its body
    as sent. A missing member's bytes are ``b"null"``.

    Raises:
        ValueError: not UTF-8 JSON of that shape.
    """
    text = document.decode("utf-8")
    scanner = _Scanner(text)
    found: list[tuple[dict[str, Any], bytes]] | None = None
    for key in scanner.members():
        if key != array:
            scanner.value()
            continue
        found = []
        for _ in scanner.elements():
            entry: dict[str, Any] = {}
            raw = b"null"
            for name in scanner.members():
                value, start, stop = scanner.value()
                entry[name] = value
                if name == member:
                    raw = text[start:stop].encode("utf-8")
            found.append((entry, raw))
    scanner.end()
    if found is None:
        raise ValueError(f"the document has no {array!r} list")
    return found
