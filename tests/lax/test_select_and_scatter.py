"""select_and_scatter_p (XLA's SelectAndScatter): values against an explicit loop in XLA's
order, compiled on every device against eager, vmap against loops, derivatives against
finite differences, agreement with select_and_scatter_add_p, JAX's parameters and errors."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.lax.select_and_scatter import select_and_scatter
from tinyjax.test_util import check_grads
from tests.cuda_support import CUDA_PARAM

SELECTS = {"ge": (lax.ge, np.greater_equal), "le": (lax.le, np.less_equal),
           "gt": (lax.gt, np.greater)}
SCATTERS = {"add": (lax.add, np.add), "max": (lax.max, np.maximum)}


def _reference(x, select, window, strides, padding, source, init, scatter):
    """XLA's SelectAndScatter, one window at a time in row-major order."""
    out = np.full(x.shape, init, x.dtype)
    for o in itertools.product(*map(range, source.shape)):
        chosen = None
        for w in itertools.product(*map(range, window)):
            idx = tuple(oi * s + wi - lo for oi, s, wi, (lo, _) in zip(o, strides, w, padding))
            if any(i < 0 or i >= d for i, d in zip(idx, x.shape)):
                continue  # padding is never selected
            if chosen is None or not select(x[chosen], x[idx]):
                chosen = idx
        if chosen is not None:
            out[chosen] = scatter(out[chosen], source[o])
    return out


def _geometry(shape, window, strides, padding):
    return tuple((d + lo + hi - k) // s + 1 for d, k, s, (lo, hi)
                 in zip(shape, window, strides, padding))


@st.composite
def _cases(draw):
    ndim = draw(st.integers(1, 2))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    window = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    strides = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    padding = tuple((draw(st.integers(0, 1)), draw(st.integers(0, 1))) for _ in range(ndim))
    if any(d + lo + hi < k for d, k, (lo, hi) in zip(shape, window, padding)):
        window = tuple(1 for _ in range(ndim))
    return shape, window, strides, padding


@settings(max_examples=25, deadline=None)
@given(case=_cases(), select=st.sampled_from(sorted(SELECTS)),
       scatter=st.sampled_from(sorted(SCATTERS)), seed=st.integers(0, 99))
def test_values_against_a_loop(case, select, scatter, seed):
    shape, window, strides, padding = case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, shape).astype(np.float32)  # ties: the selection order matters
    source = rng.normal(size=_geometry(shape, window, strides, padding)).astype(np.float32)
    out = select_and_scatter(x, SELECTS[select][0], window, strides, padding, source, 0.0,
                             SCATTERS[scatter][0])
    ref = _reference(x, SELECTS[select][1], window, strides, padding, source, 0.0,
                     SCATTERS[scatter][1])
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


X = np.array([[1.0, 5.0, 2.0, 0.5], [3.0, 4.0, 0.0, 6.0], [7.0, 1.0, 8.0, 2.0]], np.float32)
GEOM = ((2, 2), (1, 2), ((0, 1), (1, 0)))
SRC = np.arange(1, 7, dtype=np.float32).reshape(3, 2)


def _max_pool_transpose(x, src, init=0.0):
    return select_and_scatter(x, lax.ge, *GEOM, src, init, lax.add)


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_compiled_equals_eager_and_the_specialised_primitive(device):
    eager = _max_pool_transpose(X, SRC)
    np.testing.assert_allclose(eager, lax.select_and_scatter_add(SRC, X, lax.ge_p, *GEOM))
    xd, sd = (jax.device_put(v, jax.devices(device)[0]) for v in (X, SRC))
    np.testing.assert_allclose(jax.jit(_max_pool_transpose)(xd, sd), eager)


def test_jaxpr_parameters_are_jaxs():
    eqn, = jax.make_jaxpr(_max_pool_transpose)(X, SRC).eqns
    assert eqn.primitive is lax.select_and_scatter_p
    assert sorted(eqn.params) == ["padding", "scatter_consts", "scatter_jaxpr",
                                  "select_consts", "select_jaxpr", "window_dimensions",
                                  "window_strides"]
    assert [e.primitive.name for e in eqn.params["select_jaxpr"].eqns] == ["ge"]
    assert eqn.params["padding"] == ((0, 1), (1, 0))


def test_vmap_against_a_loop():
    xs = np.stack([X, X[::-1], -X])
    srcs = np.stack([SRC, 2 * SRC, SRC - 3])
    out = jax.vmap(_max_pool_transpose)(xs, srcs)
    np.testing.assert_allclose(out, np.stack([_max_pool_transpose(x, s)
                                              for x, s in zip(xs, srcs)]))
    out = jax.vmap(_max_pool_transpose, (None, 0))(X, srcs)
    np.testing.assert_allclose(out, np.stack([_max_pool_transpose(X, s) for s in srcs]))


def test_derivatives_against_finite_differences():
    check_grads(lambda s, init: _max_pool_transpose(X, s, init), (SRC, np.float32(0.5)),
                order=2, modes=("fwd", "rev"))
    check_grads(lambda s: select_and_scatter(X, lax.le, *GEOM, s, 1.0, lax.mul), (SRC,),
                order=1, modes=("fwd", "rev"))


def test_computations_closing_over_traced_values():
    def f(x, src, k):
        return select_and_scatter(x, lambda a, b: a * k >= b * k, *GEOM, src, 0.0, lax.add)
    np.testing.assert_allclose(jax.jit(f)(X, SRC, 1.0), _max_pool_transpose(X, SRC))
    np.testing.assert_allclose(jax.jit(f)(X, SRC, -1.0),
                               select_and_scatter(X, lax.le, *GEOM, SRC, 0.0, lax.add))


def test_errors():
    with pytest.raises(TypeError, match="select_and_scatter: source shape \\(2, 2\\) must equal"
                                        " the windowed shape \\(3, 2\\)"):
        _max_pool_transpose(X, SRC[:2])
    with pytest.raises(TypeError, match="inconsistent window_strides and window_dimensions"):
        lax.select_and_scatter_p.bind(
            X, SRC, np.float32(0), **{**jax.make_jaxpr(_max_pool_transpose)(X, SRC).eqns[0]
                                      .params, "window_strides": (1,)})
    with pytest.raises(TypeError, match="one dtype"):
        select_and_scatter(X, lax.ge, *GEOM, SRC.astype(np.int32), 0, lax.add)
    with pytest.raises(TypeError, match="select must return a bool scalar"):
        select_and_scatter(X, lax.max, *GEOM, SRC, 0.0, lax.add)
