"""tinyjax.scipy: the parts of ``jax.scipy`` built on tinyjax.numpy and lax."""
from tinyjax.scipy import linalg, signal, special, stats

__all__ = ["linalg", "signal", "special", "stats"]
