"""WS-Security UsernameToken parsing and checks, the login throttle, and the fault mapping."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from engine.exceptions import (
    Busy,
    ConcurrentUpdate,
    InvalidInput,
    NotAuthenticated,
    NotAuthorized,
    PayloadTooLarge,
    ReferenceMismatch,
    TaskClosed,
    TaskNotFound,
)
from tests.fixtures.soap.helpers import envelope, now_text, security_header
from webservice.auth import LoginThrottle
from webservice.faults import SOAP11_ENV, SOAP12_ENV, SoapVersion, fault_envelope, fault_for
from webservice.wssecurity import UsernameToken, digest_password, read_username_token

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def token_of(header: str, version: str = "1.1") -> UsernameToken:
    root = etree.fromstring(envelope("GetProcessInstanceTask", {"taskId": 1}, header, version))
    return read_username_token(root, SOAP11_ENV if version == "1.1" else SOAP12_ENV)


def test_digest_matches_the_profiles_formula():
    # Base64(SHA-1(nonce + created + password)), the example of the OASIS profile's shape.
    nonce = base64.b64encode(b"0123456789abcdef").decode()
    digest = digest_password(nonce, "2025-03-01T12:00:00Z", "secret")
    token = UsernameToken("u", digest, True, nonce, "2025-03-01T12:00:00Z")
    assert token.matches("secret")
    assert not token.matches("Secret")


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_text_and_digest_tokens_are_read_from_either_soap_version(version):
    text = token_of(security_header("carrier-1", "pw", digest=False), version)
    assert (text.username, text.password, text.digest) == ("carrier-1", "pw", False)
    assert text.matches("pw")
    digest = token_of(security_header("carrier-1", "pw", digest=True), version)
    assert digest.digest and digest.password != "pw"
    assert digest.matches("pw") and not digest.matches("other")


def test_a_missing_security_header_is_not_authenticated():
    with pytest.raises(NotAuthenticated, match="UsernameToken header is required"):
        token_of("")


@pytest.mark.parametrize("nonce, message", [("not base64!", "Nonce is not Base64"),
                                            (base64.b64encode(b"x" * 65).decode(), "1 to 64")])
def test_malformed_nonces_are_refused(nonce, message):
    with pytest.raises(NotAuthenticated, match=message):
        token_of(security_header("u", "pw", nonce=nonce))


def test_an_unknown_password_type_is_refused():
    header = security_header("u", "pw").replace("#PasswordText", "#PasswordSomethingElse")
    with pytest.raises(NotAuthenticated, match="PasswordText or PasswordDigest"):
        token_of(header)


@pytest.mark.parametrize("offset", [timedelta(minutes=-4, seconds=-59), timedelta(0),
                                    timedelta(minutes=4, seconds=59)])
def test_created_within_five_minutes_is_fresh(offset):
    token_of(security_header("u", "pw", digest=True, created=now_text(NOW + offset))) \
        .check_fresh(NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-5, seconds=-1),
                                    timedelta(minutes=5, seconds=1), timedelta(days=-1)])
def test_created_outside_five_minutes_is_stale(offset):
    token = token_of(security_header("u", "pw", digest=True, created=now_text(NOW + offset)))
    with pytest.raises(NotAuthenticated, match="within 5 minutes"):
        token.check_fresh(NOW)


def test_a_digest_without_nonce_or_created_is_refused():
    for options in ({"nonce": None}, {"created": None}):
        token = UsernameToken("u", "x", True, **{"nonce": "AAAA", "created": now_text(NOW),
                                                 **options})
        with pytest.raises(NotAuthenticated, match="needs Nonce and Created"):
            token.check_fresh(NOW)


def test_plain_text_without_created_needs_no_clock():
    token_of(security_header("u", "pw", nonce=None, created=None)).check_fresh(NOW)


def test_an_unparseable_created_is_refused():
    token = token_of(security_header("u", "pw", created="yesterday"))
    with pytest.raises(NotAuthenticated, match="ISO 8601"):
        token.check_fresh(NOW)


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_lets_a_few_failures_pass_then_pauses_the_username():
    clock = Ticks()
    throttle = LoginThrottle(free_failures=3, first_pause=1.0, max_pause=8.0, clock=clock)
    for _ in range(3):
        throttle.check("carrier")
        throttle.failed("carrier")
    throttle.check("carrier")  # three free failures: no pause yet
    throttle.failed("carrier")  # the fourth: paused for 1 s
    with pytest.raises(NotAuthenticated, match="too many failed logins"):
        throttle.check("carrier")
    throttle.check("other-provider")  # per username
    clock.now += 1.01
    throttle.check("carrier")
    throttle.failed("carrier")  # the fifth: 2 s
    clock.now += 1.5
    with pytest.raises(NotAuthenticated):
        throttle.check("carrier")
    for _ in range(10):
        throttle.failed("carrier")
    clock.now += 8.01  # capped
    throttle.check("carrier")
    throttle.succeeded("carrier")
    throttle.failed("carrier")
    throttle.check("carrier")  # a success starts the count again


def test_the_throttle_forgets_the_oldest_usernames_beyond_its_size():
    throttle = LoginThrottle(free_failures=0, first_pause=60, max_entries=2, clock=Ticks())
    for name in ("a", "b", "c"):
        throttle.failed(name)
    throttle.check("a")
    with pytest.raises(NotAuthenticated):
        throttle.check("c")


@pytest.mark.parametrize("exc, expected", [
    (TaskNotFound("task 9 not found"), "TaskNotFound: task 9 not found"),
    (NotAuthorized("not yours"), "NotAuthorized: not yours"),
    (NotAuthenticated("invalid username or password"),
     "NotAuthorized: invalid username or password"),
    (InvalidInput("bad"), "InvalidInput: bad"),
    (PayloadTooLarge("too big"), "InvalidInput: too big"),
    (TaskClosed("closed"), "TaskClosed: closed"),
    (ReferenceMismatch("other ref"), "ReferenceMismatch: other ref"),
])
def test_engine_errors_map_to_client_faults_with_the_contracts_codes(exc, expected):
    assert fault_for(exc) == ("Client", expected)


@pytest.mark.parametrize("exc", [RuntimeError("password=hunter2 in /srv/app.py"), KeyError("x")])
def test_anything_else_is_a_server_fault_without_details(exc):
    code, text = fault_for(exc)
    assert code == "Server"
    assert text.startswith("Server: internal error (incident ")
    assert "hunter2" not in text and "Traceback" not in text


@pytest.mark.parametrize("exc", [Busy("the task is held by other writers; nothing was applied"),
                                 ConcurrentUpdate("changed by others; nothing was applied")])
def test_contention_is_a_typed_server_fault_that_says_a_retry_is_safe(exc, caplog):
    code, text = fault_for(exc)
    assert code == "Server"
    assert text.startswith(f"{exc.code}: {exc.message}")
    assert "retrying with the same requestid is safe" in text.lower()
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback


def test_fault_envelopes_follow_each_soap_version():
    v11 = etree.fromstring(fault_envelope(SoapVersion.SOAP11, "Client", "InvalidInput: x < y"))
    assert v11.findtext(f"{{{SOAP11_ENV}}}Body/{{{SOAP11_ENV}}}Fault/faultcode").endswith(":Client")
    assert v11.findtext(".//faultstring") == "InvalidInput: x < y"
    v12 = etree.fromstring(fault_envelope(SoapVersion.SOAP12, "Client", "InvalidInput: x"))
    assert v12.findtext(f".//{{{SOAP12_ENV}}}Code/{{{SOAP12_ENV}}}Value").endswith(":Sender")
    assert v12.findtext(f".//{{{SOAP12_ENV}}}Reason/{{{SOAP12_ENV}}}Text") == "InvalidInput: x"
