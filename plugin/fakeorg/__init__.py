"""A loopback fake Salesforce org (werkzeug over TLS on 127.0.0.1) serving an org folder, with
fault rules, quirks, request accounting and a replay mode."""

from .errors import ApiError, FakeOrgError, FaultRuleError
from .ids import sf_id, to18
from .org import FakeOrg, load_org
from .server import FakeOrgServer, serve, start_fake_org
from .state import BulkJobOverride, LoggedRequest

__all__ = [
    "ApiError",
    "BulkJobOverride",
    "FakeOrg",
    "FakeOrgError",
    "FakeOrgServer",
    "FaultRuleError",
    "LoggedRequest",
    "load_org",
    "serve",
    "sf_id",
    "start_fake_org",
    "to18",
]
