"""lax.fft and jnp.fft against numpy's FFT over drawn shapes, axes, sizes, norms and
dtypes; derivatives (JAX's transposes) against finite differences; vmap against loops."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.config import config
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=25, deadline=None)
NORMS = [None, "backward", "ortho", "forward"]


def rand(rng, shape, complex_):
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if complex_ else x


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), norm=st.sampled_from(NORMS),
       name=st.sampled_from(["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]),
       n=st.one_of(st.none(), st.integers(1, 8)), x64=st.booleans(), seed=st.integers(0, 99))
def test_1d_transforms(shape, norm, name, n, x64, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, shape, name not in ("rfft", "ihfft"))
    axis = int(rng.integers(-len(shape), len(shape)))
    if name in ("irfft", "hfft") and n is None and x.shape[axis] == 1:
        n = 2
    with config.override(jax_enable_x64=x64):
        xin = x if x64 else x.astype(np.complex64 if np.iscomplexobj(x) else np.float32)
        got = getattr(jnp.fft, name)(xin, n=n, axis=axis, norm=norm)
        want = getattr(np.fft, name)(x, n=n, axis=axis, norm=norm)
        assert got.shape == want.shape
        assert got.dtype == np.dtype(("complex128" if x64 else "complex64")
                                     if np.iscomplexobj(want) else
                                     ("float64" if x64 else "float32"))
        np.testing.assert_allclose(got, want, rtol=1e-9 if x64 else 2e-4,
                                   atol=1e-9 if x64 else 2e-4 * max(1, np.abs(want).max()))


@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=5), norm=st.sampled_from(NORMS),
       name=st.sampled_from(["fftn", "ifftn", "rfftn", "irfftn", "fft2", "ifft2", "rfft2",
                             "irfft2"]), seed=st.integers(0, 99))
def test_nd_transforms(shape, norm, name, seed):
    rng = np.random.default_rng(seed)
    if name.endswith("2") and len(shape) < 2:
        shape = shape + [3]
    x = rand(rng, shape, not name.startswith("rfft"))
    k = len(shape) if name.endswith("n") else 2
    axes = tuple(int(a) for a in rng.permutation(len(shape))[:k])
    if name.endswith("2"):
        axes = axes[:2]
    s = None if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 6, len(axes)))
    if name.startswith("irfft") and s is None and x.shape[axes[-1]] == 1:
        s = tuple(x.shape[a] for a in axes[:-1]) + (2,)
    with config.override(jax_enable_x64=True):
        got = getattr(jnp.fft, name)(x, s=s, axes=axes, norm=norm)
        want = getattr(np.fft, name)(x, s=s, axes=axes, norm=norm)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_frequencies_and_shifts():
    np.testing.assert_allclose(jnp.fft.fftfreq(7, 0.5), np.fft.fftfreq(7, 0.5), rtol=1e-6)
    np.testing.assert_allclose(jnp.fft.fftfreq(8), np.fft.fftfreq(8), rtol=1e-6)
    np.testing.assert_allclose(jnp.fft.rfftfreq(9, 0.1), np.fft.rfftfreq(9, 0.1), rtol=1e-6)
    assert jnp.fft.fftfreq(4).dtype == np.float32
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(jnp.fft.fftshift(x), np.fft.fftshift(x))
    np.testing.assert_array_equal(jnp.fft.ifftshift(x, axes=(0, 2)),
                                  np.fft.ifftshift(x, axes=(0, 2)))
    np.testing.assert_array_equal(jnp.fft.fftshift(x, axes=1), np.fft.fftshift(x, axes=1))


def test_errors():
    z = np.ones((3, 4), np.complex64)
    with pytest.raises(ValueError, match="does not support multiple axes"):
        jnp.fft.fft(z, axis=(0, 1))
    with pytest.raises(ValueError, match="only supports 2 axes"):
        jnp.fft.fft2(z, axes=(0,))
    with pytest.raises(ValueError, match="Invalid norm value"):
        jnp.fft.fft(z, norm="bad")
    with pytest.raises(ValueError, match="only real valued inputs supported for rfft"):
        lax.fft(z, "rfft", (4,))
    with pytest.raises(ValueError, match="minor dimensions must be equal to fft_lengths"):
        lax.fft(z, "fft", (5,))
    with pytest.raises(ValueError, match="Unknown FFT type"):
        lax.fft(z, "dct", (4,))
    assert lax.fft(np.arange(4), "fft", (4,)).dtype == np.complex64   # real made complex


@pytest.mark.parametrize("fn", [
    lambda x: jnp.fft.fft(x), lambda x: jnp.fft.ifft(x, n=7),
    lambda x: jnp.fft.rfft(x.real, n=9), lambda x: jnp.fft.rfft(x.real, n=8),
    lambda x: jnp.fft.irfft(x), lambda x: jnp.fft.irfft(x, n=7),
    lambda x: jnp.fft.rfft2(x.real), lambda x: jnp.fft.irfft2(x, s=(3, 5)),
    lambda x: jnp.fft.fftn(x, norm="ortho"), lambda x: jnp.fft.hfft(x),
    lambda x: jnp.fft.ihfft(x.real, norm="forward")],
    ids=["fft", "ifft", "rfft-odd", "rfft-even", "irfft", "irfft-odd", "rfft2", "irfft2",
         "fftn", "hfft", "ihfft"])
def test_grads(fn, x64):
    x = rand(np.random.default_rng(0), (3, 6), True)
    check_grads(fn, (x,), order=2)


def test_vmap_jvp_and_batching(x64):
    x = np.random.default_rng(1).standard_normal((4, 3, 8))
    f = lambda v: jnp.fft.rfft(v, axis=0)
    np.testing.assert_allclose(jax.vmap(f, in_axes=2, out_axes=2)(x),
                               np.stack([f(x[:, :, i]) for i in range(8)], axis=2), rtol=1e-10)
    t = np.ones_like(x)
    y, ty = jax.jvp(jnp.fft.fftn, (x,), (t,))
    np.testing.assert_allclose(ty, np.fft.fftn(t), rtol=1e-10, atol=1e-10)
