"""The CUDA backend's dense linear algebra on the device: the Cholesky factorisation and
the SVD through cuSOLVER, triangular solves through cuBLAS.

A row-major ``m x n`` buffer is the column-major ``n x m`` transpose, so each routine is
given the transposed problem where that is the same problem (no data moves):

* ``cholesky``: the lower factor of a row-major Hermitian ``A`` is the upper factor of the
  column-major ``A^T = conj(A)``.  One matrix (or matrices over :data:`SMALL`) through
  ``potrf`` with its workspace, as jaxlib does; stacks of small ones through the batched
  ``potrfBatched``.
* ``triangular_solve``: row-major ``op(a) x = b`` is column-major ``x^T op(a)^T = b^T`` --
  the other side and triangle, the same op.  ``trsm`` for one system, ``trsmBatched`` for
  a stack.
* ``svd``: JAX's choice of routine -- Jacobi (``gesvdj``; ``gesvdjBatched`` for stacks of
  matrices up to :data:`SMALL`) up to :data:`JACOBI_MAX` and for ``SvdAlgorithm.JACOBI``,
  else ``gesvd`` (QR iteration).  The SVD of the column-major ``B = A^T`` gives
  ``A = B^T``'s: ``vt = U_B^T`` is ``U_B``'s own memory and ``u = conj(V_B)`` a transposed
  copy (``gesvdj``); with ``gesvd`` (which wants rows >= columns) a wide or square ``A``
  has ``u = VT_B^T`` and ``vt = U_B^T`` in place, a tall one is transposed first.

* ``householder_product``, ``ormqr``, ``tridiagonal``: cuSOLVER's ``orgqr``/``ungqr``,
  ``ormqr``/``unmqr`` and ``sytrd``/``hetrd`` (JAX's choices), one call per matrix.  The
  reflectors sit in columns, so these operate on column-major copies (a transposing
  gather kernel each way): the transposed problem is not the same problem here.

Where a routine reports failure (``info != 0``: not positive definite, no convergence) the
results are NaN, as in JAX.  A stack of large matrices loops here, one library call per
matrix (as jaxlib's kernels do): each call's work dwarfs the call.
"""
from __future__ import annotations

import ctypes
import math
from typing import Callable

import numpy as np

__all__ = ["cholesky", "triangular_solve", "svd", "svd_on_device", "householder_product",
           "ormqr", "tridiagonal", "SMALL", "JACOBI_MAX"]

SMALL = 32          # the batched routines' matrix size limit (gesvdjBatched's own)
JACOBI_MAX = 1024   # JAX's default SVD on CUDA: Jacobi up to 1024 x 1024, gesvd beyond
PREFIX = {np.dtype(np.float32): "S", np.dtype(np.float64): "D",
          np.dtype(np.complex64): "C", np.dtype(np.complex128): "Z"}
REAL_PREFIX = {"S": "S", "D": "D", "C": "S", "Z": "D"}
_LOWER, _UPPER = 0, 1              # cublasFillMode_t
_SIDE_LEFT, _SIDE_RIGHT = 0, 1     # cublasSideMode_t
_OP_N, _OP_T, _OP_C = 0, 1, 2      # cublasOperation_t
_EIG_NOVECTOR, _EIG_VECTOR = 0, 1  # cusolverEigMode_t


def _p(x: int) -> ctypes.c_void_p:
    return ctypes.c_void_p(x)


def _workspace(libs, key: tuple, query: Callable[[ctypes.c_int], int]) -> int:
    """The workspace (elements) a routine asks for, queried once per ``key``."""
    size = libs.workspace_sizes.get(key)
    if size is None:
        lwork = ctypes.c_int()
        libs.check(query(ctypes.byref(lwork)), f"{key[0]} workspace query")
        size = libs.workspace_sizes[key] = max(int(lwork.value), 1)
    return size


