"""The C source of the CPU backend's LAPACK calls: one function per routine and element
type, each mapping LAPACK over the leading (batch) dimensions of row-major buffers.

Every routine has the one signature ``int tj_<routine>_<t>(void **bufs, const long *p,
void *const *fns)``: ``bufs`` the input then the output buffers, ``p`` the integer
parameters (batch count, sizes, flags), ``fns`` the LAPACK/BLAS routines it calls (C
function pointers SciPy exports from ``scipy.linalg.cython_lapack``/``cython_blas``) -- so
compiled code can call it through a function pointer as it calls a kernel.  LAPACK is
column-major: a matrix is transposed into a workspace and back, except where a
transposed problem is the same problem (the Cholesky factor, triangular solves).  A
failure reported by LAPACK (``info != 0``) leaves NaNs, as in JAX.
"""
from __future__ import annotations

__all__ = ["lapack_source", "TYPES"]

# prefix -> (element type, real type, is complex)
TYPES = {"s": ("float", "float", False), "d": ("double", "double", False),
         "c": ("float _Complex", "float", True), "z": ("double _Complex", "double", True)}

PRELUDE = r"""
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A workspace: a large one on 2 MiB boundaries with transparent huge pages asked for
   (as numpy does for its arrays), which saves LAPACK's first touch of megabytes of fresh
   memory most of its page faults. */
static void *tj_work(size_t nbytes) {
  if (nbytes < ((size_t)1 << 20)) return malloc(nbytes);
  size_t huge = (size_t)1 << 21, size = (nbytes + huge - 1) & ~(huge - 1);
  void *p = NULL;
  if (posix_memalign(&p, huge, size)) return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

int tj_lu_pivots_to_permutation(void **bufs, const long *p, void *const *fns) {
  /* p: batch, k, size; bufs: pivots, permutation (int32) */
  const int32_t *piv = bufs[0]; int32_t *perm = bufs[1];
  for (long b = 0; b < p[0]; b++) {
    int32_t *pm = perm + b * p[2]; const int32_t *pv = piv + b * p[1];
    for (long i = 0; i < p[2]; i++) pm[i] = (int32_t)i;
    for (long i = 0; i < p[1]; i++) {
      int32_t j = pv[i];
      if (j < 0 || j >= p[2]) continue;  /* out-of-range swaps are ignored */
      int32_t t = pm[i]; pm[i] = pm[j]; pm[j] = t;
    }
  }
  return 0;
}
"""

