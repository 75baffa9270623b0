"""tinyjax.example_libraries: stax layers against numpy references and their own
declared shapes, optimizers against their update rules written out in numpy, schedules,
and the acceptance test: a stax MLP trained with adam under jit agrees step by step with
the same model and update written by hand."""
from __future__ import annotations

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random, tree_util
from tinyjax.example_libraries import optimizers, stax

KEY = random.PRNGKey(0)
RNG = np.random.default_rng(0)


def _init_apply(layer, input_shape, x, key=KEY, **kwargs):
    """Initialise ``layer``, apply it to ``x``; check the declared output shape."""
    init_fun, apply_fun = layer
    out_shape, params = init_fun(key, input_shape)
    out = apply_fun(params, x, **kwargs)
    for s, o in zip(tree_util.tree_leaves(out_shape, is_leaf=lambda t: isinstance(t, tuple)
                                          and all(isinstance(d, int) for d in t)),
                    tree_util.tree_leaves(out)):
        assert tuple(s) == o.shape, (s, o.shape)
    return params, out


# ---------------------------------------------------------------------------
# layers with parameters
# ---------------------------------------------------------------------------

def test_dense():
    x = RNG.normal(size=(5, 3, 7)).astype(np.float32)
    (W, b), out = _init_apply(stax.Dense(4), (5, 3, 7), x)
    assert W.shape == (7, 4) and b.shape == (4,)
    np.testing.assert_allclose(out, x @ np.asarray(W) + np.asarray(b), rtol=1e-5, atol=1e-6)
    # default initializers: glorot normal weights, normal(1e-2) biases
    (W, b), _ = _init_apply(stax.Dense(300), (2, 200), np.ones((2, 200), np.float32))
    np.testing.assert_allclose(np.var(np.asarray(W)), 2 / 500, rtol=0.05)
    assert np.std(np.asarray(b)) < 0.02
    # custom initializers and a shape with an unknown batch dimension
    init_fun, _ = stax.Dense(3, W_init=jax.nn.initializers.ones,
                             b_init=jax.nn.initializers.zeros)
    shape, (W, b) = init_fun(KEY, (-1, 2))
    assert shape == (-1, 3)
    np.testing.assert_array_equal(W, np.ones((2, 3)))


def _np_conv_nhwc(x, w, strides, pads):
    """Cross-correlation of NHWC ``x`` with HWIO ``w`` by explicit loops."""
    x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    n, h, wd, _ = x.shape
    kh, kw, _, o = w.shape
    oh = (h - kh) // strides[0] + 1
    ow = (wd - kw) // strides[1] + 1
    out = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            r, c = i * strides[0], j * strides[1]
            patch = x[:, r:r + kh, c:c + kw]
            out[:, i, j] = np.einsum("nhwc,hwco->no", patch, w)
    return out


@pytest.mark.parametrize("strides,padding,pads", [
    (None, "VALID", [(0, 0), (0, 0)]),
    ((2, 1), "SAME", [(0, 1), (1, 1)]),
    ((1, 2), [(2, 0), (1, 1)], [(2, 0), (1, 1)]),
])
def test_conv(strides, padding, pads):
    x = RNG.normal(size=(2, 6, 5, 3)).astype(np.float32)
    layer = stax.Conv(4, (3, 3), strides=strides, padding=padding)
    (W, b), out = _init_apply(layer, x.shape, x)
    assert W.shape == (3, 3, 3, 4) and b.shape == (1, 1, 1, 4)
    ref = _np_conv_nhwc(x.astype(np.float64), np.asarray(W, np.float64), strides or (1, 1),
                        pads) + np.asarray(b)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_general_conv_nchw():
    x = RNG.normal(size=(2, 3, 6, 5)).astype(np.float32)
    layer = stax.GeneralConv(("NCHW", "OIHW", "NCHW"), 4, (2, 3))
    (W, b), out = _init_apply(layer, x.shape, x)
    assert W.shape == (4, 3, 2, 3) and b.shape == (1, 4, 1, 1)
    ref = _np_conv_nhwc(x.transpose(0, 2, 3, 1).astype(np.float64),
                        np.asarray(W, np.float64).transpose(2, 3, 1, 0), (1, 1),
                        [(0, 0), (0, 0)]).transpose(0, 3, 1, 2) + np.asarray(b)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride,padding,out_len", [(1, "VALID", 7), (2, "VALID", 11),
                                                    (2, "SAME", 10), (3, "SAME", 15)])
