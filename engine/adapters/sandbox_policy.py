"""The sandbox's compile-time layer: what code from uploaded BPMN may *name*.

RestrictedPython's rules plus ours (no imports, classes, bare ``except:`` or ``_`` names), and
the rewriting that lets the run-time guards (sandbox_guards) see sizes and count steps: ``*``,
``**``, ``<<``, ``+``, ``%`` become checked calls, loops, functions and lambdas tick a budget,
format-spec widths are checked. Used at upload (bpmn_validation) and before every run."""
# ruff: noqa: N802 - ast.NodeTransformer dictates the visit_* method names

from __future__ import annotations

import ast
import functools
import re
import textwrap

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.transformer import RestrictingNodeTransformer

FILENAME = "<script>"
_UNAVAILABLE = frozenset({"open", "compile", "getattr", "globals", "locals", "vars"})


def _call(name: str, args: list, at: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(ast.Name(name, ast.Load()), args, []), at)


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's rules plus ours (see the module docstring)."""

    def visit_Import(self, node):  # also ImportFrom and ClassDef
        what = "class definitions" if isinstance(node, ast.ClassDef) else "import statements"
        self.error(node, f"{what} are not allowed")
        return node

    visit_ImportFrom = visit_ClassDef = visit_Import  # noqa: N815

    def visit_Name(self, node):
        if node.id in _UNAVAILABLE:
            self.error(node, f"'{node.id}' is not available in scripts")
        return super().visit_Name(node)

    def visit_ExceptHandler(self, node):
        if node.type is None:
            self.error(node, "a bare 'except:' is not allowed; name the exception")
        return super().visit_ExceptHandler(node)

    def _tick_first(self, node):
        node.body.insert(0, ast.copy_location(ast.Expr(_call("_tick_", [], node)), node))
        return node

    def visit_While(self, node):
        return self._tick_first(super().visit_While(node))

    def visit_FunctionDef(self, node):
        return self._tick_first(super().visit_FunctionDef(node))

    def visit_Lambda(self, node):
        node = super().visit_Lambda(node)
        node.body = ast.copy_location(ast.BoolOp(ast.Or(), [_call("_tick_", [], node), node.body]),
                                      node)
        return node

    def visit_BinOp(self, node):
        node = super().visit_BinOp(node)
        symbol = _CHECKED_OPS.get(type(node.op))
        if symbol is None:
            return node
        return _call("_binop_", [ast.Constant(symbol), node.left, node.right], node)

    def visit_FormattedValue(self, node):
        node = super().visit_FormattedValue(node)
        if node.format_spec is not None:
            args = [node.value, node.format_spec, ast.Constant(node.conversion)]
            node.value, node.format_spec, node.conversion = _call("_format_", args, node), None, -1
        return node

    def visit_Module(self, node):
        return ast.fix_missing_locations(super().visit_Module(node))

    def visit_Expression(self, node):
        return ast.fix_missing_locations(super().visit_Expression(node))


_CHECKED_OPS = {ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%"}
_ERROR_LINE = re.compile(r"^Line (\d+): (SyntaxError: )?(.*?)(?: at statement: .*)?$", re.S)


def normalize(source: str, mode: str) -> str:
    """BPMN text as Python: expressions stripped, scripts dedented (their lines kept)."""
    return textwrap.dedent(source).rstrip() if mode == "exec" else source.strip()


def restricted_compile(source: str, mode: str):
    """RestrictedPython's CompileResult for BPMN text under our policy."""
    compile_fn = compile_restricted_exec if mode == "exec" else compile_restricted_eval
    return compile_fn(normalize(source, mode), filename=FILENAME, policy=_Policy)


def parse_error(text: str) -> tuple[str, int | None]:
    """(message, line) of one of RestrictedPython's "Line N: …" errors."""
    match = _ERROR_LINE.match(text)
    if match is None:
        return text, None
    return ("syntax error: " if match.group(2) else "") + match.group(3), int(match.group(1))


@functools.lru_cache(maxsize=2048)
def compile_source(source: str, mode: str):
    """Restricted code for ``source``; raises SyntaxError with its line (Spiff needs one)."""
    result = restricted_compile(source, mode)
    if result.errors:
        message, line = parse_error(result.errors[0])
        raise SyntaxError(message, (FILENAME, line or 1, 0, ""))
    return result.code
