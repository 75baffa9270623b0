"""The CUDA backend's library calls, on the default stream with the kernels around them:

* FFTs through cuFFT (plans over the innermost 1-3 axes, batched over the rest; the
  inverse transforms scaled by ``1/n`` as numpy's are);
* ``cholesky``, the SVD, ``householder_product``, ``ormqr`` and ``tridiagonal`` through
  cuSOLVER, ``triangular_solve`` through cuBLAS (:mod:`tinyjax.backends.cuda.solver`),
  with small NVRTC kernels (:data:`FIXUP_SOURCE`) for JAX's NaNs, conjugation and
  transposed copies;
* the other factorisations (LU, QR, eigh, eig, Schur, ``hessenberg``: cuSOLVER has no
  ``gehrd``), the tridiagonal solve and what the device routines do not cover (empty
  matrices, the polar SVD) on the host through the CPU
  backend's LAPACK driver, the operands copied over and back (as JAX runs ``eig`` on the
  host on GPUs).

The libraries load as NVRTC does (``libcufft``, ``libcusolver``, ``libcublas`` from the
system, ``CUDA_HOME``/``CUDA_PATH`` or pip's ``nvidia-*`` wheels).
"""
from __future__ import annotations

import ctypes
import math
from functools import cached_property

import numpy as np

from tinyjax.backends.c.library import library_call as host_routine
from tinyjax.backends.cuda import solver
from tinyjax.backends.cuda.driver import CUDANotFoundError, library_candidates, nvrtc_compile

__all__ = ["CUDALibraries"]

# cuFFT transform types and directions
_CUFFT = {("c2c", "s"): 0x29, ("c2c", "d"): 0x69, ("r2c", "s"): 0x2a, ("r2c", "d"): 0x6a,
          ("c2r", "s"): 0x2c, ("c2r", "d"): 0x6c}
_FORWARD, _INVERSE = -1, 1
_EXEC = {0x29: "cufftExecC2C", 0x69: "cufftExecZ2Z", 0x2a: "cufftExecR2C",
         0x6a: "cufftExecD2Z", 0x2c: "cufftExecC2R", 0x6c: "cufftExecZ2D"}
_PREFIX = {np.dtype(np.float32): "S", np.dtype(np.float64): "D",
           np.dtype(np.complex64): "C", np.dtype(np.complex128): "Z"}

