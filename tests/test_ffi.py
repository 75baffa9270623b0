"""jax.ffi: C functions of XLA's legacy CPU custom-call signature called from eager, jit
and vmap code (compared with numpy); the typed FFI's parts raise clear errors."""
import ctypes
import subprocess

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.backends.c.toolchain import find_compiler
from tinyjax.errors import JaxRuntimeError

from tests.cuda_support import CUDA_PARAM

SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* out = x + scale * y, n elements; n is the first operand */
void axpy(void* out, const void** in, const char* opaque, size_t len, void* status) {
  int32_t n = *(const int32_t*)in[0];
  const float* x = in[1]; const float* y = in[2]; float* o = out;
  for (int32_t i = 0; i < n; i++) o[i] = x[i] + 2.0f * y[i];
}
/* two results: squares (float) and truncations (int32) of 3 floats */
void split3(void* out, const void** in, const char* opaque, size_t len, void* status) {
  void** outs = out; const float* x = in[0];
  float* sq = outs[0]; int32_t* tr = outs[1];
  for (int i = 0; i < 3; i++) { sq[i] = x[i] * x[i]; tr[i] = (int32_t)x[i]; }
}
/* adds the opaque string's length to 3 floats */
void add_len(void* out, const void** in, const char* opaque, size_t len, void* status) {
  const float* x = in[0]; float* o = out;
  for (int i = 0; i < 3; i++) o[i] = x[i] + (float)len;
}
/* a 2x3 buffer written in order 0..5: shows the layout it is handed */
void iota6(void* out, const void** in, const char* opaque, size_t len, void* status) {
  float* o = out; for (int i = 0; i < 6; i++) o[i] = (float)i;
}
/* doubles its aliased buffer in place; counts calls */
static int calls = 0;
void double_inplace(void* out, const void** in, const char* opaque, size_t len, void* st) {
  float* o = out; calls++; for (int i = 0; i < 4; i++) o[i] *= 2.0f;
}
int call_count(void) { return calls; }
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("ffi")
    (d / "targets.c").write_text(SOURCE)
    subprocess.run([find_compiler(), "-shared", "-fPIC", "-O1", "-o", str(d / "libt.so"),
                    str(d / "targets.c")], check=True)
    lib = ctypes.CDLL(str(d / "libt.so"))
    for name in ("axpy", "split3", "add_len", "iota6", "double_inplace"):
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)),
                                    platform="cpu", api_version=0)
    return lib


