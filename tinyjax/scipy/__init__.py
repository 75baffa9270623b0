"""tinyjax.scipy: the parts of ``jax.scipy`` built on tinyjax.numpy and lax."""
from tinyjax.scipy import linalg, optimize, signal, special, stats

__all__ = ["linalg", "optimize", "signal", "special", "stats"]
