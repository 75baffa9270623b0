"""``jax.experimental``: ``io_callback`` and the ``checkify`` transform."""
from tinyjax.callback import io_callback
from tinyjax.experimental import checkify, compilation_cache

__all__ = ["io_callback", "checkify", "compilation_cache"]
