"""Validation of uploaded BPMN: what a process designer gets back, with the XML line of each problem.

Our own lxml tree (hardened: no DTD, no entities, no network, a size cap) is checked first,
because Spiff's structural errors carry no line and some are misleading; SpiffBpmnParser then
builds the specs. Every expression and script is compiled through the sandbox policy here, so
``__import__('os')`` or a syntax error is refused at upload rather than at run time.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Collection
from dataclasses import dataclass

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine.adapters.sandbox import BUILTINS, FILENAME, normalize, parse_error, restricted_compile
from engine.exceptions import BpmnInvalid

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
# Flow nodes Spiff runs; DMN (businessRuleTask) needs decision tables we do not accept.
SUPPORTED = frozenset(SpiffBpmnParser.PARSER_CLASSES) | frozenset(
    SpiffBpmnParser.OVERRIDE_PARSER_CLASSES) - {f"{{{BPMN}}}businessRuleTask"}
EXPRESSIONS = {  # element -> compile mode of its text
    f"{{{BPMN}}}script": "exec", f"{{{SPIFF}}}preScript": "exec", f"{{{SPIFF}}}postScript": "exec",
    f"{{{BPMN}}}conditionExpression": "eval", f"{{{BPMN}}}condition": "eval",
    f"{{{BPMN}}}timeDuration": "eval", f"{{{BPMN}}}timeDate": "eval",
    f"{{{BPMN}}}timeCycle": "eval", f"{{{BPMN}}}loopCardinality": "eval",
    f"{{{BPMN}}}completionCondition": "eval", f"{{{BPMN}}}loopCondition": "eval",
    f"{{{SPIFF}}}expression": "eval", f"{{{SPIFF}}}messagePayload": "eval",
    f"{{{SPIFF}}}payloadExpression": "eval",
}
_RETRIEVAL = f"{{{BPMN}}}formalExpression"
_RETRIEVAL_PARENT = f"{{{BPMN}}}correlationPropertyRetrievalExpression"
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
LOAD_LIMIT = 64 * 1024 * 1024  # models in the database were size-checked at upload


@dataclass(frozen=True)
class ParsedModel:
    process_id: str  # id of the single executable process
    name: str  # its name attribute, else the id
    operators: tuple[str, ...]  # serviceTaskOperator names used
    user_tasks: tuple[dict, ...]  # [{"id", "name", "form": formJsonSchemaFilename or None}]


def check_source(source: str, mode: str) -> list[tuple[str, int | None]]:
    """Every syntax or sandbox-policy problem in ``source`` ("exec"/"eval") as (message, line)."""
    return [parse_error(text) for text in restricted_compile(source, mode).errors]


_BOUNDED_NODES = (
    ast.Module, ast.Expression, ast.Expr, ast.Assign, ast.If, ast.Try, ast.ExceptHandler, ast.Pass,
    ast.Name, ast.Load, ast.Store, ast.Constant, ast.Attribute, ast.Subscript, ast.Slice,
    ast.Compare, ast.cmpop, ast.BoolOp, ast.boolop, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.IfExp, ast.Dict, ast.List, ast.Tuple, ast.Set, ast.JoinedStr, ast.FormattedValue,
    ast.BinOp, ast.Add, ast.Sub, ast.Call, ast.keyword,
)
_BOUNDED_CALLS = frozenset({"len", "str", "int", "float", "bool", "abs", "min", "max"})
_BOUNDED_METHODS = frozenset({
    "get", "keys", "values", "items", "lower", "upper", "casefold", "title", "capitalize",
    "strip", "lstrip", "rstrip", "startswith", "endswith", "isdigit", "isalpha", "isalnum",
    "find", "count", "split", "splitlines", "isoformat",
})


def _bounded_node(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):  # other builtins (range, sum…) could be called via an alias
        builtin = BUILTINS.get(node.id)
        exception = isinstance(builtin, type) and issubclass(builtin, Exception)
        return builtin is None or exception or (
            node.id in _BOUNDED_CALLS and isinstance(node.ctx, ast.Load))
    if isinstance(node, ast.FormattedValue):
        return node.format_spec is None
    if isinstance(node, ast.BinOp):
        return isinstance(node.left, ast.Constant) or isinstance(node.right, ast.Constant)
    if isinstance(node, ast.Call):
        func = node.func
        plain = isinstance(func, ast.Name) and func.id in _BOUNDED_CALLS
        method = isinstance(func, ast.Attribute) and func.attr in _BOUNDED_METHODS
        starred = any(isinstance(a, ast.Starred) for a in node.args)
        return (plain or method) and not starred and all(k.arg for k in node.keywords)
    return isinstance(node, _BOUNDED_NODES)


@functools.lru_cache(maxsize=2048)
def is_bounded(source: str, mode: str) -> bool:
    """True when ``source`` provably runs in time and memory linear in its data, so it may run
    in-process: no loops, definitions, comprehensions or lambdas; calls only to a few linear
    builtins and methods; ``+``/``-`` only with a literal; no other builtins; ≤ 40 statements."""
    try:
        nodes = list(ast.walk(ast.parse(normalize(source, mode), FILENAME, mode)))
    except SyntaxError:
        return False
    statements = sum(isinstance(n, ast.stmt) for n in nodes)
    return statements <= 40 and all(_bounded_node(n) for n in nodes)


def _problem(message: str, element=None, line: int | None = None) -> dict:
    return {"message": message, "line": line if element is None else element.sourceline}


def _label(element) -> str:
    return f"{etree.QName(element).localname} '{element.get('id', '?')}'"


def parse_xml(data: bytes, max_bytes: int):
    """The document's root element, parsed without DTDs, entities or network."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise BpmnInvalid([_problem(f"the file has {len(data):,} bytes; at most {max_bytes:,} "
                                    "are allowed")])
    match = _DTD.search(data)
    if match:
        raise BpmnInvalid([_problem("DOCTYPE/entities are not allowed",
                                    line=data.count(b"\n", 0, match.start()) + 1)])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, dtd_validation=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise BpmnInvalid([_problem(f"malformed XML: {exc.msg}", line=exc.lineno)]) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # e.g. a UTF-16 DOCTYPE
        raise BpmnInvalid([_problem("DOCTYPE/entities are not allowed", line=1)])
    return root


