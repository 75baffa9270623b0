"""The lowering registry: every primitive tinyjax defines reaches the compiler with a way to
compile it (a lowering rule, a rule on complex pairs, a program step for control flow or a
library call, inlining of a call or of a composite primitive's definition), or provably
never reaches it; and every rule belongs to a
primitive tinyjax defines."""
import importlib
import pkgutil

import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.compiler.lower.jaxpr import lower_jaxpr  # noqa: F401 - registers every family
from tinyjax.compiler.lower.complex import complex_rules
from tinyjax.compiler.lower.registry import (host_callbacks, inlined_calls, library_calls,
                                             lowering_rules)
from tinyjax.compiler.program import CONTROL_FLOW
from tinyjax.core import Primitive
from tinyjax.lax.composite import composite_definitions


def _defined_primitives() -> dict[Primitive, str]:
    """Every Primitive object bound at module level in a tinyjax module (the CUDA backend's
    modules load a driver: skipped, they define no primitive)."""
    found: dict[Primitive, str] = {}
    for info in pkgutil.walk_packages(jax.__path__, "tinyjax."):
        if info.name.startswith("tinyjax.backends.cuda"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, Primitive):
                found.setdefault(value, f"{info.name}.{name}")
    return found


def _staged_primitives(closed) -> set[str]:
    return {e.primitive.name for e in closed.jaxpr.eqns}


def _custom_jvp_sin():
    @jax.custom_jvp
    def f(x):
        return jnp.sin(x)
    f.defjvp(lambda primals, tangents: (f(primals[0]), jnp.cos(primals[0]) * tangents[0]))
    return f


def _custom_vjp_sin():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)
    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
    return f


def _never_staged() -> dict[str, set[str]]:
    """Primitives that exist only while a transform runs, each with the primitives the
    programs that use it stage (in which it must not appear)."""
    x = np.float32(0.5)
    xs = np.ones(3, np.float32)
    cjvp, cvjp = _custom_jvp_sin(), _custom_vjp_sin()
    # custom rules: reverse mode transposes custom_lin away
    custom = (_staged_primitives(jax.make_jaxpr(cjvp)(x))
              | _staged_primitives(jax.make_jaxpr(jax.grad(cjvp))(x))
              | _staged_primitives(jax.make_jaxpr(cvjp)(x))
              | _staged_primitives(jax.make_jaxpr(jax.grad(cvjp))(x)))
    # collectives: vmap resolves them against its named axis
    collectives = _staged_primitives(jax.make_jaxpr(jax.vmap(
        lambda v: (lax.psum(v, "i"), lax.pmax(v, "i"), lax.pmin(v, "i"),
                   lax.all_gather(v, "i"), lax.axis_index("i")), axis_name="i"))(xs))
    # checks: checkify turns them into error values (staged unchecked, they are an error)
    from tinyjax.experimental import checkify
    checked = _staged_primitives(jax.make_jaxpr(checkify.checkify(
        lambda v: (checkify.check(v > 0, "positive"), lax.scan(
            lambda c, _: (checkify.check(c < 9, "{}", c) or c + 1, None), v, None,
            length=2))[1]))(x))
    return {"custom_lin": custom, "check": checked,
            "psum": collectives, "pmax": collectives, "pmin": collectives,
            "all_gather": collectives, "axis_index": collectives}


def test_every_primitive_has_a_lowering():
    never = _never_staged()
    missing = []
    for prim, where in _defined_primitives().items():
        if (prim in lowering_rules or prim in complex_rules or prim in CONTROL_FLOW
                or prim in inlined_calls or prim in library_calls
                or prim in composite_definitions or prim in host_callbacks):
            continue
        if prim.name in never:
            assert prim.name not in never[prim.name], f"{where} is staged into a jaxpr"
            continue
        missing.append(where)
    assert not missing, f"primitives without a lowering: {missing}"


def test_every_rule_belongs_to_a_primitive():
    defined = _defined_primitives()
    strays = [rule for prim, rule in [*lowering_rules.items(), *complex_rules.items()]
              if not isinstance(prim, Primitive) or prim not in defined]
    assert not strays, strays
    steps = set(CONTROL_FLOW) | set(inlined_calls) | library_calls | set(composite_definitions)
    both = [p.name for p in lowering_rules if p in steps]
    assert not both, f"primitives lowered both by a rule and as a program step: {both}"


def test_collectives_outside_vmap_are_unbound():
    try:
        jax.make_jaxpr(lambda v: lax.psum(v, "i"))(np.float32(1))
    except NameError as e:
        assert "unbound axis name: i" in str(e)
    else:
        raise AssertionError("psum outside a vmap of its axis was staged")


def test_lower_jaxpr_lowers_an_inlined_call_as_its_body():
    """A jit equation (here staged by jnp.where and by an inner jitted function) lowers to
    the graph of its body: the same kernels as the jaxpr with the calls inlined first."""
    from tinyjax.compiler.program import inline_calls
    from tinyjax.compiler.schedule import schedule

    inner = jax.jit(lambda a, b: a * b + 1.0)

    def f(x, y):
        return jnp.where(x > 0, inner(x, y), y)

    x = np.array([-1.0, 2.0, 3.0], np.float32)
    jaxpr = jax.make_jaxpr(f)(x, x).jaxpr
    assert [e.primitive.name for e in jaxpr.eqns].count("jit") == 2
    direct = schedule(*lower_jaxpr(jaxpr))
    inlined = schedule(*lower_jaxpr(inline_calls(jaxpr)))
    assert [k.describe() for k in direct.kernels] == [k.describe() for k in inlined.kernels]
