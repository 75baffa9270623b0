"""A stand-in for a GPU, cuSOLVER, cuBLAS and the CUDA backend's fix-up kernels, on host
memory, for testing the CUDA backend's library steps (tinyjax/backends/cuda/solver.py)
where there is no GPU.

Every routine does what NVIDIA's documentation says it does, in numpy on the column-major
matrices the pointers, sizes and leading dimensions describe; the fix-up kernels do what
their CUDA source says.  Every pointer a routine or kernel reads or writes must lie inside
one allocation, so an offset, a leading dimension or a batch stride that is off fails
here as it would corrupt memory on the GPU.  New allocations are filled with NaN, so a
result read from memory nobody wrote shows up."""
from __future__ import annotations

import ctypes
from types import SimpleNamespace

import numpy as np

__all__ = ["fake_libraries"]

_TYPES = {"S": np.float32, "D": np.float64, "C": np.complex64, "Z": np.complex128}


class Buffer:
    """A device buffer (``CUDABuffer``'s fields) over host memory."""

    def __init__(self, memory: "Memory", shape, dtype):
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self._data = np.empty(max(self.size * self.dtype.itemsize, 16), np.uint8)
        self._data.view(np.uint8)[:] = 0xFF   # NaN in every float type
        self.ptr = self._data.ctypes.data
        memory.keep(self)

    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def numpy(self) -> np.ndarray:
        return self._data[:self.nbytes].view(self.dtype).reshape(self.shape).copy()


class Memory:
    """The allocations, and views of them by address (checked to lie inside one)."""

    def __init__(self):
        self.buffers: list[Buffer] = []

    def keep(self, buf: Buffer) -> None:
        self.buffers.append(buf)

    def view(self, ptr, dtype, count: int) -> np.ndarray:
        ptr = ptr.value if isinstance(ptr, ctypes.c_void_p) else int(ptr)
        nbytes = int(count) * np.dtype(dtype).itemsize
        for b in self.buffers:
            if b.ptr <= ptr and ptr + nbytes <= b.ptr + b._data.nbytes:
                raw = (ctypes.c_char * nbytes).from_address(ptr)
                return np.frombuffer(raw, np.uint8).view(dtype)
        raise AssertionError(f"{nbytes} bytes at {ptr:#x} lie outside every allocation")

    def col_major(self, ptr, dtype, rows: int, cols: int, ld: int) -> np.ndarray:
        """The column-major ``rows x cols`` matrix at ``ptr`` (a view, writable)."""
        assert ld >= max(rows, 1), (ld, rows)
        flat = self.view(ptr, dtype, ld * (cols - 1) + rows if cols else 0)
        return np.lib.stride_tricks.as_strided(
            flat, (rows, cols), (flat.itemsize, ld * flat.itemsize))


class Device:
    """The CUDA backend's buffer methods the library steps use."""

    def __init__(self, memory: Memory):
        self.memory = memory
        self.driver = SimpleNamespace(
            dtod=lambda dst, src, n: self._copy(dst, src, n),
            htod=lambda dst, host, n: ctypes.memmove(dst, host, n))

    def _copy(self, dst: int, src: int, nbytes: int) -> None:
        self.memory.view(dst, np.uint8, nbytes)
        ctypes.memmove(dst, self.memory.view(src, np.uint8, nbytes).ctypes.data, nbytes)

    def alloc(self, shape, dtype) -> Buffer:
        return Buffer(self.memory, shape, dtype)

    def put(self, value) -> Buffer:
        a = np.ascontiguousarray(value)
        buf = self.alloc(a.shape, a.dtype)
        buf._data[:a.nbytes] = a.reshape(-1).view(np.uint8)
        return buf

    def copy(self, buf: Buffer) -> Buffer:
        out = self.alloc(buf.shape, buf.dtype)
        self._copy(out.ptr, buf.ptr, buf.nbytes)
        return out


