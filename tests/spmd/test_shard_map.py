"""shard_map: blocks in and out as the specs say, its errors, per-device printing, and its
transformations -- grad (against the unsharded function, and finite differences), vmap
(against a loop), jit; a tensor-parallel transformer block equals the unsharded one, and so
do its gradients."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.sharding import NamedSharding, PartitionSpec as P
from tinyjax.test_util import check_grads

from tests.spmd.mesh_support import DEVICES, N, mesh_1d, mesh_2d, needs_devices

RNG = np.random.default_rng(1)


def _matmul(mesh):
    @jax.shard_map(mesh=mesh, in_specs=(P("x", "y"), P("y", None)), out_specs=P("x", None))
    def matmul(a, b):
        return lax.psum(jnp.dot(a, b), "y")
    return matmul


def test_blocks_in_and_out():
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    a = RNG.standard_normal((rows * 2, cols * 4)).astype(np.float32)
    b = RNG.standard_normal((cols * 4, 3)).astype(np.float32)
    for f in (_matmul(mesh), jax.jit(_matmul(mesh))):
        c = f(a, b)
        np.testing.assert_allclose(np.asarray(c), a @ b, rtol=1e-5, atol=1e-5)
        assert c.sharding == NamedSharding(mesh, P("x", None))
        assert [s.data.shape for s in c.addressable_shards] == [(2, 3)] * (rows * cols)

    @jax.shard_map(mesh=mesh, in_specs=P("x", None), out_specs=P("x", "y"))
    def tile(block):
        return block
    x = np.arange(rows * 3 * 4.0, dtype=np.float32).reshape(rows * 3, 4)
    np.testing.assert_array_equal(np.asarray(tile(x)), np.tile(x, (1, cols)))


def test_in_specs_inferred_from_the_arguments_and_the_context_mesh():
    mesh = mesh_1d()
    x = jax.device_put(np.arange(N * 2.0, dtype=np.float32), NamedSharding(mesh, P("i")))
    with jax.set_mesh(mesh):
        out = jax.shard_map(lambda b: lax.psum(b, "i"), out_specs=P())(x)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x).reshape(N, 2).sum(0))


def test_errors():
    mesh = mesh_1d()
    if N > 1:
        with pytest.raises(ValueError, match="not evenly divisible"):
            jax.shard_map(lambda x: x, mesh=mesh, in_specs=P("i"),
                          out_specs=P("i"))(np.ones(N + 1, np.float32))
        with pytest.raises(ValueError, match="replicated across mesh axis 'i'"):
            jax.shard_map(lambda x: x, mesh=mesh, in_specs=P("i"),
                          out_specs=P())(np.ones(N, np.float32))
        with pytest.raises(ValueError, match="replicated across mesh axis 'i'"):
            jax.jit(jax.shard_map(lambda x: x * lax.axis_index("i"), mesh=mesh, in_specs=P(),
                                  out_specs=P()))(np.ones(3, np.float32))
        # without the check, the first device's block
        out = jax.shard_map(lambda x: x, mesh=mesh, in_specs=P("i"), out_specs=P(),
                            check_vma=False)(np.arange(N * 2.0, dtype=np.float32))
        np.testing.assert_array_equal(np.asarray(out), [0.0, 1.0])
    with pytest.raises(ValueError, match="not in the mesh"):
        jax.shard_map(lambda x: x, mesh=mesh, in_specs=P("nope"), out_specs=P())(np.ones(N))
    # a psum makes a value replicated: no error
    out = jax.shard_map(lambda x: lax.psum(x, "i"), mesh=mesh, in_specs=P("i"),
                        out_specs=P())(np.ones(N, np.float32))
    np.testing.assert_array_equal(np.asarray(out), [N])


def test_eager_values_print_per_device(capsys):
    mesh = mesh_1d(n=min(N, 2))

    @jax.shard_map(mesh=mesh, in_specs=P("i"), out_specs=P("i"))
    def f(x):
        print(x)
        return 2 * x
    out = f(np.arange(2 * mesh.size, dtype=np.int32))
    lines = capsys.readouterr().out
    assert f"On {DEVICES[0]} at mesh coordinates (i,) = (0,):\n[0 1]\n" in lines
    np.testing.assert_array_equal(np.asarray(out), 2 * np.arange(2 * mesh.size))


@pytest.mark.parametrize("wrap", [lambda f: f, jax.jit], ids=["eager", "jit"])
def test_types_name_the_axes_a_value_varies_over(wrap):
    mesh = mesh_2d()
    seen = []

    @jax.shard_map(mesh=mesh, in_specs=(P("x", "y"), P()), out_specs=P("x", "y"))
    def f(a, b):
        seen.append(str(jax.typeof(a)))
        seen.append(str(jax.typeof(b)))
        s = lax.psum(a, "y")  # no longer varies over y
        seen.append(str(jax.typeof(s)))
        seen.append(jax.typeof(s).manual_axis_type.varying)
        seen.append(str(jax.typeof(lax.axis_index("y") + b)))
        return s * b
    rows, cols = mesh.axis_sizes
    a = np.arange(rows * cols * 4, dtype=np.float32).reshape(rows * 2, cols * 2)
    b = np.float32(2)
    out = wrap(f)(a, b)
    assert seen == ["float32[2,2]{V:(x,y)}", "float32[]", "float32[2,2]{V:x}",
                    frozenset({"x"}), "float32[]{V:y}"]
    blocks = a.reshape(rows, 2, cols, 2).sum(axis=2, keepdims=True)
    want = np.broadcast_to(blocks, (rows, 2, cols, 2)).reshape(a.shape) * b
    np.testing.assert_allclose(np.asarray(out), want)


def test_jaxpr_marks_operands_varying_as_jax_prints_it():
    mesh = mesh_1d()
    f = jax.shard_map(lambda a, b: a * b, mesh=mesh, in_specs=(P("i"), P()),
                      out_specs=P("i"))
    text = str(jax.make_jaxpr(f)(np.ones(2 * N, np.float32), np.ones(2, np.float32)))
    assert text == f"""{{ lambda ; a:f32[{2 * N}] b:f32[2]. let
    c:f32[{2 * N}] = shard_map[
      check_vma=True
      in_specs=(P('i',), P())
      jaxpr={{ lambda ; d:f32[2]{{V:i}} e:f32[2]. let
          f:f32[2]{{V:i}} = pvary[axes=('i',)] e
          g:f32[2]{{V:i}} = mul d f
        in (g,) }}
      mesh={mesh}
      newly_manual_axes=frozenset({{'i'}})
      out_specs=(P('i',),)
    ] a b
  in (c,) }}"""
    # under a context mesh the equation names its abstract mesh, as JAX's
    with jax.set_mesh(mesh):
        g = jax.shard_map(lambda a: a, in_specs=P("i"), out_specs=P("i"))
        text = str(jax.make_jaxpr(g)(np.ones(N, np.float32)))
    d = DEVICES[0]
    assert (f"mesh=AbstractMesh('i': {N}, axis_types=(Auto,), device_kind={d.device_kind}, "
            f"num_cores=None, platform={d.platform})") in text


def _dp_loss(mesh):
    """A data-parallel MLP loss: batch split over 'i', parameters replicated."""
    @jax.shard_map(mesh=mesh, in_specs=(P(), P(), P("i"), P("i")), out_specs=P())
    def loss(w, b, x, y):
        pred = jnp.tanh(x @ w + b)
        return lax.pmean(jnp.mean((pred - y) ** 2), "i")
    return loss


def _ref_loss(w, b, x, y):
    return jnp.mean((jnp.tanh(x @ w + b) - y) ** 2)


def test_grad_through_shard_map():
    mesh = mesh_1d()
    w = RNG.standard_normal((5, 3)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    x = RNG.standard_normal((N * 2, 5)).astype(np.float32)
    y = RNG.standard_normal((N * 2, 3)).astype(np.float32)
    loss = _dp_loss(mesh)
    want = jax.grad(_ref_loss, argnums=(0, 1, 2))(w, b, x, y)
    for grad in (jax.grad(loss, argnums=(0, 1, 2)), jax.jit(jax.grad(loss, argnums=(0, 1, 2)))):
        got = grad(w, b, x, y)
        for g, r in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-5, atol=1e-6)
    check_grads(lambda w, b: loss(w, b, x, y), (w.astype(np.float64), b.astype(np.float64)),
                order=1, modes=("rev",), atol=1e-2, rtol=1e-2)


def test_grad_of_collectives():
    mesh = mesh_1d()
    x = RNG.standard_normal((N * 2, 3)).astype(np.float32)
    perm = [(i, (i + 1) % N) for i in range(N)]

    def via(f):
        g = jax.shard_map(f, mesh=mesh, in_specs=P("i"), out_specs=P("i"), check_vma=False)
        return lambda v: jnp.sum(jnp.sin(g(v)) * np.arange(v.size).reshape(v.shape))

    cases = {
        "all_gather": lambda v: lax.all_gather(v, "i", tiled=True)[:2],
        "psum_scatter": lambda v: lax.psum_scatter(jnp.tile(v, (N, 1)), "i", tiled=True),
        "ppermute": lambda v: lax.ppermute(v, "i", perm),
        "all_to_all": lambda v: lax.all_to_all(jnp.tile(v, (N, 1)), "i", 0, 0, tiled=True)[:2],
        "pmax": lambda v: lax.pmax(v, "i"),
    }
    d = RNG.standard_normal(x.shape).astype(np.float32)
    for name, f in cases.items():
        h = via(f)
        # a directional derivative: central differences (float32: a step of 1e-3) against
        # forward and reverse mode
        fd = (float(h(x + 1e-3 * d)) - float(h(x - 1e-3 * d))) / 2e-3
        _, tangent = jax.jvp(h, (x,), (d,))
        by_grad = float(np.sum(np.asarray(jax.grad(h)(x)) * d))
        np.testing.assert_allclose([float(tangent), by_grad], [fd, fd], rtol=2e-3, atol=2e-2,
                                   err_msg=name)


def test_vmap_through_shard_map():
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    f = _matmul(mesh)
    a = RNG.standard_normal((3, rows * 2, cols * 2)).astype(np.float32)
    b = RNG.standard_normal((cols * 2, 4)).astype(np.float32)
    want = np.stack([np.asarray(f(a[k], b)) for k in range(3)])
    for g in (jax.vmap(f, in_axes=(0, None)), jax.jit(jax.vmap(f, in_axes=(0, None)))):
        np.testing.assert_allclose(np.asarray(g(a, b)), want, rtol=1e-5, atol=1e-5)
    # the batch dimension elsewhere, and a batched second argument
    got = jax.vmap(f, in_axes=(2, None), out_axes=1)(np.moveaxis(a, 0, 2), b)
    np.testing.assert_allclose(np.asarray(got), np.moveaxis(want, 0, 1), rtol=1e-5, atol=1e-5)


# ---- a tensor-parallel transformer block (Megatron style): attention heads and the MLP's
# hidden units split over 'model'; each half ends in a psum --------------------------------

D, HEADS, HEAD_DIM, HIDDEN, T = 16, 4, 4, 32, 6


def _params(seed=0):
    r = np.random.default_rng(seed)
    n = lambda *s: (r.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)
    return dict(wq=n(D, HEADS * HEAD_DIM), wk=n(D, HEADS * HEAD_DIM), wv=n(D, HEADS * HEAD_DIM),
                wo=n(HEADS * HEAD_DIM, D), w1=n(D, HIDDEN), w2=n(HIDDEN, D))


def _layer_norm(x):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)


def _block(p, x, reduce=lambda v: v):
    """The block on a slice of the heads and hidden units; ``reduce`` sums the partial
    results over the slices (identity when unsharded)."""
    h = _layer_norm(x)
    heads = p["wq"].shape[1] // HEAD_DIM
    q = (h @ p["wq"]).reshape(T, heads, HEAD_DIM)
    k = (h @ p["wk"]).reshape(T, heads, HEAD_DIM)
    v = (h @ p["wv"]).reshape(T, heads, HEAD_DIM)
    att = jax.nn.softmax(jnp.einsum("thd,shd->hts", q, k) / np.sqrt(HEAD_DIM), axis=-1)
    o = jnp.einsum("hts,shd->thd", att, v).reshape(T, heads * HEAD_DIM)
    x = x + reduce(o @ p["wo"])
    h = _layer_norm(x)
    return x + reduce(jax.nn.gelu(h @ p["w1"]) @ p["w2"])


def _tp_block(mesh):
    specs = dict(wq=P(None, "model"), wk=P(None, "model"), wv=P(None, "model"),
                 wo=P("model", None), w1=P(None, "model"), w2=P("model", None))
    return jax.shard_map(lambda p, x: _block(p, x, lambda v: lax.psum(v, "model")),
                         mesh=mesh, in_specs=(specs, P()), out_specs=P())


@needs_devices(2)
def test_tensor_parallel_transformer_block():
    n = 4 if N >= 4 else 2
    mesh = mesh_1d("model", n)
    p = _params()
    x = np.random.default_rng(2).standard_normal((T, D)).astype(np.float32)
    want = _block(p, x)
    tp = _tp_block(mesh)
    for f in (tp, jax.jit(tp)):
        np.testing.assert_allclose(np.asarray(f(p, x)), np.asarray(want), rtol=1e-4, atol=1e-4)
    loss = lambda f: (lambda p, x: jnp.sum(f(p, x) ** 2))
    want_g = jax.grad(loss(_block), argnums=(0, 1))(p, x)
    got_g = jax.jit(jax.grad(loss(tp), argnums=(0, 1)))(p, x)
    for g, r in zip(jax.tree.leaves(got_g), jax.tree.leaves(want_g)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-4, atol=2e-4)


def test_experimental_spelling():
    from tinyjax.experimental.shard_map import shard_map
    mesh = mesh_1d()
    f = shard_map(lambda b: lax.psum(b, "i"), mesh, in_specs=P("i"), out_specs=P())
    np.testing.assert_allclose(np.asarray(f(np.ones(N, np.float32))), [N])
