"""``import tinyjax`` and the first jitted call leave SciPy's heavy subpackages for the
first call that needs them (``scipy.signal`` alone took half a second to import,
``scipy.fft`` and ``scipy.linalg`` a fifth each): a notebook's first cell and a program's
first compile stay quick.  The calls that need them still work."""
from tests.subprocess_support import run_python

HEAVY = ("scipy.signal", "scipy.linalg", "scipy.fft")


def test_import_leaves_scipy_subpackages_for_first_use():
    r = run_python(
        "import sys, tinyjax\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "import numpy as np, tinyjax.numpy as jnp\n"
        "print(float(tinyjax.jit(lambda v: (v @ v.T).sum())(jnp.ones((3, 4)))))\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "from tinyjax import lax\n"
        "from tinyjax.scipy import signal\n"
        "x = np.arange(8.0, dtype=np.float32)\n"
        "print(np.allclose(np.asarray(lax.fft(x.astype(np.complex64), 'fft', (8,))),"
        " np.fft.fft(x)))\n"
        "a = np.array([[4.0, 1.0], [1.0, 3.0]], np.float32)\n"
        "print(np.allclose(np.asarray(lax.linalg.cholesky(a)), np.linalg.cholesky(a)))\n"
        "f, p = signal.welch(np.sin(np.arange(64.0)), nperseg=16, window='hamming')\n"
        "print(p.shape)\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:6] == ["[]", "36.0", "[]", "True", "True", "(9,)"]
