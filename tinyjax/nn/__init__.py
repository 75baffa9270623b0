"""tinyjax.nn: ``jax.nn``'s activations, normalisation helpers and initializers."""
from tinyjax.nn import initializers
from tinyjax.nn.functions import (celu, elu, gelu, glu, hard_sigmoid, hard_silu, hard_swish,
                                  hard_tanh, leaky_relu, log_sigmoid, log_softmax, logsumexp,
                                  mish, one_hot, relu, relu6, selu, sigmoid, silu, soft_sign,
                                  softmax, softplus, squareplus, standardize, swish)

__all__ = ["celu", "elu", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish",
           "hard_tanh", "initializers", "leaky_relu", "log_sigmoid", "log_softmax",
           "logsumexp", "mish", "one_hot", "relu", "relu6", "selu", "sigmoid", "silu",
           "soft_sign", "softmax", "softplus", "squareplus", "standardize", "swish"]
