"""LIAISON_IMAP_URL: the three ways to connect, and a clear error for anything else (a
misspelt parameter must never leave the password travelling in the clear)."""

from __future__ import annotations

import pytest

from engine.adapters.imap_poller import ImapTarget
from engine.exceptions import InvalidInput


@pytest.mark.parametrize(("url", "security", "port", "folder"), [
    ("imap://bob:pw@mail.example/INBOX", "plain", 143, "INBOX"),
    ("imap://bob:pw@mail.example:1143/Replies?starttls=1", "starttls", 1143, "Replies"),
    ("imap://bob:pw@mail.example?starttls=true", "starttls", 143, "INBOX"),
    ("imap://bob:pw@mail.example/?starttls=0", "plain", 143, "INBOX"),
    ("imaps://bob:pw@mail.example", "tls", 993, "INBOX"),
    ("imaps://bob:pw@mail.example:10993/Sent%20Items", "tls", 10993, "Sent Items"),
])
def test_each_form_of_the_url_names_how_to_connect(url, security, port, folder):
    target = ImapTarget.parse(url)
    assert (target.security, target.port, target.folder) == (security, port, folder)
    assert (target.user, target.password) == ("bob", "pw")


def test_user_and_password_may_carry_escaped_characters():
    target = ImapTarget.parse("imaps://ops%40carrier.example:p%3Ass%2Fw@mail.example/")
    assert (target.user, target.password) == ("ops@carrier.example", "p:ss/w")
    assert "p:ss/w" not in target.key  # the key names the mailbox, never the password


@pytest.mark.parametrize(("url", "says"), [
    ("pop3://bob:pw@mail.example/", "is incomplete"),
    ("imap://mail.example/INBOX", "is incomplete"),
    ("imap://bob:pw@mail.example:99999/", "invalid port"),
    ("imap://bob:pw@mail.example/?startls=1", "unknown parameter 'startls'"),
    ("imap://bob:pw@mail.example/?starttls=maybe", "starttls='maybe'"),
    ("imaps://bob:pw@mail.example/?starttls=1", "TLS from the start"),
])
def test_anything_else_is_refused_naming_the_setting(url, says):
    with pytest.raises(InvalidInput, match="LIAISON_IMAP_URL") as refused:
        ImapTarget.parse(url)
    assert says in refused.value.message
    assert refused.value.field == "LIAISON_IMAP_URL"