# {P}: type prefix, {T}: element type, {R}: real type, {CONJ}: conjugation, {NAN}: a NaN of
# the element type, {RW}: the extra real-work argument of complex routines (or nothing)
TEMPLATE = r"""
static void tr_{P}(long r, long c, const {T} *src, {T} *dst) {{
  for (long i = 0; i < r; i++) for (long j = 0; j < c; j++) dst[j * r + i] = src[i * c + j];
}}
static void nan_{P}({T} *x, long n) {{ for (long i = 0; i < n; i++) x[i] = {NAN}; }}
static int lwork_{P}({T} w) {{ return (int)creal((double _Complex)w) + 1; }}

typedef void (*potrf_{P})(char *, int *, {T} *, int *, int *);
int tj_potrf_{P}(void **bufs, const long *p, void *const *fns) {{
  /* a row-major Hermitian A is the column-major A^T = conj(A): its upper Cholesky factor
     U (A^T = U^H U), read row-major, is the lower factor L = U^T of A = L L^H, reading
     A's lower triangle */
  const {T} *a = bufs[0]; {T} *out = bufs[1];
  int n = (int)p[1]; char uplo = 'U';
  for (long b = 0; b < p[0]; b++) {{
    {T} *o = out + b * n * n; int info = 0;
    memcpy(o, a + b * n * n, sizeof({T}) * n * n);
    if (n) ((potrf_{P})fns[0])(&uplo, &n, o, &n, &info);
    for (long i = 0; i < n; i++)
      for (long j = 0; j < n; j++)
        if (j > i) o[i * n + j] = 0; else if (info) o[i * n + j] = {NAN};
  }}
  return 0;
}}

typedef void (*getrf_{P})(int *, int *, {T} *, int *, int *, int *);
int tj_getrf_{P}(void **bufs, const long *p, void *const *fns) {{
  const {T} *a = bufs[0]; {T} *lu = bufs[1]; int32_t *piv = bufs[2], *perm = bufs[3];
  int m = (int)p[1], n = (int)p[2], k = m < n ? m : n;
  {T} *w = tj_work(sizeof({T}) * (m * n + 1)); int *ip = tj_work(sizeof(int) * (k + 1));
  if (!w || !ip) {{ free(w); free(ip); return -1; }}
  for (long b = 0; b < p[0]; b++) {{
    int info = 0;
    tr_{P}(m, n, a + b * m * n, w);
    if (m && n) ((getrf_{P})fns[0])(&m, &n, w, &m, ip, &info);
    tr_{P}(n, m, w, lu + b * m * n);
    int32_t *pv = piv + b * k, *pm = perm + b * m;
    for (int i = 0; i < m; i++) pm[i] = i;
    for (int i = 0; i < k; i++) {{
      pv[i] = ip[i] - 1;
      int32_t t = pm[i]; pm[i] = pm[pv[i]]; pm[pv[i]] = t;
    }}
  }}
  free(w); free(ip);
  return 0;
}}

typedef void (*geqrf_{P})(int *, int *, {T} *, int *, {T} *, {T} *, int *, int *);
typedef void (*geqp3_{P})(int *, int *, {T} *, int *, int *, {T} *, {T} *, int *,{RWT} int *);
typedef void (*orgqr_{P})(int *, int *, int *, {T} *, int *, {T} *, {T} *, int *, int *);
int tj_qr_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, m, n, full_matrices, pivoting; bufs: a, q, r[, jpvt] */
  const {T} *a = bufs[0]; {T} *q = bufs[1], *r = bufs[2]; int32_t *jp = bufs[3];
  int m = (int)p[1], n = (int)p[2], full = (int)p[3], pivot = (int)p[4];
  int k = m < n ? m : n, kq = full ? m : k, cols = n > m ? n : m, lwork = -1, info = 0;
  {T} *w = tj_work(sizeof({T}) * ((long)m * cols + 1)), *tau = tj_work(sizeof({T}) * (k + 1));
  int *jpvt = tj_work(sizeof(int) * (n + 1)); {R} *rw = tj_work(sizeof({R}) * (2 * n + 1));
  {T} query = 0;
  if (!w || !tau || !jpvt || !rw) {{ free(w); free(tau); free(jpvt); free(rw); return -1; }}
  if (m && n) {{
    if (pivot) ((geqp3_{P})fns[2])(&m, &n, w, &m, jpvt, tau, &query, &lwork,{RWA} &info);
    else ((geqrf_{P})fns[0])(&m, &n, w, &m, tau, &query, &lwork, &info);
    lwork = lwork_{P}(query);
    ((orgqr_{P})fns[1])(&m, &kq, &k, w, &m, tau, &query, &(int){{-1}}, &info);
    if (lwork_{P}(query) > lwork) lwork = lwork_{P}(query);
  }} else lwork = 1;
  {T} *work = tj_work(sizeof({T}) * lwork);
  for (long b = 0; b < p[0]; b++) {{
    {T} *qb = q + b * m * kq, *rb = r + b * kq * n;
    tr_{P}(m, n, a + b * m * n, w);
    if (m && n) {{
      if (pivot) {{
        for (int j = 0; j < n; j++) jpvt[j] = 0;
        ((geqp3_{P})fns[2])(&m, &n, w, &m, jpvt, tau, work, &lwork,{RWA} &info);
        for (int j = 0; j < n; j++) jp[b * n + j] = jpvt[j] - 1;
      }} else ((geqrf_{P})fns[0])(&m, &n, w, &m, tau, work, &lwork, &info);
    }} else if (pivot) for (int j = 0; j < n; j++) jp[b * n + j] = 0;
    for (int i = 0; i < kq; i++)            /* R: the upper triangle (row-major kq x n) */
      for (int j = 0; j < n; j++) rb[i * n + j] = (j >= i && i < m) ? w[(long)j * m + i] : 0;
    if (m && n) ((orgqr_{P})fns[1])(&m, &kq, &k, w, &m, tau, work, &lwork, &info);
    else for (long i = 0; i < (long)m * kq; i++) w[i] = 0;
    if (!(m && n)) for (int i = 0; i < m && i < kq; i++) w[(long)i * m + i] = 1;
    tr_{P}(kq, m, w, qb);
  }}
  free(w); free(tau); free(jpvt); free(rw); free(work);
  return 0;
}}

typedef void (*gesdd_{P})(char *, int *, int *, {T} *, int *, {R} *, {T} *, int *, {T} *,
                          int *, {T} *, int *,{RWT} int *, int *);
typedef void (*gesvd_{P})(char *, char *, int *, int *, {T} *, int *, {R} *, {T} *, int *,
                          {T} *, int *, {T} *, int *,{RWT} int *);
int tj_svd_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, m, n, full_matrices, compute_uv, gesvd; bufs: a, s[, u, vt] */
  const {T} *a = bufs[0]; {R} *s = bufs[1]; {T} *u = bufs[2], *vt = bufs[3];
  int m = (int)p[1], n = (int)p[2], full = (int)p[3], uv = (int)p[4], qr = (int)p[5];
  int k = m < n ? m : n, mx = m > n ? m : n, info = 0, lwork = -1;
  int ucols = full ? m : k, vrows = full ? n : k;
  int ldu = m > 0 ? m : 1, ldvt = vrows > 0 ? vrows : 1;
  char job = uv ? (full ? 'A' : 'S') : 'N';
  long rwn = (long)k * (5 * k + 7 > 2 * mx + 2 * k + 1 ? 5 * k + 7 : 2 * mx + 2 * k + 1) + 1;
  {T} *w = tj_work(sizeof({T}) * ((long)m * n + 1));
  {T} *uw = tj_work(sizeof({T}) * ((long)ldu * (ucols > 0 ? ucols : 1) + 1));
  {T} *vw = tj_work(sizeof({T}) * ((long)ldvt * (n > 0 ? n : 1) + 1));
  {R} *rw = tj_work(sizeof({R}) * rwn); int *iw = tj_work(sizeof(int) * (8 * k + 1));
  {T} query = 0;
  if (!w || !uw || !vw || !rw || !iw) {{ free(w); free(uw); free(vw); free(rw); free(iw);
                                        return -1; }}
  if (qr) ((gesvd_{P})fns[1])(&job, &job, &m, &n, w, &m, s, uw, &ldu, vw, &ldvt, &query,
                              &lwork,{RWA} &info);
  else ((gesdd_{P})fns[0])(&job, &m, &n, w, &m, s, uw, &ldu, vw, &ldvt, &query, &lwork,{RWA}
                          iw, &info);
  lwork = lwork_{P}(query);
  {T} *work = tj_work(sizeof({T}) * lwork);
  for (long b = 0; b < p[0]; b++) {{
    {R} *sb = s + b * k;
    tr_{P}(m, n, a + b * m * n, w);
    info = 0;
    if (qr) ((gesvd_{P})fns[1])(&job, &job, &m, &n, w, &m, sb, uw, &ldu, vw, &ldvt, work,
                                &lwork,{RWA} &info);
    else ((gesdd_{P})fns[0])(&job, &m, &n, w, &m, sb, uw, &ldu, vw, &ldvt, work, &lwork,{RWA}
                            iw, &info);
    if (info) for (int i = 0; i < k; i++) sb[i] = NAN;
    if (uv) {{
      {T} *ub = u + b * m * ucols, *vb = vt + b * vrows * n;
      tr_{P}(ucols, m, uw, ub);
      tr_{P}(n, vrows, vw, vb);
      if (info) {{ nan_{P}(ub, (long)m * ucols); nan_{P}(vb, (long)vrows * n); }}
    }}
  }}
  free(w); free(uw); free(vw); free(rw); free(iw); free(work);
  return 0;
}}

typedef void (*syevd_{P})(char *, char *, int *, {T} *, int *, {R} *, {T} *, int *,{RWT2}
                          int *, int *, int *);
int tj_eigh_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, n, lower; bufs: a, v, w (eigenvectors as columns, eigenvalues ascending) */
  const {T} *a = bufs[0]; {T} *v = bufs[1]; {R} *wv = bufs[2];
  int n = (int)p[1], info = 0, lwork = -1, lrwork = -1, liwork = -1, iq = 0;
  char jobz = 'V', uplo = p[2] ? 'L' : 'U';
  {T} *w = tj_work(sizeof({T}) * ((long)n * n + 1)), query = 0; {R} rq = 0;
  if (!w) return -1;
  if (n) ((syevd_{P})fns[0])(&jobz, &uplo, &n, w, &n, wv, &query, &lwork,{RWQ} &iq, &liwork,
                            &info);
  lwork = lwork_{P}(query); liwork = iq + 1; lrwork = (int)rq + 1;
  {T} *work = tj_work(sizeof({T}) * lwork); int *iw = tj_work(sizeof(int) * liwork);
  {R} *rw = tj_work(sizeof({R}) * lrwork);
  for (long b = 0; b < p[0]; b++) {{
    {R} *wb = wv + b * n;
    tr_{P}(n, n, a + b * n * n, w);
    info = 0;
    if (n) ((syevd_{P})fns[0])(&jobz, &uplo, &n, w, &n, wb, work, &lwork,{RWB} iw, &liwork,
                              &info);
    tr_{P}(n, n, w, v + b * n * n);
    if (info) {{ nan_{P}(v + b * n * n, (long)n * n); for (int i = 0; i < n; i++) wb[i] = NAN; }}
  }}
  free(w); free(work); free(iw); free(rw);
  return 0;
}}

typedef void (*trsm_{P})(char *, char *, char *, char *, int *, int *, {T} *, {T} *, int *,
                         {T} *, int *);
int tj_trsm_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, rows, cols (of b), left_side, lower, transpose_a, conjugate_a, unit_diagonal.
     Row-major a and b are column-major a^T and b^T: op(a) x = b is x^T op(a)^T = b^T, the
     other side and triangle with the same op (conj alone: a conjugated copy) */
  const {T} *a = bufs[0], *bb = bufs[1]; {T} *x = bufs[2];
  int rows = (int)p[1], cols = (int)p[2], left = (int)p[3], lower = (int)p[4];
  int trans = (int)p[5], conjugate = (int)p[6], unit = (int)p[7];
  int m = cols, n = rows, k = left ? rows : cols, ldb = cols > 0 ? cols : 1;
  char side = left ? 'R' : 'L', uplo = lower ? 'U' : 'L', diag = unit ? 'U' : 'N';
  char op = trans ? (conjugate ? 'C' : 'T') : 'N';
  {T} one = 1, *ac = tj_work(sizeof({T}) * ((long)k * k + 1));
  if (!ac) return -1;
  for (long b = 0; b < p[0]; b++) {{
    const {T} *ab = a + b * k * k;
    for (long i = 0; i < (long)k * k; i++) ac[i] = (conjugate && !trans) ? {CONJ}(ab[i]) : ab[i];
    memcpy(x + b * rows * cols, bb + b * rows * cols, sizeof({T}) * rows * cols);
    if (rows && cols) ((trsm_{P})fns[0])(&side, &uplo, &op, &diag, &m, &n, &one, ac, &k,
                                        x + b * rows * cols, &ldb);
  }}
  free(ac);
  return 0;
}}

typedef void (*gtsv_{P})(int *, int *, {T} *, {T} *, {T} *, {T} *, int *, int *);
int tj_gtsv_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, n, nrhs; bufs: dl, d, du, b, x (dl[0] and du[n-1] unused) */
  const {T} *dl = bufs[0], *d = bufs[1], *du = bufs[2], *bb = bufs[3]; {T} *x = bufs[4];
  int n = (int)p[1], nrhs = (int)p[2], info = 0, ldb = n > 0 ? n : 1;
  {T} *w = tj_work(sizeof({T}) * (3L * n + 3)), *bw = tj_work(sizeof({T}) * ((long)n * nrhs + 1));
  if (!w || !bw) {{ free(w); free(bw); return -1; }}
  for (long b = 0; b < p[0]; b++) {{
    {T} *lo = w, *di = w + n + 1, *up = w + 2 * n + 2;
    for (int i = 0; i + 1 < n; i++) {{ lo[i] = dl[b * n + i + 1]; up[i] = du[b * n + i]; }}
    memcpy(di, d + b * n, sizeof({T}) * n);
    tr_{P}(n, nrhs, bb + b * n * nrhs, bw);
    info = 0;
    if (n && nrhs) ((gtsv_{P})fns[0])(&n, &nrhs, lo, di, up, bw, &ldb, &info);
    tr_{P}(nrhs, n, bw, x + b * n * nrhs);
    if (info) nan_{P}(x + b * n * nrhs, (long)n * nrhs);
  }}
  free(w); free(bw);
  return 0;
}}
"""