def test_conv1d_transpose(stride, padding, out_len):
    x = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    layer = stax.Conv1DTranspose(4, (3,), strides=(stride,), padding=padding)
    (W, b), out = _init_apply(layer, x.shape, x)
    assert out.shape == (2, out_len, 4)
    # reference: the transpose of a strided correlation scatters each input position
    # through the (unflipped, as JAX's default) kernel
    w = np.asarray(W, np.float64)
    k = 3
    full = np.zeros((2, (5 - 1) * stride + k, 4))
    for i in range(5):
        for j in range(k):
            full[:, i * stride + (k - 1 - j)] += x[:, i].astype(np.float64) @ w[j]
    if padding == "VALID":
        total = 5 * stride + max(k - stride, 0)
        full = np.pad(full, [(0, 0), (0, total - full.shape[1]), (0, 0)])
        ref = full
    else:
        pad_len = k + stride - 2
        pad_a = k - 1 if stride > k - 1 else int(np.ceil(pad_len / 2))
        start = k - 1 - pad_a
        ref = np.pad(full, [(0, 0), (0, 5 * stride), (0, 0)])[:, start:start + 5 * stride]
    np.testing.assert_allclose(out, ref + np.asarray(b), rtol=1e-4, atol=1e-5)


def test_batch_norm():
    x = (RNG.normal(size=(4, 3, 3, 5)) * 2 + 1).astype(np.float32)
    (beta, gamma), out = _init_apply(stax.BatchNorm(), x.shape, x)
    assert beta.shape == gamma.shape == (5,)
    ref = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    _, apply_fun = stax.BatchNorm()
    beta = np.arange(5, dtype=np.float32)
    gamma = np.full(5, 2.0, np.float32)
    np.testing.assert_allclose(apply_fun((beta, gamma), x), 2 * ref + beta, rtol=1e-4,
                               atol=1e-4)
    # axis=0 only (a dense layer's batch), without centre or scale
    y = RNG.normal(size=(8, 6)).astype(np.float32)
    (b2, g2), out2 = _init_apply(stax.BatchNorm(axis=0, center=False, scale=False),
                                 y.shape, y)
    assert b2 == () and g2 == ()
    np.testing.assert_allclose(out2, (y - y.mean(0)) / np.sqrt(y.var(0) + 1e-5), rtol=1e-4,
                               atol=1e-4)


