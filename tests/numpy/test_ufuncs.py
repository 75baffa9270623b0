"""jnp's elementwise functions against numpy (values, dtypes, special values, grads)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=30, deadline=None)
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -3.5, 1e30, -1e30, 1e-30, np.inf, -np.inf,
                    np.nan, 0.5, -0.5, 7.0], np.float32)


def close(actual, want, dtype, tol=1e-6, atol=0.0):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(want), (actual.shape, np.shape(want))
    assert actual.dtype == dtype, (actual.dtype, dtype)
    if actual.dtype == np.bool_:
        np.testing.assert_array_equal(actual, want)
    else:
        np.testing.assert_allclose(actual.astype(np.float64), np.asarray(want, np.float64),
                                   rtol=tol, atol=atol, equal_nan=True)


def pairs():
    a, b = np.meshgrid(SPECIAL, SPECIAL)
    return a.ravel(), b.ravel()


@pytest.mark.parametrize("name", ["hypot", "logaddexp", "logaddexp2", "copysign", "fmax",
                                  "fmin", "heaviside", "arctan2", "maximum", "minimum"])
def test_binary_special_values_match_numpy(name):
    a, b = pairs()
    with np.errstate(all="ignore"):
        want = getattr(np, name)(a.astype(np.float64), b.astype(np.float64)).astype(
            np.float32)
    if name == "heaviside":  # JAX's heaviside(nan, x2) is x2 (numpy's is nan)
        want = np.where(np.isnan(a), b, want)
    close(getattr(jnp, name)(a, b), want, np.float32, tol=2e-6)


@pytest.mark.parametrize("name", ["isnan", "isinf", "isfinite", "isneginf", "isposinf",
                                  "signbit"])
def test_classification_matches_numpy(name):
    close(getattr(jnp, name)(SPECIAL), getattr(np, name)(SPECIAL), np.bool_)
    ints = np.array([-2, 0, 3], np.int32)
    close(getattr(jnp, name)(ints), getattr(np, name)(ints), np.bool_)
    close(getattr(jnp, name)(np.array([True, False])),
          getattr(np, name)(np.array([True, False])), np.bool_)


def test_signbit_of_nan_and_low_precision():
    x = np.array([-np.nan, np.nan, -0.0], np.float16)
    close(jnp.signbit(x), np.signbit(x), np.bool_)
    bx = jnp.asarray(np.array([-1.0, 0.0], np.float32)).astype(jnp.bfloat16)
    close(jnp.signbit(bx), [True, False], np.bool_)


@pytest.mark.parametrize("name", ["sinc", "deg2rad", "rad2deg", "degrees", "radians"])
def test_unary_match_numpy(name):
    x = SPECIAL[np.isfinite(SPECIAL) & (np.abs(SPECIAL) < 1e20)]
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x.astype(np.float64)).astype(np.float32)
    close(getattr(jnp, name)(x), want, np.float32, tol=1e-6, atol=1e-7)
    assert getattr(jnp, name)(np.arange(3)).dtype == np.float32  # ints become float


@SETTINGS
@given(st.sampled_from([np.float32, np.float16, np.int32, np.int8, np.uint8, np.bool_]),
       st.sampled_from([np.float32, np.int32, np.int16]),
       st.sampled_from(["hypot", "logaddexp", "fmax", "fmin", "copysign", "heaviside"]),
       st.integers(0, 99))
def test_binary_dtypes_follow_jax_promotion(d1, d2, name, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, size=(2, 3)).astype(d1)
    b = rng.integers(-3, 4, size=(3,)).astype(d2)
    dt = jnp.promote_types(d1, d2)
    if name not in ("fmax", "fmin") and not np.issubdtype(dt, np.floating):
        dt = np.dtype(np.float32)
    if name in ("fmax", "fmin") and dt == np.bool_:
        return
    with np.errstate(all="ignore"):
        want = getattr(np, name)(a.astype(np.float64), b.astype(np.float64))
    close(getattr(jnp, name)(a, b), want, dt, tol=1e-3 if dt == np.float16 else 1e-6)


def test_logaddexp_stable_and_infinities():
    big = np.float32(1e4)
    close(jnp.logaddexp(big, big), big + np.log(2), np.float32)
    close(jnp.logaddexp(-np.inf, -np.inf), -np.inf, np.float32)
    close(jnp.logaddexp(np.inf, np.inf), np.inf, np.float32)
    close(jnp.logaddexp(np.inf, -np.inf), np.inf, np.float32)
    close(jnp.logaddexp2(np.float32(200), np.float32(200)), 201.0, np.float32)


def test_hypot_does_not_overflow():
    close(jnp.hypot(np.float32(3e30), np.float32(4e30)), 5e30, np.float32, tol=1e-6)
    close(jnp.hypot(np.float32(3e-30), np.float32(4e-30)), 5e-30, np.float32, tol=1e-6)


def test_grads(x64):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5), rng.normal(size=5)
    for fn in (jnp.logaddexp, jnp.logaddexp2, jnp.hypot, jnp.copysign):
        check_grads(fn, (a, b), 1, modes=("fwd", "rev"))
    check_grads(jnp.sinc, (a,), 2, modes=("fwd", "rev"))


def test_grads_at_special_points(x64):
    # logaddexp with an infinite argument: finite weights (JAX's rule)
    g = jax.grad(jnp.logaddexp, argnums=(0, 1))(1.0, -np.inf)
    np.testing.assert_allclose(g, (1.0, 0.0))
    # sinc at 0: value 1, first derivative 0, second -pi^2/3
    assert float(jax.grad(jnp.sinc)(0.0)) == 0.0
    np.testing.assert_allclose(jax.grad(jax.grad(jnp.sinc))(0.0), -np.pi ** 2 / 3,
                               rtol=1e-12)
    assert np.isfinite(jax.grad(jnp.hypot)(0.0, 0.0))


def test_complex_parts_on_real_dtypes():
    x = np.array([1.5, -2.0], np.float32)
    close(jnp.conj(x), x, np.float32)
    close(jnp.conjugate(x), x, np.float32)
    close(jnp.real(x), x, np.float32)
    close(jnp.imag(x), np.zeros(2), np.float32)
    close(jnp.imag(np.arange(3)), np.zeros(3), np.int32)


def test_integer_functions():
    a = np.array([12, -18, 0, 7, 0, 2 ** 30], np.int32)
    b = np.array([18, 12, 5, 0, 0, 6], np.int32)
    close(jnp.gcd(a, b), np.gcd(a, b), np.int32)
    close(jnp.lcm(a[:5], b[:5]), np.lcm(a[:5], b[:5]), np.int32)
    with pytest.raises(ValueError, match="must be integers"):
        jnp.gcd(1.0, 2.0)


def test_modf_ldexp():
    x = np.array([-1.5, 2.25, 0.0, -0.0, 3.0], np.float32)
    for got, want in zip(jnp.modf(x), np.modf(x)):
        close(got, want, np.float32)
    e = np.array([3, -2, 0, 200, -140], np.int32)
    m = np.array([1.5, 1.0, -2.0, 1e-30, 1e30], np.float32)
    with np.errstate(all="ignore"):
        close(jnp.ldexp(m, e), np.ldexp(m, e), np.float32, tol=1e-6)
    with pytest.raises(ValueError, match="integer"):
        jnp.ldexp(1.0, 2.0)


@SETTINGS
@given(st.sampled_from(["add", "subtract", "multiply", "true_divide", "maximum", "minimum",
                        "arctan2", "power", "floor_divide", "remainder"]),
       st.integers(0, 99))
def test_existing_binary_ufuncs_match_numpy(name, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 3, size=(3, 4)).astype(np.float32)
    b = rng.uniform(-3, 3, size=(4,)).astype(np.float32)
    want = getattr(np, name)(a.astype(np.float64), b.astype(np.float64))
    close(getattr(jnp, name)(a, b), want, np.float32, tol=1e-5)


@pytest.mark.parametrize("dt", [np.float32, np.float16])
def test_frexp_matches_numpy(dt):
    x = np.concatenate([SPECIAL, [1e-40, -3e-39, 6e-8]]).astype(dt)
    m, e = jnp.frexp(x)
    wm, we = np.frexp(x)
    close(m, wm, dt)
    close(e, we, np.int32)
    close(jnp.ldexp(m, e), x, dt)
