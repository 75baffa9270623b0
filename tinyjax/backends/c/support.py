"""The C source of the CPU backend's support library: built once per process (and cached on
disk like any library), kept loaded for the life of the process, and reached by every
kernel library through pointers set when that library is loaded
(:func:`tinyjax.backends.c.compiler.compile_source`).

It holds what every product shares, so that a product kernel compiles only what is its own
(its loop IR, :mod:`tinyjax.compiler.codegen.cpu_gemm_linearizer`: how its operands' panels
are filled and its epilogue):

* the packing buffers (``tj_scratch``): per thread, grown once and kept -- fresh pages cost
  more than the packing itself; a kernel library unloaded leaks none of them; one that
  cannot be had skips its product and raises ``tj_scratch_failed``, which the program
  reads on its way out (the call raises MemoryError instead of crashing);
* the register-blocked micro-kernel (``tj_micro``): a ``TJ_MR x NR`` tile
  of ``C = sum_k a[k][r] * b[k][c]`` over packed panels, accumulated in vector registers
  (``b``'s rows ``ldb`` apart: a B the plan reads in place, ``TJ_PACK_NONE``, is not
  packed -- :func:`tinyjax.compiler.codegen.gemm.read_in_place`);
* the product driver ``tj_gemm_run``: the strategies of
  :func:`tinyjax.compiler.codegen.gemm.cpu_gemm` (``grouped``, ``fused``, ``splitk``; whole
  products to the threads when ``batched``; no parallel region without ``threads``), calling
  the kernel's ``pack_a``/``pack_b`` (fill panel ``pb`` of product ``ob`` over the first
  reduce axis' range ``lo .. hi``) and ``epilogue`` (tile ``ip, jp`` of product ``ob``);
* the filling of an operand that is a strided view (``tj_view``: one buffer read as it is)
  and the store of a result written as it is, used where the kernel hands no function of
  its own for them -- most products of a training step, which then compile no code at all
  beyond their plan.

Work inside a parallel region is handed out from shared counters (what ``schedule(dynamic)``
does; A panels in runs of about an eighth of a thread's share, since each take moves a
cache line between cores): when another process preempts one of our threads, the others
take over its items.  Split-K's chunks go to the threads statically and the threads' copies
of the result are summed in thread order: the same bits every run.
"""
from __future__ import annotations

__all__ = ["support_source", "GEMM_DRIVER", "GEMM_POINTERS", "FAILED_FLAG", "FAILED_POINTERS"]

GEMM_DRIVER = "tj_gemm_run"
# the pointer through which a product kernel calls the driver of its element type (declared
# by the prelude): a library whose source calls it (``<pointer>(&``) gets it set when loaded,
# to the driver of that type's support library -- each type's is built only when needed
GEMM_POINTERS = {"tj_gemm_provider": "float", "tj_gemm_provider_d": "double"}
# the support library's flag raised when a product's packing buffers could not be had, and
# the prelude's pointer through which a library with products of that type reads it
FAILED_FLAG = "tj_scratch_failed"
FAILED_POINTERS = {"float": "tj_gemm_failed", "double": "tj_gemm_failed_d"}

