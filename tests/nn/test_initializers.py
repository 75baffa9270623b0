"""tinyjax.nn.initializers: shapes, dtypes, the fan computation, sample statistics of
large draws, orthogonality, determinism in the key, and errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random
from tinyjax.nn import initializers as init
from tinyjax.nn.initializers import _compute_fans

KEY = random.PRNGKey(0)


def test_constant_initializers():
    np.testing.assert_array_equal(init.zeros(KEY, (2, 3)), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(init.ones(KEY, (4,), jnp.int32), np.ones(4, np.int32))
    assert init.ones(KEY, (4,), jnp.int32).dtype == np.int32
    out = init.constant(-0.5)(KEY, (2, 2))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.full((2, 2), -0.5, np.float32))
    assert init.constant(3, dtype=jnp.float16)(KEY, (1,)).dtype == np.float16


def test_default_dtype_follows_x64(x64):
    assert init.zeros(KEY, (2,)).dtype == np.float64
    assert init.normal()(KEY, (2,)).dtype == np.float64
    assert init.glorot_uniform()(KEY, (2, 3)).dtype == np.float64


@pytest.mark.parametrize("shape,kwargs,expected", [
    ((3, 5), {}, (3, 5)),
    ((3, 3, 4, 8), {}, (36, 72)),                         # HWIO conv kernel
    ((8, 4, 3, 3), dict(in_axis=1, out_axis=0), (36, 72)),  # OIHW
    ((2, 6, 7), dict(batch_axis=0), (6, 7)),
    ((2, 3, 4, 5), dict(in_axis=(0, 1), out_axis=-1), (24, 20)),
])
def test_compute_fans(shape, kwargs, expected):
    assert _compute_fans(shape, **kwargs) == expected


def test_compute_fans_needs_2d():
    with pytest.raises(ValueError, match="Must be at least 2D"):
        init.glorot_normal()(KEY, (5,))


def _std(x):
    return float(np.std(np.asarray(x, np.float64)))


def test_simple_distributions_statistics():
    n = (200, 200)
    u = np.asarray(init.uniform(0.5)(KEY, n))
    assert u.min() >= 0 and u.max() < 0.5
    np.testing.assert_allclose(u.mean(), 0.25, atol=0.005)
    g = np.asarray(init.normal(0.3)(KEY, n))
    np.testing.assert_allclose(g.mean(), 0.0, atol=0.005)
    np.testing.assert_allclose(_std(g), 0.3, rtol=0.02)
    t = np.asarray(init.truncated_normal(0.3)(KEY, n))
    assert np.abs(t).max() <= 0.6 + 1e-6
    np.testing.assert_allclose(_std(t), 0.3 * 0.87962566103423978, rtol=0.02)
    t2 = np.asarray(init.truncated_normal(1.0, lower=-1.0, upper=0.5)(KEY, n))
    assert t2.min() >= -1.0 and t2.max() <= 0.5


@pytest.mark.parametrize("name,scale,fan", [
    ("glorot_uniform", 1.0, "avg"), ("glorot_normal", 1.0, "avg"),
    ("xavier_uniform", 1.0, "avg"), ("xavier_normal", 1.0, "avg"),
    ("he_uniform", 2.0, "in"), ("he_normal", 2.0, "in"),
    ("kaiming_uniform", 2.0, "in"), ("kaiming_normal", 2.0, "in"),
    ("lecun_uniform", 1.0, "in"), ("lecun_normal", 1.0, "in"),
])
def test_named_variance_scaling_statistics(name, scale, fan):
    shape = (3, 3, 40, 60)
    fan_in, fan_out = 9 * 40, 9 * 60
    denom = fan_in if fan == "in" else (fan_in + fan_out) / 2
    w = np.asarray(getattr(init, name)()(KEY, shape))
    assert w.shape == shape and w.dtype == np.float32
    np.testing.assert_allclose(w.var(), scale / denom, rtol=0.05)
    np.testing.assert_allclose(w.mean(), 0.0, atol=0.05 * np.sqrt(scale / denom))
    bound = np.sqrt(3 * scale / denom) if "uniform" in name else \
        2 * np.sqrt(scale / denom) / 0.87962566103423978
    assert np.abs(w).max() <= bound * (1 + 1e-6)


@pytest.mark.parametrize("mode,distribution", [
    (m, d) for m in ("fan_in", "fan_out", "fan_avg")
    for d in ("normal", "truncated_normal", "uniform")])
def test_variance_scaling_modes(mode, distribution):
    shape = (120, 300)
    fan_in, fan_out = 120, 300
    denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    w = np.asarray(init.variance_scaling(0.7, mode, distribution)(KEY, shape))
    np.testing.assert_allclose(w.var(), 0.7 / denom, rtol=0.05)


def test_variance_scaling_axes():
    # batch_axis excludes a dimension from the fans; in/out axes pick the dimensions
    w = np.asarray(init.variance_scaling(1.0, "fan_in", "normal", in_axis=1, out_axis=2,
                                         batch_axis=0)(KEY, (4, 200, 50)))
    np.testing.assert_allclose(w.var(), 1 / 200, rtol=0.05)
    w = np.asarray(init.variance_scaling(1.0, "fan_out", "uniform", in_axis=0,
                                         out_axis=(1, 2))(KEY, (100, 10, 30)))
    np.testing.assert_allclose(w.var(), 1 / 300, rtol=0.05)


def test_variance_scaling_errors():
    with pytest.raises(ValueError, match="invalid mode for variance scaling"):
        init.variance_scaling(1.0, "fan_bad", "normal")(KEY, (2, 2))
    with pytest.raises(ValueError, match="invalid distribution for variance scaling"):
        init.variance_scaling(1.0, "fan_in", "cauchy")(KEY, (2, 2))


def test_deterministic_in_key_and_dtype_argument():
    f = init.he_normal()
    np.testing.assert_array_equal(f(KEY, (5, 6)), f(KEY, (5, 6)))
    assert not np.array_equal(f(KEY, (5, 6)), f(random.PRNGKey(1), (5, 6)))
    assert f(KEY, (5, 6), jnp.float16).dtype == np.float16
    assert init.glorot_normal(dtype=jnp.float16)(KEY, (5, 6)).dtype == np.float16
    # the same numbers as a direct random.normal draw scaled by hand
    w = init.normal(0.1)(KEY, (3, 4))
    np.testing.assert_allclose(w, np.asarray(random.normal(KEY, (3, 4))) * np.float32(0.1),
                               rtol=1e-7)
    w = init.variance_scaling(2.0, "fan_in", "uniform")(KEY, (8, 4))
    np.testing.assert_allclose(w, np.asarray(random.uniform(KEY, (8, 4), jnp.float32, -1)) *
                               np.sqrt(np.float32(3 * 2.0 / 8)), rtol=1e-6)


def test_initializers_under_jit():
    f = jax.jit(lambda k: init.glorot_uniform()(k, (6, 7)))
    np.testing.assert_allclose(f(KEY), init.glorot_uniform()(KEY, (6, 7)), rtol=1e-6)


@pytest.mark.parametrize("shape,column_axis", [((6, 4), -1), ((4, 6), -1),
                                               ((3, 2, 5), -1), ((5, 2, 3), 0)])
def test_orthogonal(shape, column_axis):
    w = np.asarray(init.orthogonal(scale=2.0, column_axis=column_axis)(KEY, shape),
                   np.float64)
    assert w.shape == shape
    m = np.moveaxis(w, column_axis, -1).reshape(-1, shape[column_axis]) / 2.0
    rows, cols = m.shape
    if rows >= cols:
        np.testing.assert_allclose(m.T @ m, np.eye(cols), atol=1e-5)
    else:
        np.testing.assert_allclose(m @ m.T, np.eye(rows), atol=1e-5)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match="at least a 2D shape"):
        init.orthogonal()(KEY, (4,))


def test_delta_orthogonal():
    w = np.asarray(init.delta_orthogonal()(KEY, (3, 3, 4, 6)), np.float64)
    centre = w[1, 1]
    np.testing.assert_allclose(centre @ centre.T, np.eye(4), atol=1e-5)
    w2 = w.copy()
    w2[1, 1] = 0
    assert np.all(w2 == 0)
    assert init.delta_orthogonal()(KEY, (5, 2, 2)).shape == (5, 2, 2)
    with pytest.raises(ValueError, match="3D, 4D or 5D"):
        init.delta_orthogonal()(KEY, (3, 3))
    with pytest.raises(ValueError, match="less or equal"):
        init.delta_orthogonal()(KEY, (3, 6, 4))
