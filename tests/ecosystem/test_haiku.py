"""Haiku on tinyjax: transformed functions (MLP, CNN, BatchNorm with state, dropout, an
LSTM under ``dynamic_unroll`` and ``remat``) train to JAX's losses; parameters are
created with JAX's initial values."""
import numpy as np
import pytest

from tests.ecosystem.reference import DEVICES, check_program, import_library, programs

hk = import_library("haiku")
import jax  # noqa: E402  (tinyjax, installed as jax by conftest)
import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", programs("haiku_models"))
def test_training_matches_jax(program, device, monkeypatch):
    check_program("haiku_models", program, device, monkeypatch)


def test_transform_names_parameters_by_module():
    f = hk.transform(lambda x: hk.Linear(3, name="proj")(hk.Linear(4)(x)))
    params = f.init(jax.random.key(0), jnp.ones((2, 5)))
    assert {k: {n: v.shape for n, v in p.items()} for k, p in params.items()} == {
        "linear": {"w": (5, 4), "b": (4,)}, "proj": {"w": (4, 3), "b": (3,)}}
    out = jax.jit(f.apply)(params, None, jnp.ones((2, 5)))
    h = jnp.ones((2, 5)) @ params["linear"]["w"] + params["linear"]["b"]
    np.testing.assert_allclose(np.asarray(out),
                               np.asarray(h @ params["proj"]["w"] + params["proj"]["b"]),
                               rtol=1e-5)


def test_state_and_rngs_thread_through_vmap():
    def counter(x):
        count = hk.get_state("count", [], init=jnp.zeros)
        hk.set_state("count", count + 1)
        return x + jax.random.uniform(hk.next_rng_key(), x.shape)

    f = hk.transform_with_state(counter)
    params, state = f.init(jax.random.key(0), jnp.zeros(3))
    out, state = f.apply(params, state, jax.random.key(1), jnp.zeros(3))
    assert float(state["~"]["count"]) == 1.0
    assert np.all((np.asarray(out) >= 0) & (np.asarray(out) < 1))