# NVRTC compiles it with no include path: float2/double2 are built in, nothing else is used
FIXUP_SOURCE = r"""
template <typename T> __device__ T tj_nan();
template <> __device__ float tj_nan<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ double tj_nan<double>() { return __longlong_as_double(0x7ff8000000000000ll); }
template <> __device__ float2 tj_nan<float2>() { return make_float2(tj_nan<float>(), tj_nan<float>()); }
template <> __device__ double2 tj_nan<double2>() { return make_double2(tj_nan<double>(), tj_nan<double>()); }
template <typename T> __device__ T tj_zero() { return T(0); }
template <> __device__ float2 tj_zero<float2>() { return make_float2(0.0f, 0.0f); }
template <> __device__ double2 tj_zero<double2>() { return make_double2(0.0, 0.0); }
template <typename T> __device__ T tj_conj(T x) { return x; }
template <> __device__ float2 tj_conj<float2>(float2 x) { return make_float2(x.x, -x.y); }
template <> __device__ double2 tj_conj<double2>(double2 x) { return make_double2(x.x, -x.y); }

/* the lower Cholesky factor: zero above the diagonal, NaN below it where potrf failed */
template <typename T> __device__ void tril_nan(T *a, const int *info, long n, long batch) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * n * batch) return;
  long b = i / (n * n), r = (i / n) % n, c = i % n;
  if (c > r) a[i] = tj_zero<T>(); else if (info[b]) a[i] = tj_nan<T>();
}
template <typename T> __device__ void conj_copy(const T *a, T *out, long count) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) out[i] = tj_conj<T>(a[i]);
}
/* out[b][r][c] = src[b * src_batch + r * row_step + c * col_step], conjugated if `conj`:
   transposes, and column-major results read into row-major outputs */
template <typename T> __device__ void gather(const T *src, T *out, long rows, long cols,
                                             long row_step, long col_step, long src_batch,
                                             long batch, long conj) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= rows * cols * batch) return;
  long b = i / (rows * cols), r = (i / cols) % rows, c = i % cols;
  T x = src[b * src_batch + r * row_step + c * col_step];
  out[i] = conj ? tj_conj<T>(x) : x;
}
/* NaN in the `per` elements of each matrix whose routine reported failure */
template <typename T> __device__ void nan_failed(T *x, const int *info, long per, long batch) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < per * batch && info[i / per]) x[i] = tj_nan<T>();
}
template <typename T, typename R> __device__ void scale(T *a, R s, long count) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  R *x = (R *)(a + i);
  for (int k = 0; k < (int)(sizeof(T) / sizeof(R)); k++) x[k] *= s;
}
#define TYPES(X) X(S, float, float) X(D, double, double) X(C, float2, float) X(Z, double2, double)
#define DEF(P, T, R) \
  extern "C" __global__ void tril_nan_##P(T *a, const int *info, long n, long batch) { tril_nan<T>(a, info, n, batch); } \
  extern "C" __global__ void conj_copy_##P(const T *a, T *out, long count) { conj_copy<T>(a, out, count); } \
  extern "C" __global__ void gather_##P(const T *src, T *out, long rows, long cols, long row_step, long col_step, long src_batch, long batch, long conj) { gather<T>(src, out, rows, cols, row_step, col_step, src_batch, batch, conj); } \
  extern "C" __global__ void nan_failed_##P(T *x, const int *info, long per, long batch) { nan_failed<T>(x, info, per, batch); } \
  extern "C" __global__ void scale_##P(T *a, R s, long count) { scale<T, R>(a, s, count); }
TYPES(DEF)
"""


def _load(stem: str) -> ctypes.CDLL:
    for name in library_candidates(stem):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise CUDANotFoundError(f"lib{stem} not found (needed for a library call on CUDA)")


