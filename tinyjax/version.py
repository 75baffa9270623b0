"""tinyjax's version, and the JAX release whose public API it follows (names, signatures,
results, errors); libraries that check ``jax.__version_info__`` see the latter."""
__version__ = "0.1.0"
jax_api_version = "0.10.2"
__version_info__ = tuple(int(p) for p in jax_api_version.split("."))
