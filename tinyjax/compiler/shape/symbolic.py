"""Integer index expressions with eager simplification and range analysis.

Every expression is an immutable, hashable :class:`Node` that knows its inclusive value
range ``[vmin, vmax]``.  Nodes are only built through smart constructors (the arithmetic
operators on nodes, or :func:`add`, :func:`mul`, :func:`floordiv`, :func:`mod`, :func:`lt`,
:func:`and_` ...), which simplify eagerly.  The node kinds are

* :class:`Const`   an integer constant
* :class:`Var`     a loop index with an inclusive range ``[min, max]``
* :class:`Mul`     ``x * c`` for an atom ``x`` and an integer ``c`` not in {0, 1}
* :class:`Sum`     ``sum(atom_i * c_i) + const`` (a canonical linear combination)
* :class:`Div`     ``x // c`` (floor division, ``c >= 2``)
* :class:`Mod`     ``x % c``  (floor modulo, ``c >= 2``; result in ``[0, c)``)
* :class:`Lt`      ``a < b`` as 0/1, one side a constant
* :class:`And`     logical and of conditions, as 0/1

"Atoms" are the non-linear kinds (Var, Div, Mod, Lt, And); Mul and Sum only ever hold atoms.

Division and modulo have Python (floor) semantics everywhere: in :func:`evaluate` and in
:func:`render`, which emits C that is exact also when the dividend can be negative.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Union

import numpy as np

__all__ = [
    "Node", "Const", "Var", "Mul", "Sum", "Div", "Mod", "Lt", "And",
    "sint", "to_node", "add", "sub", "mul", "floordiv", "mod",
    "lt", "le", "gt", "ge", "and_",
    "RenderStyle", "C_STYLE", "CUDA_STYLE", "render", "substitute", "evaluate",
    "as_affine", "as_bounds", "linear_terms", "simplify_given",
]


def _as_int(v, what: str = "value") -> int:
    if isinstance(v, (bool, int, np.integer)):
        return int(v)
    raise TypeError(f"symbolic: expected an integer {what}, got {type(v).__name__} {v!r}")


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NO_VARS = ((9, ""),)


def _natural(name: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", name))


class Node:
    """Base class of all index expressions (immutable, hashable, structural equality)."""

    __slots__ = ("vmin", "vmax", "_key", "_hash", "_fv")

    def _init(self, vmin: int, vmax: int, key: tuple, fv: tuple, hsh: Optional[int] = None):
        object.__setattr__(self, "vmin", int(vmin))
        object.__setattr__(self, "vmax", int(vmax))
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_fv", fv)
        object.__setattr__(self, "_hash", hash(key) if hsh is None else hsh)

    @classmethod
    def _raw(cls, *args):
        obj = object.__new__(cls)
        obj._setup(*args)
        return obj

    def __setattr__(self, k, v):
        raise AttributeError(f"{type(self).__name__} nodes are immutable")

    def __delattr__(self, k):
        raise AttributeError(f"{type(self).__name__} nodes are immutable")

    def __reduce__(self):  # pickling / copy go through the smart constructors
        return (_rebuild, (self._key,))

    # ---- equality / hashing -------------------------------------------------------------
    def __eq__(self, other):
        if self is other:
            return True
        if isinstance(other, Node):
            return self._hash == other._hash and self._key == other._key
        if isinstance(other, (int, np.integer)):
            return False
        return NotImplemented

    def __hash__(self):
        return self._hash

    def __bool__(self):
        raise TypeError(f"truth value of a symbolic expression is ambiguous: {self!r}")

    # ---- operators (all go through the smart constructors) -------------------------------
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return sub(self, o)
    def __rsub__(self, o): return sub(o, self)
    def __neg__(self): return mul(self, -1)
    def __mul__(self, o): return mul(self, o)
    def __rmul__(self, o): return mul(o, self)
    def __floordiv__(self, o): return floordiv(self, o)
    def __mod__(self, o): return mod(self, o)
    def __lt__(self, o): return lt(self, o)
    def __le__(self, o): return le(self, o)
    def __gt__(self, o): return gt(self, o)
    def __ge__(self, o): return ge(self, o)
    def __and__(self, o): return and_(self, o)
    def __rand__(self, o): return and_(o, self)

    def __rfloordiv__(self, o):
        raise TypeError("symbolic: only division by a positive integer constant is supported")

    def __rmod__(self, o):
        raise TypeError("symbolic: only modulo by a positive integer constant is supported")

    # ---- conveniences ---------------------------------------------------------------------
    def render(self, style: Union[None, str, "RenderStyle"] = None) -> str:
        return render(self, style)

    def substitute(self, mapping) -> "Node":
        return substitute(self, mapping)

    def evaluate(self, env):
        return evaluate(self, env)

    def vars(self) -> frozenset:
        """The set of :class:`Var` nodes this expression depends on."""
        out: set = set()
        _collect_vars(self, out)
        return frozenset(out)

    def __str__(self):
        return render(self)

    def __repr__(self):
        return f"<{type(self).__name__} {render(self)} [{self.vmin}, {self.vmax}]>"


sint = Union[int, Node]


class Const(Node):
    """An integer constant."""

    __slots__ = ("value",)

    def __init__(self, value: int):
        self._setup(_as_int(value))

    def _setup(self, v):
        object.__setattr__(self, "value", v)
        self._init(v, v, (0, v), _NO_VARS, hash(v))

    def __eq__(self, other):
        if isinstance(other, (int, np.integer)) and not isinstance(other, Node):
            return self.value == int(other)
        return Node.__eq__(self, other)

    __hash__ = Node.__hash__

    def __bool__(self):
        return self.value != 0

    def __int__(self):
        return self.value

    def __index__(self):
        return self.value


class Var(Node):
    """A loop index taking integer values in the inclusive range ``[min, max]``."""

    __slots__ = ("name",)

    def __init__(self, name: str, min: int, max: int):  # noqa: A002 - mirrors the spec
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"Var: name must be a C identifier, got {name!r}")
        lo, hi = _as_int(min, "Var min"), _as_int(max, "Var max")
        if lo > hi:
            raise ValueError(f"Var: empty range [{lo}, {hi}] for {name!r}")
        self._setup(name, lo, hi)

    def _setup(self, name, lo, hi):
        object.__setattr__(self, "name", name)
        nat = _natural(name)
        self._init(lo, hi, (1, nat, name, lo, hi), nat)

    @property
    def min(self) -> int:
        return self.vmin

    @property
    def max(self) -> int:
        return self.vmax


class Mul(Node):
    """``x * c`` for an atom ``x`` and an integer ``c`` (built by :func:`mul`)."""

    __slots__ = ("x", "c")

    def __init__(self, *a, **k):
        raise TypeError("build products with `node * int` / mul()")

    def _setup(self, x, c):
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "c", c)
        lo, hi = x.vmin * c, x.vmax * c
        self._init(min(lo, hi), max(lo, hi), (2, x._key, c), x._fv)


class Sum(Node):
    """``sum(atom * coeff for atom, coeff in terms) + const`` (built by :func:`add`)."""

    __slots__ = ("terms", "const")

    def __init__(self, *a, **k):
        raise TypeError("build sums with `a + b` / add()")

    def _setup(self, terms, const):
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "const", const)
        lo = hi = const
        for a, c in terms:
            x, y = a.vmin * c, a.vmax * c
            lo += min(x, y)
            hi += max(x, y)
        self._init(lo, hi, (3, tuple((a._key, c) for a, c in terms), const), terms[0][0]._fv)


class Div(Node):
    """``x // c`` with floor semantics, ``c >= 2`` (built by :func:`floordiv`)."""

    __slots__ = ("x", "c")

    def __init__(self, *a, **k):
        raise TypeError("build divisions with `node // int` / floordiv()")

    def _setup(self, x, c):
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "c", c)
        self._init(x.vmin // c, x.vmax // c, (4, x._key, c), x._fv)


class Mod(Node):
    """``x % c`` with floor semantics (result in ``[0, c)``), ``c >= 2`` (built by :func:`mod`)."""

    __slots__ = ("x", "c")

    def __init__(self, *a, **k):
        raise TypeError("build modulos with `node % int` / mod()")

    def _setup(self, x, c):
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "c", c)
        self._init(0, c - 1, (5, x._key, c), x._fv)


