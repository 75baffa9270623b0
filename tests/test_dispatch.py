"""Device placement without a GPU: ``devices``, ``device_put``, committed arrays, eager ops
and jit on a device backend, mixing errors.

A simulated device backend ("sim") keeps its buffers out of numpy's reach (host reads go
through ``.numpy()``, as with CUDA) and runs the CPU backend's kernels on them, so the
runtime paths of a device backend — buffer conversion, device-resident outputs, eager
single-op programs, control-flow programs over device buffers — run here."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.compiler.walk import load_walked
from tinyjax.backends import get_backend, register_backend

from tests.cuda_support import needs_cuda


class SimBuffer:
    """A device buffer of the simulated backend: host memory that only the backend touches."""

    def __init__(self, mem: np.ndarray):
        self._mem = mem
        self.shape, self.dtype = mem.shape, mem.dtype

    size = property(lambda self: self._mem.size)
    nbytes = property(lambda self: self._mem.nbytes)
    ndim = property(lambda self: self._mem.ndim)

    def numpy(self):
        SimBackend.reads += 1
        return self._mem.copy()

    def __array__(self, dtype=None, copy=None):
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    def reshape(self, *shape):
        return SimBuffer(self._mem.reshape(*shape))

    def __getitem__(self, i):
        return SimBuffer(self._mem[i, ...])

    def __setitem__(self, i, value):
        self._mem[i] = value._mem if isinstance(value, SimBuffer) else value

    def __bool__(self):
        return bool(self.numpy())

    def __int__(self):
        return int(self.numpy())


class SimBackend:
    name = "sim"
    host = False
    loop_ir_target = "cpu"  # compiles through the C backend
    reads = 0  # host reads of device buffers, counted

    def __init__(self):
        self.cpu = get_backend("cpu")

    def alloc(self, shape, dtype):
        return SimBuffer(np.empty(shape, dtype))

    def zeros(self, shape, dtype):
        return SimBuffer(np.zeros(shape, dtype))

    def put(self, value):
        return SimBuffer(np.array(value))

    def asbuffer(self, value, dtype=None):
        if isinstance(value, SimBuffer):
            if dtype is None or value.dtype == dtype:
                return value
            value = value.numpy()
        a = np.asarray(value)
        return self.put(a if dtype is None else a.astype(dtype))

    def copy(self, buf):
        return SimBuffer(buf._mem.copy())

    def synchronize(self):
        pass

    def to_host(self, buf):
        return buf.numpy()

    def launch_info(self, kernel):
        return None

    def render(self, kernels):
        return self.cpu.render(kernels)

    def compile(self, kernels):
        return self.cpu.compile(kernels)

    def view(self, buf, byte_offset, dtype, size):
        flat = buf._mem.reshape(-1).view(np.uint8)
        return SimBuffer(flat[byte_offset:byte_offset + size * dtype.itemsize].view(dtype))

    def copy_into(self, dst, src):
        dst._mem[...] = src._mem

    def load_program(self, program):
        return load_walked(self, program)

    def make_launcher(self, fn, kernel):
        launch = self.cpu.make_launcher(fn, kernel)
        return lambda bufs: launch([b._mem for b in bufs])


register_backend("sim", SimBackend, platform="sim")
SIM = jax.devices("sim")[0]
X = np.arange(12, dtype=np.float32).reshape(3, 4) / 7


@pytest.fixture(params=["sim", pytest.param("cuda", marks=needs_cuda)])
def dev(request):
    return jax.devices(request.param)[0]


def on(x, device):
    """``x`` is committed to ``device`` and holds a device buffer (not a numpy array)."""
    return x.committed and x.device == device and not isinstance(x._buf, np.ndarray)


def on_sim(x):
    return type(x._buf) is SimBuffer and on(x, SIM)


def test_device_api():
    from tinyjax.config import env_num_cpu_devices
    n = env_num_cpu_devices()  # the suite's (tests/conftest.py), -1: one
    assert jax.devices() == jax.devices("cpu") and jax.default_backend() == "cpu"
    assert [d.id for d in jax.devices()] == list(range(max(n, 1)))
    assert repr(jax.devices("cpu")[0]) == "CpuDevice(id=0)"
    assert jax.device_count() == max(n, 1) and jax.local_devices() == jax.devices()
    assert jax.process_index() == 0 and jax.process_count() == 1
    assert jax.process_indices() == [0]
    with pytest.warns(DeprecationWarning, match="host_id has been renamed to jax.process_index"):
        assert jax.host_id() == 0
    with pytest.warns(DeprecationWarning, match="renamed to jax.process_count"):
        assert jax.host_count() == 1
    with pytest.warns(DeprecationWarning, match="renamed to jax.process_indices"):
        assert jax.host_ids() == [0]
    assert SIM.platform == "sim" and SIM.backend == "sim"
    with pytest.raises(RuntimeError, match="Unknown backend nonexistent"):
        jax.devices("nonexistent")


def test_cpu_device_count_from_the_flag():
    """``jax.config.update('jax_num_cpu_devices', N)`` before the devices are first listed
    (as JAX's tutorials start); afterwards a change is refused."""
    import os
    import subprocess
    import sys
    code = ("import tinyjax as jax; jax.config.update('jax_num_cpu_devices', 4); "
            "print(len(jax.devices()), jax.devices()[3]); "
            "jax.config.update('jax_num_cpu_devices', 2)")
    env = {k: v for k, v in os.environ.items() if "NUM_CPU_DEVICES" not in k
           and k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.getcwd()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env)
    assert out.stdout.split() == ["4", "cpu:3"]
    assert "jax_num_cpu_devices" in out.stderr and out.returncode != 0
    with pytest.raises(ValueError, match="jax_num_cpu_devices"):
        jax.config.update("jax_num_cpu_devices", "four")


def test_device_put_and_get():
    x = jax.device_put(X, SIM)
    assert on_sim(x) and x.shape == (3, 4) and x.dtype == np.float32
    reads = SimBackend.reads
    np.testing.assert_array_equal(np.asarray(x), X)
    np.testing.assert_array_equal(np.asarray(x), X)
    assert SimBackend.reads == reads + 1  # the host copy is fetched once and kept
    tree = jax.device_put({"a": X, "b": [1.0, np.int32(2)]}, SIM)
    assert all(on_sim(leaf) for leaf in jax.tree_util.tree_leaves(tree))
    assert tree["b"][0].weak_type and not tree["b"][1].weak_type
    back = jax.device_get(tree)
    assert isinstance(back["a"], np.ndarray) and np.array_equal(back["a"], X)
    host = jax.device_put(x, jax.devices("cpu")[0])
    assert host.device == jax.devices("cpu")[0] and host.committed
    assert jax.device_put(x, SIM) is x
    assert not jnp.asarray(X).committed  # constructors make uncommitted host arrays


def test_eager_ops_stay_on_the_device(dev):
    x = jax.device_put(X, dev)
    y = jnp.tanh(x) * 2 + 1.0
    assert on(y, dev)
    np.testing.assert_allclose(np.asarray(y), np.tanh(X) * 2 + 1, rtol=1e-6)
    s = x.sum(axis=0)
    assert on(s, dev) and np.allclose(np.asarray(s), X.sum(0))
    i = jnp.argmax(x, axis=1)
    assert on(i, dev) and i.dtype == jnp.int32 and np.array_equal(np.asarray(i), X.argmax(1))
    # uncommitted host arrays and scalars join a device computation
    z = x + jnp.ones(4)
    assert on(z, dev) and np.allclose(np.asarray(z), X + 1)
    assert on(x[1:, ::2], dev) and np.array_equal(np.asarray(x[1:, ::2]), X[1:, ::2])
    assert on(x.T, dev) and on(x.reshape(-1), dev)
    a, b = jnp.split(x, 2, axis=1)
    assert on(a, dev) and np.array_equal(np.asarray(b), X[:, 2:])
    assert float(x[1, 1]) == pytest.approx(X[1, 1])
    assert "Array(" in repr(x) and x.block_until_ready() is x
    assert on(x.copy(), dev) and np.array_equal(np.asarray(x.copy()), X)


def test_eager_programs_are_cached_per_signature(dev):
    from tinyjax import dispatch
    x = jax.device_put(X, dev)
    top = x[:2]
    jnp.sin(x)
    n = len(dispatch._cache)
    for _ in range(3):
        jnp.sin(x)
    assert len(dispatch._cache) == n
    jnp.sin(top)
    assert len(dispatch._cache) == n + 1


def test_eager_errors_are_the_primitives(dev):
    x = jax.device_put(X, dev)
    with pytest.raises(TypeError, match="add got incompatible shapes for broadcasting"):
        lax.add(x, jax.device_put(np.ones(5, np.float32), dev))


def test_mixing_committed_devices_is_an_error(dev):
    x = jax.device_put(X, dev)
    c = jax.device_put(X, jax.devices("cpu")[0])
    with pytest.raises(ValueError, match=r"incompatible devices for primitive `add`.*"
                                         r"float32\[3,4\] on .*\(id=0\).*CpuDevice"):
        x + c
    with pytest.raises(ValueError, match=r"incompatible devices for jit\(<lambda>\)"):
        jax.jit(lambda a, b: a * b)(x, c)


def test_jit_runs_where_the_arguments_are(dev):
    x = jax.device_put(X, dev)

    @jax.jit
    def f(a, b):
        return jnp.exp(a) @ b.T, a.sum()

    out, total = f(x, x)
    assert on(out, dev) and on(total, dev)
    np.testing.assert_allclose(np.asarray(out), np.exp(X) @ X.T, rtol=1e-5)
    host_out, _ = f(X, X)  # uncommitted arguments: the default device
    assert not host_out.committed and isinstance(host_out._value, np.ndarray)
    g = jax.jit(lambda a: a * 2, device=dev)
    assert on(g(X), dev) and np.array_equal(np.asarray(g(X)), X * 2)
    assert on(jax.jit(lambda a: a.T)(x), dev)  # a view output of a device buffer
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda a: a[:, ::-1].T)(x)), X[:, ::-1].T)


