"""StableHLO text of a jaxpr: what ``jit(f).lower(...).as_text()`` prints.

tinyjax compiles jaxprs to C and CUDA, not through XLA, so this module is only a printer:
it spells each equation as the StableHLO operations JAX's lowering emits for it, in MLIR's
textual form (value names ``%0, %1, ...``, ``%c``/``%cst`` for integer and float
constants, literals materialised where used, scalar operands of elementwise operations
broadcast with ``broadcast_in_dim``, nested ``jit`` calls as private functions).
Primitives without a spelling here raise NotImplementedError naming them;
``as_text(dialect="jaxpr")`` prints the jaxpr instead.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import ShapedArray
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var

__all__ = ["module_text"]

_UNARY = {
    "sin": "sine", "cos": "cosine", "tan": "tan", "exp": "exponential", "log": "log",
    "neg": "negate", "abs": "abs", "sqrt": "sqrt", "rsqrt": "rsqrt", "cbrt": "cbrt",
    "tanh": "tanh", "logistic": "logistic", "log1p": "log_plus_one",
    "expm1": "exponential_minus_one", "floor": "floor", "ceil": "ceil", "sign": "sign",
    "not": "not", "is_finite": "is_finite", "real": "real", "imag": "imag",
    "population_count": "popcnt", "clz": "count_leading_zeros",
}
_BINARY = {
    "add": "add", "sub": "subtract", "mul": "multiply", "div": "divide", "rem": "remainder",
    "max": "maximum", "min": "minimum", "pow": "power", "atan2": "atan2", "and": "and",
    "or": "or", "xor": "xor", "shift_left": "shift_left",
    "shift_right_arithmetic": "shift_right_arithmetic",
    "shift_right_logical": "shift_right_logical", "complex": "complex",
}
_COMPARE = {"eq": "EQ", "ne": "NE", "lt": "LT", "le": "LE", "gt": "GT", "ge": "GE"}
_REDUCE = {"reduce_sum": ("add", 0), "reduce_prod": ("multiply", 1),
           "reduce_max": ("maximum", "-inf"), "reduce_min": ("minimum", "+inf"),
           "reduce_and": ("and", True), "reduce_or": ("or", False)}


# ---------------------------------------------------------------- types and constants
def tensor_type(aval: ShapedArray) -> str:
    """MLIR's spelling of an array type, e.g. ``tensor<2x3xf32>``."""
    return "tensor<" + "".join(f"{d}x" for d in aval.shape) + _element_type(aval.dtype) + ">"


def _element_type(dtype: Any) -> str:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "i1"
    if dtype.kind == "i":
        return f"i{8 * dtype.itemsize}"
    if dtype.kind == "u":
        return f"ui{8 * dtype.itemsize}"
    if dtype.kind == "c":
        return f"complex<f{4 * dtype.itemsize}>"
    if dtype.name == "bfloat16":
        return "bf16"
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return f"f{8 * dtype.itemsize}"
    raise NotImplementedError(f"StableHLO text: no element type for dtype {dtype.name}")


def _float_text(x: Any) -> str:
    """MLIR's float attribute: ``%.6e`` when that reads back exactly, else the shortest
    decimal of the type's precision, else the bits in hexadecimal (inf, nan)."""
    x = x[()] if isinstance(x, np.ndarray) else x
    if np.isfinite(x):
        short = f"{float(x):.6e}"
        if type(x)(short) == x:
            return short
        digits = 2 + (np.finfo(x.dtype).nmant + 1) * 59 // 196
        text = np.format_float_positional(x, precision=digits, unique=False, trim="-") \
            if 1e-4 <= abs(x) < 10 ** digits else f"{float(x):.{digits - 1}E}"
        if "." in text:
            return text
    bits = np.asarray(x).view(f"u{x.dtype.itemsize}")
    return f"0x{int(bits):0{2 * x.dtype.itemsize}X}"


def _scalar_text(x: Any) -> str:
    if x.dtype == np.bool_:
        return "true" if x else "false"
    if x.dtype.kind in "iu":
        return str(int(x))
    if x.dtype.kind == "c":
        return f"({_float_text(x.real)},{_float_text(x.imag)})"
    return _float_text(x)


