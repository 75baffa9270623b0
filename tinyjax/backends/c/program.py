"""A whole :class:`~tinyjax.compiler.steps.Program` as one C function::

    int tj_program(void **restrict args, char *restrict arena, void **restrict hooks)

``args``: the data pointers of the constants, inputs and outputs (in that order); ``arena``:
the call's scratch block (64-byte aligned); ``hooks``: the foreign routines of the
program's :class:`~tinyjax.compiler.steps.Call` steps, in :func:`call_steps` order, three
entries each: ``int fn(void **bufs, const void *params, const void *fns)`` (inputs first;
nonzero: stop, the program returns it) and the two pointers it is called with; the program
returns :data:`OUT_OF_MEMORY` when a product could not have its packing buffers.  Kernels
are called as ``kernel(void **bufs)`` (:meth:`CLanguage.render_kernel`); loops are C
``for`` loops whose carries are ``char *`` pointers swapped every iteration; a ``while``
predicate and a ``cond`` index are read from the arena by the running program.

:func:`timed_program` is the same function with a clock around every kernel launch, for
``DEBUG=2``'s table: each launch site adds its seconds and calls to two arrays of the
library (summed over calls and loop iterations, not per thread: a diagnostic).
"""
from __future__ import annotations

import re

import numpy as np

from tinyjax.backends.cstyle import C_TYPES
from tinyjax.compiler.steps import (CONST, INPUT, OUTPUT, Buffer, Call, Copy, Launch, Loop,
                                    Program, Ref, Switch, walk_steps)

__all__ = ["render_program", "timed_program", "call_steps", "distinct_kernels",
           "PROGRAM_NAME", "PROGRAM_PRELUDE", "LAUNCH_SECONDS", "LAUNCH_CALLS", "OUT_OF_MEMORY"]

PROGRAM_NAME = "tj_program"
# what the program returns when a product could not have its packing buffers (the support
# library's flag, see the prelude): the product was skipped
OUT_OF_MEMORY = -2
# a timed program's arrays, one entry per launch site: seconds spent in it, calls made
LAUNCH_SECONDS, LAUNCH_CALLS = "tj_launch_seconds", "tj_launch_calls"
_CLOCK = r"""
#include <time.h>
static double tj_clock(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
"""

# A strided view read into a contiguous buffer (an output that is a transpose or a slice of
# another buffer, made by no kernel).
PROGRAM_PRELUDE = r"""
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define TJ_CSR_GET() _mm_getcsr()
#define TJ_CSR_SET(m) _mm_setcsr(m)
#define TJ_FTZ_DAZ 0x8040u
#else
#define TJ_CSR_GET() 0u
#define TJ_CSR_SET(m) ((void)(m))
#define TJ_FTZ_DAZ 0u
#endif
static int tj_pool_flushes;   /* the largest team whose threads took the flushing mode */
#ifdef _OPENMP
void omp_set_num_threads(int);
int omp_get_max_threads(void);
#define TJ_TEAM() omp_get_max_threads()
/* the calling thread's parallel regions use n threads (0: as they are) */
static void tj_use_threads(int n) {
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
}
#else
#define TJ_TEAM() 1
static void tj_use_threads(int n) { (void)n; }
#endif
typedef int (*tj_hook)(void **, const void *, const void *);
static void tj_view_copy(char *restrict dst, const char *restrict src, long esize, int nd,
                         const long *shape, const long *strides, long offset) {
  long n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  for (long j = 0; j < n; j++) {
    long r = j, off = offset;
    for (int d = nd - 1; d >= 0; d--) { off += (r % shape[d]) * strides[d]; r /= shape[d]; }
    memcpy(dst + j * esize, src + off * esize, (size_t)esize);
  }
}
"""


def call_steps(program: Program) -> list[Call]:
    """The program's foreign calls in the order of their ``hooks`` entries."""
    return [st for st in walk_steps(program.steps) if isinstance(st, Call)]


def distinct_kernels(kernels: list, bodies: list[str]) -> dict[int, str]:
    """The function each kernel (by ``id``) is called through: the first kernel whose C is
    the same as its own but for its name and comments (a transformer's layers, parameters
    updated alike) lends its function to the others, which are not compiled again."""
    first: dict[str, str] = {}
    out = {}
    for k, body in zip(kernels, bodies):
        code = re.sub(rf"\b{re.escape(k.name)}(?![0-9A-Za-z])", "@", _COMMENT.sub("", body))
        out[id(k)] = first.setdefault(code, k.name)
    return out


