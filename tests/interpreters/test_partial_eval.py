"""JAX's partial-evaluation interface: PartialVal and trace_to_jaxpr_nounits compute what
the known inputs determine at once and record what depends on the unknown ones."""
import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.core import ShapedArray
from tinyjax.extend import linear_util as lu
from tinyjax.interpreters import partial_eval as pe
from tinyjax.jaxpr import eval_jaxpr


def test_known_outputs_are_values_and_unknown_ones_a_jaxpr():
    calls = []

    def f(a, b):
        calls.append(1)
        return [jnp.sin(a) * 2, a * b + 1]

    aval = ShapedArray((3,), np.float32)
    a = jnp.arange(3.0)
    jaxpr, out_pvals, consts = pe.trace_to_jaxpr_nounits(
        lu.wrap_init(f), [pe.PartialVal.known(a), pe.PartialVal.unknown(aval)])
    assert calls == [1]
    known, unknown = out_pvals
    assert known.is_known() and not unknown.is_known()
    np.testing.assert_allclose(np.asarray(known.get_known()), 2 * np.sin(np.arange(3.0)),
                               rtol=1e-6)
    assert unknown.get_aval() == aval and unknown.get_known() is None
    assert [e.primitive.name for e in jaxpr.eqns] == ["mul", "add"]  # sin(a) was computed
    b = jnp.array([1.0, 2.0, 3.0])
    (out,) = eval_jaxpr(jaxpr, consts, b)
    np.testing.assert_allclose(np.asarray(out), np.arange(3.0) * [1, 2, 3] + 1)


def test_instantiate_makes_known_outputs_jaxpr_outputs():
    aval = ShapedArray((), np.float32)
    jaxpr, out_pvals, consts = pe.trace_to_jaxpr_nounits(
        lambda x, y: [x * 3, y], [pe.PartialVal.known(jnp.float32(2)),
                                  pe.PartialVal.unknown(aval)], instantiate=True)
    assert not any(p.is_known() for p in out_pvals)
    out = eval_jaxpr(jaxpr, consts, jnp.float32(5))
    assert [float(o) for o in out] == [6.0, 5.0]


def test_flatten_fun_returns_a_callable_out_tree_store():
    from tinyjax.api_util import flatten_fun_nokwargs
    flat, out_tree = flatten_fun_nokwargs(lambda x: {"y": x}, jax.tree.structure((1,)))
    flat(2)
    assert out_tree() == jax.tree.structure({"y": 0})


def test_an_unknown_key_array_is_traced_as_its_data():
    # (Flax's scan traces its body so: avals from jnp.result_type of the leaves, key
    # arrays among them); the jaxpr's types are the data's
    keys = jax.random.split(jax.random.key(3), 2)
    key_aval = ShapedArray(keys.shape, jnp.result_type(keys))
    seen = []

    def f(ks, x):
        seen.append(type(ks))
        return [jax.random.uniform(ks[0]) * x, jax.random.split(ks[1])[0]]

    jaxpr, out_pvals, consts = pe.trace_to_jaxpr_nounits(
        f, [pe.PartialVal.unknown(key_aval), pe.PartialVal.known(jnp.float32(2))])
    assert seen == [jax.random.KeyArray]
    assert [str(v.aval) for v in jaxpr.invars] == ["uint32[2,2]"]
    assert [p.get_aval().shape for p in out_pvals] == [(), (2,)]
    draw, new_key = eval_jaxpr(jaxpr, consts, jax.random.key_data(keys))
    np.testing.assert_allclose(np.asarray(draw),
                               2 * np.asarray(jax.random.uniform(keys[0])), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(new_key),
                                  jax.random.key_data(jax.random.split(keys[1])[0]))
