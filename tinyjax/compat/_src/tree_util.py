"""``jax._src.tree_util``: the registry of pytree node types (``type in _registry``)."""
from tinyjax.tree_util.nodes import _registry

__all__ = ["_registry"]