def dense_text(value: np.ndarray) -> str:
    """A ``dense<...>`` attribute: one value when all elements are equal (a splat)."""
    flat = value.reshape(-1)
    if flat.size and (flat == flat[0]).all() or value.ndim == 0:
        return f"dense<{_scalar_text(flat[0])}>"

    def nest(v: np.ndarray) -> str:
        if v.ndim == 0:
            return _scalar_text(v[()])
        return "[" + ", ".join(nest(row) for row in v) + "]"
    return f"dense<{nest(value)}>"


# ---------------------------------------------------------------- one function's body
class _Function:
    """Prints one ``func.func``: names its values as MLIR does and emits its lines."""

    def __init__(self, module: "_Module"):
        self.module = module
        self.lines: list[str] = []
        self.names: dict[Var, str] = {}
        self.used: set[str] = set()
        self.conflicts = 0
        self.count = 0

    def fresh(self) -> str:
        name = f"%{self.count}"
        self.count += 1
        return name

    def fresh_named(self, base: str) -> str:
        name = base
        while name in self.used:  # MLIR: one conflict counter for all names of a region
            name = f"{base}_{self.conflicts}"
            self.conflicts += 1
        self.used.add(name)
        return "%" + name

    def emit(self, result: str, text: str) -> str:
        self.lines.append(f"    {result} = {text}")
        return result

    def constant(self, value: Any, aval: ShapedArray) -> str:
        value = np.asarray(value, dtype=aval.dtype).reshape(aval.shape)
        base = "cst" if dtypes.is_float(value.dtype) or dtypes.is_complex(value.dtype) else "c"
        return self.emit(self.fresh_named(base),
                         f"stablehlo.constant {dense_text(value)} : {tensor_type(aval)}")

    def read(self, atom: Any) -> str:
        if isinstance(atom, Literal):
            return self.constant(atom.val, atom.aval)
        return self.names[atom]

    def op(self, text: str, operands: Sequence[str], in_avals: Sequence[ShapedArray],
           out_aval: ShapedArray, *, functional: bool = True, attrs: str = "") -> str:
        """``%n = stablehlo.<text> %a, %b<attrs> : <type>``; the type is ``(ins) -> out``
        for ``functional`` operations, else the one shared type."""
        types = (f"({', '.join(map(tensor_type, in_avals))}) -> {tensor_type(out_aval)}"
                 if functional else tensor_type(out_aval))
        return self.emit(self.fresh(), f"stablehlo.{text} {', '.join(operands)}{attrs} : {types}")

    def broadcast(self, x: str, aval: ShapedArray, shape: tuple, dims: Sequence[int]) -> str:
        out = ShapedArray(tuple(shape), aval.dtype)
        return self.op("broadcast_in_dim", [x], [aval], out,
                       attrs=f", dims = [{', '.join(map(str, dims))}]")

    def elementwise_operands(self, eqn: JaxprEqn) -> list[str]:
        """The operands, those of lower rank (scalars) broadcast to the result's shape."""
        shape = eqn.outvars[0].aval.shape
        out = []
        for atom in eqn.invars:
            x = self.read(atom)
            if atom.aval.shape != shape:
                rank = len(shape) - len(atom.aval.shape)
                x = self.broadcast(x, atom.aval, shape, range(rank, len(shape)))
            out.append(x)
        return out

    def body(self, jaxpr: Jaxpr, args: Sequence[str], consts: Sequence[Any]) -> list[str]:
        """Emit the equations; return the names of the results."""
        for v, a in zip(jaxpr.invars, args):
            self.names[v] = a
        const_atoms = dict(zip(jaxpr.constvars, consts))
        for eqn in jaxpr.eqns:
            for atom in eqn.invars:  # constants are materialised where they are used
                if isinstance(atom, Var) and atom in const_atoms and atom not in self.names:
                    self.names[atom] = self.constant(const_atoms[atom], atom.aval)
            rule = _RULES.get(eqn.primitive.name)
            if rule is None:
                raise NotImplementedError(
                    f"StableHLO text: tinyjax has no StableHLO spelling for primitive "
                    f"'{eqn.primitive.name}'; as_text(dialect='jaxpr') prints the jaxpr")
            results = rule(self, eqn)
            for v, r in zip(eqn.outvars, results):
                self.names[v] = r
        outs = []
        for atom in jaxpr.outvars:
            if isinstance(atom, Var) and atom in const_atoms and atom not in self.names:
                self.names[atom] = self.constant(const_atoms[atom], atom.aval)
            outs.append(self.read(atom))
        return outs


