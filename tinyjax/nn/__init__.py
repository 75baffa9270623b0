"""tinyjax.nn: ``jax.nn``'s activations, normalisation helpers and initializers."""
from tinyjax.nn import initializers
from tinyjax.nn.functions import (celu, elu, gelu, glu, hard_sigmoid, hard_silu, hard_swish,
                                  hard_tanh, leaky_relu, log_sigmoid, log_softmax, logsumexp,
                                  mish, one_hot, relu, relu6, selu, sigmoid, silu, soft_sign,
                                  softmax, softplus, squareplus, standardize, swish)
from tinyjax.nn._extra import (identity, log1mexp, logmeanexp, sparse_plus,  # noqa: F401
                               sparse_sigmoid, tanh)
from tinyjax.nn._attention import dot_product_attention  # noqa: F401
from tinyjax.nn._scaled import (get_scaled_dot_general_config, scaled_dot_general,  # noqa: F401
                                scaled_matmul)

__all__ = ["celu", "dot_product_attention", "elu", "gelu", "get_scaled_dot_general_config",
           "glu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "identity",
           "initializers", "leaky_relu", "log1mexp", "log_sigmoid", "log_softmax",
           "logmeanexp", "logsumexp", "mish", "one_hot", "relu", "relu6",
           "scaled_dot_general", "scaled_matmul", "selu", "sigmoid", "silu", "soft_sign",
           "softmax", "softplus", "sparse_plus", "sparse_sigmoid", "squareplus",
           "standardize", "swish", "tanh"]
