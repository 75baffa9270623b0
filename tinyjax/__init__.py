"""tinyjax: JAX's functional transformations on a tinygrad-style compiler.

``import tinyjax as jax; import tinyjax.numpy as jnp``.
"""
import warnings as _warnings

# numpy's floating-point warnings (overflow, invalid value, divide by zero) raised
# inside tinyjax's eager implementations: JAX computes the same IEEE results silently.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tinyjax\.")

from tinyjax.config import config, disable_jit, State as _State  # noqa: E402
from tinyjax import dtypes, tree, tree_util, typing
from tinyjax.array import Array
from tinyjax.core import ShapedArray, ensure_compile_time_eval
from tinyjax import dispatch  # noqa: F401 - registers eager evaluation with the core
from tinyjax import lax
from tinyjax import numpy
from tinyjax import random
from tinyjax.api import (ShapeDtypeStruct, clear_caches, eval_shape, grad, hessian, jacfwd,
                         jacrev, jit, jvp, linearize, make_jaxpr, typeof, value_and_grad, vjp,
                         vmap)
from tinyjax import stages
from tinyjax.custom_derivatives import custom_jvp, custom_vjp
from tinyjax.ad_checkpoint import checkpoint, checkpoint_policies, remat
from tinyjax import errors
from tinyjax.errors import (ConcretizationTypeError, TracerBoolConversionError,
                            TracerIntegerConversionError, UnexpectedTracerError)
from tinyjax import nn, scipy  # noqa: E402
from tinyjax import debug, experimental  # noqa: E402
from tinyjax.callback import pure_callback  # noqa: E402
# JAX's device API (the backends themselves are the package tinyjax.backends)
from tinyjax.backends import (Device, default_backend, device_count, devices,  # noqa: E402
                              local_device_count, local_devices)
from tinyjax.dispatch import block_until_ready, device_get, device_put  # noqa: E402
from tinyjax import sharding  # noqa: E402
from tinyjax.sharding import (NamedSharding, Shard, make_array_from_callback,  # noqa: E402
                              make_array_from_single_device_arrays, make_mesh, reshard,
                              set_mesh)
from tinyjax.sharding import PartitionSpec as P  # noqa: E402
from tinyjax.backends import process_count, process_index  # noqa: E402
from tinyjax.spmd.shard_map import shard_map  # noqa: E402
from tinyjax.spmd.pmap import pmap  # noqa: E402
from tinyjax import distributed  # noqa: E402

jacobian = jacrev

# the flags JAX exposes at the top level: ``with jax.debug_nans(True): ...``, ``.value``
enable_x64 = _State("jax_enable_x64")
debug_nans = _State("jax_debug_nans")
debug_infs = _State("jax_debug_infs")
log_compiles = _State("jax_log_compiles")
default_matmul_precision = _State("jax_default_matmul_precision")
numpy_rank_promotion = _State("jax_numpy_rank_promotion")

__version__ = "0.1.0"
# The JAX release whose public API tinyjax follows (names, signatures, results, errors);
# libraries that check jax.__version_info__ see this.
__version_info__ = (0, 10, 2)
