"""C-syntax rendering of the kernel IR, shared by the C (CPU) and a future CUDA renderer.

:class:`CStyleLanguage` knows the C spelling of types, constants, ALU ops and casts, and
renders a kernel's two SSA bodies; :meth:`CStyleLanguage.render_kernel` wraps them in a
loop nest (the CPU's).  A CUDA renderer overrides the function header, the loop nest (grid
indices instead of outer loops) and a few spellings, reusing the rest.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tinyjax.lowering.kernel import Kernel, UOp
from tinyjax.lowering.symbolic import RenderStyle, render

__all__ = ["CStyleLanguage", "PRELUDE"]

C_TYPES = {
    np.dtype(np.bool_): "unsigned char", np.dtype(np.int8): "int8_t",
    np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
    np.dtype(np.int64): "int64_t", np.dtype(np.uint8): "uint8_t",
    np.dtype(np.uint16): "uint16_t", np.dtype(np.uint32): "uint32_t",
    np.dtype(np.uint64): "uint64_t", np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
}

# Helpers for functions libm lacks; computed in double.
PRELUDE = r"""
#include <math.h>
#include <stdint.h>
static inline double tj_digamma(double x) {
  double r = 0.0;
  if (x != x) return x;
  if (x <= 0.0 && floor(x) == x) return NAN;
  if (x < 0.0) { return tj_digamma(1.0 - x) - M_PI / tan(M_PI * x); }
  while (x < 6.0) { r -= 1.0 / x; x += 1.0; }
  double f = 1.0 / (x * x);
  return r + log(x) - 0.5 / x - f * (1.0/12 - f * (1.0/120 - f * (1.0/252 - f * (1.0/240 - f * (1.0/132)))));
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

_LIBM = {"exp": "exp", "exp2": "exp2", "log": "log", "log1p": "log1p", "expm1": "expm1",
         "tanh": "tanh", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin",
         "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh", "asinh": "asinh",
         "acosh": "acosh", "atanh": "atanh", "sqrt": "sqrt", "cbrt": "cbrt", "erf": "erf",
         "erfc": "erfc", "lgamma": "lgamma", "floor": "floor", "ceil": "ceil",
         "round_even": "rint", "round_away": "round", "pow": "pow", "atan2": "atan2",
         "nextafter": "nextafter"}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "and": "&", "or": "|", "xor": "^",
          "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _is_float(dt) -> bool:
    return np.dtype(dt).kind == "f"


def _int_limits(dt):
    info = np.iinfo(dt)
    return info.min, info.max


class CStyleLanguage:
    """C spellings; subclasses may change ``kernel_prefix``, ``buffer_prefix``, style."""

    kernel_prefix = ""
    style: RenderStyle = RenderStyle("c")
    index_type = "long"

    # ---- atoms ---------------------------------------------------------------------------
    def type(self, dt) -> str:
        return C_TYPES[np.dtype(dt)]

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
                s = repr(float(np.float32(v))) + "f" if dt == np.float32 else repr(v)
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
        return name + ("f" if np.dtype(dt) == np.float32 else "")

    def alu(self, op: str, dt, args: list[str], arg_dts: list) -> str:
        """C expression for an ALU op; ``dt`` the result dtype, ``arg_dts`` the operands'."""
        a = args[0]
        b = args[1] if len(args) > 1 else None
        xt = np.dtype(arg_dts[0])
        T = self.type(dt)
        if op in _INFIX:
            return f"({a}{_INFIX[op]}{b})"
        if op == "where":
            return f"({a}?{b}:{args[2]})"
        if _is_float(xt) and op in _LIBM:
            return f"{self.fn(_LIBM[op], xt)}({', '.join(args)})"
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
        if op == "max":
            if _is_float(xt):
                return f"(({a}>{b}||{a}!={a})?{a}:{b})"
            return f"({a}>{b}?{a}:{b})"
        if op == "min":
            if _is_float(xt):
                return f"(({a}<{b}||{a}!={a})?{a}:{b})"
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
        if dst == np.bool_:
            return f"({x}!=0)"
        if _is_float(src) and dst.kind in "iu":
            lo, hi = _int_limits(dst)
            return (f"({x}!={x}?({T})0:((double){x}<={float(lo)!r}?({T}){self.const(lo, dst)}:"
                    f"((double){x}>={float(hi)!r}?({T}){self.const(hi, dst)}:({T}){x})))")
        return f"(({T}){x})"

    def combine(self, op: str, acc: str, v: str, dt) -> str:
        return {"sum": f"{acc}+{v}", "prod": f"{acc}*{v}", "and": f"{acc}&{v}",
                "or": f"{acc}|{v}", "xor": f"{acc}^{v}",
                "max": self.alu("max", dt, [acc, v], [dt, dt]),
                "min": self.alu("min", dt, [acc, v], [dt, dt])}[op]

    def identity(self, op: str, dt) -> str:
        from tinyjax.lowering.rules import _identity_value
        return self.const(_identity_value(op, dt), dt)

    # ---- bodies --------------------------------------------------------------------------
    def render_body(self, uops: list[UOp], prefix: str, acc: Optional[str], bufs,
                    indent: str) -> tuple[list[str], str]:
        """SSA statements for ``uops``; returns (lines, name of the last value)."""
        lines, names = [], []
        for i, u in enumerate(uops):
            name = f"{prefix}{i}"
            if u.op == "STORE":
                lines.append(f"{indent}data0[{self.index(u.arg)}] = {names[u.srcs[0]]};")
                names.append("")
                continue
            if u.op == "LOAD":
                slot, idx, valid = u.arg
                ix = self.index(idx)
                if u.srcs:  # data-dependent offset
                    ix = names[u.srcs[0]] if ix == "0" else f"{ix}+{names[u.srcs[0]]}"
                expr = f"data{slot}[{ix}]"
                if not (valid.vmin > 0):
                    expr = f"({self.index(valid)}?{expr}:{self.const(0, u.dtype)})"
            elif u.op == "CONST":
                names.append(self.const(u.arg, u.dtype))
                continue
            elif u.op == "INDEX":
                expr = f"(({self.type(u.dtype)})({self.index(u.arg)}))"
            elif u.op == "ACC":
                names.append(acc)
                continue
            elif u.op == "CAST":
                expr = self.cast(names[u.srcs[0]], uops[u.srcs[0]].dtype, u.dtype)
            elif u.op == "ALU":
                expr = self.alu(u.arg, u.dtype, [names[s] for s in u.srcs],
                                [uops[s].dtype for s in u.srcs])
            else:
                raise NotImplementedError(f"unknown uop {u.op}")
            lines.append(f"{indent}{self.type(u.dtype)} {name} = {expr};")
            names.append(name)
        return lines, names[-1] if names else ""

    # ---- the loop nest (CPU) ----------------------------------------------------------------
    def render_kernel(self, k: Kernel, parallel_threshold: int = 1 << 17) -> str:
        it = self.index_type
        head = []
        if k.source_lines:
            head.append("/* " + k.name + " fuses: " + ", ".join(k.source_lines).replace("*/", "* /") + " */")
        head.append(f"{self.kernel_prefix}void {k.name}(void **restrict bufs) {{")
        for slot, (dt, n) in enumerate(k.bufs):
            q = "" if slot == 0 else "const "
            head.append(f"  {q}{self.type(dt)} *restrict data{slot} = ({q}{self.type(dt)} *)bufs[{slot}];")
        full, red = k.full_shape, set(k.reduce_axes)
        up = k.upcast_axis
        outer = [a for a in range(len(full)) if a not in red and a != up]
        inner = [a for a in range(len(full)) if a in red]
        lines, ind = [], "  "
        work = int(np.prod(full, dtype=np.int64)) * max(1, len(k.rbody) + len(k.body))
        for j, a in enumerate(outer):
            if j == 0 and work >= parallel_threshold and full[a] > 1:
                lines.append(f"{ind}#pragma omp parallel for schedule(static)")
            lines.append(f"{ind}for ({it} i{a} = 0; i{a} < {full[a]}; i{a}++) {{")
            ind += "  "
        if k.reduce_op is None:
            body, _ = self.render_body(k.body, "v", None, k.bufs, ind)
            lines.extend(body)
        else:
            at = self.type(k.acc_dtype)
            init = self.identity(k.reduce_op, k.acc_dtype)
            if up is not None:
                U = full[up]
                lines.append(f"{ind}{at} acc[{U}];")
                lines.append(f"{ind}for ({it} i{up} = 0; i{up} < {U}; i{up}++) acc[i{up}] = {init};")
                acc = f"acc[i{up}]"
            else:
                lines.append(f"{ind}{at} acc0 = {init};")
                acc = "acc0"
            rind = ind
            for a in inner:
                lines.append(f"{rind}for ({it} i{a} = 0; i{a} < {full[a]}; i{a}++) {{")
                rind += "  "
            if up is not None:
                lines.append(f"{rind}for ({it} i{up} = 0; i{up} < {full[up]}; i{up}++) {{")
                rind += "  "
            rb, last = self.render_body(k.rbody, "r", None, k.bufs, rind)
            lines.extend(rb)
            lines.append(f"{rind}{acc} = {self.combine(k.reduce_op, acc, last, k.acc_dtype)};")
            for _ in inner + ([up] if up is not None else []):
                rind = rind[:-2]
                lines.append(f"{rind}}}")
            eind = ind
            if up is not None:
                lines.append(f"{eind}for ({it} i{up} = 0; i{up} < {full[up]}; i{up}++) {{")
                eind += "  "
            body, _ = self.render_body(k.body, "v", acc, k.bufs, eind)
            lines.extend(body)
            if up is not None:
                lines.append(f"{ind}}}")
        for _ in outer:
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        return "\n".join(head + lines + ["}"])
