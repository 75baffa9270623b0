"""A tiny character-level transformer language model.

Token and position embeddings, pre-LayerNorm blocks of causal multi-head
self-attention (written with ``jnp.einsum``) and an MLP, a final layer norm and a
linear read-out to character logits.  Trained with Adam through
``jit(value_and_grad)`` on random windows of a few public-domain paragraphs (the
opening of Lewis Carroll's *Alice's Adventures in Wonderland*, 1865); then text is
sampled with ``random.categorical`` inside a ``lax.scan``.

    python examples/transformer_lm.py              # 300 steps
    python examples/transformer_lm.py --steps 20   # smoke run
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax, random
from tinyjax.example_libraries import optimizers

TEXT = """\
Alice was beginning to get very tired of sitting by her sister on the bank, and of
having nothing to do: once or twice she had peeped into the book her sister was
reading, but it had no pictures or conversations in it, "and what is the use of a
book," thought Alice "without pictures or conversations?"

So she was considering in her own mind (as well as she could, for the hot day made
her feel very sleepy and stupid), whether the pleasure of making a daisy-chain would
be worth the trouble of getting up and picking the daisies, when suddenly a White
Rabbit with pink eyes ran close by her.

There was nothing so very remarkable in that; nor did Alice think it so very much out
of the way to hear the Rabbit say to itself, "Oh dear! Oh dear! I shall be late!"
(when she thought it over afterwards, it occurred to her that she ought to have
wondered at this, but at the time it all seemed quite natural); but when the Rabbit
actually took a watch out of its waistcoat-pocket, and looked at it, and then hurried
on, Alice started to her feet, for it flashed across her mind that she had never
before seen a rabbit with either a waistcoat-pocket, or a watch to take out of it,
and burning with curiosity, she ran across the field after it, and fortunately was
just in time to see it pop down a large rabbit-hole under the hedge.

In another moment down went Alice after it, never once considering how in the world
she was to get out again.
"""

CHARS = sorted(set(TEXT))
VOCAB = len(CHARS)


def encode(s: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(CHARS)}
    return np.array([index[c] for c in s], dtype=np.int32)


def decode(ids) -> str:
    return "".join(CHARS[int(i)] for i in ids)


def init_params(key, vocab: int, context: int, d_model: int, n_layers: int) -> dict:
    keys = random.split(key, 2 + 4 * n_layers)
    normal = lambda k, shape, scale: scale * random.normal(k, shape)
    blocks = []
    for layer in range(n_layers):
        kq, ko, k1, k2 = keys[2 + 4 * layer: 6 + 4 * layer]
        blocks.append({
            "ln1": (jnp.ones(d_model), jnp.zeros(d_model)),
            "qkv": normal(kq, (d_model, 3 * d_model), 1 / math.sqrt(d_model)),
            "proj": normal(ko, (d_model, d_model), 1 / math.sqrt(d_model * 2 * n_layers)),
            "ln2": (jnp.ones(d_model), jnp.zeros(d_model)),
            "fc1": (normal(k1, (d_model, 4 * d_model), 1 / math.sqrt(d_model)),
                    jnp.zeros(4 * d_model)),
            "fc2": (normal(k2, (4 * d_model, d_model), 1 / math.sqrt(8 * d_model * n_layers)),
                    jnp.zeros(d_model)),
        })
    return {"embed": normal(keys[0], (vocab, d_model), 0.1),
            "pos": normal(keys[1], (context, d_model), 0.1),
            "blocks": blocks,
            "ln_f": (jnp.ones(d_model), jnp.zeros(d_model))}


def layer_norm(x, scale_bias, eps=1e-5):
    scale, bias = scale_bias
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * scale + bias


def attention(x, qkv, proj, n_heads: int):
    """Causal multi-head self-attention over a (B, T, D) batch of sequences."""
    b, t, d = x.shape
    q, k, v = jnp.split(x @ qkv, 3, axis=-1)
    q, k, v = (a.reshape(b, t, n_heads, d // n_heads) for a in (q, k, v))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // n_heads)
    causal = jnp.tril(jnp.ones((t, t), dtype=bool))
    weights = jax.nn.softmax(jnp.where(causal, scores, -1e9), axis=-1)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, d)
    return out @ proj


def forward(params, tokens, n_heads: int):
    """Logits (B, T, vocab) for (B, T) token ids: position i sees tokens <= i only."""
    x = params["embed"][tokens] + params["pos"][: tokens.shape[1]]
    for block in params["blocks"]:
        x = x + attention(layer_norm(x, block["ln1"]), block["qkv"], block["proj"], n_heads)
        h = layer_norm(x, block["ln2"])
        (w1, b1), (w2, b2) = block["fc1"], block["fc2"]
        x = x + jax.nn.gelu(h @ w1 + b1) @ w2 + b2
    return layer_norm(x, params["ln_f"]) @ params["embed"].T


def loss_fn(params, batch, n_heads: int):
    """Mean next-character cross-entropy over a (B, T + 1) batch of windows."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits = forward(params, inputs, n_heads)
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def make_sampler(n_heads: int, length: int, temperature: float):
    @jax.jit
    def sample(params, prompt, key):
        """``length`` characters after ``prompt``, each drawn given the last window."""
        def step(carry, key):
            window = carry
            logits = forward(params, window[None], n_heads)[0, -1] / temperature
            token = random.categorical(key, logits).astype(window.dtype)
            return jnp.concatenate([window[1:], token[None]]), token
        _, tokens = lax.scan(step, prompt, random.split(key, length))
        return tokens
    return sample


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--context", type=int, default=32)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--sample-length", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = jnp.asarray(encode(TEXT))
    key = random.PRNGKey(args.seed)
    key, init_key = random.split(key)
    params = init_params(init_key, VOCAB, args.context, args.d_model, args.layers)
    n_params = sum(p.size for p in jax.tree_util.tree_leaves(params))
    print(f"{len(TEXT)} characters, vocabulary {VOCAB}, {n_params} parameters")

    opt_init, opt_update, get_params = optimizers.adam(args.lr)
    opt_state = opt_init(params)

    @jax.jit
    def train_step(i, opt_state, key):
        starts = random.randint(key, (args.batch_size,), 0, data.shape[0] - args.context - 1)
        batch = jax.vmap(lambda s: lax.dynamic_slice(data, (s,), (args.context + 1,)))(starts)
        loss, grads = jax.value_and_grad(loss_fn)(get_params(opt_state), batch, args.heads)
        return opt_update(i, grads, opt_state), loss

    losses = []
    for i in range(args.steps):
        key, batch_key = random.split(key)
        opt_state, loss = train_step(i, opt_state, batch_key)
        losses.append(float(loss))
        if i == 0 or (i + 1) % max(1, args.steps // 6) == 0 or i + 1 == args.steps:
            print(f"step {i + 1:>5}  loss {losses[-1]:.3f}")
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} (uniform guess: {math.log(VOCAB):.3f})")

    prompt_text = TEXT[: args.context]
    sample = make_sampler(args.heads, args.sample_length, args.temperature)
    key, sample_key = random.split(key)
    tokens = sample(get_params(opt_state), jnp.asarray(encode(prompt_text)), sample_key)
    text = decode(np.asarray(tokens))
    print("sample:")
    print(prompt_text + text)
    return {"losses": losses, "sample": text}


if __name__ == "__main__":
    main()
