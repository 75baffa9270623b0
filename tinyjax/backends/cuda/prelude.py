"""The CUDA source every CUDA program starts with: fixed-width types, 16-byte vector
accesses, branch-free selects, the wait of a programmatic dependent launch, and the C
prelude's scalar helpers (:mod:`tinyjax.backends.prelude`) as device functions; and the
tensor cores' instructions (inline PTX, no headers) that a product's kernel includes
(the loop IR's ``INCLUDE`` op): ``mma.sync``, ``ldmatrix``, ``cp.async`` and the
warpgroup MMA of each shape."""
from __future__ import annotations

from tinyjax.backends.prelude import PRELUDE

__all__ = ["CUDA_PRELUDE", "GEMM_HELPERS", "WG_HELPERS", "wgmma_name", "wgmma_source"]


_TYPES = r"""
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
__device__ __forceinline__ void tj_memcpy(void *d, const void *s, unsigned long n) {
  for (unsigned long i = 0; i < n; i++) ((char *)d)[i] = ((const char *)s)[i];
}
/* N consecutive elements moved by one (16-byte where N * sizeof(T) == 16) access; element
   by element where the pointer is not aligned for it (a view into a row of a buffer) */
template <typename T, int N> struct alignas(sizeof(T) * N) tj_vec { T v[N]; };
template <typename T, int N>
__device__ __forceinline__ tj_vec<T, N> tj_ld(const T *__restrict__ p, bool aligned) {
  if (aligned) return *(const tj_vec<T, N> *)p;
  tj_vec<T, N> r;
  for (int j = 0; j < N; j++) r.v[j] = p[j];
  return r;
}
template <typename T, int N>
__device__ __forceinline__ void tj_st(T *__restrict__ p, const tj_vec<T, N> &x, bool aligned) {
  if (aligned) { *(tj_vec<T, N> *)p = x; return; }
  for (int j = 0; j < N; j++) p[j] = x.v[j];
}
/* a select that stays one: the value (a masked load from a clamped address) is computed
   unconditionally, so that the loads of an unrolled loop are all in flight at once (as a
   plain ?: the compiler turns a select of a load back into a branch around the load) */
__device__ __forceinline__ float tj_sel_f(int c, float x, float y) {
  float r;
  asm("{ .reg .pred p; setp.ne.s32 p, %1, 0; selp.f32 %0, %2, %3, p; }"
      : "=f"(r) : "r"(c), "f"(x), "f"(y));
  return r;
}
__device__ __forceinline__ double tj_sel_d(int c, double x, double y) {
  double r;
  asm("{ .reg .pred p; setp.ne.s32 p, %1, 0; selp.f64 %0, %2, %3, p; }"
      : "=d"(r) : "r"(c), "d"(x), "d"(y));
  return r;
}
/* the first statement of every kernel: launched as a programmatic dependent launch (sm_90
   on), a kernel may start while the one before it on the stream finishes, so it waits
   until that one's writes are visible (and so everything before it: that one waited too) */
__device__ __forceinline__ void tj_wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
/* the bits of a value as another type of the same size */
template <typename D, typename S> __device__ __forceinline__ D tj_as(S s) {
  union { S s; D d; } u; u.s = s; return u.d;
}
"""


def _device_helpers() -> str:
    """The C prelude's scalar helpers (bit casts, 16-bit floats, special functions) as
    device functions: one source of truth for their semantics."""
    start = PRELUDE.index("static inline uint8_t tj_bc_int8_uint8")
    text = PRELUDE[start:]
    lines = [ln for ln in text.split("\n") if not ln.startswith("#pragma omp")]
    text = "\n".join(lines)
    text = text.replace("static inline ", "__device__ __forceinline__ ")
    text = text.replace("memcpy(", "tj_memcpy(")
    text = text.replace("static const double", "const double")
    return text


CUDA_PRELUDE = _TYPES + _device_helpers()