def cholesky(libs, aval) -> Callable:
    """``run(ins, outs)``: the lower Cholesky factor of each matrix of ``aval``'s stack (the
    upper triangle zero, NaN where a matrix is not positive definite)."""
    p = PREFIX[np.dtype(aval.dtype)]
    n = aval.shape[-1]
    batch = math.prod(aval.shape[:-2])
    item = np.dtype(aval.dtype).itemsize

    def run(ins, outs):
        lib, handle = libs.cusolver
        a, out = ins[0], outs[0]
        libs.drv.dtod(out.ptr, a.ptr, a.nbytes)
        info = libs.device.alloc((batch,), np.int32)
        if batch == 1 or n > SMALL:
            lwork = _workspace(libs, ("potrf", p, n), lambda size: getattr(
                lib, f"cusolverDn{p}potrf_bufferSize")(handle, _UPPER, n, _p(out.ptr), n, size))
            work = libs.device.alloc((lwork,), aval.dtype)
            potrf = getattr(lib, f"cusolverDn{p}potrf")
            for b in range(batch):
                libs.check(potrf(handle, _UPPER, n, _p(out.ptr + b * n * n * item), n,
                                 _p(work.ptr), lwork, _p(info.ptr + 4 * b)), "potrf")
        else:
            ptrs = libs.pointer_array(out.ptr, n * n * item, batch)
            libs.check(getattr(lib, f"cusolverDn{p}potrfBatched")(
                handle, _UPPER, n, _p(ptrs.ptr), n, _p(info.ptr), batch), "potrfBatched")
        libs.kernel(f"tril_nan_{p}", n * n * batch, out.ptr, info.ptr, n, batch)
    return run


def triangular_solve(libs, avals, params) -> Callable:
    """``run(ins, outs)``: ``x`` with ``op(a) x = b`` (``x op(a) = b`` unless
    ``left_side``) for each system of the stack."""
    a_aval, b_aval = avals
    p = PREFIX[np.dtype(a_aval.dtype)]
    rows, cols = b_aval.shape[-2:]
    k = rows if params["left_side"] else cols
    batch = math.prod(b_aval.shape[:-2])
    item = np.dtype(a_aval.dtype).itemsize
    trans, conj = params["transpose_a"], params["conjugate_a"]
    op = (2 if conj else 1) if trans else 0
    side = 1 if params["left_side"] else 0
    uplo = _UPPER if params["lower"] else _LOWER
    diag = 1 if params["unit_diagonal"] else 0
    one = np.ones(1, a_aval.dtype)

    def run(ins, outs):
        lib, handle = libs.cublas
        a, b = ins
        x = outs[0]
        libs.drv.dtod(x.ptr, b.ptr, b.nbytes)
        if conj and not trans:   # conj(a) alone is no cuBLAS op: a conjugated copy
            ac = libs.device.alloc(a.shape, a.dtype)
            libs.kernel(f"conj_copy_{p}", a.size, a.ptr, ac.ptr, a.size)
            a = ac
        if batch == 1:
            libs.check(getattr(lib, f"cublas{p}trsm_v2")(
                handle, side, uplo, op, diag, cols, rows, _p(one.ctypes.data), _p(a.ptr), k,
                _p(x.ptr), cols), "trsm")
            return
        a_ptrs = libs.pointer_array(a.ptr, k * k * item, batch)
        x_ptrs = libs.pointer_array(x.ptr, rows * cols * item, batch)
        libs.check(getattr(lib, f"cublas{p}trsmBatched")(
            handle, side, uplo, op, diag, cols, rows, _p(one.ctypes.data), _p(a_ptrs.ptr), k,
            _p(x_ptrs.ptr), cols, batch), "trsmBatched")
    return run


def svd_on_device(aval, params) -> bool:
    """Whether the SVD of ``aval``'s matrices with ``params`` runs here (else on the host:
    empty matrices, a subset of singular values, the polar and divide-and-conquer
    algorithms)."""
    k = min(aval.shape[-2:])
    subset = params.get("subset_by_index")
    algorithm = getattr(params.get("algorithm"), "name", None)
    return k > 0 and subset in (None, (0, k)) and algorithm in (None, "DEFAULT", "QR",
                                                                "JACOBI")


