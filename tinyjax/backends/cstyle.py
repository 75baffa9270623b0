"""C-syntax rendering of the loop IR, shared by the C (CPU) and CUDA renderers.

:class:`CStyleLanguage` knows the C spelling of types, constants, ALU ops and casts;
:meth:`CStyleLanguage.render_uops` walks a kernel's loop IR
(:mod:`tinyjax.compiler.codegen.uops`) once, each op spelled by the method ``op_<OP>``
(``RANGE`` a ``for`` loop with the pragmas its marks ask for: ``parallel`` an OpenMP
``parallel for``, ``simd`` an ``omp simd`` reduction over the loop's accumulators; a
parallel loop carrying accumulators keeps each iteration's partial and combines them in
iteration order after it -- the same bits run to run, unlike an OpenMP ``reduction``);
``DEFINE_ACC``/``ACCUMULATE`` accumulators; loads, ALU ops and stores the kernel's SSA
bodies.  Every decision -- loop order, blocks, vector lanes, threads -- was taken by the
passes of :mod:`tinyjax.compiler.codegen` before the walk (a CPU product's loop IR is
its panel fills and epilogue as functions and a call of the support library's driver:
:mod:`tinyjax.compiler.codegen.cpu_gemm_linearizer`).  On the CPU, sorts (a per-row stable
merge sort of indices) and scatters (a copy, then a serial update loop in C order) still
have renderers of their own.

Transcendentals call libm; where glibc's libmvec is available they are declared ``simd`` so
vectorised loops call its vector variants (no ``-ffast-math``: NaN/inf semantics stay);
the C renderer spells ``exp`` as the prelude's ``tj_exp``, which keeps arguments whose
result is flushed to zero out of libmvec's scalar path (a masked softmax's ``exp(-1e9)``).
16-bit floats are stored as ``uint16_t`` and computed in float, rounded after every op as
eager evaluation does.  The CUDA renderer (:mod:`tinyjax.backends.cuda.render`) adds the
ops of GPU kernels and changes a few spellings.  The helpers every program starts with are
:data:`tinyjax.backends.prelude.PRELUDE`.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tinyjax.compiler.kernel import Kernel, UOp
from tinyjax.compiler.ops import ALU, reduce_identity
from tinyjax.compiler.shape.symbolic import RenderStyle, Var, render
from tinyjax.config import env_str

__all__ = ["CStyleLanguage", "Walk"]

# OpenMP loop schedule: chunks handed out on demand, so when another process preempts one
# of our threads the others take over its remaining work instead of idling at the barrier.
SCHED = env_str("TINYJAX_OMP_SCHEDULE")

C_TYPES = {
    np.dtype(np.bool_): "unsigned char", np.dtype(np.int8): "int8_t",
    np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
    np.dtype(np.int64): "int64_t", np.dtype(np.uint8): "uint8_t",
    np.dtype(np.uint16): "uint16_t", np.dtype(np.uint32): "uint32_t",
    np.dtype(np.uint64): "uint64_t", np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
}


def _half(dt) -> Optional[str]:
    """'f16' / 'bf16' for the 16-bit floats (stored as uint16_t, computed in float)."""
    dt = np.dtype(dt)
    if dt == np.float16:
        return "f16"
    return "bf16" if dt.name == "bfloat16" else None


def _is_float(dt) -> bool:
    return np.dtype(dt).kind == "f" or _half(dt) is not None


def _int_limits(dt):
    info = np.iinfo(dt)
    return info.min, info.max


class Walk:
    """The state of one walk over loop IR: the lines so far (``closing``: what ends them),
    each op's name (what later ops call its value), the indentation, the index type."""

    def __init__(self, lang, k: Kernel, uops, head: Optional[list[str]]):
        self.k, self.uops = k, uops
        self.lines: list[str] = list(head or [])
        self.closing: list[str] = ["}"] if head is not None else []
        self.names: list[str] = []
        self.ind = "  " if head is not None else ""
        self.index_type = lang.index_type
        self.branchless: list[bool] = []  # per open loop: whether its selects stay selects
        self.ranges: list[tuple] = []  # per open loop: (range, lo, hi, its ordered partials)
        self.n_acc = 0
        self.header_at = 0  # where the current function's header starts (module code goes before)