# ---------------------------------------------------------------------------
# parameter-free layers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("layer,ref", [
    (stax.Relu, lambda x: np.maximum(x, 0)),
    (stax.Tanh, np.tanh),
    (stax.Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (stax.Softplus, lambda x: np.log1p(np.exp(x))),
    (stax.Elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    (stax.LeakyRelu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    (stax.Exp, np.exp),
    (stax.Gelu, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    (stax.LogSoftmax, lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    (stax.Softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    (stax.Identity, lambda x: x),
    (stax.Flatten, lambda x: x.reshape(x.shape[0], -1)),
])
def test_parameter_free_layers(layer, ref):
    x = RNG.normal(size=(3, 2, 4)).astype(np.float32)
    params, out = _init_apply(layer, x.shape, x)
    assert params == ()
    np.testing.assert_allclose(out, ref(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


def _np_pool(x, window, strides, pads, op, init):
    x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=init)
    _, h, w, _ = x.shape
    oh = (h - window[0]) // strides[0] + 1
    ow = (w - window[1]) // strides[1] + 1
    return np.stack([np.stack([op(x[:, i * strides[0]:i * strides[0] + window[0],
                                    j * strides[1]:j * strides[1] + window[1]], axis=(1, 2))
                               for j in range(ow)], 1) for i in range(oh)], 1)


@pytest.mark.parametrize("window,strides,padding,pads", [
    ((2, 2), None, "VALID", [(0, 0), (0, 0)]),
    ((2, 2), (2, 2), "VALID", [(0, 0), (0, 0)]),
    ((3, 2), (2, 1), "SAME", [(1, 1), (0, 1)]),
])
def test_pooling(window, strides, padding, pads):
    x = RNG.normal(size=(2, 5, 4, 3)).astype(np.float32)
    s = strides or (1, 1)
    _, out = _init_apply(stax.MaxPool(window, strides, padding), x.shape, x)
    np.testing.assert_allclose(out, _np_pool(x, window, s, pads, np.max, -np.inf))
    _, out = _init_apply(stax.SumPool(window, strides, padding), x.shape, x)
    total = _np_pool(x, window, s, pads, np.sum, 0.0)
    np.testing.assert_allclose(out, total, rtol=1e-5, atol=1e-6)
    _, out = _init_apply(stax.AvgPool(window, strides, padding), x.shape, x)
    count = _np_pool(np.ones_like(x), window, s, pads, np.sum, 0.0)
    np.testing.assert_allclose(out, total / count, rtol=1e-5, atol=1e-6)


def test_pooling_with_spec():
    x = RNG.normal(size=(2, 3, 6, 4)).astype(np.float32)  # NCHW
    _, out = _init_apply(stax.MaxPool((2, 2), (2, 2), spec="NCHW"), x.shape, x)
    ref = _np_pool(x.transpose(0, 2, 3, 1), (2, 2), (2, 2), [(0, 0), (0, 0)], np.max,
                   -np.inf).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, ref)
    _, out = _init_apply(stax.AvgPool((2, 2), (2, 2), "SAME", spec="NCHW"), x.shape, x)
    assert out.shape == (2, 3, 3, 2)


def test_dropout():
    x = np.ones((50, 40), np.float32)
    init_fun, apply_fun = stax.Dropout(0.8)
    assert init_fun(KEY, x.shape) == (x.shape, ())
    out = np.asarray(apply_fun((), x, rng=random.PRNGKey(1)))
    # JAX's stax semantics: ``rate`` is the keep probability, kept units scaled by 1/rate
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.8)}
    np.testing.assert_allclose((out > 0).mean(), 0.8, atol=0.03)
    np.testing.assert_array_equal(out, apply_fun((), x, rng=random.PRNGKey(1)))
    _, apply_test = stax.Dropout(0.8, mode="test")
    np.testing.assert_array_equal(apply_test((), x, rng=KEY), x)
    with pytest.raises(ValueError, match="requires apply_fun to be called with a PRNG key"):
        apply_fun((), x)


# ---------------------------------------------------------------------------
# combinators
# ---------------------------------------------------------------------------

def test_serial_splits_keys_like_jax():
    init_fun, apply_fun = stax.serial(stax.Dense(3), stax.Relu, stax.Dense(2))
    out_shape, params = init_fun(KEY, (4, 5))
    assert out_shape == (4, 2) and len(params) == 3 and params[1] == ()
    # layer i is initialised with the second half of the i-th split of the running key
    rng = KEY
    for i, layer in enumerate([stax.Dense(3), stax.Relu, stax.Dense(2)]):
        rng, layer_rng = random.split(rng)
        _, p = layer[0](layer_rng, (4, 5) if i == 0 else (4, 3))
        for a, b in zip(tree_util.tree_leaves(p), tree_util.tree_leaves(params[i])):
            np.testing.assert_array_equal(a, b)
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    (W1, b1), _, (W2, b2) = params
    ref = np.maximum(x @ np.asarray(W1) + np.asarray(b1), 0) @ np.asarray(W2) + np.asarray(b2)
    np.testing.assert_allclose(apply_fun(params, x), ref, rtol=1e-5, atol=1e-6)
    # rng is split among the layers (dropout gets its own key)
    _, ap = stax.serial(stax.Identity, stax.Dropout(0.5))
    out = ap([(), ()], np.ones((10, 10), np.float32), rng=KEY)
    expected = stax.Dropout(0.5)[1]((), np.ones((10, 10), np.float32),
                                    rng=random.split(KEY, 2)[1])
    np.testing.assert_array_equal(out, expected)


def test_fan_out_parallel_fan_in():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    layer = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(4), stax.Identity),
                        stax.FanInSum)
    params, out = _init_apply(layer, x.shape, x)
    W, b = params[1][0]
    np.testing.assert_allclose(out, x @ np.asarray(W) + np.asarray(b) + x, rtol=1e-5,
                               atol=1e-6)
    layer = stax.serial(stax.FanOut(3), stax.parallel(stax.Dense(2), stax.Identity, stax.Tanh),
                        stax.FanInConcat(axis=1))
    params, out = _init_apply(layer, x.shape, x)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out[:, 2:6], x)
    np.testing.assert_allclose(out[:, 6:], np.tanh(x), rtol=1e-6)
    init_fun, apply_fun = stax.parallel(stax.Dense(2), stax.Identity)
    shapes, ps = init_fun(KEY, [(3, 4), (5,)])
    assert tuple(shapes) == ((3, 2), (5,))
    outs = apply_fun(ps, [x, np.ones(5, np.float32)])
    assert isinstance(outs, list) and outs[0].shape == (3, 2)


