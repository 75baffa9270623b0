"""Host conversions, printing helpers and type questions."""
import io

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp


def test_save_load_and_buffers(tmp_path):
    x = jnp.arange(6.0).reshape(2, 3)
    buf = io.BytesIO()
    jnp.save(buf, x)
    buf.seek(0)
    loaded = jnp.load(buf)
    assert isinstance(loaded, jax.Array) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, x)
    jnp.savez(tmp_path / "a.npz", x=x)
    np.testing.assert_array_equal(jnp.load(tmp_path / "a.npz")["x"], x)
    np.testing.assert_array_equal(jnp.frombuffer(b"\x01\x02", dtype=jnp.uint8), [1, 2])
    np.testing.assert_array_equal(jnp.fromstring("1 2 3", sep=" "), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(jnp.from_dlpack(np.arange(3)), [0, 1, 2])
    for fn in (jnp.fromiter, jnp.fromfile):
        with pytest.raises(NotImplementedError, match="non-pure"):
            fn(range(3), float)


def test_fromfunction_vectorises():
    np.testing.assert_array_equal(jnp.fromfunction(lambda i, j: i * 10 + j, (2, 3)),
                                  np.fromfunction(lambda i, j: i * 10 + j, (2, 3)))
    out = jnp.fromfunction(lambda i, j: i + j, (2, 3), dtype=int)
    assert out.dtype == np.int32


def test_printing_helpers():
    x = jnp.array([1.0, 2.0])
    assert jnp.array_repr(x) == "Array([1., 2.], dtype=float32)"
    assert jnp.array_repr(jnp.arange(3)) == "Array([0, 1, 2], dtype=int32)"
    assert jnp.array_str(x) == "[1. 2.]"
    with jnp.printoptions(precision=2):
        assert jnp.get_printoptions()["precision"] == 2
        assert jnp.array_str(jnp.array([1 / 3])) == "[0.33]"


def test_type_questions():
    x = jnp.array([1.0, 2.0])
    assert jnp.isscalar(jnp.array(1.0)) and not jnp.isscalar(x) and jnp.isscalar(1)
    assert jnp.isscalar(np.float32(1)) and not jnp.isscalar([1])
    assert jnp.can_cast(jnp.int8, jnp.int32) and not jnp.can_cast(x, jnp.int32)
    assert jnp.isdtype(jnp.float32, "real floating")
    assert jnp.isdtype(jnp.int8, ("bool", "integral")) and not jnp.isdtype(jnp.int8, "bool")
    assert jnp.isdtype(jnp.uint8, "unsigned integer") and jnp.isdtype(jnp.int8, jnp.int8)
    with pytest.raises(ValueError, match="Unrecognized"):
        jnp.isdtype(jnp.int8, "integer")
    np.testing.assert_array_equal(jnp.isreal(x), [True, True])
    np.testing.assert_array_equal(jnp.iscomplex(x), [False, False])
    assert jnp.isrealobj(x) and not jnp.iscomplexobj(x) and jnp.iscomplexobj(1j)
    assert jnp.iterable([1]) and not jnp.iterable(1)
