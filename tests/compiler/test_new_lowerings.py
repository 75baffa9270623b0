"""Lowerings of gather/scatter, sort/top_k, max-pool gradients, cumlogsumexp and bitcasts: compiled results equal eager evaluation on every
device (no eager fallback: compile_jaxpr raises NotImplementedError for a missing rule)."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.jaxpr import eval_jaxpr
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr

rng = np.random.default_rng(3)


def check(fn, *args, device, exact=True):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend(device))
    got = exe(*args)
    want = eval_jaxpr(closed.jaxpr, closed.consts, *args)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)  # device buffers come back to the host
        assert g.shape == w.shape and g.dtype == w.dtype
        # 16-bit floats: one unit in the last place (a libm result may round either way)
        tol = {"float16": 2e-3, "bfloat16": 1.6e-2}.get(g.dtype.name, 2e-6)
        if g.dtype.name == "bfloat16":  # numpy's testing cannot see bfloat16 NaNs
            g, w = g.astype(np.float32), w.astype(np.float32)
        if exact:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol if tol > 1e-5 else 1e-6)
    return exe


def test_take_rows(device):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    idx = np.array([0, 5, 2, 2, 1], np.int32)
    exe = check(lambda x, i: x[i], x, idx, device=device)
    assert exe.num_kernels <= 2  # the normalised indices may be materialised, then one gather


def test_take_columns_and_negative_indices(device):
    x = rng.standard_normal((4, 7)).astype(np.float32)
    idx = np.array([-1, 0, 3], np.int32)
    check(lambda x, i: x[:, i], x, idx, device=device)


def test_take_along_axis(device):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    idx = rng.integers(0, 6, (5, 3)).astype(np.int32)
    check(lambda x, i: jnp.take_along_axis(x, i, axis=1), x, idx, device=device)


@pytest.mark.parametrize("mode", ["clip", "fill"])
def test_out_of_bounds_modes(device, mode):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    idx = np.array([[0], [4], [7], [-3]], np.int32)
    dn = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,),
                                    start_index_map=(0,))
    check(lambda x, i: lax.gather(x, i, dn, (1, 3), mode=mode), x, idx, device=device)


def test_windowed_gather_2d(device):
    x = np.arange(40, dtype=np.float32).reshape(5, 8)
    idx = np.array([[0, 0], [3, 6], [1, 2], [9, -1]], np.int32)
    dn = lax.GatherDimensionNumbers(offset_dims=(1, 2), collapsed_slice_dims=(),
                                    start_index_map=(0, 1))
    for mode in ("clip", "fill"):
        check(lambda x, i: lax.gather(x, i, dn, (2, 3), mode=mode), x, idx, device=device)


def test_gather_with_batching_dims(device):
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    idx = np.array([[1], [4], [0]], np.int32)
    dn = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(1,),
                                    start_index_map=(1,), operand_batching_dims=(0,),
                                    start_indices_batching_dims=(0,))
    check(lambda x, i: lax.gather(x, i, dn, (1, 1, 2), mode="clip"), x, idx, device=device)


def test_gather_grad_under_jit(device):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    idx = np.array([1, 3, 3], np.int32)
    check(lambda x: jax.grad(lambda x: jnp.sum(x[idx] ** 2))(x), x, device=device,
          exact=False)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumlogsumexp(device, reverse):
    x = rng.standard_normal((4, 9)).astype(np.float32) * 5
    x[1, 3] = -np.inf
    x[2, :] = -np.inf
    x[3, 4] = np.inf
    check(lambda x: lax.cumlogsumexp(x, axis=1, reverse=reverse), x, device=device,
          exact=False)


def test_jit_compiles_gather_without_fallback(capsys, monkeypatch):
    monkeypatch.setenv("DEBUG", "1")
    x = rng.standard_normal((6, 5)).astype(np.float32)
    idx = np.array([0, 5, 2], np.int32)
    out = jax.jit(lambda x, i: x[i] * 2)(x, idx)
    np.testing.assert_array_equal(np.asarray(out), x[idx] * 2)
    assert "falling back" not in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["add", "set", "mul", "min", "max"])
def test_scatter_kinds_with_repeated_indices(device, kind):
    x = rng.standard_normal((6, 3)).astype(np.float32)
    idx = np.array([1, 4, 1, 0, 1], np.int32)
    upd = rng.standard_normal((5, 3)).astype(np.float32)

    def f(x, u):
        ref = x.at[idx]
        return {"add": ref.add, "set": ref.set, "mul": ref.multiply, "min": ref.min,
                "max": ref.max}[kind](u)
    exe = check(f, x, upd, device=device, exact=(kind != "add"))
    assert exe.num_kernels >= 1


@pytest.mark.parametrize("mode", ["clip", "drop"])
def test_scatter_add_out_of_bounds(device, mode):
    x = np.zeros((5, 2), np.float32)
    idx = np.array([[0], [4], [7], [-3], [4]], np.int32)
    upd = np.arange(10, dtype=np.float32).reshape(5, 2)
    dn = lax.ScatterDimensionNumbers(update_window_dims=(1,), inserted_window_dims=(0,),
                                     scatter_dims_to_operand_dims=(0,))
    check(lambda x, u: lax.scatter_add(x, idx, u, dn, mode=mode), x, upd, device=device)


def test_integer_scatter_add(device):
    x = np.arange(8, dtype=np.int32)
    idx = np.array([3, 3, 7], np.int32)
    check(lambda x: x.at[idx].add(np.int32(5)), x, device=device)


@pytest.mark.parametrize("src,dst", [(np.float32, np.int32), (np.int32, np.float32),
                                     (np.float32, np.uint32), (np.uint32, np.int32),
                                     (np.int16, np.uint16), (np.uint8, np.int8)])
def test_bitcast_convert_type(device, src, dst):
    x = (rng.standard_normal(37) * 100).astype(src)
    if np.dtype(src).kind == "f":
        # (no NaN: the payload of NaN * 2 is the hardware's — 0x7fffffff on NVIDIA GPUs)
        x[:3] = [np.inf, -np.inf, -0.0]
    exe = check(lambda x: lax.bitcast_convert_type(x * 2, dst), x, device=device)
    assert exe.num_kernels == 1


def _special_floats(shape):
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[::7] = 0.5  # ties: stability
    flat[1::11] = np.nan
    flat[2::13] = -0.0
    flat[3::17] = np.inf
    flat[4::19] = -np.inf
    return x


@pytest.mark.parametrize("dimension", [0, 1])
def test_sort_float_specials(device, dimension):
    x = _special_floats((9, 40))
    check(lambda x: lax.sort(x, dimension=dimension), x, device=device)


def test_sort_multiple_operands_and_keys(device):
    k1 = rng.integers(0, 3, (4, 30)).astype(np.int32)
    k2 = rng.standard_normal((4, 30)).astype(np.float32)
    v = np.arange(120, dtype=np.int32).reshape(4, 30)
    check(lambda a, b, c: lax.sort((a, b, c), dimension=1, num_keys=2), k1, k2, v,
          device=device)
    check(lambda a, c: lax.sort((a, c), dimension=1, num_keys=1), k1, v, device=device)


def test_argsort_and_top_k(device):
    x = _special_floats((5, 33))
    check(lambda x: jnp.argsort(x, axis=-1), x, device=device)
    check(lambda x: lax.top_k(x, 7), x, device=device)
    i = rng.integers(-5, 5, (3, 20)).astype(np.int32)
    check(lambda i: lax.top_k(i, 20), i, device=device)


def test_large_sort_matches_numpy():
    x = rng.standard_normal((64, 5000)).astype(np.float32)
    exe = check(lambda x: lax.sort(x, dimension=1), x, device="cpu")
    np.testing.assert_array_equal(exe(x)[0], np.sort(x, axis=1))


POOLS = [((2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)),
         ((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
         ((3, 2), (2, 1), ((1, 0), (0, 2)), (2, 1))]


@pytest.mark.parametrize("geom", POOLS)
@pytest.mark.parametrize("prim", ["ge", "le"])
def test_select_and_scatter_add(device, geom, prim):
    from tinyjax.lax import windowed
    wd, ws, pad, bd = geom
    x = rng.integers(-3, 3, (7, 6)).astype(np.float32)  # ties: the first wins
    sel = lax.ge_p if prim == "ge" else lax.le_p
    src_shape = jax.eval_shape(
        lambda x: windowed.select_and_gather_add_p.bind(
            x, x, select_prim=sel, window_dimensions=wd, window_strides=ws, padding=pad,
            base_dilation=bd, window_dilation=(1, 1)), x).shape
    s = rng.standard_normal(src_shape).astype(np.float32)
    params = dict(select_prim=sel, window_dimensions=wd, window_strides=ws, padding=pad,
                  base_dilation=bd, window_dilation=(1, 1))
    check(lambda s, x: windowed.select_and_scatter_add_p.bind(s, x, **params), s, x,
          device=device, exact=False)
    t = rng.standard_normal(x.shape).astype(np.float32)
    check(lambda t, x: windowed.select_and_gather_add_p.bind(t, x, **params), t, x,
          device=device)


def test_max_pool_grad_under_jit(device):
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)

    def loss(x):
        y = lax.reduce_window(x, -np.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return jnp.sum(y ** 2)
    check(lambda x: jax.grad(loss)(x), x, device=device, exact=False)


HALVES = [np.float16, jnp.bfloat16]


@pytest.mark.parametrize("dt", HALVES)
def test_half_elementwise_rounds_every_op_as_eager(device, dt):
    x = (rng.standard_normal(300) * 3).astype(dt)
    y = (rng.standard_normal(300) * 3).astype(dt)
    x[:4] = np.array([np.nan, np.inf, -0.0, 65504 if dt == np.float16 else 1e38], np.float32)
    check(lambda x, y: (x * y + x) / (y - 0.25) * 3.0 + lax.max(x, y), x, y, device=device)
    check(lambda x: (x * 1000.0, x * 1e-6, -x, lax.abs(x), x > 0.5), x, device=device)


@pytest.mark.parametrize("dt", HALVES)
def test_half_casts(device, dt):
    x = np.concatenate([rng.standard_normal(200) * 1e3, rng.standard_normal(200) * 1e-6,
                        [7e4, -7e4, 65519.0, 65520.0, 1e-8, 3e-8, np.nan, np.inf]]).astype(np.float32)
    check(lambda x: lax.convert_element_type(x, dt), x, device=device)
    h = x.astype(dt)
    check(lambda h: (lax.convert_element_type(h, np.float32),
                     lax.convert_element_type(h, np.int32)), h, device=device)


@pytest.mark.parametrize("dt", HALVES)
def test_half_transcendentals_and_reductions(device, dt):
    x = rng.standard_normal((8, 50)).astype(dt)
    check(lambda x: (lax.exp(x), lax.tanh(x), lax.log(lax.abs(x) + 1.0)), x, device=device,
          exact=False)
    check(lambda x: (jnp.max(x, axis=1), jnp.sum(x, axis=0)), x, device=device, exact=False)


@pytest.mark.parametrize("dt", HALVES)
def test_half_matmul_sort_and_scatter(device, dt):
    a = rng.standard_normal((6, 9)).astype(dt)
    b = rng.standard_normal((9, 5)).astype(dt)
    closed = jax.make_jaxpr(lambda a, b: a @ b)(a, b)
    got = np.asarray(compile_jaxpr(closed, get_backend(device))(a, b)[0])
    np.testing.assert_allclose(got.astype(np.float32),
                               a.astype(np.float32) @ b.astype(np.float32), rtol=2e-2,
                               atol=2e-2)
    x = rng.standard_normal((3, 20)).astype(dt)
    check(lambda x: lax.sort(x, dimension=1), x, device=device)
    check(lambda x: lax.top_k(x, 4), x, device=device)
    idx = np.array([0, 2, 0], np.int32)
    check(lambda x: x.at[idx].add(x[:3] * 2), x, device=device, exact=False)