def test_shape_dependent():
    def make_layer(input_shape):
        return stax.Dense(input_shape[-1] * 2)
    params, out = _init_apply(stax.shape_dependent(make_layer), (2, 3),
                              np.ones((2, 3), np.float32))
    assert out.shape == (2, 6) and params[0].shape == (3, 6)


def test_convnet_under_jit_and_grad():
    init_fun, apply_fun = stax.serial(
        stax.Conv(4, (3, 3), padding="SAME"), stax.BatchNorm(), stax.Relu,
        stax.MaxPool((2, 2), (2, 2)), stax.Flatten, stax.Dense(3), stax.LogSoftmax)
    out_shape, params = init_fun(KEY, (-1, 6, 6, 2))
    assert out_shape == (-1, 3)
    x = RNG.normal(size=(4, 6, 6, 2)).astype(np.float32)
    eager = apply_fun(params, x)
    np.testing.assert_allclose(jax.jit(apply_fun)(params, x), eager, rtol=1e-4, atol=1e-5)
    g = jax.grad(lambda p: jnp.sum(apply_fun(p, x)[:, 0]))(params)
    assert all(np.all(np.isfinite(leaf)) for leaf in tree_util.tree_leaves(g))


# ---------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------

def _np_rules():
    """Each optimizer's per-array rule, written out in numpy (float64)."""
    def sgd(lr):
        return (lambda x: [x], lambda i, g, s: [s[0] - lr * g])

    def momentum(lr, mass):
        def upd(i, g, s):
            v = mass * s[1] + g
            return [s[0] - lr * v, v]
        return (lambda x: [x, np.zeros_like(x)], upd)

    def nesterov(lr, mass):
        def upd(i, g, s):
            v = mass * s[1] + g
            return [s[0] - lr * (mass * v + g), v]
        return (lambda x: [x, np.zeros_like(x)], upd)

    def adagrad(lr, mom=0.9):
        def upd(i, g, s):
            x, gsq, m = s
            gsq = gsq + g * g
            m = (1 - mom) * g * np.where(gsq > 0, 1 / np.sqrt(np.where(gsq > 0, gsq, 1)), 0) \
                + mom * m
            return [x - lr * m, gsq, m]
        return (lambda x: [x, np.zeros_like(x), np.zeros_like(x)], upd)

    def rmsprop(lr, gamma=0.9, eps=1e-8):
        def upd(i, g, s):
            a = s[1] * gamma + g * g * (1 - gamma)
            return [s[0] - lr * g / np.sqrt(a + eps), a]
        return (lambda x: [x, np.zeros_like(x)], upd)

    def rmsprop_momentum(lr, gamma=0.9, eps=1e-8, mom=0.9):
        def upd(i, g, s):
            a = s[1] * gamma + g * g * (1 - gamma)
            m = mom * s[2] + lr * g / np.sqrt(a + eps)
            return [s[0] - m, a, m]
        return (lambda x: [x, np.zeros_like(x), np.zeros_like(x)], upd)

    def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
        def upd(i, g, s):
            x, m, v = s
            m = (1 - b1) * g + b1 * m
            v = (1 - b2) * g * g + b2 * v
            mhat, vhat = m / (1 - b1 ** (i + 1)), v / (1 - b2 ** (i + 1))
            return [x - lr * mhat / (np.sqrt(vhat) + eps), m, v]
        return (lambda x: [x, np.zeros_like(x), np.zeros_like(x)], upd)

    def adamax(lr, b1=0.9, b2=0.999, eps=1e-8):
        def upd(i, g, s):
            x, m, u = s
            m = (1 - b1) * g + b1 * m
            u = np.maximum(b2 * u, np.abs(g))
            return [x - lr / (1 - b1 ** (i + 1)) * m / (u + eps), m, u]
        return (lambda x: [x, np.zeros_like(x), np.zeros_like(x)], upd)

    return {"sgd": (sgd, (0.1,)), "momentum": (momentum, (0.1, 0.9)),
            "nesterov": (nesterov, (0.1, 0.9)), "adagrad": (adagrad, (0.1,)),
            "rmsprop": (rmsprop, (0.01,)), "rmsprop_momentum": (rmsprop_momentum, (0.01,)),
            "adam": (adam, (0.01,)), "adamax": (adamax, (0.01,))}


