"""jax_numpy_dtype_promotion='strict': JAX's strict lattice, where values combine only with
values of their own dtype or with weak values (Python scalars) that reach it."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import dtypes
from tinyjax.config import config


@pytest.fixture
def strict():
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.mark.parametrize("a,b,expected", [
    (np.float32, float, np.float32), (np.int8, int, np.int8), (np.float16, int, np.float16),
    (np.complex64, float, np.complex64), (int, float, float), (np.int32, np.int32, np.int32)])
def test_strict_promotion_joins_weak_values_into_their_partner(strict, a, b, expected):
    # JAX's strict lattice: edges only from the weak nodes
    assert jnp.promote_types(a, b) == np.dtype(expected)


@pytest.mark.parametrize("a,b", [(np.float32, np.float16), (np.int32, np.float32),
                                 (np.int32, float), (np.float32, complex), (np.bool_, int),
                                 (np.uint8, np.int8)])
def test_strict_promotion_refuses_every_other_pair(strict, a, b):
    with pytest.raises(dtypes.TypePromotionError, match="no available implicit dtype "
                       "promotion path when jax_numpy_dtype_promotion=strict"):
        jnp.promote_types(a, b)
    with pytest.raises(dtypes.TypePromotionError):
        jnp.zeros(2, a) + (jnp.zeros(2, b) if isinstance(b, type) and b not in
                           (int, float, complex) else b(1))


def test_strict_promotion_in_array_arithmetic(strict):
    x = jnp.ones(3)
    assert (x + 1).dtype == np.float32 and (x * 2.5).dtype == np.float32
    assert (jnp.arange(3) + 1).dtype == jnp.arange(3).dtype
    with pytest.raises(dtypes.TypePromotionError):
        x + jnp.arange(3)
    with pytest.raises(dtypes.TypePromotionError):
        jax.jit(lambda a, b: a * b)(x, x.astype(np.float16))


def test_dtype_promotion_flag_values():
    with pytest.raises(ValueError):
        config.update("jax_numpy_dtype_promotion", "loose")
    assert config.jax_numpy_dtype_promotion == "standard"
    assert (jnp.ones(2) + jnp.arange(2)).dtype == np.float32