def _int(x) -> int:
    return x.value if isinstance(x, ctypes._SimpleCData) else int(x)


def _set(ref, value: int) -> None:
    ref._obj.value = value


def _lapack_svd(a: np.ndarray, full: bool):
    """numpy's SVD with ``V`` (not ``V^H``)."""
    u, s, vh = np.linalg.svd(a, full_matrices=full)
    return u, s, np.conj(vh).T


class Solver:
    """cuSOLVER's dense routines the backend calls (real and complex, one letter each)."""

    def __init__(self, memory: Memory):
        self.mem = memory
        self.calls: list[str] = []
        for p, dt in _TYPES.items():
            for name in ("potrf_bufferSize", "potrf", "potrfBatched", "gesvdj_bufferSize",
                         "gesvdj", "gesvdjBatched_bufferSize", "gesvdjBatched",
                         "gesvd_bufferSize", "gesvd"):
                setattr(self, f"cusolverDn{p}{name}",
                        self._logged(f"{p}{name}", getattr(self, "_" + name), np.dtype(dt)))
            # the orthogonal (real) or unitary (complex) routines: one stand-in each
            real = p in "SD"
            for stem, own in (("orgqr" if real else "ungqr", "orgqr"),
                              ("ormqr" if real else "unmqr", "ormqr"),
                              ("sytrd" if real else "hetrd", "sytrd")):
                for suffix in ("_bufferSize", ""):
                    setattr(self, f"cusolverDn{p}{stem}{suffix}",
                            self._logged(f"{p}{stem}{suffix}",
                                         getattr(self, f"_{own}{suffix}"), np.dtype(dt)))

    def _logged(self, name, fn, dt):
        def call(*args):
            self.calls.append(name)
            return fn(dt, *args)
        return call

    # -- Cholesky: the upper factor (uplo 1) of the Hermitian matrix in the upper triangle
    def _potrf_bufferSize(self, dt, handle, uplo, n, a, lda, lwork):
        _set(lwork, 3 * n)
        return 0

    def _factor(self, dt, uplo, n, a, lda) -> int:
        assert _int(uplo) == 1, "the backend asks for the upper factor"
        m = self.mem.col_major(a, dt, n, n, _int(lda))
        upper = np.triu(m)
        h = upper + np.conj(np.triu(m, 1)).T
        try:
            chol = np.linalg.cholesky(h.astype(np.complex128 if dt.kind == "c" else
                                               np.float64))
        except np.linalg.LinAlgError:
            return 1
        m[np.triu_indices(n)] = np.conj(chol).T[np.triu_indices(n)]
        return 0

    def _potrf(self, dt, handle, uplo, n, a, lda, work, lwork, info):
        n = _int(n)
        assert _int(lwork) >= 3 * n
        self.mem.view(work, dt, _int(lwork))
        self.mem.view(info, np.int32, 1)[0] = self._factor(dt, uplo, n, a, lda)
        return 0

    def _potrfBatched(self, dt, handle, uplo, n, ptrs, lda, info, batch):
        batch = _int(batch)
        infos = self.mem.view(info, np.int32, batch)
        for b, ptr in enumerate(self.mem.view(ptrs, np.uint64, batch)):
            infos[b] = self._factor(dt, uplo, _int(n), int(ptr), lda)
        return 0

    # -- Jacobi SVD: A = U diag(S) V^H, U and V (not V^H) column-major
    def _gesvdj_bufferSize(self, dt, handle, job, econ, m, n, *rest):
        _set(rest[-2], _int(m) * _int(n) + 7)
        return 0

    def _one_svdj(self, dt, job, full, m, n, a, lda, s, u, ldu, v, ldv, info):
        k = min(m, n)
        mat = self.mem.col_major(a, dt, m, n, lda)
        cols_u, cols_v = (m, n) if full else (k, k)
        u, v = self.mem.col_major(u, dt, m, cols_u, ldu), self.mem.col_major(v, dt, n, cols_v, ldv)
        s = self.mem.view(s, dt.type(0).real.dtype, k)
        if not np.isfinite(mat).all():   # no convergence: info min(m, n) + 1, results garbage
            self.mem.view(info, np.int32, 1)[0] = k + 1
            s[:] = 7
            return
        uu, ss, vv = _lapack_svd(np.array(mat), full)
        mat[...] = np.nan   # the operand is destroyed
        s[:] = ss
        if job == 1:
            u[...], v[...] = uu, vv
        self.mem.view(info, np.int32, 1)[0] = 0

    def _gesvdj(self, dt, handle, job, econ, m, n, a, lda, s, u, ldu, v, ldv, work, lwork,
                info, params):
        m, n = _int(m), _int(n)
        assert _int(lwork) >= m * n + 7 and params is not None
        self.mem.view(work, dt, _int(lwork))
        self._one_svdj(dt, _int(job), not _int(econ), m, n, a, _int(lda), s, u, _int(ldu), v,
                       _int(ldv), info)
        return 0

    def _gesvdjBatched_bufferSize(self, dt, handle, job, m, n, *rest):
        _set(rest[-3], _int(m) * _int(n) + 7)
        return 0

    def _gesvdjBatched(self, dt, handle, job, m, n, a, lda, s, u, ldu, v, ldv, work, lwork,
                       info, params, batch):
        m, n, lda, ldu, ldv = map(_int, (m, n, lda, ldu, ldv))
        assert m <= 32 and n <= 32, "gesvdjBatched takes matrices up to 32 x 32"
        assert _int(lwork) >= m * n + 7
        self.mem.view(work, dt, _int(lwork))
        item, real = dt.itemsize, dt.type(0).real.dtype.itemsize
        for b in range(_int(batch)):
            self._one_svdj(dt, _int(job), True, m, n, _int(a) + b * lda * n * item, lda,
                           _int(s) + b * min(m, n) * real, _int(u) + b * ldu * m * item, ldu,
                           _int(v) + b * ldv * n * item, ldv, _int(info) + 4 * b)
        return 0

    # -- QR-iteration SVD: rows >= columns, U and VT (V^H) column-major
    def _gesvd_bufferSize(self, dt, handle, m, n, lwork):
        _set(lwork, 5 * _int(m))
        return 0

    def _gesvd(self, dt, handle, jobu, jobvt, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork,
               rwork, info):
        m, n, jobu, jobvt = _int(m), _int(n), chr(_int(jobu)), chr(_int(jobvt))
        assert m >= n, "gesvd wants at least as many rows as columns"
        assert jobu == jobvt and jobu in "ASN" and _int(lwork) >= 5 * m
        k = n
        self.mem.view(work, dt, _int(lwork))
        mat = self.mem.col_major(a, dt, m, n, _int(lda))
        if not np.isfinite(mat).all():   # no convergence: info > 0, results garbage
            self.mem.view(s, dt.type(0).real.dtype, k)[:] = 7
            self.mem.view(info, np.int32, 1)[0] = 1
            return 0
        uu, ss, vv = _lapack_svd(np.array(mat), jobu == "A")
        mat[...] = np.nan
        self.mem.view(s, dt.type(0).real.dtype, k)[:] = ss
        if dt.kind == "c":
            self.mem.view(rwork, dt.type(0).real.dtype, k - 1)
        if jobu != "N":
            self.mem.col_major(u, dt, m, m if jobu == "A" else k, _int(ldu))[...] = uu
            self.mem.col_major(vt, dt, n, n, _int(ldvt))[...] = np.conj(vv).T
        self.mem.view(info, np.int32, 1)[0] = 0
        return 0


    # -- Householder products and the tridiagonal reduction, column-major, as LAPACK's
    def _lapack(self, dt, stem):
        from scipy.linalg import lapack
        p = {"f": "s", "d": "d", "F": "c", "D": "z"}[dt.char]
        real = dt.kind == "f"
        name = {"orgqr": "orgqr" if real else "ungqr", "ormqr": "ormqr" if real else "unmqr",
                "sytrd": "sytrd" if real else "hetrd"}[stem]
        return getattr(lapack, p + name)

    def _orgqr_bufferSize(self, dt, handle, m, n, k, a, lda, tau, lwork):
        _set(lwork, 2 * _int(n) + 3)
        return 0

    def _orgqr(self, dt, handle, m, n, k, a, lda, tau, work, lwork, info):
        m, n, k = _int(m), _int(n), _int(k)
        assert m >= n >= k >= 1 and _int(lwork) >= 2 * n + 3
        self.mem.view(work, dt, _int(lwork))
        mat = self.mem.col_major(a, dt, m, n, _int(lda))
        mat[...] = self._lapack(dt, "orgqr")(np.array(mat), self.mem.view(tau, dt, k))[0]
        self.mem.view(info, np.int32, 1)[0] = 0
        return 0

    def _ormqr_bufferSize(self, dt, handle, side, trans, m, n, k, *rest):
        _set(rest[-1], 64 * max(_int(m), _int(n)))
        return 0

    def _ormqr(self, dt, handle, side, trans, m, n, k, a, lda, tau, c, ldc, work, lwork,
               info):
        side, trans, m, n, k = map(_int, (side, trans, m, n, k))
        ops = {0: "N", 1: "T"} if dt.kind == "f" else {0: "N", 2: "C"}
        assert trans in ops, f"op {trans} is not allowed for this type"
        assert _int(lwork) >= 64 * max(m, n)
        self.mem.view(work, dt, _int(lwork))
        rows = m if side == 0 else n
        refl = self.mem.col_major(a, dt, rows, k, _int(lda))
        mat = self.mem.col_major(c, dt, m, n, _int(ldc))
        mat[...] = self._lapack(dt, "ormqr")("L" if side == 0 else "R", ops[trans],
                                             np.array(refl), self.mem.view(tau, dt, k),
                                             np.array(mat), 64 * max(m, n))[0]
        self.mem.view(info, np.int32, 1)[0] = 0
        return 0

    def _sytrd_bufferSize(self, dt, handle, uplo, n, *rest):
        _set(rest[-1], 5 * _int(n))
        return 0

    def _sytrd(self, dt, handle, uplo, n, a, lda, d, e, tau, work, lwork, info):
        n = _int(n)
        assert _int(lwork) >= 5 * n and n >= 2
        self.mem.view(work, dt, _int(lwork))
        real = dt.type(0).real.dtype
        mat = self.mem.col_major(a, dt, n, n, _int(lda))
        out, dd, ee, tt, _ = self._lapack(dt, "sytrd")(np.array(mat), lower=int(_int(uplo) == 0))
        mat[...] = out
        self.mem.view(d, real, n)[:] = dd
        self.mem.view(e, real, n - 1)[:] = ee
        self.mem.view(tau, dt, n - 1)[:] = tt
        self.mem.view(info, np.int32, 1)[0] = 0
        return 0


