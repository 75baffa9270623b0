"""``jax.export``: export a jitted function for given argument types, call it again,
serialize it to bytes and read it back (:mod:`tinyjax.export.exported`)."""
from tinyjax.export.exported import (DisabledSafetyCheck, Exported, default_export_platform,
                                     deserialize, export,
                                     maximum_supported_calling_convention_version,
                                     minimum_supported_calling_convention_version)
from tinyjax.export.pytrees import (register_namedtuple_serialization,
                                    register_pytree_node_serialization)
from tinyjax.export.shape_poly import (SymbolicScope, is_symbolic_dim, symbolic_args_specs,
                                       symbolic_shape)

__all__ = ["DisabledSafetyCheck", "Exported", "export", "deserialize",
           "register_pytree_node_serialization", "register_namedtuple_serialization",
           "maximum_supported_calling_convention_version",
           "minimum_supported_calling_convention_version", "default_export_platform",
           "SymbolicScope", "is_symbolic_dim", "symbolic_shape", "symbolic_args_specs"]
