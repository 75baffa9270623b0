"""``tinyjax.numpy``: NumPy's API on tinyjax arrays, written in terms of ``tinyjax.lax``."""
import sys as _sys

import numpy as _np

from tinyjax import dtypes as _dtypes
from tinyjax.array import Array as ndarray  # noqa: F401
from tinyjax.dtypes import (finfo, iinfo, issubdtype, promote_types,  # noqa: F401
                            result_type)
from tinyjax.numpy._scalar_types import *  # noqa: F401,F403
from tinyjax.numpy import _scalar_types
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
from tinyjax.numpy import fft, linalg  # noqa: F401
from tinyjax.numpy._vectorize import vectorize  # noqa: F401
from tinyjax.numpy._ufunc_api import *  # noqa: F401,F403
from tinyjax.numpy._setops import *  # noqa: F401,F403
from tinyjax.numpy._polynomial import *  # noqa: F401,F403
from tinyjax.numpy._index_tricks import *  # noqa: F401,F403
from tinyjax.numpy._manipulation import *  # noqa: F401,F403
from tinyjax.numpy._statistics import *  # noqa: F401,F403
from tinyjax.numpy._io import *  # noqa: F401,F403
from tinyjax.numpy._type_checks import *  # noqa: F401,F403
from tinyjax.numpy._windows import *  # noqa: F401,F403
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
dtype = _np.dtype
complexfloating = _np.complexfloating
character = _np.character
flexible = _np.flexible
object_ = _np.object_
ComplexWarning = _np.exceptions.ComplexWarning
_scalar_types.set_asarray(asarray)

_array_methods.install(_sys.modules[__name__])  # operators and methods of arrays and tracers
