"""The C source every C-like program starts with: scalar helpers for what C and libm lack
(bit casts, 16-bit floats, special functions), computed in double where precision asks.
The C backend compiles it before its kernels; the CUDA backend rewrites it as device
functions (:mod:`tinyjax.backends.cuda.prelude`), so both share one definition of their
semantics."""

__all__ = ["PRELUDE"]

PRELUDE = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
""" + r"""
/* A product's packed panels: TJ_MR rows of a and TJ_NR columns of b (TJ_NRD in double) per
   k, the register tile of the support library's micro-kernel. */
#if defined(__AVX512F__)
#define TJ_VW 16
#define TJ_MR 8
#else
#define TJ_VW 8
#define TJ_MR 6
#endif
#define TJ_NR (2 * TJ_VW)
#define TJ_VWD (TJ_VW / 2)
#define TJ_NRD (2 * TJ_VWD)
/* Branch-free selects for scalar loops whose conditions follow the data (a ReLU fused into a
   conv's packing): gcc turns float ?: into branches there, and they mispredict. */
static inline float tj_sel_f(int c, float x, float y) {
  uint32_t a, b; memcpy(&a, &x, 4); memcpy(&b, &y, 4);
  uint32_t m = -(uint32_t)(c != 0); a = (a & m) | (b & ~m);
  float r; memcpy(&r, &a, 4); return r;
}
static inline double tj_sel_d(int c, double x, double y) {
  uint64_t a, b; memcpy(&a, &x, 8); memcpy(&b, &y, 8);
  uint64_t m = -(uint64_t)(c != 0); a = (a & m) | (b & ~m);
  double r; memcpy(&r, &a, 8); return r;
}
/* Products: a kernel fills its operands' panels and applies its epilogue to each finished
   tile through the functions it hands the support library's driver (tj_gemm_run, see
   tinyjax/backends/c/support.py), which runs the strategy of its plan.  tj_gemm_provider
   (float) and tj_gemm_provider_d (double) are set to the drivers when the kernel's library
   is loaded, and tj_gemm_failed (_d) to the flag its support library raises when a
   product's packing buffers could not be allocated (the product is then skipped and the
   program returns OUT_OF_MEMORY, tinyjax/backends/c/program.py).  An operand that is one
   buffer read as it is (or a result written as it is) is a tj_view of the plan instead,
   and the kernel hands no function for it (0): element (p, q) of product ob is
   bufs[slot][off + p * rs + q * cs + the outer axes' offset] (up to four outer axes of
   extents ext and strides str, the last fastest); the driver's own functions fill its
   panels (p: a row of the panel, q: along K) the way `how` says (TJ_PACK_NONE: none, the
   micro-kernel reads B's rows where they are), or store the result's tiles (p: the row, q:
   the column). */
enum { TJ_GROUPED = 0, TJ_FUSED = 1, TJ_SPLITK = 2 };
enum { TJ_PACK_ROWS = 0, TJ_PACK_BLOCKED = 1, TJ_PACK_K = 2, TJ_PACK_NONE = 3 };
typedef struct { long off, rs, cs, ext[4], str[4]; int slot, nouter, how; } tj_view;
typedef struct { long M, N, K, S0, outer, steps, chunks; int strategy, threads, batched;
                 tj_view a, b, c; } tj_gemm_plan;
typedef void (*tj_pack_fn)(const tj_gemm_plan *s, void **bufs, long ob, long pb, long lo,
                           long hi, void *dst);
typedef void (*tj_epi_fn)(const tj_gemm_plan *s, void **bufs, long ob, long ip, long jp,
                          const void *tile);
typedef void (*tj_gemm_fn)(const tj_gemm_plan *, void **, tj_pack_fn, tj_pack_fn, tj_epi_fn);
__attribute__((weak)) tj_gemm_fn tj_gemm_provider = 0, tj_gemm_provider_d = 0;
__attribute__((weak)) int *tj_gemm_failed = 0, *tj_gemm_failed_d = 0;
""" + r"""
#ifdef TJ_LIBMVEC
#define TJ_SIMD_DECL(fn) float fn##f(float) __attribute__((__simd__("notinbranch"))); \
                         double fn(double) __attribute__((__simd__("notinbranch")));
