"""The CPU backend's library calls: LAPACK and BLAS routines called from C through the
function pointers SciPy exports (``scipy.linalg.cython_lapack`` / ``cython_blas``
``__pyx_capi__`` capsules: the LAPACK jaxlib itself calls), the batch loop in C
(:mod:`tinyjax.backends.c.lapack_source`); the FFT calls SciPy's pocketfft from Python
(pocketfft has no C entry point outside SciPy's and numpy's extension modules), long 1-D
transforms in four steps (:mod:`tinyjax.backends.c.fft`).

``library_call(primitive, in_avals, out_avals, params)`` gives ``impl(ins, outs)``, the
routine of one library step of a compiled program; :func:`routine` exposes the C
function and its arguments for a caller that calls it without Python.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Callable, NamedTuple

import numpy as np

from tinyjax.backends.c.compiler import compile_source
from tinyjax.backends.c.fft import fft_call
from tinyjax.backends.c.lapack_source import lapack_source
from tinyjax.backends.interp import host_library_call

__all__ = ["library_call", "routine", "Routine"]

_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d",
           np.dtype(np.complex64): "c", np.dtype(np.complex128): "z"}


class Routine(NamedTuple):
    """A C routine of the driver and what it is called with: ``fn(bufs, params, fns)``
    with ``bufs`` the data pointers of the inputs then the outputs."""
    fn: Callable
    params: ctypes.Array
    fns: ctypes.Array


@lru_cache(maxsize=None)
def _driver():
    return compile_source(lapack_source())


@lru_cache(maxsize=None)
def _pointer(name: str) -> int:
    """The C function pointer SciPy exports for the LAPACK/BLAS routine ``name``."""
    from scipy.linalg import cython_blas, cython_lapack
    capi = dict(cython_blas.__pyx_capi__, **cython_lapack.__pyx_capi__)
    capsule = capi[name]
    get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


def _batch(shape, rank: int) -> int:
    return int(np.prod(shape[:len(shape) - rank], dtype=np.int64))


def _lapack_call(primitive, in_avals, out_avals, params) -> tuple[str, list[str], list[int]]:
    """(driver routine, LAPACK routines it calls, integer parameters) of a step."""
    name = primitive.name
    a = in_avals[0]
    p = _PREFIX.get(np.dtype(a.dtype) if name != "tridiagonal_solve" else
                    np.dtype(in_avals[3].dtype))
    real = p in ("s", "d")
    if name == "lu_pivots_to_permutation":
        return "tj_lu_pivots_to_permutation", [], [_batch(a.shape, 1), a.shape[-1],
                                                   params["permutation_size"]]
    if p is None:
        raise NotImplementedError(f"no library call for '{name}' on {a.dtype}")
    shape = a.shape
    if name == "cholesky":
        return f"tj_potrf_{p}", [f"{p}potrf"], [_batch(shape, 2), shape[-1]]
    if name == "lu":
        return f"tj_getrf_{p}", [f"{p}getrf"], [_batch(shape, 2), shape[-2], shape[-1]]
    if name == "qr":
        return f"tj_qr_{p}", [f"{p}geqrf", f"{p}{'or' if real else 'un'}gqr", f"{p}geqp3"], \
            [_batch(shape, 2), shape[-2], shape[-1], params["full_matrices"],
             params["pivoting"]]
    if name == "svd":
        if getattr(params["algorithm"], "name", None) in ("JACOBI", "POLAR"):
            raise NotImplementedError("The SVD Jacobi and Polar algorithms are not "
                                      "implemented on CPU.")
        gesvd = getattr(params["algorithm"], "name", None) == "QR"
        return f"tj_svd_{p}", [f"{p}gesdd", f"{p}gesvd"], \
            [_batch(shape, 2), shape[-2], shape[-1], params["full_matrices"],
             params["compute_uv"], gesvd]
    if name == "eigh":
        return f"tj_eigh_{p}", [f"{p}{'sy' if real else 'he'}evd"], \
            [_batch(shape, 2), shape[-1], params["lower"]]
    if name == "eig":
        return f"tj_eig_{p}", [f"{p}geev"], [_batch(shape, 2), shape[-1],
                                             params["compute_left_eigenvectors"],
                                             params["compute_right_eigenvectors"]]
    if name == "schur":
        return f"tj_schur_{p}", [f"{p}gees"], [_batch(shape, 2), shape[-1],
                                               params["compute_schur_vectors"]]
    if name == "triangular_solve":
        b = in_avals[1]
        return f"tj_trsm_{p}", [f"{p}trsm"], \
            [_batch(shape, 2), b.shape[-2], b.shape[-1], params["left_side"], params["lower"],
             params["transpose_a"], params["conjugate_a"], params["unit_diagonal"]]
    if name == "hessenberg":
        return f"tj_gehrd_{p}", [f"{p}gehrd"], [_batch(shape, 2), shape[-1]]
    orthogonal = "or" if real else "un"
    if name == "householder_product":
        return f"tj_orgqr_{p}", [f"{p}{orthogonal}gqr"], \
            [_batch(shape, 2), shape[-2], shape[-1], in_avals[1].shape[-1]]
    if name == "ormqr":
        c = in_avals[2]
        return f"tj_ormqr_{p}", [f"{p}{orthogonal}mqr"], \
            [_batch(shape, 2), shape[-2], shape[-1], in_avals[1].shape[-1], c.shape[-2],
             c.shape[-1], params["left"], params["transpose"]]
    if name == "tridiagonal":
        return f"tj_sytrd_{p}", [f"{p}{'sy' if real else 'he'}trd"], \
            [_batch(shape, 2), shape[-1], params["lower"]]
    if name == "tridiagonal_solve":
        b = in_avals[3]
        return f"tj_gtsv_{p}", [f"{p}gtsv"], [_batch(b.shape, 2), b.shape[-2], b.shape[-1]]
    raise NotImplementedError(f"no library call for '{name}' on the CPU")


def routine(primitive, in_avals, out_avals, params) -> Routine:
    """The driver routine of a library step, its parameters and LAPACK pointers bound."""
    fn_name, lapack, ints = _lapack_call(primitive, in_avals, out_avals, params)
    fn = _driver().function(fn_name, [ctypes.c_void_p] * 3, ctypes.c_int)
    return Routine(fn, (ctypes.c_long * max(len(ints), 1))(*map(int, ints)),
                   (ctypes.c_void_p * max(len(lapack), 1))(*map(_pointer, lapack)))


def library_call(primitive, in_avals, out_avals, params):
    """``impl(ins, outs)`` of a library step on the CPU: the C driver over LAPACK, the FFT
    through pocketfft; empty operands (which never reach either) through the eager
    implementation."""
    if any(0 in a.shape for a in list(in_avals) + list(out_avals)):
        return host_library_call(primitive, params)
    if primitive.name == "fft":
        return fft_call(params["fft_type"].name, tuple(params["fft_lengths"]),
                        tuple(in_avals[0].shape), in_avals[0].dtype, out_avals[0].dtype)
    if primitive.name == "eigh" and params["subset_by_index"] not in (
            None, (0, in_avals[0].shape[-1])):
        raise NotImplementedError("subset_by_index not supported on CPU and GPU")
    call = routine(primitive, in_avals, out_avals, params)
    n = len(in_avals) + len(out_avals)
    ptrs_t = ctypes.c_void_p * n
    dtypes = [np.dtype(a.dtype) for a in in_avals]

    def impl(ins, outs):
        ins = [np.ascontiguousarray(x, dt) for x, dt in zip(ins, dtypes)]
        ptrs = ptrs_t(*[x.ctypes.data for x in ins], *[o.ctypes.data for o in outs])
        if call.fn(ptrs, call.params, call.fns) != 0:
            raise MemoryError(f"{primitive.name}: out of memory for LAPACK's workspace")
    impl.routine = call
    return impl
