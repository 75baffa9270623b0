"""A tour of tinyjax in one screen: eager arrays, jaxprs, grad, vmap and jit."""
import tinyjax as jax
import tinyjax.numpy as jnp


def predict(params, x):
    w, b = params
    return jnp.tanh(x @ w + b)


def loss(params, x, y):
    return jnp.mean((predict(params, x) - y) ** 2)


def main() -> None:
    x = jnp.arange(6.0).reshape(3, 2) / 6.0
    y = jnp.array([0.1, -0.2, 0.3])
    params = (jnp.array([0.5, -0.25]), jnp.array(0.1))

    print("eager ops:", jnp.sin(x).sum(), x.T.shape, x[1:, ::-1])
    print("\nthe program jax sees (make_jaxpr):")
    print(jax.make_jaxpr(loss)(params, x, y))

    grads = jax.grad(loss)(params, x, y)
    print("\ngrad of the loss:", grads)

    per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x, y)
    print("per-example gradients (vmap of grad):", per_example[0])

    step = jax.jit(lambda p, x, y: jax.tree_util.tree_map(
        lambda w, g: w - 0.5 * g, p, jax.grad(loss)(p, x, y)))
    for i in range(50):
        params = step(params, x, y)
    print("\nloss after 50 jitted SGD steps:", loss(params, x, y))


if __name__ == "__main__":
    main()
