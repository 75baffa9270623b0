"""Errors that teach: concretization under jit, escaped tracers."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax


def test_python_if_under_jit_names_the_value_and_suggests_cond():
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(jax.errors.TracerBoolConversionError) as info:
        jax.jit(f)(1.0)
    msg = str(info.value)
    assert "argument 'x' of f" in msg or "`gt`" in msg
    assert "lax.cond" in msg and "jnp.where" in msg and "static_argnums" in msg


def test_python_if_under_grad_works_on_concrete_values():
    f = lambda x: x * x if x > 0 else -x
    assert float(jax.grad(f)(3.0)) == 6.0
    assert float(jax.grad(f)(-3.0)) == -1.0


def test_int_of_traced_value_raises():
    with pytest.raises(jax.ConcretizationTypeError):
        jax.make_jaxpr(lambda x: int(x))(1.0)


def test_escaped_tracer_is_an_error():
    leaked = []

    def f(x):
        leaked.append(x)
        return x
    jax.make_jaxpr(f)(1.0)
    with pytest.raises(jax.UnexpectedTracerError, match="escape"):
        lax.sin(leaked[0])


def test_escaped_tracer_from_grad():
    leaked = []

    def f(x):
        y = lax.sin(x)
        leaked.append(y)
        return y
    jax.grad(f)(1.0)
    with pytest.raises(jax.UnexpectedTracerError):
        jax.jit(lambda z: z + leaked[0])(1.0)


def test_unhashable_static_arg():
    f = jax.jit(lambda x, n: x * n[0], static_argnums=1)
    with pytest.raises(ValueError, match="Non-hashable static arguments"):
        f(1.0, [2])
