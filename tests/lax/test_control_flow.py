"""Structured control flow: cond, switch, while_loop, fori_loop, scan, map,
associative_scan — values against Python loops, derivatives against finite
differences, vmap against loops, jaxpr structure and error messages."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.test_util import check_grads


RNG = np.random.default_rng(0)
X3 = RNG.standard_normal(3)
W33 = RNG.standard_normal((3, 3))
XS53 = RNG.standard_normal((5, 3))


def _prims(closed):
    return [e.primitive.name for e in closed.eqns]


# ---------------------------------------------------------------------------
# Forward values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("pred", [True, False, 0, 3, np.int32(-1), np.bool_(False)])
def test_cond_values(pred):
    out = lax.cond(pred, lambda a, b: (a + b, a * b), lambda a, b: (a - b, a / b), 3.0, 2.0)
    want = (5.0, 6.0) if pred else (1.0, 1.5)
    np.testing.assert_allclose(out, want)
    jitted = jax.jit(lambda p, a: lax.cond(p, lambda x: x * 2, lambda x: x + 10, a))
    np.testing.assert_allclose(jitted(pred, 1.5), 3.0 if pred else 11.5)


def test_cond_no_operands_operand_kw_and_deprecated_form():
    assert lax.cond(True, lambda: 1.0, lambda: 2.0) == 1.0
    assert lax.cond(False, lambda x: x, lambda x: -x, operand=4.0) == -4.0
    # cond(pred, true_operand, true_fun, false_operand, false_fun)
    assert lax.cond(True, 2.0, lambda x: x * 10, 3.0, lambda x: x) == 20.0
    assert lax.cond(False, 2.0, lambda x: x * 10, 3.0, lambda x: x) == 3.0


def test_cond_closure_and_pytrees_under_jit():
    w = jnp.arange(3.0)

    @jax.jit
    def f(p, d):
        return lax.cond(p, lambda d: {"a": d["a"] * w, "b": d["b"]},
                        lambda d: {"a": d["a"] + w, "b": -d["b"]}, d)

    out = f(False, {"a": jnp.ones(3), "b": 2.0})
    np.testing.assert_allclose(out["a"], [1, 2, 3])
    np.testing.assert_allclose(out["b"], -2.0)


@pytest.mark.parametrize("index", [-3, 0, 1, 2, 7])
def test_switch_clamps_index(index):
    branches = [lambda x: x + 1, lambda x: x * 10, lambda x: -x]
    want = branches[min(max(index, 0), 2)](2.0)
    assert lax.switch(index, branches, 2.0) == want
    assert jax.jit(lambda i: lax.switch(i, branches, 2.0))(index) == want


def test_while_loop_values_and_pytree_carry():
    def collatz_steps(n):
        steps = 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        return steps

    def f(n):
        body = lambda c: (lax.select(c[0] % 2 == 0, c[0] // 2, 3 * c[0] + 1), c[1] + 1)
        return lax.while_loop(lambda c: c[0] != 1, body, (n, 0))[1]

    for n in (1, 6, 27):
        assert int(f(n)) == collatz_steps(n)
        assert int(jax.jit(f)(n)) == collatz_steps(n)


def test_fori_loop_static_and_traced_bounds():
    body = lambda i, c: c * 2.0 + i
    ref = lambda lo, hi, c: [c := c * 2.0 + i for i in range(lo, hi)][-1] if hi > lo else c
    assert float(lax.fori_loop(2, 6, body, 1.0)) == ref(2, 6, 1.0)
    assert float(lax.fori_loop(5, 2, body, 1.0)) == 1.0
    # static bounds are a scan, traced bounds a while loop
    assert "scan" in _prims(jax.make_jaxpr(lambda c: lax.fori_loop(0, 3, body, c))(1.0))
    traced = jax.make_jaxpr(lambda n, c: lax.fori_loop(0, n, body, c))(3, 1.0)
    assert "while" in _prims(traced)
    assert float(jax.jit(lambda n, c: lax.fori_loop(1, n, body, c))(4, 1.0)) == ref(1, 4, 1.0)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(0, 6), reverse=st.booleans())
def test_scan_matches_python_loop(n, reverse):
    xs = {"a": np.random.default_rng(n).standard_normal((n, 2)).astype(np.float32),
          "b": np.arange(n, dtype=np.int32)}

    def step(c, x):
        s, k = c
        s = s * 0.5 + x["a"] * x["b"]
        return (s, k + 1), (s.sum(), x["b"] * 2)

    (s, k), (ys_sum, ys_b) = lax.scan(step, (np.zeros(2, np.float32), 0), xs, reverse=reverse)
    c, outs = (np.zeros(2, np.float32), 0), []
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        c, y = step(c, {"a": xs["a"][i], "b": xs["b"][i]})
        outs.append(y)
    if reverse:
        outs.reverse()
    np.testing.assert_allclose(s, c[0], rtol=1e-5)
    assert int(k) == n
    np.testing.assert_allclose(ys_sum, [float(o[0]) for o in outs], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ys_b, np.asarray([int(o[1]) for o in outs], np.int32)
                                  .reshape(n))


def test_scan_length_without_xs_and_jit():
    c, ys = lax.scan(lambda c, _: (c + 1.0, c * c), 1.0, None, length=4)
    assert float(c) == 5.0
    np.testing.assert_allclose(ys, [1, 4, 9, 16])
    c2, ys2 = jax.jit(lambda c: lax.scan(lambda c, _: (c + 1.0, c * c), c, None,
                                         length=4))(1.0)
    np.testing.assert_allclose(ys2, ys)


def test_map_and_batch_size():
    xs = jnp.arange(10.0).reshape(5, 2)
    f = lambda x: {"s": x.sum(), "p": x * x}
    for bs in (None, 2, 5, 7):
        out = lax.map(f, xs, batch_size=bs)
        np.testing.assert_allclose(out["s"], np.asarray(xs).sum(1))
        np.testing.assert_allclose(out["p"], np.asarray(xs) ** 2)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 9), reverse=st.booleans(), axis=st.sampled_from([0, 1, -1]))
def test_associative_scan_matches_cumulative(n, reverse, axis):
    x = np.random.default_rng(n).standard_normal((n, n + 1, 2)).astype(np.float32)
    out = lax.associative_scan(lax.add, x, reverse=reverse, axis=axis)
    flip = (lambda a: np.flip(a, axis)) if reverse else (lambda a: a)
    np.testing.assert_allclose(out, flip(np.cumsum(flip(x), axis)), rtol=1e-5, atol=1e-5)
    # a pytree and a non-commutative operator: composition of affine maps a*x+b
    a, b = x[..., 0], x[..., 1]
    ca, cb = lax.associative_scan(lambda p, q: (p[0] * q[0], q[0] * p[1] + q[1]), (a, b))
    ra, rb = [a[0]], [b[0]]
    for i in range(1, n):
        ra.append(ra[-1] * a[i])
        rb.append(a[i] * rb[-1] + b[i])
    np.testing.assert_allclose(ca, np.stack(ra), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cb, np.stack(rb), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# Derivatives
# ---------------------------------------------------------------------------


def f_cond(x, w):
    return lax.cond(jnp.sum(x) > 0, lambda a, b: jnp.tanh(b @ a), lambda a, b: a * jnp.sum(b),
                    x, w)


def f_scan(c, w, xs):
    def body(c, x):
        h = jnp.tanh(w @ c + x)
        return h, jnp.sum(h * x)
    return lax.scan(body, c, xs)


def test_grads_cond(x64):
    check_grads(f_cond, (X3, W33), 1)
    check_grads(f_cond, (-X3, W33), 1)


@pytest.mark.parametrize("index", [-1, 1, 2, 5])
def test_grads_switch(x64, index):
    def f(x, w):
        return lax.switch(index, [jnp.sin, lambda a: w @ a, lambda a: a * a * w[0]], x)
    check_grads(f, (X3, W33), 1)


@pytest.mark.parametrize("reverse", [False, True])
def test_grads_scan(x64, reverse):
    check_grads(lambda c, w, xs: f_scan(c, w, xs[::-1] if reverse else xs), (X3, W33, XS53), 1)
    check_grads(lambda c, xs: lax.scan(lambda c, x: (c * x, c), c, xs, reverse=reverse),
                (X3, XS53), 1)


def test_grads_fori_loop_static(x64):
    check_grads(lambda x, w: lax.fori_loop(0, 4, lambda i, c: jnp.sin(w @ c) + i, x),
                (X3, W33), 1)


def test_grads_while_loop_forward_only(x64):
    def f(x, w):
        body = lambda c: (c[0] + 1, jnp.sin(w @ c[1]))
        return lax.while_loop(lambda c: c[0] < 4, body, (0, x))[1]
    check_grads(f, (X3, W33), 1, modes=("fwd",))


def test_grads_nested_and_second_order(x64):
    def nested(c, xs):
        def body(c, x):
            c = lax.cond(x[0] > 0, lambda c: c * x, lambda c: jnp.sin(c) + x, c)
            inner, _ = lax.scan(lambda a, b: (a * 0.9 + b, None), c, xs[:2])
            return inner, c.sum()
        return lax.scan(body, c, xs)
    check_grads(nested, (X3, XS53), 1)
    check_grads(f_scan, (X3, W33, XS53[:3]), 2)
    check_grads(f_cond, (X3, W33), 2)


def test_grad_under_jit_and_jit_under_grad():
    f = lambda x: lax.fori_loop(0, 3, lambda i, c: c * c, x)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(1.1), 8 * 1.1 ** 7, rtol=1e-5)
    np.testing.assert_allclose(jax.grad(jax.jit(f))(1.1), 8 * 1.1 ** 7, rtol=1e-5)


def test_reverse_mode_of_while_loop_raises():
    f = lambda x: lax.while_loop(lambda c: c < 10.0, lambda c: c * 2.0, x)
    np.testing.assert_allclose(jax.jvp(f, (1.0,), (1.0,))[1], 16.0)
    msg = "Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop"
    with pytest.raises(ValueError, match=msg):
        jax.grad(f)(1.0)
    with pytest.raises(ValueError, match="Try using lax.scan"):
        jax.jit(jax.grad(lambda x, n: lax.fori_loop(0, n, lambda i, c: c * x, x)))(1.0, 3)


def test_rnn_trained_with_scan_matches_unrolled():
    rng = np.random.default_rng(1)
    T, H, D = 100, 8, 3
    params = {"wh": (rng.standard_normal((H, H)) * 0.3).astype(np.float32),
              "wx": (rng.standard_normal((H, D)) * 0.3).astype(np.float32),
              "b": np.zeros(H, np.float32)}
    xs = rng.standard_normal((T, D)).astype(np.float32)
    target = rng.standard_normal(T).astype(np.float32)

    def cell(p, h, x):
        return jnp.tanh(p["wh"] @ h + p["wx"] @ x + p["b"])

    def loss_scan(p):
        def step(h, x):
            h = cell(p, h, x)
            return h, h.sum()
        _, ys = lax.scan(step, jnp.zeros(H), xs)
        return jnp.mean((ys - target) ** 2)

    def loss_unrolled(p):
        h, ys = jnp.zeros(H), []
        for t in range(T):
            h = cell(p, h, xs[t])
            ys.append(h.sum())
        return jnp.mean((jnp.stack(ys) - target) ** 2)

    p_scan, p_ref = dict(params), dict(params)
    for _ in range(2):
        l1, g1 = jax.value_and_grad(loss_scan)(p_scan)
        l2, g2 = jax.value_and_grad(loss_unrolled)(p_ref)
        np.testing.assert_allclose(l1, l2, rtol=1e-5)
        for k in params:
            np.testing.assert_allclose(g1[k], g2[k], rtol=2e-4, atol=1e-6)
        p_scan = {k: p_scan[k] - 0.1 * g1[k] for k in params}
        p_ref = {k: p_ref[k] - 0.1 * g2[k] for k in params}
    assert float(loss_scan(p_scan)) < float(loss_scan(params))


# ---------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------


def test_vmap_cond_batched_predicate_and_operands():
    ps = np.array([True, False, True, False])
    xs = RNG.standard_normal((4, 2)).astype(np.float32)
    f = lambda p, x: lax.cond(p, lambda y: jnp.sin(y) * 2, lambda y: y - 1, x)
    want = np.stack([f(p, x) for p, x in zip(ps, xs)])
    np.testing.assert_allclose(jax.vmap(f)(ps, xs), want, rtol=1e-6)
    assert "select_n" in _prims(jax.make_jaxpr(jax.vmap(f))(ps, xs))
    # unbatched predicate, batched operand: still one cond
    g = lambda x: lax.cond(True, lambda y: y * 3, lambda y: y, x)
    assert "cond" in _prims(jax.make_jaxpr(jax.vmap(g))(xs))
    np.testing.assert_allclose(jax.vmap(g)(xs), xs * 3, rtol=1e-6)
    idx = np.array([0, 2, 1, 9])
    h = lambda i, x: lax.switch(i, [lambda y: y, lambda y: y * 2, lambda y: -y], x)
    np.testing.assert_allclose(jax.vmap(h)(idx, xs),
                               np.stack([h(i, x) for i, x in zip(idx, xs)]), rtol=1e-6)


def test_vmap_while_loop_batched_predicate_and_carry():
    ns = np.array([0, 3, 1, 5], np.int32)
    xs = RNG.standard_normal(4).astype(np.float32)

    def f(n, x):
        return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, jnp.cos(c[1])), (0, x))

    want = [f(n, x) for n, x in zip(ns, xs)]
    got = jax.vmap(f)(ns, xs)
    np.testing.assert_array_equal(got[0], [int(w[0]) for w in want])
    np.testing.assert_allclose(got[1], [float(w[1]) for w in want], rtol=1e-6)
    # batched carry, unbatched predicate
    g = lambda x: lax.fori_loop(0, jnp.int32(3), lambda i, c: c * x, x)
    np.testing.assert_allclose(jax.vmap(g)(xs), xs ** 4, rtol=1e-5)


def test_vmap_scan_batched_carry_consts_and_xs():
    B = 3
    cs = RNG.standard_normal((B, 2)).astype(np.float32)
    ws = RNG.standard_normal((B, 2, 2)).astype(np.float32)
    xss = RNG.standard_normal((5, B, 2)).astype(np.float32)  # batch on axis 1

    def f(c, w, xs):
        return lax.scan(lambda c, x: (jnp.tanh(w @ c + x), c.sum() * x), c, xs)

    got_c, got_ys = jax.vmap(f, in_axes=(0, 0, 1))(cs, ws, xss)
    for b in range(B):
        c, ys = f(cs[b], ws[b], xss[:, b])
        np.testing.assert_allclose(got_c[b], c, rtol=1e-5)
        np.testing.assert_allclose(got_ys[b], ys, rtol=1e-5)
    # only the consts batched: the carry becomes batched through the body
    got = jax.vmap(lambda w: f(cs[0], w, xss[:, 0]))(ws)
    np.testing.assert_allclose(got[0][1], f(cs[0], ws[1], xss[:, 0])[0], rtol=1e-5)


def test_vmap_of_grad_through_scan():
    xs = RNG.standard_normal((4, 5, 3)).astype(np.float32)
    loss = lambda c, xs: f_scan(c, W33.astype(np.float32), xs)[1].sum()
    g = jax.vmap(jax.grad(loss), in_axes=(None, 0))(X3.astype(np.float32), xs)
    for b in range(4):
        np.testing.assert_allclose(g[b], jax.grad(loss)(X3.astype(np.float32), xs[b]),
                                   rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Jaxprs
# ---------------------------------------------------------------------------


def test_scan_jaxpr_size_independent_of_length():
    def f(n):
        return lambda c: lax.scan(lambda c, _: (jnp.sin(c) * 2.0, c), c, None, length=n)
    small, big = jax.make_jaxpr(f(10))(1.0), jax.make_jaxpr(f(1000))(1.0)
    assert len(small.eqns) == len(big.eqns)
    assert "length=1000" in str(big)
    g = lambda n: jax.grad(lambda c: f(n)(c)[1].sum())
    assert len(jax.make_jaxpr(g(10))(1.0).eqns) == len(jax.make_jaxpr(g(1000))(1.0).eqns)


def test_printing_like_jax():
    text = str(jax.make_jaxpr(lambda x: lax.cond(x > 0, lambda y: y * 2, lambda y: y + 1,
                                                 x))(1.0))
    # JAX's layout: a parameter holding jaxprs breaks the equation over lines
    assert "cond[\n      branches=(\n        { lambda" in text
    text = str(jax.make_jaxpr(lambda x: lax.while_loop(lambda c: c < 1.0, lambda c: c * 2,
                                                       x))(1.0))
    assert "while[\n      body_jaxpr={ lambda" in text and "body_nconsts=0" in text
    assert "      cond_jaxpr={ lambda" in text
    text = str(jax.make_jaxpr(lambda x: lax.scan(lambda c, y: (c + y, c), 0.0, x))(
        jnp.ones(3)))
    assert "scan[\n      jaxpr={ lambda" in text and "length=3" in text
    assert "num_carry=1" in text and "linear" not in text


def test_dce_drops_unused_scan_outputs():
    def f(c, xs):
        (a, b), ys = lax.scan(lambda c, x: ((c[0] + x, jnp.sin(c[1])), c[1] * x), c, xs)
        return a
    closed = jax.make_jaxpr(f)((1.0, 2.0), jnp.ones(3))
    from tinyjax.jaxpr import dce_jaxpr
    new, _ = dce_jaxpr(closed.jaxpr)
    scan_eqn = [e for e in new.eqns if e.primitive.name == "scan"][0]
    assert scan_eqn.params["num_carry"] == 1 and len(scan_eqn.outvars) == 1
    assert "sin" not in str(scan_eqn.params["jaxpr"])


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_cond_errors():
    with pytest.raises(TypeError, match=r"true_fun and false_fun output must have identical "
                                        r"types, got\nDIFFERENT float32\[\] vs. float32\[3\]"):
        lax.cond(True, lambda x: x, lambda x: jnp.ones(3) * x, 1.0)
    with pytest.raises(TypeError, match="true_fun and false_fun output must have same type "
                                        "structure"):
        lax.cond(True, lambda x: (x, x), lambda x: x, 1.0)
    with pytest.raises(TypeError, match=r"lax.cond: Pred must be scalar, got .* of shape "
                                        r"\(2,\)"):
        lax.cond(jnp.array([True, False]), lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="Pred type must be either boolean or number, got "
                                        "float32"):
        lax.cond(jnp.float32(1.0), lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="should be callable"):
        lax.cond(True, 1.0, 2.0)
    with pytest.raises(jax.errors.ConcretizationTypeError, match="lax.cond"):
        jax.jit(lambda x: x if x > 0 else -x)(1.0)


def test_switch_errors():
    with pytest.raises(TypeError, match=r"branch 0 and 2 outputs must have identical types"):
        lax.switch(0, [lambda: 1.0, lambda: 1.0, lambda: jnp.int32(1)])
    with pytest.raises(TypeError, match="Index type must be an integer, got float32"):
        lax.switch(jnp.float32(0), [lambda: 1.0, lambda: 2.0])
    with pytest.raises(TypeError, match=r"Branch index must be scalar, got .* of shape \(2,\)"):
        lax.switch(jnp.array([0, 1]), [lambda: 1.0, lambda: 2.0])
    with pytest.raises(ValueError, match="Empty branch sequence"):
        lax.switch(0, [])


def test_while_loop_errors():
    with pytest.raises(TypeError, match=r"body_fun output and input must have identical "
                                        r"types, got\n.*int32\[\].*float32\[\]"):
        lax.while_loop(lambda c: c < 3, lambda c: c * 1.5, jnp.int32(1))
    with pytest.raises(TypeError, match=r"cond_fun must return a boolean scalar, but got "
                                        r"output type\(s\) \[float32\[\]\]"):
        lax.while_loop(lambda c: c, lambda c: c, 1.0)
    with pytest.raises(TypeError, match=r"lax.while_loop: cond_fun must return a boolean "
                                        r"scalar, .*\[bool\[3\]\]"):
        lax.while_loop(lambda c: c < 1.0, lambda c: c, jnp.ones(3))


def test_scan_errors():
    msg = (r"scan body function carry input and carry output must have equal types \(e.g. "
           r"shapes and dtypes of arrays\), but they differ:\n\n  \* the input carry component "
           r"carry\[1\] has type float32\[\] but the corresponding output carry component has "
           r"type float32\[3\], so the shapes do not match;\n  \* the input carry component "
           r"carry\[2\] has type int32\[\] but the corresponding output carry component has "
           r"type float32\[\], so the dtypes do not match")
    with pytest.raises(TypeError, match=msg):
        lax.scan(lambda carry, x: ((carry[0], carry[1] * x, carry[2] * 1.5), None),
                 (jnp.float32(0), jnp.float32(1), jnp.int32(1)), jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"The input carry carry has type float32\[\] but "
                                        r"the corresponding output carry component has type "
                                        r"float32\[2\], so the shapes do not match"):
        lax.scan(lambda carry, x: (carry * x, None), jnp.float32(0), jnp.ones((3, 2)))
    with pytest.raises(TypeError, match="must have the same pytree structure"):
        lax.scan(lambda c, x: ((c, c), None), 0.0, jnp.ones(3))
    with pytest.raises(ValueError, match="scan got values with different leading axis sizes"):
        lax.scan(lambda c, x: (c, None), 0.0, (jnp.ones(3), jnp.ones(4)))
    with pytest.raises(ValueError, match="scan got no values to scan over and `length` not "
                                         "provided"):
        lax.scan(lambda c, x: (c, None), 0.0, None)
    with pytest.raises(ValueError, match="disagrees with leading axis sizes"):
        lax.scan(lambda c, x: (c, None), 0.0, jnp.ones(3), length=4)


def test_weak_typed_carry_is_promoted():
    # a Python-scalar init takes the body's type, as in JAX
    out = lax.fori_loop(0, 3, lambda i, c: c + jnp.float32(1), 0)
    assert out.dtype == np.float32 and float(out) == 3.0


def test_switch_traces_a_function_given_for_several_branches_once():
    calls = []

    def f(x):
        calls.append("f")
        return x ** 2

    def g(x):
        calls.append("g")
        return x + 1

    branches = [f, g] * 3
    run = jax.jit(lambda i, x: lax.switch(i, branches, x))
    for i in range(6):
        assert float(run(i, 3.0)) == (9.0 if i % 2 == 0 else 4.0)
    assert sorted(calls) == ["f", "g"]  # one trace, as JAX's switch
    assert float(jax.grad(lambda x: lax.switch(4, branches, x))(3.0)) == 6.0


def test_scan_grad_reads_the_xs_instead_of_stacking_them_again():
    """A residual that is an x slice itself is not saved by the forward scan: the backward
    scan reads the xs (an input of 3 features into 5 hidden units, so no other residual
    has the xs' shape)."""
    rng = np.random.default_rng(0)
    wx, wh = rng.standard_normal((3, 5)), rng.standard_normal((5, 5)) * 0.5
    xs = rng.standard_normal((7, 3))

    def loss(wx, wh, xs):
        h, ys = lax.scan(lambda h, x: (jnp.tanh(x @ wx + h @ wh),) * 2, jnp.zeros(5), xs)
        return jnp.sum(ys ** 2)
    jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(wx, wh, xs).jaxpr
    scans = [e for e in jaxpr.eqns if e.primitive.name == "scan"]
    assert len(scans) == 2
    assert all(v.aval.shape != xs.shape for v in scans[0].outvars)
    assert jaxpr.invars[2] in scans[1].invars
    got = jax.grad(loss, argnums=(0, 1))(wx, wh, xs)
    want = jax.jacfwd(loss, argnums=(0, 1))(wx, wh, xs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
