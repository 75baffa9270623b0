"""``jax.experimental.compilation_cache``: where compiled programs are kept between
processes (the module ``compilation_cache.compilation_cache``)."""
from tinyjax.experimental.compilation_cache import compilation_cache

__all__ = ["compilation_cache"]
