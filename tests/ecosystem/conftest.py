"""The ecosystem tests run libraries written for JAX: tinyjax is installed as ``jax`` for
the whole test session (before any of them imports a library)."""
import tinyjax

tinyjax.install_as_jax()