NP_RULES = _np_rules()


@pytest.mark.parametrize("name", sorted(NP_RULES))
def test_optimizer_rules(name):
    maker, args = NP_RULES[name]
    np_init, np_update = maker(*args)
    params = {"w": RNG.normal(size=(3, 2)).astype(np.float32),
              "b": [RNG.normal(size=(2,)).astype(np.float32), np.float32(0.5)]}
    opt_init, opt_update, get_params = getattr(optimizers, name)(*args)
    state = opt_init(params)
    assert isinstance(state, optimizers.OptimizerState)
    leaves, tree = tree_util.tree_flatten(params)
    np_states = [np_init(np.asarray(x, np.float64)) for x in leaves]
    update = jax.jit(opt_update)
    for i in range(4):
        grads_flat = [RNG.normal(size=np.shape(x)).astype(np.float32) for x in leaves]
        grads_flat[2][0, 0] = 0.0  # a zero gradient entry in "w"
        state = update(i, tree_util.tree_unflatten(tree, grads_flat), state)
        np_states = [np_update(i, g.astype(np.float64), s)
                     for g, s in zip(grads_flat, np_states)]
    got = tree_util.tree_leaves(get_params(state))
    assert tree_util.tree_structure(get_params(state)) == tree
    for a, s in zip(got, np_states):
        np.testing.assert_allclose(a, s[0], rtol=1e-5, atol=1e-6)


def test_sm3_matches_numpy():
    lr, mom = 0.1, 0.9
    opt_init, opt_update, get_params = optimizers.sm3(lr, mom)
    x0 = RNG.normal(size=(3, 4)).astype(np.float32)
    state = opt_init(x0)
    x, m = x0.astype(np.float64), np.zeros((3, 4))
    v_rows, v_cols = np.zeros(3), np.zeros(4)
    for i in range(5):
        g = RNG.normal(size=(3, 4)).astype(np.float32)
        state = opt_update(i, g, state)
        accum = np.minimum(v_rows[:, None], v_cols[None, :]) + g.astype(np.float64) ** 2
        m = (1 - mom) * g / np.sqrt(accum) + mom * m
        x = x - lr * m
        v_rows, v_cols = accum.max(1), accum.max(0)
    np.testing.assert_allclose(get_params(state), x, rtol=1e-5, atol=1e-6)
    # a scalar parameter keeps its shape
    opt_init, opt_update, get_params = optimizers.sm3(lr)
    s = opt_update(0, jnp.float32(1.0), opt_init(jnp.float32(2.0)))
    assert get_params(s).shape == ()