class Lt(Node):
    """``a < b`` as 0/1; one of ``a``/``b`` is a :class:`Const` (built by :func:`lt`)."""

    __slots__ = ("a", "b")

    def __init__(self, *a, **k):
        raise TypeError("build comparisons with `a < b` / lt()")

    def _setup(self, a, b):
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        self._init(0, 1, (6, a._key, b._key), min(a._fv, b._fv))


class And(Node):
    """Logical and of conditions (nonzero = true), as 0/1 (built by :func:`and_`)."""

    __slots__ = ("conds",)

    def __init__(self, *a, **k):
        raise TypeError("build conjunctions with `a & b` / and_()")

    def _setup(self, conds):
        object.__setattr__(self, "conds", conds)
        self._init(0, 1, (7, tuple(c._key for c in conds)), min(c._fv for c in conds))


def _rebuild(key):
    kind = key[0]
    if kind == 0:
        return Const(key[1])
    if kind == 1:
        return Var(key[2], key[3], key[4])
    if kind == 2:
        return mul(_rebuild(key[1]), key[2])
    if kind == 3:
        return add(*(mul(_rebuild(k), c) for k, c in key[1]), key[2])
    if kind == 4:
        return floordiv(_rebuild(key[1]), key[2])
    if kind == 5:
        return mod(_rebuild(key[1]), key[2])
    if kind == 6:
        return lt(_rebuild(key[1]), _rebuild(key[2]))
    return and_(*(_rebuild(k) for k in key[1]))