class Blas:
    """cuBLAS's triangular solves: op(A) X = alpha B (side 0) or X op(A) = alpha B (side
    1), A's triangle ``uplo`` (0 lower, 1 upper), op 0/1/2 = N/T/C, diag 1 = unit."""

    def __init__(self, memory: Memory):
        self.mem = memory
        self.calls: list[str] = []
        for p, dt in _TYPES.items():
            setattr(self, f"cublas{p}trsm_v2", self._logged(f"{p}trsm", self._trsm, dt))
            setattr(self, f"cublas{p}trsmBatched",
                    self._logged(f"{p}trsmBatched", self._trsm_batched, dt))

    def _logged(self, name, fn, dt):
        def call(*args):
            self.calls.append(name)
            return fn(np.dtype(dt), *args)
        return call

    def _solve(self, dt, side, uplo, op, diag, m, n, alpha, a, lda, b, ldb):
        k = m if side == 0 else n
        tri = self.mem.col_major(a, dt, k, k, lda)
        tri = np.tril(tri) if uplo == 0 else np.triu(tri)
        if diag == 1:
            np.fill_diagonal(tri, 1)
        tri = {0: tri, 1: tri.T, 2: np.conj(tri).T}[op]
        rhs = self.mem.col_major(b, dt, m, n, ldb)
        with np.errstate(all="ignore"):
            x = np.linalg.solve(tri, alpha * rhs) if side == 0 else \
                np.linalg.solve(tri.T, (alpha * rhs).T).T
        rhs[...] = x

    def _alpha(self, dt, ptr) -> complex:
        raw = (ctypes.c_char * dt.itemsize).from_address(_int(ptr))   # a host pointer
        return np.frombuffer(raw, dt)[0]

    def _trsm(self, dt, handle, side, uplo, op, diag, m, n, alpha, a, lda, b, ldb):
        self._solve(dt, *map(_int, (side, uplo, op, diag, m, n)), self._alpha(dt, alpha), a,
                    _int(lda), b, _int(ldb))
        return 0

    def _trsm_batched(self, dt, handle, side, uplo, op, diag, m, n, alpha, a, lda, b, ldb,
                      batch):
        batch = _int(batch)
        for pa, pb in zip(self.mem.view(a, np.uint64, batch), self.mem.view(b, np.uint64, batch)):
            self._solve(dt, *map(_int, (side, uplo, op, diag, m, n)), self._alpha(dt, alpha),
                        int(pa), _int(lda), int(pb), _int(ldb))
        return 0


