"""Programs with loops and branches on the CUDA device (tinyjax/backends/cuda/device_loops.py):
one graph with conditional nodes, the loops run device-side -- no kernel launched from the
host per iteration and no predicate read back -- and the results equal eager ones.  The
helper kernels compile with nvcc where there is one (no GPU needed)."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends.cuda.device_loops import SUPPORT_SOURCE

from tests.cuda_support import assert_nvcc_compiles, needs_cuda, needs_nvcc, to_host

rng = np.random.default_rng(3)


@needs_nvcc
def test_the_helper_kernels_compile(tmp_path):
    assert_nvcc_compiles(SUPPORT_SOURCE, tmp_path)


def _close(got, want, rtol=2e-4, atol=2e-5):
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(to_host(g), np.asarray(w), rtol=rtol, atol=atol)


class _Launches:
    """Counts the kernels launched from the host and the graphs launched."""

    def __init__(self, monkeypatch):
        from tinyjax.backends import get_backend
        drv = get_backend("cuda").driver
        self.kernels = self.graphs = 0
        launch, graph = drv.launch_params, drv.graph_launch

        def counted_launch(*a, **k):
            self.kernels += 1
            return launch(*a, **k)

        def counted_graph(*a, **k):
            self.graphs += 1
            return graph(*a, **k)
        monkeypatch.setattr(drv, "launch_params", counted_launch)
        monkeypatch.setattr(drv, "graph_launch", counted_graph)


CASES = {
    "fori_loop": (lambda y: lax.fori_loop(0, 500, lambda i, y: y + 1e-3 * jnp.sin(y), y),
                  lambda: (np.linspace(-1, 1, 16).astype(np.float32),)),
    "scan_rnn": (lambda w, xs: lax.scan(lambda h, x: (jnp.tanh(h @ w + x),) * 2,
                                        jnp.zeros(8, jnp.float32), xs, reverse=True),
                 lambda: (rng.standard_normal((8, 8)).astype(np.float32) * 0.4,
                          rng.standard_normal((40, 8)).astype(np.float32))),
    "while": (lambda x: lax.while_loop(lambda c: c[0] < 1000.0,
                                       lambda c: (c[0] * 1.7 + 1.0, c[1] + 1), (x, 0)),
              lambda: (np.float32(0.25),)),
    "cond_in_scan": (lambda xs: lax.scan(
        lambda c, x: (lax.cond(jnp.sum(x) > 0, lambda c: c + x, lambda c: c * 0.5, c),
                      lax.switch(jnp.int32(jnp.sum(x) > 1) + jnp.int32(jnp.sum(x) > -1),
                                 [jnp.sin, jnp.cos, jnp.tanh], c)),
        jnp.zeros(4, jnp.float32), xs), lambda: (rng.standard_normal((30, 4)).astype(np.float32),)),
    "nested": (lambda xs: lax.scan(
        lambda c, x: (lax.fori_loop(0, 3, lambda i, a: a * 0.9 + x, c), jnp.sum(c)),
        jnp.ones(4, jnp.float32), xs), lambda: (rng.standard_normal((6, 4)).astype(np.float32),)),
}


@needs_cuda
@pytest.mark.parametrize("case", sorted(CASES))
def test_loops_run_on_the_device(case, monkeypatch):
    f, args = CASES[case]
    args = args()
    jf = jax.jit(f, device="cuda")
    compiled = jf.lower(*args).compile()
    assert getattr(compiled.executable._run, "device_loops", None) is not None
    _close(jf(*args), f(*args))                  # the first call builds the graph
    counts = _Launches(monkeypatch)
    for _ in range(3):
        _close(jf(*args), f(*args))
    assert counts.kernels == 0 and counts.graphs == 3


@needs_cuda
def test_rnn_grad_on_the_device():
    w = rng.standard_normal((16, 16)).astype(np.float32) * 0.3
    xs = rng.standard_normal((100, 16)).astype(np.float32)

    def loss(w, xs):
        h, ys = lax.scan(lambda h, x: (jnp.tanh(h @ w + x),) * 2, jnp.zeros(16), xs)
        return jnp.sum(ys * ys) + jnp.sum(h)
    g = jax.value_and_grad(loss)
    _close(jax.jit(g, device="cuda")(w, xs), g(w, xs), rtol=1e-3, atol=1e-4)