def svd(libs, aval, params) -> Callable:
    """``run(ins, outs)``: ``s`` (descending) and with ``compute_uv`` ``u`` and ``vt`` of
    each matrix of ``aval``'s stack (see the module's docstring for the routines)."""
    m, n = aval.shape[-2:]
    algorithm = getattr(params["algorithm"], "name", None)
    jacobi = algorithm == "JACOBI" or (algorithm in (None, "DEFAULT") and
                                       max(m, n) <= JACOBI_MAX)
    shape = _SvdShape(aval, params["full_matrices"], params["compute_uv"])
    return (_gesvdj if jacobi else _gesvd)(libs, shape)


class _SvdShape:
    """The sizes of one SVD step: ``m x n`` matrices (row-major), ``batch`` of them,
    ``k = min(m, n)``; the outputs' ``u`` (``m x u_cols``) and ``vt`` (``vt_rows x n``)."""

    def __init__(self, aval, full_matrices: bool, compute_uv: bool):
        self.dtype = np.dtype(aval.dtype)
        self.p = PREFIX[self.dtype]
        self.real = np.dtype(self.dtype.type(0).real.dtype)
        self.m, self.n = aval.shape[-2:]
        self.k = min(self.m, self.n)
        self.batch = math.prod(aval.shape[:-2])
        self.item = self.dtype.itemsize
        self.full, self.compute_uv = full_matrices, compute_uv
        self.u_cols = self.m if full_matrices else self.k
        self.vt_rows = self.n if full_matrices else self.k

    def fail_to_nan(self, libs, outs, info) -> None:
        """NaN in every output of the matrices whose routine reported failure."""
        per = [self.k] + ([self.m * self.u_cols, self.vt_rows * self.n]
                          if self.compute_uv else [])
        prefixes = [REAL_PREFIX[self.p]] + [self.p] * (len(per) - 1)
        for out, count, prefix in zip(outs, per, prefixes):
            libs.kernel(f"nan_failed_{prefix}", count * self.batch, out.ptr, info.ptr,
                        count, self.batch)