def test_jit_grad_and_control_flow_on_the_device(dev):
    w = jax.device_put(X[:, :3], dev)
    xs = jax.device_put(np.linspace(0, 1, 20, dtype=np.float32).reshape(5, 4), dev)

    def loss(w, xs):
        def step(h, x):
            h = jnp.tanh(x[:3] @ w + h)
            return h, h.sum()
        h, ys = lax.scan(step, jnp.zeros(3), xs)
        h = lax.cond(h.sum() > 0, lambda h: h * 2, lambda h: h - 1, h)
        return (h ** 2).sum() + ys.sum()

    g = jax.jit(jax.grad(loss))(w, xs)
    assert on(g, dev)
    want = jax.grad(loss)(np.asarray(w), np.asarray(xs))
    np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-5, atol=1e-6)
    halve = jax.jit(lambda h, n: lax.fori_loop(0, n, lambda i, h: h * 0.5, h))  # a while
    out = halve(jax.device_put(X, dev), 3)
    assert on(out, dev) and np.allclose(np.asarray(out), X / 8)
    # eager control flow on device arrays compiles the primitive's program
    out = lax.fori_loop(0, 3, lambda i, c: c * 2 + 1, jax.device_put(X, dev))
    assert on(out, dev) and np.allclose(np.asarray(out), ((X * 2 + 1) * 2 + 1) * 2 + 1)


