"""jax.ops segment reductions against a Python loop."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import ops

rng = np.random.default_rng(3)
REDUCE = {"segment_sum": (np.add, 0.0), "segment_prod": (np.multiply, 1.0),
          "segment_max": (np.maximum, -np.inf), "segment_min": (np.minimum, np.inf)}


def loop_reference(name, data, ids, n):
    fn, identity = REDUCE[name]
    out = np.full((n,) + data.shape[1:], identity, data.dtype)
    for row, s in zip(data, ids):
        if 0 <= s < n:
            out[s] = fn(out[s], row)
    return out


@pytest.mark.parametrize("name", sorted(REDUCE))
def test_segments_match_a_loop(name):
    data = rng.standard_normal((9, 3)).astype(np.float32)
    ids = np.array([0, 2, 2, 1, 0, 5, -1, 3, 2], np.int32)  # 5 and -1 are dropped
    got = getattr(ops, name)(data, ids, num_segments=4)
    np.testing.assert_allclose(np.asarray(got), loop_reference(name, data, ids, 4), rtol=1e-6)
    jitted = jax.jit(lambda d, i: getattr(ops, name)(d, i, 4))(data, ids)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(got), rtol=1e-6)


def test_num_segments_from_the_ids_and_integer_identities():
    assert np.asarray(ops.segment_sum(jnp.arange(5.0), jnp.array([0, 0, 1, 3, 2]))).tolist() == \
        [1.0, 2.0, 4.0, 3.0]
    out = ops.segment_min(jnp.arange(5), jnp.array([0, 0, 1, 3, 7]), 4)
    assert np.asarray(out).tolist() == [0, 2, np.iinfo(np.int32).max, 3]
    with pytest.raises(ValueError, match="num_segments must be given"):
        jax.jit(lambda d, i: ops.segment_sum(d, i))(jnp.ones(3), jnp.zeros(3, np.int32))


def test_gradients():
    d = jnp.array([1.0, 3.0, 2.0])
    g = jax.grad(lambda d: ops.segment_max(d, jnp.array([0, 0, 1]), 2).sum())(d)
    assert np.asarray(g).tolist() == [0.0, 1.0, 1.0]
    g = jax.grad(lambda d: (ops.segment_sum(d, jnp.array([1, 1, 0]), 2) ** 2).sum())(d)
    assert np.asarray(g).tolist() == [8.0, 8.0, 4.0]
