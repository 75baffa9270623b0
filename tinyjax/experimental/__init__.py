"""``jax.experimental``: ``io_callback``, the ``checkify`` transform and ``mesh_utils``."""
from tinyjax.callback import io_callback
from tinyjax.experimental import checkify, compilation_cache, mesh_utils

__all__ = ["io_callback", "checkify", "compilation_cache", "mesh_utils"]