def test_optimizer_tree_mismatch():
    opt_init, opt_update, _ = optimizers.sgd(0.1)
    state = opt_init({"a": jnp.ones(2)})
    with pytest.raises(TypeError, match="did not match the parameter tree structure"):
        opt_update(0, {"b": jnp.ones(2)}, state)


def test_schedules():
    np.testing.assert_allclose(optimizers.constant(0.3)(7), 0.3)
    np.testing.assert_allclose(optimizers.exponential_decay(0.1, 10, 0.5)(20), 0.025,
                               rtol=1e-6)
    np.testing.assert_allclose(optimizers.inverse_time_decay(1.0, 10, 1.0)(15), 1 / 2.5,
                               rtol=1e-6)
    np.testing.assert_allclose(optimizers.inverse_time_decay(1.0, 10, 1.0, staircase=True)(15),
                               0.5, rtol=1e-6)
    poly = optimizers.polynomial_decay(1.0, 10, 0.1, power=2.0)
    np.testing.assert_allclose([poly(0), poly(5), poly(10), poly(30)],
                               [1.0, 0.1 + 0.9 * 0.25, 0.1, 0.1], rtol=1e-6)
    pc = optimizers.piecewise_constant([5, 10], [1.0, 0.5, 0.1])
    np.testing.assert_allclose([pc(0), pc(5), pc(6), pc(10), pc(11)],
                               [1.0, 1.0, 0.5, 0.5, 0.1])
    np.testing.assert_allclose(jax.jit(pc)(7), 0.5)
    with pytest.raises(ValueError, match="one shorter"):
        optimizers.piecewise_constant([1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="must be sequences"):
        optimizers.piecewise_constant(1, [1.0, 2.0])
    sched = optimizers.make_schedule(0.2)
    assert sched(100) == 0.2
    assert optimizers.make_schedule(pc) is pc
    with pytest.raises(TypeError):
        optimizers.make_schedule(np.ones(3))


def test_schedule_drives_the_optimizer():
    opt_init, opt_update, get_params = optimizers.sgd(lambda i: 0.1 * (i + 1))
    state = opt_init(jnp.zeros(2))
    state = opt_update(0, jnp.ones(2), state)
    state = opt_update(1, jnp.ones(2), state)
    np.testing.assert_allclose(get_params(state), [-0.3, -0.3], rtol=1e-6)


def test_l2_norm_and_clip_grads():
    tree = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([[4.0]], np.float32)}
    np.testing.assert_allclose(optimizers.l2_norm(tree), 5.0)
    clipped = optimizers.clip_grads(tree, 1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[0.8]], rtol=1e-6)
    same = optimizers.clip_grads(tree, 10.0)
    np.testing.assert_allclose(same["a"], tree["a"])


