"""``jax.lib``: in JAX 0.10 a package with no public names left (XLA's client moved into
``jaxlib``); it exists so that ``import jax.lib`` works as it does with JAX."""
