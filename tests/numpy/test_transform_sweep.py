"""Every differentiable core-tier numpy function under grad (order 2, both modes, vs
finite differences) and under vmap (over a random axis, vs a Python loop); then compiled:
``jit(grad(f))`` and ``jit(vmap(f))`` on each device (cpu, and cuda where present) against
their eager values."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads
from tinyjax.dispatch import EagerExecutable
from tests.cuda_support import CUDA_PARAM


@pytest.fixture(autouse=True)
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _pos(shape, rng):       # (0.2, 1.2): log, sqrt, power bases
    return rng.uniform(0.2, 1.2, shape)


def _unit(shape, rng):      # (-0.8, 0.8): arcsin, arctanh
    return rng.uniform(-0.8, 0.8, shape)


def _any(shape, rng):
    return rng.normal(size=shape)


def _gt1(shape, rng):
    return rng.uniform(1.2, 2.0, shape)


# name -> (function of arrays, list of input generators, base shape)
CASES = {
    "abs": (jnp.abs, [_pos]), "negative": (jnp.negative, [_any]),
    "positive": (jnp.positive, [_any]), "sqrt": (jnp.sqrt, [_pos]),
    "cbrt": (jnp.cbrt, [_pos]), "square": (jnp.square, [_any]), "exp": (jnp.exp, [_any]),
    "exp2": (jnp.exp2, [_any]), "expm1": (jnp.expm1, [_any]), "log": (jnp.log, [_pos]),
    "log2": (jnp.log2, [_pos]), "log10": (jnp.log10, [_pos]), "log1p": (jnp.log1p, [_pos]),
    "sin": (jnp.sin, [_any]), "cos": (jnp.cos, [_any]), "tan": (jnp.tan, [_unit]),
    "arcsin": (jnp.arcsin, [_unit]), "arccos": (jnp.arccos, [_unit]),
    "arctan": (jnp.arctan, [_any]), "sinh": (jnp.sinh, [_any]), "cosh": (jnp.cosh, [_any]),
    "tanh": (jnp.tanh, [_any]), "arcsinh": (jnp.arcsinh, [_any]),
    "arccosh": (jnp.arccosh, [_gt1]), "arctanh": (jnp.arctanh, [_unit]),
    "sinc": (jnp.sinc, [_any]), "deg2rad": (jnp.deg2rad, [_any]),
    "rad2deg": (jnp.rad2deg, [_any]),
    "add": (jnp.add, [_any, _any]), "subtract": (jnp.subtract, [_any, _any]),
    "multiply": (jnp.multiply, [_any, _any]), "divide": (jnp.divide, [_any, _pos]),
    "true_divide": (jnp.true_divide, [_any, _pos]), "power": (jnp.power, [_pos, _any]),
    "float_power": (jnp.float_power, [_pos, _any]), "arctan2": (jnp.arctan2, [_any, _pos]),
    "maximum": (jnp.maximum, [_any, _any]), "minimum": (jnp.minimum, [_any, _any]),
    "fmax": (jnp.fmax, [_any, _any]), "fmin": (jnp.fmin, [_any, _any]),
    "hypot": (jnp.hypot, [_pos, _pos]), "logaddexp": (jnp.logaddexp, [_any, _any]),
    "logaddexp2": (jnp.logaddexp2, [_any, _any]),
    "copysign": (jnp.copysign, [_pos, _any]),
    "remainder": (lambda x, y: jnp.remainder(x, y + 2.0), [_pos, _pos]),
    "where": (lambda x, y: jnp.where(x > 0, x, y), [_any, _any]),
    "clip": (lambda x: jnp.clip(x, -0.5, 0.5), [_any]),
    "nan_to_num": (jnp.nan_to_num, [_any]),
    "sum": (lambda x: jnp.sum(x, axis=0), [_any]), "prod": (lambda x: jnp.prod(x, axis=-1),
                                                           [_pos]),
    "mean": (jnp.mean, [_any]), "var": (lambda x: jnp.var(x, axis=0), [_any]),
    "std": (lambda x: jnp.std(x, axis=-1), [_any]), "max": (lambda x: jnp.max(x, axis=0),
                                                            [_any]),
    "min": (jnp.min, [_any]), "amax": (lambda x: jnp.amax(x, axis=-1), [_any]),
    "amin": (lambda x: jnp.amin(x, axis=0), [_any]), "ptp": (lambda x: jnp.ptp(x, axis=0),
                                                              [_any]),
    "cumsum": (lambda x: jnp.cumsum(x, axis=-1), [_any]),
    "cumprod": (lambda x: jnp.cumprod(x, axis=0), [_pos]),
    "nansum": (lambda x: jnp.nansum(x, axis=0), [_any]), "nanmean": (jnp.nanmean, [_any]),
    "nanmax": (lambda x: jnp.nanmax(x, axis=-1), [_any]),
    "nanmin": (lambda x: jnp.nanmin(x, axis=0), [_any]),
    "median": (lambda x: jnp.median(x, axis=-1), [_any]),
    "quantile": (lambda x: jnp.quantile(x, 0.3, axis=0), [_any]),
    "percentile": (lambda x: jnp.percentile(x, 70.0), [_any]),
    "average": (lambda x, w: jnp.average(x, axis=0, weights=w), [_any, _pos]),
    "reshape": (lambda x: jnp.reshape(x, (-1,)), [_any]), "ravel": (jnp.ravel, [_any]),
    "transpose": (jnp.transpose, [_any]), "moveaxis": (lambda x: jnp.moveaxis(x, 0, -1),
                                                        [_any]),
    "swapaxes": (lambda x: jnp.swapaxes(x, 0, 1), [_any]),
    "squeeze": (lambda x: jnp.squeeze(x[None]), [_any]),
    "expand_dims": (lambda x: jnp.expand_dims(x, 1), [_any]),
    "broadcast_to": (lambda x: jnp.broadcast_to(x, (2,) + x.shape), [_any]),
    "broadcast_arrays": (lambda x, y: jnp.broadcast_arrays(x, y[:1])[1], [_any, _any]),
    "atleast_3d": (jnp.atleast_3d, [_any]),
    "concatenate": (lambda x, y: jnp.concatenate([x, y], axis=0), [_any, _any]),
    "stack": (lambda x, y: jnp.stack([x, y], axis=1), [_any, _any]),
    "vstack": (lambda x, y: jnp.vstack([x, y]), [_any, _any]),
    "hstack": (lambda x, y: jnp.hstack([x, y]), [_any, _any]),
    "dstack": (lambda x, y: jnp.dstack([x, y]), [_any, _any]),
    "column_stack": (lambda x, y: jnp.column_stack([x, y]), [_any, _any]),
    "split": (lambda x: jnp.split(x, 2, axis=-1)[1], [_any]),
    "array_split": (lambda x: jnp.array_split(x, 3, axis=0)[0], [_any]),
    "tile": (lambda x: jnp.tile(x, (2, 1)), [_any]),
    "repeat": (lambda x: jnp.repeat(x, 2, axis=0), [_any]), "flip": (jnp.flip, [_any]),
    "fliplr": (jnp.fliplr, [_any]), "flipud": (jnp.flipud, [_any]),
    "roll": (lambda x: jnp.roll(x, 1, axis=-1), [_any]), "rot90": (jnp.rot90, [_any]),
    "pad": (lambda x: jnp.pad(x, ((1, 0), (0, 2)), mode="reflect"), [_any]),
    "take": (lambda x: jnp.take(x, jnp.array([2, 0, 1]), axis=-1), [_any]),
    "take_along_axis": (lambda x: jnp.take_along_axis(x, jnp.argsort(x, axis=0), axis=0),
                        [_any]),
    "diagonal": (jnp.diagonal, [_any]), "diag": (lambda x: jnp.diag(x[0]), [_any]),
    "tril": (jnp.tril, [_any]), "triu": (jnp.triu, [_any]), "trace": (jnp.trace, [_any]),
    "sort": (lambda x: jnp.sort(x, axis=-1), [_any]),
    "diff": (lambda x: jnp.diff(x, axis=-1), [_any]),
    "dot": (lambda x, y: jnp.dot(x, y.T), [_any, _any]),
    "vdot": (jnp.vdot, [_any, _any]), "inner": (jnp.inner, [_any, _any]),
    "outer": (lambda x, y: jnp.outer(x[0], y[1]), [_any, _any]),
    "matmul": (lambda x, y: jnp.matmul(x, y.T), [_any, _any]),
    "tensordot": (lambda x, y: jnp.tensordot(x, y, axes=([1], [1])), [_any, _any]),
    "einsum": (lambda x, y: jnp.einsum("ij,kj->ik", x, y), [_any, _any]),
    "kron": (jnp.kron, [_any, _any]),
    "cross": (lambda x, y: jnp.cross(x[:, :3], y[:, :3]), [_any, _any]),
    "norm": (jnp.linalg.norm, [_any]),
    "interp": (lambda x: jnp.interp(x, jnp.array([-2.0, 0.1, 2.0]),
                                    jnp.array([0.0, 1.5, -1.0])), [_any]),
    "convolve": (lambda x, y: jnp.convolve(x[0], y[1]), [_any, _any]),
    "correlate": (lambda x, y: jnp.correlate(x[0], y[1], mode="same"), [_any, _any]),
}
SHAPE = (3, 4)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=2, deadline=None)
@given(shape=st.sampled_from([(3, 4), (2, 6), (4, 4)]), seed=st.integers(0, 2 ** 16))
def test_grads_order2_both_modes(name, shape, seed):
    fn, gens = CASES[name]
    rng = np.random.default_rng(seed)
    args = [jnp.asarray(g(shape, rng)) for g in gens]
    check_grads(fn, args, order=2, modes=("fwd", "rev"), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=3, deadline=None)
@given(axis=st.integers(0, 2), size=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_vmap_matches_loop(name, axis, size, seed):
    fn, gens = CASES[name]
    rng = np.random.default_rng(seed)
    batched = [g((size,) + SHAPE, rng) for g in gens]
    moved = [np.moveaxis(b, 0, axis) for b in batched]
    out = jax.vmap(fn, in_axes=axis)(*[jnp.asarray(m) for m in moved])
    expected = np.stack([np.asarray(fn(*[jnp.asarray(b[i]) for b in batched]))
                         for i in range(size)])
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", ["cpu", CUDA_PARAM])
@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_grad_and_vmap_match_eager(name, device):
    """One compiled program per function holding both transforms (one compilation per
    case keeps the sweep fast): the gradient of a weighted sum of f's output (a fixed
    non-uniform cotangent) with respect to every argument, and f vmapped over a leading
    batch axis.  Fixed small shapes, float64; the eager values are themselves checked
    against finite differences and loops above."""
    fn, gens = CASES[name]
    rng = np.random.default_rng(0)
    args = [jnp.asarray(g(SHAPE, rng)) for g in gens]
    batched = [jnp.asarray(g((2,) + SHAPE, rng)) for g in gens]
    out_shape = jax.eval_shape(fn, *args).shape
    ct = jnp.asarray(rng.uniform(0.5, 1.5, out_shape))
    grad = jax.grad(lambda *a: jnp.sum(fn(*a) * ct), argnums=tuple(range(len(gens))))
    vmapped = jax.vmap(fn)

    def both(args, batched):
        return grad(*args), vmapped(*batched)

    jitted = jax.jit(both, device=device)
    got = jitted(args, batched)
    compiled = jitted.lower(args, batched).compile()
    assert not isinstance(compiled.executable, EagerExecutable), compiled.executable.reason
    want = both(args, batched)
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves) == len(gens) + 1
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10)