def test_pack_unpack_optimizer_state():
    opt_init, opt_update, get_params = optimizers.adam(0.1)
    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    state = opt_update(0, {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, opt_init(params))
    marked = optimizers.unpack_optimizer_state(state)
    assert isinstance(marked["w"], optimizers.JoinPoint)
    x, m, v = marked["b"].subtree
    np.testing.assert_allclose(m, [0.1, 0.1], rtol=1e-6)
    repacked = optimizers.pack_optimizer_state(marked)
    assert repacked.tree_def == state.tree_def
    for a, b in zip(tree_util.tree_leaves(repacked), tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(a, b)
    state2 = opt_update(1, {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, repacked)
    assert get_params(state2)["b"].shape == (2,)


def test_optimizer_state_is_a_pytree():
    opt_init, _, _ = optimizers.momentum(0.1, 0.9)
    state = opt_init((jnp.ones(3), jnp.zeros((2, 2))))
    leaves = tree_util.tree_leaves(state)
    assert len(leaves) == 4
    doubled = tree_util.tree_map(lambda x: 2 * x, state)
    assert isinstance(doubled, optimizers.OptimizerState)
    assert doubled.tree_def == state.tree_def
    np.testing.assert_array_equal(doubled.packed_state[0][0], 2 * np.ones(3))


# ---------------------------------------------------------------------------
# acceptance: stax + adam under jit == the same model and update written by hand
# ---------------------------------------------------------------------------

def _synthetic_data(n=128, d=16, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    teacher = rng.normal(size=(d, classes))
    y = np.argmax(x @ teacher + 0.5 * rng.normal(size=(n, classes)), axis=1)
    return x, np.eye(classes, dtype=np.float32)[y]


def test_stax_adam_training_matches_hand_written():
    x, y = _synthetic_data()
    init_fun, apply_fun = stax.serial(stax.Dense(32), stax.Relu, stax.Dense(10),
                                      stax.LogSoftmax)
    out_shape, params = init_fun(random.PRNGKey(42), (-1, 16))
    assert out_shape == (-1, 10)
    opt_init, opt_update, get_params = optimizers.adam(1e-2)

    def loss(params, x, y):
        return -jnp.mean(jnp.sum(apply_fun(params, x) * y, axis=1))

    @jax.jit
    def step(i, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(get_params(opt_state), x, y)
        return opt_update(i, grads, opt_state), value

    # the same network and adam update, written directly
    def hand_loss(p, x, y):
        (w1, b1), (w2, b2) = p
        h = jnp.maximum(jnp.dot(x, w1) + b1, 0.0)
        logits = jnp.dot(h, w2) + b2
        shifted = logits - lax_stop(jnp.max(logits, axis=1, keepdims=True))
        logp = shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=1, keepdims=True))
        return -jnp.mean(jnp.sum(logp * y, axis=1))

    def lax_stop(v):
        return jax.lax.stop_gradient(v)

    @jax.jit
    def hand_step(t, p, m, v, x, y):
        value, g = jax.value_and_grad(hand_loss)(p, x, y)
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-2
        m = jax.tree_util.tree_map(lambda m, g: (1 - b1) * g + b1 * m, m, g)
        v = jax.tree_util.tree_map(lambda v, g: (1 - b2) * g * g + b2 * v, v, g)
        c1 = 1 - jnp.asarray(b1, jnp.float32) ** (t + 1)
        c2 = 1 - jnp.asarray(b2, jnp.float32) ** (t + 1)
        p = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), p, m, v)
        return p, m, v, value

    hp = (params[0], params[2])
    hm = jax.tree_util.tree_map(jnp.zeros_like, hp)
    hv = jax.tree_util.tree_map(jnp.zeros_like, hp)
    opt_state = opt_init(params)
    losses = []
    for t in range(50):
        batch = slice((t * 32) % 128, (t * 32) % 128 + 32)
        opt_state, value = step(t, opt_state, x[batch], y[batch])
        hp, hm, hv, hvalue = hand_step(t, hp, hm, hv, x[batch], y[batch])
        np.testing.assert_allclose(value, hvalue, rtol=1e-5, atol=1e-6)
        p = get_params(opt_state)
        for a, b in zip(tree_util.tree_leaves((p[0], p[2])), tree_util.tree_leaves(hp)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6, err_msg=f"step {t}")
        losses.append(float(value))
    final = float(loss(get_params(opt_state), x, y))
    assert final < 0.5 * losses[0], (losses[0], final)
    assert np.mean(losses[-8:]) < np.mean(losses[:8])


def test_stax_exports_jax_aliases():
    from tinyjax.example_libraries import stax
    from tinyjax import nn, random
    from tinyjax.nn import initializers
    assert stax.logsoftmax is nn.log_softmax and stax.glorot is initializers.glorot_normal
    assert stax.randn is initializers.normal and stax.random is random
    assert stax.math.pi == np.pi