def _collect_vars(n: Node, out: set):
    if isinstance(n, Var):
        out.add(n)
    elif isinstance(n, (Mul, Div, Mod)):
        _collect_vars(n.x, out)
    elif isinstance(n, Sum):
        for a, _ in n.terms:
            _collect_vars(a, out)
    elif isinstance(n, Lt):
        _collect_vars(n.a, out)
        _collect_vars(n.b, out)
    elif isinstance(n, And):
        for c in n.conds:
            _collect_vars(c, out)


# ---------------------------------------------------------------------------------------------
# smart constructors
# ---------------------------------------------------------------------------------------------

def to_node(x: sint) -> Node:
    """Wrap an int as :class:`Const`; nodes pass through."""
    if isinstance(x, Node):
        return x
    return Const(_as_int(x))


def _lin(n: Node) -> tuple[dict, int]:
    """Linear form of ``n``: ({atom: coeff}, const)."""
    if isinstance(n, Const):
        return {}, n.value
    if isinstance(n, Mul):
        return {n.x: n.c}, 0
    if isinstance(n, Sum):
        return dict(n.terms), n.const
    return {n: 1}, 0


def _fold(n: Node) -> Node:
    return Const(n.vmin) if n.vmin == n.vmax else n


def _order(a: Node):
    return (a._fv, a._key)


def _digits(a: Node):
    """View Div/Mod atoms as a digit range of some x: (x, lo, hi) means (x // lo) % (hi // lo)."""
    if isinstance(a, Div):
        return a.x, a.c, None
    if isinstance(a, Mod):
        if isinstance(a.x, Div):
            return a.x.x, a.x.c, a.x.c * a.c
        return a.x, 1, a.c
    return None


