"""Sphinx configuration for the tinyjax documentation.

Build the HTML:     sphinx-build -W -b html docs docs/_build/html
Run the examples:   sphinx-build -W -b doctest docs docs/_build/doctest
"""
import os
import sys

# Document the checkout this file lives in, installed or not.
sys.path.insert(0, os.path.abspath(".."))

project = "tinyjax"
author = "the tinyjax authors"
copyright = "the tinyjax authors"
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
]

# Build output is not part of the site.
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

html_theme = "furo"
html_title = "tinyjax"

# Signatures carry postponed (string) annotations; printing them adds nothing and
# makes the build depend on every annotated name resolving.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False, "undoc-members": False}

# Every ``.. doctest::`` block runs with these names in scope.
doctest_global_setup = """
import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax

# numpy's floating-point RuntimeWarnings (e.g. inf * 0 in the naive log1pexp
# gradient) go to stderr; JAX computes the same nan silently.
import numpy as np
_saved_np_err = np.seterr(all="ignore")
"""
# Restore numpy's error state: under pytest the doctests share a process with the
# other tests.
doctest_global_cleanup = """
np.seterr(**_saved_np_err)
"""


def _environment_table(app, docname, source):
    """``.. tinyjax-environment::`` on a page becomes the table of every environment
    variable tinyjax reads, from its one declaration (tinyjax.config.ENVIRONMENT)."""
    marker = ".. tinyjax-environment::"
    if marker not in source[0]:
        return
    from tinyjax.config import ENVIRONMENT
    rows = [".. list-table::", "   :header-rows: 1", "   :widths: 25 15 60", "",
            "   * - variable", "     - default", "     - meaning"]
    for var in ENVIRONMENT.values():
        default = f"``{var.default}``" if var.default is not None else "unset"
        rows += [f"   * - ``{var.name}``", f"     - {default}", f"     - {var.meaning}"]
    source[0] = source[0].replace(marker, "\n".join(rows))


# ``.. tinyjax-names:: MODULE`` tables list names with their one-line summaries; they do
# not generate a page per name.
autosummary_generate = False

_NOT_API = {"typing", "__future__", "collections.abc", "functools", "builtins", "abc",
            "contextlib", "enum", "dataclasses"}


def public_names(module_name: str) -> list[str]:
    """The public names of a module: its ``__all__``, or else every name not starting with
    an underscore that is neither a submodule nor a helper imported from the standard
    library's typing machinery."""
    import importlib
    import inspect
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    out = []
    for name in names:
        obj = getattr(module, name, None)
        if inspect.ismodule(obj) or getattr(obj, "__module__", None) in _NOT_API:
            continue
        out.append(name)
    return sorted(out, key=str.lower)


def _names_tables(app, docname, source):
    """``.. tinyjax-names:: MODULE`` becomes an autosummary table of every public name of
    the module with its one-line summary, read from the module when the docs build (so the
    list cannot fall behind the code).  It makes MODULE the current module."""
    marker = ".. tinyjax-names::"
    if marker not in source[0]:
        return
    lines = []
    for line in source[0].splitlines():
        if not line.startswith(marker):
            lines.append(line)
            continue
        module = line[len(marker):].strip()
        lines += [f".. currentmodule:: {module}", "", ".. autosummary::", "   :nosignatures:",
                  ""]
        lines += [f"   {name}" for name in public_names(module)]
        lines.append("")
    source[0] = "\n".join(lines)


def setup(app):
    app.connect("source-read", _environment_table)
    app.connect("source-read", _names_tables)
