"""A compiled CPU program is one C function (tinyjax/backends/c/program.py): loops and branches
in C around the kernels, one native call per jitted call, foreign routines called through
the hooks table."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.backends.c import native
from tinyjax.compiler.program import build_program
from tinyjax.compiler.steps import SCRATCH, Buffer, Call, Launch, Loop, Ref
from tinyjax.compiler.codegen import prepare_kernels
from tinyjax.compiler.executable import Executable

rng = np.random.default_rng(0)


class _Counter:
    calls = 0

    def wrap(self, fn):
        """``fn`` (a ctypes function), counting the calls made through it."""
        def counted(*args):
            self.calls += 1
            return fn(*args)
        return counted


@pytest.fixture
def counted(monkeypatch):
    """(calls into compiled programs, kernels launched one by one from Python) made by the
    executables compiled while the fixture is active."""
    if not native.launcher_usable():
        pytest.skip("no program launcher here")
    jax.clear_caches()  # (wrappers of one function share its executables: compile anew)
    program_calls = _Counter()
    make = native.launcher
    monkeypatch.setattr(native, "launcher", lambda lib: program_calls.wrap(make(lib)))
    kernel_calls = []
    cpu = get_backend("cpu")
    make_kernel = cpu.make_launcher

    def counting_launcher(fn, kernel):
        launch = make_kernel(fn, kernel)

        def run(arrays):
            kernel_calls.append(kernel.name)
            return launch(arrays)
        return run
    monkeypatch.setattr(cpu, "make_launcher", counting_launcher)
    return program_calls, kernel_calls


def _ode(y):
    return lax.fori_loop(0, 1000, lambda i, y: y + 1e-3 * jnp.sin(y), y)


def _ode_reference(y):
    y = y.copy()
    for _ in range(1000):
        y = y + np.float32(1e-3) * np.sin(y)
    return y


def test_the_source_of_a_fori_loop_contains_the_loop():
    y = np.linspace(-1, 1, 16).astype(np.float32)
    src = jax.jit(_ode, device="cpu").lower(y).compile().source()
    assert "int tj_program(" in src
    loop = src[src.index("int tj_program("):]
    assert "for (long it_" in loop and "< 1000L" in loop
    kernel = loop[loop.index("for (long it_"):]
    assert "(b); }" in kernel   # a kernel is called inside the loop


def test_one_native_call_per_jitted_call(counted):
    program_calls, kernel_calls = counted
    y = np.linspace(-1, 1, 16).astype(np.float32)
    f = jax.jit(_ode, device="cpu")
    for n in (1, 2, 3):
        np.testing.assert_allclose(f(y), _ode_reference(y), rtol=1e-5, atol=1e-6)
        assert program_calls.calls == n
    assert kernel_calls == []   # no kernel launched from Python


def test_scan_program_is_one_call_and_equals_eager(counted):
    program_calls, kernel_calls = counted
    w = rng.standard_normal((8, 8)).astype(np.float32) * 0.3

    def f(h, xs):
        def cell(h, x):
            h = jnp.tanh(h @ w + x)
            return h, jnp.sum(h * h)
        return lax.scan(cell, h, xs)

    h0 = rng.standard_normal(8).astype(np.float32)
    xs = rng.standard_normal((50, 8)).astype(np.float32)
    def loss(h, xs):
        h, ys = f(h, xs)
        return jnp.sum(h) + jnp.sum(ys)
    for g in (f, jax.grad(loss)):
        program_calls.calls = 0
        got = jax.jit(g, device="cpu")(h0, xs)
        assert program_calls.calls == 1 and kernel_calls == []
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(g(h0, xs))):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
    src = jax.jit(f, device="cpu").lower(h0, xs).compile().source()
    program = src[src.index("int tj_program("):]
    assert "for (long it_" in program and "< 50L" in program   # the scan is a C loop


def test_a_host_callback_in_a_loop_is_called_from_the_program(counted):
    program_calls, kernel_calls = counted
    seen = []

    def record(x):
        seen.append(np.asarray(x).copy())  # (the program reuses its buffers: a copy each)
        return np.asarray(x) * 2

    def f(x):
        def body(i, x):
            return jax.pure_callback(record, jax.ShapeDtypeStruct((4,), np.float32),
                                     jnp.sin(x)) + 1.0
        return lax.fori_loop(0, 5, body, x)

    x = np.linspace(0, 1, 4).astype(np.float32)
    got = jax.jit(f, device="cpu")(x)
    assert program_calls.calls == 1 and kernel_calls == [] and len(seen) == 5
    want = x
    for i in range(5):
        np.testing.assert_allclose(seen[i], np.sin(want), rtol=1e-5)
        want = np.sin(want) * 2 + np.float32(1.0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_while_predicate_is_read_by_the_program(counted):
    program_calls, kernel_calls = counted

    def f(x):
        return lax.while_loop(lambda c: c[0] < 1000.0, lambda c: (c[0] * 1.5 + 1.0, c[1] + 1),
                              (x, 0))

    jf = jax.jit(f, device="cpu")
    for x in (0.5, 999.0, 2000.0):
        got = jf(np.float32(x))
        want = f(np.float32(x))
        assert float(got[0]) == float(want[0]) and int(got[1]) == int(want[1])
    assert program_calls.calls == 3 and kernel_calls == []
    src = jf.lower(np.float32(1)).compile().source()
    assert "break;" in src[src.index("int tj_program("):]


def test_carries_swap_pointers_instead_of_copying():
    w = rng.standard_normal((16, 16)).astype(np.float32) * 0.1

    def f(m):
        return lax.fori_loop(0, 7, lambda i, m: m @ w + m, m)

    m = rng.standard_normal((16, 16)).astype(np.float32)
    c = jax.jit(f, device="cpu").lower(m).compile()
    src = c.source()
    body = src[src.index("for (long it_"):]
    body = body[:body.index("if (cur")]   # the loop, up to the check after it
    assert "memcpy" not in body and "nxt" in body   # the carry is handed on, never copied
    want = m
    for _ in range(7):
        want = want @ w + want
    np.testing.assert_allclose(jax.jit(f, device="cpu")(m), want, rtol=1e-4, atol=1e-4)


def test_a_program_of_several_translation_units_links(monkeypatch):
    from tinyjax.backends.c import compiler
    monkeypatch.setattr(compiler, "SPLIT_MIN_CHARS", 1)
    monkeypatch.setattr(compiler.os, "cpu_count", lambda: 4)

    def f(x, y):
        a = jnp.sum(jnp.tanh(x) * 2.0, axis=0)
        b = lax.fori_loop(0, 5, lambda i, c: c * 0.5 + a, y)
        return jnp.exp(b) @ x.T

    x = rng.standard_normal((6, 8)).astype(np.float32)
    y = rng.standard_normal(8).astype(np.float32)
    np.testing.assert_allclose(jax.jit(f, device="cpu")(x, y), f(x, y), rtol=1e-5, atol=1e-5)


def _program_with_call(run, native_address=None):
    """y = routine(x) * 2 inside a loop of 3: a program with a foreign call step, built by
    hand around a compiled kernel."""
    closed = jax.make_jaxpr(lambda x: (x * 2.0,))(np.ones(4, np.float32))
    prog = build_program(closed)
    launch = prog.steps[0]
    assert isinstance(launch, Launch)
    # the kernel read in0 and wrote out0: now the routine reads in0 into a scratch buffer,
    # which the kernel doubles into out0 (in a loop of one iteration)
    src = launch.refs[1]
    tmp = Buffer(src.dtype, src.size, SCRATCH, 0, "tmp")
    prog.scratch.append(tmp)
    prog.arena_bytes = 64
    aval = [((src.size,), src.dtype)]
    call = Call("add_ten", run, [src], [Ref(tmp, tmp.dtype, tmp.size)], aval, aval,
                native_address)
    launch.refs[1] = Ref(tmp, tmp.dtype, tmp.size)
    prog.steps = [call, Loop("i9", [launch], [], length=1)]
    return prog


def _executable(program, device: str) -> Executable:
    backend = get_backend(device)
    prepare_kernels(program.kernels, backend)
    return Executable(program, backend)


def test_foreign_call_from_the_program_through_a_ctypes_hook():
    seen = []

    def run(ins, outs):
        seen.append(ins[0].copy())
        outs[0][:] = ins[0] + 10.0
    exe = _executable(_program_with_call(run), "cpu")
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(exe(x)[0], (x + 10.0) * 2.0)
    np.testing.assert_allclose(seen[0], x)
    walked = _executable(_program_with_call(run), "interp")
    np.testing.assert_allclose(walked(x)[0], (x + 10.0) * 2.0)


def test_an_error_in_a_foreign_call_is_raised_by_the_call():
    def run(ins, outs):
        raise ValueError("the routine refused")
    exe = _executable(_program_with_call(run), "cpu")
    with pytest.raises(ValueError, match="the routine refused"):
        exe(np.zeros(4, np.float32))


def test_kernels_alike_are_compiled_once():
    w1 = rng.standard_normal((8, 8)).astype(np.float32)
    w2 = rng.standard_normal((8, 8)).astype(np.float32)

    def layer(x, w):
        return jnp.tanh(x @ w) * 0.5 + x

    def f(x, w1, w2):   # two layers alike: the same kernels but for their buffers
        return jnp.sum(layer(layer(x, w1), w2))

    x = rng.standard_normal((4, 8)).astype(np.float32)
    g = jax.jit(jax.grad(f, argnums=(1, 2)), device="cpu")
    c = g.lower(x, w1, w2).compile()
    src = c.source()
    defined = src.count("(void **restrict bufs) {")
    assert defined < c.num_kernels   # some kernels call another's function
    assert "/* k" in src[src.index("int tj_program("):]   # ... and say whose
    for a, b in zip(g(x, w1, w2), jax.grad(f, argnums=(1, 2))(x, w1, w2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_programs_flush_subnormals_as_xla_does_and_restore_the_callers_mode():
    tiny = np.full(4, 1e-40, np.float32)  # subnormal float32
    small = np.full(4, 1e-20, np.float32)  # normal, its square is subnormal
    # subnormal operands read as zero (DAZ) and subnormal results become zero (FTZ)
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda x: x * 1e30, device="cpu")(tiny)),
                                  np.zeros(4, np.float32))
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda x: x * x, device="cpu")(small)),
                                  np.zeros(4, np.float32))
    big = np.full((512, 512), 1e-20, np.float32)  # large enough for the parallel threads
    assert not np.asarray(jax.jit(lambda x: x * x, device="cpu")(big)).any()
    # the calling thread's mode is restored: numpy (eager) keeps subnormals
    assert (tiny * np.float32(1e30))[0] > 0
    assert (small * small)[0] > 0


def test_debug_2_times_the_kernels_inside_the_program(counted, monkeypatch, capsys):
    """``DEBUG=2`` on the CPU: the table comes from one call of the program compiled with a
    clock around each launch (no kernel launched from Python), a loop body's kernel summed
    over its 1000 iterations; the call's result is the program's."""
    program_calls, kernel_calls = counted
    monkeypatch.setenv("DEBUG", "2")
    y = np.linspace(-1, 1, 16).astype(np.float32)
    f = jax.jit(lambda y: _ode(y) * 2.0, device="cpu")
    for call in (1, 2):
        np.testing.assert_allclose(f(y), 2 * _ode_reference(y), rtol=1e-5, atol=1e-6)
        out = capsys.readouterr().out
        table = out[out.index("kernel launches on cpu"):]
        assert "1001 kernel launches on cpu" in out and "in the compiled program" in table
        rows = [line.split() for line in table.splitlines()[2:] if line.startswith("k")]
        looped = [r for r in rows if r[-1] == "x1000"]
        assert len(rows) == 2 and len(looped) == 1 and float(looped[0][1]) > 0
        assert program_calls.calls == call and kernel_calls == []


def test_a_timed_program_numbers_every_launch_site():
    from tinyjax.backends.c.program import LAUNCH_CALLS, LAUNCH_SECONDS, timed_program
    from tinyjax.compiler.steps import walk_steps
    from tinyjax.compiler.program import compile_jaxpr
    y = np.linspace(-1, 1, 16).astype(np.float32)
    closed = jax.make_jaxpr(lambda y: _ode(y) * 2.0)(y)
    program = compile_jaxpr(closed, get_backend("cpu")).program
    src, sites = timed_program(program)
    launches = [st for st in walk_steps(program.steps) if isinstance(st, Launch)]
    assert sorted(map(id, sites)) == sorted(map(id, launches)) and len(sites) >= 2
    for i in range(len(sites)):
        assert f"{LAUNCH_SECONDS}[{i}] +=" in src and f"{LAUNCH_CALLS}[{i}]++" in src