def _executable_process(root) -> tuple[object | None, list[dict]]:
    if root.tag != f"{{{BPMN}}}definitions":
        return None, [_problem("the root element must be bpmn:definitions", root)]
    executable = [p for p in root.iter(f"{{{BPMN}}}process") if p.get("isExecutable") == "true"]
    if not executable:
        return None, [_problem('no executable process: mark one bpmn:process with '
                               'isExecutable="true"', root)]
    if len(executable) > 1:
        ids = ", ".join(p.get("id", "?") for p in executable)
        return None, [_problem(f"more than one executable process ({ids}); a file must have "
                               "exactly one", executable[1])]
    return executable[0], []


def _flow_problems(root) -> list[dict]:
    ids = {e.get("id"): e for e in root.iter(etree.Element) if e.get("id")}
    problems = []
    for flow in root.iter(f"{{{BPMN}}}sequenceFlow"):
        for attribute, verb in (("sourceRef", "starts at"), ("targetRef", "targets")):
            ref = flow.get(attribute)
            node = ids.get(ref)
            if node is None:
                problems.append(_problem(f"sequenceFlow {flow.get('id')} {verb} missing element "
                                         f"{ref}", flow))
            elif node.tag not in SUPPORTED:
                problems.append(_problem(f"{_label(node)} is not supported by this engine (it is "
                                         f"reached by sequenceFlow {flow.get('id')})", node))
    return _unique(problems)


def _unique(problems: list[dict]) -> list[dict]:
    seen, unique = set(), []
    for problem in problems:
        key = (problem["message"], problem["line"])
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return unique


def _operator_problems(root, operators: Collection[str]) -> tuple[list[str], list[dict]]:
    used, problems = [], []
    for task in root.iter(f"{{{BPMN}}}serviceTask"):
        operator = task.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
        name = operator.get("id") if operator is not None else None
        if not name:
            problems.append(_problem(f"{_label(task)} names no operator (add "
                                     "spiffworkflow:serviceTaskOperator)", task))
        elif name not in operators:
            problems.append(_problem(f"{_label(task)} uses unknown operator '{name}'; known "
                                     f"operators: {', '.join(sorted(operators))}", operator))
        if name and name not in used:
            used.append(name)
    return used, problems


