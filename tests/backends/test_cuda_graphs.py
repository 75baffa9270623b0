"""CUDA graphs of repeated calls (tinyjax/backends/cuda/program.py ``_Graphs``): when a program's
launches are recorded and replayed, here with a fake driver, and on a GPU against the CPU."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.backends.cuda import program as cuda

from tests.cuda_support import needs_cuda, to_host


class _FakeDriver:
    def __init__(self):
        self.captured, self.replayed, self.destroyed, self.events = [], [], [], []

    def capture(self, launch, lanes):
        exe = object()
        launch([f"stream{i}" for i in range(lanes)])
        self.captured.append(exe)
        return exe

    def event_destroy(self, ev):
        self.events.remove(ev)

    def graph_launch(self, exe):
        self.replayed.append(exe)

    def graph_destroy(self, exe):
        self.destroyed.append(exe)


def test_addresses_are_recorded_on_their_second_call_and_replayed_after():
    drv, launches = _FakeDriver(), []

    def record(ptrs, streams):
        launches.append((ptrs, streams))
        drv.events.append(object())
        return drv.events[-1:]
    graphs = cuda._Graphs(drv, record, 2)
    a, b = (1, 2, 3), (1, 2, 4)
    assert not graphs.replay(a)            # first sight: the caller launches
    assert not drv.captured
    assert graphs.replay(a)                # second: recorded (on the capture streams), replayed
    assert launches == [(a, ["stream0", "stream1"])] and drv.replayed == drv.captured
    assert not drv.events                  # the events recorded while capturing are destroyed
    assert graphs.replay(a) and len(drv.captured) == 1 and len(drv.replayed) == 2
    assert not graphs.replay(b)            # other addresses: a graph of their own, later
    assert graphs.replay(b) and len(drv.captured) == 2


def test_only_the_last_graphs_are_kept():
    drv = _FakeDriver()
    graphs = cuda._Graphs(drv, lambda ptrs, streams: [], 1)
    keys = [(i,) for i in range(graphs.KEEP + 2)]
    for k in keys:
        graphs.replay(k)
        graphs.replay(k)
    assert len(graphs.graphs) == graphs.KEEP
    assert drv.destroyed == drv.captured[:2]  # the oldest two
    graphs.replay(keys[2])                     # a hit moves to the back: evicted last
    graphs.replay((99,))
    graphs.replay((99,))
    assert keys[2] in graphs.graphs and keys[3] not in graphs.graphs


def test_the_number_of_lanes_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TINYJAX_CUDA_LANES", "1")
    assert cuda._lanes_setting() == 1
    monkeypatch.delenv("TINYJAX_CUDA_LANES")
    assert cuda._lanes_setting() == 3
    monkeypatch.setenv("TINYJAX_CUDA_LANES", "two")
    with pytest.raises(ValueError, match="TINYJAX_CUDA_LANES must be a number of streams, got 'two'"):
        cuda._lanes_setting()


# ---- on a GPU ---------------------------------------------------------------------------------

def _loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = jnp.maximum(x @ w1 + b1, 0.0)
    return jnp.mean((h @ w2 + b2 - y) ** 2)


def _sgd(params, x, y):
    loss, grads = jax.value_and_grad(_loss)(params, x, y)
    return jax.tree_util.tree_map(lambda p, g: p - 0.05 * g, params, grads), loss


@needs_cuda
def test_training_loop_with_graphs_matches_the_cpu():
    """Params fed back each step: the addresses alternate, so steps 3.. replay graphs."""
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal((16, 32)).astype(np.float32) * 0.3, np.zeros(32, np.float32)),
              (rng.standard_normal((32, 4)).astype(np.float32) * 0.3, np.zeros(4, np.float32))]
    x = rng.standard_normal((64, 16)).astype(np.float32)
    y = rng.standard_normal((64, 4)).astype(np.float32)
    with jax.config.override(jax_default_matmul_precision="highest"):
        cpu, gpu = jax.jit(_sgd, device="cpu"), jax.jit(_sgd, device="cuda")
        pc, pg = params, jax.device_put(params, jax.devices("cuda")[0])
        for step in range(8):
            pc, lc = cpu(pc, x, y)
            pg, lg = gpu(pg, x, y)
            np.testing.assert_allclose(to_host(lg), np.asarray(lc), rtol=1e-4, err_msg=step)
        for a, b in zip(jax.tree_util.tree_leaves(pg), jax.tree_util.tree_leaves(pc)):
            np.testing.assert_allclose(to_host(a), np.asarray(b), rtol=1e-4, atol=1e-6)


@needs_cuda
def test_kernels_side_by_side_give_the_same_bits_as_one_stream(monkeypatch):
    """A training step replayed as a graph whose independent kernels run on three streams
    (the weight gradients beside the rest of the backward pass) against one stream."""
    rng = np.random.default_rng(1)
    params = [(rng.standard_normal((64, 256)).astype(np.float32) * 0.1,
               np.zeros(256, np.float32)),
              (rng.standard_normal((256, 16)).astype(np.float32) * 0.1, np.zeros(16, np.float32))]
    x = rng.standard_normal((512, 64)).astype(np.float32)
    y = rng.standard_normal((512, 16)).astype(np.float32)
    dev = jax.devices("cuda")[0]
    runs = []
    for lanes in (1, 3):
        monkeypatch.setattr(cuda, "LANES", lanes)
        step, p = jax.jit(lambda p, x, y: _sgd(p, x, y)), jax.device_put(params, dev)
        for _ in range(6):  # from the third call on, graphs are replayed
            p, loss = step(p, x, y)
        runs.append([to_host(a) for a in jax.tree_util.tree_leaves((p, loss))])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@needs_cuda
def test_a_replayed_graph_reads_the_buffers_current_contents():
    f = jax.jit(lambda a: jnp.tanh(a) * 2.0 + a.sum())
    x = jax.device_put(np.ones((4, 8), np.float32), jax.devices("cuda")[0])
    for _ in range(3):  # the third call replays the graph of these addresses
        out = f(x)
    x._buf[1] = np.full(8, 3.0, np.float32)  # the same device memory, new values
    want = np.tanh(to_host(x)) * 2.0 + to_host(x).sum()
    np.testing.assert_allclose(to_host(f(x)), want, rtol=1e-6)
    del out


@needs_cuda
def test_graphs_can_be_turned_off(monkeypatch):
    made = []
    monkeypatch.setattr(cuda, "_Graphs", lambda *a: made.append(a))
    monkeypatch.setattr(cuda, "GRAPHS", False)
    f = jax.jit(lambda a: jax.nn.softmax(a, axis=0) * 3.0, device="cuda")
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    assert f.lower(a).compile().num_kernels > 1
    want = np.exp(a) / np.exp(a).sum(axis=0) * 3.0
    for _ in range(3):
        np.testing.assert_allclose(to_host(f(a)), want, rtol=1e-6)
    assert not made