def _from_digits(x: Node, lo: int, hi: Optional[int]) -> Node:
    if hi is None:
        return floordiv(x, lo)
    if lo == 1:
        return mod(x, hi)
    return mod(floordiv(x, lo), hi // lo)


def _merge_digits(terms: dict, const: int) -> tuple[dict, int]:
    """``((x//a) % b)*a*m + (x % a)*m -> (x % (a*b))*m``, ``(x//(a*b))*b + (x//a)%b -> x//a``
    and friends: adjacent digit ranges of the same x merge (valid for all integers x)."""
    while True:
        dig = [(a, c, d) for a, c in terms.items() if (d := _digits(a)) is not None]
        if len(dig) < 2:
            return terms, const
        merged = False
        for a1, c1, (x1, lo1, hi1) in dig:
            if hi1 is None:
                continue
            for a2, c2, (x2, lo2, hi2) in dig:
                # c1*digits(x, lo1, hi1) + c2*digits(x, hi1, hi2) with c2 == c1 * hi1/lo1
                if a2 is a1 or lo2 != hi1 or c2 * lo1 != c1 * lo2 or x1 != x2:
                    continue
                terms = dict(terms)
                del terms[a1], terms[a2]
                nt, nc = _lin(mul(_from_digits(x1, lo1, hi2), c1))
                for a, c in nt.items():
                    terms[a] = terms.get(a, 0) + c
                    if terms[a] == 0:
                        del terms[a]
                const += nc
                merged = True
                break
            if merged:
                break
        if not merged:
            return terms, const


def _build(terms: dict, const: int) -> Node:
    fixed = [a for a, c in terms.items() if a.vmin == a.vmax]
    if fixed:  # e.g. a Var with a single-value range
        terms = dict(terms)
        for a in fixed:
            const += a.vmin * terms.pop(a)
    terms = {a: c for a, c in terms.items() if c != 0}
    terms, const = _merge_digits(terms, const)
    if not terms:
        return Const(const)
    items = sorted(terms.items(), key=lambda t: _order(t[0]))
    if len(items) == 1 and const == 0:
        a, c = items[0]
        return a if c == 1 else _fold(Mul._raw(a, c))
    return _fold(Sum._raw(tuple(items), const))


def add(*xs: sint) -> Node:
    """Sum of any number of expressions; flattens, folds constants and combines like terms."""
    terms: dict = {}
    const = 0
    for x in xs:
        t, c = _lin(to_node(x))
        const += c
        for a, k in t.items():
            terms[a] = terms.get(a, 0) + k
    return _build(terms, const)


def sub(a: sint, b: sint) -> Node:
    return add(a, mul(b, -1))


def mul(x: sint, c: sint) -> Node:
    """Product of an expression and an integer constant (either argument order)."""
    x, c = to_node(x), to_node(c)
    if not isinstance(c, Const):
        if not isinstance(x, Const):
            raise TypeError(f"symbolic: only products with a constant are supported: ({x}) * ({c})")
        x, c = c, x
    k = c.value
    if k == 0:
        return Const(0)
    if k == 1:
        return x
    if isinstance(x, Const):
        return Const(x.value * k)
    t, c0 = _lin(x)
    return _build({a: v * k for a, v in t.items()}, c0 * k)


def _const_divisor(c: sint, op: str) -> int:
    if isinstance(c, Node):
        if not isinstance(c, Const):
            raise TypeError(f"symbolic: {op} by a non-constant expression {c} is not supported")
        c = c.value
    c = _as_int(c, f"{op} divisor")
    if c <= 0:
        raise ValueError(f"symbolic: {op} needs a positive divisor, got {c}")
    return c


def floordiv(x: sint, c: sint) -> Node:
    """Floor division by a positive integer constant, simplified."""
    c = _const_divisor(c, "floordiv")
    x = to_node(x)
    if c == 1:
        return x
    if isinstance(x, Const):
        return Const(x.value // c)
    if x.vmin // c == x.vmax // c:
        return Const(x.vmin // c)
    if isinstance(x, Div):  # (y // a) // c -> y // (a*c)
        return floordiv(x.x, x.c * c)
    if isinstance(x, Mod) and x.c % c == 0:  # (y % (c*m)) // c -> (y // c) % m
        return mod(floordiv(x.x, c), x.c // c)
    if isinstance(x, (Sum, Mul)):
        terms, k = _lin(x)
        quot = {a: v // c for a, v in terms.items() if v % c == 0}
        q, r = divmod(k, c)
        if quot or q:  # (a*c*m + rest + q*c + r) // c -> a*m + q + (rest + r) // c
            rest = {a: v for a, v in terms.items() if v % c}
            return add(_build(quot, q), floordiv(_build(rest, r), c))
        g = math.gcd(c, *terms.values())
        if g > 1:  # (g*R + r) // (g*c') -> (R + r // g) // c'
            return floordiv(_build({a: v // g for a, v in terms.items()}, k // g), c // g)
        split = _small_rest(terms, k, c)
        if split is not None:  # (g*R + rest) // (g*c') -> R // c' where 0 <= rest < g
            g, big, _ = split
            return floordiv(big, c // g)
    return _fold(Div._raw(x, c))


def _small_rest(terms: dict, k: int, c: int) -> "Optional[tuple[int, Node, Node]]":
    """``(g, R, rest)`` with ``sum(terms) + k == g*R + rest``, ``g`` a divisor of ``c`` (the
    largest that works) and ``0 <= rest < g``: a flattened index ``64*i + j`` with
    ``j < 64`` divided by, or taken modulo, a multiple of 64."""
    for g in sorted({math.gcd(c, v) for v in terms.values()} - {1}, reverse=True):
        rest = _build({a: v for a, v in terms.items() if v % g}, k % g)
        if rest.vmin >= 0 and rest.vmax < g:
            return g, _build({a: v // g for a, v in terms.items() if v % g == 0}, k // g), rest
    return None


def mod(x: sint, c: sint) -> Node:
    """Floor modulo by a positive integer constant, simplified."""
    c = _const_divisor(c, "mod")
    x = to_node(x)
    if c == 1:
        return Const(0)
    if isinstance(x, Const):
        return Const(x.value % c)
    if x.vmin // c == x.vmax // c:  # x lies in one period: x % c == x - period_start
        return add(x, -(x.vmin // c) * c)
    if isinstance(x, Mod) and x.c % c == 0:  # (y % (c*m)) % c -> y % c
        return mod(x.x, c)
    if isinstance(x, (Sum, Mul)):
        terms, k = _lin(x)
        new = {}
        changed = not 0 <= k < c
        for a, v in terms.items():
            if v % c == 0:
                changed = True
            elif v > c:
                new[a] = v % c
                changed = True
            else:
                new[a] = v
        if changed:
            return mod(_build(new, k % c), c)
        g = math.gcd(c, *terms.values())
        if g > 1:  # (g*R + k) % (g*c') -> g*((R + k//g) % c') + k % g
            inner = mod(_build({a: v // g for a, v in terms.items()}, k // g), c // g)
            return add(mul(inner, g), k % g)
        split = _small_rest(terms, k, c)
        if split is not None:  # (g*R + rest) % (g*c') -> g*(R % c') + rest, 0 <= rest < g
            g, big, rest = split
            return add(mul(mod(big, c // g), g), rest)
    return _fold(Mod._raw(x, c))


def _lt_upper(u: Node, n: int) -> Node:
    """``u < n``"""
    if u.vmax < n:
        return Const(1)
    if u.vmin >= n:
        return Const(0)
    if isinstance(u, Div):  # x // c < n  <=>  x < n*c
        return lt(u.x, n * u.c)
    return Lt._raw(u, Const(n))


def _lt_lower(n: int, u: Node) -> Node:
    """``n < u``"""
    if u.vmin > n:
        return Const(1)
    if u.vmax <= n:
        return Const(0)
    if isinstance(u, Div):  # n < x // c  <=>  (n+1)*c - 1 < x
        return lt((n + 1) * u.c - 1, u.x)
    return Lt._raw(Const(n), u)


def lt(a: sint, b: sint) -> Node:
    """``a < b`` as a 0/1 expression; decided from the ranges when possible, else normalised
    to ``U < n`` or ``n < U`` with U a linear form whose coefficients have gcd 1 and whose
    first term is positive."""
    d = sub(a, b)
    if d.vmax < 0:
        return Const(1)
    if d.vmin >= 0:
        return Const(0)
    terms, k = _lin(d)
    g = math.gcd(*terms.values())
    first = min(terms, key=_order)
    if terms[first] > 0:  # T + k < 0  <=>  T/g < ceil(-k/g)
        return _lt_upper(_build({t: v // g for t, v in terms.items()}, 0), -(k // g))
    # T + k < 0  <=>  (-T)/g > k/g  <=>  floor(k/g) < (-T)/g
    return _lt_lower(k // g, _build({t: -v // g for t, v in terms.items()}, 0))


def le(a: sint, b: sint) -> Node:
    return lt(a, add(b, 1))


def gt(a: sint, b: sint) -> Node:
    return lt(b, a)


def ge(a: sint, b: sint) -> Node:
    return lt(b, add(a, 1))


def and_(*conds: sint) -> Node:
    """Logical and of conditions (nonzero is true), always 0/1; folds constants, drops
    conditions that are always true, merges bounds on the same linear form and detects empty
    intervals.  Operands must be of one sign (a non-0/1 operand ``n >= 0`` becomes ``0 < n``);
    an operand that may be both negative and positive raises ValueError."""
    flat: list = []
    for c in conds:
        c = to_node(c)
        if isinstance(c, And):
            flat.extend(c.conds)
        else:
            flat.append(c)
    uppers: dict = {}
    lowers: dict = {}
    order: list = []
    others: dict = {}
    for c in flat:
        if c.vmin > 0 or c.vmax < 0:
            continue  # always true (nonzero)
        if c.vmin == c.vmax == 0:
            return Const(0)
        if c.vmin < 0 < c.vmax:
            raise ValueError(f"and_: operand {c} is not a condition (it may be negative or positive)")
        if c.vmin < 0:
            c = lt(c, 0)  # nonzero <=> negative
        elif c.vmax > 1:
            c = lt(0, c)  # nonzero <=> positive
        if isinstance(c, Lt):
            if isinstance(c.b, Const):
                u, n = c.a, c.b.value
                uppers[u] = min(uppers.get(u, n), n)
            else:
                u, n = c.b, c.a.value
                lowers[u] = max(lowers.get(u, n), n)
            if u not in order:
                order.append(u)
        else:
            others[c] = None
    out: dict = dict(others)
    for u in order:
        lo, hi = lowers.get(u), uppers.get(u)
        if lo is not None and hi is not None and hi - lo < 2:
            return Const(0)
        for cond in ((_lt_lower(lo, u) if lo is not None else None),
                     (_lt_upper(u, hi) if hi is not None else None)):
            if cond is None:
                continue
            if isinstance(cond, Const):
                if cond.value == 0:
                    return Const(0)
                continue
            out[cond] = None
    if not out:
        return Const(1)
    items = sorted(out, key=_order)
    if len(items) == 1:
        return items[0]
    return And._raw(tuple(items))


# ---------------------------------------------------------------------------------------------
# substitution, evaluation, rendering
# ---------------------------------------------------------------------------------------------

def substitute(expr: sint, mapping: Mapping) -> Node:
    """Replace variables (keys: :class:`Var` or variable name) by expressions or ints and
    re-simplify."""
    m = {}
    for k, v in mapping.items():
        m[k.name if isinstance(k, Var) else k] = to_node(v)
    cache: dict = {}

    def go(n: Node) -> Node:
        r = cache.get(n)
        if r is not None:
            return r
        if isinstance(n, Var):
            r = m.get(n.name, n)
        elif isinstance(n, Const):
            r = n
        elif isinstance(n, Mul):
            r = mul(go(n.x), n.c)
        elif isinstance(n, Sum):
            r = add(*(mul(go(a), c) for a, c in n.terms), n.const)
        elif isinstance(n, Div):
            r = floordiv(go(n.x), n.c)
        elif isinstance(n, Mod):
            r = mod(go(n.x), n.c)
        elif isinstance(n, Lt):
            r = lt(go(n.a), go(n.b))
        elif isinstance(n, And):
            r = and_(*(go(c) for c in n.conds))
        else:  # pragma: no cover
            raise TypeError(f"substitute: unknown node {n!r}")
        cache[n] = r
        return r

    return go(to_node(expr))


def _truth(v):
    if isinstance(v, np.ndarray):
        return v.astype(np.int64)
    return int(bool(v))


def evaluate(expr: sint, env: Mapping):
    """Evaluate with floor semantics.  ``env`` maps variable names (or :class:`Var`) to ints or
    integer numpy arrays (broadcast together).  Returns an int or an int64 array."""
    vals = {}
    for k, v in env.items():
        name = k.name if isinstance(k, Var) else k
        vals[name] = np.asarray(v, dtype=np.int64) if isinstance(v, (np.ndarray, list, tuple)) else _as_int(v)

    def go(n: Node):
        if isinstance(n, Const):
            return n.value
        if isinstance(n, Var):
            try:
                return vals[n.name]
            except KeyError:
                raise KeyError(f"evaluate: no value for variable {n.name!r}") from None
        if isinstance(n, Mul):
            return go(n.x) * n.c
        if isinstance(n, Sum):
            acc = n.const
            for a, c in n.terms:
                acc = acc + go(a) * c
            return acc
        if isinstance(n, Div):
            return go(n.x) // n.c
        if isinstance(n, Mod):
            return go(n.x) % n.c
        if isinstance(n, Lt):
            return _truth(go(n.a) < go(n.b))
        if isinstance(n, And):
            acc = 1
            for c in n.conds:
                acc = acc * _truth(go(c) != 0)
            return acc
        raise TypeError(f"evaluate: unknown node {n!r}")  # pragma: no cover

    return go(to_node(expr))


@dataclass(frozen=True)
class RenderStyle:
    """Hooks for :func:`render`.  C and CUDA share the syntax; a style may rename variables
    (e.g. to ``gidx0``) or print integer literals differently (e.g. with an ``LL`` suffix)."""

    name: str = "c"
    var_name: Optional[Callable[[str], str]] = None
    int_literal: Callable[[int], str] = str
    and_op: str = "&&"


C_STYLE = RenderStyle("c")
CUDA_STYLE = RenderStyle("cuda")

_P_AND, _P_ADD, _P_MUL, _P_ATOM = 0, 2, 3, 4


def render(expr: sint, style: Union[None, str, RenderStyle] = None) -> str:
    """Render as a C/CUDA integer expression.  Floor division/modulo are emitted as ``/`` and
    ``%`` when the dividend is provably non-negative, otherwise shifted by a multiple of the
    divisor into the non-negative range first (``((x+K)/c-k)``), so the result is exact for
    every value in the variables' ranges.  Comparisons and conjunctions are parenthesised;
    a top-level sum is not (wrap it yourself when embedding it in a larger arithmetic
    expression)."""
    if style is None or style == "c":
        st = C_STYLE
    elif style == "cuda":
        st = CUDA_STYLE
    elif isinstance(style, RenderStyle):
        st = style
    else:
        raise ValueError(f"render: unknown style {style!r}")
    lit = st.int_literal

    def wrap(n: Node, prec: int) -> str:
        s, p = go(n)
        return f"({s})" if p < prec else s

    def term(a: Node, c: int, negated: bool = False) -> str:  # c > 0
        if c != 1:
            return f"{wrap_tight(a)}*{lit(c)}"
        return wrap(a, _P_MUL if negated else _P_ADD)

    def wrap_tight(a: Node) -> str:  # operand of * / %: parenthesise anything compound
        s, p = go(a)
        return s if p >= _P_ATOM else f"({s})"

    def go(n: Node) -> tuple[str, int]:
        if isinstance(n, Const):
            return lit(n.value), _P_ATOM
        if isinstance(n, Var):
            return (st.var_name(n.name) if st.var_name else n.name), _P_ATOM
        if isinstance(n, Mul):
            return f"{wrap_tight(n.x)}*{lit(n.c)}", _P_MUL
        if isinstance(n, Sum):
            pos = [(a, c) for a, c in n.terms if c > 0]
            neg = [(a, -c) for a, c in n.terms if c < 0]
            parts: list = []
            if pos:
                parts.append(term(*pos[0]))
                parts.extend("+" + term(a, c) for a, c in pos[1:])
            elif n.const > 0:
                parts.append(lit(n.const))
            else:
                a, c = neg.pop(0)
                s = term(a, c)
                parts.append("-" + (s if c == 1 and isinstance(a, Var) else f"({s})"))
            parts.extend("-" + term(a, c, True) for a, c in neg)
            if pos or n.const <= 0:
                if n.const > 0:
                    parts.append("+" + lit(n.const))
                elif n.const < 0:
                    parts.append("-" + lit(-n.const))
            return "".join(parts), _P_ADD
        if isinstance(n, (Div, Mod)):
            op = "/" if isinstance(n, Div) else "%"
            if n.x.vmin >= 0:
                return f"{wrap_tight(n.x)}{op}{lit(n.c)}", _P_MUL
            k = -(n.x.vmin // n.c)  # ceil(-vmin / c): shift the dividend to be >= 0
            shifted = go(add(n.x, k * n.c))[0]
            if isinstance(n, Div):
                return f"({shifted})/{lit(n.c)}-{lit(k)}", _P_ADD
            return f"({shifted})%{lit(n.c)}", _P_MUL
        if isinstance(n, Lt):
            return f"({wrap(n.a, _P_ADD)}<{wrap(n.b, _P_ADD)})", _P_ATOM
        if isinstance(n, And):
            return "(" + st.and_op.join(wrap(c, _P_ATOM) for c in n.conds) + ")", _P_ATOM
        raise TypeError(f"render: unknown node {n!r}")  # pragma: no cover

    return go(to_node(expr))[0]


# ---------------------------------------------------------------------------------------------
# structural queries used by the view machinery
# ---------------------------------------------------------------------------------------------

def linear_terms(expr: sint) -> tuple[dict, int]:
    """``({atom: coeff}, const)``: the canonical linear form of ``expr`` (atoms are Var, Div,
    Mod, Lt and And nodes)."""
    return _lin(to_node(expr))


def magnitude(expr: sint) -> int:
    """A bound on the absolute value of ``expr`` and of every partial result computing it
    (what a fixed-width integer type must hold to evaluate it)."""
    n = to_node(expr)
    if isinstance(n, Const):
        return abs(n.value)
    if isinstance(n, Var):
        return max(abs(n.vmin), abs(n.vmax))
    if isinstance(n, Mul):
        return abs(n.c) * magnitude(n.x)
    if isinstance(n, Sum):
        return sum(abs(c) * magnitude(a) for a, c in n.terms) + abs(n.const)
    if isinstance(n, (Div, Mod)):
        return max(magnitude(n.x), n.c)
    if isinstance(n, Lt):
        return magnitude(n.a) + magnitude(n.b)
    if isinstance(n, And):
        return max(magnitude(c) for c in n.conds)
    raise TypeError(f"magnitude: unknown node {n!r}")  # pragma: no cover


def as_affine(expr: sint) -> Optional[tuple[dict, int]]:
    """``({Var: coeff}, const)`` if ``expr`` is an affine function of variables, else None."""
    expr = to_node(expr)
    terms, k = _lin(expr)
    if any(not isinstance(a, Var) for a in terms):
        return None
    return dict(terms), k


def as_bounds(cond: sint) -> Optional[dict]:
    """``{Var: (lo, hi)}`` (meaning ``lo <= var < hi``; ``None`` for an open side) if ``cond`` is
    a conjunction of single-variable bounds (``Const(1)`` gives ``{}``), else None."""
    cond = to_node(cond)
    if isinstance(cond, Const):
        return {} if cond.value != 0 else None
    conds = cond.conds if isinstance(cond, And) else (cond,)
    out: dict = {}
    for c in conds:
        if not isinstance(c, Lt):
            return None
        if isinstance(c.a, Var) and isinstance(c.b, Const):
            v, lo, hi = c.a, None, c.b.value
        elif isinstance(c.b, Var) and isinstance(c.a, Const):
            v, lo, hi = c.b, c.a.value + 1, None
        else:
            return None
        olo, ohi = out.get(v, (None, None))
        lo = olo if lo is None else (lo if olo is None else max(lo, olo))
        hi = ohi if hi is None else (hi if ohi is None else min(hi, ohi))
        out[v] = (lo, hi)
    return out


def _divmods(n: Node) -> int:
    """How many divisions and modulos ``n`` computes."""
    if isinstance(n, (Div, Mod)):
        return 1 + _divmods(n.x)
    if isinstance(n, Mul):
        return _divmods(n.x)
    if isinstance(n, Sum):
        return sum(_divmods(a) for a, _ in n.terms)
    if isinstance(n, Lt):
        return _divmods(n.a) + _divmods(n.b)
    if isinstance(n, And):
        return sum(_divmods(c) for c in n.conds)
    return 0


def simplify_given(expr: sint, valid: sint) -> Node:
    """``expr`` simplified for the points where ``valid`` holds (a masked load's address).

    Each linear form ``U`` that ``valid`` bounds (``lo <= U <= hi``) stands in for a fresh
    variable of exactly that range while ``expr`` re-simplifies: one of U's variables with
    coefficient +-1 is replaced by the fresh variable minus the rest of U, and U is put back at
    the end.  A padded window's address ``((h + kh + 26) % 28) * 896``, with ``valid`` saying
    ``1 <= h + kh <= 28``, becomes ``(h + kh - 1) * 896``.  Returns whichever of the two has
    fewer divisions and modulos (``expr`` on a tie)."""
    expr, valid = to_node(expr), to_node(valid)
    if isinstance(valid, Const) or not _divmods(expr):
        return expr
    bounds: dict = {}
    for c in valid.conds if isinstance(valid, And) else (valid,):
        if not isinstance(c, Lt):
            continue
        if isinstance(c.b, Const):
            u, lo, hi = c.a, c.a.vmin, c.b.value - 1
        elif isinstance(c.a, Const):
            u, lo, hi = c.b, c.a.value + 1, c.b.vmax
        else:
            continue
        olo, ohi = bounds.get(u, (u.vmin, u.vmax))
        bounds[u] = (max(lo, olo), min(hi, ohi))
    new, back = expr, {}
    for j, (u, (lo, hi)) in enumerate(bounds.items()):
        terms, k = _lin(u)
        pivots = [a for a in sorted(terms, key=_order) if isinstance(a, Var) and abs(terms[a]) == 1]
        if lo > hi or not pivots:
            continue
        x = pivots[0]
        fresh = Var(f"tj_given{j}", lo, hi)
        rest = _build({a: v for a, v in terms.items() if a != x}, k)
        new = substitute(new, {x: mul(sub(fresh, rest), terms[x])})  # x = +-(U - rest)
        back[fresh.name] = u
    if not back:
        return expr
    new = substitute(new, back)
    return new if _divmods(new) < _divmods(expr) else expr
