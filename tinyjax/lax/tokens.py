"""Tokens: ``create_token`` and ``after_all`` (XLA's token values, which order side effects).

A :class:`Token` holds no data.  As JAX does (its ``get_token_aval``), tinyjax gives a token
the stand-in data ``bool[0]``: a zero-size array, so the transforms, the control-flow
primitives and the compiler carry tokens as any other (empty) array, and a compiled
program spends nothing on them.  To users a token is one pytree leaf, as in JAX; the
transforms open it into that data (as they open key arrays) and wrap what they made of it
back into a token.  In jaxprs, tokens therefore show as ``bool[0]`` where JAX prints
``Tok``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax.core import Primitive, ShapedArray
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.shape import full
from tinyjax.tree_util.registration import register_extended_leaf

__all__ = ["Token", "create_token", "create_token_p", "after_all", "after_all_p"]

TOKEN_AVAL = ShapedArray((0,), np.bool_)
_NOT_TOKENS = "Arguments to after_all must be tokens"


class Token:
    """A token value: no data, only an order among the computations that take it."""

    __slots__ = ("_buf",)
    # no axes: the transforms see rank 0 (vmap cannot map over a token)
    shape: tuple[int, ...] = ()
    ndim = 0

    def __init__(self, buf: Any):
        self._buf = buf  # its stand-in data, bool[0] (or what a transform made of it)

    def block_until_ready(self) -> None:
        """Wait for the computation that produced the token (JAX's ``Token``)."""
        wait = getattr(self._buf, "block_until_ready", None)
        if wait is not None:
            wait()

    def __repr__(self) -> str:
        return "Token()"


# one pytree leaf to users; the transforms trace its data
register_extended_leaf(Token, lambda token: token._buf, Token)


def _token_data() -> Any:
    return full((0,), False, np.bool_)


def create_token(_: Any = None) -> Token:
    """A token with no preconditions for sequencing effects.  The argument is ignored (it
    exists for backward compatibility, as in JAX)."""
    return Token(create_token_p.bind())


def after_all(*operands: Token) -> Token:
    """The token that comes after all ``operands`` (tokens): XLA's AfterAll."""
    if not all(isinstance(t, Token) for t in operands):
        raise TypeError(_NOT_TOKENS)
    return Token(after_all_p.bind(*[t._buf for t in operands]))


def _create_token_abstract_eval(*_: ShapedArray) -> ShapedArray:
    return TOKEN_AVAL


def _after_all_abstract_eval(*operands: ShapedArray) -> ShapedArray:
    if any(a != TOKEN_AVAL for a in operands):
        raise TypeError(_NOT_TOKENS)
    return TOKEN_AVAL


def _after_all_impl(*operands: np.ndarray) -> np.ndarray:
    _after_all_abstract_eval(*(ShapedArray(np.shape(o), np.asarray(o).dtype)
                               for o in operands))
    return np.zeros((0,), np.bool_)


create_token_p = Primitive("create_token")
create_token_p.def_abstract_eval(_create_token_abstract_eval)
define_composite(create_token_p, _token_data)
derive_rules(create_token_p)

after_all_p = Primitive("after_all")
after_all_p.def_abstract_eval(_after_all_abstract_eval)
define_composite(after_all_p, lambda *tokens: _token_data(), eager=False)
after_all_p.def_impl(_after_all_impl)
derive_rules(after_all_p)
