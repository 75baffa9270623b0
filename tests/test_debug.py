"""jax.debug.print and jax.debug.breakpoint under jit, vmap, grad and loops."""
import io

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax


def printed(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_print_formats_run_time_values(capsys):
    jax.debug.print("x={x} y={} s={s}", jnp.arange(3), x=jnp.float32(0.5), s="static")
    jax.debug.print("{:.3f}", jnp.float32(1 / 3))
    jax.jit(lambda x: jax.debug.print("jit {} {}", x, x.dtype))(2.0)
    assert printed(capsys) == ["x=0.5 y=[0 1 2] s=static", "0.333", "jit 2.0 float32"]
    with pytest.raises(TypeError, match="expected str"):
        jax.debug.print(3)


def test_print_keeps_numpy_print_options_of_the_call(capsys):
    with np.printoptions(precision=2):
        f = jax.jit(lambda x: jax.debug.print("{}", x))
        f(jnp.array([1 / 3, 2 / 3]))
    assert printed(capsys) == ["[0.33 0.67]"]


def test_print_under_vmap_grad_and_scan(capsys):
    def f(x):
        jax.debug.print("v {}", x)
        return x * 3

    jax.vmap(f)(jnp.arange(2.0))
    jax.jit(jax.grad(f))(4.0)

    def body(c, x):
        jax.debug.print("step c={} x={}", c, x, ordered=True)
        return c + x, c

    jax.jit(lambda xs: lax.scan(body, 0.0, xs))(jnp.arange(3.0))
    assert printed(capsys) == ["v 0.0", "v 1.0", "v 4.0", "step c=0.0 x=0.0",
                               "step c=0.0 x=1.0", "step c=1.0 x=2.0"]


def test_print_inside_grad_of_scan_sees_primals(capsys):
    def f(w):
        def body(c, x):
            jax.debug.print("c={}", c)
            return jnp.tanh(c * w + x), c
        return lax.scan(body, 1.0, jnp.arange(2.0))[0]

    g = jax.jit(jax.grad(f))(0.5)
    c1 = np.tanh(0.5)
    assert printed(capsys) == ["c=1.0", f"c={np.float32(c1).item()}"]
    eps = 1e-3
    fd = (float(f(0.5 + eps)) - float(f(0.5 - eps))) / (2 * eps)
    capsys.readouterr()
    np.testing.assert_allclose(float(g), fd, rtol=1e-3)


def test_breakpoint_reads_commands_with_run_time_values(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("p y\npp {'t': y * 2}\nw\nc\n"))

    def f(x):
        y = x + 1
        jax.debug.breakpoint()
        return y

    jax.jit(f)(jnp.arange(2.0))
    out = capsys.readouterr().out
    assert "Entering jdb:" in out
    assert "Array([1., 2.], dtype=float32)" in out
    assert "{'t': Array([2., 4.], dtype=float32)}" in out
    assert "test_debug.py" in out and " f" in out


def test_breakpoint_not_reached_in_untaken_branch(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    def check(x):
        lax.cond(jnp.isfinite(x).all(), lambda x: None, lambda x: jax.debug.breakpoint(), x)
        return x

    jax.jit(check)(jnp.ones(2))
    assert "jdb" not in capsys.readouterr().out
    jax.jit(check)(jnp.array([1.0, np.inf]))  # end of input: continue
    assert "Entering jdb:" in capsys.readouterr().out


def test_print_and_callback_take_options_in_a_call_of_their_own(capsys):
    seen = []
    f = jax.jit(lambda x: (jax.debug.print(ordered=True)("a {}", x),
                           jax.debug.callback(ordered=True)(seen.append, x * 2)))
    f(jnp.float32(1.5))
    assert printed(capsys) == ["a 1.5"]
    assert [float(v) for v in seen] == [3.0]
    with pytest.raises(TypeError, match="two-call form"):
        jax.debug.print(None, 1.0)
    with pytest.raises(TypeError, match="must be callable"):
        jax.debug.callback(ordered=True)("not a function")


def test_print_rejects_arguments_the_format_leaves_out(capsys):
    x = jnp.arange(2)
    with pytest.raises(ValueError, match="Unused positional arguments"):
        jax.debug.print("x", x)
    with pytest.raises(ValueError, match=r"Unused keyword arguments .*\['y'\].*f-string"):
        jax.jit(lambda x: jax.debug.print("{x}", x=x, y=x))(x)
    jax.debug.print("x is", x, 7, skip_format_check=True)
    assert printed(capsys) == ["x is [0 1] 7"]


def test_log_sends_a_record_naming_the_call_site(caplog):
    def f(x):
        jax.debug.log("value {}", x)  # the record must name this line
        return x + 1
    line = f.__code__.co_firstlineno + 1
    with caplog.at_level("INFO", logger="tinyjax.debug"):
        jax.vmap(jax.jit(f))(jnp.arange(2.0))
    records = [r for r in caplog.records if r.name == "tinyjax.debug"]
    assert sorted(r.getMessage() for r in records) == ["value 0.0", "value 1.0"]
    assert {(r.filename, r.lineno, r.levelname) for r in records} == {
        ("test_debug.py", line, "INFO")}
