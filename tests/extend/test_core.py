"""jax.extend.core: a primitive defined outside tinyjax, with JAX's rule conventions
registered in tinyjax's tables, works eagerly and under jit (compiled through
``mlir.lower_fun``), grad (jvp + transpose) and vmap; the trace-state, aval and jaxpr
helpers libraries use."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.backends import get_backend
from tinyjax.compat import mlir
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.core import ShapedArray
from tinyjax.extend import core as jex
from tinyjax.extend import linear_util as lu
from tinyjax.interpreters import ad, batching
from tinyjax.test_util import check_grads

# scaled_square(x, a=...) = a * x**2, defined from jax.numpy operations, with JAX-style
# rules: a jvp, a vectorised batching rule, and a lowering by lower_fun.
scaled_square_p = jex.Primitive("scaled_square")
scaled_square_p.def_impl(lambda x, *, a: a * jnp.square(x))
scaled_square_p.def_abstract_eval(lambda x, *, a: ShapedArray(x.shape, x.dtype))


def _scaled_square_jvp(primals, tangents, *, a):
    (x,), (t,) = primals, tangents
    out = scaled_square_p.bind(x, a=a)
    return out, ad.Zero.from_primal(out) if type(t) is ad.Zero else 2 * a * x * t


ad.primitive_jvps[scaled_square_p] = _scaled_square_jvp
batching.primitive_batchers[scaled_square_p] = (
    lambda vals, dims, *, a: (scaled_square_p.bind(vals[0], a=a), dims[0]))
mlir.register_lowering(scaled_square_p, mlir.lower_fun(lambda x, *, a: a * x * x,
                                                       multiple_results=False))

# twice(x) = 2 x: linear, so reverse mode needs its transpose (JAX's convention: the
# linear input arrives as an UndefinedPrimal); batched by the older axis-aware rule form.
twice_p = jex.Primitive("twice")
twice_p.def_impl(lambda x: 2 * x)
twice_p.def_abstract_eval(lambda x: ShapedArray(x.shape, x.dtype))
ad.primitive_jvps[twice_p] = lambda p, t: (twice_p.bind(*p), twice_p.bind(
    ad.instantiate_zeros(t[0])))


def _twice_transpose(ct, x):
    assert ad.is_undefined_primal(x)
    return [None if type(ct) is ad.Zero else twice_p.bind(ct)]


ad.primitive_transposes[twice_p] = _twice_transpose
axis_sizes = []


def _twice_axis_rule(axis_size, axis_name, trace_type, vals, dims):
    axis_sizes.append(axis_size)
    return twice_p.bind(vals[0]), dims[0]


batching.axis_primitive_batchers[twice_p] = _twice_axis_rule
mlir.register_lowering(twice_p, mlir.lower_fun(lambda x: x + x, multiple_results=False))


def f(x):
    return jnp.sum(twice_p.bind(scaled_square_p.bind(jnp.sin(x), a=1.5)))


X = np.array([0.3, -1.2, 2.0], np.float32)


def test_eager_runs_the_impl_on_arrays():
    out = scaled_square_p.bind(jnp.asarray(X), a=2.0)
    assert isinstance(out, jax.Array)
    np.testing.assert_allclose(np.asarray(out), 2 * X ** 2, rtol=1e-6)
    assert float(f(X)) == pytest.approx(float(np.sum(3 * np.sin(X) ** 2)), rel=1e-6)


def test_jit_compiles_the_lowering_with_tinyjaxs_rules():
    closed = jax.make_jaxpr(f)(X)
    assert {e.primitive.name for e in closed.jaxpr.eqns} >= {"scaled_square", "twice"}
    compile_jaxpr(closed, get_backend("cpu"))  # raises NotImplementedError without a lowering
    np.testing.assert_allclose(float(jax.jit(f)(X)), float(f(X)), rtol=1e-6)


def test_grad_through_jvp_and_transpose_rules():
    check_grads(f, (X.astype(np.float64),), order=2, modes=("fwd", "rev"))
    g = jax.jit(jax.grad(f))(X)
    np.testing.assert_allclose(np.asarray(g), 6 * np.sin(X) * np.cos(X), rtol=1e-5)


def test_vmap_uses_both_batching_rule_forms():
    xs = np.stack([X, 2 * X, -X])
    axis_sizes.clear()
    out = jax.vmap(f)(xs)
    np.testing.assert_allclose(np.asarray(out), [float(f(x)) for x in xs], rtol=1e-6)
    assert axis_sizes == [3]
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(jax.grad(f)))(xs)),
                               [np.asarray(jax.grad(f)(x)) for x in xs], rtol=1e-5)


def test_opaque_trace_state_tells_traces_apart():
    outside = jex.get_opaque_trace_state()
    assert outside == jex.get_opaque_trace_state()
    seen = []
    jax.jit(lambda x: seen.append(jex.get_opaque_trace_state()) or x)(1.0)
    jax.grad(lambda x: seen.append(jex.get_opaque_trace_state()) or x)(1.0)
    assert seen[0] != outside and seen[1] != outside and seen[0] != seen[1]


def test_mapped_and_unmapped_avals():
    aval = ShapedArray((4, 3, 5), np.float32)
    assert jex.mapped_aval(3, 1, aval).shape == (4, 5)
    assert jex.unmapped_aval(7, 0, jex.mapped_aval(3, 1, aval)).shape == (7, 4, 5)
    assert jex.mapped_aval(3, None, aval) is aval
    with pytest.raises(ValueError, match="axis 1 of f32\\[4,3,5\\] has size 3, not 2"):
        jex.mapped_aval(2, 1, aval)


def test_jaxpr_helpers():
    closed = jax.make_jaxpr(lambda x: jax.lax.cond(x > 0, jnp.sin, jnp.cos, x))(1.0)
    cond = closed.jaxpr.eqns[-1]
    assert len(jex.jaxprs_in_params(cond.params)) == 2
    assert len(jex.subjaxprs(closed.jaxpr)) == 2
    assert jex.jaxpr_as_fun(closed)(0.5)[0] == pytest.approx(np.sin(0.5), rel=1e-6)
    with jex.take_current_trace() as outer:
        assert jax.core.is_eager()
    assert outer is jex.find_top_trace(())


def test_linear_util_transformation():
    @lu.transformation
    def add_one(n, x):
        out = yield (x + n,), {}
        yield out * 10

    wrapped = add_one(lu.wrap_init(lambda x: x * 2), 1)
    assert wrapped.call_wrapped(3) == 80



def test_trace_main_tells_tracers_of_this_transform_from_others():
    # Equinox's filter_jvp keeps the outputs whose tracer's ``_trace.main`` is the top
    # trace's ``main``
    found = []

    def outer(x):
        outer_main = jex.find_top_trace((x,)).main

        def inner(y):
            inner_main = jex.find_top_trace((y,)).main
            found.append((x._trace.main is outer_main, y._trace.main is inner_main,
                          y._trace.main is outer_main))
            return y * x
        return jax.jvp(inner, (x,), (1.0,))[1]

    jax.jvp(outer, (1.0,), (1.0,))
    jax.grad(outer)(1.0)
    assert found == [(True, True, False)] * 2


# scale_by(s, x) = s * x: linear in x; its transpose rule reads the type of the known
# factor ``s`` (``s.aval``), as equinox's rules do, also when ``s`` is a literal
scale_by_p = jex.Primitive("scale_by")
scale_by_p.def_impl(lambda s, x: s * x)
scale_by_p.def_abstract_eval(lambda s, x: ShapedArray(x.shape, x.dtype))
ad.primitive_jvps[scale_by_p] = lambda p, t: (
    scale_by_p.bind(*p), scale_by_p.bind(p[0], ad.instantiate_zeros(t[1])))


def _scale_by_transpose(ct, s, x):
    assert ad.is_undefined_primal(x) and s.aval.shape == ()
    return [None, scale_by_p.bind(s, ct)]


ad.primitive_transposes[scale_by_p] = _scale_by_transpose


def test_transpose_rules_get_literal_operands_as_arrays():
    f = lambda x: scale_by_p.bind(3.0, x).sum()
    np.testing.assert_allclose(jax.grad(f)(jnp.ones(2)), [3.0, 3.0])
    np.testing.assert_allclose(jax.jit(jax.grad(f))(jnp.ones(2)), [3.0, 3.0])


def test_rebinding_every_equation_through_get_bind_params():
    # an interpreter written as JAX's (equinox's finalise_eval_jaxpr) evaluates a jaxpr
    # with loops, branches and custom derivatives, and grad still sees the custom rule
    @jax.custom_jvp
    def f(x):
        return jnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), 10.0 * t[0]))

    def program(x):
        y = jax.lax.fori_loop(0, 3, lambda i, c: c + f(c), x)
        return jax.lax.cond(y > 0, jnp.cos, jnp.sin, y)

    def interpret(closed, *args):
        env = dict(zip(closed.jaxpr.invars, args))
        env.update(zip(closed.jaxpr.constvars, closed.consts))
        read = lambda v: v.val if isinstance(v, jex.Literal) else env[v]
        for eqn in closed.jaxpr.eqns:
            out = eqn.primitive.bind(*map(read, eqn.invars),
                                     **eqn.primitive.get_bind_params(eqn.params))
            env.update(zip(eqn.outvars, out if eqn.primitive.multiple_results else [out]))
        return [read(v) for v in closed.jaxpr.outvars]

    closed = jax.make_jaxpr(program)(0.5)
    np.testing.assert_allclose(interpret(closed, 0.5)[0], program(0.5), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda x: interpret(closed, x)[0])(0.5),
                               jax.grad(program)(0.5), rtol=1e-6)


def test_every_primitive_is_an_extend_core_primitive():
    # (as in JAX, where it is the class of all primitives)
    assert isinstance(jax.lax.add_p, jex.Primitive) and isinstance(twice_p, jex.Primitive)
    assert issubclass(type(jax.lax.sin_p), jex.Primitive)
    assert not isinstance("add", jex.Primitive)


def test_binding_primitives_eagerly_on_python_and_numpy_scalars():
    # as JAX: a Python scalar is an array of its weak type, a numpy scalar of its dtype
    out = jax.lax.add_p.bind(1, 2)
    assert int(out) == 3 and out.dtype == np.int32 and out.weak_type
    out = jax.lax.add_p.bind(np.float32(1.5), 2.0)
    assert float(out) == 3.5 and out.dtype == np.float32 and not out.weak_type
    assert bool(jax.lax.not_p.bind(False))
    with pytest.raises(TypeError, match="same dtypes"):
        jax.lax.add_p.bind(1.5, 2)


def test_equation_effects_name_the_effectful_primitives_inside():
    def f(x):
        jax.debug.callback(lambda v: None, x)
        return jax.lax.cond(x > 0, lambda v: jax.debug.callback(lambda u: None, v) or v,
                            lambda v: v, x) + 1.0
    closed = jax.make_jaxpr(f)(1.0)
    effectful = [e for e in closed.jaxpr.eqns if e.effects]
    assert [e.primitive.name for e in effectful] == ["debug_callback", "cond"]
    assert all(not e.effects for e in closed.jaxpr.eqns if e not in effectful)
    assert closed.jaxpr.effects == effectful[0].effects | effectful[1].effects != frozenset()
