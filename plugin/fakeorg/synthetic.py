"""Values of generated rows: one function per describe field, each a pure function of the row index.

Every type the describes use gets a realistic value (text with commas, quotes, CR/LF and
non-ASCII now and then; numbers as exact decimal literals within precision/scale; picklists from
the describe's active values; references to ids of the target object's rows). Compound address
and location fields are assembled from their component fields of the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .generators import (
    ADMIN_USER_ID,
    GeneratorSpec,
    Timeline,
    ValueFn,
    deleted_phase,
    format_datetime,
    generated_id,
    mix,
)
from .jsonlit import Lit

_WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne", "Soylent",
    "Northwind", "Contoso", "Fabrikam", "Hooli", "Vandelay", "Gringotts", "Oceanic", "Monarch", "Aperture",
    "Blue", "Green", "Silver", "Rapid", "Prime", "Summit", "Harbor", "Pioneer", "Atlas", "Nova",
)  # fmt: skip
_NOUNS = ("Industries", "Labs", "Holdings", "Partners", "Systems", "Foods", "Logistics", "Energy", "Media", "Group")
_FIRST = ("Ada", "Grace", "Linus", "Zoë", "Björn", "Chloé", "Hiro", "Amara", "Mateo", "Priya", "Olu", "Sven")
_LAST = ("Lovelace", "Hopper", "Torvalds", "Müller", "O'Brien", "García", "Nakamura", "Okafor", "Singh", "Ødegaard")
_TRICKY = (
    'Said "hi", then left',
    "Line one\nLine two, with a comma",
    "CRLF line\r\nnext line",
    "carriage\ronly",
    "Zoë «Ünicode» Ltd. 🚀 — naïve café",
    'ends with a quote"',
    "tab\tseparated, \"quoted\", and 'single'",
    "日本語のテキスト, 中文, עברית",
)
_CITIES = ("Paris", "東京", "São Paulo", "Zürich", "New York", "Kraków", "Lagos", "Montréal")
_AUDIT_USERS = frozenset({"ownerid", "createdbyid", "lastmodifiedbyid"})

PoolFn = Callable[[tuple[str, ...], int], str | None]


def build_value_fns(describe: Mapping[str, Any], spec: GeneratorSpec, pool: PoolFn, prefix: str) -> dict[str, ValueFn]:
    """Value functions keyed by field name (describe casing) for every field of the describe."""
    timeline = Timeline(spec)
    fields = [f for f in describe.get("fields") or () if isinstance(f, Mapping)]
    fns: dict[str, ValueFn] = {}
    for number, entry in enumerate(fields):
        name = str(entry["name"])
        salt = mix(spec.seed * 1_000_003 + number + 1)
        fns[name] = _nullable(entry, spec, salt, _value_fn(entry, spec, salt, timeline, pool, prefix))
    for entry in fields:
        if entry.get("type") in ("address", "location"):
            fns[str(entry["name"])] = _compound_fn(str(entry["name"]), entry["type"], fields, fns)
    parts = {str(f["name"]) for f in fields if f.get("compoundFieldName") == "Name"}
    if {"Name", "FirstName", "LastName"} <= parts | {"Name"} and "Name" in fns:
        first, last = fns["FirstName"], fns["LastName"]  # Contact/Lead: Name is "First Last" of the row
        fns["Name"] = lambda i: " ".join(v for v in (first(i), last(i)) if v)
    return fns


def _nullable(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int, fn: ValueFn) -> ValueFn:
    special = str(entry["name"]).lower() in ("name", "id") or entry.get("type") in ("boolean", "id")
    if not entry.get("nillable") or special or spec.null_every == 0:
        return fn
    every = spec.null_every
    return lambda i: None if mix(salt ^ i) % every == 0 else fn(i)


def _value_fn(
    entry: Mapping[str, Any], spec: GeneratorSpec, salt: int, timeline: Timeline, pool: PoolFn, prefix: str
) -> ValueFn:
    name, kind = str(entry["name"]), str(entry.get("type") or "string")
    lowered = name.lower()
    if kind == "id":
        return lambda i: generated_id(prefix, i)
    if lowered == "isdeleted" and kind == "boolean":
        every, phase = spec.deleted_every, deleted_phase(spec)
        return (lambda i: i % every == phase) if every else (lambda i: False)
    if lowered == "isarchived" and kind == "boolean":
        # Archived rows are queryAll-only like deleted ones; Id-range counts assume only the
        # recycle bin hides generated rows, so generated rows are never archived.
        return lambda i: False
    if kind == "datetime" and lowered in ("createddate", "lastmodifieddate", "systemmodstamp"):
        stamp = {
            "createddate": timeline.created,
            "lastmodifieddate": timeline.last_modified,
            "systemmodstamp": timeline.system_modstamp,
        }[lowered]
        return lambda i: format_datetime(stamp(i))
    if kind == "reference":
        return _reference_fn(entry, salt, pool, prefix)
    maker = _BY_TYPE.get(kind)
    if maker is None:
        return lambda i: None  # base64 (no body), json, complexvalue: nothing sensible to invent
    return maker(entry, spec, salt)


def _reference_fn(entry: Mapping[str, Any], salt: int, pool: PoolFn, prefix: str) -> ValueFn:
    name = str(entry["name"]).lower()
    targets = tuple(str(t) for t in entry.get("referenceTo") or ())
    if name == "masterrecordid" or not targets:
        return lambda i: None  # only merged records have a master
    if name in _AUDIT_USERS:
        return lambda i: pool(targets, mix(salt ^ i)) or ADMIN_USER_ID
    own = generated_id(prefix, 0)[:3]

    def pick(i: int) -> str | None:
        chosen = pool(targets, mix(salt ^ i))
        if chosen is not None and chosen[:3] == own and chosen == generated_id(prefix, i):
            return None  # never its own parent
        return chosen

    return pick


def _text(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    length = int(entry.get("length") or 255)
    lowered = str(entry["name"]).lower()
    kind = entry.get("type")
    if lowered in ("name", "lastname") or lowered.endswith("name"):
        if lowered == "firstname":
            return lambda i: _FIRST[mix(salt ^ i) % len(_FIRST)][:length]
        if lowered == "lastname":
            return lambda i: f"{_LAST[mix(salt ^ i) % len(_LAST)]} {i + 1}"[:length]

        def company(i: int) -> str:
            h = mix(salt ^ i)
            comma = ", Inc." if h % 7 == 0 else ""
            return f"{_WORDS[h % len(_WORDS)]} {_NOUNS[(h >> 8) % len(_NOUNS)]}{comma} {i + 1}"[:length]

        return company
    if "city" in lowered:
        return lambda i: _CITIES[mix(salt ^ i) % len(_CITIES)][:length]
    tricky_every = 6 if kind == "textarea" else 0

    def text(i: int) -> str:
        h = mix(salt ^ i)
        if tricky_every and h % tricky_every == 0:
            return _TRICKY[(h >> 4) % len(_TRICKY)][:length]
        words = " ".join(_WORDS[(h >> (5 * k)) % len(_WORDS)] for k in range(1 + (h >> 40) % 4))
        return f"{words} {h % 10000}"[:length]

    return text


def _number(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    scale = int(entry.get("scale") or 0)
    precision = int(entry.get("precision") or 18)
    lowered = str(entry["name"]).lower()
    if "latitude" in lowered or "longitude" in lowered:
        limit = 90 if "latitude" in lowered else 180
        places = min(scale, 6) or 6
        return lambda i: Lit(_decimal(mix(salt ^ i), 2 * limit * 10**places + 1, places, -limit * 10**places))
    int_digits = max(1, min(precision - scale, 9))
    frac = min(scale, 4)
    span = 10 ** (int_digits + frac)
    return lambda i: Lit(_decimal(mix(salt ^ i), span, frac, 0))


def _decimal(h: int, span: int, places: int, low: int) -> str:
    """An exact decimal literal: (low + h % span) / 10**places, written without a float."""
    units = low + h % span
    sign, units = ("-" if units < 0 else ""), abs(units)
    if not places:
        return f"{sign}{units}"
    whole, part = divmod(units, 10**places)
    return f"{sign}{whole}.{part:0{places}d}"


def _integer(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    digits = max(1, min(int(entry.get("digits") or 9), 9))
    return lambda i: Lit(str(mix(salt ^ i) % 10**digits))


def _boolean(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    return lambda i: mix(salt ^ i) % 2 == 1


def _date(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    days = max(1, (spec.end - spec.start) // 86400)
    return lambda i: format_datetime(spec.start + (mix(salt ^ i) % days) * 86400)[:10]


def _datetime(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    span = spec.end - spec.start
    return lambda i: format_datetime(spec.start + mix(salt ^ i) % span)


def _time(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    def clock(i: int) -> str:
        seconds = mix(salt ^ i) % 86400
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"

    return clock


def _picklist(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    values = [str(v["value"]) for v in entry.get("picklistValues") or () if v.get("active", True)]
    if not values:
        return _text(entry, spec, salt)
    if entry.get("type") == "multipicklist":

        def several(i: int) -> str:
            h = mix(salt ^ i)
            chosen = {values[(h >> (6 * k)) % len(values)] for k in range(1 + h % 3)}
            return ";".join(v for v in values if v in chosen)

        return several
    return lambda i: values[mix(salt ^ i) % len(values)]


def _email(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    return lambda i: f"user{i + 1}.{mix(salt ^ i) % 1000}@example.com"


def _phone(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    def phone(i: int) -> str:
        h = mix(salt ^ i)
        return f"({h % 900 + 100}) 555-{(h >> 12) % 10000:04d}"

    return phone


def _url(entry: Mapping[str, Any], spec: GeneratorSpec, salt: int) -> ValueFn:
    return lambda i: f"https://www.example{mix(salt ^ i) % 100}.com/{i + 1}"


_BY_TYPE: dict[str, Callable[[Mapping[str, Any], GeneratorSpec, int], ValueFn]] = {
    "string": _text,
    "textarea": _text,
    "encryptedstring": _text,
    "anyType": _text,
    "double": _number,
    "currency": _number,
    "percent": _number,
    "int": _integer,
    "long": _integer,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "time": _time,
    "picklist": _picklist,
    "multipicklist": _picklist,
    "combobox": _picklist,
    "email": _email,
    "phone": _phone,
    "url": _url,
}


def _compound_fn(name: str, kind: str, fields: list[Mapping[str, Any]], fns: dict[str, ValueFn]) -> ValueFn:
    """address/location value from its components: {"city": ..., "street": ...} sorted by key, or null."""
    parts: list[tuple[str, ValueFn]] = []
    for entry in fields:
        part = str(entry["name"])
        if entry.get("compoundFieldName") != name or part == name:
            continue
        parts.append((_compound_key(name, part, kind), fns[part]))
    parts.sort()
    if not parts:
        return lambda i: None

    def compound(i: int) -> dict[str, Any] | None:
        values = {key: fn(i) for key, fn in parts}
        return values if any(v is not None for v in values.values()) else None

    return compound


def _compound_key(compound: str, part: str, kind: str) -> str:
    if kind == "location":  # Location__Latitude__s -> latitude
        suffix = part.rsplit("__", 1)[0].rsplit("__", 1)[-1] if part.endswith("__s") else part
    else:  # BillingStreet (compound BillingAddress) -> street
        prefix = compound[: -len("Address")] if compound.endswith("Address") else ""
        suffix = part[len(prefix) :] if part.startswith(prefix) else part
    return suffix[:1].lower() + suffix[1:]
