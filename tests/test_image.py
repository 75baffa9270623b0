"""jax.image: resize and scale_and_translate against hand-computed values and invariants."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import image

METHODS = ["linear", "cubic", "cubic-pytorch", "lanczos3", "lanczos5", "area"]


def test_linear_values_by_hand():
    # half-centred pixels: outputs of a 2 -> 4 upsampling sample at -0.25, 0.25, 0.75, 1.25
    np.testing.assert_allclose(np.asarray(image.resize(jnp.array([0.0, 1.0]), (4,), "linear")),
                               [0.0, 0.25, 0.75, 1.0])
    # 4 -> 2 without antialiasing: samples at 0.5 and 2.5
    np.testing.assert_allclose(np.asarray(image.resize(jnp.arange(4.0), (2,), "linear",
                                                       antialias=False)), [0.5, 2.5])
    # with antialiasing the triangle is twice as wide: weights (1, 3, 3, 1)/... per output
    got = np.asarray(image.resize(jnp.arange(4.0), (2,), "bilinear"))
    w0 = np.maximum(0, 1 - np.abs(0.5 - np.arange(4)) / 2)
    w1 = np.maximum(0, 1 - np.abs(2.5 - np.arange(4)) / 2)
    np.testing.assert_allclose(got, [w0 @ np.arange(4) / w0.sum(), w1 @ np.arange(4) / w1.sum()],
                               rtol=1e-6)


def test_nearest_keeps_dtype_and_picks_centres():
    x = jnp.arange(4, dtype=np.int32)
    out = image.resize(x, (7,), "nearest")
    assert out.dtype == np.int32
    assert np.asarray(out).tolist() == [0, 0, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(9, 4), (3, 11), (5, 7)])
def test_constant_images_stay_constant(method, shape):
    x = jnp.full((5, 7), 2.5)
    out = np.asarray(image.resize(x, shape, method))
    assert out.shape == shape
    np.testing.assert_allclose(out, 2.5, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_same_shape_is_identity_and_channels_untouched(method):
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(image.resize(x, x.shape, method)), x)
    out = image.resize(x, (8, 3, 3), method)
    one = image.resize(x[..., 1], (8, 3), method)
    np.testing.assert_allclose(np.asarray(out[..., 1]), np.asarray(one), rtol=1e-5, atol=1e-6)


def test_integer_images_give_floats_and_jit_matches():
    x = jnp.arange(12).reshape(3, 4)
    out = image.resize(x, (5, 6), "linear")
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.asarray(jax.jit(lambda v: image.resize(v, (5, 6), "linear"))(
        x)), np.asarray(out), rtol=1e-6)


def test_scale_and_translate():
    x = jnp.arange(5.0)
    same = image.scale_and_translate(x, (5,), (0,), jnp.array([1.0]), jnp.array([0.0]), "linear")
    np.testing.assert_allclose(np.asarray(same), np.arange(5.0))
    # x -> x + 1: output pixel i samples input i - 1; the first falls outside: zero
    shifted = image.scale_and_translate(x, (5,), (0,), jnp.array([1.0]), jnp.array([1.0]),
                                        "linear")
    np.testing.assert_allclose(np.asarray(shifted), [0.0, 0.0, 1.0, 2.0, 3.0])
    # differentiable in the translation
    g = jax.grad(lambda t: image.scale_and_translate(x, (5,), (0,), jnp.array([1.0]), t,
                                                     "linear")[2])(jnp.array([0.5]))
    np.testing.assert_allclose(np.asarray(g), [-1.0], rtol=1e-5)
    with pytest.raises(ValueError, match="Nearest neighbor"):
        image.scale_and_translate(x, (5,), (0,), jnp.ones(1), jnp.zeros(1), "nearest")


def test_bad_arguments():
    with pytest.raises(ValueError, match='Unknown resize method "bogus"'):
        image.resize(jnp.ones(3), (4,), "bogus")
    with pytest.raises(ValueError, match="shape must have length"):
        image.resize(jnp.ones((3, 3)), (4,), "linear")
    assert image.ResizeMethod.from_string("bicubic") is image.ResizeMethod.CUBIC
