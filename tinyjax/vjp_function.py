"""The function ``jax.vjp`` returns: a pytree (its leaves are the residuals, as JAX's
``Partial``) that pulls a cotangent back, and whose ``with_refs`` sends each argument's
cotangent where the caller asks (:mod:`tinyjax.ad`)."""
from __future__ import annotations

from typing import Any, Callable

from tinyjax import tree_util
from tinyjax.ad import DidntWant, DontWant, GradRef, GradValue
from tinyjax.lax.refs import Ref
from tinyjax.tree_util import register_pytree_node

__all__ = ["VJP"]


class VJP(tree_util.Partial):
    """``pullback(*residuals, cotangent)`` with the residuals bound: calling it with the
    output's cotangent gives the tuple of the arguments' cotangents."""

    def with_refs(self, *wants: Any) -> Callable[[Any], Any]:
        """The pullback with each argument's cotangent sent as ``wants`` (the structure of
        the primal arguments) says: a :class:`~tinyjax.ad.GradValue` leaf returns it, a
        reference accumulates it (``ref[...] += ct``; the result holds
        :class:`~tinyjax.ad.GradRef`), :class:`~tinyjax.ad.DontWant` drops it (the result
        holds :class:`~tinyjax.ad.DidntWant`)."""
        flat_wants, wants_tree = tree_util.tree_flatten(wants)
        for want in flat_wants:
            if not isinstance(want, (GradValue, DontWant, Ref)):
                raise TypeError("vjp with_refs: each leaf must be jax.ad.GradValue(), "
                                f"jax.ad.DontWant() or a reference, got {want!r}")

        def pull_back(cotangent: Any) -> Any:
            cts = self(cotangent)
            flat_cts, ct_tree = tree_util.tree_flatten(cts)
            if ct_tree != wants_tree:
                raise ValueError(f"vjp with_refs: the structure of its arguments "
                                 f"{wants_tree} must be that of the primal arguments "
                                 f"{ct_tree}")
            return tree_util.tree_unflatten(ct_tree, [_deliver(w, ct) for w, ct in
                                                      zip(flat_wants, flat_cts)])
        return pull_back


def _deliver(want: Any, ct: Any) -> Any:
    if isinstance(want, GradValue):
        return ct
    if isinstance(want, DontWant):
        return DidntWant()
    want.addupdate(ct)
    return GradRef()


register_pytree_node(VJP, lambda p: ((p.args, p.keywords), p.func),
                     lambda func, xs: VJP(func, *xs[0], **xs[1]))