# ---------------------------------------------------------------- the rules
def _unary(name: str) -> Callable:
    def rule(fn: _Function, eqn: JaxprEqn) -> list[str]:
        (x,) = fn.elementwise_operands(eqn)
        return [fn.op(name, [x], [], eqn.outvars[0].aval, functional=False)]
    return rule


def _binary(name: str) -> Callable:
    def rule(fn: _Function, eqn: JaxprEqn) -> list[str]:
        return [fn.op(name, fn.elementwise_operands(eqn), [], eqn.outvars[0].aval,
                      functional=False)]
    return rule


def _compare(direction: str) -> Callable:
    def rule(fn: _Function, eqn: JaxprEqn) -> list[str]:
        a, b = fn.elementwise_operands(eqn)
        dtype = np.dtype(eqn.invars[0].aval.dtype)
        kind = ("FLOAT" if dtypes.is_float(dtype) or dtypes.is_complex(dtype) else
                "SIGNED" if dtype.kind == "i" else "UNSIGNED")
        aval = ShapedArray(eqn.outvars[0].aval.shape, dtype)
        text = f"stablehlo.compare {direction}, {a}, {b}, {kind} : "
        types = f"({tensor_type(aval)}, {tensor_type(aval)}) -> {tensor_type(eqn.outvars[0].aval)}"
        return [fn.emit(fn.fresh(), text + types)]
    return rule


def _select_n(fn: _Function, eqn: JaxprEqn) -> list[str]:
    pred, *cases = fn.elementwise_operands(eqn)
    if len(cases) != 2:
        raise NotImplementedError("StableHLO text: select_n with more than two cases")
    out = eqn.outvars[0].aval
    pred_aval = ShapedArray(out.shape, np.dtype(eqn.invars[0].aval.dtype))
    return [fn.emit(fn.fresh(), f"stablehlo.select {pred}, {cases[1]}, {cases[0]} : "
                                f"{tensor_type(pred_aval)}, {tensor_type(out)}")]


def _integer_pow(fn: _Function, eqn: JaxprEqn) -> list[str]:
    """JAX's lowering: square-and-multiply, then the reciprocal for a negative power."""
    x, aval, y = fn.read(eqn.invars[0]), eqn.invars[0].aval, eqn.params["y"]
    acc, n = None, abs(y)
    while n > 0:
        if n & 1:
            acc = x if acc is None else fn.op("multiply", [acc, x], [], aval, functional=False)
        n >>= 1
        if n > 0:
            x = fn.op("multiply", [x, x], [], aval, functional=False)
    if acc is None:
        return [fn.constant(np.ones(aval.shape), aval)]
    if y < 0:
        one = fn.constant(np.ones(()), ShapedArray((), aval.dtype))
        one = fn.broadcast(one, ShapedArray((), aval.dtype), aval.shape, []) if aval.shape else one
        acc = fn.op("divide", [one, acc], [], aval, functional=False)
    return [acc]


def _square(fn: _Function, eqn: JaxprEqn) -> list[str]:
    x = fn.read(eqn.invars[0])
    return [fn.op("multiply", [x, x], [], eqn.outvars[0].aval, functional=False)]


def _convert(fn: _Function, eqn: JaxprEqn) -> list[str]:
    x, aval, out = fn.read(eqn.invars[0]), eqn.invars[0].aval, eqn.outvars[0].aval
    if np.dtype(aval.dtype) == np.dtype(out.dtype):
        return [x]
    return [fn.op("convert", [x], [aval], out)]


