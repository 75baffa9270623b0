"""``tinyjax.numpy``: NumPy's API on tinyjax arrays, written in terms of ``tinyjax.lax``."""
import sys as _sys

import numpy as _np

from tinyjax import dtypes as _dtypes
from tinyjax.array import Array as ndarray  # noqa: F401
from tinyjax.dtypes import (bfloat16, bool_, finfo, float16, float32, float64,  # noqa: F401
                            iinfo, int8, int16, int32, int64, issubdtype, promote_types,
                            uint8, uint16, uint32, uint64, result_type)
from tinyjax.numpy._creation import array, asarray  # noqa: F401
from tinyjax.numpy._creation import (arange, astype, copy, diag, diagonal, empty,  # noqa: F401
                                     empty_like, eye, full, full_like, identity, indices,
                                     linspace, logspace, meshgrid, ones, ones_like, tri,
                                     tril, triu, zeros, zeros_like)
from tinyjax.numpy._shape import *  # noqa: F401,F403
from tinyjax.numpy._reductions import *  # noqa: F401,F403
from tinyjax.numpy._indexing import take, take_along_axis, where  # noqa: F401
from tinyjax.numpy._ufuncs import *  # noqa: F401,F403
from tinyjax.numpy._ufuncs import abs, divmod, pow, round  # noqa: F401
from tinyjax.numpy._linalg import *  # noqa: F401,F403
from tinyjax.numpy._sorting import *  # noqa: F401,F403
from tinyjax.numpy._misc import *  # noqa: F401,F403
from tinyjax.numpy import linalg  # noqa: F401
from tinyjax.numpy._vectorize import vectorize  # noqa: F401
from tinyjax.numpy import _array_methods

pi = _np.pi
e = _np.e
inf = _np.inf
nan = _np.nan
newaxis = None
euler_gamma = _np.euler_gamma
integer = _np.integer
signedinteger = _np.signedinteger
unsignedinteger = _np.unsignedinteger
floating = _np.floating
inexact = _np.inexact
number = _np.number
generic = _np.generic
bool = bool_  # noqa: A001
float_ = float32
int_ = int32
dtype = _np.dtype

_array_methods.install(_sys.modules[__name__])  # operators and methods of arrays and tracers
