"""jax.export: export -> serialize -> deserialize -> call gives the original's numbers
(eagerly, under jit and grad); the calling convention's checks and JAX's error types."""
import collections
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import export, lax
from tinyjax.export import serialization

from tests.cuda_support import CUDA_PARAM
from tests.subprocess_support import run_python


def round_trip(exported, vjp_order=0):
    blob = exported.serialize(vjp_order=vjp_order)
    assert isinstance(blob, bytearray)
    return export.deserialize(blob)


def assert_trees_close(a, b, rtol=1e-6, atol=1e-6):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def numeric_grad(f, x, eps=1e-3):
    """Central differences of the scalar function ``f`` at ``x`` (float64 numpy)."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (float(f((x + d).astype(np.float32))) -
                float(f((x - d).astype(np.float32)))) / (2 * eps)
    return g


# ---- programs ------------------------------------------------------------------------------

rng = np.random.default_rng(0)
W1 = rng.standard_normal((4, 8)).astype(np.float32)  # closed over: constants of the program
b1 = rng.standard_normal(8).astype(np.float32)


def mlp_loss(params, x):
    h = jax.nn.relu(x @ W1 + b1)  # relu: a custom_jvp function
    out = jnp.tanh(h @ params["w"] + params["b"])
    return jnp.mean(out ** 2)


def mlp_args():
    params = {"w": jnp.asarray(rng.standard_normal((8, 3)), jnp.float32),
              "b": jnp.zeros(3, jnp.float32)}
    return params, jnp.asarray(rng.standard_normal((5, 4)), jnp.float32)


M = rng.standard_normal((3, 3)).astype(np.float32) * 0.5


def rnn(h0, xs):
    def step(h, x):
        h = jnp.tanh(h @ M + x)
        return h, h.sum()
    h, sums = lax.scan(step, h0, xs)
    return h.sum() + sums.sum()


def branchy(p, x):
    return lax.cond(p > 0, lambda v: jnp.sin(v) * 2.0, lambda v: jnp.cos(v) - 1.0, x).sum()


def test_mlp_round_trip_values_and_grads():
    params, x = mlp_args()
    exp = export.export(jax.jit(mlp_loss))(params, x)
    assert exp.fun_name == "mlp_loss" and exp.platforms == (export.default_export_platform(),)
    assert exp.in_avals == (jax.core.ShapedArray((3,), np.float32),
                            jax.core.ShapedArray((8, 3), np.float32),
                            jax.core.ShapedArray((5, 4), np.float32))
    back = round_trip(exp, vjp_order=1)
    want = mlp_loss(params, x)
    assert_trees_close(back.call(params, x), want)
    assert_trees_close(jax.jit(back.call)(params, x), want)
    g_want = jax.grad(mlp_loss)(params, x)
    assert_trees_close(jax.grad(back.call)(params, x), g_want, rtol=1e-5)
    assert_trees_close(jax.jit(jax.grad(back.call))(params, x), g_want, rtol=1e-5)
    num = numeric_grad(lambda b: mlp_loss(dict(params, b=b), x), params["b"])
    np.testing.assert_allclose(np.asarray(jax.grad(back.call)(params, x)["b"]), num,
                               rtol=2e-2, atol=1e-4)


def test_scan_round_trip_with_grad():
    h0 = jnp.asarray(rng.standard_normal(3), jnp.float32)
    xs = jnp.asarray(rng.standard_normal((6, 3)), jnp.float32)
    back = round_trip(export.export(jax.jit(rnn))(h0, xs), vjp_order=1)
    assert_trees_close(back.call(h0, xs), rnn(h0, xs), rtol=1e-5)
    g = jax.grad(back.call, argnums=(0, 1))(h0, xs)
    assert_trees_close(g, jax.grad(rnn, argnums=(0, 1))(h0, xs), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(g[0]), numeric_grad(lambda h: rnn(h, xs), h0),
                               rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("p", [1.0, -1.0])
def test_cond_round_trip(p):
    x = jnp.linspace(-1, 1, 4)
    exp = export.export(jax.jit(branchy))(jax.ShapeDtypeStruct((), jnp.float32), x)
    back = round_trip(exp, vjp_order=1)
    assert_trees_close(back.call(jnp.float32(p), x), branchy(jnp.float32(p), x))
    assert_trees_close(jax.grad(back.call, argnums=1)(jnp.float32(p), x),
                       jax.grad(branchy, argnums=1)(jnp.float32(p), x))


def test_while_loop_and_integer_arguments():
    def collatz_steps(n, scale):
        def body(c):
            k, steps = c
            return jnp.where(k % 2 == 0, k // 2, 3 * k + 1), steps + 1
        _, steps = lax.while_loop(lambda c: c[0] > 1, body, (n, 0))
        return steps * scale

    exp = export.export(jax.jit(collatz_steps))(np.int32(6), np.float32(1.5))
    back = round_trip(exp, vjp_order=1)
    assert float(back.call(np.int32(6), np.float32(1.5))) == 8 * 1.5
    assert float(back.call(np.int32(7), np.float32(1.0))) == 16.0
    # the integer argument's cotangent is float0, as the function's own
    g = jax.grad(back.call, argnums=(0, 1), allow_int=True)(np.int32(6), np.float32(1.5))
    assert g[0].dtype == jax.dtypes.float0 and float(g[1]) == 8.0


class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b


jax.tree_util.register_pytree_node(Pair, lambda p: ((p.a, p.b), "pair"),
                                   lambda aux, ch: Pair(*ch))
export.register_pytree_node_serialization(
    Pair, serialized_name="tests.export.Pair",
    serialize_auxdata=lambda aux: aux.encode(), deserialize_auxdata=lambda b: b.decode())

Point = collections.namedtuple("Point", ["x", "y"])
export.register_namedtuple_serialization(Point, serialized_name="tests.export.Point")


def test_custom_pytrees_round_trip():
    def swap(p, pt, *, scale):
        return Pair(p.b * scale, p.a), Point(pt.y, pt.x + 1.0)

    p, pt = Pair(jnp.arange(3.0), jnp.ones(3)), Point(jnp.float32(2), jnp.float32(3))
    exp = export.export(jax.jit(swap))(p, pt, scale=jnp.float32(2))
    back = round_trip(exp)
    assert back.in_tree == exp.in_tree and back.out_tree == exp.out_tree
    got_pair, got_point = back.call(p, pt, scale=jnp.float32(2))
    want_pair, want_point = swap(p, pt, scale=jnp.float32(2))
    assert isinstance(got_pair, Pair) and isinstance(got_point, Point)
    assert_trees_close((got_pair.a, got_pair.b), (want_pair.a, want_pair.b))
    assert_trees_close(tuple(got_point), tuple(want_point))


def test_ordered_dict_and_nested_containers():
    f = lambda d, xs: {"sum": d["a"] + d["b"], "list": [xs[0] * 2, (xs[1],)]}  # noqa: E731
    d = collections.OrderedDict(b=jnp.ones(2), a=jnp.arange(2.0))
    xs = [jnp.float32(1), jnp.float32(2)]
    back = round_trip(export.export(jax.jit(f))(d, xs))
    assert_trees_close(back.call(d, xs), f(d, xs))


def test_unregistered_pytree_cannot_be_serialized():
    class Box:
        def __init__(self, v):
            self.v = v
    jax.tree_util.register_pytree_node(Box, lambda b: ((b.v,), None), lambda _, c: Box(*c))
    exp = export.export(jax.jit(lambda b: b.v * 2))(Box(jnp.ones(2)))
    np.testing.assert_array_equal(exp.call(Box(jnp.ones(2))), [2.0, 2.0])  # callable still
    with pytest.raises(ValueError, match="unregistered type"):
        exp.serialize()


def test_registration_errors():
    with pytest.raises(ValueError, match="Duplicate serialization registration"):
        export.register_namedtuple_serialization(Point, serialized_name="other")
    with pytest.raises(ValueError, match="other than `collections.namedtuple`"):
        export.register_namedtuple_serialization(Pair, serialized_name="x")

    class Unregistered:
        pass
    with pytest.raises(ValueError, match="register_pytree_node"):
        export.register_pytree_node_serialization(
            Unregistered, serialized_name="u", serialize_auxdata=lambda a: b"",
            deserialize_auxdata=lambda b: None)


def test_grad_of_grad_needs_the_second_vjp():
    g = lambda x: jnp.sin(x) * 2.0  # noqa: E731
    exp = export.export(jax.jit(g))(jax.ShapeDtypeStruct((), jnp.float32))
    x = jnp.float32(1.5)
    two = round_trip(exp, vjp_order=2)
    np.testing.assert_allclose(float(jax.grad(jax.grad(two.call))(x)), -2 * np.sin(1.5),
                               rtol=1e-6)
    one = round_trip(exp, vjp_order=1)
    np.testing.assert_allclose(float(jax.grad(one.call)(x)), 2 * np.cos(1.5), rtol=1e-6)
    with pytest.raises(ValueError, match="No VJP is available"):
        jax.grad(jax.grad(one.call))(x)
    with pytest.raises(ValueError, match="No VJP is available"):
        jax.grad(round_trip(exp).call)(x)
    # before serialization the VJP is exported on demand, to any order
    np.testing.assert_allclose(float(jax.grad(jax.grad(exp.call))(x)), -2 * np.sin(1.5),
                               rtol=1e-6)


def test_vjp_exported_calling_convention():
    exp = export.export(jax.jit(lambda x, y: (x * y, x.sum())))(jnp.ones(3), jnp.ones(3))
    v = exp.vjp()
    assert v.in_avals == exp.in_avals + exp.out_avals
    assert v.out_avals == exp.in_avals
    ct = v.call(jnp.ones(3), 2 * jnp.ones(3), jnp.ones(3), jnp.float32(1))
    assert_trees_close(ct, (2 * jnp.ones(3) + 1, jnp.ones(3)))


def test_exported_calls_exported():
    inner = round_trip(export.export(jax.jit(jnp.sin))(jnp.ones(3)), vjp_order=1)
    outer = export.export(jax.jit(lambda x: inner.call(x) * 3.0))(jnp.ones(3))
    back = round_trip(outer, vjp_order=1)
    x = jnp.linspace(0, 1, 3)
    assert_trees_close(back.call(x), jnp.sin(x) * 3.0)
    assert_trees_close(jax.grad(lambda v: back.call(v).sum())(x), 3 * jnp.cos(x))


def test_weak_types_and_static_arguments():
    exp = export.export(jax.jit(lambda x, n: x * n, static_argnums=1))(1.0, 3)
    assert exp.in_avals == (jax.core.ShapedArray((), np.float32, weak_type=True),)
    assert exp.in_tree == jax.tree.structure(((0,), {}))
    back = round_trip(exp)
    assert float(back.call(2.0)) == 6.0 and float(back.call(jnp.float32(2))) == 6.0
    with pytest.raises(ValueError, match="Dtype mismatch for args\\[0\\]"):
        back.call(2)


def test_call_checks_like_jax():
    exp = export.export(jax.jit(lambda x, y: x + y))(jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match=r"Shape mismatch for args\[0\].shape\[0\]"):
        exp.call(jnp.ones(4), jnp.ones(3))
    with pytest.raises(ValueError, match=r"Rank mismatch for args\[1\]"):
        exp.call(jnp.ones(3), jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="same pytree structure"):
        exp.call(jnp.ones(3))
    with pytest.raises(NotImplementedError, match="Batching rule for 'call_exported'"):
        jax.vmap(exp.call)(jnp.ones((2, 3)), jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(exp.call, (jnp.ones(3), jnp.ones(3)), (jnp.ones(3), jnp.ones(3)))
    with pytest.raises(ValueError, match="must be the result of `jit`"):
        export.export(lambda x: x)


def test_fields_and_text():
    exp = export.export(jax.jit(lambda x, unused: jnp.sin(x)))(jnp.ones(2), jnp.ones(2))
    assert exp.module_kept_var_idx == (0,)
    assert exp.nr_devices == 1 and exp.in_shardings_hlo == (None, None)
    assert exp.out_shardings_hlo == (None,) and exp.in_shardings_jax(None) == (None, None)
    assert exp.ordered_effects == () and exp.unordered_effects == ()
    assert (export.minimum_supported_calling_convention_version
            <= exp.calling_convention_version
            <= export.maximum_supported_calling_convention_version)
    assert "stablehlo.sine" in exp.mlir_module()
    assert exp.mlir_module_serialized == exp.mlir_module().encode()
    assert exp.mlir_module(serialized=True) == exp.mlir_module()
    with pytest.raises(NotImplementedError, match="serialized=False"):
        exp.mlir_module(serialized=False)
    assert str(exp) == "Exported(fun_name=<lambda>, ...)"
    assert "call_exported" in str(jax.make_jaxpr(exp.call)(jnp.ones(2), jnp.ones(2)))


def test_platforms():
    exp = export.export(jax.jit(jnp.cos), platforms=["cuda"])(jnp.ones(2))
    here = export.default_export_platform()
    if here != "cuda":
        with pytest.raises(ValueError, match="was exported for platforms"):
            exp.call(jnp.ones(2))
    relaxed = export.export(jax.jit(jnp.cos), platforms=["cuda"],
                            disabled_checks=[export.DisabledSafetyCheck.platform()])
    back = round_trip(relaxed(jnp.ones(2)))
    assert back.platforms == ("cuda",)
    assert back.disabled_safety_checks == (export.DisabledSafetyCheck.platform(),)
    np.testing.assert_allclose(back.call(jnp.zeros(2)), [1.0, 1.0])
    check = export.DisabledSafetyCheck.custom_call("foo")
    assert check.is_custom_call() == "foo" and str(check) == "custom_call:foo"


def test_effects_cannot_be_exported():
    def printing(x):
        jax.debug.print("x={x}", x=x)
        return x
    with pytest.raises(NotImplementedError, match="host_callbacks"):
        export.export(jax.jit(printing))(jnp.ones(2))
    pc = lambda x: jax.pure_callback(np.sin, jax.ShapeDtypeStruct((2,), np.float32), x)  # noqa
    with pytest.raises(NotImplementedError, match="host_callbacks"):
        export.export(jax.jit(pc))(jnp.ones(2))


def test_effects_compiled_into_the_program_export():
    def draw(x):
        jax.lax.dce_sink(jnp.sin(x))
        return x + jax.lax.rng_uniform(0.0, 1.0, (2,))
    back = export.deserialize(export.export(jax.jit(draw))(jnp.zeros(2)).serialize())
    out = np.asarray(back.call(jnp.ones(2)))
    assert out.shape == (2,) and (out >= 1).all() and (out < 2).all()


def _blob():
    return export.export(jax.jit(lambda x: x * 2.0))(jnp.ones(2)).serialize()


def test_malformed_blobs_raise_value_errors():
    blob = _blob()
    with pytest.raises(ValueError, match="not a serialized tinyjax Exported"):
        export.deserialize(bytearray(b"garbage"))
    with pytest.raises(ValueError, match="truncated"):
        export.deserialize(blob[:30])
    other_version = bytearray(blob)
    other_version[15] = 99
    with pytest.raises(ValueError, match="format version 99"):
        export.deserialize(other_version)
    unknown = bytearray(bytes(blob).replace(b'"mul"', b'"zzz"'))
    with pytest.raises(ValueError, match="primitive `zzz`"):
        export.deserialize(unknown)
    wrong_type = bytearray(bytes(blob).replace(b'"float32"', b'"float64"', 1))
    with pytest.raises(ValueError, match="deserialize"):
        export.deserialize(wrong_type)
    with pytest.raises(TypeError, match="bytearray"):
        export.deserialize("not bytes")


def _with_header(blob, edit=lambda header: None, extra=b""):
    """``blob`` with its JSON header changed by ``edit`` and ``extra`` bytes appended."""
    start = len(serialization.MAGIC) + serialization._PREFIX.size
    version, length = serialization._PREFIX.unpack(blob[len(serialization.MAGIC):start])
    header = json.loads(bytes(blob[start:start + length]))
    edit(header)
    text = json.dumps(header).encode()
    return bytearray(serialization.MAGIC + serialization._PREFIX.pack(version, len(text))
                     + text + bytes(blob[start + length:]) + extra)


def _set(path, value):
    def edit(header):
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, extra, match", [
    (_set(["arrays", 0, 1], [2 ** 70]), b"", "outside the data"),
    (_set(["arrays", 0, 1], [True]), b"", "malformed shape"),
    (_set(["arrays", 0, 2], 1), b"", "outside the data"),
    (lambda header: None, b"\0" * 8, "8 bytes follow the last array"),
    (_set(["exported", "in_avals", 0, 0], [True, True]), b"", "malformed shape"),
    (_set(["exported", "in_avals", 0, 2], "no"), b"", "malformed abstract value"),
    (_set(["exported", "calling_convention_version"], 99), b"",
     r"calling convention version 99, outside the range of supported versions \[9..10\]"),
    (_set(["exported", "disabled_safety_checks"], ["bogus"]), b"", "unknown kind"),
    (_set(["exported", "module_kept_var_idx"], [3]), b"", "kept argument indices"),
    (_set(["exported", "platforms"], "cpu"), b"", "malformed platforms"),
    (_set(["exported", "fun_name"], ["f"]), b"", "malformed function name"),
    (_set(["exported", "nr_devices"], 0), b"", "number of devices"),
    (_set(["exported", "program", "jaxpr", "eqns", 0, 1], {"x": {"record": ["os:path", {}]}}),
     b"", "unknown class"),
])
def test_malformed_fields_raise_value_errors(edit, extra, match):
    blob = export.export(jax.jit(lambda x: x * jnp.arange(2.0)))(jnp.ones(2)).serialize()
    export.deserialize(_with_header(blob))  # (the rewriting alone keeps it readable)
    with pytest.raises(ValueError, match=match):
        export.deserialize(_with_header(blob, edit, extra))


def test_json_nested_too_deep_raises_value_error():
    text = b"[" * 100_000 + b"]" * 100_000
    blob = serialization.MAGIC + serialization._PREFIX.pack(serialization.FORMAT_VERSION,
                                                            len(text)) + text
    with pytest.raises(ValueError, match="malformed serialized Exported"):
        export.deserialize(bytearray(blob))


def test_loop_bodies_are_typechecked_when_read():
    def f(x):
        return lax.scan(lambda c, e: (c + jnp.sin(e), c), 0.0, x)
    blob = export.export(jax.jit(f))(jnp.ones(3)).serialize()

    def sin_gives_int(header):
        body = header["exported"]["program"]["jaxpr"]["eqns"][0][1]["jaxpr"]["jaxpr"]
        sin = next(e for e in body["eqns"] if e[0] == "sin")
        sin[3][0][1] = "int32"
    with pytest.raises(ValueError, match="binder has type i32"):
        export.deserialize(_with_header(blob, sin_gives_int))


def test_serialize_beyond_the_vjps_read_back():
    back = round_trip(export.export(jax.jit(jnp.sin))(jnp.ones(2)), vjp_order=1)
    assert back.vjp().has_vjp() is False
    with pytest.raises(ValueError, match="no VJP of that order"):
        back.serialize(vjp_order=2)
    back.serialize(vjp_order=1)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float8_e4m3fn,
                                   jnp.float8_e5m2, jnp.int4, jnp.uint4, np.bool_,
                                   np.complex64, np.int8, np.uint32])
def test_arguments_and_constants_of_every_dtype_round_trip(dtype):
    const = np.array([[0, 1, -1]]).astype(dtype)
    exported = export.export(jax.jit(lambda a: (a, const, a[0, 1])))(
        jax.ShapeDtypeStruct((1, 3), dtype))
    back = round_trip(exported)
    assert back.in_avals == exported.in_avals and back.out_avals == exported.out_avals
    arg = np.array([[1, 0, 1]]).astype(dtype)
    for got, want in zip(back.call(arg), (arg, const, arg[0, 1])):
        assert np.asarray(got).dtype == np.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(got), want)


def test_deserialize_in_another_process(tmp_path):
    params, x = mlp_args()
    path = tmp_path / "mlp.bin"
    path.write_bytes(export.export(jax.jit(mlp_loss))(params, x).serialize(vjp_order=1))
    np.savez(tmp_path / "args.npz", w=params["w"], b=params["b"], x=x)
    code = f"""
