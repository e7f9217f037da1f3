"""A loopback fake Salesforce org (werkzeug over TLS on 127.0.0.1) serving an org folder."""

from .errors import ApiError, FakeOrgError
from .ids import sf_id, to18
from .org import FakeOrg, load_org
from .server import FakeOrgServer, serve, start_fake_org
from .state import LoggedRequest

__all__ = [
    "ApiError",
    "FakeOrg",
    "FakeOrgError",
    "FakeOrgServer",
    "LoggedRequest",
    "load_org",
    "serve",
    "sf_id",
    "start_fake_org",
    "to18",
]