# geev and gees differ between real (wr, wi) and complex (w) types: two templates each
EIG_REAL = r"""
typedef void (*geev_{P})(char *, char *, int *, {T} *, int *, {T} *, {T} *, {T} *, int *,
                         {T} *, int *, {T} *, int *, int *);
static void unpack_{P}(int n, const {T} *wi, const {T} *v, {C} *out) {{
  /* LAPACK's real eigenvectors: a complex pair (wi != 0) shares columns j (re), j+1 (im) */
  for (int j = 0; j < n; j++)     /* wi > 0: the first of a pair, wi < 0: the second */
    for (int i = 0; i < n; i++) {{
      {C} z = v[(long)j * n + i];
      if (wi[j] > 0) z = v[(long)j * n + i] + I * v[(long)(j + 1) * n + i];
      else if (wi[j] < 0) z = v[(long)(j - 1) * n + i] - I * v[(long)j * n + i];
      out[(long)i * n + j] = z;
    }}
}}
int tj_eig_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, n, left, right; bufs: a, w[, vl][, vr] (complex results) */
  const {T} *a = bufs[0]; {C} *w = bufs[1];
  int n = (int)p[1], left = (int)p[2], right = (int)p[3], info = 0, lwork = -1;
  {C} *vl = left ? bufs[2] : 0, *vr = right ? bufs[2 + left] : 0;
  char jl = left ? 'V' : 'N', jr = right ? 'V' : 'N'; int ld = n > 0 ? n : 1;
  {T} *m = tj_work(sizeof({T}) * ((long)n * n + 1)), *wr = tj_work(sizeof({T}) * (n + 1));
  {T} *wi = tj_work(sizeof({T}) * (n + 1)), *l = tj_work(sizeof({T}) * ((long)n * n + 1));
  {T} *r = tj_work(sizeof({T}) * ((long)n * n + 1)), query = 0;
  if (!m || !wr || !wi || !l || !r) {{ free(m); free(wr); free(wi); free(l); free(r);
                                       return -1; }}
  if (n) ((geev_{P})fns[0])(&jl, &jr, &n, m, &ld, wr, wi, l, &ld, r, &ld, &query, &lwork,
                           &info);
  lwork = (int)query + 1;
  {T} *work = tj_work(sizeof({T}) * lwork);
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(n, n, a + b * n * n, m);
    info = 0;
    if (n) ((geev_{P})fns[0])(&jl, &jr, &n, m, &ld, wr, wi, l, &ld, r, &ld, work, &lwork,
                             &info);
    for (int j = 0; j < n; j++) w[b * n + j] = info ? NAN + I * NAN : wr[j] + I * wi[j];
    if (left) {{ unpack_{P}(n, wi, l, vl + b * n * n);
                if (info) for (long i = 0; i < (long)n * n; i++) vl[b * n * n + i] = NAN + I * NAN; }}
    if (right) {{ unpack_{P}(n, wi, r, vr + b * n * n);
                 if (info) for (long i = 0; i < (long)n * n; i++) vr[b * n * n + i] = NAN + I * NAN; }}
  }}
  free(m); free(wr); free(wi); free(l); free(r); free(work);
  return 0;
}}

typedef void (*gees_{P})(char *, char *, void *, int *, {T} *, int *, int *, {T} *, {T} *,
                         {T} *, int *, {T} *, int *, int *, int *);
int tj_schur_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, n, vectors; bufs: a, t[, z] */
  const {T} *a = bufs[0]; {T} *t = bufs[1], *z = bufs[2];
  int n = (int)p[1], vec = (int)p[2], info = 0, lwork = -1, sdim = 0, ld = n > 0 ? n : 1;
  char jv = vec ? 'V' : 'N', sort = 'N';
  {T} *m = tj_work(sizeof({T}) * ((long)n * n + 1)), *vs = tj_work(sizeof({T}) * ((long)n * n + 1));
  {T} *wr = tj_work(sizeof({T}) * (n + 1)), *wi = tj_work(sizeof({T}) * (n + 1)), query = 0;
  if (!m || !vs || !wr || !wi) {{ free(m); free(vs); free(wr); free(wi); return -1; }}
  if (n) ((gees_{P})fns[0])(&jv, &sort, 0, &n, m, &ld, &sdim, wr, wi, vs, &ld, &query, &lwork,
                           0, &info);
  lwork = (int)query + 1;
  {T} *work = tj_work(sizeof({T}) * lwork);
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(n, n, a + b * n * n, m);
    info = 0;
    if (n) ((gees_{P})fns[0])(&jv, &sort, 0, &n, m, &ld, &sdim, wr, wi, vs, &ld, work, &lwork,
                             0, &info);
    tr_{P}(n, n, m, t + b * n * n);
    if (vec) tr_{P}(n, n, vs, z + b * n * n);
    if (info) {{ nan_{P}(t + b * n * n, (long)n * n); if (vec) nan_{P}(z + b * n * n, (long)n * n); }}
  }}
  free(m); free(vs); free(wr); free(wi); free(work);
  return 0;
}}
"""

