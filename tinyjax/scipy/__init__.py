"""tinyjax.scipy: the parts of ``jax.scipy`` built on tinyjax.numpy and lax."""
from tinyjax.scipy import special, stats

__all__ = ["special", "stats"]
