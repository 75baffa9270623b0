"""jax.distributed: several local processes (2 CPU devices each) meet at a coordinator,
see one global device list, and run programs over a mesh spanning them (collectives between
processes go through the coordinator)."""
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tinyjax as jax

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    import tinyjax as jax
    import tinyjax.numpy as jnp
    from tinyjax.sharding import NamedSharding, PartitionSpec as P
    pid, n, address = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(address, n, pid)
    assert jax.distributed.is_initialized()
    assert (jax.process_index(), jax.process_count()) == (pid, n)
    assert jax.process_indices() == list(range(n))
    assert jax.device_count() == 2 * n and jax.local_device_count() == 2
    assert [d.id for d in jax.local_devices()] == [2 * pid, 2 * pid + 1]
    assert [d.process_index for d in jax.devices()] == [p for p in range(n) for _ in (0, 1)]
    mesh = jax.make_mesh((2 * n,), ("i",))
    x = np.arange(2 * n * 3, dtype=np.float32).reshape(2 * n, 3)
    f = jax.jit(jax.shard_map(lambda b: jax.lax.psum(b, "i") * jax.lax.axis_index("i"),
                              mesh=mesh, in_specs=P("i"), out_specs=P("i")))
    y = f(jax.device_put(x, NamedSharding(mesh, P("i"))))  # typed as in_specs say
    assert len(y.addressable_shards) == 2 and not y.is_fully_addressable
    for s in y.addressable_shards:
        k = s.index[0].start
        np.testing.assert_allclose(np.asarray(s.data), x.sum(0, keepdims=True) * k)
    try:
        np.asarray(y)
        raise AssertionError("a non-addressable array was fetched")
    except RuntimeError as e:
        assert "non-addressable" in str(e)
    z = jax.jit(lambda a: jnp.tanh(a).sum(0))(jax.device_put(x, NamedSharding(mesh, P("i"))))
    for s in z.addressable_shards:
        np.testing.assert_allclose(np.asarray(s.data), np.tanh(x).sum(0), rtol=1e-5)
    rows = np.arange(6, dtype=np.float32).reshape(2, 3) + 100 * pid   # this process's rows
    g = jax.make_array_from_process_local_data(NamedSharding(mesh, P("i")), rows)
    assert g.shape == (2 * n, 3) and len(g.addressable_shards) == 2
    for s in g.addressable_shards:
        k = s.index[0].start - 2 * pid
        np.testing.assert_array_equal(np.asarray(s.data), rows[k:k + 1])
    jax.distributed.shutdown()
    print("ok", pid)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_with_two_cpu_devices_each(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    address = f"localhost:{_free_port()}"
    env = {"PYTHONPATH": str(ROOT), "TINYJAX_NUM_CPU_DEVICES": "2", "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, str(script), str(p), "2", address], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for p in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
    assert [o.strip().splitlines()[-1] for o in outs] == ["ok 0", "ok 1"]


def test_initialize_checks_its_arguments():
    with pytest.raises(ValueError, match="process_id=2 must be in"):
        jax.distributed.initialize("localhost:1", 2, 2)
    with pytest.raises(ValueError, match="coordinator_address"):
        jax.distributed.initialize(None, 2, 0)
    with pytest.raises(RuntimeError, match="before any JAX computations"):
        jax.devices()
        jax.distributed.initialize("localhost:1", 2, 0)