EIG_COMPLEX = r"""
typedef void (*geev_{P})(char *, char *, int *, {T} *, int *, {T} *, {T} *, int *, {T} *,
                         int *, {T} *, int *, {R} *, int *);
int tj_eig_{P}(void **bufs, const long *p, void *const *fns) {{
  const {T} *a = bufs[0]; {T} *w = bufs[1];
  int n = (int)p[1], left = (int)p[2], right = (int)p[3], info = 0, lwork = -1;
  {T} *vl = left ? bufs[2] : 0, *vr = right ? bufs[2 + left] : 0;
  char jl = left ? 'V' : 'N', jr = right ? 'V' : 'N'; int ld = n > 0 ? n : 1;
  {T} *m = tj_work(sizeof({T}) * ((long)n * n + 1)), *l = tj_work(sizeof({T}) * ((long)n * n + 1));
  {T} *r = tj_work(sizeof({T}) * ((long)n * n + 1)), query = 0;
  {R} *rw = tj_work(sizeof({R}) * (2 * n + 1));
  if (!m || !l || !r || !rw) {{ free(m); free(l); free(r); free(rw); return -1; }}
  if (n) ((geev_{P})fns[0])(&jl, &jr, &n, m, &ld, w, l, &ld, r, &ld, &query, &lwork, rw, &info);
  lwork = lwork_{P}(query);
  {T} *work = tj_work(sizeof({T}) * lwork);
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(n, n, a + b * n * n, m);
    info = 0;
    if (n) ((geev_{P})fns[0])(&jl, &jr, &n, m, &ld, w + b * n, l, &ld, r, &ld, work, &lwork,
                             rw, &info);
    if (left) tr_{P}(n, n, l, vl + b * n * n);
    if (right) tr_{P}(n, n, r, vr + b * n * n);
    if (info) {{ nan_{P}(w + b * n, n); if (left) nan_{P}(vl + b * n * n, (long)n * n);
                if (right) nan_{P}(vr + b * n * n, (long)n * n); }}
  }}
  free(m); free(l); free(r); free(rw); free(work);
  return 0;
}}

typedef void (*gees_{P})(char *, char *, void *, int *, {T} *, int *, int *, {T} *, {T} *,
                         int *, {T} *, int *, {R} *, int *, int *);
int tj_schur_{P}(void **bufs, const long *p, void *const *fns) {{
  const {T} *a = bufs[0]; {T} *t = bufs[1], *z = bufs[2];
  int n = (int)p[1], vec = (int)p[2], info = 0, lwork = -1, sdim = 0, ld = n > 0 ? n : 1;
  char jv = vec ? 'V' : 'N', sort = 'N';
  {T} *m = tj_work(sizeof({T}) * ((long)n * n + 1)), *vs = tj_work(sizeof({T}) * ((long)n * n + 1));
  {T} *w = tj_work(sizeof({T}) * (n + 1)), query = 0; {R} *rw = tj_work(sizeof({R}) * (n + 1));
  if (!m || !vs || !w || !rw) {{ free(m); free(vs); free(w); free(rw); return -1; }}
  if (n) ((gees_{P})fns[0])(&jv, &sort, 0, &n, m, &ld, &sdim, w, vs, &ld, &query, &lwork, rw,
                           0, &info);
  lwork = lwork_{P}(query);
  {T} *work = tj_work(sizeof({T}) * lwork);
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(n, n, a + b * n * n, m);
    info = 0;
    if (n) ((gees_{P})fns[0])(&jv, &sort, 0, &n, m, &ld, &sdim, w, vs, &ld, work, &lwork, rw,
                             0, &info);
    tr_{P}(n, n, m, t + b * n * n);
    if (vec) tr_{P}(n, n, vs, z + b * n * n);
    if (info) {{ nan_{P}(t + b * n * n, (long)n * n); if (vec) nan_{P}(z + b * n * n, (long)n * n); }}
  }}
  free(m); free(vs); free(w); free(rw); free(work);
  return 0;
}}
"""