def _is_flow_element(element) -> bool:
    name = etree.QName(element)
    return name.namespace == BPMN and not name.localname.endswith("EventDefinition")


def _source_problems(element, source: str, mode: str, what: str) -> list[dict]:
    offset = element.sourceline + (source[: len(source) - len(source.lstrip())].count("\n")
                                   if mode == "eval" else 0)
    owner = element.getparent()  # the flow element, not an event definition or operator
    while owner is not None and not (owner.get("id") and _is_flow_element(owner)):
        owner = owner.getparent()
    where = _label(owner) if owner is not None else "the process"
    return [_problem(f"{what} of {where}: {message}", line=offset + (line or 1) - 1)
            for message, line in check_source(source, mode)]


def _expression_problems(root) -> list[dict]:
    problems = []
    for element in root.iter(etree.Element):
        mode = EXPRESSIONS.get(element.tag)
        if element.tag == _RETRIEVAL and element.getparent().tag == _RETRIEVAL_PARENT:
            mode = "eval"  # a correlation key read from a message payload
        if mode and (element.text or "").strip():
            what = "script" if mode == "exec" else f"{etree.QName(element).localname} expression"
            problems += _source_problems(element, element.text, mode, what)
    for parameter in root.iter(f"{{{SPIFF}}}parameter"):
        if parameter.get("value", "").strip():
            what = f"parameter '{parameter.get('id')}'"
            problems += _source_problems(parameter, parameter.get("value"), "eval", what)
    return problems


def _spiff_problem(exc: Exception, root) -> dict:
    if not isinstance(exc, ValidationException):
        return _problem(f"the process could not be built: {type(exc).__name__}: {exc}")
    notes = [n for n in getattr(exc, "notes", []) if isinstance(n, str)]
    message = " ".join([str(exc.args[0]) if exc.args else "invalid BPMN", *notes])
    found = root.xpath("//*[@id=$i]", i=exc.id) if getattr(exc, "id", "") else []
    line = found[0].sourceline if found else (
        exc.line_number if isinstance(exc.line_number, int) else None)
    where = f"{exc.tag} '{exc.id}': " if getattr(exc, "id", "") else ""
    return _problem(where + message, line=line)


def build_specs(root, process_id: str, filename: str):
    """(spec, subprocess_specs) from SpiffBpmnParser; raises BpmnInvalid."""
    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_xml(root, filename=filename)
        return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)
    except Exception as exc:  # Spiff raises many kinds; each becomes a designer's message
        raise BpmnInvalid([_spiff_problem(exc, root)]) from None


def load_specs(data: bytes, filename: str = "model.bpmn"):
    """(process_id, spec, subprocess_specs) of an already validated model."""
    root = parse_xml(data, LOAD_LIMIT)
    process, problems = _executable_process(root)
    if problems:
        raise BpmnInvalid(problems)
    return (process.get("id"), *build_specs(root, process.get("id"), filename))


def _user_tasks(root) -> tuple[dict, ...]:
    tasks = []
    for task in root.iter(f"{{{BPMN}}}userTask"):
        form = task.find("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
                         "[@name='formJsonSchemaFilename']", NS)
        tasks.append({"id": task.get("id"), "name": task.get("name") or task.get("id"),
                      "form": form.get("value") if form is not None else None})
    return tuple(tasks)


def validate_bpmn(data: bytes, filename: str, operators: Collection[str],
                  max_bytes: int = 2 * 1024 * 1024) -> ParsedModel:
    """The model of an uploaded BPMN file; raises BpmnInvalid listing every problem found."""
    root = parse_xml(data, max_bytes)
    process, problems = _executable_process(root)
    problems += _flow_problems(root)
    used, operator_problems = _operator_problems(root, operators)
    problems += operator_problems
    if not problems:
        try:
            build_specs(root, process.get("id"), filename)
        except BpmnInvalid as exc:
            problems += exc.errors
    problems += _expression_problems(root)
    if problems:
        raise BpmnInvalid(sorted(problems, key=lambda p: (p["line"] or 0)))
    return ParsedModel(process_id=process.get("id"), name=process.get("name") or process.get("id"),
                       operators=tuple(used), user_tasks=_user_tasks(root))
