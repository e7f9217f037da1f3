"""Fault rules: what a rule matches (method, path and query regexes, sObject, call number, seeded
probability) and what it does. Rules are JSON objects, the same in-process and over HTTP:

    {"action": "respond", "path": "/query/", "nth": 2, "error_code": "QUERY_TIMEOUT"}

Matching counts the requests a rule's filters match (1, 2, 3, ...); the rule fires on match
number `first`, then every `every`-th match, at most `times` times (`nth: N` = first N, once),
and then only if a draw from its own `random.Random(seed)` is below `probability`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, TypeAdapter, ValidationError, model_validator

from .errors import FaultRuleError

# errorCode -> (HTTP status, message) as Salesforce sends them, for `respond` rules that name a code.
KNOWN_ERRORS: dict[str, tuple[int, str]] = {
    "INVALID_SESSION_ID": (401, "Session expired or invalid"),
    "REQUEST_LIMIT_EXCEEDED": (403, "TotalRequests Limit exceeded."),
    "API_DISABLED_FOR_ORG": (403, "The REST API is not enabled for this Organization."),
    "QUERY_TIMEOUT": (400, "Your query request was running for too long."),
    "INVALID_QUERY_LOCATOR": (400, "invalid query locator"),
    "NOT_FOUND": (404, "The requested resource does not exist"),
    "SERVER_UNAVAILABLE": (503, "Server temporarily unavailable, please try again later."),
}
LOGIN_PATH = re.compile(r"^/services/(Soap/u/[^/]+|oauth2/token)/?$")
BULK_JOB_PATH = re.compile(r"/jobs/query(/(?P<job>[A-Za-z0-9]{15,18}))?")


@dataclass(frozen=True)
class RequestFacts:
    """What rules match on, taken once from the request."""

    method: str
    path: str
    query: str
    sobject: str | None
    token: str


class _Rule(BaseModel):
    """Filters and call-number selection shared by every action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    method: str | None = None
    path: str | None = Field(None, description="regex searched in the request path")
    query: str | None = Field(None, description="regex searched in the decoded query string")
    sobject: str | None = None
    first: PositiveInt = 1
    every: PositiveInt = 1
    times: PositiveInt | None = None
    probability: float = Field(1.0, ge=0.0, le=1.0)
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _nth(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "nth" in data:
            if "first" in data or "times" in data:
                raise ValueError("nth means first=N, times=1: give nth or first/times, not both")
            data = {k: v for k, v in data.items() if k != "nth"} | {"first": data["nth"], "times": 1}
        return data

    @model_validator(mode="after")
    def _regexes(self) -> _Rule:
        for name in ("path", "query"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{name} is not a valid regular expression ({exc})") from exc
        return self

    def implicit_path(self) -> re.Pattern[str] | None:
        """Some actions only make sense on some routes; they match nothing else."""
        return None


class Respond(_Rule):
    """Answer instead of the org: a Salesforce error list, an HTML/empty page, or a raw body."""

    action: Literal["respond"]
    status: Annotated[int, Field(ge=200, le=599)] | None = None
    error_code: str | None = None
    message: str | None = None
    body: str | None = None
    content_type: str | None = None
    retry_after: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Respond:
        if self.body is not None and (self.error_code or self.message):
            raise ValueError("give either body or error_code/message, not both")
        if self.status is None and self.error_code not in KNOWN_ERRORS:
            known = ", ".join(sorted(KNOWN_ERRORS))
            raise ValueError(f"status is required unless error_code is one of {known}")
        if self.message and not self.error_code:
            raise ValueError("message needs an error_code")
        if self.status is not None and self.status < 300 and (self.body is None or self.error_code):
            # A 2xx answer stands in for a good one with wrong content (a corrupted or short file).
            raise ValueError("a 2xx status needs a body (and no error_code)")
        return self


class ExpireSession(_Rule):
    """Invalidate every session (`scope: all`) or the calling one; the request then gets 401."""

    action: Literal["expire_session"]
    scope: Literal["all", "request"] = "all"


class Delay(_Rule):
    """Wait before answering (past the client's read timeout: `ReadTimeout`)."""

    action: Literal["delay"]
    seconds: Annotated[float, Field(gt=0, le=600)]


class SlowBody(_Rule):
    """Send the body in `chunk_bytes` pieces with `seconds` between them."""

    action: Literal["slow_body"]
    seconds: Annotated[float, Field(gt=0, le=600)]
    chunk_bytes: PositiveInt = 1024


class Drop(_Rule):
    """Close the connection mid-body (default: after half of it) or before any header."""

    action: Literal["drop"]
    after_bytes: Annotated[int, Field(ge=0)] | None = None
    before_headers: bool = False

    @model_validator(mode="after")
    def _one(self) -> Drop:
        if self.before_headers and self.after_bytes is not None:
            raise ValueError("before_headers drops before any byte: leave after_bytes out")
        return self


class RateLimit(_Rule):
    """Leave `after` API calls in the daily limit; then 403 REQUEST_LIMIT_EXCEEDED, Remaining 0."""

    action: Literal["rate_limit"]
    after: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _org_wide(self) -> RateLimit:
        given = self.model_fields_set - {"action", "after", "id"}
        if given:
            raise ValueError(f"rate_limit applies to the whole org at once; remove {sorted(given)}")
        return self


class InvalidateLocator(_Rule):
    """Forget every open query cursor before the request: its locator gets INVALID_QUERY_LOCATOR."""

    action: Literal["invalidate_locator"]


class BulkJobState(_Rule):
    """Force the Bulk 2.0 job this request creates or names into Failed, Aborted or InProgress."""

    action: Literal["bulk_state"]
    state: Literal["Failed", "Aborted", "InProgress"]
    error_message: str | None = None

    @model_validator(mode="after")
    def _message_on_failed(self) -> BulkJobState:
        if self.error_message is not None and self.state != "Failed":
            raise ValueError("error_message goes with state Failed (only failed jobs report an errorMessage)")
        return self

    def implicit_path(self) -> re.Pattern[str] | None:
        return BULK_JOB_PATH


class LoginFail(_Rule):
    """Refuse a login: SOAP fault (default INVALID_LOGIN) or OAuth error (default invalid_grant)."""

    action: Literal["login_fail"]
    code: str | None = None
    message: str | None = None

    def implicit_path(self) -> re.Pattern[str] | None:
        return LOGIN_PATH


FaultRule = Respond | ExpireSession | Delay | SlowBody | Drop | RateLimit | InvalidateLocator | BulkJobState | LoginFail
_ADAPTER: TypeAdapter[FaultRule] = TypeAdapter(Annotated[FaultRule, Field(discriminator="action")])


def parse_rule(data: Mapping[str, Any] | FaultRule) -> FaultRule:
    """A validated rule from its JSON form.

    Raises:
        FaultRuleError: unknown action or field, bad value; the message names each one.
    """
    if isinstance(data, _Rule):
        return data
    if not isinstance(data, Mapping):
        raise FaultRuleError(f"a fault rule is a JSON object, got {type(data).__name__}")
    try:
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors())
        raise FaultRuleError(f"invalid fault rule ({problems})") from None


@dataclass
class ArmedRule:
    """A rule with its compiled filters, counters and random stream."""

    rule: FaultRule
    id: str
    matched: int = 0
    fired: int = 0
    _path: re.Pattern[str] | None = None
    _query: re.Pattern[str] | None = None
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._path = re.compile(self.rule.path) if self.rule.path is not None else None
        self._query = re.compile(self.rule.query) if self.rule.query is not None else None
        self._rng = random.Random(self.rule.seed)

    def matches(self, facts: RequestFacts) -> bool:
        rule = self.rule
        implicit = rule.implicit_path()
        return (
            (rule.method is None or rule.method.upper() == facts.method)
            and (implicit is None or implicit.search(facts.path) is not None)
            and (self._path is None or self._path.search(facts.path) is not None)
            and (self._query is None or self._query.search(facts.query) is not None)
            and (rule.sobject is None or (facts.sobject or "").lower() == rule.sobject.lower())
        )

    def tick(self, facts: RequestFacts) -> bool:
        """Count a request and say whether the rule fires on it (callers hold the rules' lock)."""
        if isinstance(self.rule, RateLimit) or not self.matches(facts):
            return False
        self.matched += 1
        rule = self.rule
        n = self.matched
        if n < rule.first or (n - rule.first) % rule.every or (rule.times is not None and self.fired >= rule.times):
            return False
        if rule.probability < 1.0 and self._rng.random() >= rule.probability:
            return False
        self.fired += 1
        return True

    def describe(self) -> dict[str, Any]:
        dumped = self.rule.model_dump(exclude_none=True, exclude={"id"})
        return {"id": self.id, **dumped, "matched": self.matched, "fired": self.fired}