def _gesvdj(libs, sh: _SvdShape) -> Callable:
    """The Jacobi SVD of ``B = A^T`` (column-major ``n x m``): ``vt = U_B^T`` (``U_B``'s
    memory) and ``u = conj(V_B)`` (a transposed copy)."""
    m, n, k, p, batch = sh.m, sh.n, sh.k, sh.p, sh.batch
    batched = batch > 1 and max(m, n) <= SMALL   # gesvdjBatched: full U and V only
    econ = 0 if batched else int(not sh.full)
    u_b_cols = k if econ else n      # U_B: n x u_b_cols, leading dimension n
    v_b_cols = k if econ else m      # V_B: m x v_b_cols, leading dimension m
    job = _EIG_VECTOR if sh.compute_uv else _EIG_NOVECTOR
    direct_vt = sh.compute_uv and u_b_cols == sh.vt_rows   # U_B written as vt itself

    def run(ins, outs):
        lib, handle = libs.cusolver
        params = libs.gesvdj_info
        work_a = libs.device.copy(ins[0])   # (gesvdj overwrites its operand)
        s = outs[0]
        u_b = outs[2] if direct_vt else libs.device.alloc((batch, n, u_b_cols), sh.dtype)
        v_b = libs.device.alloc((batch, v_b_cols, m), sh.dtype)
        info = libs.device.alloc((batch,), np.int32)
        args = lambda a, s_, u, v: (_p(a), n, _p(s_), _p(u), n, _p(v), m)  # noqa: E731
        if batched:
            lwork = _workspace(libs, ("gesvdjBatched", p, m, n, job, batch), lambda size: getattr(
                lib, f"cusolverDn{p}gesvdjBatched_bufferSize")(
                    handle, job, n, m, *args(work_a.ptr, s.ptr, u_b.ptr, v_b.ptr), size,
                    params, batch))
            work = libs.device.alloc((lwork,), sh.dtype)
            libs.check(getattr(lib, f"cusolverDn{p}gesvdjBatched")(
                handle, job, n, m, *args(work_a.ptr, s.ptr, u_b.ptr, v_b.ptr), _p(work.ptr),
                lwork, _p(info.ptr), params, batch), "gesvdjBatched")
        else:
            lwork = _workspace(libs, ("gesvdj", p, m, n, job, econ), lambda size: getattr(
                lib, f"cusolverDn{p}gesvdj_bufferSize")(
                    handle, job, econ, n, m, *args(work_a.ptr, s.ptr, u_b.ptr, v_b.ptr), size,
                    params))
            work = libs.device.alloc((lwork,), sh.dtype)
            gesvdj = getattr(lib, f"cusolverDn{p}gesvdj")
            real_item = sh.real.itemsize
            for b in range(batch):
                libs.check(gesvdj(handle, job, econ, n, m, *args(
                    work_a.ptr + b * m * n * sh.item, s.ptr + b * k * real_item,
                    u_b.ptr + b * n * u_b_cols * sh.item, v_b.ptr + b * m * v_b_cols * sh.item),
                    _p(work.ptr), lwork, _p(info.ptr + 4 * b), params), "gesvdj")
        if sh.compute_uv:
            # u[i, j] = conj(V_B[i, j]) = conj(v_b[i + j m])
            libs.kernel(f"gather_{p}", batch * m * sh.u_cols, v_b.ptr, outs[1].ptr, m,
                        sh.u_cols, 1, m, m * v_b_cols, batch, 1)
            if not direct_vt:   # vt[j, i] = U_B[i, j] = u_b[i + j n], the first rows
                libs.kernel(f"gather_{p}", batch * sh.vt_rows * n, u_b.ptr, outs[2].ptr,
                            sh.vt_rows, n, n, 1, n * u_b_cols, batch, 0)
        sh.fail_to_nan(libs, outs, info)
    return run


def _gesvd(libs, sh: _SvdShape) -> Callable:
    """The QR-iteration SVD (``gesvd``, rows >= columns): of ``B = A^T`` for a wide or
    square ``A`` (``u = VT_B^T``, ``vt = U_B^T``: their own memory), of ``A`` transposed
    into column-major for a tall one (``u``, ``vt`` transposed copies)."""
    m, n, k, p, batch, item = sh.m, sh.n, sh.k, sh.p, sh.batch, sh.item
    tall = m > n
    rows, cols = (m, n) if tall else (n, m)   # the column-major operand
    job = ord("A") if sh.full else ord("S")
    if not sh.compute_uv:
        job = ord("N")
    u_cols = rows if sh.full else cols        # U: rows x u_cols, leading dimension rows
    vt_rows = cols                            # VT: cols x cols (k == cols)

    def run(ins, outs):
        lib, handle = libs.cusolver
        a = ins[0]
        if tall:   # column-major A: work[j m + i] = a[i n + j]
            work_a = libs.device.alloc(a.shape, a.dtype)
            libs.kernel(f"gather_{p}", a.size, a.ptr, work_a.ptr, n, m, 1, n, m * n, batch, 0)
        else:
            work_a = libs.device.copy(a)
        s = outs[0]
        if sh.compute_uv and not tall:
            u, vt = outs[2], outs[1]   # U_B is vt, VT_B is u
        else:
            u = libs.device.alloc((batch, u_cols, rows) if sh.compute_uv else (1,), sh.dtype)
            vt = libs.device.alloc((batch, cols, vt_rows) if sh.compute_uv else (1,), sh.dtype)
        info = libs.device.alloc((batch,), np.int32)
        rwork = libs.device.alloc((max(k, 2),), sh.real)
        lwork = _workspace(libs, ("gesvd", p, rows, cols), lambda size: getattr(
            lib, f"cusolverDn{p}gesvd_bufferSize")(handle, rows, cols, size))
        work = libs.device.alloc((lwork,), sh.dtype)
        gesvd = getattr(lib, f"cusolverDn{p}gesvd")
        u_step, vt_step = (rows * u_cols, cols * vt_rows) if sh.compute_uv else (0, 0)
        for b in range(batch):
            libs.check(gesvd(
                handle, job, job, rows, cols, _p(work_a.ptr + b * m * n * item), rows,
                _p(s.ptr + b * k * sh.real.itemsize), _p(u.ptr + b * u_step * item), rows,
                _p(vt.ptr + b * vt_step * item), cols, _p(work.ptr), lwork, _p(rwork.ptr),
                _p(info.ptr + 4 * b)), "gesvd")
        if sh.compute_uv and tall:
            # u[i, j] = U[i, j] = u[i + j m]; vt[j, i] = VT[j, i] = vt[j + i n]
            libs.kernel(f"gather_{p}", batch * m * sh.u_cols, u.ptr, outs[1].ptr, m,
                        sh.u_cols, 1, m, u_step, batch, 0)
            libs.kernel(f"gather_{p}", batch * n * n, vt.ptr, outs[2].ptr, n, n, 1, n,
                        vt_step, batch, 0)
        sh.fail_to_nan(libs, outs, info)
    return run


