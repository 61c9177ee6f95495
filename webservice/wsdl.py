"""The WSDL, built once at start-up with the configured public address.

spyne would write the address of whichever request first asks for `?wsdl` (its Host header),
so a forged Host could end up in every client generated later. We build the document from
LIAISON_PUBLIC_URL instead and serve the same bytes to everyone. Like an .asmx service, it
offers a SOAP 1.1 and a SOAP 1.2 binding (`WorkflowServiceSoap`, `WorkflowServiceSoap12`)
of one port type, and writes `minOccurs="1"` on required elements.
"""

from __future__ import annotations

import copy

from lxml import etree

WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD = "http://www.w3.org/2001/XMLSchema"
BINDING_11 = "WorkflowServiceSoap"
BINDING_12 = "WorkflowServiceSoap12"


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _as_soap12(binding: etree._Element) -> etree._Element:
    clone = copy.deepcopy(binding)
    clone.set("name", BINDING_12)
    for node in clone.iter(_q(WSDL_SOAP11, "*")):
        node.tag = _q(WSDL_SOAP12, etree.QName(node).localname)
    return clone


def _add_soap12(root: etree._Element, tns_prefix: str) -> None:
    binding = root.find(_q(WSDL, "binding"))
    binding.set("name", BINDING_11)
    binding.addnext(_as_soap12(binding))
    port = root.find(f"{_q(WSDL, 'service')}/{_q(WSDL, 'port')}")
    port.set("name", BINDING_11)
    port.set("binding", f"{tns_prefix}:{BINDING_11}")
    port12 = copy.deepcopy(port)
    port12.set("name", BINDING_12)
    port12.set("binding", f"{tns_prefix}:{BINDING_12}")
    for node in port12.iter(_q(WSDL_SOAP11, "address")):
        node.tag = _q(WSDL_SOAP12, "address")
    port.addnext(port12)


def _explicit_min_occurs(root: etree._Element) -> None:
    for element in root.iter(_q(XSD, "element")):
        if element.getparent().tag == _q(XSD, "sequence") and element.get("minOccurs") is None:
            element.set("minOccurs", "1")


def build_wsdl(wsgi_application, address: str) -> bytes:
    """The WSDL of a spyne WsgiApplication, with `address` as the only endpoint address."""
    interface = wsgi_application.doc.wsdl11
    interface.build_interface_document(address)
    root = etree.fromstring(interface.get_interface_document())
    tns_prefix = next(p for p, ns in root.nsmap.items() if ns == root.get("targetNamespace"))
    _add_soap12(root, tns_prefix)
    _explicit_min_occurs(root)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
