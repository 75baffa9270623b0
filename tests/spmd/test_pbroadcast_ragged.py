"""lax.pbroadcast and lax.ragged_all_to_all inside shard_map (eager and jit) and under
vmap with an axis name, against numpy references built from the per-device blocks; their
transposes against the vmap reference's; psend/precv raise."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.sharding import PartitionSpec as P

from tests.spmd.mesh_support import N, blocks, mapped, mesh_1d, mesh_2d

RNG = np.random.default_rng(3)
X = RNG.standard_normal((N * 2, 3)).astype(np.float32)
MODES = ["eager", "jit"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", [0, N - 1])
def test_pbroadcast_copies_the_source_block(mode, source):
    out = mapped(lambda b: lax.pbroadcast(b, "i", source), mesh_1d(), P("i"), P("i"), mode)(X)
    want = np.tile(blocks(X, N)[source], (N, 1))
    np.testing.assert_array_equal(np.asarray(out), want)


@pytest.mark.parametrize("mode", MODES)
def test_pbroadcast_is_replicated_for_check_vma(mode):
    f = jax.shard_map(lambda b: lax.pbroadcast(b, "i", 1 % N), mesh=mesh_1d(),
                      in_specs=P("i"), out_specs=P())
    out = (jax.jit(f) if mode == "jit" else f)(X)
    np.testing.assert_array_equal(np.asarray(out), blocks(X, N)[1 % N])


@pytest.mark.parametrize("mode", MODES)
def test_pbroadcast_over_two_axes(mode):
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    source = rows * cols - 1
    x = RNG.standard_normal((rows * 2, cols * 3)).astype(np.float32)
    out = mapped(lambda b: lax.pbroadcast(b, ("x", "y"), source), mesh, P("x", "y"),
                 P("x", "y"), mode)(x)
    last = x[-2:, -3:]
    np.testing.assert_array_equal(np.asarray(out), np.tile(last, (rows, cols)))


def test_pbroadcast_under_vmap_and_its_transpose():
    xs = X[:4]
    out = jax.vmap(lambda v: lax.pbroadcast(v, "b", 2), axis_name="b")(xs)
    np.testing.assert_array_equal(np.asarray(out), np.tile(xs[2], (4, 1)))
    w = RNG.standard_normal(xs.shape).astype(np.float32)
    g = jax.grad(lambda x: jnp.sum(jax.vmap(lambda v: lax.pbroadcast(v, "b", 2),
                                            axis_name="b")(x) * w))(xs)
    want = np.zeros_like(xs)
    want[2] = w.sum(0)
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_pbroadcast_gradient_in_shard_map(mode):
    w = RNG.standard_normal(X.shape).astype(np.float32)

    def loss(x):
        f = mapped(lambda b: lax.pbroadcast(b, "i", N - 1), mesh_1d(), P("i"), P("i"), mode)
        return jnp.sum(f(x) * w)
    g = np.asarray(jax.grad(loss)(X))
    want = np.zeros_like(X)
    want[-2:] = sum(blocks(w, N))
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


def test_pbroadcast_errors():
    with pytest.raises(ValueError, match="source=5"):
        jax.vmap(lambda v: lax.pbroadcast(v, "b", 5), axis_name="b")(X[:2])
    with pytest.raises(NameError, match="unbound axis name"):
        lax.pbroadcast(X, "nowhere", 0)


# ---- ragged_all_to_all ----------------------------------------------------------------------

def ragged_reference(operand, output, input_offsets, send_sizes, output_offsets, recv_sizes):
    """Per receiver, the documented send/receive loops over Python lists."""
    n, k = input_offsets.shape
    per = k // n
    result = output.copy()
    for src in range(n):
        for i in range(k):
            dst = i // per
            rows = operand[src, input_offsets[src, i]:input_offsets[src, i] + send_sizes[src, i]]
            at = output_offsets[src, i]
            result[dst, at:at + len(rows)] = rows
    return result


def ragged_case(n, per, rows=6, out_rows=8, cols=2, seed=0):
    """Every position sends per*n slices; slice sizes chosen so the receivers' writes
    do not overlap (each receiver gets consecutive regions)."""
    rng = np.random.default_rng(seed)
    k = n * per
    send = rng.integers(0, 2, size=(n, k)).astype(np.int32)
    in_off = rng.integers(0, rows - 1, size=(n, k)).astype(np.int32)
    out_off = np.zeros((n, k), np.int32)
    recv = np.zeros((n, k), np.int32)
    for dst in range(n):
        at = 0
        for src in range(n):
            for j in range(per):
                i = dst * per + j
                out_off[src, i] = at
                recv[dst, src * per + j] = send[src, i]
                at += send[src, i]
    operand = rng.standard_normal((n, rows, cols)).astype(np.float32)
    output = rng.standard_normal((n, out_rows, cols)).astype(np.float32)
    return operand, output, in_off, send, out_off, recv


def test_ragged_all_to_all_documented_example():
    operand = np.array([[1, 2, 2], [3, 4, 0]], np.float32)
    output = np.zeros((2, 4), np.float32)
    args = (operand, output, np.array([[0, 1], [0, 1]], np.int32),
            np.array([[1, 2], [1, 1]], np.int32), np.array([[0, 0], [1, 2]], np.int32),
            np.array([[1, 1], [2, 1]], np.int32))
    out = jax.vmap(lambda *a: lax.ragged_all_to_all(*a, axis_name="i"), axis_name="i")(*args)
    np.testing.assert_array_equal(np.asarray(out), [[1, 3, 0, 0], [2, 2, 4, 0]])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per", [1, 2])
def test_ragged_all_to_all_in_shard_map(mode, per):
    args = ragged_case(N, per, seed=per)
    f = mapped(lambda *a: lax.ragged_all_to_all(*[v[0] for v in a], axis_name="i")[None],
               mesh_1d(), P("i"), P("i"), mode)
    np.testing.assert_array_equal(np.asarray(f(*args)), ragged_reference(*args))


def test_ragged_all_to_all_under_an_outer_vmap():
    cases = [ragged_case(2, 1, seed=s) for s in range(3)]
    stacked = [np.stack(c) for c in zip(*cases)]
    inner = lambda *a: lax.ragged_all_to_all(*a, axis_name="i")
    out = jax.vmap(jax.vmap(inner, axis_name="i"))(*stacked)
    for got, case in zip(np.asarray(out), cases):
        np.testing.assert_array_equal(got, ragged_reference(*case))


def reference_vjp(ct, operand, output, *offsets):
    """The reference's vjp for operand and output: it is linear in them, so each entry of
    the gradient is the cotangent's sum against the reference of one unit input (a row
    sent to several receivers gathers all their cotangents)."""
    def unit_grads(shape, run):
        units = np.eye(int(np.prod(shape)), dtype=np.float32).reshape((-1,) + shape)
        return np.array([np.sum(run(u) * ct) for u in units]).reshape(shape)
    return (unit_grads(operand.shape, lambda u: ragged_reference(u, 0 * output, *offsets)),
            unit_grads(output.shape, lambda u: ragged_reference(0 * operand, u, *offsets)))


@pytest.mark.parametrize("mode", ["vmap", "eager", "jit"])
def test_ragged_all_to_all_transpose(mode):
    n = 2 if mode == "vmap" else N
    operand, output, *offsets = ragged_case(n, 2, seed=7)
    if mode == "vmap":
        fn = jax.vmap(lambda a, b, *o: lax.ragged_all_to_all(a, b, *o, axis_name="i"),
                      axis_name="i")
    else:
        fn = mapped(lambda *a: lax.ragged_all_to_all(*[v[0] for v in a], axis_name="i")[None],
                    mesh_1d(), P("i"), P("i"), mode)
    ct = RNG.standard_normal(output.shape).astype(np.float32)
    _, pull = jax.vjp(lambda a, b: fn(a, b, *offsets), operand, output)
    got = pull(ct)
    want = reference_vjp(ct, operand, output, *offsets)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-6)


def test_ragged_all_to_all_errors():
    operand, output, *offsets = ragged_case(2, 1)
    run = jax.vmap(lambda *a: lax.ragged_all_to_all(*a, axis_name="i"), axis_name="i")
    with pytest.raises(ValueError, match="input_offsets must be integer type"):
        run(operand, output, offsets[0].astype(np.float32), *offsets[1:])
    with pytest.raises(ValueError, match="must be rank 1"):
        run(operand, output, *[o[:, :, None] for o in offsets])
    with pytest.raises(NameError):
        lax.ragged_all_to_all(operand[0], output[0], *[o[0] for o in offsets], axis_name="i")


def test_psend_precv_raise():
    with pytest.raises(NotImplementedError, match="psend"):
        lax.psend(X, "i", [(0, 1)])
    with pytest.raises(NotImplementedError, match="precv"):
        lax.precv(None, jax.ShapeDtypeStruct((2,), np.float32), "i", [(0, 1)])