# ---- Householder products and the tridiagonal reduction -----------------------------------


def _column_major(libs, p: str, src: int, dst: int, rows: int, cols: int, batch: int) -> None:
    """Each row-major ``rows x cols`` matrix at ``src`` written column-major at ``dst``."""
    libs.kernel(f"gather_{p}", batch * rows * cols, src, dst, cols, rows, 1, cols,
                rows * cols, batch, 0)


def _row_major(libs, p: str, src: int, dst: int, rows: int, cols: int, batch: int) -> None:
    """Each column-major ``rows x cols`` matrix at ``src`` written row-major at ``dst``."""
    libs.kernel(f"gather_{p}", batch * rows * cols, src, dst, rows, cols, 1, rows,
                rows * cols, batch, 0)


def _orthogonal(p: str, stem: str) -> str:
    """cuSOLVER's name of an orthogonal (real) or unitary (complex) routine."""
    return p + ("un" if p in "CZ" else "or") + stem


def householder_product(libs, avals) -> Callable:
    """``run(ins, outs)``: the first ``n`` columns of the product of the ``k`` reflectors
    below the diagonal of each ``m x n`` matrix (``orgqr``/``ungqr``)."""
    a_aval, taus_aval = avals
    p = PREFIX[np.dtype(a_aval.dtype)]
    m, n = a_aval.shape[-2:]
    k = taus_aval.shape[-1]
    batch = math.prod(a_aval.shape[:-2])
    item = np.dtype(a_aval.dtype).itemsize
    name = _orthogonal(p, "gqr")

    def run(ins, outs):
        lib, handle = libs.cusolver
        a, taus = ins
        work_a = libs.device.alloc(a.shape, a.dtype)
        _column_major(libs, p, a.ptr, work_a.ptr, m, n, batch)
        info = libs.device.alloc((batch,), np.int32)
        lwork = _workspace(libs, (name, m, n, k), lambda size: getattr(
            lib, f"cusolverDn{name}_bufferSize")(handle, m, n, k, _p(work_a.ptr), m,
                                                 _p(taus.ptr), size))
        work = libs.device.alloc((lwork,), a.dtype)
        orgqr = getattr(lib, f"cusolverDn{name}")
        for b in range(batch):
            libs.check(orgqr(handle, m, n, k, _p(work_a.ptr + b * m * n * item), m,
                             _p(taus.ptr + b * k * item), _p(work.ptr), lwork,
                             _p(info.ptr + 4 * b)), name)
        _row_major(libs, p, work_a.ptr, outs[0].ptr, m, n, batch)
    return run