import numpy as np, tinyjax as jax
from tinyjax import export
exp = export.deserialize(bytearray(open({str(path)!r}, "rb").read()))
a = np.load({str(tmp_path / "args.npz")!r})
params = {{"w": a["w"], "b": a["b"]}}
print(repr(float(exp.call(params, a["x"]))))
print(repr(np.asarray(jax.grad(exp.call)(params, a["x"])["b"]).tolist()))
"""
    proc = run_python(code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    value, grad_b = proc.stdout.strip().splitlines()[-2:]
    np.testing.assert_allclose(float(value), float(mlp_loss(params, x)), rtol=1e-6)
    np.testing.assert_allclose(eval(grad_b), jax.grad(mlp_loss)(params, x)["b"], rtol=1e-5)


@settings(max_examples=8, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       dtype=st.sampled_from([np.float32, np.int32, np.bool_, np.uint8, jnp.bfloat16]))
def test_round_trip_shapes_and_dtypes(shape, dtype):
    def f(x):
        y = jnp.where(x, x, x)  # keeps the dtype
        return {"y": y, "r": jnp.sum(y.astype(jnp.float32)), "s": y.reshape(-1)[::-1]}
    x = np.asarray(rng.integers(0, 3, size=shape)).astype(dtype)
    back = round_trip(export.export(jax.jit(f))(x))
    assert_trees_close(back.call(x), f(x))


def test_symbolic_shapes_are_concrete_only():
    assert export.symbolic_shape("3, 4") == (3, 4)
    assert export.symbolic_shape("(3, _)", like=(3, 5)) == (3, 5)
    assert export.symbolic_shape("3, ...", like=(3, 5, 6)) == (3, 5, 6)
    assert not export.is_symbolic_dim(3)
    specs = export.symbolic_args_specs([np.ones((2, 3)), np.ones(4)], ["_, 3", None])
    assert specs == [jax.ShapeDtypeStruct((2, 3), np.float32),
                     jax.ShapeDtypeStruct((4,), np.float32)]
    with pytest.raises(NotImplementedError, match="symbolic dimensions"):
        export.symbolic_shape("b, 4")
    with pytest.raises(NotImplementedError, match="symbolic dimensions"):
        export.SymbolicScope(["a >= 2"])
    with pytest.raises(ValueError, match="different size 4"):
        export.symbolic_shape("3, 4", like=(3, 5))
    with pytest.raises(ValueError, match="syntax error"):
        export.symbolic_shape("3, ?")


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_read_back_program_runs_on_every_device(device):
    h0 = jnp.asarray(rng.standard_normal(3), jnp.float32)
    xs = jnp.asarray(rng.standard_normal((6, 3)), jnp.float32)
    back = round_trip(export.export(jax.jit(rnn), platforms=["cpu", "interp", "cuda"])(h0, xs),
                      vjp_order=1)
    h0_d, xs_d = jax.device_put(h0, device), jax.device_put(xs, device)
    got = jax.jit(back.call, device=device)(h0_d, xs_d)
    np.testing.assert_allclose(np.asarray(got), np.asarray(rnn(h0, xs)), rtol=1e-5)
    g = jax.jit(jax.grad(back.call), device=device)(h0_d, xs_d)
    np.testing.assert_allclose(np.asarray(g), np.asarray(jax.grad(rnn)(h0, xs)), rtol=1e-5)


def test_typed_key_arrays_in_the_calling_convention_round_trip():
    key = jax.random.key(3)
    f = jax.jit(lambda k, x: (jax.random.split(k)[0], x * jax.random.uniform(k)))
    exported = export.export(f)(key, 2.0)
    back = round_trip(exported, vjp_order=1)
    assert back.in_tree == exported.in_tree and back.out_tree == exported.out_tree
    (new_key, value), (want_key, want_value) = back.call(key, 2.0), f(key, 2.0)
    np.testing.assert_array_equal(jax.random.key_data(new_key), jax.random.key_data(want_key))
    np.testing.assert_allclose(value, want_value)
    np.testing.assert_allclose(jax.grad(lambda x: back.call(key, x)[1])(2.0),
                               jax.grad(lambda x: f(key, x)[1])(2.0))