TJ_SIMD_DECL(exp) TJ_SIMD_DECL(exp2) TJ_SIMD_DECL(expm1) TJ_SIMD_DECL(log) TJ_SIMD_DECL(log1p)
TJ_SIMD_DECL(sin) TJ_SIMD_DECL(cos) TJ_SIMD_DECL(tan) TJ_SIMD_DECL(tanh) TJ_SIMD_DECL(sinh)
TJ_SIMD_DECL(cosh) TJ_SIMD_DECL(asin) TJ_SIMD_DECL(acos) TJ_SIMD_DECL(atan) TJ_SIMD_DECL(asinh)
TJ_SIMD_DECL(acosh) TJ_SIMD_DECL(atanh) TJ_SIMD_DECL(erf) TJ_SIMD_DECL(erfc) TJ_SIMD_DECL(cbrt)
#define TJ_SIMD_DECL2(fn) float fn##f(float, float) __attribute__((__simd__("notinbranch"))); \
                          double fn(double, double) __attribute__((__simd__("notinbranch")));
TJ_SIMD_DECL2(pow) TJ_SIMD_DECL2(atan2)
#endif
/* exp as the C renderer spells it: libmvec's takes a scalar path, 20 (float) to 100
   (double) times slower, for every vector holding an argument whose result is below the
   smallest normal number -- a masked softmax's exp(-1e9) -- which the programs flush to
   zero anyway.  The argument is clamped into the fast range and the result selected. */
static inline float tj_expf(float x) {
  const float lo = -87.33654f;  /* log(FLT_MIN) */
  float r = expf(tj_sel_f(x < lo, lo, x));  /* (a ?: here gcc folds into the select) */
  return x < lo ? 0.0f : r;
}
static inline double tj_exp(double x) {
  const double lo = -708.3964185322641;  /* log(DBL_MIN) */
  double r = exp(tj_sel_d(x < lo, lo, x));
  return x < lo ? 0.0 : r;
}
static inline uint8_t tj_bc_int8_uint8(int8_t x) { uint8_t y; memcpy(&y, &x, sizeof y); return y; }
static inline int8_t tj_bc_uint8_int8(uint8_t x) { int8_t y; memcpy(&y, &x, sizeof y); return y; }
static inline uint16_t tj_bc_int16_uint16(int16_t x) { uint16_t y; memcpy(&y, &x, sizeof y); return y; }
static inline int16_t tj_bc_uint16_int16(uint16_t x) { int16_t y; memcpy(&y, &x, sizeof y); return y; }
static inline uint32_t tj_bc_int32_uint32(int32_t x) { uint32_t y; memcpy(&y, &x, sizeof y); return y; }
static inline float tj_bc_int32_float32(int32_t x) { float y; memcpy(&y, &x, sizeof y); return y; }
static inline int32_t tj_bc_uint32_int32(uint32_t x) { int32_t y; memcpy(&y, &x, sizeof y); return y; }
static inline float tj_bc_uint32_float32(uint32_t x) { float y; memcpy(&y, &x, sizeof y); return y; }
static inline int32_t tj_bc_float32_int32(float x) { int32_t y; memcpy(&y, &x, sizeof y); return y; }
static inline uint32_t tj_bc_float32_uint32(float x) { uint32_t y; memcpy(&y, &x, sizeof y); return y; }
static inline uint64_t tj_bc_int64_uint64(int64_t x) { uint64_t y; memcpy(&y, &x, sizeof y); return y; }
static inline double tj_bc_int64_float64(int64_t x) { double y; memcpy(&y, &x, sizeof y); return y; }
static inline int64_t tj_bc_uint64_int64(uint64_t x) { int64_t y; memcpy(&y, &x, sizeof y); return y; }
static inline double tj_bc_uint64_float64(uint64_t x) { double y; memcpy(&y, &x, sizeof y); return y; }
static inline int64_t tj_bc_float64_int64(double x) { int64_t y; memcpy(&y, &x, sizeof y); return y; }
static inline uint64_t tj_bc_float64_uint64(double x) { uint64_t y; memcpy(&y, &x, sizeof y); return y; }
/* 16-bit floats: stored as uint16_t, computed in float, rounded to nearest even */
static inline float tj_f16_to_f32(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0) {
    float f = (float)m * 5.9604644775390625e-8f;
    memcpy(&u, &f, 4); u |= s;
  } else if (e == 31) u = s | 0x7f800000u | (m << 13);
  else u = s | ((e + 112) << 23) | (m << 13);
  float f; memcpy(&f, &u, 4); return f;
}
static inline uint16_t tj_f32_to_f16(float f) {
  uint32_t x; memcpy(&x, &f, 4);
  uint32_t s = (x >> 16) & 0x8000, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(s | 0x7e00 | ((a >> 13) & 0x3ff));
  if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00);
  if (a < 0x38800000u) {
    float af; memcpy(&af, &a, 4);
    return (uint16_t)(s | (uint32_t)rintf(af * 16777216.0f));
  }
  uint32_t r = a - 0x38000000u;
  r += 0x0fff + ((r >> 13) & 1);
  return (uint16_t)(s | (r >> 13));
}
static inline float tj_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f;
}
static inline uint16_t tj_f32_to_bf16(float f) {
  uint32_t u; memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}
