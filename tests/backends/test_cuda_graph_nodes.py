"""The nodes of a device-loop graph (tinyjax/backends/cuda/device_loops.py), built over a
driver that records them (no GPU needed): the copies between two kernels share one
``tj_copies`` node, a scan body's last copies and its counter step share one, and a copy
that reads or overwrites what a pending one writes goes into a node of its own.  Values on
the GPU: tests/backends/test_cuda_program.py and the cuda control-flow sweep."""
import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends.cuda.device_loops import MAX_COPIES, ONE_BLOCK_BYTES, DeviceLoops
from tinyjax.compiler.steps import Launch, Loop, walk_steps


class _Node:
    def __init__(self, fn, values, grid=None):
        self.fn, self.values, self.grid = fn, values, grid


class _RecordingDriver:
    """The graph calls DeviceLoops makes: every graph a list of nodes (kernel: its
    function name and 64-bit parameter words; conditional: its body graph)."""

    def __init__(self):
        self.tables: dict = {}   # device address -> the tj_at table written there
        self.n_params: dict = {}

    def graph_create(self):
        return []

    def htod(self, dst, host_ptr, nbytes):
        import ctypes
        self.tables[dst] = list((ctypes.c_int64 * (nbytes // 8)).from_address(host_ptr))

    def conditional_handle(self, graph):
        return 7

    def add_kernel_node(self, graph, deps, fn, grid, block, shared, params):
        import ctypes
        first = ctypes.cast(params, ctypes.POINTER(ctypes.c_void_p))[0]
        words = ctypes.cast(first, ctypes.POINTER(ctypes.c_uint64))
        n = 5 + 11 * MAX_COPIES if fn == "tj_copies" else self.n_params.get(fn, 1)
        graph.append(_Node(fn, [words[i] for i in range(n)], grid[0]))
        return len(graph)

    def add_conditional_node(self, graph, deps, handle, kind):
        body: list = []
        graph.append(_Node("while", body))
        return len(graph), body

    def instantiate(self, graph):
        return graph


class _Buf:
    ptr = 1 << 32


def _graph(f, *args):
    program = jax.jit(f).lower(*args).compile().executable.program

    class _K:  # one launch per program kernel, named by it
        def __init__(self, k):
            self.steps = [(k.name, (1, 1, 1), (1, 1, 1), 0, None, None)]
    kernels = {id(st.kernel): _K(st.kernel) for st in walk_steps(program.steps)
               if isinstance(st, Launch)}
    drv = _RecordingDriver()
    drv.n_params = {st.kernel.name: len(st.refs) + 1 for st in walk_steps(program.steps)
                    if isinstance(st, Launch)}
    support = {n: n for n in ("tj_loop_start", "tj_while_test", "tj_switch_select",
                              "tj_copies", "tj_view_copy")}
    offset = iter(range(1 << 20, 1 << 40, 1 << 20))
    loops = DeviceLoops(drv, program, kernels, support,
                        lambda n: type("B", (), {"ptr": next(offset)})())
    n_args = len(program.consts) + len(program.inputs) + len(program.outputs)
    bases = tuple(range(1 << 40, (1 << 40) + (n_args + 1) * (1 << 30), 1 << 30))
    return program, loops, loops.build(bases)


def _rnn(w, xs):
    h, ys = lax.scan(lambda h, x: (jnp.tanh(h @ w + x), jnp.sum(h * h)),
                     jnp.zeros(16, jnp.float32), xs)
    return jnp.sum(ys) + jnp.sum(h)


def test_a_scan_body_is_its_kernels_and_one_node_that_copies_and_steps():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 16)).astype(np.float32)
    xs = rng.standard_normal((50, 16)).astype(np.float32)
    program, loops, graph = _graph(jax.value_and_grad(_rnn), w, xs)
    bodies = [n.values for n in graph if n.fn == "while"]
    scans = [st for st in walk_steps(program.steps) if isinstance(st, Loop)]
    assert len(bodies) == len(scans) == 2
    at_counter = 0
    for loop, body in zip(scans, bodies):
        launches = [st for st in loop.body if isinstance(st, Launch)]
        assert [n.fn for n in body] == [st.kernel.name for st in launches] + ["tj_copies"]
        assert body[-1].values[1] == loops.counter[id(loop)]   # it steps this loop
        for st, node in zip(launches, body):
            # an operand at the counter: the kernel gets its buffer's start and the table
            # of (counters, byte stride) pairs that move it, the others a zero pair
            table = loops.drv.tables.get(node.values[-1], [0] * 4 * len(st.refs))
            for j, r in enumerate(st.refs):
                want = [loops.counter[id(lp)] if k % 2 == 0 else s * r.dtype.itemsize
                        for lp, s in r.terms for k in range(2)]
                assert table[4 * j:4 * j + 4] == want + [0] * (4 - len(want))
                at_counter += bool(r.terms)
    assert at_counter >= 2   # xs[i] forward, the residuals' slices backward


def test_dependent_copies_share_a_node_only_where_it_runs_them_in_order():
    program, _, _ = _graph(_rnn, np.eye(16, dtype=np.float32), np.ones((3, 16), np.float32))
    loops = DeviceLoops(_RecordingDriver(), program, {}, {"tj_copies": "tj_copies"},
                        lambda n: _Buf())
    graph: list = []
    loops._pending, loops._ordered = [], False
    small, big = 64, ONE_BLOCK_BYTES    # one block (in order) / side by side
    deps = loops._copy(graph, [], 1000, 2000, small)
    deps = loops._copy(graph, deps, 5000, 1032, 16)     # reads what the first writes
    assert graph == []                                  # small: the same node, in order
    deps = loops._flush(graph, deps)
    assert [n.values[0] for n in graph] == [2]

    a, b, c = 10**7, 2 * 10**7, 3 * 10**7
    deps = loops._copy(graph, deps, a, b, big)
    deps = loops._copy(graph, deps, c, 4 * 10**7, 16)    # independent: the same node
    assert len(graph) == 1
    deps = loops._copy(graph, deps, 5 * 10**7, a + 8, 16)   # reads what the first writes
    assert [n.values[0] for n in graph] == [2, 2]
    deps = loops._copy(graph, deps, 6 * 10**7, 7 * 10**7, big)  # independent
    deps = loops._copy(graph, deps, a, 8 * 10**7, 16)      # overwrites the third's source
    assert [n.values[0] for n in graph] == [2, 2, 2]
    for i in range(MAX_COPIES):                         # at most MAX_COPIES per node
        deps = loops._copy(graph, deps, 10**9 + 100 * i, 2 * 10**9 + 100 * i, 16)
    loops._flush(graph, deps)
    assert [n.values[0] for n in graph] == [2, 2, 2, MAX_COPIES, 1]
    grids = [n.grid for n in graph]
    assert grids == [1, 16, 16, 1, 1]