class CUDALibraries:
    """cuFFT, cuSOLVER and cuBLAS of one device, loaded on first use."""

    def __init__(self, device):
        self.device = device
        self.drv = device.driver
        self._plans: dict = {}
        self.workspace_sizes: dict = {}   # (routine, type, sizes...) -> elements

    # ---- libraries and kernels -------------------------------------------------------------
    @cached_property
    def cufft(self) -> ctypes.CDLL:
        return _load("cufft")

    @cached_property
    def cusolver(self):
        lib = _load("cusolver")
        handle = ctypes.c_void_p()
        self.check(lib.cusolverDnCreate(ctypes.byref(handle)), "cusolverDnCreate")
        self.check(lib.cusolverDnSetStream(handle, None), "cusolverDnSetStream")
        return lib, handle

    @cached_property
    def gesvdj_info(self) -> ctypes.c_void_p:
        """The Jacobi SVD's parameters (cuSOLVER's defaults: machine precision, 100
        sweeps), made once."""
        lib, _ = self.cusolver
        info = ctypes.c_void_p()
        self.check(lib.cusolverDnCreateGesvdjInfo(ctypes.byref(info)),
                   "cusolverDnCreateGesvdjInfo")
        return info

    @cached_property
    def cublas(self):
        lib = _load("cublas")
        handle = ctypes.c_void_p()
        self.check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self.check(lib.cublasSetStream_v2(handle, None), "cublasSetStream")
        return lib, handle

    @cached_property
    def fixups(self):
        image = nvrtc_compile(FIXUP_SOURCE, self.drv.arch, ("-default-device",))
        return self.drv.load_module(image)

    def kernel(self, name: str, count: int, *args) -> None:
        """Launch a fix-up kernel over ``count`` elements; ``args``: ctypes values (or ints,
        taken as 64-bit: pointers and counts)."""
        fn = self.drv.get_function(self.fixups, name)
        values = [a if isinstance(a, ctypes._SimpleCData) else ctypes.c_int64(a) for a in args]
        params = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        block = 256
        self.drv.launch_params(fn, (max(1, -(-count // block)), 1, 1), (block, 1, 1), 0,
                               ctypes.cast(params, ctypes.c_void_p), name)

    @staticmethod
    def check(rc: int, what: str) -> None:
        if rc != 0:
            raise RuntimeError(f"{what} failed with status {rc}")

    def pointer_array(self, base: int, stride: int, count: int):
        """A device array of ``count`` pointers ``base + k * stride`` (batched routines)."""
        host = np.arange(count, dtype=np.uint64) * np.uint64(stride) + np.uint64(base)
        return self.device.put(host)

    # ---- the steps ---------------------------------------------------------------------------
    def library_call(self, primitive, in_avals, out_avals, params):
        name = primitive.name
        if name == "fft":
            return self._fft(in_avals[0], out_avals[0], params)
        if name == "cholesky" and in_avals[0].size:
            return solver.cholesky(self, in_avals[0])
        if name == "triangular_solve" and in_avals[1].size:
            return solver.triangular_solve(self, in_avals, params)
        if name == "svd" and solver.svd_on_device(in_avals[0], params):
            return solver.svd(self, in_avals[0], params)
        nonempty = all(a.size for a in list(in_avals) + list(out_avals))
        if name == "householder_product" and nonempty:
            return solver.householder_product(self, in_avals)
        if name == "ormqr" and nonempty:
            return solver.ormqr(self, in_avals, params)
        if name == "tridiagonal" and nonempty:
            return solver.tridiagonal(self, in_avals[0], params)
        return self._on_host(primitive, in_avals, out_avals, params)

    def _on_host(self, primitive, in_avals, out_avals, params):
        impl = host_routine(primitive, in_avals, out_avals, params)
        htod = self.drv.htod

        def run(ins, outs):
            host_in = [np.asarray(x) for x in ins]  # device buffers copied back
            host_out = [np.empty(o.shape, o.dtype) for o in outs]
            impl(host_in, host_out)
            for o, h in zip(outs, host_out):
                htod(o.ptr, h.ctypes.data, h.nbytes)
        return run

    def _fft(self, x_aval, out_aval, params):
        kind = params["fft_type"].name
        lengths = tuple(params["fft_lengths"])
        real_part = "s" if np.dtype(x_aval.dtype) in (np.float32, np.complex64) else "d"
        transform = {"FFT": "c2c", "IFFT": "c2c", "RFFT": "r2c", "IRFFT": "c2r"}[kind]
        ctype = _CUFFT[transform, real_part]
        batch = math.prod(x_aval.shape[:len(x_aval.shape) - len(lengths)])
        inverse = kind in ("IFFT", "IRFFT")
        n_total = math.prod(lengths)
        out_prefix = _PREFIX[np.dtype(out_aval.dtype)]

        def run(ins, outs):
            lib = self.cufft
            plan = self._plan(lib, lengths, ctype, batch)
            src = ins[0]
            if transform == "c2r":  # cuFFT's complex-to-real transform overwrites its input
                src = self.device.copy(src)
            self.check(getattr(lib, _EXEC[ctype])(
                plan, ctypes.c_void_p(src.ptr), ctypes.c_void_p(outs[0].ptr),
                *(() if transform != "c2c" else (_INVERSE if inverse else _FORWARD,))),
                _EXEC[ctype])
            if inverse:
                real_t = ctypes.c_float if real_part == "s" else ctypes.c_double
                self.kernel(f"scale_{out_prefix}", outs[0].size, outs[0].ptr,
                             real_t(1.0 / n_total), outs[0].size)
        return run

    def _plan(self, lib, lengths, ctype, batch):
        key = (lengths, ctype, batch)
        plan = self._plans.get(key)
        if plan is None:
            handle = ctypes.c_int()
            dims = (ctypes.c_int * len(lengths))(*lengths)
            self.check(lib.cufftPlanMany(ctypes.byref(handle), len(lengths), dims, None, 1, 0,
                                          None, 1, 0, ctype, batch), "cufftPlanMany")
            plan = self._plans[key] = handle.value
        return plan