# The entry runs the steps with subnormal floats flushed to zero (FTZ and DAZ on x86), as
# XLA's CPU runtime runs JAX's programs: arithmetic on subnormals is ~100x slower, and
# Adam's second moments of small gradients reach them (an MNIST-1D MLP's steps slowed by
# half after 3,000 steps). OpenMP's threads persist, so they take the mode once (again when
# a larger team is asked for: its new threads).
FLUSHING_ENTRY = f"""int {PROGRAM_NAME}(void **restrict args, char *restrict arena, void **restrict hooks) {{
  unsigned csr = TJ_CSR_GET();
  TJ_CSR_SET(csr | TJ_FTZ_DAZ);
  int team = TJ_TEAM();
  if (tj_pool_flushes < team) {{
    #pragma omp parallel
    TJ_CSR_SET(TJ_CSR_GET() | TJ_FTZ_DAZ);
    tj_pool_flushes = team;
  }}
  int rc = {PROGRAM_NAME}_steps(args, arena, hooks);
  TJ_CSR_SET(csr);
  if ((tj_gemm_failed && __atomic_exchange_n(tj_gemm_failed, 0, __ATOMIC_RELAXED)) ||
      (tj_gemm_failed_d && __atomic_exchange_n(tj_gemm_failed_d, 0, __ATOMIC_RELAXED)))
    return {OUT_OF_MEMORY};
  return rc;
}}"""

_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def render_program(program: Program, functions: dict[int, str] = None) -> str:
    """The C source of ``tj_program`` (kernels declared, defined elsewhere in the library);
    ``functions``: the function each kernel is called through (default: its own)."""
    return _Renderer(program, functions or {}).render()


def timed_program(program: Program, functions: dict[int, str] = None
                  ) -> tuple[str, list[Launch]]:
    """:func:`render_program` with every kernel launch timed, and the launch sites in the
    order of the entries of :data:`LAUNCH_SECONDS` and :data:`LAUNCH_CALLS`."""
    r = _Renderer(program, functions or {}, timed=True)
    body = r.render()
    n = max(len(r.sites), 1)
    arrays = f"double {LAUNCH_SECONDS}[{n}];\nlong {LAUNCH_CALLS}[{n}];\n"
    return _CLOCK + arrays + body, r.sites


