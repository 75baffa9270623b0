"""Lowering: each jaxpr equation becomes low-level ops (:mod:`tinyjax.compiler.ops`) by its
primitive's lowering rule."""
