"""Configuration: JAX's flags (``jax.config``) and every environment variable tinyjax reads.

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

``tinyjax_device`` (the default device, ``cpu``/``cuda``/``interp``) is initialised from
``TINYJAX_DEVICE`` at import; switch devices later through the flag
(``config.update("tinyjax_device", "interp")``) or ``jax.default_device``.

Environment variables are declared in :data:`ENVIRONMENT` (name, default, meaning: the
docs page "Configuration" lists them) and read only through :func:`env`, :func:`env_str`,
:func:`env_flag`, :func:`env_int` and :func:`debug_level`. The flags' initial values are
read once, at import; the other variables when the setting is used -- such a variable set
while the process runs takes effect from then on.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple, Optional

__all__ = ["Config", "config", "State", "disable_jit", "EnvVar", "ENVIRONMENT", "env",
           "env_flag", "env_int", "env_str", "debug_level", "set_env_default",
           "add_update_check", "cache_dir", "env_num_cpu_devices"]

_TRUE_STRINGS = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE_STRINGS = frozenset({"0", "false", "f", "no", "n", "off", ""})


def _parse_bool_env(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE_STRINGS:
        return True
    if v in _FALSE_STRINGS:
        return False
    raise ValueError(f"invalid truth value {value!r} for environment variable {name}")


# ---- environment variables ----------------------------------------------------------


class EnvVar(NamedTuple):
    """An environment variable tinyjax reads: its ``default`` as documented (None: unset)
    and what it sets."""
    name: str
    default: Optional[str]
    meaning: str


ENVIRONMENT: dict[str, EnvVar] = {v.name: v for v in (
    EnvVar("TINYJAX_DEVICE", "cpu", "The initial value of the flag ``tinyjax_device``, the "
           "default device: ``cpu``, ``cuda`` (or ``gpu``) or ``interp`` (the numpy "
           "interpreter of the kernel IR). Read once, at import; part of jit's cache key."),
    EnvVar("DEBUG", "0", "What the compiler prints: 1 kernel counts (and why jit falls back "
           "to op-by-op evaluation), 2 a per-kernel time table per call, 3 the scheduled "
           "kernels and their loop IR after each pass, 4 the generated source. 0 (or unset): "
           "nothing."),
    EnvVar("TINYJAX_ENABLE_X64", None, "The initial value of ``jax_enable_x64`` (1/0, "
           "true/false, yes/no, on/off); wins over ``JAX_ENABLE_X64``."),
    EnvVar("JAX_ENABLE_X64", None, "The initial value of ``jax_enable_x64`` where "
           "``TINYJAX_ENABLE_X64`` is unset."),
    EnvVar("JAX_DEBUG_NANS", None, "The initial value of ``jax_debug_nans``: a NaN produced "
           "by a primitive raises FloatingPointError."),
    EnvVar("JAX_DEBUG_INFS", None, "The initial value of ``jax_debug_infs``: an infinity "
           "produced by a primitive raises FloatingPointError."),
    EnvVar("JAX_DISABLE_JIT", None, "The initial value of ``jax_disable_jit``: ``jit`` calls "
           "the Python function and ``lax`` control flow runs as Python."),
    EnvVar("JAX_LOG_COMPILES", None, "The initial value of ``jax_log_compiles``: every trace "
           "and compilation of a jitted function is logged (logger ``tinyjax``)."),
    EnvVar("TINYJAX_CACHE_DIR", "~/.cache/tinyjax", "Where compiled C libraries, compiler "
           "flag probes, CUDA cubins and ``BEAM``'s choices are kept between processes (unless "
           "``jax_compilation_cache_dir`` is set); an unusable directory gives way to a "
           "temporary one, with a warning."),
    EnvVar("TINYJAX_CACHE_MAX_SIZE", str(1 << 30), "The most bytes the compile cache "
           "directory holds (unless ``jax_compilation_cache_max_size`` is set): least "
           "recently used entries go first; 0 turns the disk cache off, -1 leaves it "
           "unbounded."),
    EnvVar("TINYJAX_EXECUTABLES_PER_FUNCTION", "128", "The most compiled calls (input "
           "signatures) one jitted function keeps in memory (unless "
           "``tinyjax_executables_per_function`` is set); the least recently called go "
           "first."),
    EnvVar("TINYJAX_EXECUTABLES_TOTAL", "512", "The most compiled calls all jitted functions "
           "keep in memory together (unless ``tinyjax_executables_total`` is set)."),
    EnvVar("BEAM", "0", "n > 0: each CPU kernel's optimisation passes are chosen by a beam "
           "search of width n that times candidates (kept in ``TINYJAX_CACHE_DIR``); 0: by "
           "the cost model."),
    EnvVar("CC", None, "The C compiler; unset or not found: ``cc``, ``gcc``, then ``clang`` "
           "on the PATH."),
    EnvVar("TINYJAX_NO_OPENMP", None, "On (1): C kernels are compiled without OpenMP "
           "threads."),
    EnvVar("TINYJAX_NO_LIBMVEC", None, "On (1): C kernels do not call glibc's vector math "
           "library (libmvec)."),
    EnvVar("TINYJAX_NO_RUNTIME", None, "On (1): a compiled CPU program is called through "
           "ctypes with its buffers' addresses gathered in Python, instead of through the "
           "launcher compiled with it."),
    EnvVar("TINYJAX_OMP_SCHEDULE", "guided", "The OpenMP schedule of the C kernels' parallel "
           "loops."),
    EnvVar("OMP_WAIT_POLICY", None, "libgomp's idle threads' policy; when set, tinyjax leaves "
           "``GOMP_SPINCOUNT`` alone."),
    EnvVar("GOMP_SPINCOUNT", "30000", "libgomp's spin count before an idle thread sleeps; "
           "tinyjax sets it to 30000 when neither it nor ``OMP_WAIT_POLICY`` is set."),
    EnvVar("TINYJAX_CPU_THREADS", "auto", "Threads of the C kernels' parallel regions: "
           "``auto`` (the cores other processes leave idle, measured as it runs) or a "
           "number."),
    EnvVar("OMP_NUM_THREADS", None, "OpenMP's thread count; when set (and "
           "``TINYJAX_CPU_THREADS`` is not), tinyjax does not change it."),
    EnvVar("TINYJAX_CUDA_GRAPHS", "1", "0: repeated calls on the GPU launch their kernels "
           "one by one instead of replaying a CUDA graph."),
    EnvVar("TINYJAX_CUDA_LANES", "3", "How many streams a CUDA graph spreads independent "
           "kernels over (1: one stream)."),
    EnvVar("TINYJAX_CUDA_PDL", "1", "0: no programmatic dependent launch (Hopper) between "
           "consecutive kernels."),
    EnvVar("TINYJAX_CUDA_WGMMA", "1", "0: matrix products on an H100 use ``mma.sync`` tiles "
           "instead of warpgroup MMA."),
    EnvVar("CUDA_HOME", None, "A CUDA installation to look for NVRTC, cuFFT, cuSOLVER and "
           "cuBLAS in (before ``/usr/local/cuda``)."),
    EnvVar("CUDA_PATH", None, "Another CUDA installation to look for NVRTC, cuFFT, cuSOLVER "
           "and cuBLAS in."),
    EnvVar("TINYJAX_NUM_CPU_DEVICES", None, "The initial value of ``jax_num_cpu_devices``: "
           "how many CPU devices ``jax.devices('cpu')`` lists (default 1); wins over "
           "``JAX_NUM_CPU_DEVICES`` and ``XLA_FLAGS``."),
    EnvVar("JAX_NUM_CPU_DEVICES", None, "JAX's spelling of ``TINYJAX_NUM_CPU_DEVICES``."),
    EnvVar("XLA_FLAGS", None, "JAX's XLA flags; tinyjax reads one of them: "
           "``--xla_force_host_platform_device_count=N`` (N CPU devices, as in JAX) where "
           "neither ``TINYJAX_NUM_CPU_DEVICES`` nor ``JAX_NUM_CPU_DEVICES`` is set."),
    EnvVar("NCCL_NVLS_ENABLE", "0", "NCCL's NVLink multicast; tinyjax sets it to 0 (off) "
           "before loading NCCL unless it is set."),
    EnvVar("TINYJAX_NCCL_LIBRARY", None, "The NCCL library to load for collectives on GPUs "
           "(default: the ``nvidia-nccl-cu*`` wheel's, then ``libnccl.so.2`` from the "
           "system's library path)."),
)}

def env(name: str) -> Optional[str]:
    """The value of the declared environment variable ``name`` (None: unset)."""
    if name not in ENVIRONMENT:
        raise KeyError(f"{name} is not a declared environment variable (config.ENVIRONMENT)")
    return os.environ.get(name)


def env_str(name: str) -> str:
    """The value of ``name``, or its documented default when unset."""
    value = env(name)
    return ENVIRONMENT[name].default if value is None else value


def env_flag(name: str) -> bool:
    """Whether the on/off variable ``name`` is on: unset means its default; 0, false, no,
    off or empty mean off; any other value means on."""
    value = env(name)
    if value is None:
        value = ENVIRONMENT[name].default or ""
    return value.strip().lower() not in _FALSE_STRINGS


def env_int(name: str) -> int:
    """The integer variable ``name`` (its default when unset); ValueError naming the
    variable for anything else."""
    value = env(name)
    raw = ENVIRONMENT[name].default if value is None else value
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def cache_dir() -> str:
    """The configured directory of the caches kept between processes:
    ``config.jax_compilation_cache_dir``, else ``TINYJAX_CACHE_DIR`` (default
    ``~/.cache/tinyjax``).  :func:`tinyjax.backends.diskcache.cache_dir` is the one in use
    (a temporary one where this one cannot be written)."""
    return config.jax_compilation_cache_dir or os.path.expanduser(env_str("TINYJAX_CACHE_DIR"))


def debug_level() -> int:
    """``DEBUG`` as a level: unset, empty, 0, false, no or off: 0; an integer: that level;
    anything else (true, yes, on, ...): 1."""
    value = env("DEBUG")
    if value is None:
        return 0
    value = value.strip().lower()
    try:
        return max(0, int(value))
    except ValueError:
        return 0 if value in _FALSE_STRINGS else 1


def set_env_default(name: str, value: str) -> None:
    """Set the declared variable ``name`` to ``value`` unless it is set (for libraries that
    read the environment themselves, such as libgomp)."""
    if env(name) is None:
        os.environ[name] = value


def env_num_cpu_devices() -> int:
    """The CPU device count the environment asks for: TINYJAX_NUM_CPU_DEVICES,
    JAX_NUM_CPU_DEVICES or XLA_FLAGS' ``--xla_force_host_platform_device_count``; -1 when
    none is set.  Read when the devices are first counted (as JAX reads XLA_FLAGS when its
    backends start), where ``jax_num_cpu_devices`` is unset."""
    for name, value in (("TINYJAX_NUM_CPU_DEVICES", env("TINYJAX_NUM_CPU_DEVICES")),
                        ("JAX_NUM_CPU_DEVICES", env("JAX_NUM_CPU_DEVICES"))):
        if value is not None and value.strip():
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {value!r}") from None
    for flag in (env("XLA_FLAGS") or "").split():
        key, _, value = flag.partition("=")
        if key == "--xla_force_host_platform_device_count":
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"XLA_FLAGS: {flag} must give an integer") from None
    return -1


def _env_bool(names: tuple[str, ...], default: bool) -> bool:
    for name in names:
        value = env(name)
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


def _validate_int(lowest: int) -> Callable[[str, Any], Optional[int]]:
    """An integer of at least ``lowest``, or None (then the flag's environment variable)."""
    def validate(name: str, value: Any) -> Optional[int]:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise ValueError(f"config option {name} must be an integer >= {lowest}, "
                             f"got {value!r}")
        return value
    return validate


def _validate_optional_path(name: str, value: Any) -> Any:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"config option {name} expects a path or None, got {value!r}")
    return None if value is None else os.fspath(value)


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