def ormqr(libs, avals, params) -> Callable:
    """``run(ins, outs)``: each ``c`` multiplied by ``Q`` (or ``Q^T``/``Q^H``) of the ``k``
    reflectors below the diagonal of ``a`` (``ormqr``/``unmqr``), on the left or right."""
    a_aval, taus_aval, c_aval = avals
    p = PREFIX[np.dtype(a_aval.dtype)]
    m, n = a_aval.shape[-2:]
    k = taus_aval.shape[-1]
    rows, cols = c_aval.shape[-2:]
    batch = math.prod(a_aval.shape[:-2])
    item = np.dtype(a_aval.dtype).itemsize
    side = _SIDE_LEFT if params["left"] else _SIDE_RIGHT
    op = (_OP_C if p in "CZ" else _OP_T) if params["transpose"] else _OP_N
    name = _orthogonal(p, "mqr")

    def run(ins, outs):
        lib, handle = libs.cusolver
        a, taus, c = ins
        work_a = libs.device.alloc(a.shape, a.dtype)
        work_c = libs.device.alloc(c.shape, c.dtype)
        _column_major(libs, p, a.ptr, work_a.ptr, m, n, batch)
        _column_major(libs, p, c.ptr, work_c.ptr, rows, cols, batch)
        info = libs.device.alloc((batch,), np.int32)
        lwork = _workspace(libs, (name, side, op, m, k, rows, cols), lambda size: getattr(
            lib, f"cusolverDn{name}_bufferSize")(handle, side, op, rows, cols, k,
                                                 _p(work_a.ptr), m, _p(taus.ptr),
                                                 _p(work_c.ptr), rows, size))
        work = libs.device.alloc((lwork,), a.dtype)
        apply = getattr(lib, f"cusolverDn{name}")
        for b in range(batch):
            libs.check(apply(handle, side, op, rows, cols, k,
                             _p(work_a.ptr + b * m * n * item), m, _p(taus.ptr + b * k * item),
                             _p(work_c.ptr + b * rows * cols * item), rows, _p(work.ptr), lwork,
                             _p(info.ptr + 4 * b)), name)
        _row_major(libs, p, work_c.ptr, outs[0].ptr, rows, cols, batch)
    return run


def tridiagonal(libs, aval, params) -> Callable:
    """``run(ins, outs)``: each Hermitian matrix (its ``lower`` or upper triangle) reduced
    to real tridiagonal form (``sytrd``/``hetrd``): the reduced matrix with the
    reflectors, the diagonal, the off-diagonal and the reflectors' factors."""
    p = PREFIX[np.dtype(aval.dtype)]
    n = aval.shape[-1]
    batch = math.prod(aval.shape[:-2])
    item = np.dtype(aval.dtype).itemsize
    real_item = item // 2 if p in "CZ" else item
    uplo = _LOWER if params["lower"] else _UPPER
    name = p + ("hetrd" if p in "CZ" else "sytrd")

    def run(ins, outs):
        lib, handle = libs.cusolver
        a = ins[0]
        out, d, e, taus = outs
        work_a = libs.device.alloc(a.shape, a.dtype)
        _column_major(libs, p, a.ptr, work_a.ptr, n, n, batch)
        info = libs.device.alloc((batch,), np.int32)
        lwork = _workspace(libs, (name, uplo, n), lambda size: getattr(
            lib, f"cusolverDn{name}_bufferSize")(handle, uplo, n, _p(work_a.ptr), n,
                                                 _p(d.ptr), _p(e.ptr), _p(taus.ptr), size))
        work = libs.device.alloc((lwork,), a.dtype)
        reduce = getattr(lib, f"cusolverDn{name}")
        for b in range(batch):
            libs.check(reduce(handle, uplo, n, _p(work_a.ptr + b * n * n * item), n,
                              _p(d.ptr + b * n * real_item),
                              _p(e.ptr + b * (n - 1) * real_item),
                              _p(taus.ptr + b * (n - 1) * item), _p(work.ptr), lwork,
                              _p(info.ptr + 4 * b)), name)
        _row_major(libs, p, work_a.ptr, out.ptr, n, n, batch)
    return run
