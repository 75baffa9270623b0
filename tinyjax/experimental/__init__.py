"""``jax.experimental``: ``io_callback``, the ``checkify`` transform, ``mesh_utils``, and
the experimental types ``EArray``, ``primal_tangent_dtype`` and ``cur_qdd``."""
from tinyjax.callback import io_callback
from tinyjax.experimental import checkify, compilation_cache, mesh_utils
from tinyjax.experimental.extended import EArray, primal_tangent_dtype
from tinyjax.experimental.hijax import cur_qdd

__all__ = ["io_callback", "checkify", "compilation_cache", "mesh_utils", "EArray",
           "cur_qdd", "primal_tangent_dtype"]