def _validate_number(name: str, value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise TypeError(f"config option {name} expects a number, got {value!r}")


def _validate_device(name: str, value: Any) -> Any:
    """None, a Device, or a platform name."""
    if value is None or isinstance(value, str) or hasattr(value, "platform"):
        return value
    raise TypeError(f"config option {name} expects a Device or a platform name, got "
                    f"{value!r}")


# The default-device names TINYJAX_DEVICE and the flag tinyjax_device accept -> backend.
DEVICE_NAMES = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda", "interp": "interp"}


def _validate_device_name(name: str, value: Any) -> str:
    """A backend name (any case; ``gpu`` means ``cuda``), canonical."""
    backend = DEVICE_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
    if backend is None:
        raise ValueError(f"config option {name} must be one of {sorted(DEVICE_NAMES)}, "
                         f"got {value!r}")
    return backend


def _env_device() -> str:
    value = env_str("TINYJAX_DEVICE")
    try:
        return _validate_device_name("TINYJAX_DEVICE", value)
    except ValueError:
        raise ValueError(f"environment variable TINYJAX_DEVICE must be one of "
                         f"{sorted(DEVICE_NAMES)}, got {value!r}") from None


def _validate_only(supported: Any, others: tuple, what: str) -> Callable[[str, Any], Any]:
    """A flag with JAX's values of which tinyjax implements ``supported`` only."""
    def validate(name: str, value: Any) -> Any:
        if value == supported:
            return value
        if value in others:
            raise NotImplementedError(f"{name}={value!r}: tinyjax implements only {what} "
                                      f"({name}={supported!r})")
        raise ValueError(f"config option {name} must be one of "
                         f"{(supported,) + others}, got {value!r}")
    return validate


_TRANSFER_GUARDS = (None, "allow", "log", "disallow", "log_explicit", "disallow_explicit")

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
    # how many CPU devices there are (-1: as the environment says, else one); fixed once the
    # devices are first listed
    "jax_num_cpu_devices": (-1, _validate_int(-1)),
    "jax_enable_checks": (False, _validate_bool),
    "jax_no_tracing": (False, _validate_bool),
    "jax_default_device": (None, _validate_device),
    "tinyjax_device": (_env_device(), _validate_device_name),
    # the on-disk compile cache (compiled libraries, cubins, compiler probes): where and
    # how many bytes at most (least recently used entries go first; 0 turns the disk cache
    # off, -1 leaves it unbounded; JAX's names and meanings).  Compiled calls kept in memory:
    # per jitted function and over all of them (the least recently called go first).  None:
    # the environment variable's value (TINYJAX_CACHE_DIR, TINYJAX_CACHE_MAX_SIZE,
    # TINYJAX_EXECUTABLES_PER_FUNCTION, TINYJAX_EXECUTABLES_TOTAL), read when used.
    "jax_compilation_cache_dir": (None, _validate_optional_path),
    "jax_compilation_cache_max_size": (None, _validate_int(-1)),
    "tinyjax_executables_per_function": (None, _validate_int(1)),
    "tinyjax_executables_total": (None, _validate_int(1)),
    # the persistent cache's thresholds: accepted (tinyjax keeps every compiled library)
    "jax_enable_compilation_cache": (True, _validate_bool),
    "jax_persistent_cache_min_compile_time_secs": (1.0, _validate_number),
    "jax_persistent_cache_min_entry_size_bytes": (0, _validate_number),
    # accepted with JAX's values; tinyjax behaves as with the default (docs: Differences)
    "jax_check_tracer_leaks": (False, _validate_bool),
    "jax_debug_key_reuse": (False, _validate_bool),
    "jax_explain_cache_misses": (False, _validate_bool),
    "jax_enable_custom_prng": (False, _validate_bool),
    "jax_softmax_custom_jvp": (False, _validate_bool),
    "jax_no_execution": (False, _validate_bool),
    "jax_thread_guard": (False, _validate_bool),
    "jax_allow_f16_reductions": (True, _validate_bool),
    "jax_auto_pcast": (True, _validate_bool),
    "jax_remove_size_one_mesh_axis_from_type": (False, _validate_bool),
    "jax2tf_associative_scan_reductions": (False, _validate_bool),
    "jax_array_garbage_collection_guard": (None, _validate_choice(None, "allow", "log",
                                                                   "fatal")),
    "jax_legacy_prng_key": ("allow", _validate_choice("allow", "warn", "error")),
    "jax_default_prng_impl": ("threefry2x32", _validate_only(
        "threefry2x32", ("rbg", "unsafe_rbg"), "the threefry2x32 PRNG")),
    "jax_threefry_partitionable": (True, _validate_only(
        True, (False,), "the partitionable threefry bits (JAX's default)")),
    "jax_numpy_dtype_promotion": ("standard", _validate_choice("standard", "strict")),
    **{f"jax_transfer_guard{kind}": (None, _validate_choice(*_TRANSFER_GUARDS))
       for kind in ("", "_host_to_device", "_device_to_host", "_device_to_device")},
}

