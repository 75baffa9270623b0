"""``jax._src`` under :func:`tinyjax.install_as_jax`: the private JAX modules that Optax,
Chex, Flax, Equinox and Haiku import at their current releases, each holding exactly the
names those libraries use, mapped onto tinyjax's equivalents."""
from tinyjax.compat._src import xla_bridge  # noqa: E402,F401 (read as jax._src.xla_bridge)
