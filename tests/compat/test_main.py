"""``python -m tinyjax``: a script runs as ``python script.py`` would (``__main__``, its
``sys.argv``, its directory on ``sys.path``, its traceback and exit status), with ``jax``
resolving to tinyjax; ``-m module`` and ``-c command`` too."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tinyjax(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tinyjax", *args], cwd=cwd, text=True,
                          capture_output=True, env={"PYTHONPATH": str(ROOT)})


def test_a_script_runs_as_main_with_its_arguments(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 41\n")
    (tmp_path / "prog.py").write_text(textwrap.dedent("""\
        import sys
        import jax, jax.numpy as jnp
        import helper  # from the script's own directory
        print(__name__, sys.argv[1:], jax.__name__, int(jnp.sum(jnp.arange(3))) + helper.VALUE)
        """))
    done = _tinyjax(str(tmp_path / "prog.py"), "a", "--b", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "__main__ ['a', '--b'] tinyjax 44\n"


def test_an_uncaught_exception_prints_the_programs_traceback(tmp_path):
    (tmp_path / "fails.py").write_text("def f():\n    raise ValueError('boom')\nf()\n")
    done = _tinyjax("fails.py", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith('  File "fails.py", line 3')
    assert lines[-1] == "ValueError: boom"
    assert "runpy" not in done.stderr and "__main__.py" not in done.stderr


def test_sys_exit_passes_through(tmp_path):
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    assert _tinyjax("exits.py", cwd=tmp_path).returncode == 3


def test_module_and_command_forms(tmp_path):
    (tmp_path / "mod.py").write_text("import sys, jax\nprint(__name__, sys.argv[1:], jax.__name__)\n")
    done = _tinyjax("-m", "mod", "x", cwd=tmp_path)
    assert done.stdout == "__main__ ['x'] tinyjax\n", done.stderr
    done = _tinyjax("-c", "import jax; print(jax.numpy.__name__)", cwd=tmp_path)
    assert done.stdout == "tinyjax.numpy\n"


def test_usage():
    done = _tinyjax(cwd=ROOT)
    assert done.returncode == 2 and done.stderr.startswith("usage: python -m tinyjax")
