"""A jaxpr as plain data: nested JSON-able values plus a list of numpy arrays.

Primitives are written by name and looked up among the live primitives when read back;
variables by number; parameters as tagged plain values (numbers, strings, tuples, dicts,
dtypes, arrays, avals, sub-jaxprs, and tinyjax's own enums and records -- named tuples and
dataclasses -- by their module and name).  Nothing is unpickled and no code runs when
reading: a class is resolved only among tinyjax's already-imported modules, and only an
enum, named tuple or dataclass is accepted.

A call equation whose parameters hold Python functions (a ``custom_jvp`` or
``custom_vjp`` function's rules) is written as its body in place: the rules only
matter for differentiation, which an Exported carries separately (its ``vjp``), as
JAX's serialized StableHLO carries no custom rules either.  So is a composite primitive
with such parameters (``reduce``'s ``computation``): as its definition.
"""
from __future__ import annotations

import dataclasses
import enum
import sys
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes
from tinyjax.compiler.lower.registry import inlined_calls
from tinyjax.core import Primitive, ShapedArray, primitives_named
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var
from tinyjax.lax.composite import composite_definitions, composite_inline

__all__ = ["Unserializable", "Encoder", "Decoder", "dtype_name", "dtype_of", "shape_of"]


class Unserializable(ValueError):
    """A value the format cannot hold (a Python function, an unknown object)."""


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_record_type(cls: Any) -> bool:
    return isinstance(cls, type) and (
        dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields")))


def _own_class(value: Any) -> bool:
    module = type(value).__module__
    return module == "tinyjax" or module.startswith("tinyjax.")


def dtype_name(dtype: Any) -> str:
    if dtype == dtypes.float0:
        return "float0"
    if dtypes.is_extended(dtype):
        raise Unserializable(f"arrays of the extended dtype {dtype} (typed PRNG keys) cannot "
                             "be serialized; use raw uint32 keys (jax.random.key_data)")
    dtype = np.dtype(dtype)
    if not _plain(dtype):
        raise Unserializable(f"arrays of dtype {dtype} cannot be serialized")
    return dtype.name


def _plain(dtype: np.dtype) -> bool:
    """A numeric or bool dtype: numpy's own, or one of ml_dtypes' (bfloat16, float8_*,
    int4, ...), which numpy knows by name once ml_dtypes is imported."""
    if dtype.kind in "biufc":
        return True
    return dtype.kind == "V" and dtype.type.__module__.split(".")[0] == "ml_dtypes"


def dtype_of(name: Any) -> np.dtype:
    if name == "float0":
        return np.dtype(dtypes.float0)
    if not isinstance(name, str):
        raise ValueError(f"malformed dtype {name!r}")
    try:
        dtype = np.dtype(name)
    except TypeError as e:
        raise ValueError(f"unknown dtype {name!r}") from e
    if not _plain(dtype):
        raise ValueError(f"dtype {name!r} is not allowed")
    return dtype


def shape_of(data: Any) -> tuple[int, ...]:
    """The shape written as the list ``data`` of non-negative ints."""
    if type(data) is not list or not all(type(d) is int and d >= 0 for d in data):
        raise ValueError(f"malformed shape {data!r}")
    return tuple(data)


class Encoder:
    """Writes values; arrays go to ``arrays`` (referred to by index)."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def array(self, value: Any) -> int:
        value = np.asarray(value)
        dtype_name(value.dtype)
        self.arrays.append(value)
        return len(self.arrays) - 1

    def aval(self, aval: Any) -> list:
        if not isinstance(aval, ShapedArray):
            raise Unserializable(f"abstract value {aval!r}")
        if aval.spec or aval.mesh is not None:
            raise Unserializable(f"the type {aval} is laid out over a mesh; programs over "
                                 "several devices cannot be exported in tinyjax")
        return [list(aval.shape), dtype_name(aval.dtype), aval.weak_type,
                list(aval.vma_order)]

    def value(self, x: Any) -> Any:
        """A parameter value."""
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, enum.Enum):
            if not _own_class(x):
                raise Unserializable(f"the enum value {x!r}")
            return {"enum": [_class_path(type(x)), x.name]}
        if type(x) is int:  # (an IntEnum is an enum above; other int subclasses fail)
            return x
        if type(x) is float:
            return {"float": repr(x)}
        if type(x) is complex:
            return {"complex": [repr(x.real), repr(x.imag)]}
        if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic)):
            return {"dtype": dtype_name(x), "type": not isinstance(x, np.dtype)}
        if isinstance(x, (np.ndarray, np.generic)) or (
                _own_class(x) and hasattr(x, "__array__") and hasattr(x, "dtype")):
            return {"array": self.array(x), "scalar": isinstance(x, np.generic)}
        if isinstance(x, ShapedArray):
            return {"aval": self.aval(x)}
        if isinstance(x, ClosedJaxpr):
            return {"closed_jaxpr": self.closed_jaxpr(x)}
        if isinstance(x, Jaxpr):
            return {"jaxpr": self.jaxpr(x)}
        if isinstance(x, Primitive):
            return {"primitive": x.name}
        if isinstance(x, slice):
            return {"slice": [self.value(x.start), self.value(x.stop), self.value(x.step)]}
        if _is_record_type(type(x)) and _own_class(x):
            if isinstance(x, tuple):
                fields = dict(zip(type(x)._fields, x))
            else:
                fields = {f.name: getattr(x, f.name) for f in dataclasses.fields(x) if f.init}
            return {"record": [_class_path(type(x)),
                               {k: self.value(v) for k, v in fields.items()}]}
        if type(x) in (tuple, list, frozenset):
            return {type(x).__name__: [self.value(v) for v in x]}
        if type(x) is dict:
            return {"dict": [[self.value(k), self.value(v)] for k, v in x.items()]}
        raise Unserializable(f"a value of type {type(x).__name__}: {x!r}")

    def closed_jaxpr(self, closed: ClosedJaxpr) -> dict:
        return {"jaxpr": self.jaxpr(closed.jaxpr),
                "consts": [self.array(c) for c in closed.consts]}

    def jaxpr(self, jaxpr: Jaxpr) -> dict:
        env: dict[Any, Any] = {}
        binders = []
        for i, v in enumerate(list(jaxpr.constvars) + list(jaxpr.invars)):
            env[v] = i
            binders.append(self.aval(v.aval))
        env["#"] = len(binders)  # (the number of the next variable)
        eqns: list = []
        for eqn in jaxpr.eqns:
            self._eqn(eqn, env, eqns)
        return {"n_consts": len(jaxpr.constvars), "binders": binders, "eqns": eqns,
                "outs": [self._atom(a, env) for a in jaxpr.outvars]}

    def _atom(self, a: Any, env: dict) -> Any:
        if isinstance(a, Literal):
            return {"literal": self.array(np.asarray(a.val, a.aval.dtype)),
                    "aval": self.aval(a.aval)}
        return env[a]

    def _eqn(self, eqn: JaxprEqn, env: dict, out: list) -> None:
        ins = [self._atom(a, env) for a in eqn.invars]
        try:
            params = {k: self.value(v) for k, v in eqn.params.items()}
        except Unserializable as e:
            if eqn.primitive not in inlined_calls and \
                    eqn.primitive not in composite_definitions:
                raise Unserializable(f"the parameters of `{eqn.primitive.name}`: {e}") from None
            self._inline(eqn, env, out)
            return
        names = primitives_named(eqn.primitive.name)
        if names != [eqn.primitive]:
            raise Unserializable(f"the primitive `{eqn.primitive.name}` shares its name with "
                                 "another primitive, so it cannot be named in a serialization")
        outs = []
        for v in eqn.outvars:
            outs.append(self.aval(v.aval))
            env[v] = _next_var(env)
        out.append([eqn.primitive.name, params, ins, outs, eqn.source_info or ""])

    def _inline(self, eqn: JaxprEqn, env: dict, out: list) -> None:
        inline = inlined_calls.get(eqn.primitive, composite_inline)
        inner, operands = inline(eqn, list(eqn.invars))
        inner_env = dict(env)
        for v, a in zip(list(inner.constvars) + list(inner.invars), operands):
            inner_env[v] = self._atom(a, env)
        for e in inner.eqns:
            self._eqn(e, inner_env, out)
        for v, a in zip(eqn.outvars, inner.outvars):
            env[v] = self._atom(a, inner_env)
        env["#"] = inner_env["#"]  # (the variable counter)


def _next_var(env: dict) -> int:
    n = env["#"]
    env["#"] = n + 1
    return n


class Decoder:
    """Reads what :class:`Encoder` wrote; every malformation raises ValueError."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self._primitives: dict[str, Primitive] = {}

    def array(self, i: Any) -> np.ndarray:
        if not isinstance(i, int) or not 0 <= i < len(self.arrays):
            raise ValueError(f"no array number {i!r}")
        return self.arrays[i]

    def aval(self, data: Any) -> ShapedArray:
        shape, dtype, weak, vma = data
        if type(weak) is not bool or type(vma) is not list \
                or not all(type(a) is str for a in vma):
            raise ValueError(f"malformed abstract value {data!r}")
        return ShapedArray(shape_of(shape), dtype_of(dtype), weak, tuple(vma))

    def primitive(self, name: Any) -> Primitive:
        if name not in self._primitives:
            found = primitives_named(name) if isinstance(name, str) else []
            if len(found) != 1:
                raise ValueError(f"the program uses the primitive `{name}`, which "
                                 + ("is not defined in this process (import the module that "
                                    "defines it first)" if not found else
                                    "names several primitives here"))
            self._primitives[name] = found[0]
        return self._primitives[name]

    def value(self, x: Any) -> Any:
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if not (isinstance(x, dict) and len(x) in (1, 2)):
            raise ValueError(f"malformed value {x!r}")
        tag = next(iter(x))
        data = x[tag]
        decode: Callable = getattr(self, "_" + tag, None) if tag in _TAGS else None
        if decode is None:
            raise ValueError(f"unknown value tag {tag!r}")
        return decode(data, x)

    def _float(self, data, _):
        return float(data)

    def _complex(self, data, _):
        return complex(float(data[0]), float(data[1]))

    def _dtype(self, data, x):
        dtype = dtype_of(data)
        return dtype.type if x.get("type") else dtype

    def _array(self, data, x):
        value = self.array(data)
        return value[()] if x.get("scalar") else value

    def _aval(self, data, _):
        return self.aval(data)

    def _closed_jaxpr(self, data, _):
        return self.closed_jaxpr(data)

    def _jaxpr(self, data, _):
        return self.jaxpr(data)

    def _primitive(self, data, _):
        return self.primitive(data)

    def _slice(self, data, _):
        return slice(*[self.value(v) for v in data])

    def _tuple(self, data, _):
        return tuple(self.value(v) for v in data)

    def _list(self, data, _):
        return [self.value(v) for v in data]

    def _frozenset(self, data, _):
        return frozenset(self.value(v) for v in data)

    def _dict(self, data, _):
        return {self.value(k): self.value(v) for k, v in data}

    def _enum(self, data, _):
        path, member = data
        cls = _own_type(path)
        if not issubclass(cls, enum.Enum):
            raise ValueError(f"{path} is not an enum")
        return cls[member]

    def _record(self, data, _):
        path, fields = data
        cls = _own_type(path)
        if not _is_record_type(cls):
            raise ValueError(f"{path} is not a named tuple or dataclass")
        return cls(**{k: self.value(v) for k, v in fields.items()})

    def closed_jaxpr(self, data: dict) -> ClosedJaxpr:
        return ClosedJaxpr(self.jaxpr(data["jaxpr"]), [self.array(i) for i in data["consts"]])

    def jaxpr(self, data: dict) -> Jaxpr:
        variables = [Var(self.aval(a)) for a in data["binders"]]
        n_consts = data["n_consts"]
        if not isinstance(n_consts, int) or not 0 <= n_consts <= len(variables):
            raise ValueError(f"malformed number of constants {n_consts!r}")
        eqns = []
        for name, params, ins, outs, source in data["eqns"]:
            invars = [self._atom(a, variables) for a in ins]
            outvars = [Var(self.aval(a)) for a in outs]
            variables.extend(outvars)
            eqns.append(JaxprEqn(invars, outvars, self.primitive(name),
                                 {k: self.value(v) for k, v in params.items()}, str(source)))
        binders = variables[:len(data["binders"])]
        return Jaxpr(binders[:n_consts], binders[n_consts:],
                     [self._atom(a, variables) for a in data["outs"]], eqns)

    def _atom(self, a: Any, variables: list[Var]) -> Any:
        if isinstance(a, dict):
            aval = self.aval(a["aval"])
            value = self.array(a["literal"])
            if value.shape != () or value.dtype != aval.dtype:
                raise ValueError(f"malformed literal of type {aval}")
            return Literal(value.item() if aval.weak_type else value[()], aval)
        if not isinstance(a, int) or not 0 <= a < len(variables):
            raise ValueError(f"reference to an undefined variable {a!r}")
        return variables[a]


_TAGS = frozenset(["float", "complex", "dtype", "array", "aval", "closed_jaxpr", "jaxpr",
                   "primitive", "slice", "tuple", "list", "frozenset", "dict", "enum",
                   "record"])


def _own_type(path: Any) -> type:
    """The class ``module:qualname`` of an already-imported tinyjax module."""
    if not isinstance(path, str) or ":" not in path:
        raise ValueError(f"malformed class name {path!r}")
    module_name, qualname = path.split(":", 1)
    module = sys.modules.get(module_name)
    if module is None or not (module_name == "tinyjax" or module_name.startswith("tinyjax.")):
        raise ValueError(f"unknown class {path!r}")
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not isinstance(obj, type):
        raise ValueError(f"unknown class {path!r}")
    return obj
