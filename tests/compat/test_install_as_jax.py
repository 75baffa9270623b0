"""install_as_jax: ``jax`` and ``jax.X`` are tinyjax's own modules; what tinyjax lacks is a
ModuleNotFoundError naming both spellings; a real jax already imported is refused."""
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import tinyjax
import tinyjax.numpy
from tinyjax.compat import install_as_jax, is_installed
from tinyjax.config import Config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def installed():
    install_as_jax()
    assert is_installed()


def test_jax_and_its_modules_are_tinyjax_modules():
    import jax
    import jax.numpy as jnp
    from jax.tree_util import tree_map
    assert jax is tinyjax and jnp is tinyjax.numpy
    assert tree_map is tinyjax.tree_util.tree_map
    assert importlib.import_module("jax.nn.initializers") is tinyjax.nn.initializers
    assert jnp.__spec__.name == "tinyjax.numpy"  # the module keeps its own spec


def test_jax_names_kept_elsewhere_resolve_to_the_compat_package():
    import jax._src.traceback_util as tu
    from jax.interpreters import mlir
    from jax.interpreters import ad, batching
    assert tu.__name__ == "tinyjax.compat._src.traceback_util"
    assert mlir.__name__ == "tinyjax.compat.mlir"
    assert ad is tinyjax.interpreters.ad and batching is tinyjax.interpreters.batching
    import jax.lib
    assert jax.lib.__version__ == ".".join(map(str, tinyjax.__version_info__))


def test_a_module_tinyjax_lacks_is_a_clear_import_error():
    with pytest.raises(ModuleNotFoundError, match="jax.experimental.pallas.*tinyjax"):
        importlib.import_module("jax.experimental.pallas")


def test_an_attribute_that_is_not_a_module_is_not_aliased():
    with pytest.raises(ModuleNotFoundError, match="jax.config is a Config, not a module"):
        importlib.import_module("jax.config")
    assert isinstance(tinyjax.config, Config)


def test_installing_twice_does_nothing():
    before = list(sys.meta_path)
    install_as_jax()
    assert sys.meta_path == before


def test_a_real_jax_already_imported_is_refused():
    program = ("import sys, types\n"
               "sys.modules['jax'] = types.ModuleType('jax')\n"
               "import tinyjax\n"
               "tinyjax.install_as_jax()\n")
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert "RuntimeError: tinyjax.install_as_jax(): a module named 'jax' is already " \
           "imported" in done.stderr
