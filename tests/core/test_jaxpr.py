"""The jaxpr: JAX's text format, typechecking, evaluation, DCE and CSE."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.jaxpr import (JaxprTypeError, check_jaxpr, cse_jaxpr, dce_jaxpr,
                           eval_jaxpr)


def test_issue_example_prints_in_jax_format():
    jaxpr = jax.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(np.ones(3, np.float32))
    assert str(jaxpr) == ("{ lambda ; a:f32[3]. let b:f32[3] = sin a; "
                          "c:f32[3] = mul b 2.0:f32[] in (c,) }")


def test_golden_many_primitives():
    def f(x, y):
        a = lax.exp(x) + lax.log(y)
        b = lax.max(a, lax.neg(x)) * lax.tanh(y)
        c = lax.reduce_sum(b, (0,))
        d = lax.transpose(lax.reshape(b, (2, 3)), (1, 0))
        e = lax.convert_element_type(lax.gt(c, 0.5), np.float32)
        return lax.sqrt(lax.abs(d)), lax.select(lax.lt(x, y), x, y), e
    text = str(jax.make_jaxpr(f)(np.ones(6, np.float32), np.ones(6, np.float32)))
    assert text == """{ lambda ; a:f32[6] b:f32[6]. let
    c:f32[6] = exp a
    d:f32[6] = log b
    e:f32[6] = add c d
    f:f32[6] = neg a
    g:f32[6] = max e f
    h:f32[6] = tanh b
    i:f32[6] = mul g h
    j:f32[] = reduce_sum[axes=(0,) out_sharding=None] i
    k:f32[2,3] = reshape[dimensions=None new_sizes=(2, 3) sharding=None] i
    l:f32[3,2] = transpose[permutation=(1, 0)] k
    m:bool[] = gt j 0.5:f32[]
    n:f32[] = convert_element_type[new_dtype=float32 weak_type=False] m
    o:f32[3,2] = abs l
    p:f32[3,2] = sqrt o
    q:bool[6] = lt a b
    r:f32[6] = select_n q b a
  in (p, r, n) }"""


def test_nested_jaxprs_unused_results_and_layout_as_jax():
    # JAX's layout: parameters sorted, one per line once the equation is too long,
    # nested jaxprs named on from the enclosing one, unused results printed as _
    def f(x, n):
        return lax.fori_loop(0, n, lambda i, c: c * 3.0 + x, x)
    text = str(jax.make_jaxpr(f)(np.ones(16, np.float32), 5))
    assert text == """{ lambda ; a:f32[16] b:i32[]. let
    _:i32[] _:i32[] c:f32[16] = while[
      body_jaxpr={ lambda ; d:f32[16] e:i32[] f:i32[] g:f32[16]. let
          h:i32[] = add e 1:i32[]
          i:f32[16] = mul g 3.0:f32[]
          j:f32[16] = add i d
        in (h, f, j) }
      body_nconsts=1
      cond_jaxpr={ lambda ; k:i32[] l:i32[] m:f32[16]. let
          n:bool[] = lt k l
        in (n,) }
      cond_nconsts=0
    ] a 0:i32[] b a
  in (c,) }"""
    branches = str(jax.make_jaxpr(lambda p, x: lax.switch(p, [lambda x: x + 1.0,
                                                               lambda x: x - 2.0], x))(1, 1.0))
    assert """cond[
      branches=(
        { lambda ; f:f32[]. let g:f32[] = add f 1.0:f32[] in (g,) }
        { lambda ; h:f32[]. let i:f32[] = sub h 2.0:f32[] in (i,) }
      )
    ]""" in branches
    long = str(jax.make_jaxpr(lambda *xs: jnp.stack(xs))(*range(10)))
    head = long.splitlines()[0]
    assert head.startswith("{ lambda ; a:i32[] b:i32[]") and head.endswith("i:i32[]")
    assert long.splitlines()[1] == "    j:i32[]. let"
    dot = str(jax.make_jaxpr(jnp.dot)(np.ones((2, 3), np.float32), np.ones(3, np.float32)))
    assert "dimension_numbers=(([1], [0]), ([], []))\n      preferred_element_type=float32" in dot


def test_constvars_and_literals():
    w = jnp.array(np.arange(3.0, dtype=np.float32))
    text = str(jax.make_jaxpr(lambda x: x * w + 1)(np.ones(3, np.float32)))
    assert text.startswith("{ lambda a:f32[3]; b:f32[3]. let")
    assert "add c 1.0:f32[]" in text


def test_var_names_after_z():
    def f(x):
        for _ in range(30):
            x = lax.neg(x)
        return x
    text = str(jax.make_jaxpr(f)(1.0))
    assert " ba:f32[] = neg z" in text


def test_eval_jaxpr_matches_function():
    f = lambda x, y: lax.mul(lax.sin(x), y) + 3.0
    x, y = np.float32(0.3), np.float32(2.0)
    closed = jax.make_jaxpr(f)(x, y)
    (out,) = eval_jaxpr(closed.jaxpr, closed.consts, x, y)
    np.testing.assert_allclose(out, np.sin(x) * y + 3, rtol=1e-6)


def test_check_jaxpr_accepts_traced_and_rejects_bad_types():
    closed = jax.make_jaxpr(lambda x: lax.exp(x) + x)(np.ones(3, np.float32))
    check_jaxpr(closed.jaxpr)
    bad = closed.jaxpr
    from tinyjax.core import ShapedArray
    bad.eqns[0].outvars[0].aval = ShapedArray((4,), np.float32)
    with pytest.raises(JaxprTypeError, match="exp"):
        check_jaxpr(bad)


def test_dce_drops_unused_equations():
    def f(x):
        unused = lax.exp(x)  # noqa: F841
        return lax.sin(x)
    closed = jax.make_jaxpr(f)(1.0)
    assert len(closed.eqns) == 2
    pruned, used = dce_jaxpr(closed.jaxpr)
    assert [e.primitive.name for e in pruned.eqns] == ["sin"]
    assert used == [True]


def test_cse_merges_identical_equations():
    closed = jax.make_jaxpr(lambda x: lax.sin(x) + lax.sin(x))(1.0)
    assert [e.primitive.name for e in closed.eqns] == ["sin", "sin", "add"]
    merged = cse_jaxpr(closed.jaxpr)
    assert [e.primitive.name for e in merged.eqns] == ["sin", "add"]
    assert merged.eqns[1].invars[0] is merged.eqns[1].invars[1]
    (out,) = eval_jaxpr(merged, [], np.float32(0.5))
    np.testing.assert_allclose(out, 2 * np.sin(0.5), rtol=1e-6)


def test_eval_shape_and_shape_dtype_struct():
    out = jax.eval_shape(lambda x: (x * 2, lax.reduce_sum(x, (0,))),
                         jax.ShapeDtypeStruct((4, 2), np.float32))
    assert out[0].shape == (4, 2) and out[0].dtype == np.float32
    assert out[1].shape == (2,)


def test_eval_shape_takes_avals_as_jax_does():
    from tinyjax.core import ShapedArray
    out = jax.eval_shape(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))),
                         ShapedArray((2, 3), np.float32), ShapedArray((3, 5), np.float32))
    assert out.shape == (2, 5) and out.dtype == np.float32


def test_source_info_points_at_user_code():
    closed = jax.make_jaxpr(lambda x: lax.sin(x))(1.0)
    assert closed.eqns[0].source_info.startswith(__file__)


def test_var_repr_is_jax_s():
    """repr of a jaxpr variable: its id and its type with full dtype names, as JAX's."""
    jaxpr = jax.make_jaxpr(lambda x, n: x * n)(np.ones((2, 3), np.float32), 2).jaxpr
    x, n = jaxpr.invars
    assert repr(x) == f"Var(id={id(x)}):float32[2,3]"
    assert repr(n) == f"Var(id={id(n)}):int32[]"


def test_literal_reprs_and_closed_jaxpr_literals():
    closed = jax.make_jaxpr(lambda x: x + 1)(np.int32(3))
    assert repr(closed.jaxpr.eqns[0].invars[1]) == "Literal(TypedInt(1, dtype=int32))"
    closed = jax.make_jaxpr(lambda x: x + 1.5)(1.0)
    assert repr(closed.jaxpr.eqns[0].invars[1]) == "Literal(1.5)"
    w = jnp.arange(3.0)
    closed = jax.make_jaxpr(lambda x: x * w)(jnp.ones(3))
    assert closed.literals is closed.consts and len(closed.literals) == 1
