"""Running code written for JAX -- and the libraries built on it (Optax, Chex, Flax,
Equinox, Haiku) -- on tinyjax, unchanged.

:func:`install_as_jax` makes ``import jax``, ``import jax.numpy`` and ``from jax.X import
Y`` resolve to tinyjax's own modules (``python -m tinyjax script.py`` runs a script that
way).  Most ``jax.X`` names are tinyjax's module of the same path; the rest live here:

* :mod:`tinyjax.compat.mlir` -- ``jax.interpreters.mlir``: a library's
  ``register_lowering(prim, lower_fun(fn))`` makes ``fn`` the primitive's definition,
  lowered with tinyjax's own rules;
* :mod:`tinyjax.compat._src` -- ``jax._src``: exactly the private JAX names that these
  libraries import at their current releases, each mapped onto tinyjax's equivalent.

This package sits above every other layer of tinyjax: nothing in tinyjax imports it
except the package root, which offers :func:`install_as_jax`.
"""
from __future__ import annotations

import sys

from tinyjax.compat.aliases import JaxAliasFinder, bind_redirects

__all__ = ["install_as_jax", "is_installed"]


def is_installed() -> bool:
    """Whether :func:`install_as_jax` has run in this process."""
    return any(isinstance(f, JaxAliasFinder) for f in sys.meta_path)


def install_as_jax() -> None:
    """Make ``jax`` and every ``jax.X`` module name resolve to tinyjax's modules.

    After it, ``import jax`` gives the ``tinyjax`` module itself, ``import jax.numpy as
    jnp`` gives ``tinyjax.numpy`` (the same module objects: no copies, no second state),
    and libraries written for JAX import and run on tinyjax.  The JAX modules kept in
    :mod:`tinyjax.compat` become attributes of their JAX parents (``tinyjax._src``,
    ``tinyjax.interpreters.mlir``).  Calling it again does
    nothing.  Raises ``RuntimeError`` if a real JAX is already imported in this process
    (two array libraries under one name would mix silently).
    """
    if is_installed():
        return
    loaded = sys.modules.get("jax")
    if loaded is not None:
        where = getattr(loaded, "__file__", None) or "an unknown location"
        raise RuntimeError(
            f"tinyjax.install_as_jax(): a module named 'jax' is already imported (from "
            f"{where}). Call install_as_jax() before anything imports jax, or run the "
            "program with `python -m tinyjax script.py`.")
    sys.meta_path.insert(0, JaxAliasFinder())
    sys.modules["jax"] = sys.modules["tinyjax"]  # (a subpackage's parent is imported)
    bind_redirects()
