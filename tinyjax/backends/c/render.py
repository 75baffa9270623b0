"""The C language: the shared C-like renderer (:mod:`tinyjax.backends.cstyle`) with the ops of
a CPU product's loop IR (:mod:`tinyjax.compiler.codegen.cpu_gemm_linearizer`): its functions
(``FUNCTION``), which the support library's product driver calls, and the call (``GEMM``)."""
from __future__ import annotations

import numpy as np

from tinyjax.backends.cstyle import CStyleLanguage, Walk

__all__ = ["CLanguage"]

STRATEGIES = {"grouped": "TJ_GROUPED", "fused": "TJ_FUSED", "splitk": "TJ_SPLITK"}
PACK_MODES = {"rows": "TJ_PACK_ROWS", "blocked": "TJ_PACK_BLOCKED", "k": "TJ_PACK_K",
              "none": "TJ_PACK_NONE"}


class CLanguage(CStyleLanguage):
    """C, as the ``cpu`` backend compiles it.

    The kernel-level interface a compiled program calls: ``render_kernel(k)`` is the C
    source of one function ``void <k.name>(void **restrict bufs)``, ``bufs[slot]`` pointing
    at the data of ``k.bufs[slot]`` (slots ``0 .. k.n_outs - 1`` written, the rest read),
    to be compiled after :data:`tinyjax.backends.prelude.PRELUDE`.  It renders the loop IR
    :func:`tinyjax.compiler.codegen.attach_loop_ir` attached (``k.loop_ir``); sorts need
    none."""

    def value_type(self, dt) -> str:
        """A boolean value is an ``int`` (what C's comparisons give), stored as a byte: gcc 12
        does not vectorise a loop converting a byte-wide comparison to float (``(float)(a
        == b)``, a maximum's gradient) among float values."""
        return "int" if dt == np.bool_ else self.type(dt)

    def fn(self, name: str, dt) -> str:
        """libm's function ``name`` of ``dt``; exp is the prelude's ``tj_exp``/``tj_expf``
        (fast where its result underflows)."""
        return super().fn("tj_exp" if name == "exp" else name, dt)

    def op_FUNCTION(self, w: Walk, i: int, u) -> str:
        """The kernel's function (no name), or one of its functions the product driver calls
        (``static``; the plan, the buffers and the product's index first)."""
        f, k = u.arg, w.k
        w.lines.extend(self.kernel_comment(k) if i == 0 else [])
        if not f.name:  # (a product's reads no buffer itself: the driver is handed them all)
            w.lines.append(f"void {k.name}(void **restrict bufs) {{")
            w.ind = "  "
            return k.name
        T = "void" if f.pointer == "out" else "const void"
        params = "".join(f", long {p}" for p in f.params)
        w.lines.append(f"static void {k.name}{f.name}(const tj_gemm_plan *plan, "
                       f"void **restrict bufs{params}, {T} *{f.pointer}) {{")
        w.lines.append("  " + " ".join(f"(void){p};" for p in ("plan",) + f.params))
        w.lines.extend(self.kernel_head(k)[len(self.kernel_comment(k)) + 1:])
        w.ind = "  "
        return k.name + f.name

    def op_GEMM(self, w: Walk, i: int, u) -> str:
        """The support library's driver of the element type, called with the product's plan
        (a ``tj_gemm_plan``, see the prelude) and the kernel's functions (0: the driver's
        own filling or store of a strided view)."""
        call, plan = u.arg, u.arg.plan
        fields = [f"{call.M}, {call.N}, {call.K}, {call.first}, {call.outer}, {plan.steps}, "
                  f"{plan.chunks}, {STRATEGIES[plan.strategy]}, {int(plan.threads)}, "
                  f"{int(plan.batched and plan.threads)}"]
        for name, view, how in zip("abc", plan.views, (plan.pack_a, plan.pack_b, "rows")):
            if view is not None:
                fields.append(f".{name} = {_view_init(view, how)}")
        driver = "tj_gemm_provider_d" if u.dtype == np.float64 else "tj_gemm_provider"
        fns = [f"{w.k.name}{fn}" if fn else "0" for fn in call.fns]
        w.lines.append(f"{w.ind}static const tj_gemm_plan plan = {{{', '.join(fields)}}};")
        w.lines.append(f"{w.ind}{driver}(&plan, bufs, {', '.join(fns)});")
        return ""


def _view_init(view, how: str) -> str:
    """The C initializer of a ``tj_view`` (see the prelude) filled the way ``how`` says, for
    ``view`` a :class:`~tinyjax.compiler.codegen.gemm.StridedView`."""
    ext = ", ".join(str(e) for e, _ in view.outer) or "0"
    stride = ", ".join(str(s) for _, s in view.outer) or "0"
    return (f"{{{view.offset}, {view.row_stride}, {view.col_stride}, {{{ext}}}, {{{stride}}}, "
            f"{view.slot}, {len(view.outer)}, {PACK_MODES[how]}}}")
