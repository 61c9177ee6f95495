"""Lets spyne 2.14 import on Python 3.12 and later.

spyne ships its own copy of `six`, whose import hook lacks `find_spec` (removed from the
import system in 3.12), so `import spyne` fails with "No module named
'spyne.util.six.moves'". On 3.13 spyne also imports `cgi`, which left the standard library;
the `legacy-cgi` distribution (a dependency for 3.13+) puts it back.

The shim serves the maintained `six` under spyne's names before spyne is first imported.
spyne has no maintained fork, which is why it is pinned and why this lives here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

VENDORED = "spyne.util.six"
MOVES = VENDORED + ".moves"


class _MovesAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `spyne.util.six.moves.X` (e.g. `.collections_abc`) to `six.moves.X`."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(MOVES + "."):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module("six.moves." + spec.name[len(MOVES) + 1:])

    def exec_module(self, module) -> None:
        """The module came from six already complete."""


def _function_name(function) -> str:
    return function.__name__


def _six_proxy():
    import six

    proxy = types.ModuleType(VENDORED, "The maintained six, under the name spyne expects.")
    proxy.__getattr__ = lambda name: getattr(six, name)
    # spyne's copy had this helper; the maintained six dropped it.
    proxy.get_function_name = _function_name
    proxy.moves = six.moves
    return proxy, six.moves


def needs_shim() -> bool:
    return sys.version_info >= (3, 12)


def install(force: bool = False) -> bool:
    """Registers the shim when this Python needs it (or `force`); True when it is in place.

    Idempotent, and a no-op once spyne's own copy has been imported.
    """
    if not (force or needs_shim()):
        return False
    if isinstance(sys.modules.get(VENDORED), types.ModuleType) and \
            any(isinstance(f, _MovesAlias) for f in sys.meta_path):
        return True
    if VENDORED in sys.modules:
        return False  # spyne already imported its own copy: leave it alone
    proxy, moves = _six_proxy()
    sys.modules[VENDORED] = proxy
    sys.modules[MOVES] = moves
    sys.meta_path.insert(0, _MovesAlias())
    return True
