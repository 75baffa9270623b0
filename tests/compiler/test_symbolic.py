"""Tests for tinyjax.compiler.shape.symbolic: simplification rules, range analysis, rendering."""

import os
import random
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from tinyjax.compiler.shape.symbolic import (And, CUDA_STYLE, Const, Div, Lt, Mod, Mul, Node,
                                             RenderStyle, Sum, Var, add, and_, as_affine, as_bounds,
                                             evaluate, ge, gt, le, linear_terms, render,
                                             simplify_given, substitute, to_node)

a = Var("a", 0, 3)
b = Var("b", 0, 3)
c = Var("c", 0, 9)
x = Var("x", -5, 20)
i0 = Var("idx0", 0, 2)
i1 = Var("idx1", 0, 3)


def brute_check(expr: Node, ref, vs):
    """evaluate(expr) == ref(point) on every point of the variables' ranges."""
    grids = np.meshgrid(*[np.arange(v.vmin, v.vmax + 1) for v in vs], indexing="ij")
    env = {v.name: g for v, g in zip(vs, grids)}
    got = np.broadcast_to(evaluate(expr, env), grids[0].shape if grids else ())
    for pos in np.ndindex(*got.shape):
        pt = {v.name: int(g[pos]) for v, g in zip(vs, grids)}
        assert got[pos] == ref(pt), (render(expr), pt, got[pos], ref(pt))
        assert expr.vmin <= got[pos] <= expr.vmax, (render(expr), pt, expr.vmin, expr.vmax)


# ------------------------------------------------------------------------------------------
# construction, folding, canonical form
# ------------------------------------------------------------------------------------------

def test_constant_folding():
    assert add(2, 3) == Const(5)
    assert Const(2) + 3 == 5
    assert Const(7) // 2 == 3
    assert Const(-7) // 2 == -4       # floor semantics
    assert Const(-7) % 3 == 2         # floor semantics
    assert Const(3) * -2 == -6
    assert (Const(3) < 4) == 1 and (Const(4) < 4) == 0
    assert isinstance(Const(2) + 3, Const)
    assert a * 0 == 0 and isinstance(a * 0, Const)
    assert a * 1 is a and a + 0 is a and a // 1 is a
    assert a % 1 == 0


def test_sum_flatten_and_collect_like_terms():
    e = a * 2 + a * 3
    assert isinstance(e, Mul) and e.x == a and e.c == 5
    assert (a + b) + (a - b) == a * 2
    assert a - a == 0
    assert (a + 1) + (b + 2) + 3 == a + b + 6
    assert isinstance(a + b + 6, Sum) and (a + b + 6).const == 6
    assert (a + b) * 3 == a * 3 + b * 3           # products distribute over sums
    assert (a * 2) * 3 == a * 6
    assert -(a - b) == b - a
    assert 3 - a == -a + 3
    # commutative / associative construction gives identical nodes
    assert a + b == b + a and hash(a + b) == hash(b + a)
    assert (a + (b + c)) == ((c + a) + b)