def _broadcast_in_dim(fn: _Function, eqn: JaxprEqn) -> list[str]:
    aval, out = eqn.invars[0].aval, eqn.outvars[0].aval
    dims = eqn.params.get("broadcast_dimensions")
    if dims is None:
        dims = range(len(out.shape) - len(aval.shape), len(out.shape))
    return [fn.broadcast(fn.read(eqn.invars[0]), aval, out.shape, dims)]


def _shape_op(name: str, attrs: Callable[[JaxprEqn], str] = lambda eqn: "") -> Callable:
    def rule(fn: _Function, eqn: JaxprEqn) -> list[str]:
        return [fn.op(name, [fn.read(eqn.invars[0])], [eqn.invars[0].aval],
                      eqn.outvars[0].aval, attrs=attrs(eqn))]
    return rule


def _dims(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in values) + "]"


def _slice(fn: _Function, eqn: JaxprEqn) -> list[str]:
    p = eqn.params
    strides = p.get("strides") or (1,) * len(p["start_indices"])
    ranges = ", ".join(f"{s}:{e}" + (f":{k}" if k != 1 else "")
                       for s, e, k in zip(p["start_indices"], p["limit_indices"], strides))
    aval = eqn.invars[0].aval
    return [fn.emit(fn.fresh(), f"stablehlo.slice {fn.read(eqn.invars[0])} [{ranges}] : "
                                f"({tensor_type(aval)}) -> {tensor_type(eqn.outvars[0].aval)}")]


def _concatenate(fn: _Function, eqn: JaxprEqn) -> list[str]:
    xs = [fn.read(a) for a in eqn.invars]
    return [fn.op("concatenate", xs, [a.aval for a in eqn.invars], eqn.outvars[0].aval,
                  attrs=f", dim = {eqn.params['dimension']}")]


def _iota(fn: _Function, eqn: JaxprEqn) -> list[str]:
    out = eqn.outvars[0].aval
    return [fn.emit(fn.fresh(), f"stablehlo.iota dim = {eqn.params['dimension']} : "
                                f"{tensor_type(out)}")]


def _reduce(name: str, init: Any) -> Callable:
    def rule(fn: _Function, eqn: JaxprEqn) -> list[str]:
        aval, out = eqn.invars[0].aval, eqn.outvars[0].aval
        scalar = ShapedArray((), aval.dtype)
        dtype = np.dtype(aval.dtype)
        if isinstance(init, str):  # the identity of max/min: -inf/+inf, or the int range
            low = init.startswith("-")
            value = (-np.inf if low else np.inf) if dtypes.is_float(dtype) else (
                (np.iinfo(dtype).min if low else np.iinfo(dtype).max) if dtype != np.bool_
                else not low)
        else:
            value = init
        start = fn.constant(value, scalar)
        x = fn.read(eqn.invars[0])
        return [fn.emit(fn.fresh(),
                        f"stablehlo.reduce({x} init: {start}) applies stablehlo.{name} across "
                        f"dimensions = {_dims(eqn.params['axes'])} : ({tensor_type(aval)}, "
                        f"{tensor_type(scalar)}) -> {tensor_type(out)}")]
    return rule


def _dot_general(fn: _Function, eqn: JaxprEqn) -> list[str]:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    attrs = ""
    if lb or rb:
        attrs += f", batching_dims = {_dims(lb)} x {_dims(rb)}"
    attrs += f", contracting_dims = {_dims(lc)} x {_dims(rc)}, precision = [DEFAULT, DEFAULT]"
    xs = [fn.read(a) for a in eqn.invars]
    return [fn.op("dot_general", xs, [a.aval for a in eqn.invars], eqn.outvars[0].aval,
                  attrs=attrs)]


def _call(fn: _Function, eqn: JaxprEqn) -> list[str]:
    closed = eqn.params["jaxpr"]
    jaxpr, consts = (closed.jaxpr, closed.consts) if isinstance(closed, ClosedJaxpr) \
        else (closed, [])
    callee = fn.module.function(eqn.params.get("name", "jit"), jaxpr, consts)
    args = [fn.read(a) for a in eqn.invars]
    outs = [v.aval for v in eqn.outvars]
    result = fn.fresh()
    types = (f"({', '.join(tensor_type(a.aval) for a in eqn.invars)}) -> "
             + (tensor_type(outs[0]) if len(outs) == 1 else
                f"({', '.join(map(tensor_type, outs))})"))
    fn.emit(result if len(outs) == 1 else f"{result}:{len(outs)}",
            f"call @{callee}({', '.join(args)}) : {types}")
    return [result] if len(outs) == 1 else [f"{result}#{i}" for i in range(len(outs))]


