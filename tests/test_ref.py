"""Mutable array references (jax.new_ref / jax.Ref): eager semantics against numpy, and
references read and written under jit, vmap, grad and the control-flow primitives,
against the same computation written with plain values."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax


def test_eager_get_set_addupdate_swap_match_numpy():
    ref = jax.new_ref(jnp.arange(12.0).reshape(3, 4))
    want = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    ref[1] = ref[0]
    want[1] = want[0]
    ref[2, 3] = ref[1, 2]
    want[2, 3] = want[1, 2]
    ref[0, :3] = ref[:, 1]
    want[0, :3] = want[:, 1]
    rows, cols = np.array([1, 2, 1]), np.array([0, 0, 1])
    ref[jnp.asarray(rows), jnp.asarray(cols)] = ref[jnp.array([0, 0, 1]), jnp.array([1, 2, 3])]
    want[rows, cols] = want[[0, 0, 1], [1, 2, 3]]
    ref[1] += 1.0
    want[1] += 1.0
    ref.addupdate(jnp.ones((3, 4)))
    want += 1.0
    old = jax.ref.swap(ref, (0, 0), 42.0)
    assert float(old) == want[0, 0]
    want[0, 0] = 42.0
    jax.ref.addupdate(ref, 2, jnp.full((4,), 2.0))
    want[2] += 2.0
    np.testing.assert_array_equal(np.asarray(ref[...]), want)
    np.testing.assert_array_equal(np.asarray(jax.freeze(ref)), want)
    assert ref.shape == (3, 4) and ref.dtype == np.float32 and ref.ndim == 2 and len(ref) == 3
    assert str(jax.typeof(ref)) == "Ref{float32[3,4]}"
    assert repr(ref).startswith("Ref([[")


def test_new_ref_copies_and_types():
    a = jnp.zeros(2)
    r = jax.new_ref(a)
    r[0] = 5.0
    np.testing.assert_array_equal(np.asarray(a), [0.0, 0.0])
    assert repr(jax.new_ref(0.0)) == "Ref(0., dtype=float32, weak_type=True)"
    assert not isinstance(r, jax.Array)
    with pytest.raises(ValueError, match="Invalid dtype"):
        r[0] = jnp.int32(1)
    with pytest.raises(ValueError, match="Invalid shape"):
        r[...] = jnp.zeros(3)
    with pytest.raises(TypeError):
        r + 1
    e = jax.empty_ref(jax.ShapeDtypeStruct((2,), jnp.int32))
    assert e.shape == (2,) and e.dtype == np.int32
    jax.free_ref(e)
    with pytest.raises(RuntimeError):
        e[...]


def test_jit_reads_and_writes_closed_over_refs_at_each_call():
    counter = jax.new_ref(jnp.zeros(3))
    scale = jax.new_ref(2.0)

    @jax.jit
    def step(x):
        counter[1] += x * scale[...]
        return counter[...].sum()

    assert float(step(1.0)) == 2.0
    scale[...] = 10.0  # read again at the next call: not baked into the trace
    assert float(step(1.0)) == 12.0
    np.testing.assert_array_equal(np.asarray(counter[...]), [0.0, 12.0, 0.0])


def test_jit_ref_arguments_are_written_back():
    @jax.jit
    def axpy(a, x_ref, y_ref):
        y_ref[...] = a * x_ref[...] + y_ref[...]

    x, y = jax.new_ref(jnp.arange(3.0)), jax.new_ref(jnp.ones(3))
    axpy(2.0, x, y)
    axpy(2.0, x, y)  # same trace, other values
    np.testing.assert_allclose(np.asarray(y[...]), 1 + 4 * np.arange(3.0))
    other = jax.new_ref(jnp.zeros(3))
    axpy(1.0, x, other)  # another reference of the same type: the same trace
    np.testing.assert_allclose(np.asarray(other[...]), np.arange(3.0))


def test_jit_updates_a_reference_in_place():
    @jax.jit
    def double(x_ref):
        x_ref[...] = 2 * x_ref[...]

    @jax.jit
    def read(x_ref):
        return x_ref[...].sum()

    r = jax.new_ref(jnp.arange(4.0))
    where = r.unsafe_buffer_pointer()
    double(r)
    assert r.unsafe_buffer_pointer() == where  # the program wrote into the buffer
    read(r)  # a reference only read keeps its array
    assert r.unsafe_buffer_pointer() == where
    seen = r[...]  # an array the caller holds is never overwritten
    double(r)
    np.testing.assert_array_equal(np.asarray(seen), [0.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(np.asarray(r[...]), [0.0, 4.0, 8.0, 12.0])

    total = jax.new_ref(jnp.zeros(3))

    @jax.jit
    def add(v):  # a closed-over reference, and an output of the same type
        total[...] += v
        return total[...] * 1.0

    where = total.unsafe_buffer_pointer()
    out = add(jnp.ones(3))
    assert total.unsafe_buffer_pointer() == where != out.unsafe_buffer_pointer()
    add(jnp.ones(3))
    np.testing.assert_array_equal(np.asarray(out), [1.0] * 3)
    np.testing.assert_array_equal(np.asarray(total[...]), [2.0] * 3)


def test_jit_ref_errors():
    r = jax.new_ref(0.0)

    @jax.jit
    def returns_ref(x_ref):
        return x_ref

    with pytest.raises(ValueError, match="mutable array references cannot be returned"):
        returns_ref(r)

    @jax.jit
    def two(a_ref, b_ref):
        pass

    with pytest.raises(ValueError, match="appeared at both a_ref and b_ref"):
        two(r, r)

    @jax.jit
    def closes_over(y_ref):
        y_ref[...] = r[...]

    with pytest.raises(ValueError, match="both closed over and passed as the argument y_ref"):
        closes_over(r)


def test_local_ref_under_grad_and_jit_matches_plain_function():
    def with_ref(x):
        acc = jax.new_ref(jnp.zeros(()))
        acc[...] = jnp.sin(x)
        acc[...] += x * x
        return acc[...]

    def plain(x):
        return jnp.sin(x) + x * x

    for x in (0.3, 1.7):
        assert np.isclose(float(jax.grad(with_ref)(x)), float(jax.grad(plain)(x)))
        assert np.isclose(float(jax.jit(jax.grad(with_ref))(x)), float(jax.grad(plain)(x)))
    xs = jnp.linspace(0.0, 1.0, 4)
    np.testing.assert_allclose(np.asarray(jax.vmap(with_ref)(xs)),
                               np.asarray(jax.vmap(plain)(xs)), rtol=1e-6)


def test_grad_writes_to_outer_refs():
    log = jax.new_ref(0.0)

    def keeps_primal(x):
        log[...] = lax.stop_gradient(x)
        return x * x

    assert float(jax.grad(keeps_primal)(3.0)) == 6.0
    assert float(log[...]) == 3.0

    def differentiated(x):
        log[...] = x
        return x

    with pytest.raises(Exception, match="differentiated value"):
        jax.grad(differentiated)(1.0)


def test_vmap_over_ref_arguments_and_unbatched_write_error():
    def dist(x, y, out_ref):
        out_ref[...] = jnp.sum((x - y) ** 2)

    vecs = jnp.arange(12.0).reshape(3, 4)
    out = jax.new_ref(jnp.zeros((3, 3)))
    jax.vmap(jax.vmap(dist, (0, None, 0)), (None, 0, 0))(vecs, vecs, out)
    v = np.arange(12.0).reshape(3, 4)
    want = ((v[None, :, :] - v[:, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(np.asarray(out[...]), want)

    r = jax.new_ref(jnp.zeros((2, 3)))
    jax.vmap(lambda x, ref: ref.__setitem__(Ellipsis, 2 * x), (1, 1))(jnp.ones((2, 3)), r)
    np.testing.assert_array_equal(np.asarray(r[...]), np.full((2, 3), 2.0))
    # under jit too
    r = jax.new_ref(jnp.zeros(3))
    jax.jit(jax.vmap(lambda x, ref: ref.__setitem__(Ellipsis, x + 1)))(jnp.arange(3.0), r)
    np.testing.assert_array_equal(np.asarray(r[...]), [1.0, 2.0, 3.0])

    unbatched = jax.new_ref(0.0)
    with pytest.raises(Exception, match="vmapped value on an unbatched array reference"):
        jax.vmap(lambda x: unbatched.__setitem__(Ellipsis, x))(jnp.arange(3.0))


@pytest.mark.parametrize("jit", [False, True])
def test_loops_and_branches_thread_written_refs(jit):
    wrap = jax.jit if jit else (lambda f: f)
    total = jax.new_ref(0)

    @wrap
    def run(xs):
        def body(c, x):
            total[...] += x
            return c + 1, x * 2
        return lax.scan(body, 0, xs)

    n, ys = run(jnp.arange(10))
    assert int(total[...]) == 45 and int(n) == 10
    np.testing.assert_array_equal(np.asarray(ys), 2 * np.arange(10))
    run(jnp.arange(10))
    assert int(total[...]) == 90

    hist = jax.new_ref(jnp.zeros(4))
    wrap(lambda: lax.fori_loop(0, 4, lambda i, c: hist.__setitem__(i, i * c) or c + 1.0,
                               1.0))()
    np.testing.assert_array_equal(np.asarray(hist[...]), [0.0, 2.0, 6.0, 12.0])

    steps = jax.new_ref(0)
    out = wrap(lambda: lax.while_loop(lambda c: steps[...] < 10,
                                      lambda c: (steps.__setitem__(Ellipsis, steps[...] + 3),
                                                 c + 1)[1], 0))()
    assert int(out) == 4 and int(steps[...]) == 12

    flag = jax.new_ref(1.0)

    @wrap
    def branch(p):
        lax.cond(p > 0, lambda: flag.__setitem__(Ellipsis, flag[...] * 5), lambda: None)
        lax.switch(p, [lambda: None, lambda: None, lambda: flag.__setitem__(Ellipsis, -flag[...])])

    branch(jnp.int32(2))
    branch(jnp.int32(0))
    assert float(flag[...]) == -5.0


def test_scan_with_ref_matches_a_python_loop():
    xs = np.random.RandomState(0).randn(6, 3).astype(np.float32)
    acc = jax.new_ref(jnp.zeros(3))

    def body(c, x):
        acc[...] = acc[...] * 0.5 + x
        return c, acc[...].sum()

    _, ys = jax.jit(lambda xs: lax.scan(body, 0.0, xs))(jnp.asarray(xs))
    want, a = [], np.zeros(3, np.float32)
    for x in xs:
        a = a * 0.5 + x
        want.append(a.sum())
    np.testing.assert_allclose(np.asarray(ys), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(acc[...]), a, rtol=1e-6)


def test_custom_vjp_takes_a_ref_argument():
    @jax.custom_vjp
    def stash(grads_ref, x):
        return x

    stash.defvjp(lambda grads_ref, x: (x, grads_ref), lambda grads_ref, g: (None, g))
    r = jax.new_ref(0.0)
    assert float(stash(r, 2.0)) == 2.0
    assert repr(r) == "Ref(0., dtype=float32, weak_type=True)"