def test_range_analysis():
    assert (a * 4 + b).vmin == 0 and (a * 4 + b).vmax == 15
    assert (a * -2).vmin == -6 and (a * -2).vmax == 0
    assert (x // 4).vmin == -2 and (x // 4).vmax == 5
    assert (x % 7).vmin == 0 and (x % 7).vmax == 6
    assert (a < 2).vmin == 0 and (a < 2).vmax == 1
    z = Var("z", 4, 4)
    assert z * 3 + 1 == 13           # a compound expression with a single possible value folds


def test_div_divides_out_multiple_terms():
    assert (a * 4 + b) // 4 == a                          # b in [0,3]
    assert (a * 4 + b + 8) // 4 == a + 2
    assert (a * 8 + b) // 4 == a * 2
    assert (a * 4 + c) // 4 == a + c // 4                 # c in [0,9]: remainder stays
    assert (a * 12 + b * 4 + 3) // 4 == a * 3 + b
    assert (i0 * 4 + i1) // 4 == i0


def test_div_gcd():
    assert (a * 6) // 4 == (a * 3) // 2
    assert (a * 4 + b * 2) // 8 == (a * 2 + b) // 4
    assert (c * 2 + 1) // 4 == c // 2          # floor((2c+1)/4) == floor(c/2)


def test_div_nested_and_small():
    assert (c // 2) // 3 == c // 6
    assert (x // 2) // 2 == x // 4
    assert b // 4 == 0                      # 0 <= b < 4
    assert (b + 4) // 4 == 1
    assert (x + 5) // 26 == 0
    assert isinstance(c // 4, Div)
    assert (c % 12) // 4 == (c // 4) % 3    # digit extraction is canonicalised
    assert (c % 4) // 8 == 0


def test_mod_rules():
    assert b % 4 == b                          # 0 <= b < 4
    assert (b + 4) % 4 == b                    # one period: shift
    assert (a * 4 + c) % 4 == c % 4            # (a*m + c) % m -> c % m
    assert (a * 4 + b) % 4 == b
    assert (a * 8 + c + 5) % 4 == (c + 1) % 4
    assert (a * 5 + c) % 4 == (a + c) % 4      # coefficients reduced mod m
    assert (c * 2) % 4 == (c % 2) * 2          # gcd rule
    assert (c * 2 + 1) % 4 == (c % 2) * 2 + 1
    assert isinstance(c % 4, Mod)


def test_nested_mod_divisible_moduli():
    assert (c % 8) % 4 == c % 4
    assert (x % 12) % 3 == x % 3
    assert (c % 4) % 8 == c % 4
    assert (c % 3) % 2 != c % 2                # non-divisible moduli are kept
    assert isinstance((c % 3) % 2, Mod)


def test_digit_recombination():
    f = Var("f", 0, 23)
    assert (f // 6) * 6 + f % 6 == f
    assert ((f // 4) % 3) * 4 + f % 4 == f % 12
    assert (f // 12) * 12 + ((f // 4) % 3) * 4 + f % 4 == f
    assert ((f // 2) % 3) * 2 + f % 2 == f % 6
    assert (f // 12) * 3 + (f // 4) % 3 == f // 4
    assert 2 * ((f // 6) * 6 + f % 6) == f * 2
    g = Var("g", -7, 30)                        # valid for negative values too (floor semantics)
    assert (g // 5) * 5 + g % 5 == g


def test_lt_decided_from_range():
    assert (a < 4) == 1
    assert (a < 0) == 0
    assert (a < 3) == Lt._raw(a, Const(3))
    assert (a >= 0) == 1 and (a > 3) == 0 and (a <= 3) == 1
    assert (a * 4 + b < 16) == 1
    assert (x < -5) == 0


def test_lt_normalisation():
    assert (a * 4 < 8) == (a < 2)
    assert (a * 4 < 7) == (a < 2)
    assert (x // 4 < 2) == (x < 8)
    assert (2 < x // 4) == (11 < x)
    assert (x >= 3) == (2 < x)
    assert (-x + 2 < 0) == (2 < x)
    assert (a < b) == (b > a)
    assert (a - b < 0) == (a < b)
    assert isinstance(ge(x, 3), Lt) and isinstance(le(x, 3), Lt) and isinstance(gt(x, 3), Lt)


def test_and_rules():
    assert and_() == 1
    assert and_(1, a < 3) == (a < 3)
    assert and_(0, a < 3) == 0
    assert (a < 3) & (a < 2) == (a < 2)
    assert (a < 2) & (a > 2) == 0                 # empty interval
    assert ((a > 0) & (a < 3)) == ((a < 3) & (a > 0))
    e = (a > 0) & (a < 3) & (b < 2)
    assert isinstance(e, And) and len(e.conds) == 3
    assert and_(e, a < 3) == e                    # flattening + dedupe
    assert (a < 3) & (a >= 0) == (a < 3)          # always-true dropped
    assert and_(c, a < 2) == (c > 0) & (a < 2)    # a non-negative operand n means 0 < n
    assert and_(Var("n", -3, 0)) == (Var("n", -3, 0) < 0)
    assert and_(Var("p", 2, 5)) == 1
    with pytest.raises(ValueError):
        and_(x)                                   # x may be negative or positive


def test_hash_immutability_equality():
    e1 = (a * 4 + b) % 3
    e2 = (b + a * 4) % 3
    assert e1 == e2 and hash(e1) == hash(e2)
    assert len({e1, e2, a, Var("a", 0, 3)}) == 2
    assert Var("a", 0, 3) != Var("a", 0, 4)
    with pytest.raises(AttributeError):
        a.vmin = 3
    with pytest.raises(AttributeError):
        e1.c = 5
    with pytest.raises(TypeError):
        bool(a < 2)
    with pytest.raises(TypeError):
        Sum((a, 1), 0)
    import copy
    import pickle
    assert copy.deepcopy(e1) == e1 and pickle.loads(pickle.dumps(e1)) == e1
    assert Const(3) == 3 and hash(Const(3)) == hash(3)


def test_errors():
    with pytest.raises(ValueError):
        a // 0
    with pytest.raises(ValueError):
        a % -2
    with pytest.raises(TypeError):
        a * b
    with pytest.raises(TypeError):
        a // b
    with pytest.raises(TypeError):
        3 // a
    with pytest.raises(ValueError):
        Var("bad name", 0, 3)
    with pytest.raises(ValueError):
        Var("v", 3, 2)
    with pytest.raises(TypeError):
        a + 1.5


def test_substitute():
    j = Var("j", 0, 5)
    e = (a * 4 + b) // 4
    assert substitute(a * 4 + b, {a: j, "b": 3}) == j * 4 + 3
    assert substitute(c % 4, {c: j * 4 + 1}) == 1
    assert substitute(c // 2, {"c": 7}) == 3
    assert substitute(e, {}) == e
    assert substitute((c < 5) & (c > 1), {c: b}) == (b > 1)
    assert substitute(x // 3, {x: Var("y", 0, 2)}) == 0   # re-simplified with the new range


def test_evaluate_numpy_floor_semantics():
    xs = np.arange(-5, 21)
    assert (evaluate(x // 4, {"x": xs}) == xs // 4).all()
    assert (evaluate(x % 4, {x: xs}) == xs % 4).all()
    assert evaluate(x // 4, {"x": -5}) == -2
    got = evaluate((a < 2) & (b > 0), {"a": np.arange(4)[:, None], "b": np.arange(4)[None, :]})
    assert got.shape == (4, 4) and (got == (np.arange(4)[:, None] < 2) & (np.arange(4)[None] > 0)).all()
    assert evaluate(Const(7), {}) == 7
    with pytest.raises(KeyError):
        evaluate(a + 1, {})


def test_as_affine_and_bounds():
    assert as_affine(a * 3 + b - 2) == ({a: 3, b: 1}, -2)
    assert as_affine(a // 2) is None
    assert as_affine(5) == ({}, 5)
    assert as_bounds((a > 0) & (a < 3) & (b < 2)) == {a: (1, 3), b: (None, 2)}
    assert as_bounds(Const(1)) == {}
    assert as_bounds(a + b < 3) is None
    assert linear_terms(a * 3 + (c // 2) + 1) == ({a: 3, c // 2: 1}, 1)


# ------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------

def test_simplify_given_a_padded_window():
    """The address of a 3x3 window of a SAME-padded NHWC image (28x28x32), as the views'
    reshapes compose it: exact wherever the padding mask holds, and affine there."""
    n, h, w, ch = Var("n", 0, 63), Var("h", 0, 27), Var("w", 0, 27), Var("c", 0, 31)
    kh, kw = Var("kh", 0, 2), Var("kw", 0, 2)
    addr = (n * 25088 + ((h * 896 + w * 32 + ch + kh * 896 + kw * 32 + 24160) // 25088) * 25088
            + ((h + (w * 32 + ch + kw * 32 + 864) // 896 + kh + 26) % 28) * 896
            + ((w + kw + 27) % 28) * 32 + ch - 25088)
    valid = and_(0 < h + kh, h + kh < 29, 0 < w + kw, w + kw < 29)
    got = simplify_given(addr, valid)
    assert got == n * 25088 + (h + kh - 1) * 896 + (w + kw - 1) * 32 + ch
    assert simplify_given(addr, Const(1)) is addr  # nothing assumed: unchanged


def test_render_contiguous_index():
    assert render(i0 * 4 + i1) == "idx0*4+idx1"
    assert render(i1 + i0 * 4) == "idx0*4+idx1"
    assert render(i0) == "idx0"
    assert render(Const(5)) == "5"
    w = Var("idx2", 0, 4)
    assert render(i0 * 20 + i1 * 5 + w) == "idx0*20+idx1*5+idx2"


def test_render_shapes():
    assert render(c // 4) == "c/4"
    assert render(c % 4) == "c%4"
    assert render((c + 3) // 4) == "(c+3)/4"
    assert render((c // 4) * 3) == "(c/4)*3"
    assert render(a - b) == "a-b"
    assert render(3 - a) == "3-a"
    assert render(-a - 2) == "-a-2"
    assert render(a < 3) == "(a<3)"
    assert render((a < 3) & (b > 0)) == "((a<3)&&(0<b))"
    assert render(i0 * 4 + i1, "cuda") == render(i0 * 4 + i1, CUDA_STYLE) == "idx0*4+idx1"
    st = RenderStyle("mine", var_name=lambda n: "g" + n, int_literal=lambda v: f"{v}LL", and_op=" && ")
    assert render(i0 * 4 + i1 + 1, st) == "gidx0*4LL+gidx1+1LL"
    assert render((a < 3) & (b > 0), st) == "((ga<3LL) && (0LL<gb))"
    assert str(i0 * 4 + i1) == "idx0*4+idx1"
    with pytest.raises(ValueError):
        render(a, "fortran")


def test_render_negative_division_is_floor():
    # the dividend can be negative: render shifts it into the non-negative range
    s = render(x // 4)
    assert s == "(x+8)/4-2"
    assert render(x % 4) == "(x+8)%4"
    for e in [x // 4, x % 4, (x - 7) // 3, (3 - x) % 5, b - x // 4, -(x // 4)]:
        check_c_semantics(e, [x, b])


class CInt:
    """Integer with C semantics for / and % (truncation), used to check rendered strings.

    Division/modulo by a non-negative dividend is all render should emit; assert it."""

    def __init__(self, v):
        self.v = int(v)

    @staticmethod
    def _v(o):
        return o.v if isinstance(o, CInt) else int(o)

    def __add__(self, o): return CInt(self.v + self._v(o))
    __radd__ = __add__
    def __sub__(self, o): return CInt(self.v - self._v(o))
    def __rsub__(self, o): return CInt(self._v(o) - self.v)
    def __mul__(self, o): return CInt(self.v * self._v(o))
    __rmul__ = __mul__
    def __neg__(self): return CInt(-self.v)

    def __truediv__(self, o):
        d = self._v(o)
        assert self.v >= 0 and d > 0, f"C division of a negative value {self.v}/{d}"
        return CInt(self.v // d)

    def __mod__(self, o):
        d = self._v(o)
        assert self.v >= 0 and d > 0, f"C modulo of a negative value {self.v}%{d}"
        return CInt(self.v % d)

    def __lt__(self, o): return CInt(self.v < self._v(o))
    def __gt__(self, o): return CInt(self.v > self._v(o))

    def __and__(self, o): return CInt(bool(self.v) and bool(self._v(o)))  # '&&'
    __rand__ = __and__


def c_eval(s: str, env: dict) -> int:
    return CInt._v(eval(s.replace("&&", "&"), {}, {k: CInt(v) for k, v in env.items()}))


def check_c_semantics(expr: Node, vs):
    s = render(expr)
    for pt in np.ndindex(*[v.vmax - v.vmin + 1 for v in vs]):
        env = {v.name: v.vmin + p for v, p in zip(vs, pt)}
        assert c_eval(s, env) == evaluate(expr, env), (s, env)


# ------------------------------------------------------------------------------------------
# property tests: random expression trees vs brute force
# ------------------------------------------------------------------------------------------

N_VARS = 3


def tree_strategy():
    leaf = st.one_of(
        st.tuples(st.just("var"), st.integers(0, N_VARS - 1)),
        st.tuples(st.just("const"), st.integers(-6, 6)),
    )

    def extend(children):
        cond = st.tuples(st.sampled_from(["lt", "ge"]), children, children)
        return st.one_of(
            st.tuples(st.just("add"), children, children),
            st.tuples(st.just("sub"), children, children),
            st.tuples(st.just("neg"), children),
            st.tuples(st.just("mul"), children, st.integers(-4, 4)),
            st.tuples(st.just("div"), children, st.integers(1, 7)),
            st.tuples(st.just("mod"), children, st.integers(1, 7)),
            st.tuples(st.just("lt"), children, children),
            st.tuples(st.just("ge"), children, children),
            st.tuples(st.just("and"), cond, cond),
        )

    return st.recursive(leaf, extend, max_leaves=10)


def build(t, vs):
    op = t[0]
    if op == "var":
        return vs[t[1]]
    if op == "const":
        return t[1]
    if op == "neg":
        return -to_node(build(t[1], vs))
    if op in ("mul", "div", "mod"):
        e = to_node(build(t[1], vs))
        return {"mul": lambda: e * t[2], "div": lambda: e // t[2], "mod": lambda: e % t[2]}[op]()
    l, r = to_node(build(t[1], vs)), build(t[2], vs)
    return {"add": lambda: l + r, "sub": lambda: l - r, "lt": lambda: l < r,
            "ge": lambda: l >= r, "and": lambda: l & r}[op]()


def ref_eval(t, pt):
    op = t[0]
    if op == "var":
        return pt[t[1]]
    if op == "const":
        return t[1]
    if op == "neg":
        return -ref_eval(t[1], pt)
    if op == "mul":
        return ref_eval(t[1], pt) * t[2]
    if op == "div":
        return ref_eval(t[1], pt) // t[2]
    if op == "mod":
        return ref_eval(t[1], pt) % t[2]
    l, r = ref_eval(t[1], pt), ref_eval(t[2], pt)
    return {"add": l + r, "sub": l - r, "lt": int(l < r), "ge": int(l >= r),
            "and": int(bool(l) and bool(r))}[op]


ranges = st.lists(st.tuples(st.integers(-4, 4), st.integers(0, 6)), min_size=N_VARS, max_size=N_VARS)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree_strategy(), ranges)
def test_property_simplified_matches_brute_force(tree, rngs):
    vs = [Var(f"v{k}", lo, lo + w) for k, (lo, w) in enumerate(rngs)]
    expr = to_node(build(tree, vs))
    brute_check(expr, lambda p: ref_eval(tree, [p[v.name] for v in vs]), vs)
    # simplification is idempotent: rebuilding through substitute gives the same node
    assert substitute(expr, {}) == expr


@settings(max_examples=150, deadline=None)
@given(tree_strategy(), ranges)
def test_property_render_has_c_semantics(tree, rngs):
    vs = [Var(f"v{k}", lo, lo + w) for k, (lo, w) in enumerate(rngs)]
    check_c_semantics(to_node(build(tree, vs)), vs)


@settings(max_examples=150, deadline=None)
@given(tree_strategy(), ranges, st.integers(1, 3))
def test_property_substitute(tree, rngs, step):
    vs = [Var(f"v{i}", lo, lo + wd) for i, (lo, wd) in enumerate(rngs)]
    expr = to_node(build(tree, vs))
    # substitute v0 := step*u + v0.min (u a fresh var whose values keep v0 inside its range;
    # simplifications are only valid inside the declared ranges) and compare pointwise
    w = (vs[0].vmax - vs[0].vmin) // step
    u = Var("u", 0, w)
    sub_expr = substitute(expr, {vs[0]: u * step + vs[0].vmin})
    for uu in range(w + 1):
        for p in np.ndindex(*[v.vmax - v.vmin + 1 for v in vs[1:]]):
            env = {v.name: v.vmin + q for v, q in zip(vs[1:], p)}
            want = ref_eval(tree, [step * uu + vs[0].vmin] + [env[v.name] for v in vs[1:]])
            assert evaluate(sub_expr, {**env, "u": uu}) == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree_strategy(), ranges, st.lists(st.tuples(st.integers(-2, 2), st.integers(-2, 2),
                                                   st.integers(-6, 6), st.integers(0, 6)),
                                         min_size=1, max_size=2))
def test_property_simplify_given_is_exact_where_valid(tree, rngs, bounds):
    vs = [Var(f"v{k}", lo, lo + w) for k, (lo, w) in enumerate(rngs)]
    expr = to_node(build(tree, vs))
    # valid: lo <= c0*v0 + c1*v1 + v2 < lo + width for each drawn bound
    forms = [(c0 * vs[0] + c1 * vs[1] + vs[2], lo, wd) for c0, c1, lo, wd in bounds]
    valid = and_(*[and_(lo <= u, u < lo + wd) for u, lo, wd in forms])
    got = simplify_given(expr, valid)
    assert got is expr or _count_divmods(got) < _count_divmods(expr)
    for p in np.ndindex(*[v.vmax - v.vmin + 1 for v in vs]):
        env = {v.name: v.vmin + q for v, q in zip(vs, p)}
        if evaluate(valid, env):
            assert evaluate(got, env) == evaluate(expr, env), (render(expr), render(got), env)


def _count_divmods(n) -> int:
    return sum(render(n).count(op) for op in ("/", "%"))


def test_render_compiles_with_gcc():
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    rng = random.Random(1234)
    vs = [Var("v0", -3, 4), Var("v1", 0, 5), Var("v2", -2, 2)]

    def rand_tree(depth):
        if depth == 0 or rng.random() < 0.25:
            return ("var", rng.randrange(3)) if rng.random() < 0.75 else ("const", rng.randint(-6, 6))
        op = rng.choice(["add", "sub", "neg", "mul", "div", "mod", "lt", "ge", "and"])
        if op == "and":
            return (op, ("lt", rand_tree(depth - 1), rand_tree(depth - 1)),
                    ("ge", rand_tree(depth - 1), rand_tree(depth - 1)))
        if op == "neg":
            return (op, rand_tree(depth - 1))
        if op == "mul":
            return (op, rand_tree(depth - 1), rng.randint(-4, 4))
        if op in ("div", "mod"):
            return (op, rand_tree(depth - 1), rng.randint(1, 7))
        return (op, rand_tree(depth - 1), rand_tree(depth - 1))

    exprs = [to_node(build(rand_tree(4), vs)) for _ in range(40)]
    body = "\n".join(f'  printf("%d\\n", (int)({render(e)}));' for e in exprs)
    src = ("#include <stdio.h>\nint main(void){\n"
           "for(int v0=-3;v0<=4;v0++) for(int v1=0;v1<=5;v1++) for(int v2=-2;v2<=2;v2++){\n"
           f"{body}\n}}\nreturn 0;}}\n")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.c")
        with open(path, "w") as f:
            f.write(src)
        subprocess.run([cc, "-O0", "-o", os.path.join(d, "t"), path], check=True, capture_output=True)
        out = subprocess.run([os.path.join(d, "t")], check=True, capture_output=True, text=True).stdout.split()
    expected = []
    for p0 in range(-3, 5):
        for p1 in range(0, 6):
            for p2 in range(-2, 3):
                expected += [str(evaluate(e, {"v0": p0, "v1": p1, "v2": p2})) for e in exprs]
    assert out == expected


def test_a_flattened_index_over_a_multiple_of_its_inner_extent():
    """(64*i + j + k) // 128 and % 128 with 0 <= j + k % 64 < 64: the inner index drops out
    of the quotient (an interleaving's rows: no division left in the inner loop)."""
    i, j = Var("i", 0, 9), Var("j", 0, 63)
    for k in (0, 64, 133):
        q = (i * 64 + j + k) // 128
        if k % 64 == 0:
            assert "j" not in {v.name for v in q.vars()}
        brute_check(q, lambda p, k=k: (64 * p["i"] + p["j"] + k) // 128, [i, j])
        brute_check((i * 64 + j + k) % 128, lambda p, k=k: (64 * p["i"] + p["j"] + k) % 128,
                    [i, j])
    brute_check((i * 96 + j) // 192, lambda p: (96 * p["i"] + p["j"]) // 192, [i, j])
