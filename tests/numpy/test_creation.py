"""Array creation in ``jnp`` against numpy, with JAX's (32-bit default) dtypes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import config
from tinyjax.errors import ConcretizationTypeError

SETTINGS = settings(max_examples=40, deadline=None)


def _check(actual, expected, dtype=None, tol=0):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == np.dtype(dtype or expected.dtype), (actual.dtype, dtype)
    if tol:
        np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(actual, expected)


shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)
DTYPES = [None, np.int8, np.uint8, np.int32, np.float16, np.float32, np.bool_]


@SETTINGS
@given(shapes, st.sampled_from(DTYPES))
def test_filled(shape, dtype):
    dt = np.dtype(dtype or np.float32)
    _check(jnp.zeros(shape, dtype), np.zeros(shape, dt))
    _check(jnp.ones(shape, dtype), np.ones(shape, dt))
    _check(jnp.empty(shape, dtype), np.zeros(shape, dt))
    _check(jnp.full(shape, 3, dtype), np.full(shape, 3, np.dtype(dtype or np.int32)))
    _check(jnp.full(shape, 2.5), np.full(shape, 2.5, np.float32))
    proto = np.ones(shape, np.int16)
    _check(jnp.zeros_like(proto, dtype), np.zeros(shape, np.dtype(dtype or np.int16)))
    _check(jnp.ones_like(proto, dtype), np.ones(shape, np.dtype(dtype or np.int16)))
    _check(jnp.full_like(proto, 7, dtype), np.full(shape, 7, np.dtype(dtype or np.int16)))
    _check(jnp.empty_like(proto), np.zeros(shape, np.int16))
    _check(jnp.zeros_like(proto, shape=(2, 1)), np.zeros((2, 1), np.int16))


def test_filled_weak_types_and_broadcast_fill():
    assert jnp.full((2,), 1).aval.weak_type          # a Python scalar fill is weak
    assert not jnp.full((2,), 1, jnp.int32).aval.weak_type
    assert not jnp.zeros(3).aval.weak_type
    assert jnp.zeros_like(jnp.asarray(1.0)).aval.weak_type
    _check(jnp.full((2, 3), np.arange(3, dtype=np.int32)),
           np.full((2, 3), np.arange(3, dtype=np.int32)))
    _check(jnp.zeros(np.int64(3)), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="negative dimensions"):
        jnp.zeros((-1, 2))
    with pytest.raises(TypeError, match="Shapes must be"):
        jnp.ones((2.5,))


@SETTINGS
@given(st.integers(-5, 10), st.one_of(st.none(), st.integers(-5, 10)),
       st.one_of(st.none(), st.sampled_from([1, 2, 3, -1, -2])))
def test_arange_int(start, stop, step):
    if stop is None:
        step = None
    _check(jnp.arange(start, stop, step), np.arange(start, stop, step).astype(np.int32))


def test_arange_dtypes():
    _check(jnp.arange(5), np.arange(5, dtype=np.int32))
    _check(jnp.arange(5.0), np.arange(5, dtype=np.float32))
    _check(jnp.arange(0, 1, 0.25), np.arange(0, 1, 0.25, dtype=np.float32))
    _check(jnp.arange(2, 8, 2, dtype=jnp.int8), np.arange(2, 8, 2, dtype=np.int8))
    _check(jnp.arange(np.int16(4)), np.arange(4, dtype=np.int16))
    _check(jnp.arange(jnp.asarray(3)), np.arange(3, dtype=np.int32))
    _check(jnp.arange(-2), np.zeros((0,), np.int32))
    assert not jnp.arange(3).aval.weak_type
    with pytest.raises(ConcretizationTypeError, match="arange"):
        jax.jit(lambda n: jnp.arange(n))(3)
    _check(jax.jit(lambda: jnp.arange(4))(), np.arange(4, dtype=np.int32))


@SETTINGS
@given(st.floats(-10, 10), st.floats(-10, 10), st.integers(0, 7), st.booleans(),
       st.sampled_from([None, np.float32, np.int32]))
def test_linspace(start, stop, num, endpoint, dtype):
    got, step = jnp.linspace(start, stop, num, endpoint=endpoint, retstep=True, dtype=dtype)
    with np.errstate(all="ignore"):
        exp, estep = np.linspace(start, stop, num, endpoint=endpoint, retstep=True)
    dt = np.dtype(dtype or np.float32)
    if dt == np.int32:
        exp = np.floor(np.linspace(np.float32(start), np.float32(stop), num,
                                   endpoint=endpoint, dtype=np.float32)).astype(np.int32)
        got = np.asarray(got)
        assert got.dtype == dt and got.shape == exp.shape
        assert np.abs(got - exp).max(initial=0) <= 1
        return
    _check(got, exp.astype(dt), dt, tol=1e-4 * (1 + abs(start) + abs(stop)))
    if num > 1:
        np.testing.assert_allclose(step, estep, rtol=1e-4, atol=1e-5)


def test_linspace_arrays_axis_and_logspace():
    start, stop = np.array([0.0, 1.0]), np.array([[1.0, 3.0], [2.0, 5.0]])
    for axis in (0, 1, -1, 2):
        _check(jnp.linspace(start, stop, 4, axis=axis),
               np.linspace(start, stop, 4, axis=axis).astype(np.float32), tol=1e-6)
    assert jnp.linspace(0, 1, 5).dtype == np.float32
    assert jnp.linspace(0, 1, 5)[-1] == 1.0
    _check(jnp.logspace(0, 3, 4), np.logspace(0, 3, 4).astype(np.float32), tol=1e-5)
    _check(jnp.logspace(0, 3, 4, base=2.0, endpoint=False),
           np.logspace(0, 3, 4, base=2.0, endpoint=False).astype(np.float32), tol=1e-5)
    with pytest.raises(ValueError, match="non-negative"):
        jnp.linspace(0, 1, -1)


@SETTINGS
@given(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 5)), st.integers(-6, 6),
       st.sampled_from([None, np.int32, np.bool_]))
def test_eye_tri(n, m, k, dtype):
    dt = np.dtype(dtype or np.float32)
    _check(jnp.eye(n, m, k, dtype), np.eye(n, m, k, dt))
    _check(jnp.tri(n, m, k, dtype), np.tri(n, m, k, dt))
    _check(jnp.identity(n, dtype), np.identity(n, dt))


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=2, max_size=4).map(tuple), st.integers(-5, 5))
def test_tril_triu(shape, k):
    a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    _check(jnp.tril(a, k), np.tril(a, k))
    _check(jnp.triu(a, k), np.triu(a, k))


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=2, max_size=4).map(tuple), st.integers(-5, 5),
       st.data())
def test_diagonal_and_diag(shape, offset, data):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    nd = len(shape)
    ax1 = data.draw(st.integers(-nd, nd - 1))
    ax2 = data.draw(st.integers(-nd, nd - 1).filter(lambda v: v % nd != ax1 % nd))
    _check(jnp.diagonal(a, offset, ax1, ax2), np.diagonal(a, offset, ax1, ax2))
    if nd == 2:
        _check(jnp.diag(a, offset), np.diag(a, offset))
        _check(jnp.asarray(a).diagonal(offset), a.diagonal(offset))
    v = a.reshape(-1)[:shape[0]]
    _check(jnp.diag(v, offset), np.diag(v, offset))


@SETTINGS
@given(st.lists(st.integers(0, 4), max_size=4), st.sampled_from(["xy", "ij"]),
       st.booleans())
def test_meshgrid(sizes, indexing, sparse):
    xs = [np.arange(n, dtype=np.float32) + 10 * i for i, n in enumerate(sizes)]
    got = jnp.meshgrid(*xs, indexing=indexing, sparse=sparse)
    exp = np.meshgrid(*xs, indexing=indexing, sparse=sparse)
    assert len(got) == len(exp)
    for g, e in zip(got, exp):
        _check(g, e)


@SETTINGS
@given(st.lists(st.integers(0, 4), max_size=3).map(tuple), st.booleans())
def test_indices(dims, sparse):
    got, exp = jnp.indices(dims, sparse=sparse), np.indices(dims, sparse=sparse)
    if sparse:
        for g, e in zip(got, exp):
            _check(g, e.astype(np.int32))
    else:
        _check(got, exp.astype(np.int32))


def test_diagonal_non_square_examples():
    for shape in [(3, 2), (2, 5), (4, 1, 3)]:
        a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
        for k in range(-4, 5):
            _check(jnp.diagonal(a, k), np.diagonal(a, k))
            _check(jnp.diagonal(a, k, -1, 0), np.diagonal(a, k, -1, 0))


@pytest.mark.parametrize("make_copy", [jnp.copy, jnp.array, lambda a: jnp.array(a, a.dtype)])
def test_a_copy_is_a_new_array_that_can_be_donated_alone(make_copy):
    a = jnp.arange(6.0).reshape(2, 3)
    b = make_copy(a)
    assert b is not a
    jax.jit(lambda x: x + 1, donate_argnums=0)(b)
    assert b.is_deleted() and not a.is_deleted()
    _check(a, np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert jnp.asarray(a) is a and jnp.array(a, copy=False) is a
    # traced: a ``copy`` equation (as JAX's), linear under grad
    assert [e.primitive.name for e in jax.make_jaxpr(jnp.copy)(a).eqns] == ["copy"]
    assert float(jax.grad(lambda x: 3.0 * jnp.copy(x))(2.0)) == 3.0
    _check(jax.vmap(jnp.copy)(a), np.asarray(a))


def test_astype_copy_and_errors():
    x = np.array([0.0, 1.5, -2.0], np.float32)
    _check(jnp.astype(x, jnp.int32), x.astype(np.int32))
    _check(jnp.astype(x, bool), x.astype(bool))
    _check(jnp.asarray(x).astype(jnp.float16), x.astype(np.float16))
    _check(jnp.copy(x), x)
    assert jnp.astype(np.arange(3), np.int64).dtype == np.int32    # 32-bit defaults
    with pytest.raises(ValueError, match="two dimensions"):
        jnp.tril(np.ones(3))
    with pytest.raises(ValueError, match="1D"):
        jnp.meshgrid(np.ones((2, 2)))
    with pytest.raises(ValueError, match="indexing"):
        jnp.meshgrid(np.ones(2), indexing="xx")
    with pytest.raises(ValueError, match="must not be equal"):
        jnp.diagonal(np.ones((2, 2)), 0, 1, 1)


def test_x64_defaults(x64):
    assert jnp.zeros(2).dtype == np.float64
    assert jnp.arange(3).dtype == np.int64
    assert jnp.eye(2).dtype == np.float64
    assert jnp.linspace(0, 1, 3).dtype == np.float64
    assert jnp.indices((2,)).dtype == np.int64


def test_creation_grads_and_vmap():
    from tinyjax.test_util import check_grads
    with config.enable_x64(True):
        a = np.random.default_rng(0).standard_normal((3, 3))
        for f in [lambda a: jnp.tril(a, -1), lambda a: jnp.diagonal(a, 1),
                  lambda a: jnp.diag(jnp.diag(a)), lambda a: jnp.linspace(a[0], a[1], 4),
                  lambda a: jnp.full_like(a, 2.0) * a]:
            check_grads(f, (a,), order=1, modes=("fwd", "rev"))
    xs = np.arange(12.0, dtype=np.float32).reshape(3, 2, 2)
    _check(jax.vmap(jnp.triu)(xs), np.stack([np.triu(x) for x in xs]))
    _check(jax.vmap(jnp.diagonal)(xs), np.stack([np.diagonal(x) for x in xs]))
    v = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    _check(jax.vmap(jnp.diag)(v), np.stack([np.diag(x) for x in v]))


def test_asarray_of_a_numpy_bfloat16_array():
    import ml_dtypes
    for make in (jnp.asarray, jnp.array):
        x = make(np.array([1.5, -2.0], ml_dtypes.bfloat16))
        assert x.dtype == jnp.bfloat16 and np.asarray(x).tolist() == [1.5, -2.0]


def test_array_of_traced_scalars_converts_and_stacks_each_in_turn():
    """jnp.array of a list of tracers: per item a convert then its new axis (JAX's
    equation order); values as numpy's."""
    def f(x):
        return jnp.array([x[0], x[1] * 2, 3])

    x = np.array([1.5, 2.5], np.float32)
    jaxpr = jax.make_jaxpr(f)(x).jaxpr
    names = [e.primitive.name for e in jaxpr.eqns if e.primitive.name in
             ("convert_element_type", "broadcast_in_dim", "concatenate")]
    assert names == ["broadcast_in_dim"] * 2 + ["convert_element_type", "broadcast_in_dim",
                                                "concatenate"]
    np.testing.assert_array_equal(np.asarray(f(x)), np.array([1.5, 5.0, 3.0], np.float32))
    g = jax.make_jaxpr(lambda a, b: jnp.array([a, b], dtype=jnp.int32))(1.0, 2.0).jaxpr
    assert [e.primitive.name for e in g.eqns] == ["convert_element_type", "broadcast_in_dim"] \
        * 2 + ["concatenate"]
