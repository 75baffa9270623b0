"""Global configuration flags (``jax.config`` equivalent).

Usage::

    from tinyjax.config import config
    config.update("jax_enable_x64", True)
    if config.jax_enable_x64: ...
    with config.enable_x64(True): ...          # scoped, restores on exit
    with config.override(jax_debug_nans=True): ...

Reading a flag is a plain instance-attribute read (it sits on hot paths).
Writes go through :meth:`Config.update`, which validates the name and value.
Flags are process-global (not thread-local, unlike JAX's context managers).

``jax_enable_x64`` is initialised from the environment at import:
``TINYJAX_ENABLE_X64`` if set, else ``JAX_ENABLE_X64``; accepted values are
1/0, true/false, t/f, yes/no, y/n, on/off (case-insensitive).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["Config", "config", "State", "disable_jit"]

_TRUE_STRINGS = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE_STRINGS = frozenset({"0", "false", "f", "no", "n", "off", ""})


def _parse_bool_env(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE_STRINGS:
        return True
    if v in _FALSE_STRINGS:
        return False
    raise ValueError(f"invalid truth value {value!r} for environment variable {name}")


def _env_bool(names: tuple[str, ...], default: bool) -> bool:
    for name in names:
        value = os.environ.get(name)
        if value is not None:
            return _parse_bool_env(name, value)
    return default


def _validate_bool(name: str, value: Any) -> bool:
    if isinstance(value, str):
        return _parse_bool_env(name, value)
    if isinstance(value, bool):
        return value
    try:
        import numpy as np  # np.bool_ and 0/1 ints are accepted too
        if isinstance(value, (int, np.integer, np.bool_)) and value in (0, 1):
            return bool(value)
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"config option {name} expects a bool, got {value!r}")


def _validate_choice(*choices: Any) -> Callable[[str, Any], Any]:
    def validate(name: str, value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"config option {name} must be one of {choices}, got {value!r}")
        return value
    return validate


# Matmul precision names JAX accepts (jax_default_matmul_precision); None = default.
_MATMUL_PRECISIONS = (
    None, "default", "high", "highest", "fastest",
    "bfloat16", "tensorfloat32", "float32",
    "bfloat16_3x", "ANY_F8_ANY_F8_F32", "ANY_F8_ANY_F8_F32_FAST_ACCUM",
    "ANY_F8_ANY_F8_ANY", "ANY_F8_ANY_F8_ANY_FAST_ACCUM", "F16_F16_F16",
    "F16_F16_F32", "BF16_BF16_BF16", "BF16_BF16_F32", "BF16_BF16_F32_X3",
    "BF16_BF16_F32_X6", "BF16_BF16_F32_X9", "TF32_TF32_F32", "TF32_TF32_F32_X3",
    "F32_F32_F32", "F64_F64_F64",
)

# name -> (default, validator)
_FLAGS: dict[str, tuple[Any, Callable[[str, Any], Any]]] = {
    "jax_enable_x64": (
        _env_bool(("TINYJAX_ENABLE_X64", "JAX_ENABLE_X64"), False), _validate_bool),
    "jax_default_matmul_precision": (None, _validate_choice(*_MATMUL_PRECISIONS)),
    "jax_numpy_rank_promotion": ("allow", _validate_choice("allow", "warn", "raise")),
    "jax_debug_nans": (_env_bool(("JAX_DEBUG_NANS",), False), _validate_bool),
    "jax_debug_infs": (_env_bool(("JAX_DEBUG_INFS",), False), _validate_bool),
    "jax_disable_jit": (_env_bool(("JAX_DISABLE_JIT",), False), _validate_bool),
    "jax_log_compiles": (_env_bool(("JAX_LOG_COMPILES",), False), _validate_bool),
}


class Config:
    """Holder of the flags; each flag is a plain attribute of this object."""

    def __init__(self) -> None:
        for name, (default, _) in _FLAGS.items():
            object.__setattr__(self, name, default)

    # Only reached for names that are not set, i.e. unknown flags.
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"Unrecognized config option: {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        self.update(name, value)

    def update(self, name: str, value: Any) -> None:
        """Set flag ``name`` to ``value`` (validated)."""
        entry = _FLAGS.get(name)
        if entry is None:
            raise AttributeError(f"Unrecognized config option: {name!r}")
        object.__setattr__(self, name, entry[1](name, value))

    def read(self, name: str) -> Any:
        """The value of flag ``name``; AttributeError if there is no such flag."""
        if name not in _FLAGS:
            raise AttributeError(f"Unrecognized config option: {name!r}")
        return self.__dict__[name]

    @property
    def flag_names(self) -> tuple[str, ...]:
        return tuple(_FLAGS)

    def values(self) -> dict[str, Any]:
        """A snapshot ``{flag: value}`` of every flag."""
        return {name: self.__dict__[name] for name in _FLAGS}

    def reset(self, name: str | None = None) -> None:
        """Restore one flag (or all) to its default (env-derived for x64)."""
        for n in (_FLAGS if name is None else (name,)):
            if n not in _FLAGS:
                raise AttributeError(f"Unrecognized config option: {n!r}")
            object.__setattr__(self, n, _FLAGS[n][0])

    @contextmanager
    def override(self, **flags: Any) -> Iterator["Config"]:
        """Temporarily set several flags; the old values come back on exit."""
        old = {name: self.read(name) for name in flags}
        try:
            for name, value in flags.items():
                self.update(name, value)
            yield self
        finally:
            for name, value in old.items():
                object.__setattr__(self, name, value)

    def enable_x64(self, value: bool = True):
        """Context manager: ``with config.enable_x64(True): ...``."""
        return self.override(jax_enable_x64=value)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.values().items())
        return f"Config({body})"


config = Config()


class State:
    """One flag as JAX exposes it at the top level (``jax.debug_nans``): ``.value`` reads
    it and calling it with a value gives a context manager that sets it for a block
    (``with jax.debug_nans(False): ...``)."""

    def __init__(self, name: str):
        if name not in _FLAGS:
            raise AttributeError(f"Unrecognized config option: {name!r}")
        self.name = name
        self.__name__ = name[len("jax_"):]

    @property
    def value(self) -> Any:
        return config.read(self.name)

    def __call__(self, new_val: Any = True):
        return config.override(**{self.name: new_val})

    def __repr__(self) -> str:
        return f"State({self.name}={self.value!r})"


def disable_jit(disable: bool = True):
    """Context manager: inside it ``jit`` calls the Python function and ``lax`` control
    flow runs as Python (``cond`` takes one branch, loops iterate), so that values can be
    printed and inspected; ``vmap`` and ``grad`` still transform."""
    return config.override(jax_disable_jit=disable)
