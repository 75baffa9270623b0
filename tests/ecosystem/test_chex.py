"""Chex on tinyjax: a dataclass-parameterised MLP trains to JAX's losses under static and
value (``chexify``) assertions; assertions fail as they fail under JAX; test variants
run a function with and without jit."""
import numpy as np
import pytest

from tests.ecosystem.reference import DEVICES, check_program, import_library, programs

chex = import_library("chex")
import jax  # noqa: E402  (tinyjax, installed as jax by conftest)
import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", programs("chex_models"))
def test_training_matches_jax(program, device, monkeypatch):
    check_program("chex_models", program, device, monkeypatch)


def test_static_assertions_fail_with_chex_messages():
    x = jnp.ones((3, 2))
    chex.assert_shape(x, (3, 2))
    with pytest.raises(AssertionError, match="assert_shape"):
        chex.assert_shape(x, (2, 2))
    with pytest.raises(AssertionError, match="assert_rank"):
        jax.jit(lambda x: chex.assert_rank(x, 3) or x)(x)


def test_chexify_turns_a_failed_value_check_into_an_assertion_error():
    @chex.chexify
    @jax.jit
    def safe_log(x):
        chex.assert_tree_all_finite(x)
        return jnp.log(x)

    np.testing.assert_allclose(np.asarray(safe_log(jnp.ones(2))), [0.0, 0.0])
    with pytest.raises(AssertionError, match="non-finite"):
        safe_log(jnp.array([jnp.nan, 1.0]))
        safe_log.wait_checks()


def test_assert_max_traces_counts_traces_of_a_jitted_function():
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def add(x, y):
        return x + y

    add(jnp.zeros(3), jnp.zeros(3))
    add(jnp.ones(3), jnp.ones(3))  # same types: no new trace
    with pytest.raises(AssertionError, match="traced > 1 times"):
        add(jnp.zeros((2, 2)), jnp.zeros((2, 2)))


def test_dataclasses_are_pytrees():
    @chex.dataclass
    class Pair:
        a: chex.Array
        b: chex.Array

    p = Pair(a=jnp.ones(2), b=jnp.zeros(3))
    doubled = jax.jit(lambda p: jax.tree.map(lambda v: 2 * v + 1, p))(p)
    assert isinstance(doubled, Pair)
    np.testing.assert_allclose(np.asarray(doubled.a), [3.0, 3.0])
    np.testing.assert_allclose(np.asarray(doubled.b), [1.0, 1.0, 1.0])
