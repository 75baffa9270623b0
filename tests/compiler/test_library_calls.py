"""Library calls (LAPACK, FFT) as steps of compiled programs: jit on every device equals
eager evaluation for every routine, flag and dtype; a library step sits between fused
kernels; derivatives and vmap compile too; failures give NaN, as eagerly."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
import tinyjax.scipy.linalg as jsl
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.compiler.steps import Call, Launch, walk_steps
from tinyjax.config import config
from tinyjax.jaxpr import eval_jaxpr
from tests.linalg_support import DTYPES, rand



def check(fn, *args, device):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend(device))
    got = exe(*args)
    want = eval_jaxpr(closed.jaxpr, closed.consts, *args)
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (i, g.shape, w.shape)
        tol = 2e-4 if g.dtype in (np.float32, np.complex64) else 1e-10
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"output {i}")
    return exe


def _problems(dtype):
    rng = np.random.default_rng(0)
    a = rand(rng, (2, 4, 4), dtype)
    h = a @ np.conj(np.swapaxes(a, -1, -2)) + 4 * np.eye(4, dtype=dtype)
    return a, h, rand(rng, (2, 5, 3), dtype), rand(rng, (2, 4, 2), dtype)


def _phase_fixed(u, s, vh=None):
    """What of a singular (or eigen) decomposition is unique: the first ``k = len(s)``
    vectors with their phase (sign) fixed -- each column of ``u`` scaled so that its largest
    entry is real and positive, the row of ``vh`` paired with it by the inverse -- and the
    projectors onto the spans of the vectors after them (any basis of which is a valid
    answer).  LAPACK and cuSOLVER may return any phase for each vector."""
    k = s.shape[-1]
    uk = u[..., :k]
    biggest = jnp.argmax(jnp.abs(uk), axis=-2)[..., None, :]
    top = jnp.take_along_axis(uk, biggest, axis=-2)
    phase = top / jnp.abs(top)
    out = [uk / phase, s]
    if u.shape[-1] > k:
        rest = u[..., k:]
        out.append(rest @ jnp.conj(rest).swapaxes(-1, -2))
    if vh is not None:
        out.append(vh[..., :k, :] * phase.swapaxes(-1, -2))
        if vh.shape[-2] > k:
            rest = vh[..., k:, :]
            out.append(jnp.conj(rest).swapaxes(-1, -2) @ rest)
    return out


def _factorisations(a, h, r, b):
    u, s, vh = lax.linalg.svd(jnp.swapaxes(r, 1, 2), full_matrices=False)
    u_qr, s_qr, vh_qr = lax.linalg.svd(r, algorithm=lax.linalg.SvdAlgorithm.QR)
    v_h, w_h = lax.linalg.eigh(h)
    v_a, w_a = lax.linalg.eigh(a, lower=False, symmetrize_input=False)
    return [lax.linalg.cholesky(h), lax.linalg.cholesky(a, symmetrize_input=False),
            *lax.linalg.lu(a), *lax.linalg.lu(r), *lax.linalg.qr(r),
            *lax.linalg.qr(r, full_matrices=False), *lax.linalg.qr(jnp.swapaxes(r, 1, 2)),
            *lax.linalg.qr(r, pivoting=True)[1:], lax.linalg.svd(r, compute_uv=False),
            *_phase_fixed(u, s, vh), *_phase_fixed(u_qr, s_qr, vh_qr),
            *_phase_fixed(v_h, w_h), *_phase_fixed(v_a, w_a), *lax.linalg.eig(a),
            *lax.linalg.schur(a),
            lax.linalg.tridiagonal_solve(a[:, 0], a[:, 1] + 4, a[:, 2], b)]


def _solves(a, b):
    t = a + 4 * np.eye(4, dtype=a.dtype)
    outs = [lax.linalg.triangular_solve(t, b, left_side=True, lower=lo, transpose_a=tr,
                                        conjugate_a=c, unit_diagonal=u)
            for lo in (False, True) for tr in (False, True) for c in (False, True)
            for u in (False, True)]
    return outs + [lax.linalg.triangular_solve(t, jnp.swapaxes(b, 1, 2), lower=lo,
                                               transpose_a=tr)
                   for lo in (False, True) for tr in (False, True)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_routine_matches_eager(dtype, device):
    with config.override(jax_enable_x64=dtype in ("float64", "complex128")):
        a, h, r, b = _problems(dtype)
        exe = check(_factorisations, a, h, r, b, device=device)
        assert any(isinstance(st, Call) for st in walk_steps(exe.program.steps))
        check(_solves, a, b, device=device)
        check(lambda a: [jnp.fft.fftn(a, axes=(1, 2)), jnp.fft.ifft(a),
                         jnp.fft.rfft(jnp.real(a), axis=1),
                         jnp.fft.irfft(a, n=6)], a, device=device)


def _householder(a, r):
    h, taus = lax.linalg.hessenberg(a)
    wide = jnp.swapaxes(r, 1, 2)
    return [h, taus, *lax.linalg.tridiagonal(a), *lax.linalg.tridiagonal(a, lower=False),
            lax.linalg.householder_product(r, taus),
            lax.linalg.householder_product(r, taus[:, :1]),
            *[lax.linalg.ormqr(r, taus, c, left=left, transpose=tr)
              for left, c in ((True, r[:, :, :2]), (False, wide[:, :2])) for tr in (False, True)],
            lax.linalg.ormqr(h, taus, a, left=False)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_householder_routines_match_eager(dtype, device):
    """gehrd, sytrd/hetrd, orgqr/ungqr and ormqr/unmqr: library steps on the CPU (on CUDA
    through the host's LAPACK), equal to the eager SciPy calls."""
    with config.override(jax_enable_x64=dtype in ("float64", "complex128")):
        a, _, r, _ = _problems(dtype)
        exe = check(_householder, a, r, device=device)
        called = {st.name for st in walk_steps(exe.program.steps) if isinstance(st, Call)}
        assert {"hessenberg", "tridiagonal", "householder_product", "ormqr"} <= called, called


def test_library_steps_between_fused_kernels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = rng.standard_normal(64).astype(np.float32)

    def gp(x, y, ell):
        k = jnp.exp(-0.5 * jnp.sum((x[:, None] - x[None]) ** 2, -1) / ell ** 2)
        chol = jnp.linalg.cholesky(k + 1e-3 * jnp.eye(64))
        alpha = jsl.cho_solve((chol, True), y)
        return -0.5 * y @ alpha - jnp.sum(jnp.log(jnp.diag(chol)))
    exe = check(gp, x, y, np.float32(1.5), device="cpu")
    steps = exe.program.steps
    calls = [st for st in steps if isinstance(st, Call)]
    assert len(calls) == 3 and isinstance(steps[0], Launch)   # potrf, two trsm
    assert all(c.native is not None for c in calls)   # called from the compiled program
    assert "call cholesky" in "\n".join(exe.describe())
    grad = jax.jit(jax.grad(gp, argnums=2))
    np.testing.assert_allclose(grad(x, y, np.float32(1.5)), jax.grad(gp, argnums=2)(
        x, y, np.float32(1.5)), rtol=1e-3)


def test_derivatives_and_vmap_compile(device):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 4, 4)).astype(np.float32) + 4 * np.eye(4, dtype=np.float32)
    fns = [lambda a: jax.vmap(jnp.linalg.det)(a), lambda a: jax.grad(
        lambda a: jnp.sum(jnp.linalg.inv(a)))(a), lambda a: jax.jacfwd(
        lambda a: jnp.linalg.slogdet(a)[1])(a[0]), lambda a: jax.grad(
        lambda a: jnp.sum(jnp.abs(jnp.fft.rfft2(a))))(a)]
    for fn in fns:
        check(fn, a, device=device)


def test_failures_give_nan_compiled(device):
    not_pd = np.array([[[1.0, 2.0], [2.0, 1.0]], [[2.0, 0.0], [0.0, 3.0]]], np.float32)
    exe = compile_jaxpr(jax.make_jaxpr(lambda a: lax.linalg.cholesky(a))(not_pd), get_backend(device))
    out = np.asarray(exe(not_pd)[0])
    assert np.all(np.isnan(out[0][np.tril_indices(2)])) and np.all(np.isfinite(out[1]))
    sing = np.array([[1.0, 2.0], [2.0, 4.0]], np.float32)
    check(lambda a: jnp.linalg.inv(a), sing, device=device)


def test_cpu_routine_is_callable_by_pointer():
    """The C routine of a library step and its bound arguments: what a native program
    calls through a function pointer."""
    from tinyjax.backends.c.library import routine
    avals = [jax.ShapedArray((3, 3), np.float64)]
    r = routine(lax.linalg.cholesky_p, avals, avals, {})
    assert ctypes_address(r.fn) != 0 and r.params[1] == 3


def ctypes_address(fn) -> int:
    import ctypes
    return ctypes.cast(fn, ctypes.c_void_p).value