# name -> functions called with (name, new value) before a flag changes (they may raise)
_UPDATE_CHECKS: dict[str, list[Callable[[str, Any], None]]] = {}


def add_update_check(name: str, check: Callable[[str, Any], None]) -> None:
    """Call ``check(name, value)`` before flag ``name`` is set to ``value``; it raises to
    refuse the change (the devices refuse a new ``jax_num_cpu_devices`` once listed)."""
    _UPDATE_CHECKS.setdefault(name, []).append(check)


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
        value = entry[1](name, value)
        for check in _UPDATE_CHECKS.get(name, ()):
            check(name, value)
        object.__setattr__(self, name, value)

    def read(self, name: str) -> Any:
        """The value of flag ``name``; AttributeError if there is no such flag."""
        if name not in _FLAGS:
            raise AttributeError(f"Unrecognized config option: {name!r}")
        return self.__dict__[name]

    def parse_flags_with_absl(self) -> None:
        """Set the flags given on the command line as ``--jax_name=value`` (``sys.argv``),
        as JAX does when absl parses them; other arguments are left alone."""
        for arg in sys.argv[1:]:
            name, has_value, text = arg[2:].partition("=")
            if not arg.startswith("--") or name not in _FLAGS:
                continue
            default = _FLAGS[name][0]
            if isinstance(default, bool):
                value: Any = text.lower() in ("", "1", "true")
            elif not has_value:
                continue
            else:
                value = type(default)(text) if default is not None else text
            self.update(name, value)

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
        self.__name__ = name[len("jax_"):] if name.startswith("jax_") else name

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
