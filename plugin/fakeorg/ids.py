"""Salesforce record ids: 15-char case-sensitive ids and their 18-char checksummed form."""

from __future__ import annotations

import hashlib

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def to18(id15: str) -> str:
    """Append the 3-char checksum that makes a 15-char id case-insensitively unique.

    For each 5-char chunk, bit i is set when char i is an uppercase letter; the 5-bit value
    indexes "A..Z0..5". An 18-char id is returned unchanged (after checking its length).

    Raises:
        ValueError: the id is neither 15 nor 18 characters long.
    """
    if len(id15) == 18:
        return id15
    if len(id15) != 15:
        raise ValueError(f"a Salesforce id has 15 or 18 characters, got {len(id15)}: {id15!r}")
    suffix = []
    for start in range(0, 15, 5):
        flags = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")
        suffix.append(_SUFFIX_ALPHABET[flags])
    return id15 + "".join(suffix)


def sf_id(prefix3: str, n: int) -> str:
    """A deterministic 18-char id: key prefix + zero-padded counter + checksum.

    Raises:
        ValueError: the prefix is not 3 characters or `n` does not fit in 12 digits.
    """
    if len(prefix3) != 3:
        raise ValueError(f"a key prefix has 3 characters, got {prefix3!r}")
    body = str(n).zfill(12)
    if n < 0 or len(body) > 12:
        raise ValueError(f"id counter must be in 0..999999999999, got {n}")
    return to18(prefix3 + body)


def org_id_for(name: str) -> str:
    """A stable org id (`00D...`) derived from a folder name, so recorded runs stay comparable."""
    value = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:16], "big")
    chars = []
    for _ in range(12):
        value, rem = divmod(value, 62)
        chars.append(_BASE62[rem])
    return to18("00D" + "".join(chars))


def id_key(record_id: str) -> str:
    """The case-sensitive lookup key of an id: its first 15 characters (15 and 18 forms match)."""
    return record_id[:15]