_COMMON = r"""
#ifdef _OPENMP
int omp_get_num_threads(void), omp_get_max_threads(void), omp_get_thread_num(void);
#define TJ_BARRIER(share) do { if (share) { _Pragma("omp barrier") } } while (0)
#else
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#define TJ_BARRIER(share) ((void)(share))
#endif

static _Thread_local float *tj_scratch_p[4];
static _Thread_local size_t tj_scratch_n[4];
int tj_scratch_failed;   /* raised when a buffer could not be had; the program reads it */
/* 0 (and the flag raised) where the memory is not there: the product is skipped. */
float *tj_scratch_provide(int which, size_t floats) {
  if (tj_scratch_n[which] < floats) {
    float *p = (float *)aligned_alloc(64, ((floats * 4 + 63) / 64) * 64);
    if (!p) {
      __atomic_store_n(&tj_scratch_failed, 1, __ATOMIC_RELAXED);
      return 0;
    }
    free(tj_scratch_p[which]);
    tj_scratch_p[which] = p;
    tj_scratch_n[which] = floats;
  }
  return tj_scratch_p[which];
}
#define tj_scratch tj_scratch_provide

#define TJ_DEFINE_MICRO(NAME, T, VT, VW, NR)                                               \
  typedef T VT __attribute__((vector_size(VW * sizeof(T))));                             \
  typedef T VT##_u __attribute__((vector_size(VW * sizeof(T)), aligned(sizeof(T))));     \
  __attribute__((optimize("fp-contract=fast")))                                          \
  static inline void NAME(long K, const T *restrict a, const T *restrict b, long ldb,    \
                          T *restrict c) {                                               \
    VT acc[TJ_MR][2];                                                                    \
    for (int r = 0; r < TJ_MR; r++) { acc[r][0] = (VT){0}; acc[r][1] = (VT){0}; }        \
    for (long k = 0; k < K; k++) {                                                       \
      /* row k of the panel (packed, or B itself read in place: unaligned loads) */      \
      VT b0 = *(const VT##_u *)(b + k * ldb), b1 = *(const VT##_u *)(b + k * ldb + VW);  \
      _Pragma("GCC unroll 16")                                                           \
      for (int r = 0; r < TJ_MR; r++) {                                                  \
        T av = a[k * TJ_MR + r];                                                         \
        acc[r][0] += av * b0;                                                            \
        acc[r][1] += av * b1;                                                            \
      }                                                                                  \
    }                                                                                    \
    for (int r = 0; r < TJ_MR; r++) {                                                    \
      memcpy(c + r * NR, &acc[r][0], VW * sizeof(T));                                    \
      memcpy(c + r * NR + VW, &acc[r][1], VW * sizeof(T));                               \
    }                                                                                    \
  }

/* The next item of a loop handed out item by item: from the team's shared counter inside a
   parallel region (share), else from this thread's own. */
static inline long tj_next(long *ctr, int share) {
  return share ? __atomic_fetch_add(ctr, 1, __ATOMIC_RELAXED) : (*ctr)++;
}

/* How many consecutive items one take from a shared counter hands out: about eight takes
   per thread (a take is a cache line moved between cores; an item can be under a us). */
static inline long tj_run(long items) {
  long run = items / (8L * omp_get_num_threads());
  return run < 1 ? 1 : run;
}

/* How many chunks to cut the A panels of a product into so that its B groups times the
   chunks keep every thread busy (two items each), at most one chunk per A panel. */
static inline long tj_chunks(long groups, long a_panels) {
  long want = (2L * omp_get_num_threads() + groups - 1) / groups;
  return want < 1 ? 1 : (want > a_panels ? a_panels : want);
}

#define TJ_DEFINE_VIEWS(NAME, T, NR)                                                       \
_Static_assert(TJ_MR <= NR, "an A panel's rows fit the blocked fill's buffer (NR rows)"); \
/* Where a tj_view (see the prelude) starts for product ob. */                           \
static inline T *NAME##_at(const tj_view *v, void **bufs, long ob) {                     \
  long off = v->off;                                                                     \
  for (int d = v->nouter - 1; d >= 0; d--) {                                             \
    off += ob % v->ext[d] * v->str[d];                                                   \
    ob /= v->ext[d];                                                                     \
  }                                                                                      \
  return (T *)bufs[v->slot] + off;                                                       \
}                                                                                        \
/* Rows 0 .. n-1 of a panel of R rows (zero below), K values each: dst[q * R + r] =      \
   src[r * rs + q * cs], the way v->how says (as a kernel's own packing would): rows     \
   innermost (unit stride along them, or a big panel's rows along K); blocks of K with   \
   unit stride, written transposed; K innermost in plain loops (vectorising them costs   \
   the C compiler more than it gains). */                                                \
__attribute__((optimize("no-tree-vectorize")))                                           \
static void NAME##_fill_k(const T *src, long rs, long cs, long n, long K, int R,         \
                          T *restrict dst) {                                             \
  for (int r = 0; r < R; r++)                                                            \
    for (long q = 0; q < K; q++) dst[q * R + r] = r < n ? src[r * rs + q * cs] : (T)0;   \
}                                                                                        \
static inline void NAME##_fill(const tj_view *v, const T *src, long n, long K, int R,    \
                               T *restrict dst) {                                        \
  const long rs = v->rs, cs = v->cs;                                                     \
  if (v->how == TJ_PACK_BLOCKED && cs == 1) {                                            \
    for (long q0 = 0; q0 < K; q0 += 32) {                                                \
      const int kb = K - q0 < 32 ? (int)(K - q0) : 32;                                   \
      T blk[NR][32] __attribute__((aligned(64)));                                        \
      for (int r = 0; r < R; r++) {                                                      \
        if (r >= n) { for (int j = 0; j < kb; j++) blk[r][j] = 0; continue; }            \
        _Pragma("omp simd")                                                              \
        for (int j = 0; j < kb; j++) blk[r][j] = src[r * rs + q0 + j];                   \
      }                                                                                  \
      for (int j = 0; j < kb; j++)                                                       \
        for (int r = 0; r < R; r++) dst[(q0 + j) * R + r] = blk[r][j];                   \
    }                                                                                    \
  } else if (v->how != TJ_PACK_K) {                                                      \
    for (long q = 0; q < K; q++, src += cs, dst += R) {                                  \
      if (rs == 1 && n == R) {  /* (R known where inlined: one vector move or two) */   \
        _Pragma("omp simd")                                                              \
        for (int r = 0; r < R; r++) dst[r] = src[r];                                     \
      } else if (rs == 1) {                                                              \
        _Pragma("omp simd")                                                              \
        for (long r = 0; r < n; r++) dst[r] = src[r];                                    \
      } else {                                                                           \
        _Pragma("omp simd")                                                              \
        for (long r = 0; r < n; r++) dst[r] = src[r * rs];                               \
      }                                                                                  \
      for (long r = n; r < R; r++) dst[r] = 0;                                           \
    }                                                                                    \
  } else {                                                                               \
    NAME##_fill_k(src, rs, cs, n, K, R, dst);                                            \
  }                                                                                      \
}                                                                                        \
/* Panel pb (R of its rows) of operand v, the first reduce axis' values lo .. hi. */     \
static inline void NAME##_panel(const tj_gemm_plan *s, const tj_view *v, long rows,      \
                                int R, void **bufs, long ob, long pb, long lo,           \
                                long hi, void *dst) {                                    \
  const long kin = s->K / s->S0, p0 = pb * R;                                            \
  NAME##_fill(v, NAME##_at(v, bufs, ob) + p0 * v->rs + lo * kin * v->cs,                 \
              rows - p0 < R ? rows - p0 : R, (hi - lo) * kin, R, (T *)dst);              \
}                                                                                        \
static void NAME##_pack_a(const tj_gemm_plan *s, void **bufs, long ob, long pb, long lo, \
                          long hi, void *dst) {                                          \
  NAME##_panel(s, &s->a, s->M, TJ_MR, bufs, ob, pb, lo, hi, dst);                        \
}                                                                                        \
static void NAME##_pack_b(const tj_gemm_plan *s, void **bufs, long ob, long pb, long lo, \
                          long hi, void *dst) {                                          \
  NAME##_panel(s, &s->b, s->N, NR, bufs, ob, pb, lo, hi, dst);                           \
}                                                                                        \
/* Tile ip, jp of the result, stored as it is. */                                        \
static void NAME##_store(const tj_gemm_plan *s, void **bufs, long ob, long ip, long jp,   \
                         const void *t) {                                                \
  const tj_view *v = &s->c;                                                              \
  const T *tile = (const T *)t;                                                          \
  const long rs = v->rs, cs = v->cs;                                                     \
  const long rmax = s->M - ip * TJ_MR < TJ_MR ? s->M - ip * TJ_MR : TJ_MR;               \
  const long cmax = s->N - jp * NR < NR ? s->N - jp * NR : NR;                           \
  T *restrict dst = NAME##_at(v, bufs, ob) + ip * TJ_MR * rs + jp * NR * cs;             \
  if (cs == 1) {                                                                         \
    for (long r = 0; r < rmax; r++)                                                      \
      for (long c = 0; c < cmax; c++) dst[r * rs + c] = tile[r * NR + c];                \
  } else {                                                                               \
    for (long c = 0; c < cmax; c++)                                                      \
      for (long r = 0; r < rmax; r++) dst[r * rs + c * cs] = tile[r * NR + c];           \
  }                                                                                      \
}

#define TJ_DEFINE_GEMM(NAME, T, MICRO, NR)                                                 \
/* Product ob, run by every thread of a team (share: the counters ctr and the buffer      \
   shared are the team's) or by one thread alone. */                                     \
static void NAME##_one(const tj_gemm_plan *s, void **bufs, long ob, tj_pack_fn pack_a,    \
                       tj_pack_fn pack_b, tj_epi_fn epi, T *shared, long *ctr,            \
                       int share) {                                                      \
  const long M = s->M, N = s->N, K = s->K, S0 = s->S0, W = sizeof(T) / 4;                \
  const long MP = (M + TJ_MR - 1) / TJ_MR, NP = (N + NR - 1) / NR;                       \
  long own[2] = {0, 0};                                                                  \
  if (!share) ctr = own;                                                                 \
  T tile[TJ_MR * NR] __attribute__((aligned(64)));                                       \
  if (s->strategy == TJ_FUSED) {                                                         \
    /* all of b packed (it fits L2) or read in place, then each a panel right before     \
       its tiles */                                                                      \
    T *Bp;                                                                               \
    long ldb, pstep;                                                                     \
    if (pack_b) {                                                                        \
      Bp = shared ? shared : (T *)tj_scratch(1, NP * NR * K * W);                        \
      if (!Bp) return;  /* (not shared: no barrier to meet) */                           \
      for (long pb; (pb = tj_next(&ctr[0], share)) < NP;)                                \
        pack_b(s, bufs, ob, pb, 0, S0, Bp + pb * NR * K);                                \
      TJ_BARRIER(share);                                                                 \
      ldb = NR, pstep = NR * K;                                                          \
    } else {                                                                             \
      Bp = NAME##_at(&s->b, bufs, ob), ldb = s->b.cs, pstep = NR;                        \
    }                                                                                    \
    T *Al = (T *)tj_scratch(0, TJ_MR * K * W);                                           \
    if (!Al) return;                                                                     \
    const long CH = share ? tj_run(MP) : MP;                                             \
    for (long c; (c = tj_next(&ctr[1], share)) * CH < MP;)                               \
      for (long ip = c * CH; ip < (c + 1) * CH && ip < MP; ip++) {                       \
        pack_a(s, bufs, ob, ip, 0, S0, Al);                                              \
        for (long jp = 0; jp < NP; jp++) {                                               \
          MICRO(K, Al, Bp + jp * pstep, ldb, tile);                                      \
          epi(s, bufs, ob, ip, jp, tile);                                                \
        }                                                                                \
      }                                                                                  \
    return;                                                                              \
  }                                                                                      \
  /* all of a packed, then b a group of panels (~256 KiB) at a time by the thread that   \
     multiplies every a panel (or a chunk of them) by it: the group stays in its L2 */   \
  T *Ap = shared ? shared : (T *)tj_scratch(0, MP * TJ_MR * K * W);                      \
  if (!Ap) return;                                                                       \
  for (long pa; (pa = tj_next(&ctr[0], share)) < MP;)                                    \
    pack_a(s, bufs, ob, pa, 0, S0, Ap + pa * TJ_MR * K);                                 \
  TJ_BARRIER(share);                                                                     \
  const long JB = 262144 / (NR * K * (long)sizeof(T)) > 0 ?                              \
                  262144 / (NR * K * (long)sizeof(T)) : 1, NJB = (NP + JB - 1) / JB;     \
  const long IC = share ? tj_chunks(NJB, MP) : 1;                                        \
  T *Bl = pack_b ? (T *)tj_scratch(1, JB * NR * K * W) : 0;                              \
  if (pack_b && !Bl) return;                                                             \
  const T *Bd = NAME##_at(&s->b, bufs, ob);  /* (B read in place: no pack_b) */          \
  for (long item; (item = tj_next(&ctr[1], share)) < NJB * IC;) {                        \
    const long jb = item / IC, ic = item % IC;                                           \
    for (long pb = jb * JB; pack_b && pb < (jb + 1) * JB && pb < NP; pb++)               \
      pack_b(s, bufs, ob, pb, 0, S0, Bl + (pb - jb * JB) * NR * K);                      \
    for (long ip = ic * MP / IC; ip < (ic + 1) * MP / IC; ip++)                          \
      for (long jp = jb * JB; jp < (jb + 1) * JB && jp < NP; jp++) {                     \
        if (pack_b)                                                                      \
          MICRO(K, Ap + ip * TJ_MR * K, Bl + (jp - jb * JB) * NR * K, NR, tile);         \
        else                                                                             \
          MICRO(K, Ap + ip * TJ_MR * K, Bd + jp * NR, s->b.cs, tile);                    \
        epi(s, bufs, ob, ip, jp, tile);                                                  \
      }                                                                                  \
  }                                                                                      \
}                                                                                        \
/* Split-K (one product, threads): chunks of the first reduce axis over the threads,     \
   each into its own copy of the result; the copies summed in thread order. */           \
static void NAME##_splitk(const tj_gemm_plan *s, void **bufs, tj_pack_fn pack_a,          \
                          tj_pack_fn pack_b, tj_epi_fn epi) {                            \
  const long M = s->M, N = s->N, K = s->K, S0 = s->S0, W = sizeof(T) / 4;                \
  const long MP = (M + TJ_MR - 1) / TJ_MR, NP = (N + NR - 1) / NR, CW = NP * NR;         \
  const long kin = K / S0, steps = s->steps, nkc = s->chunks;                            \
  T *Cs = (T *)tj_scratch(3, MP * TJ_MR * CW * W);                                       \
  if (!Cs) return;                                                                       \
  T *copies[omp_get_max_threads()];                                                      \
  int failed = 0;  /* (the team's: every thread takes the same way after the barrier) */ \
  _Pragma("omp parallel")                                                                \
  {                                                                                      \
    T *Cl = (T *)tj_scratch(2, MP * TJ_MR * CW * W);                                     \
    T *Ap = (T *)tj_scratch(0, MP * TJ_MR * steps * kin * W);                            \
    T *Bp = (T *)tj_scratch(1, NP * NR * steps * kin * W);                               \
    const int ok = Cl && Ap && Bp;                                                       \
    if (ok) memset(Cl, 0, MP * TJ_MR * CW * sizeof(T));                                  \
    else __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);                                 \
    T tile[TJ_MR * NR] __attribute__((aligned(64)));                                     \
    _Pragma("omp for schedule(static)")                                                  \
    for (long kc = 0; kc < nkc; kc++) {                                                  \
      if (!ok) continue;                                                                 \
      const long lo = kc * steps, hi = lo + steps < S0 ? lo + steps : S0;                \
      const long KB = (hi - lo) * kin;                                                   \
      for (long pb = 0; pb < MP; pb++) pack_a(s, bufs, 0, pb, lo, hi, Ap + pb * TJ_MR * KB); \
      for (long pb = 0; pb < NP; pb++) pack_b(s, bufs, 0, pb, lo, hi, Bp + pb * NR * KB); \
      for (long jp = 0; jp < NP; jp++)                                                   \
        for (long ip = 0; ip < MP; ip++) {                                               \
          MICRO(KB, Ap + ip * TJ_MR * KB, Bp + jp * NR * KB, NR, tile);                  \
          for (int r = 0; r < TJ_MR; r++)                                                \
            for (int c = 0; c < NR; c++)                                                 \
              Cl[(ip * TJ_MR + r) * CW + jp * NR + c] += tile[r * NR + c];               \
        }                                                                                \
    }                                                                                    \
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();                      \
    copies[t] = Cl;                                                                      \
    _Pragma("omp barrier")                                                               \
    if (!__atomic_load_n(&failed, __ATOMIC_RELAXED)) {                                   \
      _Pragma("omp for schedule(static)")                                                \
      for (long q = 0; q < MP * TJ_MR * CW; q++) {                                       \
        T sum = copies[0][q];                                                            \
        for (int u = 1; u < nt; u++) sum += copies[u][q];                                \
        Cs[q] = sum;                                                                     \
      }                                                                                  \
      _Pragma("omp for collapse(2) schedule(dynamic)")                                   \
      for (long ip = 0; ip < MP; ip++)                                                   \
        for (long jp = 0; jp < NP; jp++) {                                               \
          for (int r = 0; r < TJ_MR; r++)                                                \
            for (int c = 0; c < NR; c++)                                                 \
              tile[r * NR + c] = Cs[(ip * TJ_MR + r) * CW + jp * NR + c];                \
          epi(s, bufs, 0, ip, jp, tile);                                                 \
        }                                                                                \
    }                                                                                    \
  }                                                                                      \
}                                                                                        \
static void NAME(const tj_gemm_plan *s, void **bufs, tj_pack_fn pack_a,                   \
                 tj_pack_fn pack_b, tj_epi_fn epi) {                                     \
  const long W = sizeof(T) / 4;                                                          \
  if (!pack_a) pack_a = NAME##_pack_a;  /* (the kernel's operand is a view) */           \
  /* a view B the plan reads in place (TJ_PACK_NONE) stays unpacked (pack_b 0) */        \
  if (!pack_b && s->b.how != TJ_PACK_NONE)                                               \
    pack_b = NAME##_pack_b;                                                              \
  if (!epi) epi = NAME##_store;                                                          \
  if (s->strategy == TJ_SPLITK) {                                                        \
    NAME##_splitk(s, bufs, pack_a, pack_b, epi);                                         \
  } else if (s->threads && s->batched) {                                                 \
    _Pragma("omp parallel for schedule(dynamic)")                                        \
    for (long ob = 0; ob < s->outer; ob++)                                               \
      NAME##_one(s, bufs, ob, pack_a, pack_b, epi, 0, 0, 0);                             \
  } else if (s->threads) {                                                               \
    const long MP = (s->M + TJ_MR - 1) / TJ_MR, NP = (s->N + NR - 1) / NR;               \
    const int fused = s->strategy == TJ_FUSED;                                           \
    T *shared = fused ? (pack_b ? (T *)tj_scratch(1, NP * NR * s->K * W) : 0)            \
                      : (T *)tj_scratch(0, MP * TJ_MR * s->K * W);                       \
    if (!shared && (pack_b || !fused)) return;                                           \
    for (long ob = 0; ob < s->outer; ob++) {                                             \
      long ctr[2] = {0, 0};                                                              \
      _Pragma("omp parallel")                                                            \
      NAME##_one(s, bufs, ob, pack_a, pack_b, epi, shared, ctr, 1);                      \
    }                                                                                    \
  } else {                                                                               \
    for (long ob = 0; ob < s->outer; ob++)                                               \
      NAME##_one(s, bufs, ob, pack_a, pack_b, epi, 0, 0, 0);                             \
  }                                                                                      \
}
"""

_TYPES = {"float": ("tj_vf", "TJ_VW", "TJ_NR"), "double": ("tj_vd", "TJ_VWD", "TJ_NRD")}


def support_source(ctype: str) -> str:
    """The support library of products of ``ctype`` (``float`` or ``double``): ``tj_scratch``,
    its micro-kernel and its driver ``tj_gemm_run`` (after the prelude)."""
    vt, vw, nr = _TYPES[ctype]
    return _COMMON + f"""
TJ_DEFINE_MICRO(tj_micro, {ctype}, {vt}, {vw}, {nr})
TJ_DEFINE_VIEWS(tj_gemm, {ctype}, {nr})
TJ_DEFINE_GEMM(tj_gemm, {ctype}, tj_micro, {nr})
void tj_gemm_run(const tj_gemm_plan *s, void **bufs, tj_pack_fn pack_a, tj_pack_fn pack_b,
                 tj_epi_fn epi) {{
  tj_gemm(s, bufs, pack_a, pack_b, epi);
}}
"""
