"""Environment variables: declared once (tinyjax.config.ENVIRONMENT), read only through
tinyjax.config, each declared one read somewhere, documented on the Configuration page;
on/off and level semantics (DEBUG=0 is off everywhere)."""
import ast
from pathlib import Path

import numpy as np
import pytest

import tinyjax as jax
from tinyjax.config import ENVIRONMENT, debug_level, env, env_flag, env_int, env_str

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tinyjax"
READERS = {"env", "env_str", "env_flag", "env_int", "set_env_default"}
OS_ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def test_only_config_reads_the_environment():
    found = []
    for path, tree in _modules():
        if path == PACKAGE / "config.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in OS_ENVIRONMENT and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: os.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module == "os" and \
                    {a.name for a in node.names} & OS_ENVIRONMENT:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from os import")
    assert not found, found


def test_every_variable_read_is_declared_and_every_declared_one_is_read():
    read = set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in READERS and node.args and \
                    isinstance(node.args[0], ast.Constant):
                read.add(node.args[0].value)
    read.add("DEBUG")  # debug_level()
    read |= {"TINYJAX_ENABLE_X64", "JAX_ENABLE_X64"}  # jax_enable_x64's default
    # the defaults of jax_debug_nans, jax_debug_infs, jax_disable_jit, jax_log_compiles
    read |= {"JAX_DEBUG_NANS", "JAX_DEBUG_INFS", "JAX_DISABLE_JIT", "JAX_LOG_COMPILES"}
    assert read - set(ENVIRONMENT) == set(), "read but not declared"
    assert set(ENVIRONMENT) - read == set(), "declared but never read"


def test_the_configuration_page_lists_every_variable():
    page = (ROOT / "docs" / "configuration.rst").read_text()
    assert ".. tinyjax-environment::" in page  # the table, built from ENVIRONMENT
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert "ENVIRONMENT" in conf


@pytest.mark.parametrize("value, level", [(None, 0), ("", 0), ("0", 0), ("false", 0),
                                          ("1", 1), ("3", 3), ("true", 1), ("junk", 1)])
def test_debug_levels(monkeypatch, value, level):
    if value is None:
        monkeypatch.delenv("DEBUG", raising=False)
    else:
        monkeypatch.setenv("DEBUG", value)
    assert debug_level() == level


def test_debug_0_prints_nothing_when_jit_compiles(monkeypatch, capsys):
    x = np.arange(3, dtype=np.float32)
    monkeypatch.setenv("DEBUG", "0")
    jax.jit(lambda v: v * 2 + 1)(x)
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("DEBUG", "1")
    jax.jit(lambda v: v * 2 + 1)(x)
    assert "compiled" in capsys.readouterr().out


@pytest.mark.parametrize("value, on", [(None, False), ("", False), ("0", False),
                                       ("off", False), ("1", True), ("yes", True)])
def test_flags(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("TINYJAX_NO_RUNTIME", raising=False)
    else:
        monkeypatch.setenv("TINYJAX_NO_RUNTIME", value)
    assert env_flag("TINYJAX_NO_RUNTIME") is on


def test_defaults_and_integers(monkeypatch):
    monkeypatch.delenv("TINYJAX_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("TINYJAX_OMP_SCHEDULE", raising=False)
    assert env_flag("TINYJAX_CUDA_GRAPHS") and env_str("TINYJAX_OMP_SCHEDULE") == "guided"
    monkeypatch.setenv("TINYJAX_CUDA_LANES", "2")
    assert env_int("TINYJAX_CUDA_LANES") == 2 and env("TINYJAX_CUDA_LANES") == "2"
    monkeypatch.setenv("TINYJAX_CUDA_LANES", "two")
    with pytest.raises(ValueError, match="TINYJAX_CUDA_LANES must be an integer, got 'two'"):
        env_int("TINYJAX_CUDA_LANES")
    with pytest.raises(KeyError):
        env("NOT_A_TINYJAX_VARIABLE")


def _run_with_environment(code: str, **variables: str):
    import os
    import subprocess
    import sys
    env_vars = {k: v for k, v in os.environ.items() if k != "TINYJAX_DEVICE"}
    env_vars.update(variables, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env_vars, capture_output=True,
                          text=True, timeout=120)


def test_the_default_device_is_read_once_at_import():
    code = ("import os, tinyjax as jax, tinyjax.numpy as jnp\n"
            "print(jax.config.tinyjax_device, jax.default_backend())\n"
            "os.environ['TINYJAX_DEVICE'] = 'cpu'\n"  # too late: the flag decides now
            "print(jax.config.tinyjax_device, jnp.ones(2).devices())\n")
    r = _run_with_environment(code, TINYJAX_DEVICE="Interp")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["interp interp", "interp {interp(id=0)}"]
    r = _run_with_environment("import tinyjax", TINYJAX_DEVICE="tpu")
    assert r.returncode != 0
    assert "TINYJAX_DEVICE must be one of ['cpu', 'cuda', 'gpu', 'interp'], got 'tpu'" \
        in r.stderr


def test_the_default_device_flag(monkeypatch):
    from tinyjax.config import config
    x = np.arange(3.0, dtype=np.float32)
    monkeypatch.setattr(config, "tinyjax_device", "interp")
    assert jax.default_backend() == "interp"
    y = jax.jit(lambda v: v + 1)(x)
    assert {d.platform for d in y.devices()} == {"interp"}
    config.update("tinyjax_device", "CPU")  # any case
    assert config.tinyjax_device == "cpu" and jax.default_backend() == "cpu"
    z = jax.jit(lambda v: v + 1)(x)  # the device is part of the cache key
    assert {d.platform for d in z.devices()} == {"cpu"}
    np.testing.assert_array_equal(np.asarray(y), np.asarray(z))
    config.update("tinyjax_device", "gpu")
    assert config.tinyjax_device == "cuda"  # JAX's platform name for the CUDA backend
    with pytest.raises(ValueError, match="tinyjax_device must be one of"):
        config.update("tinyjax_device", "tpu")
    with pytest.raises(ValueError, match="tinyjax_device must be one of"):
        config.update("tinyjax_device", 3)
