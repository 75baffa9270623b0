"""``tinyjax.lax``: the primitive operations, with JAX's signatures.

Each family of primitives lives in its own module with all its rules (eager
implementation, abstract evaluation, jvp, transpose, batching).
"""
from tinyjax.lax.elementwise import *  # noqa: F401,F403
from tinyjax.lax.shape import *  # noqa: F401,F403
from tinyjax.lax.reductions import *  # noqa: F401,F403
from tinyjax.lax.slicing import *  # noqa: F401,F403
from tinyjax.lax.cumulative import *  # noqa: F401,F403
from tinyjax.lax.sorting import *  # noqa: F401,F403
from tinyjax.lax.dot import *  # noqa: F401,F403
from tinyjax.lax.gather_scatter import *  # noqa: F401,F403
from tinyjax.lax.convolution import *  # noqa: F401,F403
from tinyjax.lax.windowed import *  # noqa: F401,F403
from tinyjax.lax.parallel import *  # noqa: F401,F403
from tinyjax.lax.pbroadcast import *  # noqa: F401,F403
from tinyjax.lax.ragged_all_to_all import *  # noqa: F401,F403
from tinyjax.lax.sharding_constraint import *  # noqa: F401,F403
from tinyjax.lax.random_bits import *  # noqa: F401,F403
from tinyjax.lax.special import *  # noqa: F401,F403
from tinyjax.lax.control_flow import *  # noqa: F401,F403
from tinyjax.lax.shape_helpers import *  # noqa: F401,F403
from tinyjax.lax.precision import *  # noqa: F401,F403
from tinyjax.lax.convolution_helpers import *  # noqa: F401,F403
from tinyjax.lax.scatter_helpers import *  # noqa: F401,F403
from tinyjax.lax.reduce_general import *  # noqa: F401,F403
from tinyjax.lax.ragged import *  # noqa: F401,F403
from tinyjax.lax.platform import *  # noqa: F401,F403
from tinyjax.lax.scaled_dot import *  # noqa: F401,F403
from tinyjax.lax import printing as _printing  # noqa: F401,E402 (how equations print)

# the lax operations bound late: for the interpreters (they sit below lax) and for the rules
# of lax families whose modules would otherwise import each other
from tinyjax.interpreters import register_lax_ops  # noqa: E402
from tinyjax.lax.cumulative import shift  # noqa: E402

register_lax_ops(full=full, add=add, broadcast_in_dim=broadcast_in_dim,  # noqa: F405
                 transpose=transpose, reduce_sum=reduce_sum, cumprod=cumprod,  # noqa: F405
                 shift=shift)
from tinyjax.lax.fft import FftType, fft, fft_p  # noqa: F401,E402
from tinyjax.lax import linalg  # noqa: F401,E402
from tinyjax.lax.dimension_comparisons import *  # noqa: F401,F403,E402
from tinyjax.lax.tokens import after_all, after_all_p, create_token, create_token_p  # noqa: F401,E402,E501
from tinyjax.lax.dce_sink import dce_sink, dce_sink_p  # noqa: F401,E402
from tinyjax.lax.device_put import device_put_p  # noqa: F401,E402
from tinyjax.lax.rng_uniform import rng_uniform, rng_uniform_p  # noqa: F401,E402
from tinyjax.lax.select_and_scatter import select_and_scatter_p  # noqa: F401,E402
