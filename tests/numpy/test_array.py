"""Array methods and properties (installed on Array and tracers) forwarding to the
``jnp`` functions: eager and under jit give numpy's answers."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp

A = np.arange(1.0, 25.0, dtype=np.float32).reshape(2, 3, 4)


def _check(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, \
        (actual.shape, expected.shape, actual.dtype, expected.dtype)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)


METHOD_CASES = [
    (lambda x: x.sum(axis=1), lambda a: a.sum(axis=1)),
    (lambda x: x.mean(), lambda a: a.mean(dtype=np.float32)),
    (lambda x: x.max(axis=(0, 2), keepdims=True), lambda a: a.max(axis=(0, 2), keepdims=True)),
    (lambda x: x.min(0), lambda a: a.min(0)),
    (lambda x: x.prod(-1), lambda a: a.prod(-1)),
    (lambda x: x.std(1), lambda a: a.std(1)),
    (lambda x: x.var(ddof=1), lambda a: a.var(ddof=1)),
    (lambda x: x.argmax(1), lambda a: a.argmax(1).astype(np.int32)),
    (lambda x: x.argmin(), lambda a: np.int32(a.argmin())),
    (lambda x: x.cumsum(2), lambda a: a.cumsum(2)),
    (lambda x: x.cumprod(), lambda a: a.cumprod()),
    (lambda x: x.all(), lambda a: a.all()),
    (lambda x: x.any(1), lambda a: a.any(1)),
    (lambda x: x.ptp(1), lambda a: np.ptp(a, 1)),
    (lambda x: x.reshape(6, 4), lambda a: a.reshape(6, 4)),
    (lambda x: x.reshape((4, -1)), lambda a: a.reshape((4, -1))),
    (lambda x: x.reshape(-1), lambda a: a.reshape(-1)),
    (lambda x: x.ravel(), lambda a: a.ravel()),
    (lambda x: x.flatten(), lambda a: a.flatten()),
    (lambda x: x.transpose(), lambda a: a.transpose()),
    (lambda x: x.transpose(1, 0, 2), lambda a: a.transpose(1, 0, 2)),
    (lambda x: x.transpose((2, 0, 1)), lambda a: a.transpose((2, 0, 1))),
    (lambda x: x.T, lambda a: a.T),
    (lambda x: x.mT, lambda a: np.swapaxes(a, -1, -2)),
    (lambda x: x.swapaxes(0, 2), lambda a: a.swapaxes(0, 2)),
    (lambda x: x[:1].squeeze(), lambda a: a[:1].squeeze()),
    (lambda x: x.astype(jnp.int8), lambda a: a.astype(np.int8)),
    (lambda x: x.repeat(2, axis=1), lambda a: a.repeat(2, axis=1)),
    (lambda x: x.take(np.array([0, 5])), lambda a: a.take([0, 5])),
    (lambda x: x.diagonal(0, 1, 2), lambda a: a.diagonal(0, 1, 2)),
    (lambda x: x[1, ::-1, None, 1:3], lambda a: a[1, ::-1, None, 1:3]),
    (lambda x: x[..., np.array([3, 0])], lambda a: a[..., [3, 0]]),
    (lambda x: x.at[0, 1].set(0.0), lambda a: np.where(
        (np.arange(2)[:, None, None] == 0) & (np.arange(3)[None, :, None] == 1), 0, a)
        .astype(np.float32)),
    (lambda x: x.at[:, 0].add(1.0).at[1].multiply(2.0),
     lambda a: _inplace(a, lambda b: (b.__setitem__((slice(None), 0), b[:, 0] + 1),
                                      b.__setitem__(1, b[1] * 2)))),
]


def _inplace(a, fn):
    b = a.copy()
    fn(b)
    return b


@pytest.mark.parametrize("i", range(len(METHOD_CASES)))
def test_methods_eager_and_jit(i):
    method, reference = METHOD_CASES[i]
    expected = reference(A)
    _check(method(jnp.asarray(A)), expected)
    _check(jax.jit(method)(jnp.asarray(A)), expected)


def test_properties_and_len_iter():
    x = jnp.asarray(A)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and x.dtype == np.float32
    assert len(x) == 2
    rows = list(x)
    assert len(rows) == 2
    _check(rows[1], A[1])
    _check(jnp.asarray(np.arange(3, dtype=np.int32)).T, np.arange(3, dtype=np.int32))


def test_setitem_raises():
    x = jnp.asarray(A)
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 1.0
    with pytest.raises(TypeError, match=r"\.at\[\]"):
        x[0, 1] = x[0, 0]


def test_methods_on_tracers_under_grad_and_vmap():
    g = jax.grad(lambda x: (x.reshape(-1)[::2] ** 2).sum())(jnp.asarray(A))
    expected = np.zeros_like(A).reshape(-1)
    expected[::2] = 2 * A.reshape(-1)[::2]
    _check(g, expected.reshape(A.shape))
    out = jax.vmap(lambda x: x.T.at[0].set(-1.0).sum(0))(jnp.asarray(A))
    ref = []
    for a in A:
        b = a.T.copy()
        b[0] = -1
        ref.append(b.sum(0))
    _check(out, np.stack(ref))
