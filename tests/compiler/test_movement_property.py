"""Random sequences of movement ops (as lax primitives) followed by elementwise work and a
reduction: compiled results equal eager evaluation (views folded into index arithmetic)."""
import numpy as np
from hypothesis import given, settings, strategies as st, HealthCheck

import tinyjax as jax
from tinyjax import lax
from tinyjax.jaxpr import eval_jaxpr
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr


@st.composite
def programs(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    steps = []
    cur = shape
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["transpose", "reshape", "rev", "slice", "pad", "bcast"]))
        n = len(cur)
        if kind == "transpose":
            perm = tuple(draw(st.permutations(range(n))))
            steps.append((kind, perm))
            cur = tuple(cur[p] for p in perm)
        elif kind == "reshape":
            size = int(np.prod(cur))
            a = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
            new = (a, size // a)
            steps.append((kind, new))
            cur = new
        elif kind == "rev":
            dims = tuple(sorted(draw(st.sets(st.integers(0, n - 1)))))
            steps.append((kind, dims))
        elif kind == "slice":
            start = tuple(draw(st.integers(0, s - 1)) for s in cur)
            limit = tuple(draw(st.integers(b + 1, s)) for b, s in zip(start, cur))
            strides = tuple(draw(st.integers(1, 2)) for _ in cur)
            steps.append((kind, (start, limit, strides)))
            cur = tuple(-(-(l - b) // k) for b, l, k in zip(start, limit, strides))
        elif kind == "pad":
            cfg = tuple((draw(st.integers(-1, 2)), draw(st.integers(-1, 2)), draw(st.integers(0, 1)))
                        for _ in cur)
            newshape = tuple(lo + hi + s + max(s - 1, 0) * i for (lo, hi, i), s in zip(cfg, cur))
            if min(newshape) < 1:
                continue
            steps.append((kind, cfg))
            cur = newshape
        else:
            k = draw(st.integers(1, 3))
            steps.append((kind, k))
            cur = (k,) + cur
    return shape, steps


def apply(x, steps):
    for kind, arg in steps:
        if kind == "transpose":
            x = lax.transpose(x, arg)
        elif kind == "reshape":
            x = lax.reshape(x, arg)
        elif kind == "rev":
            x = lax.rev(x, arg)
        elif kind == "slice":
            x = lax.slice(x, *arg)
        elif kind == "pad":
            x = lax.pad(x, np.float32(0.5), arg)
        else:
            x = lax.broadcast_in_dim(x, (arg,) + x.shape, tuple(range(1, x.ndim + 1)))
    return x


def _run(prog, device):
    shape, steps = prog
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + 1
    f = lambda x: (apply(x, steps), apply(x * 2, steps) + 1,
                   lax.reduce_sum(apply(lax.exp(x * 0.01), steps), (0,)))
    closed = jax.make_jaxpr(f)(x)
    got = compile_jaxpr(closed, get_backend(device))(x)
    want = eval_jaxpr(closed.jaxpr, closed.consts, x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_movement_sequences_interp(prog):
    _run(prog, "interp")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_movement_sequences_cpu(prog):
    _run(prog, "cpu")
