"""Matmul-shaped reductions (kernels with a :class:`~tinyjax.compiler.kernel.GemmPlan`) as C
on the CPU -- the counterpart of :mod:`tinyjax.compiler.codegen.cuda_gemm`.

The decisions (strategy, threads, how each operand's panels are filled) are made by
:func:`tinyjax.compiler.codegen.gemm.cpu_gemm` and attached to the kernel
(``kernel.gemm_loops``).  What every product shares -- the loops over panels and tiles, the
threads, the register-blocked micro-kernel -- is compiled once, in the support library's
driver (:mod:`tinyjax.backends.c.support`); a product kernel is what is its own: a function
filling one zero-padded panel of each operand (``a``: TJ_MR rows, ``b``: TJ_NR columns, the
K values of a range of the first reduce axis each, any strides, any fused producer computed
while packing), one applying the kernel's body (the epilogue) to a finished tile, and the
kernel itself, which hands them and its plan to the driver.  An operand that is a strided
view and a result stored as it is (``kernel.gemm_loops.views``) get no function: the plan
carries their strides and the driver fills and stores them itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinyjax.compiler.kernel import Kernel, UOp
from tinyjax.compiler.shape.symbolic import Var

if TYPE_CHECKING:
    from tinyjax.backends.cstyle import CStyleLanguage

__all__ = ["render_gemm"]


PACK_BLOCK = 32  # values per row of a panel computed at a time (codegen.gemm.PACK_BLOCK)
# the rows of a panel in the prelude's two configurations (AVX-512, else AVX2)
PANEL_ROWS = {"TJ_MR": (8, 6), "TJ_NR": (32, 16), "TJ_NRD": (16, 8)}


STRATEGIES = {"grouped": "TJ_GROUPED", "fused": "TJ_FUSED", "splitk": "TJ_SPLITK"}
PACK_MODES = {"rows": "TJ_PACK_ROWS", "blocked": "TJ_PACK_BLOCKED", "k": "TJ_PACK_K"}


def render_gemm(lang: CStyleLanguage, k: Kernel) -> list[str]:
    """The C of product ``k`` as its decisions ``k.gemm_loops`` say (see
    :mod:`tinyjax.compiler.codegen.gemm`): its packing and epilogue functions and the
    kernel function ``k.name`` calling the support library's driver with them."""
    g, full, plan = k.gemm, k.full_shape, k.gemm_loops
    if plan is None:
        raise ValueError(f"cpu: product {k.name} has no decisions (compiler.codegen."
                         "attach_loop_ir gives it them)")
    a_uops, a_root, b_uops, b_root = g.a_uops, g.a_root, g.b_uops, g.b_root
    if plan.swapped:  # the operands change sides (a thin product's short side as rows)
        a_uops, a_root, b_uops, b_root = b_uops, b_root, a_uops, a_root
    dbl = np.dtype(k.acc_dtype) == np.float64
    nr = "TJ_NRD" if dbl else "TJ_NR"
    M = int(np.prod([full[a] for a in plan.m_axes]))
    N = int(np.prod([full[a] for a in plan.n_axes]))
    K = int(np.prod([full[a] for a in k.reduce_axes]))
    S0 = full[k.reduce_axes[0]]
    outer = int(np.prod([full[a] for a in g.outer_axes]))
    spell = _Spelling(lang, k, dbl)
    L = lang.kernel_comment(k)
    view_a, view_b, view_c = plan.views
    fns = [f"{k.name}_pa", f"{k.name}_pb", f"{k.name}_epi"]
    if view_a is None:
        L += spell.pack(fns[0], M, "TJ_MR", plan.m_axes, a_uops, a_root, "a", plan.pack_a,
                        plan.strategy == "splitk")
    if view_b is None:
        L += spell.pack(fns[1], N, nr, plan.n_axes, b_uops, b_root, "b", plan.pack_b,
                        plan.strategy == "splitk")
    if view_c is None:
        L += spell.epilogue(fns[2], M, N, nr, plan.m_axes, plan.n_axes)
    fields = [f"{M}, {N}, {K}, {S0}, {outer}, {plan.steps}, {plan.chunks}, "
              f"{STRATEGIES[plan.strategy]}, {int(plan.threads)}, "
              f"{int(plan.batched and plan.threads)}"]
    for name, view, how in (("a", view_a, plan.pack_a), ("b", view_b, plan.pack_b),
                            ("c", view_c, "rows")):
        if view is not None:
            fields.append(f".{name} = {_view_init(view, how)}")
    L.append(f"void {k.name}(void **restrict bufs) {{")
    L.append(f"  static const tj_gemm_plan plan = {{{', '.join(fields)}}};")
    driver = "tj_gemm_provider_d" if dbl else "tj_gemm_provider"
    fns = ["0" if view is not None else fn for fn, view in zip(fns, plan.views)]
    L.append(f"  {driver}(&plan, bufs, {', '.join(fns)});")
    L.append("}")
    return L