# {TR}: the op of a transposed Q ('T' real, 'C' complex: ormqr takes no other)
HOUSEHOLDER = r"""
typedef void (*gehrd_{P})(int *, int *, int *, {T} *, int *, {T} *, {T} *, int *, int *);
int tj_gehrd_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, n; bufs: a, h (Hessenberg form, reflectors below), taus (n - 1) */
  const {T} *a = bufs[0]; {T} *h = bufs[1], *taus = bufs[2];
  int n = (int)p[1], lo = 1, hi = n, info = 0, lwork = -1;
  {T} *w = tj_work(sizeof({T}) * ((long)n * n + 1)), *t = tj_work(sizeof({T}) * (n + 1));
  {T} query = 0;
  if (!w || !t) {{ free(w); free(t); return -1; }}
  ((gehrd_{P})fns[0])(&n, &lo, &hi, w, &n, t, &query, &lwork, &info);
  lwork = lwork_{P}(query);
  {T} *work = tj_work(sizeof({T}) * lwork);
  if (!work) {{ free(w); free(t); return -1; }}
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(n, n, a + b * n * n, w);
    ((gehrd_{P})fns[0])(&n, &lo, &hi, w, &n, t, work, &lwork, &info);
    tr_{P}(n, n, w, h + b * n * n);
    memcpy(taus + b * (n - 1), t, sizeof({T}) * (n - 1));
  }}
  free(w); free(t); free(work);
  return 0;
}}

int tj_orgqr_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, m, n, k; bufs: a (reflectors), taus, q */
  const {T} *a = bufs[0], *taus = bufs[1]; {T} *q = bufs[2];
  int m = (int)p[1], n = (int)p[2], k = (int)p[3], info = 0, lwork = -1;
  {T} *w = tj_work(sizeof({T}) * ((long)m * n + 1)), *t = tj_work(sizeof({T}) * (k + 1));
  {T} query = 0;
  if (!w || !t) {{ free(w); free(t); return -1; }}
  ((orgqr_{P})fns[0])(&m, &n, &k, w, &m, t, &query, &lwork, &info);
  lwork = lwork_{P}(query);
  {T} *work = tj_work(sizeof({T}) * lwork);
  if (!work) {{ free(w); free(t); return -1; }}
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(m, n, a + b * m * n, w);
    memcpy(t, taus + b * k, sizeof({T}) * k);
    ((orgqr_{P})fns[0])(&m, &n, &k, w, &m, t, work, &lwork, &info);
    tr_{P}(n, m, w, q + b * m * n);
  }}
  free(w); free(t); free(work);
  return 0;
}}

typedef void (*ormqr_{P})(char *, char *, int *, int *, int *, {T} *, int *, {T} *, {T} *,
                          int *, {T} *, int *, int *);
int tj_ormqr_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, m, n, k (a: m x n, k reflectors), rows, cols (of c), left, transpose;
     bufs: a, taus, c, out */
  const {T} *a = bufs[0], *taus = bufs[1], *c = bufs[2]; {T} *out = bufs[3];
  int m = (int)p[1], n = (int)p[2], k = (int)p[3], rows = (int)p[4], cols = (int)p[5];
  char side = p[6] ? 'L' : 'R', trans = p[7] ? '{TR}' : 'N';
  int info = 0, lwork = -1;
  {T} *w = tj_work(sizeof({T}) * ((long)m * n + 1)), *t = tj_work(sizeof({T}) * (k + 1));
  {T} *cw = tj_work(sizeof({T}) * ((long)rows * cols + 1)), query = 0;
  if (!w || !t || !cw) {{ free(w); free(t); free(cw); return -1; }}
  ((ormqr_{P})fns[0])(&side, &trans, &rows, &cols, &k, w, &m, t, cw, &rows, &query, &lwork,
                      &info);
  lwork = lwork_{P}(query);
  {T} *work = tj_work(sizeof({T}) * lwork);
  if (!work) {{ free(w); free(t); free(cw); return -1; }}
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(m, n, a + b * m * n, w);
    memcpy(t, taus + b * k, sizeof({T}) * k);
    tr_{P}(rows, cols, c + b * rows * cols, cw);
    ((ormqr_{P})fns[0])(&side, &trans, &rows, &cols, &k, w, &m, t, cw, &rows, work, &lwork,
                        &info);
    tr_{P}(cols, rows, cw, out + b * rows * cols);
  }}
  free(w); free(t); free(cw); free(work);
  return 0;
}}

typedef void (*sytrd_{P})(char *, int *, {T} *, int *, {R} *, {R} *, {T} *, {T} *, int *,
                          int *);
int tj_sytrd_{P}(void **bufs, const long *p, void *const *fns) {{
  /* p: batch, n, lower; bufs: a, out (reduced, reflectors beyond), d, e, taus */
  const {T} *a = bufs[0]; {T} *out = bufs[1], *taus = bufs[4]; {R} *d = bufs[2], *e = bufs[3];
  int n = (int)p[1], info = 0, lwork = -1;
  char uplo = p[2] ? 'L' : 'U';
  {T} *w = tj_work(sizeof({T}) * ((long)n * n + 1)), query = 0;
  if (!w) return -1;
  ((sytrd_{P})fns[0])(&uplo, &n, w, &n, d, e, taus, &query, &lwork, &info);
  lwork = lwork_{P}(query);
  {T} *work = tj_work(sizeof({T}) * lwork);
  if (!work) {{ free(w); return -1; }}
  for (long b = 0; b < p[0]; b++) {{
    tr_{P}(n, n, a + b * n * n, w);
    ((sytrd_{P})fns[0])(&uplo, &n, w, &n, d + b * n, e + b * (n - 1), taus + b * (n - 1),
                        work, &lwork, &info);
    tr_{P}(n, n, w, out + b * n * n);
  }}
  free(w); free(work);
  return 0;
}}
"""


def _fill(template: str, prefix: str) -> str:
    t, r, cplx = TYPES[prefix]
    nan = f"(({t})(NAN + I * NAN))" if cplx else "NAN"
    conj = ("conj" if prefix == "z" else "conjf") if cplx else ""
    return template.format(
        P=prefix, T=t, R=r, C=f"{r} _Complex", NAN=nan, CONJ=conj, TR="C" if cplx else "T",
        RWT=f" {r} *," if cplx else "", RWA=" rw," if cplx else "",
        RWT2=f" {r} *, int *," if cplx else "",
        RWQ=" &rq, &lrwork," if cplx else "", RWB=" rw, &lrwork," if cplx else "")


def lapack_source() -> str:
    """The whole driver: every routine for float32, float64, complex64 and complex128."""
    parts = [PRELUDE]
    for prefix in TYPES:
        parts.append(_fill(TEMPLATE, prefix))
        parts.append(_fill(HOUSEHOLDER, prefix))
        parts.append(_fill(EIG_COMPLEX if TYPES[prefix][2] else EIG_REAL, prefix))
    return "\n".join(parts)