class Kernels:
    """The fix-up kernels of ``FIXUP_SOURCE``, by name (``<kernel>_<type letter>``)."""

    def __init__(self, memory: Memory):
        self.mem = memory
        self.calls: list[str] = []

    def __call__(self, name: str, count: int, *args) -> None:
        self.calls.append(name)
        kernel, p = name.rsplit("_", 1)
        getattr(self, kernel)(np.dtype(_TYPES[p]), count, *map(_int, args))

    def tril_nan(self, dt, count, a, info, n, batch):
        assert count == n * n * batch
        mats = self.mem.view(a, dt, count).reshape(batch, n, n)
        failed = self.mem.view(info, np.int32, batch)
        for b in range(batch):
            mats[b][np.triu_indices(n, 1)] = 0
            if failed[b]:
                mats[b][np.tril_indices(n)] = np.nan

    def conj_copy(self, dt, count, a, out, n):
        self.mem.view(out, dt, n)[:] = np.conj(self.mem.view(a, dt, n))

    def gather(self, dt, count, src, out, rows, cols, row_step, col_step, src_batch, batch,
               conj):
        assert count == rows * cols * batch
        b, r, c = np.indices((batch, rows, cols))
        index = b * src_batch + r * row_step + c * col_step
        values = self.mem.view(src, dt, int(index.max()) + 1 if index.size else 0)[index]
        self.mem.view(out, dt, count)[:] = (np.conj(values) if conj else values).reshape(-1)

    def nan_failed(self, dt, count, x, info, per, batch):
        assert count == per * batch
        failed = self.mem.view(info, np.int32, batch)
        self.mem.view(x, dt, count).reshape(batch, per)[failed != 0] = np.nan


def fake_libraries():
    """A ``CUDALibraries`` over host memory: its cuSOLVER, cuBLAS and fix-up kernels the
    fakes above (each with ``calls``, the routines called in order), and its device."""
    from tinyjax.backends.cuda.library import CUDALibraries
    memory = Memory()
    libs = CUDALibraries(Device(memory))
    libs.cusolver = (Solver(memory), ctypes.c_void_p(1))
    libs.cublas = (Blas(memory), ctypes.c_void_p(2))
    libs.gesvdj_info = ctypes.c_void_p(3)
    libs.kernel = Kernels(memory)
    return libs