_RULES: dict[str, Callable[[_Function, JaxprEqn], list[str]]] = {
    **{p: _unary(n) for p, n in _UNARY.items()},
    **{p: _binary(n) for p, n in _BINARY.items()},
    **{p: _compare(d) for p, d in _COMPARE.items()},
    **{p: _reduce(n, i) for p, (n, i) in _REDUCE.items()},
    "select_n": _select_n, "integer_pow": _integer_pow, "square": _square,
    "convert_element_type": _convert, "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _shape_op("reshape"), "squeeze": _shape_op("reshape"),
    "expand_dims": _shape_op("reshape"),
    "transpose": _shape_op("transpose", lambda e: f", dims = {_dims(e.params['permutation'])}"),
    "rev": _shape_op("reverse", lambda e: f", dims = {_dims(e.params['dimensions'])}"),
    "slice": _slice, "concatenate": _concatenate, "iota": _iota,
    "dot_general": _dot_general, "jit": _call, "pjit": _call,
}


# ---------------------------------------------------------------- the module
def _symbol(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][\w$.]*", name) else f'"{name}"'


class _Module:
    """The functions of one module: ``main`` and one private function per distinct
    nested ``jit`` (reused when the same jaxpr is called again)."""

    def __init__(self):
        self.functions: list[list[str]] = []
        self.symbols: set[str] = {"main"}
        self.lowered: dict[tuple, str] = {}

    def function(self, name: str, jaxpr: Jaxpr, consts: Sequence[Any],
                 result_names: Sequence[str] | None = None) -> str:
        key = (jaxpr.pretty_print(), tuple(map(id, consts)))  # equal programs: one function
        if result_names is None and key in self.lowered:
            return self.lowered[key]
        if result_names is None:
            symbol, n = name, 0
            while symbol in self.symbols:
                symbol, n = f"{name}_{n}", n + 1
            self.symbols.add(symbol)
            self.lowered[key] = _symbol(symbol)
        else:
            symbol = name
        slot = len(self.functions)  # callers before callees, as MLIR lists them
        self.functions.append([])
        fn = _Function(self)
        args = [f"%arg{i}" for i in range(len(jaxpr.invars))]
        header = ", ".join(f"{a}: {tensor_type(v.aval)}" for a, v in zip(args, jaxpr.invars))
        outs = fn.body(jaxpr, args, consts)
        out_types = [tensor_type(v.aval) for v in jaxpr.outvars]
        if result_names is None:
            visibility = "private"
            results = out_types[0] if len(out_types) == 1 else f"({', '.join(out_types)})"
        else:
            visibility = "public"
            results = "(" + ", ".join(f'{t} {{jax.result_info = "{r}"}}'
                                      for t, r in zip(out_types, result_names)) + ")"
        text = [f"  func.func {visibility} @{_symbol(symbol)}({header}) -> {results} {{",
                *fn.lines]
        text.append(f"    return {', '.join(outs)} : {', '.join(out_types)}" if outs
                    else "    return")
        text.append("  }")
        self.functions[slot] = text
        return _symbol(symbol)


def module_text(name: str, closed: ClosedJaxpr, result_names: Sequence[str]) -> str:
    """The StableHLO module of a jitted function named ``name`` (``module @jit_<name>``)
    whose program is ``closed``; ``result_names`` label the results (``result[0]``...)."""
    module = _Module()
    module.function("main", closed.jaxpr, closed.consts, result_names)
    body = "\n".join(line for fn in module.functions for line in fn)
    module_name = "jit_" + re.sub(r"[^\w.-]", "_", name).rstrip("_")
    return (f"module @{module_name} attributes {{mhlo.num_partitions = 1 : i32, "
            f"mhlo.num_replicas = 1 : i32}} {{\n{body}\n}}\n")
