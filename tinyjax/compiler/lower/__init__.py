"""Lowering: each jaxpr equation becomes low-level ops (:mod:`tinyjax.compiler.ops`) by its
primitive's lowering rule.  The rules live in one module per family of primitives, as the
primitives do in :mod:`tinyjax.lax`; each registers its rules on the primitive objects
(:func:`~tinyjax.compiler.lower.registry.register_lowering`) when
:mod:`~tinyjax.compiler.lower.jaxpr` imports it."""
