"""Numbers kept as the exact text Salesforce sent.

Parsing JSON decimals as ``float`` turns ``9999999999999999.99`` into ``1e16``; a backup must write
what the org holds, so decimals stay strings that remember they were numbers.
"""

from __future__ import annotations


class NumberLiteral(str):
    """A JSON number literal, kept verbatim (passed to simple-salesforce as ``parse_float``)."""

    __slots__ = ()
