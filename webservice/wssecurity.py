"""WS-Security UsernameToken (OASIS WSS 1.0): reading it from an envelope and checking it.

PasswordText compares the password; PasswordDigest is Base64(SHA-1(nonce + created +
password)), so the server needs the plain password (see engine.domain.credentials). A digest
must carry Nonce and Created; whenever Created is present it must be within `SKEW` of our
clock. Whether a nonce was seen before is the caller's business (it needs the database).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree

from engine.exceptions import NotAuthenticated

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PROFILE_URI = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = PROFILE_URI + "#PasswordText"
PASSWORD_DIGEST = PROFILE_URI + "#PasswordDigest"
SKEW = timedelta(minutes=5)
MAX_NONCE_BYTES = 64
MAX_FIELD = 200


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str
    digest: bool
    nonce: str | None = None  # as sent (Base64), which is also how it is stored
    created: str | None = None  # as sent: the digest covers these exact characters

    def created_at(self) -> datetime | None:
        if self.created is None:
            return None
        try:
            value = datetime.fromisoformat(self.created)
        except ValueError:
            raise NotAuthenticated("WS-Security Created is not an ISO 8601 time") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def check_fresh(self, now: datetime, skew: timedelta = SKEW) -> None:
        if self.digest and (self.nonce is None or self.created is None):
            raise NotAuthenticated("a WS-Security PasswordDigest needs Nonce and Created")
        created = self.created_at()
        if created is not None and abs(now - created) > skew:
            minutes = int(skew.total_seconds() // 60)
            raise NotAuthenticated(f"WS-Security Created is not within {minutes} minutes of "
                                   "the server's clock")

    def matches(self, password: str) -> bool:
        if not self.digest:
            return hmac.compare_digest(self.password.encode(), password.encode())
        expected = digest_password(self.nonce or "", self.created or "", password)
        return hmac.compare_digest(expected.encode(), self.password.encode())


def digest_password(nonce_b64: str, created: str, password: str) -> str:
    nonce = base64.b64decode(nonce_b64)
    # SHA-1 is what the UsernameToken profile prescribes; it is not our choice.
    raw = hashlib.sha1(nonce + created.encode() + password.encode()).digest()  # noqa: S324
    return base64.b64encode(raw).decode()


def _text(parent: etree._Element, tag: str) -> str | None:
    node = parent.find(tag)
    if node is None:
        return None
    value = (node.text or "").strip()
    if len(value) > MAX_FIELD:
        raise NotAuthenticated(f"WS-Security {etree.QName(tag).localname} is too long")
    return value


def _nonce(token: etree._Element) -> str | None:
    nonce = _text(token, f"{{{WSSE}}}Nonce")
    if nonce is None:
        return None
    try:
        raw = base64.b64decode(nonce, validate=True)
    except (binascii.Error, ValueError):
        raise NotAuthenticated("WS-Security Nonce is not Base64") from None
    if not 0 < len(raw) <= MAX_NONCE_BYTES:
        raise NotAuthenticated(f"WS-Security Nonce must have 1 to {MAX_NONCE_BYTES} bytes")
    return nonce


def _password_kind(password: etree._Element) -> bool:
    kind = password.get("Type") or PASSWORD_TEXT
    if kind not in (PASSWORD_TEXT, PASSWORD_DIGEST):
        raise NotAuthenticated("WS-Security password Type must be PasswordText or PasswordDigest")
    return kind == PASSWORD_DIGEST


def read_username_token(envelope: etree._Element, soap_namespace: str) -> UsernameToken:
    """The UsernameToken of the envelope's wsse:Security header; NotAuthenticated if absent."""
    token = envelope.find(f"{{{soap_namespace}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if token is None:
        raise NotAuthenticated("a WS-Security UsernameToken header is required")
    password = token.find(f"{{{WSSE}}}Password")
    username = _text(token, f"{{{WSSE}}}Username")
    if not username or password is None:
        raise NotAuthenticated("the UsernameToken needs Username and Password")
    return UsernameToken(username=username, password=_text(token, f"{{{WSSE}}}Password") or "",
                         digest=_password_kind(password), nonce=_nonce(token),
                         created=_text(token, f"{{{WSU}}}Created"))