static inline float tj_round_f16(float x) { return tj_f16_to_f32(tj_f32_to_f16(x)); }
static inline float tj_round_bf16(float x) { return tj_bf16_to_f32(tj_f32_to_bf16(x)); }
#pragma omp declare reduction(tj_max_float : float : omp_out = (((omp_in > omp_out) | (omp_in != omp_in)) ? omp_in : omp_out)) initializer(omp_priv = -INFINITY)
#pragma omp declare reduction(tj_min_float : float : omp_out = (((omp_in < omp_out) | (omp_in != omp_in)) ? omp_in : omp_out)) initializer(omp_priv = INFINITY)
#pragma omp declare reduction(tj_max_double : double : omp_out = (((omp_in > omp_out) | (omp_in != omp_in)) ? omp_in : omp_out)) initializer(omp_priv = -INFINITY)
#pragma omp declare reduction(tj_min_double : double : omp_out = (((omp_in < omp_out) | (omp_in != omp_in)) ? omp_in : omp_out)) initializer(omp_priv = INFINITY)
static inline double tj_digamma(double x) {
  double r = 0.0;
  if (x != x) return x;
  if (x <= 0.0 && floor(x) == x) return NAN;
  if (x < 0.0) { return tj_digamma(1.0 - x) - M_PI / tan(M_PI * x); }
  while (x < 10.0) { r -= 1.0 / x; x += 1.0; }
  double f = 1.0 / (x * x);
  return r + log(x) - 0.5 / x - f * (1.0/12 - f * (1.0/120 - f * (1.0/252 - f * (1.0/240 - f * (1.0/132 - f * (691.0/32760 - f * (1.0/12)))))));
}
static inline double tj_polygamma(double m, double x) {
  if (m != m || x != x) return NAN;
  if (m == 0.0) return tj_digamma(x);
  if (m < 0.0 || floor(m) != m) return NAN;
  /* (-1)^(m+1) m! sum_k 1/(x+k)^(m+1): shift x up, then the asymptotic tail */
  int n = (int)m; double s = 0.0, fact = 1.0;
  for (int i = 2; i <= n; i++) fact *= i;
  if (x <= 0.0 && floor(x) == x) return NAN;
  while (x < 20.0) { s += pow(x, -(m + 1)); x += 1.0; }
  /* tail: x^-m/m + x^-(m+1)/2 + sum_k B2k (m+2k-1)!/((2k)!(m)!) x^-(m+2k) * m!/(m-1)! */
  double t = pow(x, -m) / m + 0.5 * pow(x, -(m + 1));
  static const double B[] = {1.0/6, -1.0/30, 1.0/42, -1.0/30, 5.0/66, -691.0/2730};
  double c = 1.0;   /* (m+2k-1)!/( (m-1)! (2k)! ) built incrementally */
  for (int k = 1; k <= 6; k++) {
    c = (k == 1) ? m / 2.0 : c * (m + 2*k - 3) * (m + 2*k - 2) / ((2.0*k - 1) * (2.0*k));
    t += B[k-1] * c * pow(x, -(m + 2*k));
  }
  s += t;
  return ((n + 1) % 2 ? -1.0 : 1.0) * fact * s;
}
static inline double tj_erf_inv(double y) {
  if (y != y || y < -1.0 || y > 1.0) return NAN;
  if (y == 1.0) return INFINITY;
  if (y == -1.0) return -INFINITY;
  /* Giles' single-precision approximation, then two Newton steps in double */
  double w = -log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    x = 2.81022636e-08; x = 3.43273939e-07 + x*w; x = -3.5233877e-06 + x*w;
    x = -4.39150654e-06 + x*w; x = 0.00021858087 + x*w; x = -0.00125372503 + x*w;
    x = -0.00417768164 + x*w; x = 0.246640727 + x*w; x = 1.50140941 + x*w;
  } else {
    w = sqrt(w) - 3.0;
    x = -0.000200214257; x = 0.000100950558 + x*w; x = 0.00134934322 + x*w;
    x = -0.00367342844 + x*w; x = 0.00573950773 + x*w; x = -0.0076224613 + x*w;
    x = 0.00943887047 + x*w; x = 1.00167406 + x*w; x = 2.83297682 + x*w;
  }
  x *= y;
  for (int i = 0; i < 2; i++) {
    double e = erf(x) - y;
    x -= e / (1.1283791670955126 * exp(-x * x));
  }
  return x;
}
"""