# the tensor cores' instructions (inline PTX, no headers), before every product's kernel
GEMM_HELPERS = r"""
#ifndef TJ_GEMM_HELPERS
#define TJ_GEMM_HELPERS
__device__ __forceinline__ uint32_t tj_smem_addr(const void *p) {
  uint32_t a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
__device__ __forceinline__ void tj_cp_async16(uint32_t dst, const void *src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void tj_cp_async_commit() { asm volatile("cp.async.commit_group;"); }
__device__ __forceinline__ void tj_ldsm_x4(uint32_t *r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void tj_ldsm_x4_t(uint32_t *r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ uint32_t tj_tf32(uint32_t x) {
  uint32_t y;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(y) : "f"(__uint_as_float(x)));
  return y;
}
#define TJ_MMA(NAME, SHAPE, AB)                                                               \
__device__ __forceinline__ void NAME(float *c, const uint32_t *a, const uint32_t *b) {       \
  asm volatile("mma.sync.aligned." SHAPE ".row.col.f32." AB "." AB ".f32 "                   \
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                       \
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                               \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));          \
}
TJ_MMA(tj_mma_bf16, "m16n8k16", "bf16")
TJ_MMA(tj_mma_f16, "m16n8k16", "f16")
TJ_MMA(tj_mma_tf32, "m16n8k8", "tf32")
#undef TJ_MMA
#endif
"""


WG_HELPERS = r"""
#ifndef TJ_WG_HELPERS
#define TJ_WG_HELPERS
/* a shared-memory matrix descriptor: 128-byte swizzle, 8-row atoms 1024 bytes apart (SBO),
   64-element column blocks lbo bytes apart (MN-major tiles) */
__device__ __forceinline__ uint64_t tj_wg_desc(uint32_t addr, uint32_t lbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) |
         ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}
/* keeps the compiler from moving the accumulators across the asynchronous MMAs */
template <int N> __device__ __forceinline__ void tj_wg_fence_acc(float (&acc)[N]) {
  #pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(acc[i]) :: "memory");
}
#endif
"""


def wgmma_name(mode: str, N: int, ta, tb: int) -> str:
    return f"tj_wgmma_{mode}_n{N}_{ta}{tb}"


def wgmma_source(mode: str, N: int, ta, tb: int) -> str:
    """The device function issuing one ``wgmma.mma_async`` m64 x ``N`` x k (16, TF32: 8),
    accumulating into ``acc``; ``ta``/``tb``: the operand's tile runs along M/N (16-bit only),
    ``ta == "r"``: the m64 operand comes from registers (four 32-bit values, TF32)."""
    name = wgmma_name(mode, N, ta, tb)
    n = N // 2
    regs = ", ".join(f"%{i}" for i in range(n))
    shape, kind = (f"m64n{N}k8", "tf32") if mode == "tf32" else (f"m64n{N}k16", mode)
    trans = "" if mode == "tf32" else f", {ta}, {tb}"
    outs = ", ".join(f'"+f"(d[{i}])' for i in range(n))
    if ta == "r":
        a, a_arg, ins = (f"{{%{n}, %{n + 1}, %{n + 2}, %{n + 3}}}", "const uint32_t (&a)[4]",
                         '"r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), ')
        nb = n + 4
    else:
        a, a_arg, ins, nb = f"%{n}", "uint64_t a", '"l"(a), ', n + 1
    return (f"#ifndef {name.upper()}\n#define {name.upper()}\n"
            f"__device__ __forceinline__ void {name}(float (&d)[{n}], {a_arg}, uint64_t db) {{\n"
            f'  asm volatile("{{ .reg .pred p; setp.ne.b32 p, %{nb + 1}, 0; '
            f"wgmma.mma_async.sync.aligned.{shape}.f32.{kind}.{kind} {{{regs}}}, {a}, %{nb}, "
            f'p, 1, 1{trans}; }}"\n'
            f'    : {outs}\n    : {ins}"l"(db), "r"(1));\n}}\n#endif')
