"""``jax.experimental``: ``io_callback`` and the ``checkify`` transform."""
from tinyjax.callback import io_callback

__all__ = ["io_callback"]
