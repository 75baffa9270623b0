"""jax.Array as the abstract type of every array value; typeof; how avals and tracers print;
which conversions of a tracer to a Python value are allowed."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.array import ArrayImpl


def test_every_kind_of_array_is_an_array():
    seen = []

    def record(x):
        seen.append(isinstance(x, jax.Array))
        return x

    assert isinstance(jnp.ones(3), jax.Array) and type(jnp.ones(3)) is ArrayImpl
    jax.jit(record)(1.0)
    jax.grad(record)(1.0)
    jax.vmap(record)(jnp.ones(3))
    jax.jvp(record, (1.0,), (1.0,))
    assert seen == [True] * 4
    assert isinstance(jax.random.key(0), jax.Array)
    assert isinstance(jax.random.PRNGKey(0), jax.Array)
    assert issubclass(ArrayImpl, jax.Array) and jnp.ndarray is jax.Array
    for not_array in (np.ones(2), 1.0, [1.0], "a"):
        assert not isinstance(not_array, jax.Array)


def test_array_cannot_be_instantiated():
    with pytest.raises(TypeError, match="jnp.asarray"):
        jax.Array(np.ones(2))
    with pytest.raises(TypeError):
        ArrayImpl(np.ones(2))


def test_typeof():
    assert str(jax.typeof(jnp.ones((2, 3)))) == "float32[2,3]"
    assert str(jax.typeof(1.0)) == "~float32[]"
    assert repr(jax.typeof(1.0)) == "ShapedArray(float32[], weak_type=True)"
    assert repr(jax.typeof(np.int8(3))) == "ShapedArray(int8[])"
    assert str(jax.typeof(jax.random.key(0))) == "key<fry>[]"
    assert str(jax.typeof(jax.ShapeDtypeStruct((4,), np.float32))) == "float32[4]"
    types = []
    jax.jit(lambda x: types.append(str(jax.typeof(x))) or x)(jnp.ones(2, jnp.int32))
    jax.vmap(lambda x: types.append(str(jax.typeof(x))) or x)(jnp.ones((5, 2)))
    assert types == ["int32[2]", "float32[2]"]
    with pytest.raises(TypeError, match="not a valid JAX type"):
        jax.typeof([1.0])


def test_tracer_reprs_name_their_transform():
    out = []

    def show(x):
        out.append(repr(x))
        return x.sum()

    jax.jit(show)(1.0)
    jax.jit(show)(jnp.ones(3))
    jax.grad(show)(2.0)
    jax.vmap(show)(jnp.ones((4, 2)))
    jax.jvp(show, (1.0,), (0.5,))
    jax.jit(jax.grad(show))(jnp.ones(2))
    assert out == ["JitTracer(~float32[])", "JitTracer(float32[3])",
                   "GradTracer(primal=2.0, typeof(tangent)=f32[])",
                   "VmapTracer(aval=float32[2], batched=float32[4,2])",
                   "JVPTracer(primal=1.0, tangent=0.5)",
                   "GradTracer(primal=JitTracer(float32[2]), typeof(tangent)=f32[2])"]


def test_float_of_a_tracer_raises_even_when_its_value_is_known():
    with pytest.raises(jax.errors.ConcretizationTypeError, match="`float` function"):
        jax.grad(lambda x: float(x))(1.0)
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.grad(lambda x: complex(x).real)(1.0)
    # bool and int of a value known under grad are allowed, as in JAX
    assert float(jax.grad(lambda x: x * 2 if x > 0 else -x)(1.0)) == 2.0
    assert float(jax.grad(lambda x: x * int(x))(3.0)) == 3.0
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(lambda x: float(x))(1.0)


def test_shape_dtype_struct():
    s = jax.ShapeDtypeStruct((2,), np.float64)
    assert s.dtype == np.float64  # kept as given; canonicalized where it is traced
    assert jax.eval_shape(lambda x: x * 2, s).dtype == np.float32
    assert jax.ShapeDtypeStruct.like(jnp.ones((3, 1))) == jax.ShapeDtypeStruct((3, 1),
                                                                               np.float32)
    assert jax.ShapeDtypeStruct.like(1.0).weak_type
    assert s.update(shape=(5,)).shape == (5,)
    assert repr(jax.ShapeDtypeStruct((1,), np.int32, weak_type=True)) == \
        "ShapeDtypeStruct(shape=(1,), dtype=int32, weak_type=True)"


def test_version_info_names_the_jax_api_followed():
    assert jax.__version_info__ == (0, 10, 2)
