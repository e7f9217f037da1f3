"""Salesforce Id ranges, for splitting an object whose query times out (QUERY_TIMEOUT).

A 15-character Id is a base-62 number (``0-9A-Za-z``, in that order: the order of ASCII, which is
how SOQL compares Id literals), so a range ``Id > lo AND Id <= hi`` can be halved at the number
halfway between its bounds. Ids are compared on their first 15 characters (the 18-character form
only adds a case checksum).
"""

from __future__ import annotations

from dataclasses import dataclass

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VALUE = {ch: i for i, ch in enumerate(DIGITS)}
WIDTH = 15


def id_number(record_id: str) -> int:
    """The base-62 value of an Id's 15-character form.

    Raises:
        ValueError: not a 15- or 18-character alphanumeric Id.
    """
    if len(record_id) not in (15, 18) or not record_id.isascii() or not record_id.isalnum():
        raise ValueError(f"{record_id!r} is not a Salesforce Id")
    value = 0
    for ch in record_id[:WIDTH]:
        value = value * 62 + _VALUE[ch]
    return value


def id_text(number: int) -> str:
    """The 15-character Id literal of a base-62 value (zero-padded)."""
    if not 0 <= number < 62**WIDTH:
        raise ValueError(f"{number} is outside the 15-character Id space")
    out = []
    for _ in range(WIDTH):
        number, digit = divmod(number, 62)
        out.append(DIGITS[digit])
    return "".join(reversed(out))


@dataclass(frozen=True)
class IdRange:
    """Ids ``after < Id <= upto`` (as base-62 numbers)."""

    after: int
    upto: int

    @classmethod
    def covering(cls, first_id: str, last_id: str) -> IdRange:
        """The range from the smallest Id to the largest, both included."""
        return cls(max(0, id_number(first_id) - 1), id_number(last_id))

    @property
    def splittable(self) -> bool:
        return self.upto - self.after >= 2

    def halves(self) -> tuple[IdRange, IdRange]:
        """Two ranges, lower first, that together are this one."""
        middle = (self.after + self.upto) // 2
        return IdRange(self.after, middle), IdRange(middle, self.upto)

    def from_after(self, record_id: str) -> IdRange:
        """What is left of this range after the rows up to ``record_id`` were read."""
        return IdRange(max(self.after, id_number(record_id)), self.upto)

    def soql_filter(self) -> str:
        """``Id > 'lo' AND Id <= 'hi'`` with 15-character literals (never user input)."""
        return f"Id > '{id_text(self.after)}' AND Id <= '{id_text(self.upto)}'"
