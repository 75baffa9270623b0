"""The examples run: each smoke version trains, and prints what its docstring promises.

Each example is loaded from its file and run through its ``main(argv)``; the fast
tests use a few training steps, the ``slow`` ones the defaults.
"""
import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    # Not imported by file name: examples/mnist1d.py would shadow the mnist1d package.
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart(capsys):
    load_example("quickstart").main()
    out = capsys.readouterr().out
    assert "per-example gradients" in out and "loss after 50 jitted SGD steps" in out


def test_per_example_grads_smoke(capsys):
    result = load_example("per_example_grads").main(["--steps", "40"])
    out = capsys.readouterr().out
    assert result["grads_match"] and result["max_diff"] < 1e-5
    assert "match a loop of grad: True" in out
    assert result["test_accuracy"] > 0.15 > result["initial_accuracy"] - 0.05
    assert "final test accuracy" in out


def test_per_example_grads_synthetic_fallback(capsys):
    module = load_example("per_example_grads")
    x, y, x_test, y_test = module.synthetic_data(0, n_train=512, n_test=256)
    assert x.shape == (512, 40) and y.shape == (512,) and set(y.tolist()) <= set(range(10))
    assert x_test.shape == (256, 40) and y_test.dtype == y.dtype


def test_per_example_grads_clipping():
    import tinyjax.numpy as jnp
    from tinyjax import random
    module = load_example("per_example_grads")
    grads = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]]), "b": jnp.zeros((2,))}
    private, norms = module.clip_and_noise(grads, random.PRNGKey(0), 1.0, 0.0)
    assert jnp.allclose(norms, jnp.array([5.0, 0.5]))
    # The first example is scaled to norm 1, the second kept; no noise; mean of two.
    assert jnp.allclose(private["w"], (jnp.array([0.6, 0.8]) + jnp.array([0.3, 0.4])) / 2)


def test_transformer_lm_smoke(capsys):
    result = load_example("transformer_lm").main(
        ["--steps", "30", "--sample-length", "40", "--layers", "1", "--d-model", "32"])
    out = capsys.readouterr().out
    losses = result["losses"]
    assert losses[-1] < losses[0] - 0.5, losses
    assert len(result["sample"]) == 40
    assert "sample:" in out and result["sample"] in out


def test_transformer_attention_is_causal():
    import numpy as np
    import tinyjax.numpy as jnp
    from tinyjax import random
    module = load_example("transformer_lm")
    params = module.init_params(random.PRNGKey(0), module.VOCAB, 16, 32, 1)
    tokens = jnp.asarray(module.encode("Alice was beginn")[None])
    changed = tokens.at[0, 10].set((tokens[0, 10] + 1) % module.VOCAB)
    a, b = (np.asarray(module.forward(params, t, 4)) for t in (tokens, changed))
    np.testing.assert_allclose(a[:, :10], b[:, :10], rtol=1e-5, atol=1e-5)
    assert not np.allclose(a[:, 10:], b[:, 10:])


def test_neural_ode_smoke(capsys):
    result = load_example("neural_ode").main(["--steps", "40"])
    out = capsys.readouterr().out
    assert result["grad_ok"], result["grad_check"]
    assert "ok: True" in out
    assert result["losses"][-1] < 0.8 * result["losses"][0]


def test_neural_ode_rk4_matches_exact_solution():
    import numpy as np
    import tinyjax.numpy as jnp
    module = load_example("neural_ode")
    ts = jnp.linspace(0.0, 1.0, 11)
    ys = module.odeint(lambda y, t, k: -k * y, jnp.array([1.0, 2.0]), ts, 0.5)
    np.testing.assert_allclose(np.asarray(ys), np.exp(-0.5 * np.asarray(ts))[:, None]
                               * np.array([1.0, 2.0]), rtol=1e-5)


def test_gaussian_process_smoke(capsys):
    result = load_example("gaussian_process").main(["--steps", "25", "--points", "60"])
    out = capsys.readouterr().out
    assert result["grad_ok"], result["grad_check"]
    losses = result["losses"]
    assert losses[-1] < losses[0] - 20, losses
    assert abs(losses[-1] - result["scipy_loss"]) < 1e-8 * max(1.0, abs(losses[-1]))
    assert "ok: True" in out and "SciPy" in out


def test_spectral_schrodinger_smoke(capsys):
    result = load_example("spectral_schrodinger").main(["--steps", "100", "--points", "256"])
    out = capsys.readouterr().out
    assert result["error"] < 1e-4 and result["mass_drift"] < 1e-10, result
    assert abs(result["grad"] - result["grad_exact"]) < 1e-8 * abs(result["grad_exact"])
    assert "complex128[256]" in out


@pytest.mark.slow
@pytest.mark.parametrize("name, check", [
    ("per_example_grads", lambda r: r["test_accuracy"] > 0.35),
    ("transformer_lm", lambda r: r["losses"][-1] < 1.0),
    ("neural_ode", lambda r: r["losses"][-1] < 1e-3),
    ("gaussian_process", lambda r: r["grad_ok"] and r["rmse"] < 0.05
     and abs(r["hyperparameters"]["log_noise"] - 0.1) < 0.03),
    ("spectral_schrodinger", lambda r: r["error"] < 1e-4 and r["mass_drift"] < 1e-10),
])
def test_examples_full(name, check):
    result = load_example(name).main([])
    assert check(result), result


@pytest.mark.slow
def test_mnist1d_full(tmp_path, monkeypatch):
    pytest.importorskip("mnist1d", reason="mnist1d is not installed (pip install mnist1d)")
    monkeypatch.chdir(tmp_path)  # the example saves mnist1d.png in the working directory
    results = {r["model"]: r for r in load_example("mnist1d").main([])}
    assert results["mlp"]["test_accuracy"] >= 0.68
    assert results["cnn"]["test_accuracy"] >= 0.94
