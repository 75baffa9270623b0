"""``jax.lib``: in JAX, the facade of the jaxlib package (its compiled runtime).  tinyjax
has no jaxlib; libraries read ``jax.lib.__version__`` to work around jaxlib releases, and
see the JAX release whose API tinyjax follows."""
from tinyjax.version import jax_api_version as __version__

__all__ = ["__version__"]
