"""Partner SOAP `login` (POST /services/Soap/u/{version}), the call simple-salesforce makes for
username + password + security token. Answers with a session on the fake, or Salesforce's
INVALID_LOGIN fault (HTTP 500) that simple-salesforce turns into SalesforceAuthenticationFailed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True)
class LoginAnswer:
    """Status and XML body of a SOAP login answer."""

    status: int
    body: str


def parse_login(body: bytes) -> tuple[str, str] | None:
    """(username, password+token) from a login envelope, or None when it is not one."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None  # no DTDs: entity expansion has no place in a login body
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    values: dict[str, str] = {}
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in ("username", "password"):
            values[local] = element.text or ""
    if "username" not in values or "password" not in values:
        return None
    return values["username"], values["password"]


def login_success(
    *, instance_url: str, version: str, session_id: str, org_id: str, user_id: str, username: str
) -> LoginAnswer:
    """The loginResponse envelope; serverUrl points at the fake so the client talks to it next."""
    org15 = org_id[:15]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENVELOPE}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/{org15}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{instance_url}/services/Soap/u/{version}/{org15}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId><userId>{user_id}</userId>"
        "<userInfo>"
        f"<organizationId>{org_id}</organizationId><userId>{user_id}</userId>"
        f"<userName>{escape(username)}</userName><userFullName>Fake Admin</userFullName>"
        "<sessionSecondsValid>7200</sessionSecondsValid>"
        "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return LoginAnswer(200, body)


def login_fault(code: str = "INVALID_LOGIN", message: str | None = None) -> LoginAnswer:
    """A SOAP fault as Salesforce sends it for a failed login (HTTP 500)."""
    text = message or "Invalid username, password, security token; or user locked out."
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENVELOPE}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(text)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(text)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return LoginAnswer(500, body)
