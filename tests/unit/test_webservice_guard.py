"""The pre-parse guard: every hostile or malformed request is refused before spyne sees it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine.exceptions import InvalidInput
from webservice import guard
from webservice.faults import SOAP11_ENV, SOAP12_ENV, SoapVersion

HOSTILE = Path(__file__).parents[1] / "fixtures" / "soap" / "hostile"
OK_11 = f'<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Body/></s:Envelope>'.encode()
OK_12 = f'<s:Envelope xmlns:s="{SOAP12_ENV}"><s:Body/></s:Envelope>'.encode()
TEXT_XML, SOAP_XML = "text/xml; charset=utf-8", "application/soap+xml; charset=utf-8"


def environ(body: bytes, content_type: str = TEXT_XML, length: bool = True) -> dict:
    env = {"CONTENT_TYPE": content_type, "wsgi.input": io.BytesIO(body)}
    if length:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


def refused(body: bytes, content_type: str = TEXT_XML, max_bytes: int = 10_000,
            **options) -> guard.Refused:
    with pytest.raises(guard.Refused) as caught:
        guard.read_envelope(environ(body, content_type, **options), max_bytes)
    assert isinstance(caught.value.error, InvalidInput)
    return caught.value


def test_a_plain_envelope_passes_with_its_version():
    assert guard.read_envelope(environ(OK_11), 10_000).version is SoapVersion.SOAP11
    passed = guard.read_envelope(environ(OK_12, SOAP_XML + '; action="x"'), 10_000)
    assert passed.version is SoapVersion.SOAP12
    assert passed.body == OK_12


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe_file.xml",
                                  "xxe_parameter_entity.xml", "external_dtd.xml"])
@pytest.mark.parametrize("content_type", [TEXT_XML, SOAP_XML])
def test_dtds_and_entities_are_refused_in_the_requests_version(name, content_type):
    result = refused((HOSTILE / name).read_bytes(), content_type)
    assert "DTDs and entity declarations are not accepted" in str(result)
    assert result.version is guard.version_for(content_type)


def test_a_doctype_hidden_in_utf16_is_refused():
    body = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]>'
            f'<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Body/></s:Envelope>').encode("utf-16")
    assert "DTDs" in str(refused(body, "text/xml"))


@pytest.mark.parametrize("body", [b"", b"   \r\n "])
def test_an_empty_body_is_refused(body):
    assert "empty" in str(refused(body))


def test_a_body_over_the_cap_is_refused_before_reading_it():
    big = OK_11 + b" " * 200
    assert "exceeds 100 bytes" in str(refused(big, max_bytes=100))


def test_a_content_length_that_is_no_number_is_refused():
    env = environ(OK_11)
    env["CONTENT_LENGTH"] = "12abc"
    with pytest.raises(guard.Refused, match="Content-Length header is not a number"):
        guard.read_envelope(env, 10_000)


def test_a_body_over_the_cap_without_content_length_is_refused():
    big = OK_11 + b" " * 200
    assert "exceeds 100 bytes" in str(refused(big, max_bytes=100, length=False))


@pytest.mark.parametrize("body", [b"hello", b'{"taskId": 1}', b"<a><b></a>", b"<a>&undefined;</a>",
                                  b"<a>" * 300 + b"</a>" * 300, b"\xff\xfe\x00garbage"])
def test_non_xml_is_refused_as_invalid_input(body):
    assert "not well-formed XML" in str(refused(body, "text/xml"))


def test_xml_that_is_not_a_soap_envelope_is_refused():
    assert "not a SOAP 1.1 or 1.2 Envelope" in str(refused(b"<Envelope><Body/></Envelope>"))


def test_a_soap12_envelope_sent_as_text_xml_is_refused_in_soap12():
    result = refused(OK_12, TEXT_XML)
    assert result.version is SoapVersion.SOAP12
    assert "needs Content-Type application/soap+xml" in str(result)


def test_an_unknown_content_type_is_refused():
    result = refused(OK_11, "application/json")
    assert result.version is SoapVersion.SOAP11
    assert "Content-Type must be text/xml" in str(result)


@pytest.mark.parametrize("content_type", ["text/xml; charset=no-such-codec",
                                          "text/xml; charset=ascii"])
def test_a_charset_the_body_does_not_match_is_refused(content_type):
    body = f'<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Body>é</s:Body></s:Envelope>'.encode()
    assert "is not valid" in str(refused(body, content_type))


def test_a_latin1_body_is_read_with_its_charset_and_handed_on_as_utf8():
    body = ('<?xml version="1.0" encoding="iso-8859-1"?>'
            f'<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Body>Müller</s:Body></s:Envelope>')
    passed = guard.read_envelope(environ(body.encode("latin-1"),
                                         "text/xml; charset=iso-8859-1"), 10_000)
    assert passed.root[0].text == "Müller"
    assert passed.content_type == "text/xml; charset=utf-8"
    assert "Müller".encode() in passed.body and b"iso-8859-1" not in passed.body
