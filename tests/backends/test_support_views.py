"""The support library's strided fillers and stores (tinyjax.backends.c.support: an operand
read as it is, a result written as it is) on views the plain cases do not reach: negative
strides, steps over rows, broadcast (stride 0) and reversed outer axes, the outer axes a
view holds at most, a blocked fill's ragged last block and a split-K chunk read
backwards; values against the interpreter's evaluation of the same jaxpr."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.jaxpr import eval_jaxpr

rng = np.random.default_rng(0)


def _r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _batched(a, b):
    return jnp.einsum("abcdmk,abcdkn->abcdmn", a[::-1, :, ::-1], b[:, ::-1])


CASES = {
    # name: (function, operands, strategy or None)
    "rows reversed": (lambda a, b: a[::-1] @ b, [_r(37, 29), _r(29, 45)]),
    "K reversed": (lambda a, b: a[:, ::-1] @ b, [_r(37, 29), _r(29, 45)]),
    "both axes reversed": (lambda a, b: a @ b[::-1, ::-1], [_r(37, 29), _r(29, 45)]),
    "result reversed": (lambda a, b: (a @ b)[::-1], [_r(37, 29), _r(29, 45)]),
    "transposed, reversed, every other column": (lambda a, b: a.T[::-1] @ b[:, ::-2],
                                                 [_r(29, 37), _r(29, 90)]),
    "steps over rows and columns": (lambda a, b: a[::2] @ b[:, ::3], [_r(74, 29), _r(29, 135)]),
    "ragged last block along K": (lambda a, b: a.T @ b.T, [_r(33, 40), _r(50, 33)]),
    "broadcast batch (outer stride 0)": (lambda a, b: a @ b, [_r(3, 37, 29), _r(29, 45)]),
    "reversed batch": (lambda a, b: a[::-1] @ b, [_r(3, 37, 29), _r(3, 29, 45)]),
    "result transposed over the batch": (lambda a, b: jnp.einsum("bmk,bkn->nbm", a, b),
                                         [_r(3, 37, 29), _r(3, 29, 45)]),
    "four outer axes, two reversed": (_batched, [_r(2, 2, 2, 2, 40, 30),
                                                 _r(2, 2, 2, 2, 30, 50)]),
}


def _check_views(fn, args):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend("cpu"))
    want = [np.asarray(w) for w in eval_jaxpr(closed.jaxpr, closed.consts, *args)]
    for got, w in zip(exe(*args), want):
        np.testing.assert_allclose(got, w, rtol=2e-4, atol=2e-3)
    plans = [k.gemm_loops for k in exe.program.kernels if k.gemm is not None]
    assert len(plans) == 1 and None not in plans[0].views, plans
    return plans[0]


@pytest.mark.parametrize("case", list(CASES))
def test_views_of_every_stride(case):
    _check_views(*CASES[case])


def test_a_split_k_chunk_read_backwards(monkeypatch):
    from tinyjax.compiler.codegen import gemm
    monkeypatch.setattr(gemm, "PARALLEL_MIN_FLOPS", 0)
    plan = _check_views(lambda a, b: a[:, ::-1] @ b[::-1], [_r(8, 4099), _r(4099, 16)])
    assert plan.strategy == "splitk"