class CStyleLanguage:
    """C spellings; subclasses may change ``kernel_prefix``, ``buffer_prefix``, style."""

    omp_schedule = SCHED  # how OpenMP hands out loop iterations (TINYJAX_OMP_SCHEDULE)

    kernel_prefix = ""
    style: RenderStyle = RenderStyle("c")
    index_type = "long"

    # ---- atoms ---------------------------------------------------------------------------
    def type(self, dt) -> str:
        """The C type values of ``dt`` are computed in (16-bit floats: float)."""
        return "float" if _half(dt) else C_TYPES[np.dtype(dt)]

    def storage(self, dt) -> str:
        """The C type of a buffer element."""
        return "uint16_t" if _half(dt) else C_TYPES[np.dtype(dt)]

    def load(self, dt, ref: str) -> str:
        h = _half(dt)
        return f"tj_{h}_to_f32({ref})" if h else ref

    def store(self, dt, value: str) -> str:
        h = _half(dt)
        return f"tj_f32_to_{h}({value})" if h else value

    def const(self, value, dt) -> str:
        dt = np.dtype(dt)
        if dt == np.bool_:
            return "1" if value else "0"
        if _is_float(dt):
            v = float(value)
            if math.isnan(v):
                s = "NAN"
            elif math.isinf(v):
                s = "INFINITY" if v > 0 else "(-INFINITY)"
            else:
                s = repr(float(np.float32(v))) + "f" if self.type(dt) == "float" else repr(v)
                if "e" not in s and "." not in s and "inf" not in s:
                    s = s.replace("f", ".0f") if s.endswith("f") else s + ".0"
                return f"({s})" if s.startswith("-") else s
            return f"(({self.type(dt)}){s})"
        v = int(value)
        if dt == np.int64 and v == np.iinfo(np.int64).min:
            return "(-9223372036854775807LL-1)"
        suffix = "ULL" if dt.kind == "u" and dt.itemsize == 8 else ("LL" if dt.itemsize == 8 else "")
        s = f"{v}{suffix}"
        return f"(({self.type(dt)}){s})" if v < 0 or dt.itemsize < 4 else s

    def index(self, node) -> str:
        return render(node, self.style)

    # ---- ops -----------------------------------------------------------------------------
    def fn(self, name: str, dt) -> str:
        return name + ("f" if self.type(dt) == "float" else "")

    def clz(self, T: str, a: str, bits: int) -> str:
        """Leading zero bits of the ``bits``-wide integer ``a`` (``bits`` for zero)."""
        return (f"(({T})({a}==0?{bits}:__builtin_clzll((uint64_t)(uint{bits}_t){a})"
                f"-{64 - bits}))")

    def mulhi(self, T: str, a: str, b: str, xt: np.dtype) -> str:
        """The high half of the double-width product of ``a`` and ``b``."""
        bits = xt.itemsize * 8
        wide = ("__int128" if xt.kind == "i" else "unsigned __int128") if bits == 64 else \
            self.type(np.dtype(np.int64 if xt.kind == "i" else np.uint64))
        return f"(({T})((({wide}){a}*({wide}){b})>>{bits}))"

    def alu(self, op: str, dt, args: list[str], arg_dts: list) -> str:
        """C expression for an ALU op; ``dt`` the result dtype, ``arg_dts`` the operands'."""
        a = args[0]
        b = args[1] if len(args) > 1 else None
        xt = np.dtype(arg_dts[0])
        T = self.type(dt)
        spelling = ALU[op]
        if spelling.infix:
            return f"({a}{spelling.infix}{b})"
        if op == "where":
            return f"({a}?{b}:{args[2]})"
        if _is_float(xt) and spelling.libm:
            return f"{self.fn(spelling.libm, xt)}({', '.join(args)})"
        if op in ("floor", "ceil", "round_even", "round_away"):
            return a
        if op == "neg":
            return f"(({T})(-{a}))"
        if op == "sign":
            if _is_float(xt):
                return f"({a}!={a}?{a}:({T})(({a}>0)-({a}<0)))"
            return f"(({T})(({a}>0)-({a}<0)))"
        if op == "is_finite":
            return f"(isfinite({a})!=0)"
        if op == "logistic":
            one = self.const(1, xt)
            return f"({one}/({one}+{self.fn('exp', xt)}(-{a})))"
        if op == "rsqrt":
            return f"({self.const(1, xt)}/{self.fn('sqrt', xt)}({a}))"
        if op == "recip":
            return f"({self.const(1, xt)}/{a})"
        if op == "abs":
            if _is_float(xt):
                return f"{self.fn('fabs', xt)}({a})"
            return f"(({T})({a}<0?-{a}:{a}))"
        if op in ("digamma", "erf_inv"):
            return f"(({T})tj_{op}((double){a}))"
        if op == "polygamma":
            return f"(({T})tj_polygamma((double){a}, (double){b}))"
        if op == "not":
            return f"(!{a})" if xt == np.bool_ else f"(({T})(~{a}))"
        if op == "population_count":
            return f"(({T})__builtin_popcountll((uint64_t)(uint{xt.itemsize * 8}_t){a}))"
        if op == "clz":
            return self.clz(T, a, xt.itemsize * 8)
        if op == "mulhi":
            return self.mulhi(T, a, b, xt)
        if op == "max":
            if _is_float(xt):
                return f"((({a}>{b})|({a}!={a}))?{a}:{b})"  # "|": no branch, so it vectorises
            return f"({a}>{b}?{a}:{b})"
        if op == "min":
            if _is_float(xt):
                return f"((({a}<{b})|({a}!={a}))?{a}:{b})"
            return f"({a}<{b}?{a}:{b})"
        if op == "div":
            if _is_float(xt):
                return f"({a}/{b})"
            if xt.kind == "u":
                return f"({b}==0?({T}){_int_limits(xt)[1]}ULL:({T})({a}/{b}))"
            return f"({b}==0?({T})-1:({b}==-1?({T})(-{a}):({T})({a}/{b})))"
        if op == "rem":
            if _is_float(xt):
                return f"{self.fn('fmod', xt)}({a}, {b})"
            if xt.kind == "u":
                return f"({b}==0?{a}:({T})({a}%{b}))"
            return f"({b}==0?{a}:({b}==-1?({T})0:({T})({a}%{b})))"
        bits = xt.itemsize * 8
        ut, st = f"uint{bits}_t", f"int{bits}_t"
        if op == "shift_left":
            return f"((uint64_t){b}<{bits}?({T})(({ut}){a}<<{b}):({T})0)"
        if op == "shift_right_logical":
            return f"((uint64_t){b}<{bits}?({T})(({ut}){a}>>{b}):({T})0)"
        if op == "shift_right_arithmetic":
            return f"(({T})(({st}){a}>>({b}<0?0:({b}>{bits - 1}?{bits - 1}:{b}))))"
        raise NotImplementedError(f"no C rendering for ALU op '{op}' on {xt.name}")

    def cast(self, x: str, src, dst) -> str:
        src, dst = np.dtype(src), np.dtype(dst)
        T = self.type(dst)
        if _half(dst):
            return f"tj_round_{_half(dst)}((float){x})"
        if dst == np.bool_:
            return f"({x}!=0)"
        if _is_float(src) and dst.kind in "iu":
            lo, hi = _int_limits(dst)
            return (f"({x}!={x}?({T})0:((double){x}<={float(lo)!r}?({T}){self.const(lo, dst)}:"
                    f"((double){x}>={float(hi)!r}?({T}){self.const(hi, dst)}:({T}){x})))")
        return f"(({T}){x})"

    def bitcast(self, x: str, src, dst) -> str:
        """The bits of ``x`` (of ``src``) read as ``dst`` (the same size)."""
        return f"tj_bc_{np.dtype(src).name}_{np.dtype(dst).name}({x})"

    def combine(self, op: str, acc: str, v: str, dt) -> str:
        return {"sum": f"{acc}+{v}", "prod": f"{acc}*{v}", "and": f"{acc}&{v}",
                "or": f"{acc}|{v}", "xor": f"{acc}^{v}",
                "max": self.alu("max", dt, [acc, v], [dt, dt]),
                "min": self.alu("min", dt, [acc, v], [dt, dt])}[op]

    def identity(self, op: str, dt) -> str:
        return self.const(reduce_identity(op, dt), dt)

    # ---- bodies --------------------------------------------------------------------------
    def render_body(self, uops: list[UOp], prefix: str, acc: Optional[str], bufs,
                    indent: str, only=None, branchless: bool = False,
                    pacc: str = "pacc{}") -> tuple[list[str], str]:
        """SSA statements for ``uops`` (those in ``only`` if given); returns (lines, name of
        the last value).  ``branchless``: float selects (where, max, min, masked loads) as bit
        selects, for scalar loops that the compiler would otherwise fill with branches."""
        lines, names = [], []
        for i, u in enumerate(uops):
            name = f"{prefix}{i}"
            if only is not None and i not in only:
                names.append(name)  # declared by the caller, if referenced
            elif u.op == "ACC":
                names.append(acc if u.arg is None else pacc.format(u.arg))
            else:
                names.append(self.render_op(u, name, [names[s] for s in u.srcs],
                                            [uops[s].dtype for s in u.srcs], bufs, indent,
                                            lines, branchless))
        return lines, names[-1] if names else ""

    def render_op(self, u, name: str, args: list[str], arg_dts: list, bufs, indent: str,
                  lines: list[str], branchless: bool = False) -> str:
        """Append the statement of value or store op ``u`` (operands ``args`` of dtypes
        ``arg_dts``) to ``lines``; returns what later ops call its value (``name``, or a
        constant spelled inline)."""
        sel = {np.dtype(np.float32): "tj_sel_f", np.dtype(np.float64): "tj_sel_d"}.get(
            np.dtype(u.dtype)) if branchless and u.dtype is not None else None
        if u.op in ("LOAD", "STORE") and not isinstance(u.arg[0], int):  # a local array
            idx = u.arg[1] if isinstance(u.arg[1], tuple) else (u.arg[1],)
            ref = args[0] + "".join(f"[{self.expr(x)}]" for x in idx)
            if u.op == "STORE":
                val = self.store(arg_dts[0], args[1])
                if not (u.arg[2].vmin > 0):  # zero where not valid (a tile's padding)
                    val = f"{self.expr(u.arg[2])} ? {val} : ({self.storage(arg_dts[0])})0"
                lines.append(f"{indent}{ref} = {val};")
                return ""
            if u.arg[0].where == "register":  # registers: read where used
                return self.load(arg_dts[0], ref)
            lines.append(f"{indent}{self.type(u.dtype)} {name} = {self.load(arg_dts[0], ref)};")
            return name
        if u.op == "STORE":
            slot, idx, valid = u.arg
            val = self.store(bufs[slot][0], args[0])
            cond = "" if valid.vmin > 0 else f"if ({self.index(valid)}) "
            lines.append(f"{indent}{cond}data{slot}[{self.index(idx)}] = {val};")
            return ""
        if u.op == "CONST":
            return self.const(u.arg, u.dtype)
        if u.op == "LOAD":
            slot, idx, valid = u.arg
            ix = self.index(idx)
            if u.srcs:  # data-dependent offset
                ix = args[0] if ix == "0" else f"{ix}+{args[0]}"
            expr = self.load(bufs[slot][0], f"data{slot}[{ix}]")
            if not (valid.vmin > 0) and sel and not _half(bufs[slot][0]) and \
                    not isinstance(valid, Var):  # (a test made before the loop: predicted)
                # always load (at offset 0 when masked), then select
                lines.append(f"{indent}const int {name}c = {self.index(valid)};")
                expr = (f"{sel}({name}c, data{slot}[{name}c ? ({ix}) : 0], "
                        f"{self.const(0, u.dtype)})")
            elif not (valid.vmin > 0):
                expr = f"({self.index(valid)}?{expr}:{self.const(0, u.dtype)})"
        elif u.op == "INDEX":
            expr = f"(({self.type(u.dtype)})({self.index(u.arg)}))"
        elif u.op == "CAST":
            expr = self.cast(args[0], arg_dts[0], u.dtype)
        elif u.op == "BITCAST":
            expr = self.bitcast(args[0], arg_dts[0], u.dtype)
        elif u.op == "ALU" and sel and u.arg in ("where", "max", "min"):
            a, b, *c = args
            if u.arg == "where":
                expr = f"{sel}({a}, {b}, {c[0]})"
            else:
                cmp = ">" if u.arg == "max" else "<"
                expr = f"{sel}(({a}{cmp}{b})|({a}!={a}), {a}, {b})"
        elif u.op == "ALU":
            expr = self.alu(u.arg, u.dtype, args, arg_dts)
            if _half(u.dtype):  # round every op to 16 bits, as eager evaluation does
                expr = f"tj_round_{_half(u.dtype)}({expr})"
        else:
            raise NotImplementedError(f"unknown uop {u.op}")
        lines.append(f"{indent}{self.value_type(u.dtype)} {name} = {expr};")
        return name

    def value_type(self, dt) -> str:
        """The type of a named value of dtype ``dt`` (a buffer's elements are ``type(dt)``)."""
        return self.type(dt)

    # ---- the loop IR (one walk) --------------------------------------------------------------
    def render_uops(self, k: Kernel, uops, head: Optional[list[str]] = None) -> str:
        """The code of loop IR ``uops`` of kernel ``k``: one walk over the ops, each spelled by
        the method ``op_<OP>`` (the language's table), after the lines ``head``."""
        w = Walk(self, k, uops, head)
        for i, u in enumerate(uops):
            name = getattr(self, f"op_{u.op}", None)
            if name is None:
                name = self.op_value
            w.names.append(name(w, i, u) or "")
        return "\n".join(w.lines + w.closing)

    def op_value(self, w: "Walk", i: int, u) -> str:
        return self.render_op(u, f"v{i}", [w.names[s] for s in u.srcs],
                              [w.uops[s].dtype for s in u.srcs], w.k.bufs, w.ind, w.lines,
                              any(w.branchless))

    def op_RANGE(self, w: "Walk", i: int, u) -> str:
        r = u.arg
        lo, hi, v = self.expr(r.lo), self.expr(r.hi), r.var
        it = w.index_type if getattr(r, "dtype", None) is None else self.type(r.dtype)
        w.branchless.append(getattr(r, "branchless", False))
        if r.cap is not None:
            hi = f"({hi} < {r.cap} ? {hi} : {r.cap})"
        ordered = self.ordered_partials(r, w.names, w.uops, lo, hi, w.ind, w.lines)
        if ordered is None:
            w.lines.extend(w.ind + p for p in self.loop_pragmas(r, w.names, w.uops))
        w.ranges.append((r, lo, hi, ordered))
        cond = f"{v} < {hi}"
        if r.guard is not None and r.guard_style == "and":
            cond = f"{self.expr(r.guard)} && {cond}"
        elif r.guard is not None and r.guard_style == "bound":
            cond = f"{v} < ({self.expr(r.guard)} ? {hi} : 0)"
        inc = f"{v}++" if r.step == 1 else f"{v} += {r.step}"
        if r.kind == "grid":
            lo, inc = self.grid_stride(it)
            inc = f"{v} += {inc}"
        w.lines.append(f"{w.ind}for ({it} {v} = {lo}; {cond}; {inc}) {{")
        w.ind += "  "
        for name, at, init, _, _ in ordered or ():  # each iteration's own partial
            w.lines.append(f"{w.ind}{at} {name} = {init};")
        if r.guard is not None and r.guard_style == "break":
            w.lines.append(f"{w.ind}if (!{self.expr(r.guard)}) break;")
        return v

    def op_ENDRANGE(self, w: "Walk", i: int, u) -> str:
        w.branchless.pop()
        r, lo, hi, ordered = w.ranges.pop()
        for name, _, _, _, _ in ordered or ():
            w.lines.append(f"{w.ind}{name}_parts[{r.var} - ({lo})] = {name};")
        self.op_ENDIF(w, i, u)
        if ordered:
            w.lines.extend(self.combine_partials(r, lo, hi, ordered, w.ind))
        return ""

    def op_ENDIF(self, w: "Walk", i: int, u) -> str:
        w.ind = w.ind[:-2]
        w.lines.append(f"{w.ind}}}")
        return ""

    def op_ELSE(self, w: "Walk", i: int, u) -> str:
        w.lines.append(f"{w.ind[:-2]}}} else {{")
        return ""

    def op_IF(self, w: "Walk", i: int, u) -> str:
        w.lines.append(f"{w.ind}if ({self.expr(u.arg)}) {{")
        w.ind += "  "
        return ""

    def op_ENDFUNCTION(self, w: "Walk", i: int, u) -> str:
        w.lines.append("}")
        w.ind = ""
        return ""

    def op_DEFINE_LOCAL(self, w: "Walk", i: int, u) -> str:
        """An array in registers (``srcs``: its initial values), or a function's pointer
        argument seen as the op's dtype (``argument``: the pointer is the local's
        ``offset``)."""
        loc, S = u.arg, self.storage(u.dtype)
        q = f"{loc.qual} " if loc.qual else ""
        if loc.where == "argument":
            w.lines.append(f"{w.ind}{q}{S} *restrict {loc.name} = ({q}{S} *){loc.offset};")
            return loc.name
        size = loc.size if isinstance(loc.size, tuple) else (loc.size,)
        dims = "".join(f"[{n}]" for n in size)
        init = f" = {{{', '.join(w.names[s] for s in u.srcs)}}}" if u.srcs else ""
        align = f" __attribute__((aligned({loc.align})))" if loc.align else ""
        w.lines.append(f"{w.ind}{q if u.srcs else ''}{S} {loc.name}{dims}{align}{init};")
        return loc.name

    def op_DEFINE_ACC(self, w: "Walk", i: int, u) -> str:
        acc, name = u.arg, f"acc{w.n_acc}"
        w.n_acc += 1
        init = self.identity(acc.op, u.dtype)
        if acc.count > 1:
            w.lines.append(f"{w.ind}{self.type(u.dtype)} {name}[{acc.count}];")
            w.lines.append(f"{w.ind}for (int q = 0; q < {acc.count}; q++) {name}[q] = {init};")
            return f"{name}[{self.index(acc.index)}]"
        w.lines.append(f"{w.ind}{self.type(u.dtype)} {name} = {init};")
        return name

    def op_ACCUMULATE(self, w: "Walk", i: int, u) -> str:
        acc, val = u.srcs
        dt, op = w.uops[acc].dtype, w.uops[acc].arg.op
        w.lines.append(f"{w.ind}{w.names[acc]} = {self.combine(op, w.names[acc], w.names[val], dt)};")
        return ""

    def op_DEFINE_VAR(self, w: "Walk", i: int, u) -> str:
        d = u.arg
        T = w.index_type if u.dtype is None else "bool" if u.dtype == np.bool_ else \
            self.type(u.dtype)
        w.lines.append(f"{w.ind}{self.var_prefix}const {T} {d.name} = {self.expr(d.value)};")
        return d.name

    var_prefix = ""  # before every named value (CUDA: [[maybe_unused]])

    def expr(self, e) -> str:
        """An index expression: a symbolic node, a number, or an
        :class:`~tinyjax.compiler.codegen.uops.Expr` spelled from :attr:`EXPR_OPS`."""
        if isinstance(e, np.dtype):
            return self.type(e)
        if not hasattr(e, "op") or not hasattr(e, "args"):
            return e if isinstance(e, str) else self.index(e)
        if e.op == "aligned":
            return " && ".join(f"(unsigned long)data{s} % {b} == 0" for s, b in e.args)
        return self.EXPR_OPS[e.op].format(*(self.expr(a) if not isinstance(a, str) else a
                                            for a in e.args))

    EXPR_OPS = {"where": "({0} ? {1} : {2})", "min": "({0} < {1} ? {0} : {1})",
                "and": "({0} && {1})", "or": "({0} || {1})", "not": "(!{0})",
                "eq": "({0} == {1})", "ne": "({0} != {1})", "lt": "({0} < {1})",
                "ge": "({0} >= {1})", "add": "({0} + {1})", "sub": "({0} - {1})",
                "mul": "({0} * {1})", "div": "({0} / {1})", "mod": "({0} % {1})",
                "shl": "({0} << {1})", "shr": "({0} >> {1})", "bitand": "({0} & {1})",
                "bitor": "({0} | {1})", "xor": "({0} ^ {1})", "cast": "(({0})({1}))",
                "smem_addr": "tj_smem_addr({0})", "wg_desc": "tj_wg_desc({0}, {1})"}

    def grid_stride(self, it: str) -> tuple[str, str]:
        """(first point, step) of a loop over the launch's threads (a GPU's)."""
        raise NotImplementedError(f"{type(self).__name__} launches no threads")

    def kernel_comment(self, k: Kernel) -> list[str]:
        """The comment naming the source lines ``k`` fuses (none if it has none)."""
        if not k.source_lines:
            return []
        return ["/* " + k.name + " fuses: " + ", ".join(k.source_lines).replace("*/", "* /")
                + " */"]

    def kernel_head(self, k: Kernel) -> list[str]:
        """The comment naming the source lines ``k`` fuses, its signature and its buffer
        pointers ``data<slot>`` (the outputs writable, the inputs const)."""
        head = self.kernel_comment(k)
        head.append(f"{self.kernel_prefix}void {k.name}(void **restrict bufs) {{")
        for slot, (dt, n) in enumerate(k.bufs):
            q = "" if slot < k.n_outs else "const "
            head.append(f"  {q}{self.storage(dt)} *restrict data{slot} = ({q}{self.storage(dt)} *)bufs[{slot}];")
        return head

    def ordered_partials(self, r, names: list[str], uops, lo: str, hi: str, ind: str,
                         lines: list[str]) -> Optional[list[tuple]]:
        """For a parallel loop carrying scalar accumulators: each iteration accumulates into
        its own partial, kept in an array and combined in iteration order after the loop
        (:meth:`combine_partials`) -- the same bits whichever threads ran which iterations
        (an OpenMP ``reduction`` clause combines in the order the threads finish).  Emits
        the arrays and the directive; returns (name, C type, identity, op, dtype) per
        accumulator, or None (not such a loop)."""
        if not (r.parallel and r.accs) or any(uops[a].arg.count > 1 for a in r.accs):
            return None
        ordered = []
        for a in r.accs:
            dt, op = uops[a].dtype, uops[a].arg.op
            at = self.type(dt)
            ordered.append((names[a], at, self.identity(op, dt), op, dt))
            lines.append(f"{ind}{at} *{names[a]}_parts = ({at} *)malloc(sizeof({at}) * "
                         f"(({hi}) - ({lo})));")
        lines.append(f"{ind}#pragma omp parallel for schedule({SCHED})")
        return ordered

    def combine_partials(self, r, lo: str, hi: str, ordered: list[tuple],
                         ind: str) -> list[str]:
        """After a loop of :meth:`ordered_partials`: its partials combined in order."""
        out = []
        for name, _, _, op, dt in ordered:
            part = f"{name}_parts[{r.var} - ({lo})]"
            out.append(f"{ind}for ({self.index_type} {r.var} = {lo}; {r.var} < {hi}; "
                       f"{r.var}++) {name} = {self.combine(op, name, part, dt)};")
            out.append(f"{ind}free({name}_parts);")
        return out

    def loop_pragmas(self, r, names: list[str], uops) -> list[str]:
        """The OpenMP directives of loop ``r``: to the threads (``parallel``), to vector lanes
        (``simd``), combining the accumulators ``r.accs``."""
        red = ""
        for a in r.accs:
            clause = self.omp_reduction(uops[a].arg.op, uops[a].dtype)
            if clause is not None:
                red += f" reduction({clause}:{names[a]})"
        # independent iterations vectorise without a test of whether the buffers overlap
        # (GCC cannot tell from restrict pointers held in locals)
        independent = getattr(r, "independent", False)
        if r.parallel:
            simd = " simd" if independent and not red else ""
            return [f"#pragma omp parallel for{simd}{red} schedule({SCHED})"]
        if r.simd and (red or not r.accs):
            return [f"#pragma omp simd{red}"]
        return ["#pragma GCC ivdep"] if independent else []

    # ---- kernels (CPU) ---------------------------------------------------------------------
    def render_kernel(self, k: Kernel) -> str:
        """The C function of ``k``: elementwise, reduce and product kernels from their loop IR
        (``k.loop_ir``, which the compiler's codegen attaches), sorts and scatters' updates by
        their own renderers."""
        head = self.kernel_head(k)
        if k.sort is not None:
            return "\n".join(self.render_sort_less(k) + head + self.render_sort(k) + ["}"])
        if k.loop_ir is None:
            raise ValueError(f"cpu: kernel {k.name} has no loop IR (compiler.codegen."
                             "attach_loop_ir gives it one)")
        if k.gemm is not None:  # its functions (FUNCTION ops), the kernel's among them
            return self.render_uops(k, k.loop_ir)
        if k.scatter_shape is not None:
            return "\n".join(head + self.render_scatter(k) + ["}"])
        return self.render_uops(k, k.loop_ir, head)

    # ---- the sort kernel kind ----------------------------------------------------------------
    def render_sort_less(self, k: Kernel) -> list[str]:
        """``<name>_less(bufs, a, b)``: whether the row element at offset ``a`` sorts strictly
        before the one at ``b`` (keys in order; ties: not less, so the merge stays stable)."""
        axis, desc, slots = k.sort
        L = [f"static inline int {k.name}_less(void **restrict bufs, long a, long b) {{"]
        for slot in slots:
            dt = np.dtype(k.bufs[slot][0])
            T = self.type(dt)
            L.append("  {")
            S = self.storage(dt)
            L.append(f"    const {S} *d = (const {S} *)bufs[{slot}];")
            L.append(f"    {T} x = {self.load(dt, 'd[a]')}, y = {self.load(dt, 'd[b]')};")
            L.extend("    " + ln for ln in self.sort_key_order(dt, desc))
            L.append("  }")
        L.append("  return 0;")
        L.append("}")
        return L

    def sort_key_order(self, dt, desc: bool) -> list[str]:
        """Statements comparing the keys ``x`` and ``y`` (of ``dt``, loaded): return whether x
        sorts first where they differ, fall through where they tie.  Ascending: NaNs last.
        Descending floats: by the sign-flipped bits (so NaNs first, -0.0 after 0.0)."""
        if desc and _is_float(dt):
            bits = 32 if _half(dt) or dt.itemsize == 4 else 64
            mx = "0x7fffffff" if bits == 32 else "0x7fffffffffffffffLL"
            return [self.float_bits(bits, "x", "y"),
                    f"if (bx < 0) bx ^= {mx}; if (by < 0) by ^= {mx};",
                    "if (bx != by) return bx > by;"]
        if desc:
            return ["if (x != y) return x > y;"]
        if _is_float(dt):
            return ["int xn = x != x, yn = y != y;",
                    "if (xn | yn) { if (xn != yn) return yn; }",
                    "else if (x != y) return x < y;"]
        return ["if (x != y) return x < y;"]

    def float_bits(self, bits: int, x: str, y: str) -> str:
        """Declare ``bx``/``by``: the bits of the floats ``x``/``y`` as signed integers."""
        return (f"int{bits}_t bx, by; memcpy(&bx, &{x}, sizeof {x}); "
                f"memcpy(&by, &{y}, sizeof {y});")

    def render_sort(self, k: Kernel) -> list[str]:
        """Per row (rows spread over threads): a bottom-up stable merge sort of the indices
        0..n-1 by the keys, written to the int64 output along the sort axis."""
        axis = k.sort[0]
        shape = k.full_shape
        n = shape[axis]
        stride = int(np.prod(shape[axis + 1:], dtype=np.int64))
        rows = int(np.prod(shape, dtype=np.int64)) // max(n, 1)
        par = "" if rows * n < 4096 or rows < 2 else " if(1)"
        return [
            f"  const long n = {n}, stride = {stride}, rows = {rows};",
            f"  #pragma omp parallel{par}" if par else "  {",
            *(["  {"] if par else []),
            "    long *p = (long *)malloc(sizeof(long) * 2 * (n > 0 ? n : 1)), *t = p + n;",
            *([f"    #pragma omp for schedule({SCHED})"] if par else []),
            "    for (long r = 0; r < rows; r++) {",
            "      long base = (r / stride) * n * stride + r % stride;",
            "      for (long j = 0; j < n; j++) p[j] = j;",
            "      for (long w = 1; w < n; w *= 2) {",
            "        for (long lo = 0; lo < n - w; lo += 2 * w) {",
            "          long mid = lo + w, hi = lo + 2 * w < n ? lo + 2 * w : n;",
            "          long i = lo, j = mid, o = lo;",
            "          while (i < mid && j < hi)",
            f"            t[o++] = {k.name}_less(bufs, base + p[j] * stride, base + p[i] * stride)"
            " ? p[j++] : p[i++];",
            "          while (i < mid) t[o++] = p[i++];",
            "          while (j < hi) t[o++] = p[j++];",
            "          for (long q = lo; q < hi; q++) p[q] = t[q];",
            "        }",
            "      }",
            "      for (long j = 0; j < n; j++) data0[base + j * stride] = p[j];",
            "    }",
            "    free(p);",
            "  }",
        ]

    # ---- the scatter kernel kind ------------------------------------------------------------
    def render_scatter(self, k: Kernel) -> list[str]:
        """Copy the operand (its loop IR: a parallel elementwise nest), then the updates
        serially in C order (repeated offsets combine in the eager order)."""
        it = self.index_type
        L = self.render_uops(k, k.loop_ir, self.kernel_head(k)).split("\n")[len(self.kernel_head(k)):-1]
        L.append("  {")
        ind = "    "
        for a, n in enumerate(k.scatter_shape):
            L.append(f"{ind}for ({it} i{a} = 0; i{a} < {n}; i{a}++) {{")
            ind += "  "
        uops = k.sbody
        body, _ = self.render_body(uops[:-1], "s", None, k.bufs, ind)
        L.extend(body)
        sc = uops[-1]
        o, v, ok = (f"s{i}" if uops[i].op not in ("CONST",) else
                    self.const(uops[i].arg, uops[i].dtype) for i in sc.srcs)
        dt = uops[sc.srcs[1]].dtype
        cur = self.load(dt, f"data0[{o}]")
        if sc.arg == "replace":
            new = v
        elif sc.arg in ("add", "mul"):
            new = f"{cur}{'+' if sc.arg == 'add' else '*'}{v}" if dt != np.bool_ else \
                f"({cur}{'|' if sc.arg == 'add' else '&'}{v})"
        else:
            new = self.alu(sc.arg, dt, [cur, v], [dt, dt])
        L.append(f"{ind}if ({ok}) data0[{o}] = {self.store(dt, new)};")
        for _ in k.scatter_shape:
            ind = ind[:-2]
            L.append(f"{ind}}}")
        L.append("  }")
        return L

    # ---- reductions -----------------------------------------------------------------------
    def omp_reduction(self, op: str, dt) -> Optional[str]:
        """The OpenMP reduction identifier for ``op`` on ``dt`` (None: no clause)."""
        dt = np.dtype(dt)
        if dt == np.bool_ and op in ("max", "min"):
            return None
        if _is_float(dt) and op in ("max", "min"):
            return f"tj_{op}_{self.type(dt)}"  # NaN-propagating, declared in the prelude
        return {"sum": "+", "prod": "*", "and": "&", "or": "|", "xor": "^", "max": "max",
                "min": "min"}[op]
