"""Matmul-shaped reductions (kernels with a :class:`~tinyjax.compiler.kernel.GemmPlan`) as C
loop nests on the CPU -- the counterpart of :mod:`tinyjax.compiler.codegen.cuda_gemm`.

The decisions (strategy, threads, how each operand's panels are filled) are made by
:func:`tinyjax.compiler.codegen.gemm.cpu_gemm` and attached to the kernel
(``kernel.gemm_loops``); this module spells them: both operands packed into zero-padded
panels (``a``: TJ_MR rows, ``b``: TJ_NR columns, K values each, any strides, any fused
producer computed while packing), then every TJ_MR x TJ_NR tile runs the prelude's
register-blocked micro-kernel (``tj_micro``) over all of K and the kernel's body (the
epilogue) on the finished tile.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinyjax.compiler.kernel import Kernel

if TYPE_CHECKING:
    from tinyjax.backends.cstyle import CStyleLanguage

__all__ = ["render_gemm"]


PACK_BLOCK = 32  # values per row of a panel computed at a time (codegen.gemm.PACK_BLOCK)
# the rows of a panel in the prelude's two configurations (AVX-512, else AVX2)
PANEL_ROWS = {"TJ_MR": (8, 6), "TJ_NR": (32, 16), "TJ_NRD": (16, 8)}


def render_gemm(lang: CStyleLanguage, k: Kernel) -> list[str]:
    """The product ``k`` as its decisions ``k.gemm_loops`` say (see
    :mod:`tinyjax.compiler.codegen.gemm`): outer (batch) axes loop around, the tiles spread
    over the threads -- or with ``batched``, whole products are; without ``threads``, no
    parallel region."""
    g, full, it, plan = k.gemm, k.full_shape, lang.index_type, k.gemm_loops
    SCHED = lang.omp_schedule
    if plan is None:
        raise ValueError(f"cpu: product {k.name} has no decisions (compiler.codegen."
                         "attach_loop_ir gives it them)")
    m_axes, n_axes = plan.m_axes, plan.n_axes
    a_uops, a_root, b_uops, b_root = g.a_uops, g.a_root, g.b_uops, g.b_root
    if plan.swapped:  # the operands change sides (a thin product's short side as rows)
        a_uops, a_root, b_uops, b_root = b_uops, b_root, a_uops, a_root
    dbl = np.dtype(k.acc_dtype) == np.float64
    T, NR, micro, zero = (("double", "TJ_NRD", "tj_micro_d", "0.0") if dbl else
                          ("float", "TJ_NR", "tj_micro", "0.0f"))
    words = 2 if dbl else 1  # the scratch buffers count floats
    M = int(np.prod([full[a] for a in m_axes]))
    N = int(np.prod([full[a] for a in n_axes]))
    K = int(np.prod([full[a] for a in k.reduce_axes]))
    L = [f"  const {it} M = {M}, N = {N}, K = {K};",
         f"  const {it} MP = (M + TJ_MR - 1) / TJ_MR, NP = (N + {NR} - 1) / {NR};"]
    fused, splitk = plan.strategy == "fused", plan.strategy == "splitk"
    S0 = full[k.reduce_axes[0]]
    kin = K // S0
    steps, nkc = plan.steps, plan.chunks
    outer = int(np.prod([full[a] for a in g.outer_axes]))
    threads = plan.threads
    batched = plan.batched and threads
    scratch = []  # the packing buffers (thread-local: see tj_scratch)
    if splitk:
        L.append(f"  {T} *Cs = ({T} *)tj_scratch(3, MP * TJ_MR * NP * {NR} * {words});")
        # each thread's copy of the result, summed in thread order (not in the order the
        # threads finish): the same bits every run
        L.extend(["#ifdef _OPENMP", "  int omp_get_max_threads(void), omp_get_thread_num(void),"
                  " omp_get_num_threads(void);", "  const int tj_nt = omp_get_max_threads();",
                  "#else", "  const int tj_nt = 1;", "#endif", f"  {T} *tj_copies[tj_nt];"])
    elif fused:
        scratch.append(f"{T} *Bp = ({T} *)tj_scratch(1, NP * {NR} * K * {words});")
    if not fused and not splitk:
        scratch.append(f"{T} *Ap = ({T} *)tj_scratch(0, MP * TJ_MR * K * {words});")
    ind, opened = "  ", []  # opened: the indentation of each brace to close at the end
    if batched:
        L.append(f"{ind}#pragma omp parallel")
        L.append(f"{ind}{{")
        opened.append(ind)
        ind += "  "
        L.extend(ind + x for x in scratch)
        L.append(f"{ind}#pragma omp for schedule(dynamic)")
        L.append(f"{ind}for ({it} ob = 0; ob < {outer}; ob++) {{")
        opened.append(ind)
        ind += "  "
        L.extend(lang._unravel("ob", g.outer_axes, full, ind))
    else:
        L.extend(ind + x for x in scratch)
        for a in g.outer_axes:
            L.append(f"{ind}for ({it} i{a} = 0; i{a} < {full[a]}; i{a}++) {{")
            opened.append(ind)
            ind += "  "
        if threads:
            L.append(f"{ind}#pragma omp parallel")
    L.append(f"{ind}{{")

    def omp_for(schedule: str, at: str) -> None:
        """Spread the loop that follows over the threads, unless whole products are."""
        if threads and not batched:
            L.append(f"{at}#pragma omp for {schedule}")

    def panel(dst, rows, R, axes, uops, root, prefix, pi, kname="K", first=None):
        """Fill panel ``pb`` (rows ``pb*R ..``, zero past ``rows``) at ``dst``; ``first``:
        a (lo, hi) range of the first reduce axis (a K chunk of ``kname`` elements)."""
        body, _ = lang.render_body(k.rbody, prefix, None, k.bufs, "", only=uops,
                                   branchless=True)
        red_open, rind = [], ""
        for j, a in enumerate(k.reduce_axes):
            lo, hi = first if j == 0 and first is not None else (0, full[a])
            red_open.append(f"{rind}for ({it} i{a} = {lo}; i{a} < {hi}; i{a}++) {{")
            rind += "  "
        red_close = [rind[:-2 * (j + 1)] + "}" for j in range(len(k.reduce_axes))]
        how = plan.pack_a if prefix == "a" else plan.pack_b
        if how == "rows":
            # rows innermost: reads and writes both run along the unit-stride axis
            for full_panel in (True, False):
                # the full-panel nest has no bounds check, so its row loop vectorises
                cond = f"pb * {R} + {R} <= {rows}"
                L.append(f"{pi}if ({cond}) {{" if full_panel else f"{pi}else {{")
                L.append(f"{pi}  {it} q = 0;")
                L.extend(pi + "  " + x for x in red_open)
                bi = pi + "  " + rind
                # a full panel within one run of the innermost row axis (its length a
                # multiple of the panel's rows): the other axes are the panel's, hoisted
                # out of the row loop, which then reads consecutive elements
                inner = full[axes[-1]]
                within = full_panel and all(inner % n == 0 for n in PANEL_ROWS.get(R, (0,)))
                if within:
                    L.extend(lang._unravel(f"(pb * {R} / {inner})", axes[:-1], full, bi))
                    L.append(f"{bi}const {it} r0 = pb * {R} % {inner};")
                L.append(f"{bi}for (int r = 0; r < {R}; r++) {{")
                if not within:
                    L.append(f"{bi}  {it} p = pb * {R} + r;")
                bj = bi + "  "
                if not full_panel:
                    L.append(f"{bj}if (p >= {rows}) {{ {dst}[q * {R} + r] = {zero}; continue; }}")
                if within:
                    L.append(f"{bj}{it} i{axes[-1]} = r0 + r;")
                else:
                    L.extend(lang._unravel("p", axes, full, bj))
                L.extend(bj + x for x in body)
                L.append(f"{bj}{dst}[q * {R} + r] = {prefix}{root};")
                L.append(f"{bi}}}")
                L.append(f"{bi}q++;")
                L.extend(pi + "  " + x for x in red_close)
                L.append(f"{pi}}}")
            return
        if how == "blocked":
            # one reduce axis along the reads (a row-major activation): blocks of KB
            # values per row are computed with vector loads into a small tile, which is
            # then written out transposed (both loops vectorise; element by element the
            # panel's stores would stride by R)
            a, KB = k.reduce_axes[0], PACK_BLOCK
            L.append(f"{pi}for ({it} q0 = 0; q0 < {kname}; q0 += {KB}) {{")
            L.append(f"{pi}  const int kb = {kname} - q0 < {KB} ? (int)({kname} - q0) : {KB};")
            L.append(f"{pi}  {T} blk[{R}][{KB}] __attribute__((aligned(64)));")
            L.append(f"{pi}  for (int r = 0; r < {R}; r++) {{")
            L.append(f"{pi}    {it} p = pb * {R} + r;")
            L.append(f"{pi}    if (p >= {rows}) {{ for (int j = 0; j < kb; j++) blk[r][j] = {zero};"
                     " continue; }")
            L.extend(lang._unravel("p", axes, full, pi + "    "))
            L.append(f"{pi}    for (int j = 0; j < kb; j++) {{")
            L.append(f"{pi}      {it} i{a} = q0 + j;")
            L.extend(pi + "      " + x for x in body)
            L.append(f"{pi}      blk[r][j] = {prefix}{root};")
            L.append(f"{pi}    }}")
            L.append(f"{pi}  }}")
            L.append(f"{pi}  for (int j = 0; j < kb; j++)")
            L.append(f"{pi}    for (int r = 0; r < {R}; r++) {dst}[(q0 + j) * {R} + r] = blk[r][j];")
            L.append(f"{pi}}}")
            return
        # reduce axes innermost (a conv's windows: channels run with unit stride)
        L.append(f"{pi}for (int r = 0; r < {R}; r++) {{")
        L.append(f"{pi}  {it} p = pb * {R} + r;")
        L.append(f"{pi}  if (p >= {rows}) {{ for ({it} q = 0; q < {kname}; q++) {dst}[q * {R} + r] = {zero};"
                 " continue; }")
        L.extend(lang._unravel("p", axes, full, pi + "  "))
        L.append(f"{pi}  {it} q = 0;")
        L.extend(pi + "  " + x for x in red_open)
        L.extend(pi + "  " + rind + x for x in body)
        L.append(f"{pi}  {rind}{dst}[q++ * {R} + r] = {prefix}{root};")
        L.extend(pi + "  " + x for x in red_close)
        L.append(f"{pi}}}")

    def pack(dst, rows, R, axes, uops, root, prefix):
        omp_for(f"schedule({SCHED})", ind + "  ")
        L.append(f"{ind}  for ({it} pb = 0; pb < {rows}P; pb++) {{")
        L.append(f"{ind}    {T} *restrict dst = {dst} + pb * {R} * K;")
        panel("dst", rows, R, axes, uops, root, prefix, ind + "    ")
        L.append(f"{ind}  }}")

    def epilogue(ind):
        L.append(f"{ind}    const int rmax = M - ip * TJ_MR < TJ_MR ? (int)(M - ip * TJ_MR) : TJ_MR;")
        L.append(f"{ind}    const int cmax = N - jp * {NR} < {NR} ? (int)(N - jp * {NR}) : {NR};")
        L.append(f"{ind}    for (int r = 0; r < rmax; r++) {{")
        L.append(f"{ind}      {it} mrow = ip * TJ_MR + r;")
        L.extend(lang._unravel("mrow", m_axes, full, ind + "      "))
        L.append(f"{ind}      for (int c = 0; c < cmax; c++) {{")
        L.append(f"{ind}        {it} ncol = jp * {NR} + c;")
        L.extend(lang._unravel("ncol", n_axes, full, ind + "        "))
        L.append(f"{ind}        {T} accv = tile[r * {NR} + c];")
        body, _ = lang.render_body(k.body, "v", "accv", k.bufs, ind + "        ")
        L.extend(body)
        L.append(f"{ind}      }}")
        L.append(f"{ind}    }}")

    def multiply(a_panel: str, b_panel: str) -> None:
        """One tile (rows ``ip``, columns ``jp``): the micro-kernel over all of K, the
        epilogue, and the end of the tile loop's body."""
        L.append(f"{ind}    {T} tile[TJ_MR * {NR}] __attribute__((aligned(64)));")
        L.append(f"{ind}    {micro}(K, {a_panel}, {b_panel}, tile);")
        epilogue(ind)
        L.append(f"{ind}    }}")

    def finish() -> list[str]:
        """Close the loop over tiles, the parallel region and whatever was opened around it."""
        L.append(f"{ind}  }}")
        L.append(f"{ind}}}")
        L.extend(o + "}" for o in reversed(opened))
        return L

    if splitk:
        CW = f"NP * {NR}"
        L.append(f"{ind}  {T} *Cl = ({T} *)tj_scratch(2, MP * TJ_MR * {CW} * {words});")
        L.append(f"{ind}  memset(Cl, 0, MP * TJ_MR * {CW} * sizeof({T}));")
        L.append(f"{ind}  {T} *Ap = ({T} *)tj_scratch(0, MP * TJ_MR * {steps * kin} * {words});")
        L.append(f"{ind}  {T} *Bp = ({T} *)tj_scratch(1, NP * {NR} * {steps * kin} * {words});")
        L.append(f"{ind}  #pragma omp for schedule(static)")
        L.append(f"{ind}  for ({it} kc = 0; kc < {nkc}; kc++) {{")
        L.append(f"{ind}    const {it} lo = kc * {steps}, hi = lo + {steps} < {S0} ? lo + {steps} : {S0};")
        L.append(f"{ind}    const {it} KB = (hi - lo) * {kin};")
        for dst, rows, R, axes, uops, root, prefix in (
                ("Ap", "M", "TJ_MR", m_axes, a_uops, a_root, "a"),
                ("Bp", "N", NR, n_axes, b_uops, b_root, "b")):
            L.append(f"{ind}    for ({it} pb = 0; pb < {rows}P; pb++) {{")
            L.append(f"{ind}      {T} *restrict dst = {dst} + pb * {R} * KB;")
            panel("dst", rows, R, axes, uops, root, prefix, ind + "      ", "KB", ("lo", "hi"))
            L.append(f"{ind}    }}")
        L.append(f"{ind}    for ({it} jp = 0; jp < NP; jp++)")
        L.append(f"{ind}    for ({it} ip = 0; ip < MP; ip++) {{")
        L.append(f"{ind}      {T} tile[TJ_MR * {NR}] __attribute__((aligned(64)));")
        L.append(f"{ind}      {micro}(KB, Ap + ip * TJ_MR * KB, Bp + jp * {NR} * KB, tile);")
        L.append(f"{ind}      for (int r = 0; r < TJ_MR; r++) for (int c = 0; c < {NR}; c++)")
        L.append(f"{ind}        Cl[(ip * TJ_MR + r) * {CW} + jp * {NR} + c] += tile[r * {NR} + c];")
        L.append(f"{ind}    }}")
        L.append(f"{ind}  }}")
        L.extend(["#ifdef _OPENMP", f"{ind}  const int tj_t = omp_get_thread_num(), "
                  "tj_n = omp_get_num_threads();", "#else",
                  f"{ind}  const int tj_t = 0, tj_n = 1;", "#endif"])
        L.append(f"{ind}  tj_copies[tj_t] = Cl;")
        L.append(f"{ind}  #pragma omp barrier")
        L.append(f"{ind}  #pragma omp for schedule(static)")
        L.append(f"{ind}  for ({it} q = 0; q < MP * TJ_MR * {CW}; q++) {{")
        L.append(f"{ind}    {T} s = tj_copies[0][q];")
        L.append(f"{ind}    for (int t = 1; t < tj_n; t++) s += tj_copies[t][q];")
        L.append(f"{ind}    Cs[q] = s;")
        L.append(f"{ind}  }}")
        L.append(f"{ind}  #pragma omp for collapse(2) schedule({SCHED})")
        L.append(f"{ind}  for ({it} ip = 0; ip < MP; ip++)")
        L.append(f"{ind}  for ({it} jp = 0; jp < NP; jp++) {{")
        L.append(f"{ind}    {T} tile[TJ_MR * {NR}] __attribute__((aligned(64)));")
        L.append(f"{ind}    for (int r = 0; r < TJ_MR; r++) for (int c = 0; c < {NR}; c++)")
        L.append(f"{ind}      tile[r * {NR} + c] = Cs[(ip * TJ_MR + r) * {CW} + jp * {NR} + c];")
        epilogue(ind)
        return finish()
    if fused:
        pack("Bp", "N", NR, n_axes, b_uops, b_root, "b")
        L.append(f"{ind}  {T} Al[TJ_MR * K] __attribute__((aligned(64)));")
        omp_for(f"schedule({SCHED})", ind + "  ")
        L.append(f"{ind}  for ({it} ip = 0; ip < MP; ip++) {{")
        L.append(f"{ind}    {it} pb = ip;")
        panel("Al", "M", "TJ_MR", m_axes, a_uops, a_root, "a", ind + "    ")
        L.append(f"{ind}    for ({it} jp = 0; jp < NP; jp++) {{")
        multiply("Al", f"Bp + jp * {NR} * K")
        return finish()
    pack("Ap", "M", "TJ_MR", m_axes, a_uops, a_root, "a")
    # a group of B panels (about 256 KiB) is packed by the thread that multiplies every A
    # panel by it, into its own buffer: the group stays in its L2 and B is never written
    # out whole.  With fewer groups than twice the threads, the A panels are cut into IC
    # chunks too (each chunk's thread packs the group again: a small B is cheap to pack).
    L.append(f"{ind}  const {it} JB = 262144 / ({NR} * K * (long)sizeof({T})) > 0 ? "
             f"262144 / ({NR} * K * (long)sizeof({T})) : 1, NJB = (NP + JB - 1) / JB;")
    L.append(f"{ind}  const {it} IC = {1 if batched else 'tj_chunks(NJB, MP)'};")
    L.append(f"{ind}  {T} *Bl = ({T} *)tj_scratch(1, JB * {NR} * K * {words});")
    omp_for("collapse(2) schedule(dynamic)", ind + "  ")
    L.append(f"{ind}  for ({it} jb = 0; jb < NJB; jb++)")
    L.append(f"{ind}  for ({it} ic = 0; ic < IC; ic++) {{")
    L.append(f"{ind}    for ({it} pb = jb * JB; pb < (jb + 1) * JB && pb < NP; pb++) {{")
    L.append(f"{ind}      {T} *restrict dst = Bl + (pb - jb * JB) * {NR} * K;")
    panel("dst", "N", NR, n_axes, b_uops, b_root, "b", ind + "      ")
    L.append(f"{ind}    }}")
    L.append(f"{ind}    for ({it} ip = ic * MP / IC; ip < (ic + 1) * MP / IC; ip++)")
    L.append(f"{ind}    for ({it} jp = jb * JB; jp < (jb + 1) * JB && jp < NP; jp++) {{")
    multiply("Ap + ip * TJ_MR * K", f"Bl + (jp - jb * JB) * {NR} * K")
    return finish()
