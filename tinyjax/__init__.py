"""tinyjax: JAX's functional transformations on a tinygrad-style compiler.

``import tinyjax as jax; import tinyjax.numpy as jnp``.
"""
import warnings as _warnings

# numpy's floating-point warnings (overflow, invalid value, divide by zero) raised
# inside tinyjax's eager implementations: JAX computes the same IEEE results silently.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tinyjax\.")

from tinyjax.config import config  # noqa: E402
from tinyjax import dtypes, tree_util
from tinyjax.array import Array
from tinyjax.core import ShapedArray, ensure_compile_time_eval
from tinyjax import lax
from tinyjax import numpy
from tinyjax import random
from tinyjax.transforms.staging import ShapeDtypeStruct, eval_shape, make_jaxpr
from tinyjax.transforms.autodiff import (grad, hessian, jacfwd, jacrev, jvp, linearize, vjp,
                                         value_and_grad)
from tinyjax.transforms.vmap import vmap
from tinyjax.transforms.jit import jit
from tinyjax.transforms.custom_derivatives import custom_jvp, custom_vjp
from tinyjax.transforms.checkpoint import checkpoint, checkpoint_policies, remat
from tinyjax import errors
from tinyjax.errors import (ConcretizationTypeError, TracerBoolConversionError,
                            TracerIntegerConversionError, UnexpectedTracerError)
from tinyjax import nn, scipy  # noqa: E402
# JAX's device API.  ``tinyjax.devices`` becomes the function devices(); the backends stay
# importable as the package tinyjax.devices (``from tinyjax.devices.cuda import ...``).
from tinyjax.devices import (Device, default_backend, device_count, devices,  # noqa: E402
                             local_device_count, local_devices)
from tinyjax.transforms.placement import block_until_ready, device_get, device_put  # noqa: E402

jacobian = jacrev

__version__ = "0.1.0"
