"""The import hook behind :func:`tinyjax.install_as_jax`: ``jax`` and every ``jax.X`` module
name resolve to tinyjax's own module objects.

A name ``jax.a.b`` resolves to the module that :func:`target_of` names (``tinyjax.a.b``,
except where :data:`REDIRECTS` says otherwise), imported once under its own name and
entered in ``sys.modules`` under the ``jax`` name too -- the same object, never a copy.
A ``jax.X`` that tinyjax lacks raises ``ModuleNotFoundError`` naming both spellings.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Optional, Sequence

__all__ = ["REDIRECTS", "JaxAliasFinder", "bind_redirects", "target_of"]

# JAX module prefixes that are not tinyjax's module of the same path: what JAX keeps in
# modules tinyjax organises differently, and the private modules libraries reach into.
REDIRECTS: dict[str, str] = {
    "jax._src": "tinyjax.compat._src",
    "jax.interpreters.mlir": "tinyjax.compat.mlir",
    "jax.lib": "tinyjax.compat.lib",
}


def target_of(name: str) -> str:
    """The tinyjax module that the JAX module ``name`` (``jax`` or ``jax.…``) is."""
    best = max((p for p in REDIRECTS if name == p or name.startswith(p + ".")),
               key=len, default=None)
    if best is not None:
        return REDIRECTS[best] + name[len(best):]
    return "tinyjax" + name[len("jax"):]


def bind_redirects() -> None:
    """Import each redirected module and make it the attribute of its JAX parent (and the
    ``sys.modules`` entry of its JAX name): ``from jax.interpreters import mlir`` looks the
    child up on the parent, or imports it by the parent's own (tinyjax) name."""
    for alias, target in REDIRECTS.items():
        parent, _, child = alias.rpartition(".")
        module = importlib.import_module(target)
        sys.modules[alias] = module
        setattr(importlib.import_module(target_of(parent)), child, module)


class _AliasLoader(importlib.abc.Loader):
    """Loads ``jax.…`` as the tinyjax module ``module`` (imported already: no code runs
    twice)."""

    def __init__(self, module: ModuleType):
        self.module = module
        self.own_spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the alias's spec on the module: it keeps its own
        module.__spec__ = self.own_spec


class JaxAliasFinder(importlib.abc.MetaPathFinder):
    """A meta-path finder for ``jax`` and ``jax.*`` (first on ``sys.meta_path``)."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None
                  ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != "jax" and not fullname.startswith("jax."):
            return None
        tinyjax_name = target_of(fullname)
        try:
            module = importlib.import_module(tinyjax_name)
        except ModuleNotFoundError as e:
            if e.name is None or not tinyjax_name.startswith(e.name):
                raise  # a module that tinyjax's module imports is missing
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: tinyjax, installed as jax, has no "
                f"{tinyjax_name!r}", name=fullname) from None
        parent, _, child = tinyjax_name.rpartition(".")
        attribute = getattr(sys.modules.get(parent), child, module)
        if attribute is not module:
            # e.g. ``jax.config`` is the Config object, not a module (as in JAX); aliasing
            # the module would also overwrite the attribute
            raise ModuleNotFoundError(f"No module named {fullname!r} ({fullname} is a "
                                      f"{type(attribute).__name__}, not a module)",
                                      name=fullname)
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(module),
                                              is_package=hasattr(module, "__path__"))
