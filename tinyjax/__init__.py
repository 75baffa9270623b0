"""tinyjax: JAX's functional transformations on a tinygrad-style compiler.

``import tinyjax as jax; import tinyjax.numpy as jnp``.
"""
import warnings as _warnings

# numpy's floating-point warnings (overflow, invalid value, divide by zero) raised
# inside tinyjax's eager implementations: JAX computes the same IEEE results silently.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tinyjax\.")

from tinyjax.config import config, disable_jit, State as _State  # noqa: E402
from functools import partial as _partial  # noqa: E402
from tinyjax import dtypes, tree, tree_util, typing
from tinyjax.array import Array
from tinyjax.core import ShapedArray, ensure_compile_time_eval
from tinyjax import dispatch  # noqa: F401 - registers eager evaluation with the core
from tinyjax import lax
from tinyjax import numpy
from tinyjax import random
from tinyjax.abstract import ShapeDtypeStruct, typeof
from tinyjax.api import (clear_caches, eval_shape, grad, hessian, jacfwd, jacrev, jit, jvp,
                         linear_transpose, linearize, make_jaxpr, named_call, named_scope,
                         value_and_grad, vjp, vmap)
from tinyjax import stages
from tinyjax import custom_derivatives  # noqa: E402
from tinyjax.custom_derivatives import closure_convert, custom_gradient, custom_jvp, custom_vjp
from tinyjax import ad_checkpoint  # noqa: E402
from tinyjax.ad_checkpoint import checkpoint, checkpoint_policies, remat
from tinyjax import errors
from tinyjax.errors import (ConcretizationTypeError, TracerBoolConversionError,
                            TracerIntegerConversionError, UnexpectedTracerError)
from tinyjax import nn, scipy  # noqa: E402
from tinyjax import debug, experimental  # noqa: E402
from tinyjax import ad, memory  # noqa: E402
from tinyjax.callback import pure_callback  # noqa: E402
# JAX's device API (the backends themselves are the package tinyjax.backends)
from tinyjax.backends import (Device, default_backend, device_count, devices,  # noqa: E402
                              local_device_count, local_devices)
from tinyjax.dispatch import (block_until_ready, device_get, device_put,  # noqa: E402
                              effects_barrier, live_arrays)
from tinyjax import flatten_util, image, ops  # noqa: E402
from tinyjax.environment import print_environment_info  # noqa: E402
from tinyjax import sharding  # noqa: E402
from tinyjax import ref  # noqa: E402
from tinyjax import custom_batching, dlpack, monitoring, profiler  # noqa: E402
from tinyjax.ref import Ref, empty_ref, free_ref, freeze, new_ref  # noqa: E402
from tinyjax.lax.refs import ds  # noqa: E402
from tinyjax.sharding import (NamedSharding, Shard, make_array_from_callback,  # noqa: E402
                              make_array_from_process_local_data,
                              make_array_from_single_device_arrays, make_mesh, reshard,
                              set_mesh)
from tinyjax.sharding import PartitionSpec as P  # noqa: E402
from tinyjax.backends import (host_count, host_id, host_ids, process_count,  # noqa: E402
                              process_index, process_indices)
from tinyjax.spmd import types as _sharding_types  # noqa: E402,F401 (the type rules)
from tinyjax.spmd.shard_map import shard_map  # noqa: E402
from tinyjax.spmd.smap import smap  # noqa: E402
from tinyjax.spmd.pmap import pmap  # noqa: E402
from tinyjax import distributed  # noqa: E402
from tinyjax import export, ffi, lib  # noqa: E402

jacobian = jacrev

# the flags JAX exposes at the top level: ``with jax.debug_nans(True): ...``, ``.value``
enable_x64 = _State("jax_enable_x64")
debug_nans = _State("jax_debug_nans")
debug_infs = _State("jax_debug_infs")
log_compiles = _State("jax_log_compiles")
default_matmul_precision = _State("jax_default_matmul_precision")
numpy_rank_promotion = _State("jax_numpy_rank_promotion")
numpy_dtype_promotion = _State("jax_numpy_dtype_promotion")
enable_checks = _State("jax_enable_checks")
no_tracing = _State("jax_no_tracing")
no_execution = _State("jax_no_execution")
default_device = _State("jax_default_device")
check_tracer_leaks = _State("jax_check_tracer_leaks")
debug_key_reuse = _State("jax_debug_key_reuse")
explain_cache_misses = _State("jax_explain_cache_misses")
enable_custom_prng = _State("jax_enable_custom_prng")
softmax_custom_jvp = _State("jax_softmax_custom_jvp")
thread_guard = _State("jax_thread_guard")
allow_f16_reductions = _State("jax_allow_f16_reductions")
auto_pcast = _State("jax_auto_pcast")
remove_size_one_mesh_axis_from_type = _State("jax_remove_size_one_mesh_axis_from_type")
jax2tf_associative_scan_reductions = _State("jax2tf_associative_scan_reductions")
array_garbage_collection_guard = _State("jax_array_garbage_collection_guard")
legacy_prng_key = _State("jax_legacy_prng_key")
default_prng_impl = _State("jax_default_prng_impl")
threefry_partitionable = _State("jax_threefry_partitionable")
transfer_guard_host_to_device = _State("jax_transfer_guard_host_to_device")
transfer_guard_device_to_host = _State("jax_transfer_guard_device_to_host")
transfer_guard_device_to_device = _State("jax_transfer_guard_device_to_device")
checking_leaks = _partial(check_tracer_leaks, True)


def transfer_guard(new_val: str):
    """Context manager: the transfer guard level of every kind of transfer."""
    return config.override(jax_transfer_guard=new_val,
                           **{f"jax_transfer_guard_{k}": new_val for k in
                              ("host_to_device", "device_to_host", "device_to_device")})


from tinyjax.dtypes import float0  # noqa: E402
from tinyjax.api import copy_to_host_async, fwd_and_bwd, make_user_context  # noqa: E402

from tinyjax.version import __version__, __version_info__  # noqa: E402,F401

from tinyjax.compat import install_as_jax  # noqa: E402