class _Renderer:
    def __init__(self, program: Program, functions: dict[int, str], timed: bool = False):
        self.p = program
        self.timed, self.sites = timed, []
        self.fn = {id(k): functions.get(id(k), k.name) for k in program.kernels}
        self.hooks = {id(c): i for i, c in enumerate(call_steps(program))}
        self.args: dict[int, str] = {}
        for i, b in enumerate(program.consts + program.inputs + program.outputs):
            self.args[id(b)] = f"a{i}"
        self.lines: list[str] = []

    def render(self) -> str:
        p = self.p
        names = list(dict.fromkeys(self.fn.values()))
        out = [f"void {name}(void **restrict bufs);" for name in names]
        steps_fn = (f"static int {PROGRAM_NAME}_steps(void **restrict args, "
                    "char *restrict arena, void **restrict hooks)")
        out += [steps_fn + ";", FLUSHING_ENTRY, steps_fn + " {"]
        out.append("  (void)arena; (void)hooks;")
        for i, b in enumerate(p.consts + p.inputs + p.outputs):
            out.append(f"  char *a{i} = (char *)args[{i}];  /* {b!r}: "
                       f"{b.dtype.name}[{b.size}] */")
        self.lines = out
        self.steps(p.steps, "  ")
        out.append("  return 0;")
        out.append("}")
        return "\n".join(out) + "\n"

    # ---- addresses -------------------------------------------------------------------------
    def base(self, b) -> str:
        if isinstance(b, Buffer):
            if b.kind in (CONST, INPUT, OUTPUT):
                return self.args[id(b)]
            return f"(arena + {b.index})"
        return b.name   # a carry's pointer

    def ref(self, r: Ref) -> str:
        s = self.base(r.base)
        isz = r.dtype.itemsize
        if r.offset:
            s += f" + {r.offset * isz}"
        for loop, stride in r.terms:
            s += f" + {loop.counter} * {stride * isz}L"
        return s

    # ---- steps -----------------------------------------------------------------------------
    def steps(self, steps: list, ind: str) -> None:
        for st in steps:
            kind = type(st)
            if kind is Launch:
                fn, name = self.fn[id(st.kernel)], st.kernel.name
                note = "" if fn == name else f"  /* {name} */"
                launch = (f"{{ void *b[] = {{{', '.join(self.ref(r) for r in st.refs)}}}; "
                          f"{fn}(b); }}")
                if self.timed:
                    i = len(self.sites)
                    self.sites.append(st)
                    launch = (f"{{ double t = tj_clock(); {launch} {LAUNCH_SECONDS}[{i}] += "
                              f"tj_clock() - t; {LAUNCH_CALLS}[{i}]++; }}")
                self.lines.append(f"{ind}{launch}{note}")
            elif kind is Copy:
                self.copy(st, ind)
            elif kind is Loop:
                self.loop(st, ind)
            elif kind is Switch:
                self.switch(st, ind)
            elif kind is Call:
                refs = ", ".join(self.ref(r) for r in st.ins + st.outs) or "0"
                h = 3 * self.hooks[id(st)]
                self.lines.append(f"{ind}{{ void *b[] = {{{refs}}}; /* {st.name} */ int rc = "
                                  f"((tj_hook)hooks[{h}])(b, hooks[{h + 1}], hooks[{h + 2}]); "
                                  "if (rc) return rc; }")
            else:
                raise TypeError(f"unknown program step {st!r}")

    def copy(self, st: Copy, ind: str) -> None:
        if st.dst.size == 0:
            return
        if st.view is None:
            self.lines.append(f"{ind}memcpy({self.ref(st.dst)}, {self.ref(st.src)}, "
                              f"{st.dst.nbytes});")
            return
        shape, strides, offset = st.view
        nd = len(shape)
        arr = lambda xs: "(const long[]){" + ", ".join(map(str, xs)) + "}" if xs else "0"  # noqa: E731
        self.lines.append(f"{ind}tj_view_copy({self.ref(st.dst)}, {self.ref(st.src)}, "
                          f"{st.dst.dtype.itemsize}, {nd}, {arr(shape)}, {arr(strides)}, "
                          f"{offset});")

    def loop(self, st: Loop, ind: str) -> None:
        L = self.lines
        it = f"it_{st.counter}"
        head = "scan" if st.length is not None else "while"
        L.append(f"{ind}{{  /* {head} {st.counter}"
                 + (f": {st.length} iterations{', reversed' if st.reverse else ''}"
                    if st.length is not None else "") + " */")
        inner = ind + "  "
        for c in st.carries:
            L.append(f"{inner}char *{c.cur.name} = {self.ref(c.init)}, *{c.nxt.name};")
        bound = f"{it} < {st.length}L" if st.length is not None else ""
        L.append(f"{inner}for (long {it} = 0; {bound}; {it}++) {{")
        body = inner + "  "
        if st.length is None:
            self.steps(st.cond, body)
            L.append(f"{body}if (!*(const unsigned char *)({self.ref(st.pred)})) break;")
        else:
            idx = f"{st.length - 1}L - {it}" if st.reverse else it
            L.append(f"{body}const long {st.counter} = {idx};")
        for c in st.carries:
            b0, b1 = (self.base(b) for b in c.bufs)
            if st.parity:
                b0, b1 = b1, b0
            L.append(f"{body}{c.nxt.name} = " + (f"({it} & 1) ? {b1} : {b0};" if b0 != b1
                                                 else f"{b0};"))
        self.steps(st.body, body)
        for c in st.carries:
            L.append(f"{body}{c.cur.name} = {c.nxt.name};")
        L.append(f"{inner}}}")
        for c in st.carries:
            home = self.base(c.bufs[0])
            L.append(f"{inner}if ({c.cur.name} != {home}) memcpy({home}, {c.cur.name}, "
                     f"{c.init.nbytes});")
        L.append(f"{ind}}}")

    def switch(self, st: Switch, ind: str) -> None:
        L = self.lines
        n = len(st.branches)
        ctype = C_TYPES[np.dtype(st.index.dtype)]
        L.append(f"{ind}{{  /* cond: {n} branches */")
        L.append(f"{ind}  long sw = (long)*(const {ctype} *)({self.ref(st.index)});")
        L.append(f"{ind}  sw = sw < 0 ? 0 : (sw > {n - 1} ? {n - 1} : sw);")
        L.append(f"{ind}  switch (sw) {{")
        for i, br in enumerate(st.branches):
            L.append(f"{ind}  case {i}: {{")
            self.steps(br, ind + "    ")
            L.append(f"{ind}    break; }}")
        L.append(f"{ind}  }}")
        L.append(f"{ind}}}")