def _view_init(view, how: str) -> str:
    """The C initializer of a ``tj_view`` (see the prelude) filled the way ``how`` says, for
    ``view`` a :class:`~tinyjax.compiler.codegen.gemm.StridedView`."""
    ext = ", ".join(str(e) for e, _ in view.outer) or "0"
    stride = ", ".join(str(s) for _, s in view.outer) or "0"
    return (f"{{{view.offset}, {view.row_stride}, {view.col_stride}, {{{ext}}}, {{{stride}}}, "
            f"{view.slot}, {len(view.outer)}, {PACK_MODES[how]}}}")


class _Spelling:
    """The functions of one product kernel ``k`` (see :func:`render_gemm`)."""

    def __init__(self, lang: CStyleLanguage, k: Kernel, dbl: bool):
        self.lang, self.k, self.full, self.it = lang, k, k.full_shape, lang.index_type
        self.T, self.zero = ("double", "0.0") if dbl else ("float", "0.0f")

    def signature(self, name: str, params: str) -> list[str]:
        """A static function of the kernel: its signature, its buffers' pointers and the
        outer (batch) axes' indices of product ``ob``."""
        k, lang = self.k, self.lang
        L = [f"static void {name}(const tj_gemm_plan *plan, void **restrict bufs, {self.it} ob, "
             f"{params}) {{", "  (void)plan;"]
        for slot, (dt, _) in enumerate(k.bufs):
            q = "" if slot < k.n_outs else "const "
            L.append(f"  {q}{lang.storage(dt)} *restrict data{slot} = "
                     f"({q}{lang.storage(dt)} *)bufs[{slot}];")
        if k.gemm.outer_axes:
            L.extend(lang._unravel("ob", k.gemm.outer_axes, self.full, "  "))
        else:
            L.append("  (void)ob;")
        return L

    def pack(self, name: str, rows: int, R: str, axes: tuple, uops, root: int, prefix: str,
             how: str, chunked: bool) -> list[str]:
        """The function filling panel ``pb`` (rows ``pb*R ..``, zero past ``rows``) of one
        operand at ``out``; with ``chunked`` (split-K), over the first reduce axis' values
        ``lo .. hi`` only."""
        T, it = self.T, self.it
        L = self.signature(name, f"{it} pb, {it} lo, {it} hi, void *out")
        L.append(f"  {T} *restrict dst = ({T} *)out;")
        if chunked:
            kin = int(np.prod([self.full[a] for a in self.k.reduce_axes[1:]]))
            L.append(f"  const {it} KB = (hi - lo) * {kin};")
            self.panel(L, rows, R, axes, uops, root, prefix, how, "KB", ("lo", "hi"))
        else:
            L.append("  (void)lo; (void)hi;")
            K = int(np.prod([self.full[a] for a in self.k.reduce_axes]))
            self.panel(L, rows, R, axes, uops, root, prefix, how, str(K), None)
        L.append("}")
        return L

    def panel(self, L, rows, R, axes, uops, root, prefix, how, kname, first) -> None:
        """The statements filling the panel (``how``: ``rows``, ``blocked`` or ``k``, see
        :mod:`tinyjax.compiler.codegen.gemm`)."""
        k, full, lang, it, T, zero = self.k, self.full, self.lang, self.it, self.T, self.zero
        pi = "  "
        body, _ = lang.render_body(k.rbody, prefix, None, k.bufs, "", only=uops,
                                   branchless=True)
        red_open, rind = [], ""
        for j, a in enumerate(k.reduce_axes):
            lo, hi = first if j == 0 and first is not None else (0, full[a])
            red_open.append(f"{rind}for ({it} i{a} = {lo}; i{a} < {hi}; i{a}++) {{")
            rind += "  "
        red_close = [rind[:-2 * (j + 1)] + "}" for j in range(len(k.reduce_axes))]
        if how == "rows":
            # rows innermost: reads and writes both run along the unit-stride axis.  The
            # full-panel nest has no bounds check, so its row loop vectorises; a nest only
            # where some panel can be so (for both register tiles, PANEL_ROWS)
            sizes = PANEL_ROWS.get(R, (1,))
            variants = [(True, rows >= min(sizes)),
                        (False, any(rows % n for n in sizes))]
            variants = [full_panel for full_panel, needed in variants if needed]
            inner = full[axes[-1]]

            def nest(full_panel: bool, within: bool) -> None:
                L.append(f"{pi}  {it} q = 0;")
                L.extend(pi + "  " + x for x in red_open)
                bi = pi + "  " + rind
                # a full panel within one run of the innermost row axis (its length a
                # multiple of the panel's rows): the other axes are the panel's, hoisted
                # out of the row loop, which then reads consecutive elements
                lines = body
                if within:
                    L.extend(lang._unravel(f"(pb * {R} / {inner})", axes[:-1], full, bi))
                    L.append(f"{bi}const {it} r0 = pb * {R} % {inner};")
                    lines = self.inner_loop_body(uops, prefix, f"i{axes[-1]}", L, bi)
                    L.append(f"{bi}#pragma omp simd")  # (else unrolled, then left scalar)
                L.append(f"{bi}for ({it} r = 0; r < {R}; r++) {{")
                if not within:
                    L.append(f"{bi}  {it} p = pb * {R} + r;")
                bj = bi + "  "
                if not full_panel:
                    L.append(f"{bj}if (p >= {rows}) {{ dst[q * {R} + r] = {zero}; continue; }}")
                if within:
                    L.append(f"{bj}{it} i{axes[-1]} = r0 + r;")
                else:
                    L.extend(lang._unravel("p", axes, full, bj))
                L.extend(bj + x for x in lines)
                L.append(f"{bj}dst[q * {R} + r] = {prefix}{root};")
                L.append(f"{bi}}}")
                L.append(f"{bi}q++;")
                L.extend(pi + "  " + x for x in red_close)

            for full_panel in variants:
                if len(variants) == 1:
                    L.append(f"{pi}{{")
                elif full_panel:  # (the first test folds where the tile divides rows)
                    L.append(f"{pi}if ({rows} % {R} == 0 || pb * {R} + {R} <= {rows}) {{")
                else:
                    L.append(f"{pi}else {{")
                withins = [full_panel and inner % n == 0 for n in sizes]
                if len(set(withins)) == 1:
                    nest(full_panel, withins[0])
                else:  # the register tiles differ: each its own (the other never compiled)
                    for j, within in enumerate(withins):
                        L.append("#if TJ_VW == 16" if j == 0 else "#else")
                        nest(full_panel, within)
                    L.append("#endif")
                L.append(f"{pi}}}")
            return
        if how == "blocked":
            # the last reduce axis along the reads (a row-major activation, a conv window's
            # channels): blocks of KB values per row (for each value of the other reduce
            # axes) are computed with vector loads into a small tile, which is then written
            # out transposed (both loops vectorise; element by element the panel's stores
            # would stride by R)
            a, KB = k.reduce_axes[-1], PACK_BLOCK
            outer = len(k.reduce_axes) - 1
            klo, khi = first if first is not None and not outer else (0, full[a])
            L.append(f"{pi}{it} qb = 0;")
            L.extend(pi + x for x in red_open[:outer])
            bi = pi + "  " * outer
            L.append(f"{bi}for ({it} q0 = {klo}; q0 < {khi}; q0 += {KB}) {{")
            L.append(f"{bi}  const int kb = {khi} - q0 < {KB} ? (int)({khi} - q0) : {KB};")
            L.append(f"{bi}  {T} blk[{R}][{KB}] __attribute__((aligned(64)));")
            L.append(f"{bi}  for (int r = 0; r < {R}; r++) {{")
            L.append(f"{bi}    {it} p = pb * {R} + r;")
            L.append(f"{bi}    if (p >= {rows}) {{ for (int j = 0; j < kb; j++) blk[r][j] = {zero};"
                     " continue; }")
            L.extend(lang._unravel("p", axes, full, bi + "    "))
            lines = self.inner_loop_body(uops, prefix, f"i{a}", L, bi + "    ")
            L.append(f"{bi}    #pragma omp simd")
            L.append(f"{bi}    for ({it} j = 0; j < kb; j++) {{")
            L.append(f"{bi}      {it} i{a} = q0 + j;")
            L.extend(bi + "      " + x for x in lines)
            L.append(f"{bi}      blk[r][j] = {prefix}{root};")
            L.append(f"{bi}    }}")
            L.append(f"{bi}  }}")
            L.append(f"{bi}  for (int j = 0; j < kb; j++)")
            L.append(f"{bi}    for (int r = 0; r < {R}; r++) "
                     f"dst[(qb + q0 - {klo} + j) * {R} + r] = blk[r][j];")
            L.append(f"{bi}}}")
            L.append(f"{bi}qb += {khi} - {klo};")
            L.extend(pi + x for x in red_close[len(red_close) - outer:])
            return
        # reduce axes innermost (a conv's windows: channels run with unit stride)
        L.append(f"{pi}for (int r = 0; r < {R}; r++) {{")
        L.append(f"{pi}  {it} p = pb * {R} + r;")
        L.append(f"{pi}  if (p >= {rows}) {{ for ({it} q = 0; q < {kname}; q++) dst[q * {R} + r] = {zero};"
                 " continue; }")
        L.extend(lang._unravel("p", axes, full, pi + "  "))
        L.append(f"{pi}  {it} q = 0;")
        L.extend(pi + "  " + x for x in red_open)
        L.extend(pi + "  " + rind + x for x in body)
        L.append(f"{pi}  {rind}dst[q++ * {R} + r] = {prefix}{root};")
        L.extend(pi + "  " + x for x in red_close)
        L.append(f"{pi}}}")

    def inner_loop_body(self, uops, prefix: str, row: str, L: list, ind: str) -> list[str]:
        """The body of a packing loop over consecutive elements (variable ``row``): the
        tests of its masked loads and the indices that do not move along it (a conv
        window's padding) computed before the loop, into ``L``, and the loads reading them,
        so that the loop vectorises (as selects: no branch left in it)."""
        rbody, inside = list(self.k.rbody), set(uops)
        for i in sorted(uops):
            u = rbody[i]
            if u.op == "INDEX" and row not in {v.name for v in u.arg.vars()}:
                L.append(f"{ind}const {self.lang.type(u.dtype)} {prefix}{i} = "
                         f"({self.lang.type(u.dtype)})({self.lang.index(u.arg)});")
                inside.discard(i)
                continue
            if u.op != "LOAD" or not isinstance(u.arg[0], int):
                continue
            slot, idx, valid = u.arg
            if valid.vmin > 0 or row in {v.name for v in valid.vars()}:
                continue
            mask = Var(f"{prefix}mask{i}", 0, 1)
            L.append(f"{ind}const int {mask.name} = {self.lang.index(valid)};")
            rbody[i] = UOp(u.op, u.dtype, u.srcs, (slot, idx, mask))
        lines, _ = self.lang.render_body(rbody, prefix, None, self.k.bufs, "", only=inside,
                                         branchless=True)
        return lines

    def epilogue(self, name: str, M: int, N: int, NR: str, m_axes, n_axes) -> list[str]:
        """The function applying the kernel's body to finished tile ``ip, jp``."""
        k, full, lang, it, T = self.k, self.full, self.lang, self.it, self.T
        L = self.signature(name, f"{it} ip, {it} jp, const void *t")
        L.append(f"  const {T} *restrict tile = (const {T} *)t;")
        # (index variables all of one width: with an int column loop GCC 12 leaves a loop
        # of data-dependent selects -- a ReLU's gradient -- scalar, and it mispredicts)
        L.append(f"  const {it} rmax = {M} - ip * TJ_MR < TJ_MR ? {M} - ip * TJ_MR : TJ_MR;")
        L.append(f"  const {it} cmax = {N} - jp * {NR} < {NR} ? {N} - jp * {NR} : {NR};")
        L.append(f"  for ({it} r = 0; r < rmax; r++) {{")
        L.append(f"    {it} mrow = ip * TJ_MR + r;")
        L.extend(lang._unravel("mrow", m_axes, full, "    "))
        L.append(f"    for ({it} c = 0; c < cmax; c++) {{")
        L.append(f"      {it} ncol = jp * {NR} + c;")
        L.extend(lang._unravel("ncol", n_axes, full, "      "))
        L.append(f"      {T} accv = tile[r * {NR} + c];")
        body, _ = lang.render_body(k.body, "v", "accv", k.bufs, "      ")
        L.extend(body)
        L.append("    }")
        L.append("  }")
        L.append("}")
        return L