def f32(shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def axpy_call(**kw):
    return jax.ffi.ffi_call("axpy", f32((3,)), custom_call_api_version=3, **kw)


def test_eager_and_jit(lib):
    x, y = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    want = x + 2 * y
    np.testing.assert_array_equal(axpy_call()(np.int32(3), x, y), want)
    np.testing.assert_array_equal(jax.jit(axpy_call())(np.int32(3), x, y), want)
    np.testing.assert_array_equal(
        jax.jit(lambda a, b: axpy_call()(np.int32(3), jnp.sin(a), b) * 3)(x, y),
        (np.sin(x) + 2 * y) * 3)
    assert "ffi_call" in str(jax.make_jaxpr(axpy_call())(np.int32(3), x, y))


def test_several_results_and_opaque(lib):
    x = np.array([1.5, -2.25, 3.0], np.float32)
    split = jax.ffi.ffi_call("split3", (f32((3,)), jax.ShapeDtypeStruct((3,), jnp.int32)),
                             custom_call_api_version=3)
    for fn in (split, jax.jit(split)):
        sq, tr = fn(x)
        np.testing.assert_array_equal(sq, x * x)
        assert tr.dtype == np.int32 and tr.tolist() == [1, -2, 3]
    add = jax.ffi.ffi_call("add_len", f32((3,)), custom_call_api_version=3,
                           legacy_backend_config="abcd")
    np.testing.assert_array_equal(jax.jit(add)(x), x + 4)


def test_layouts(lib):
    row = jax.ffi.ffi_call("iota6", f32((2, 3)), custom_call_api_version=3)()
    col = jax.ffi.ffi_call("iota6", f32((2, 3)), custom_call_api_version=3,
                           output_layouts=(1, 0))()
    np.testing.assert_array_equal(row, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(col, np.arange(6.0).reshape(3, 2).T)


def test_aliases_and_side_effects(lib):
    x = np.arange(4, dtype=np.float32)
    dbl = jax.ffi.ffi_call("double_inplace", f32((4,)), custom_call_api_version=3,
                           input_output_aliases={0: 0})
    np.testing.assert_array_equal(dbl(x), 2 * x)
    assert x.tolist() == [0, 1, 2, 3]  # the caller's array is not written
    before = lib.call_count()
    pure = jax.ffi.ffi_call("double_inplace", f32((4,)), custom_call_api_version=3,
                            input_output_aliases={0: 0})
    effect = jax.ffi.ffi_call("double_inplace", f32((4,)), custom_call_api_version=3,
                              input_output_aliases={0: 0}, has_side_effect=True)
    jax.jit(lambda v: (pure(v), v)[1])(x)  # unused and pure: dropped
    assert lib.call_count() == before
    jax.jit(lambda v: (effect(v), v)[1])(x)  # unused but with a side effect: run
    assert lib.call_count() == before + 1


@pytest.mark.parametrize("method", ["sequential", "sequential_unrolled", "broadcast_all"])
def test_vmap_methods(lib, method):
    xs = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.ones(3, np.float32)
    split = jax.ffi.ffi_call("split3", (f32((3,)), jax.ShapeDtypeStruct((3,), jnp.int32)),
                             custom_call_api_version=3, vmap_method=method)
    if method == "broadcast_all":  # one call over the batch: split3 sees 3 elements only
        sq, _ = jax.vmap(split)(xs)
        np.testing.assert_array_equal(sq[0], xs[0] ** 2)
        return
    out = jax.vmap(axpy_call(vmap_method=method), in_axes=(None, 0, None))(np.int32(3), xs, y)
    np.testing.assert_array_equal(out, xs + 2 * y)  # a loop: the reference is numpy's
    sq, tr = jax.jit(jax.vmap(split))(xs)
    np.testing.assert_array_equal(sq, xs ** 2)


def test_errors_match_jax(lib):
    x, y = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    with pytest.raises(NotImplementedError, match="vmap is only supported for the ffi_call"):
        jax.vmap(axpy_call(), in_axes=(None, 0, None))(np.int32(3), np.ones((2, 3)), y)
    with pytest.raises(ValueError, match="cannot be differentiated"):
        jax.grad(lambda v: axpy_call()(np.int32(3), v, y).sum())(x)
    with pytest.raises(ValueError, match="vmap_method must be on of"):
        jax.ffi.ffi_call("axpy", f32((3,)), vmap_method="bogus")
    with pytest.raises(ValueError, match="legacy_backend_config"):
        jax.ffi.ffi_call("axpy", f32((3,)), legacy_backend_config="x")
    with pytest.raises(ValueError, match="attributes requires"):
        axpy_call()(np.int32(3), x, y, scale=2)
    with pytest.raises(JaxRuntimeError, match="No FFI handler registered for nope"):
        jax.ffi.ffi_call("nope", f32((3,)), custom_call_api_version=3)(x)
    with pytest.raises(ValueError, match="input_output_aliases"):
        jax.ffi.ffi_call("axpy", f32((3,)), custom_call_api_version=3,
                         input_output_aliases={0: 0})(np.int32(3), x, y)


def test_what_needs_xla_raises(lib):
    x = np.ones(3, np.float32)
    with pytest.raises(NotImplementedError, match="typed FFI"):
        jax.ffi.ffi_call("axpy", f32((3,)))(x)  # custom_call_api_version=4, the default
    with pytest.raises(NotImplementedError, match="version 1 is not supported"):
        jax.ffi.ffi_call("axpy", f32((3,)), custom_call_api_version=1)(x)
    capsule = jax.ffi.pycapsule(lib.axpy)
    with pytest.raises(NotImplementedError, match="typed FFI"):
        jax.ffi.register_ffi_target("t", capsule)  # api_version=1, the default
    with pytest.raises(NotImplementedError, match="host only"):
        jax.ffi.register_ffi_target("t", capsule, platform="CUDA", api_version=0)
    with pytest.raises(TypeError, match="PyCapsule"):
        jax.ffi.register_ffi_target("t", 1234, api_version=0)
    for call in (jax.ffi.include_dir, lambda: jax.ffi.ffi_lowering("t"),
                 lambda: jax.ffi.build_ffi_lowering_function("t"),
                 lambda: jax.ffi.register_ffi_type("t", {"type_id": capsule}),
                 lambda: jax.ffi.register_ffi_target_as_batch_partitionable("t")):
        with pytest.raises(NotImplementedError):
            call()
    with pytest.raises(ValueError, match="register_ffi_type_id"):
        jax.ffi.register_ffi_type_id("t", capsule)


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_host_step_on_every_device(lib, device):
    """The C function runs on the host whatever device the program runs on."""
    x = np.linspace(0, 1, 3, dtype=np.float32)
    y = np.ones(3, np.float32)

    def f(a, b):
        return axpy_call()(np.int32(3), jnp.cos(a), b) * 2

    got = jax.jit(f, device=device)(jax.device_put(x, device), jax.device_put(y, device))
    np.testing.assert_allclose(np.asarray(got), (np.cos(x) + 2 * y) * 2, rtol=1e-6)
