"""The communicators on their own: shared memory between threads against numpy, a failing
rank releasing the others, the coordinator's exchange between threads; on a GPU, NCCL with
a communicator of one GPU and of every GPU."""
import threading

import numpy as np
import pytest

from tinyjax.backends.collectives.shm import SharedMemoryCommunicator, SharedMemoryGroup
from tinyjax.backends.collectives.tcp import coordinator_communicator
from tinyjax.backends.coordinator import CoordinatorServer, connect

from tests.cuda_support import needs_cuda

RNG = np.random.default_rng(4)


def _run_ranks(n, fn):
    """``fn(rank)`` on ``n`` threads at once; the results in rank order."""
    out, errors = [None] * n, []

    def run(r):
        try:
            out[r] = fn(r)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=run, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return out


def _check_operations(make_comm, n):
    xs = [RNG.standard_normal((n * 2, 3)).astype(np.float32) for _ in range(n)]

    def ops(r):
        c = make_comm(r)
        return (c.all_reduce(xs[r], "sum"), c.all_reduce(xs[r], "max"), c.all_gather(xs[r]),
                c.reduce_scatter(xs[r], "sum"), c.permute(xs[r], [(k, (k + 1) % n)
                                                                  for k in range(n)]),
                c.all_to_all(xs[r]))
    results = _run_ranks(n, ops)
    total = sum(xs[1:], xs[0])
    for r, (s, m, g, rs, pm, a2a) in enumerate(results):
        np.testing.assert_allclose(s, total, rtol=1e-6)
        np.testing.assert_array_equal(m, np.max(xs, axis=0))
        np.testing.assert_array_equal(g, np.concatenate(xs))
        np.testing.assert_allclose(rs, total[2 * r:2 * r + 2], rtol=1e-6)
        np.testing.assert_array_equal(pm, xs[(r - 1) % n])
        np.testing.assert_array_equal(a2a, np.concatenate([x[2 * r:2 * r + 2] for x in xs]))
    # every rank's sum is bit-identical
    assert all(np.array_equal(results[0][0], res[0]) for res in results)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_shared_memory(n):
    group = SharedMemoryGroup(n)
    _check_operations(lambda r: SharedMemoryCommunicator(group, r), n)


def test_a_failing_rank_releases_the_others():
    group = SharedMemoryGroup(3)

    def fn(r):
        if r == 1:
            group.abort()
            raise ValueError("rank 1 failed")
        return SharedMemoryCommunicator(group, r).all_reduce(np.ones(2), "sum")
    with pytest.raises((ValueError, RuntimeError)):
        _run_ranks(3, fn)


def test_through_the_coordinator():
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    server = CoordinatorServer(f"localhost:{port}", 1)
    try:
        client = connect(f"localhost:{port}", 10)
        _check_operations(lambda r: coordinator_communicator(client, "g", 3, r), 3)
        client.put("k", b"v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.shutdown()


@needs_cuda
def test_nccl_on_every_gpu():
    """NCCL communicators (ncclCommInitAll) over every GPU, one GPU too: the operations
    against numpy (runs on a GPU machine; with one GPU, a communicator of one)."""
    import tinyjax as jax
    from tinyjax.backends import get_backend
    from tinyjax.backends.collectives.nccl import communicators_in_process
    gpus = jax.devices("gpu")
    for group in ([gpus[:1]] + ([gpus] if len(gpus) > 1 else [])):
        comms = communicators_in_process([group], get_backend)
        n = len(group)

        def make_comm(r, comms=comms, group=group):
            comm = comms[group[r]]

            class OnDevice:  # host arrays in and out, device buffers in between
                def __getattr__(self, name):
                    op = getattr(comm, name)

                    def call(x, *args):
                        out = op(get_backend(group[r]).put(x), *args)
                        return out.numpy()
                    return call
            return OnDevice()
        _check_operations(make_comm, n)
