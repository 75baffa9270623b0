"""custom_vjp / custom_jvp rules defined with ``symbolic_zeros=True``: the fwd rule sees
``CustomVJPPrimal(value, perturbed)`` leaves, the rules see ``SymbolicZero`` for the
(co)tangents that are zero and may return them -- under grad, jit and vmap alike."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.custom_derivatives import CustomVJPPrimal, SymbolicZero


def _product_and_sum(log: list):
    """``f(x, y) = (x * y, x + y)`` whose rules record what they were given in ``log``."""
    @jax.custom_vjp
    def f(x, y):
        return x * y, x + y

    def fwd(x, y):
        log.append(("fwd", type(x), type(y), x.perturbed, y.perturbed))
        return f(x.value, y.value), (x.value, y.value)

    def bwd(res, cts):
        x, y = res
        ct_prod, ct_sum = cts
        log.append(("bwd", isinstance(ct_prod, SymbolicZero), isinstance(ct_sum, SymbolicZero)))
        gx, gy = SymbolicZero.from_primal_value(x), None
        if not isinstance(ct_prod, SymbolicZero):
            gx, gy = ct_prod * y, ct_prod * x
        if not isinstance(ct_sum, SymbolicZero):
            gx = ct_sum if isinstance(gx, SymbolicZero) else gx + ct_sum
            gy = ct_sum if gy is None else gy + ct_sum
        return gx, gy

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return f


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("argnums,output,expected_grads", [
    (0, 0, (3.0,)), (1, 0, (2.0,)), ((0, 1), 0, (3.0, 2.0)), ((0, 1), 1, (1.0, 1.0)),
])
def test_vjp_rules_see_perturbation_and_symbolic_cotangents(jit, argnums, output,
                                                           expected_grads):
    log: list = []
    f = _product_and_sum(log)
    g = jax.grad(lambda x, y: f(x, y)[output], argnums=argnums)
    g = jax.jit(g) if jit else g
    grads = g(2.0, 3.0)
    grads = grads if isinstance(grads, tuple) else (grads,)
    np.testing.assert_allclose([float(v) for v in grads], expected_grads)
    nums = (argnums,) if isinstance(argnums, int) else argnums
    assert log[0] == ("fwd", CustomVJPPrimal, CustomVJPPrimal, 0 in nums, 1 in nums)
    # the output not differentiated has a symbolic zero cotangent
    assert log[1] == ("bwd", output != 0, output != 1)


def test_vjp_rules_under_vmap_of_grad_and_grad_of_vmap():
    log: list = []
    f = _product_and_sum(log)
    xs, ys = jnp.array([1.0, 2.0, 3.0]), jnp.array([4.0, 5.0, 6.0])
    per_example = jax.vmap(jax.grad(lambda x, y: f(x, y)[0]))(xs, ys)
    np.testing.assert_allclose(np.asarray(per_example), np.asarray(ys))
    assert log == [("fwd", CustomVJPPrimal, CustomVJPPrimal, True, False),
                   ("bwd", False, True)]
    log.clear()
    total = jax.grad(lambda x, y: jax.vmap(f)(x, y)[1].sum(), argnums=(0, 1))(xs, ys)
    for g in total:
        np.testing.assert_allclose(np.asarray(g), np.ones(3))
    assert log == [("fwd", CustomVJPPrimal, CustomVJPPrimal, True, True),
                   ("bwd", True, False)]


def test_perturbed_flags_follow_pytree_leaves():
    seen: list = []

    @jax.custom_vjp
    def f(params):
        return params["w"] * params["b"]

    def fwd(params):
        seen.append({k: v.perturbed for k, v in params.items()})
        return f({k: v.value for k, v in params.items()}), params["w"].value

    def bwd(w, ct):
        return ({"w": SymbolicZero.from_primal_value(w), "b": ct * w},)

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    # only "b" depends on the differentiated argument; "w" is closed over
    w = jnp.float32(3.0)
    grad_b = jax.grad(lambda b: f({"w": w, "b": b}))(jnp.float32(2.0))
    assert float(grad_b) == 3.0
    assert seen == [{"w": False, "b": True}]


def test_symbolic_zero_returned_by_bwd_is_a_zero_gradient():
    @jax.custom_vjp
    def f(x, y):
        return x * y

    def fwd(x, y):
        return f(x.value, y.value), None

    def bwd(_, ct):
        return SymbolicZero(jax.typeof(ct)), ct * 7.0

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    gx, gy = jax.grad(f, argnums=(0, 1))(2.0, 3.0)
    assert (float(gx), float(gy)) == (0.0, 7.0)


def test_python_scalar_residuals_reach_bwd_unchanged():
    got: list = []

    @jax.custom_vjp
    def f(x):
        return 2.0 * x

    def fwd(x):
        return f(x.value), (x.perturbed, 3, x.value)

    def bwd(res, ct):
        got.append(res[:2])
        return (ct * res[1],)

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    assert float(jax.jit(jax.grad(f))(1.0)) == 3.0
    assert got == [(True, 3)] and type(got[0][0]) is bool


def test_without_symbolic_zeros_rules_see_values_and_dense_zeros():
    seen: list = []

    @jax.custom_vjp
    def f(x, y):
        return x * y, x

    def fwd(x, y):
        seen.append((type(x), type(y)))
        return f(x, y), (x, y)

    def bwd(res, cts):
        seen.append(tuple(float(c) for c in cts))
        return cts[0] * res[1] + cts[1], cts[0] * res[0]

    f.defvjp(fwd, bwd)
    assert float(jax.grad(lambda x, y: f(x, y)[0])(2.0, 3.0)) == 3.0
    assert seen[0][0] is not CustomVJPPrimal and seen[1] == (1.0, 0.0)


def _scaled(log: list):
    """``f(x, y) = 2 x + 3 y`` whose jvp rule takes and returns symbolic zeros."""
    @jax.custom_jvp
    def f(x, y):
        return 2.0 * x + 3.0 * y

    @f.defjvp
    def f_jvp(primals, tangents):
        x_dot, y_dot = tangents
        log.append((isinstance(x_dot, SymbolicZero), isinstance(y_dot, SymbolicZero)))
        if isinstance(x_dot, SymbolicZero) and isinstance(y_dot, SymbolicZero):
            return f(*primals), SymbolicZero(x_dot.aval)
        out = 0.0
        if not isinstance(x_dot, SymbolicZero):
            out = out + 2.0 * x_dot
        if not isinstance(y_dot, SymbolicZero):
            out = out + 3.0 * y_dot
        return f(*primals), out

    f.defjvp(f_jvp, symbolic_zeros=True)
    return f


def test_jvp_rule_sees_symbolic_zero_tangents():
    log: list = []
    f = _scaled(log)
    assert float(jax.grad(f, argnums=1)(1.0, 1.0)) == 3.0
    assert float(jax.jvp(lambda x: f(x, 5.0), (1.0,), (1.0,))[1]) == 2.0
    assert log == [(True, False), (False, True)]


def test_jvp_rule_with_symbolic_zeros_under_vmap():
    log: list = []
    f = _scaled(log)
    xs = jnp.arange(3.0)
    # vmap outside jvp: the rule runs once, batched, on an unbatched symbolic zero
    tangents = jax.vmap(lambda x: jax.jvp(lambda a: f(a, 1.0), (x,), (1.0,))[1])(xs)
    np.testing.assert_allclose(np.asarray(tangents), [2.0, 2.0, 2.0])
    # jvp outside vmap: the tangent of y is a zero of the batched type
    out, t = jax.jvp(lambda x: jax.vmap(f)(x, xs), (xs,), (jnp.ones(3),))
    np.testing.assert_allclose(np.asarray(out), 5.0 * np.arange(3.0))
    np.testing.assert_allclose(np.asarray(t), [2.0, 2.0, 2.0])
    assert log == [(False, True), (False, True)]


def test_jvp_rule_returning_symbolic_zero_under_vmap():
    @jax.custom_jvp
    def stop(x):
        return x

    @stop.defjvp
    def stop_jvp(primals, tangents):
        return primals[0], SymbolicZero(jax.typeof(primals[0]))

    stop.defjvp(stop_jvp, symbolic_zeros=True)
    xs = jnp.arange(3.0)
    _, t = jax.jvp(lambda x: jax.vmap(lambda a: stop(a) + a)(x), (xs,), (jnp.ones(3),))
    np.testing.assert_allclose(np.asarray(t), np.ones(3))
    assert float(jax.grad(lambda x: stop(x) * 2.0 + x)(1.0)) == 1.0
