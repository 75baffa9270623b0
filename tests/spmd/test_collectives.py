"""Every collective inside shard_map over the devices, eagerly and under jit, against numpy
references built from the per-device blocks; and the same collectives under vmap with an
axis name (the semantics shard_map's are defined by)."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.sharding import PartitionSpec as P

from tests.spmd.mesh_support import N, blocks, mesh_1d, mesh_2d

RNG = np.random.default_rng(0)
X = RNG.standard_normal((N * 4, 6)).astype(np.float32)
MODES = ["eager", "jit"]


def smap(f, mesh, in_specs, out_specs, mode):
    g = jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    return jax.jit(g) if mode == "jit" else g


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, reduce", [("psum", np.sum), ("pmax", np.max),
                                           ("pmin", np.min), ("pmean", np.mean)])
def test_reductions(mode, name, reduce):
    mesh = mesh_1d()
    out = smap(lambda b: getattr(lax, name)(b, "i"), mesh, P("i"), P("i"), mode)(X)
    want = reduce(np.stack(blocks(X, N)), axis=0)
    np.testing.assert_allclose(np.asarray(out), np.tile(want, (N, 1)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("axis, tiled", [(0, False), (1, False), (0, True), (1, True)])
def test_all_gather(mode, axis, tiled):
    mesh = mesh_1d()
    out = smap(lambda b: lax.all_gather(b, "i", axis=axis, tiled=tiled), mesh, P("i"),
               P("i"), mode)(X)
    bs = blocks(X, N)
    one = np.concatenate(bs, axis) if tiled else np.stack(bs, axis)
    np.testing.assert_allclose(np.asarray(out), np.concatenate([one] * N, 0))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dim, tiled", [(0, True), (1, True), (0, False)])
def test_psum_scatter(mode, dim, tiled):
    mesh = mesh_1d()
    x = RNG.standard_normal((N * N, 2 * N)).astype(np.float32)
    bs = blocks(x, N)  # each device's (N, 2N) block
    if not tiled:
        f = lambda b: lax.psum_scatter(b, "i", scatter_dimension=0, tiled=False)
        out = smap(f, mesh, P("i"), P("i"), mode)(x)
        total = sum(bs)
        np.testing.assert_allclose(np.asarray(out), total.reshape(-1), rtol=1e-5)
        return
    f = lambda b: lax.psum_scatter(b, "i", scatter_dimension=dim, tiled=True)
    out = smap(f, mesh, P("i"), P("i"), mode)(x)
    total = sum(bs)
    want = np.concatenate(np.split(total, N, axis=dim), 0)
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_ppermute(mode):
    mesh = mesh_1d()
    perm = [(i, (i + 1) % N) for i in range(N)] if N > 1 else [(0, 0)]
    out = smap(lambda b: lax.ppermute(b, "i", perm), mesh, P("i"), P("i"), mode)(X)
    bs = blocks(X, N)
    want = [bs[(i - 1) % N] for i in range(N)]
    np.testing.assert_allclose(np.asarray(out), np.concatenate(want))
    # a device that receives nothing gets zeros
    half = [(0, N - 1)] if N > 1 else [(0, 0)]
    out = smap(lambda b: lax.ppermute(b, "i", half), mesh, P("i"), P("i"), mode)(X)
    want = [np.zeros_like(bs[0])] * (N - 1) + [bs[0]]
    np.testing.assert_allclose(np.asarray(out), np.concatenate(want))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("split, concat", [(0, 0), (0, 1), (1, 0)])
def test_all_to_all(mode, split, concat):
    mesh = mesh_1d()
    x = RNG.standard_normal((N * N, 2 * N)).astype(np.float32)
    f = lambda b: lax.all_to_all(b, "i", split, concat, tiled=True)
    out = smap(f, mesh, P("i"), P("i"), mode)(x)
    bs = blocks(x, N)
    want = [np.concatenate([np.split(bs[j], N, split)[i] for j in range(N)], concat)
            for i in range(N)]
    np.testing.assert_allclose(np.asarray(out), np.concatenate(want))


@pytest.mark.parametrize("mode", MODES)
def test_all_to_all_untiled(mode):
    mesh = mesh_1d()
    x = RNG.standard_normal((N * N, 3)).astype(np.float32)
    out = smap(lambda b: lax.all_to_all(b, "i", 0, 0), mesh, P("i"), P("i"), mode)(x)
    bs = blocks(x, N)
    want = [np.stack([bs[j][i] for j in range(N)]) for i in range(N)]
    np.testing.assert_allclose(np.asarray(out), np.concatenate(want))


@pytest.mark.parametrize("mode", MODES)
def test_axis_index_and_size(mode):
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    f = lambda b: (b * 0 + lax.axis_index("x") * 100 + lax.axis_index("y") * 10
                   + lax.axis_index(("x", "y")) + lax.axis_size(("x", "y")) * 1000)
    x = np.zeros((rows, cols), np.int32)
    out = np.asarray(smap(f, mesh, P("x", "y"), P("x", "y"), mode)(x))
    want = np.array([[1000 * rows * cols + 100 * r + 10 * c + r * cols + c
                      for c in range(cols)] for r in range(rows)])
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("mode", MODES)
def test_collectives_over_two_axes(mode):
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    x = RNG.standard_normal((rows * 2, cols * 3)).astype(np.float32)
    out = smap(lambda b: lax.psum(b, ("x", "y")), mesh, P("x", "y"), P("x", "y"), mode)(x)
    grid = x.reshape(rows, 2, cols, 3).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(np.asarray(out), np.tile(grid.sum((0, 1)), (rows, cols)),
                               rtol=1e-5)
    out = smap(lambda b: lax.all_gather(b, ("x", "y"), tiled=True), mesh, P("x", "y"),
               P("x", "y"), mode)(x)
    gathered = np.concatenate([grid[r, c] for r in range(rows) for c in range(cols)])
    np.testing.assert_allclose(np.asarray(out), np.tile(gathered, (rows, cols)))


@pytest.mark.parametrize("name", ["psum", "all_gather", "psum_scatter", "ppermute",
                                  "all_to_all", "axis_index"])
def test_shard_map_agrees_with_vmap(name):
    """shard_map over n devices of per-device blocks of size 1 is vmap with that axis name."""
    mesh = mesh_1d()
    x = RNG.standard_normal((N, N, 2)).astype(np.float32)
    perm = [(i, (i + 1) % N) for i in range(N)]
    fs = {"psum": lambda v: lax.psum(v, "i"),
          "all_gather": lambda v: lax.all_gather(v, "i", axis=1),
          "psum_scatter": lambda v: lax.psum_scatter(v, "i", tiled=True),
          "ppermute": lambda v: lax.ppermute(v, "i", perm),
          "all_to_all": lambda v: lax.all_to_all(v, "i", 0, 1, tiled=True),
          "axis_index": lambda v: v * 0 + lax.axis_index("i")}
    f = fs[name]
    by_vmap = jax.vmap(f, axis_name="i")(x)
    by_devices = jax.shard_map(lambda b: f(b[0])[None], mesh=mesh, in_specs=P("i"),
                               out_specs=P("i"), check_vma=False)(x)
    np.testing.assert_allclose(np.asarray(by_devices), np.asarray(by_vmap), rtol=1e-6)


def test_collective_outside_a_mapped_axis():
    with pytest.raises(NameError, match="unbound axis name: i"):
        lax.psum(X, "i")
