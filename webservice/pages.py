"""The HTML help of the service, as an .asmx service offers it: a listing of the operations
and one page per operation (`?op=<Operation>`) with its parameters and sample messages.

Pages are rendered once at start-up (the address is the configured public URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from webservice.faults import SoapVersion
from webservice.wssecurity import PASSWORD_TEXT, WSSE, WSU

SECURITY_HEADER = f"""  <soap:Header>
    <wsse:Security xmlns:wsse="{WSSE}"
                   xmlns:wsu="{WSU}">
      <wsse:UsernameToken>
        <wsse:Username>string</wsse:Username>
        <wsse:Password Type="{PASSWORD_TEXT}"
          >string</wsse:Password>
        <wsse:Nonce>base64Binary</wsse:Nonce>
        <wsu:Created>dateTime</wsu:Created>
      </wsse:UsernameToken>
    </wsse:Security>
  </soap:Header>
"""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class Operation:
    name: str
    doc: str
    params: tuple[Field, ...]
    result: tuple[Field, ...]
    result_type: str


def _fields(model) -> tuple[Field, ...]:
    return tuple(Field(name, kind.get_type_name(), kind.Attributes.min_occurs >= 1)
                 for name, kind in model._type_info.items())


def operations(service) -> list[Operation]:
    found = []
    for descriptor in service.public_methods.values():
        [(_, result_model)] = descriptor.out_message._type_info.items()
        found.append(Operation(descriptor.name, " ".join((descriptor.doc or "").split()),
                               _fields(descriptor.in_message), _fields(result_model),
                               result_model.get_type_name()))
    return sorted(found, key=lambda op: op.name)


def _body(element: str, fields: tuple[Field, ...], namespace: str, result: str = "") -> str:
    indent = "        " if result else "      "
    lines = [f'    <{element} xmlns="{namespace}">'] + ([f"      <{result}>"] if result else [])
    for field in fields:
        note = "" if field.required else "  <!-- optional -->"
        lines.append(f"{indent}<{field.name}>{field.type}</{field.name}>{note}")
    lines += ([f"      </{result}>"] if result else []) + [f"    </{element}>"]
    return "\n".join(lines)


def sample_message(version: SoapVersion, path: str, host: str, operation: Operation,
                   namespace: str, response: bool = False) -> str:
    """An HTTP request (or response) as a client would send (or get) it."""
    if response:
        head = f"HTTP/1.1 200 OK\nContent-Type: {version.content_type}"
        body = _body(operation.name + "Response", operation.result, namespace,
                     result=operation.name + "Result")
        header = ""
    else:
        action = f'"{operation.name}"'
        head = f"POST {path} HTTP/1.1\nHost: {host}\nContent-Type: {version.content_type}"
        head += f"\nSOAPAction: {action}" if version is SoapVersion.SOAP11 else f"; action={action}"
        body, header = _body(operation.name, operation.params, namespace), SECURITY_HEADER
    return (f'{head}\n\n<?xml version="1.0" encoding="utf-8"?>\n'
            f'<soap:Envelope xmlns:soap="{version.namespace}">\n{header}  <soap:Body>\n'
            f"{body}\n  </soap:Body>\n</soap:Envelope>")


class HelpPages:
    def __init__(self, service, service_name: str, namespace: str, address: str) -> None:
        self.env = Environment(loader=PackageLoader("webservice", "templates"),
                               autoescape=select_autoescape(default=True))
        self.ops = operations(service)
        split = urlsplit(address)
        self.common = {"service": service_name, "namespace": namespace, "address": address,
                       "path": split.path, "operations": self.ops}
        self._listing = self._render("soap_service.html")
        self._pages = {op.name.lower(): self._operation_page(op, split.netloc) for op in self.ops}

    def _render(self, template: str, **values) -> bytes:
        return self.env.get_template(template).render(**self.common, **values).encode("utf-8")

    def _operation_page(self, op: Operation, host: str) -> bytes:
        path, ns = self.common["path"], self.common["namespace"]
        samples = [(f"SOAP {v}", sample_message(v, path, host, op, ns),
                    sample_message(v, path, host, op, ns, response=True)) for v in SoapVersion]
        return self._render("soap_operation.html", op=op, samples=samples)

    def listing(self) -> bytes:
        return self._listing

    def operation(self, name: str) -> bytes | None:
        return self._pages.get(name.strip().lower())
