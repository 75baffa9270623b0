"""The CUDA backend's library calls, on the default stream with the kernels around them:

* FFTs through cuFFT (plans over the innermost 1-3 axes, batched over the rest; the
  inverse transforms scaled by ``1/n`` as numpy's are);
* ``cholesky`` through cuSOLVER's batched ``potrf`` and ``triangular_solve`` through
  cuBLAS's batched ``trsm`` -- row-major buffers are column-major transposes, and both
  problems are the same problem transposed, so no data moves (a small kernel zeroes the
  unused triangle and writes JAX's NaNs where the factorisation failed);
* the other factorisations (LU, QR, SVD, eigh, eig, Schur) and the tridiagonal solve on
  the host through the CPU backend's LAPACK driver, the operands copied over and back (as
  JAX runs ``eig`` on the host on GPUs).

The libraries load as NVRTC does (``libcufft``, ``libcusolver``, ``libcublas`` from the
system, ``CUDA_HOME``/``CUDA_PATH`` or pip's ``nvidia-*`` wheels).
"""
from __future__ import annotations

import ctypes
import math
from functools import cached_property

import numpy as np

from tinyjax.backends.c.library import library_call as host_routine
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

    # ---- libraries and kernels -------------------------------------------------------------
    @cached_property
    def cufft(self) -> ctypes.CDLL:
        return _load("cufft")

    @cached_property
    def cusolver(self):
        lib = _load("cusolver")
        handle = ctypes.c_void_p()
        self._check(lib.cusolverDnCreate(ctypes.byref(handle)), "cusolverDnCreate")
        self._check(lib.cusolverDnSetStream(handle, None), "cusolverDnSetStream")
        return lib, handle

    @cached_property
    def cublas(self):
        lib = _load("cublas")
        handle = ctypes.c_void_p()
        self._check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self._check(lib.cublasSetStream_v2(handle, None), "cublasSetStream")
        return lib, handle

    @cached_property
    def fixups(self):
        image = nvrtc_compile(FIXUP_SOURCE, self.drv.arch, ("-default-device",))
        return self.drv.load_module(image)

    def _kernel(self, name: str, count: int, *args) -> None:
        """Launch a fix-up kernel over ``count`` elements; ``args``: ctypes values (or ints,
        taken as 64-bit: pointers and counts)."""
        fn = self.drv.get_function(self.fixups, name)
        values = [a if isinstance(a, ctypes._SimpleCData) else ctypes.c_int64(a) for a in args]
        params = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        block = 256
        self.drv.launch_params(fn, (max(1, -(-count // block)), 1, 1), (block, 1, 1), 0,
                               ctypes.cast(params, ctypes.c_void_p), name)

    @staticmethod
    def _check(rc: int, what: str) -> None:
        if rc != 0:
            raise RuntimeError(f"{what} failed with status {rc}")

    def _pointer_array(self, base: int, stride: int, count: int):
        """A device array of ``count`` pointers ``base + k * stride`` (batched routines)."""
        host = np.arange(count, dtype=np.uint64) * np.uint64(stride) + np.uint64(base)
        return self.device.put(host)

    # ---- the steps ---------------------------------------------------------------------------
    def library_call(self, primitive, in_avals, out_avals, params):
        name = primitive.name
        if name == "fft":
            return self._fft(in_avals[0], out_avals[0], params)
        if name == "cholesky" and in_avals[0].size:
            return self._cholesky(in_avals[0])
        if name == "triangular_solve" and in_avals[1].size:
            return self._triangular_solve(in_avals, params)
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

    def _cholesky(self, aval):
        p = _PREFIX[np.dtype(aval.dtype)]
        n = aval.shape[-1]
        batch = math.prod(aval.shape[:-2])
        item = np.dtype(aval.dtype).itemsize

        def run(ins, outs):
            lib, handle = self.cusolver
            a, out = ins[0], outs[0]
            self.drv.dtod(out.ptr, a.ptr, a.nbytes)
            ptrs = self._pointer_array(out.ptr, n * n * item, batch)
            info = self.device.alloc((batch,), np.int32)
            # the row-major lower factor is the column-major upper one (see the C driver)
            self._check(getattr(lib, f"cusolverDn{p}potrfBatched")(
                handle, 1, n, ctypes.c_void_p(ptrs.ptr), n, ctypes.c_void_p(info.ptr), batch),
                "potrfBatched")
            self._kernel(f"tril_nan_{p}", n * n * batch, out.ptr, info.ptr, n, batch)
        return run

    def _triangular_solve(self, avals, params):
        """Row-major ``op(a) x = b`` is column-major ``x^T op(a)^T = b^T``: the other side and
        triangle, the same op (a conjugated copy of ``a`` for conjugation alone)."""
        a_aval, b_aval = avals
        p = _PREFIX[np.dtype(a_aval.dtype)]
        rows, cols = b_aval.shape[-2:]
        k = rows if params["left_side"] else cols
        batch = math.prod(b_aval.shape[:-2])
        item = np.dtype(a_aval.dtype).itemsize
        trans, conj = params["transpose_a"], params["conjugate_a"]
        op = (2 if conj else 1) if trans else 0
        side = 1 if params["left_side"] else 0
        uplo = 1 if params["lower"] else 0
        diag = 1 if params["unit_diagonal"] else 0
        one = np.ones(1, a_aval.dtype)

        def run(ins, outs):
            lib, handle = self.cublas
            a, b = ins
            x = outs[0]
            self.drv.dtod(x.ptr, b.ptr, b.nbytes)
            if conj and not trans:
                ac = self.device.alloc(a.shape, a.dtype)
                self._kernel(f"conj_copy_{p}", a.size, a.ptr, ac.ptr, a.size)
                a = ac
            a_ptrs = self._pointer_array(a.ptr, k * k * item, batch)
            x_ptrs = self._pointer_array(x.ptr, rows * cols * item, batch)
            self._check(getattr(lib, f"cublas{p}trsmBatched")(
                handle, side, uplo, op, diag, cols, rows, ctypes.c_void_p(one.ctypes.data),
                ctypes.c_void_p(a_ptrs.ptr), k, ctypes.c_void_p(x_ptrs.ptr), cols, batch),
                "trsmBatched")
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
            self._check(getattr(lib, _EXEC[ctype])(
                plan, ctypes.c_void_p(src.ptr), ctypes.c_void_p(outs[0].ptr),
                *(() if transform != "c2c" else (_INVERSE if inverse else _FORWARD,))),
                _EXEC[ctype])
            if inverse:
                real_t = ctypes.c_float if real_part == "s" else ctypes.c_double
                self._kernel(f"scale_{out_prefix}", outs[0].size, outs[0].ptr,
                             real_t(1.0 / n_total), outs[0].size)
        return run

    def _plan(self, lib, lengths, ctype, batch):
        key = (lengths, ctype, batch)
        plan = self._plans.get(key)
        if plan is None:
            handle = ctypes.c_int()
            dims = (ctypes.c_int * len(lengths))(*lengths)
            self._check(lib.cufftPlanMany(ctypes.byref(handle), len(lengths), dims, None, 1, 0,
                                          None, 1, 0, ctype, batch), "cufftPlanMany")
            plan = self._plans[key] = handle.value
        return plan