def test_default_device_from_the_configuration(monkeypatch, dev):
    monkeypatch.setattr(jax.config, "tinyjax_device", dev.backend)
    assert jax.devices() == [dev] and jax.default_backend() == dev.platform
    x = jnp.asarray(X)
    assert on(x, dev) and on(jnp.zeros((2, 2)), dev) and on(jnp.arange(3), dev)
    y = jax.jit(lambda a: a + 1)(X)
    assert on(y, dev) and np.array_equal(np.asarray(y), X + 1)
    assert on(jax.random.normal(jax.random.PRNGKey(0), (3,)) + x[0, :3], dev)


def test_constructors_take_a_device(dev):
    for x in (jnp.zeros((2, 3), device=dev), jnp.ones(3, jnp.int32, device=dev),
              jnp.full((2,), 7.0, device=dev), jnp.arange(5, device=dev),
              jnp.arange(0.0, 1.0, 0.25, device=dev), jnp.linspace(0, 1, 4, device=dev),
              jnp.eye(3, device=dev), jnp.asarray(X, device=dev), jnp.array([1, 2], device=dev),
              jnp.zeros_like(X, device=dev), jnp.astype(X, jnp.int32, device=dev)):
        assert on(x, dev)
    np.testing.assert_array_equal(np.asarray(jnp.arange(5, device=dev)), np.arange(5))
    np.testing.assert_array_equal(np.asarray(jnp.eye(3, device=dev)), np.eye(3))
    # under jit the placement is the compiled program's
    out = jax.jit(lambda x: x + jnp.ones(4, device=dev))(X)
    np.testing.assert_allclose(np.asarray(out), X + 1)


def test_ops_on_arrays_committed_to_the_cpu_stay_committed():
    cpu = jax.devices("cpu")[0]
    c = jax.device_put(X, cpu)
    for y in (c * 2 + 1, jnp.tanh(c), c.sum(axis=0), lax.add(c, 1.0)):
        assert y.committed and y.device == cpu and isinstance(y._buf, np.ndarray)
    np.testing.assert_allclose(np.asarray(lax.add(c, 1.0)), X + 1)
    assert (c + jnp.ones(4)).device == cpu  # an uncommitted array joins it
