"""The C device: compiler detection, flags, caches, rendering of the kernel IR."""
import os

import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.backends import get_backend, get_device
from tinyjax.backends.c import compiler as cpu
from tinyjax.backends.c import toolchain
from tinyjax.config import config
from tinyjax.backends.c.render import CLanguage
from tinyjax.compiler.program import compile_jaxpr


def test_compiler_found_and_flags():
    assert os.path.exists(toolchain.find_compiler())
    flags = toolchain.compiler_flags()
    assert "-O3" in flags and "-ffast-math" not in flags and "-fno-math-errno" in flags


def test_a_probed_flag_the_compiler_rejects_is_left_out(monkeypatch):
    monkeypatch.setattr(toolchain, "_supports",
                        lambda cc, flag: flag != "-mprefer-vector-width=512")
    flags = toolchain.compiler_flags()
    assert "-mprefer-vector-width=512" not in flags and "-march=native" in flags
    monkeypatch.setattr(toolchain, "_supports", lambda cc, flag: True)
    assert "-mprefer-vector-width=512" in toolchain.compiler_flags()


def test_disk_and_memory_cache(tmp_path):
    with config.override(jax_compilation_cache_dir=str(tmp_path)):
        src = "void tj_cache_probe_fn(void **b) { ((float*)b[0])[0] = 42.0f; }\n"
        lib = cpu.compile_source(src)
        assert any(p.name.startswith("k_") and p.name.endswith(".tjc")
                   for p in tmp_path.iterdir())
        assert cpu.compile_source(src) is lib


def test_translation_units_are_compiled_side_by_side_and_linked(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "jax_compilation_cache_dir", str(tmp_path))
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 3)
    monkeypatch.setattr(cpu, "SPLIT_MIN_CHARS", 0)
    bodies = [f"void tj_unit_fn{i}(float *x) {{ x[{i}] = {i}.0f + tj_one(); }}" for i in range(7)]
    prelude = "static float tj_one(void) { return 1.0f; }"
    units = cpu.translation_units(prelude, bodies)
    assert len(units) == 3 and all(u.startswith(prelude) for u in units)
    assert [b for b in bodies if any(b in u for u in units)] == bodies  # each once, in order
    assert "".join(units).count("tj_unit_fn") == 7
    lib = cpu.compile_source(units)
    x = np.zeros(7, np.float32)
    for i in range(7):
        lib.function(f"tj_unit_fn{i}", [cpu.ctypes.c_void_p])(x.ctypes.data)
    np.testing.assert_array_equal(x, np.arange(7) + 1.0)
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 1)
    assert cpu.translation_units(prelude, bodies) == [cpu.join_source(prelude, bodies)]


def test_compile_error_is_clear():
    with pytest.raises(RuntimeError, match="C compilation failed"):
        cpu.compile_source("this is not C;")
    with pytest.raises(RuntimeError, match="C compilation failed"):
        cpu.compile_source(["void tj_fine(void) {}", "this is not C either;"])


def test_no_compiler_is_a_clear_not_implemented_error(monkeypatch):
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    with pytest.raises(NotImplementedError, match="no C compiler found .*cc, gcc and clang"):
        toolchain.find_compiler()


def test_c_constants():
    lang = CLanguage()
    assert lang.const(float("inf"), np.float32) == "((float)INFINITY)"
    assert lang.const(float("nan"), np.float64) == "((double)NAN)"
    assert lang.const(1.0, np.float32) == "1.0f"
    assert lang.const(-2, np.int64) == "((int64_t)-2LL)"
    assert lang.const(True, np.bool_) == "1"


def test_generated_source_has_loops_and_source_comment():
    x = np.ones((4, 8), np.float32)
    closed = jax.make_jaxpr(lambda x: lax.reduce_sum(x * 2, (1,)))(x)
    exe = compile_jaxpr(closed, get_backend("cpu"))
    src = exe.source()
    assert "for (long" in src and "acc" in src and "test_cpu.py" in src
    np.testing.assert_allclose(exe(x)[0], np.full(4, 16.0))


def test_debug_levels(monkeypatch, capsys):
    x = np.ones((4, 8), np.float32)
    closed = jax.make_jaxpr(lambda x: lax.reduce_sum(lax.exp(x), (1,)))(x)
    monkeypatch.setenv("DEBUG", "4")
    exe = compile_jaxpr(closed, get_backend("cpu"))
    exe(x)
    out = capsys.readouterr().out
    assert "compiled 1 kernel" in out and "GFLOP/s" in out and "reduce body" in out
    assert "void k0" in out


def test_devices():
    assert get_device("cpu").platform == "cpu"
    assert get_backend("interp").name == "interp"
    with pytest.raises(ValueError, match="Unknown device or backend 'tpu'"):
        get_backend("tpu")
