"""Every primitive rejects at least one bad input with an error that names it,
eagerly and at trace time.  A new primitive without a case here fails
``test_every_primitive_has_a_bad_input_case``."""
import sys

import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.custom_derivatives import linear_call
from tinyjax.lax.select_and_scatter import select_and_scatter
from tinyjax.core import Primitive

F = np.ones((2, 3), np.float32)
I = np.ones((2, 3), np.int32)
B = np.ones((2, 3), bool)
U = np.ones((2, 3), np.uint32)

FLOAT_ONLY_UNARY = ["exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos",
                    "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
                    "sqrt", "rsqrt", "cbrt", "erf", "erfc", "erf_inv", "lgamma", "digamma",
                    "floor", "ceil", "is_finite", "round"]
NUMBER_UNARY = {"neg": "neg", "sign": "sign", "square": "square"}
BINARY = ["add", "sub", "mul", "div", "rem", "max", "min", "pow", "atan2", "nextafter",
          "eq", "ne", "lt", "le", "gt", "ge", "polygamma"]
H = F.astype(np.float16)


def _bind(name, *args, **params):
    return getattr(lax, f"{name}_p").bind(*args, **params)


CASES = {}
for _name in FLOAT_ONLY_UNARY:
    CASES[_name] = (lambda n=_name: getattr(lax, n)(I), TypeError,
                    f"{_name} does not accept dtype i32")
for _name in NUMBER_UNARY:
    CASES[_name] = (lambda n=_name: getattr(lax, n)(B), TypeError,
                    f"{_name} does not accept dtype bool")
for _name in BINARY:
    CASES[_name] = (lambda n=_name: _bind(n, F, H), TypeError,
                    f"{_name} requires arguments to have the same dtypes")
SQ = np.ones((2, 2), np.float32)
CASES.update({
    "cholesky": (lambda: lax.linalg.cholesky(F), ValueError, "cholesky must be a square"),
    "lu": (lambda: lax.linalg.lu(np.ones(3, np.float32)), TypeError,
           "Input 0 to lu must have rank at least 2"),
    "lu_pivots_to_permutation": (lambda: lax.linalg.lu_pivots_to_permutation(
        np.zeros(3, np.int32), 2), ValueError, "has to exceed"),
    "qr": (lambda: lax.linalg.qr(I), TypeError, "qr does not accept dtype int32"),
    "svd": (lambda: lax.linalg.svd(H), TypeError, "svd does not accept dtype float16"),
    "eigh": (lambda: lax.linalg.eigh(F, symmetrize_input=False), ValueError,
             "must have shape"),
    "eig": (lambda: lax.linalg.eig(F), ValueError, "eig must be a square"),
    "schur": (lambda: lax.linalg.schur(F), ValueError, "schur must be a square"),
    "fft": (lambda: lax.fft(F, lax.FftType.FFT, (99,)), ValueError,
            "minor dimensions must be equal to fft_lengths"),
    "triangular_solve": (lambda: lax.linalg.triangular_solve(SQ, F[:, :1].T, left_side=True),
                         ValueError, "Incompatible shapes for arguments to triangular_solve"),
    "tridiagonal_solve": (lambda: lax.linalg.tridiagonal_solve(F[0], F[0], F[0][:2], F.T),
                          TypeError, "same shape"),
    "hessenberg": (lambda: lax.linalg.hessenberg(F), ValueError,
                   "Hessenberg reduction must have shape"),
    "tridiagonal": (lambda: lax.linalg.tridiagonal(I), TypeError,
                    "tridiagonal does not accept dtype int32"),
    "householder_product": (lambda: lax.linalg.householder_product(F, F[0]), ValueError,
                            "at least as many rows as columns"),
    "ormqr": (lambda: lax.linalg.ormqr(F.T, F[0, :2], SQ), ValueError,
              "expects c to have the same number of rows"),
    "symmetric_product": (lambda: lax.linalg.symmetric_product(F.T, SQ), ValueError,
                          "a square matrix of shape \\(m, m\\)"),
    "cholesky_update": (lambda: lax.linalg.cholesky_update(SQ, F[0]), ValueError,
                        "Rank-1 update to Cholesky decomposition"),
    "custom_linear_solve": (lambda: lax.custom_linear_solve(lambda x: x[:1], F[0],
                                                            lambda mv, b: b), TypeError,
                            "matvec must return values of the types of b"),
    "custom_root": (lambda: lax.custom_root(lambda x: x, F[0], lambda f, x: (x, x),
                                            lambda g, y: y), TypeError,
                    "output pytree structure must match initial_guess"),
    "linear_call": (lambda: linear_call(lambda r, x: x, lambda r, t: t, (), "a"), TypeError,
                    "is not a valid JAX type"),
    "real": (lambda: lax.real(F), TypeError, "real does not accept dtype f32"),
    "imag": (lambda: lax.imag(I), TypeError, "imag does not accept dtype i32"),
    "conj": (lambda: lax.conj(I), TypeError, "conj does not accept dtype i32"),
    "complex": (lambda: lax.complex(H, H), TypeError, "complex does not accept dtype f16"),
    "abs": (lambda: lax.abs(U), TypeError, "abs does not accept dtype u32"),
    "integer_pow": (lambda: lax.integer_pow(B, 2), TypeError, "integer_pow does not accept"),
    "not": (lambda: lax.bitwise_not(F), TypeError, "not does not accept dtype f32"),
    "population_count": (lambda: lax.population_count(F), TypeError,
                         "population_count does not accept dtype f32"),
    "clz": (lambda: lax.clz(F), TypeError, "clz does not accept dtype f32"),
    "mulhi": (lambda: lax.mulhi(F, F), TypeError, "mulhi does not accept dtype f32"),
    "reduce_precision": (lambda: lax.reduce_precision(F, 0, 3), ValueError,
                         "exponent_bits must be positive"),
    "and": (lambda: lax.bitwise_and(F, F), TypeError, "and does not accept dtype f32"),
    "or": (lambda: lax.bitwise_or(F, F), TypeError, "or does not accept dtype f32"),
    "xor": (lambda: lax.bitwise_xor(F, F), TypeError, "xor does not accept dtype f32"),
    "shift_left": (lambda: lax.shift_left(F, F), TypeError, "shift_left does not accept"),
    "shift_right_logical": (lambda: lax.shift_right_logical(F, F), TypeError,
                            "shift_right_logical does not accept"),
    "shift_right_arithmetic": (lambda: lax.shift_right_arithmetic(F, F), TypeError,
                               "shift_right_arithmetic does not accept"),
    "select_n": (lambda: lax.select_n(F, F, F), TypeError, "select_n which must be boolean"),
    "clamp": (lambda: lax.clamp(np.ones(4, np.float32), F, 1.0), TypeError,
              "clamp requires min to be a scalar"),
    "convert_element_type": (lambda: _bind("convert_element_type", object(),
                                           new_dtype=np.float32), TypeError,
                             "not a valid JAX type"),
    "bitcast_convert_type": (lambda: lax.bitcast_convert_type(np.ones(3, np.int8), np.int32),
                             TypeError, "bitcast_convert_type"),
    "stop_gradient": (lambda: lax.stop_gradient_p.bind(object()), TypeError,
                      "not a valid JAX type"),
    "copy": (lambda: lax.copy_p.bind(object()), TypeError, "not a valid JAX type"),
    "broadcast_in_dim": (lambda: lax.broadcast_in_dim(F, (4, 3), (0, 1)), TypeError,
                         "broadcast_in_dim operand dimension sizes must either be 1"),
    "reshape": (lambda: lax.reshape(F, (4, 2)), TypeError, "reshape total size must be "
                                                           "unchanged"),
    "transpose": (lambda: lax.transpose(F, (0, 0)), TypeError,
                  "transpose permutation isn't a permutation"),
    "iota": (lambda: lax.broadcasted_iota(np.int32, (2, 3), 5), ValueError,
             "iota dimension must be between"),
    "reduce_sum": (lambda: lax.reduce_sum(F, (0, 0)), ValueError, "reduce_sum"),
    "reduce_max": (lambda: lax.reduce_max(F, (3,)), ValueError, "reduce_max"),
    "reduce_min": (lambda: lax.reduce_min(F, (3,)), ValueError, "reduce_min"),
    "reduce_prod": (lambda: lax.reduce_prod(B, (0,)), TypeError, "reduce_prod"),
    "reduce_and": (lambda: lax.reduce_and(F, (0,)), TypeError, "reduce_and"),
    "reduce_or": (lambda: lax.reduce_or(F, (0,)), TypeError, "reduce_or"),
    "reduce_xor": (lambda: lax.reduce_xor(F, (0,)), TypeError, "reduce_xor"),
    "argmax": (lambda: lax.argmax(F, 5, np.int32), ValueError, "argmax"),
    "argmin": (lambda: lax.argmin(F, 0, np.float32), TypeError, "index_dtype must be an "
                                                                "integer type"),
    "cumsum": (lambda: lax.cumsum(B, 0), TypeError, "cumsum"),
    "cumprod": (lambda: lax.cumprod(B, 0), TypeError, "cumprod"),
    "cummax": (lambda: lax.cummax(F, 4), ValueError, "cummax"),
    "cummin": (lambda: lax.cummin(F, 4), ValueError, "cummin"),
    "cumlogsumexp": (lambda: lax.cumlogsumexp(I, 0), TypeError, "cumlogsumexp"),
    "slice": (lambda: lax.slice(F, (0, 0), (3, 3)), TypeError, "slice"),
    "pad": (lambda: lax.pad(F, np.int32(0), ((0, 0, 0), (0, 0, 0))), TypeError, "pad"),
    "concatenate": (lambda: lax.concatenate([F, I], 0), TypeError, "concatenate"),
    "rev": (lambda: lax.rev(F, (2,)), (TypeError, ValueError), "rev"),
    "squeeze": (lambda: lax.squeeze(F, (0,)), ValueError, "squeeze"),
    "split": (lambda: lax.split(F, (1, 1), axis=1), ValueError, "split"),
    "dynamic_slice": (lambda: lax.dynamic_slice(F, (0,), (1, 1)), (TypeError, ValueError),
                      "dynamic_slice"),
    "dynamic_update_slice": (lambda: lax.dynamic_update_slice(F, I, (0, 0)), TypeError,
                             "dynamic_update_slice"),
    "gather": (lambda: lax.gather(F, np.zeros((2, 1), np.float32), lax.GatherDimensionNumbers(
        offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,)), (1, 3)),
        (TypeError, ValueError), "gather"),
    "dot_general": (lambda: lax.dot_general(F, np.ones((4, 2), np.float32),
                                            (((1,), (0,)), ((), ()))), TypeError,
                    "dot_general"),
    "conv_general_dilated": (lambda: lax.conv_general_dilated(
        np.ones((1, 2, 5, 5), np.float32), np.ones((3, 4, 3, 3), np.float32), (1, 1),
        "VALID"), (TypeError, ValueError), "conv_general_dilated"),
    "reduce_window_sum": (lambda: lax.reduce_window(F, 0.0, lax.add, (3,), (1,), "VALID"),
                          (TypeError, ValueError), "reduce_window"),
    "reduce_window_max": (lambda: lax.reduce_window(F, -np.inf, lax.max, (1, 4), (1, 1),
                                                    "VALID"), (TypeError, ValueError),
                          "reduce_window"),
    "reduce_window_min": (lambda: lax.reduce_window(F, np.inf, lax.min, (1, 1), (0, 1),
                                                    "VALID"), (TypeError, ValueError),
                          "reduce_window"),
    "select_and_scatter_add": (lambda: lax.select_and_scatter_add(
        np.ones((5, 5), np.float32), F, lax.ge_p, (1, 1), (1, 1), "VALID"),
        (TypeError, ValueError), "select_and_scatter_add"),
    "select_and_gather_add": (lambda: lax.select_and_gather_add(
        np.ones((5, 5), np.float32), F, lax.ge_p, (1, 1), (1, 1), "VALID"),
        (TypeError, ValueError), "select_and_gather_add"),
    "sort": (lambda: lax.sort((F, np.ones(3, np.float32))), (TypeError, ValueError), "sort"),
    "top_k": (lambda: lax.top_k(F, 4), (TypeError, ValueError), "top_k"),
    "psum": (lambda: lax.psum(F, "nope"), NameError, "unbound axis name: nope"),
    "pmax": (lambda: lax.pmax(F, "nope"), NameError, "unbound axis name"),
    "pmin": (lambda: lax.pmin(F, "nope"), NameError, "unbound axis name"),
    "all_gather": (lambda: lax.all_gather(F, "nope"), NameError, "unbound axis name"),
    "axis_index": (lambda: lax.axis_index("nope"), NameError, "unbound axis name"),
    "reduce_scatter": (lambda: jax.vmap(lambda v: lax.psum_scatter(v, "i"), axis_name="i")(
        np.ones((2, 3), np.float32)), ValueError, "must equal the size of axis i"),
    "ppermute": (lambda: jax.vmap(lambda v: lax.ppermute(v, "i", [(0, 5)]), axis_name="i")(
        np.ones((2, 3), np.float32)), ValueError, "ppermute"),
    "all_to_all": (lambda: jax.vmap(lambda v: lax.all_to_all(v, "i", 0, 0, tiled=True),
                                    axis_name="i")(np.ones((2, 3), np.float32)), ValueError,
                   "divisible by the size of the named axis"),
    "pvary": (lambda: lax.pvary(F, "nope"), NameError, "unbound axis name"),
    "pbroadcast": (lambda: jax.vmap(lambda v: lax.pbroadcast(v, "i", 5), axis_name="i")(F),
                   ValueError, r"pbroadcast: source=5 must be in \[0, 2\)"),
    "ragged_all_to_all": (lambda: jax.vmap(
        lambda v: lax.ragged_all_to_all(v, v, v[:1], v[:1], v[:1], v[:1], axis_name="i"),
        axis_name="i")(F), ValueError, "ragged_all_to_all input_offsets must be integer type"),
    "inspect_sharding": (lambda: jax.debug.inspect_array_sharding(F, callback="print"),
                         TypeError, "inspect_array_sharding: callback must be callable"),
    "shard_map": (lambda: jax.shard_map(lambda x: x, mesh=jax.make_mesh((1,), ("i",)),
                                        in_specs=jax.P("j"), out_specs=jax.P())(F),
                  ValueError, "not in the mesh"),
    "sharding_constraint": (lambda: lax.with_sharding_constraint(F, jax.NamedSharding(
        jax.make_mesh((1,), ("i",)), jax.P("i", None, None, None))), ValueError,
        "rank at least 4"),
    "cond": (lambda: lax.cond(True, lambda: F, lambda: I), TypeError,
             "true_fun and false_fun output must have identical types"),
    "while": (lambda: lax.while_loop(lambda c: c < 3, lambda c: c + 1.0, np.int32(0)),
              TypeError,
              "body_fun output and input must have identical types"),
    "scan": (lambda: lax.scan(lambda c, x: (np.ones(2, np.float32), x), np.float32(0),
                              np.ones(3, np.float32)), TypeError, "carry"),
    "threefry2x32": (lambda: lax.threefry2x32_p.bind(U, U, F, U), TypeError, "threefry"),
    "scatter": (lambda: lax.scatter(F, np.zeros((1, 1), np.int32), I, _sdn()), TypeError,
                "scatter"),
    "scatter-add": (lambda: lax.scatter_add(F, np.zeros((1, 1), np.int32), I, _sdn()),
                    TypeError, "scatter"),
    "scatter-mul": (lambda: lax.scatter_mul(F, np.zeros((1, 1), np.int32), I, _sdn()),
                    TypeError, "scatter"),
    "scatter-min": (lambda: lax.scatter_min(F, np.zeros((1, 1), np.int32), I, _sdn()),
                    TypeError, "scatter"),
    "scatter-max": (lambda: lax.scatter_max(F, np.zeros((1, 1), np.int32), I, _sdn()),
                    TypeError, "scatter"),
    "custom_lin": (lambda: jax.jvp(_clip, (1.0,), (1.0,)), TypeError,
                   "can't apply forward-mode autodiff"),
    "igamma": (lambda: lax.igamma(I, I), TypeError, "igamma does not accept dtype int32"),
    "igammac": (lambda: lax.igammac(F, H), TypeError,
                "lax.igammac requires arguments to have the same dtypes"),
    "igamma_grad_a": (lambda: lax.igamma_grad_a(F, np.ones(4, np.float32)), TypeError,
                      "igamma_grad_a got incompatible shapes"),
    "regularized_incomplete_beta": (lambda: lax.betainc(F, F, I), TypeError,
                                    "regularized_incomplete_beta does not accept dtype int32"),
    "bessel_i0e": (lambda: lax.bessel_i0e(I), TypeError, "bessel_i0e does not accept"),
    "bessel_i1e": (lambda: lax.bessel_i1e(B), TypeError, "bessel_i1e does not accept"),
    "zeta": (lambda: lax.zeta(F, H), TypeError, "lax.zeta requires arguments to have the same"),
    "random_gamma": (lambda: jax.random.random_gamma_p.bind(F, F, log_space=False), TypeError,
                     "random_gamma expects uint32 key data"),
})
CASES["check"] = (lambda: _bind_check(), TypeError, "the predicate must be a boolean")
CASES.update({
    "stack": (lambda: lax.stack([F, I]), TypeError, "stack requires operands of one shape"),
    "unstack": (lambda: lax.unstack_p.bind(np.float32(1), axis=0), ValueError,
                "unstack requires an operand of rank at least 1"),
    "tile": (lambda: lax.tile(F, (2,)), ValueError, "tile: reps"),
    "reduce_window": (lambda: lax.reduce_window_p.bind(
        F, F, jaxpr=jax.make_jaxpr(lax.mul)(1.0, 1.0).jaxpr, consts=(),
        window_dimensions=(1, 1), window_strides=(1, 1), padding=((0, 0), (0, 0)),
        base_dilation=(1, 1), window_dilation=(1, 1)),
        TypeError, "reduce_window: init values must be scalars"),
    "reduce": (lambda: lax.reduce_p.bind(F, I[0, 0], computation=None, dimensions=(0,),
                                         jaxpr=jax.make_jaxpr(lax.add)(1.0, 1.0)),
               TypeError, "reduce: operands must have one shape and init values"),
    "approx_top_k": (lambda: lax.approx_max_k(F.astype(np.complex64), 1), TypeError,
                     "approx_top_k does not accept dtype complex64"),
    "rng_bit_generator": (lambda: lax.rng_bit_generator(F[0], (2,)), TypeError,
                          "rng_bit_generator: key must be uint32"),
    "scatter-sub": (lambda: lax.scatter_sub(F, np.zeros((1, 1), np.int32), F, _sdn()),
                    TypeError, "scatter-sub"),
})
for _name in ("eq_to", "le_to", "lt_to"):
    CASES[_name] = (lambda n=_name: _bind(n, F, H), TypeError,
                    f"{_name} requires arguments to have the same dtypes")
CASES.update({
    "after_all": (lambda: lax.after_all_p.bind(F), TypeError,
                  "Arguments to after_all must be tokens"),
    "device_put": (lambda: lax.device_put_p.bind(F, devices=(), srcs=(), copy_semantics=()),
                   TypeError, "device_put takes one device, src and copy semantics"),
    "rng_uniform": (lambda: lax.rng_uniform(F[0, 0], I[0, 0], (2,)), ValueError,
                    "Arguments to rng_uniform must have identical dtypes"),
    "select_and_scatter": (lambda: select_and_scatter(
        F, lax.ge, (1, 1), (1, 1), ((0, 0), (0, 0)), F[:1], 0.0, lax.add), TypeError,
        "select_and_scatter: source shape"),
    "stage": (lambda: lax.stage("a"), TypeError, "Error interpreting argument to stage"),
})
CASES["name"] = (lambda: _ad_checkpoint().name_p.bind(F, name=3), TypeError,
                 "the name must be a string")
for _name in ("pure_callback", "io_callback", "debug_callback"):
    CASES[_name] = (lambda n=_name: _bind_callback(n), TypeError, f"{_name}: the callback")
CASES["call_exported"] = (lambda: _bind_call_exported(), ValueError, "Dtype mismatch")
CASES["ffi_call"] = (lambda: _bind_ffi_call(), TypeError, "ffi_call: the call to `case`")


def _bind_call_exported():
    """An exported function of a float32 argument bound to an int32 one."""
    from tinyjax import export
    from tinyjax.export.exported import call_exported_p
    exp = export.export(jax.jit(lambda x: x + 1))(F)
    return call_exported_p.bind(I, exported=exp)


def _bind_ffi_call():
    """An ffi_call equation made for one operand of rank 1, given two."""
    import ctypes

    from tinyjax import ffi
    from tinyjax.core import ShapedArray
    ffi.register_ffi_target("case", ctypes.CDLL(None).abs, api_version=0)  # (never called)
    call = ffi.LegacyCpuCall("case", (ShapedArray((3,), np.float32),), ((0,),), ((0,),), (), b"")
    return ffi.ffi_call_p.bind(F, F, callback=call, target_name="case", vmap_method=None,
                               custom_call_api_version=3)

# Primitives a user never binds directly, with the reason.
EXEMPT = {
    "custom_jvp_call": "its types are those of the function's jaxpr, checked when traced",
    "custom_vjp_call": "its types are those of the function's jaxpr, checked when traced",
    "checkpoint": "its types are those of its traced jaxpr, checked when it is traced",
    "jit": "its types are those of the jitted function's traced jaxpr",
    "custom_vmap_call": "its types are those of the function's jaxpr, checked when traced",
    "optimization_barrier": "an identity on any operands: no input is bad",
    "name": "checkpoint_name's tag: an identity on any operand, no input is bad",
    "create_token": "takes no operands (any given are ignored, as JAX's): no input is bad",
    "dce_sink": "takes any operands and gives no result: no input is bad",
    "remat_opt": "its types are those of the custom_vjp fwd rule's traced jaxpr",
}


def _bind_check():
    from tinyjax import tree_util
    from tinyjax.experimental import checkify
    chk = checkify.UserCheck("msg", tree_util.tree_structure(((), {})), False)
    return checkify.check_p.bind(F, check=chk)


def _ad_checkpoint():
    from tinyjax import ad_checkpoint
    return ad_checkpoint


def _bind_callback(name):
    """A callback equation with one operand more than its function takes."""
    from tinyjax import callback, tree_util
    fn = callback.FlatCallback(print, tree_util.tree_structure(((0,), {})), [], [])
    return getattr(callback, f"{name}_p").bind(F, F, callback=fn)


def _sdn():
    return lax.ScatterDimensionNumbers(update_window_dims=(1,), inserted_window_dims=(0,),
                                       scatter_dims_to_operand_dims=(0,))


@jax.custom_vjp
def _clip(x):
    return x


_clip.defvjp(lambda x: (x, None), lambda r, g: (g,))


def _all_primitives() -> set[str]:
    names = set()
    for name, mod in list(sys.modules.items()):
        if name.startswith("tinyjax") and mod is not None:
            names.update(v.name for v in vars(mod).values() if isinstance(v, Primitive))
    return names


def test_every_primitive_has_a_bad_input_case():
    missing = _all_primitives() - set(CASES) - set(EXEMPT)
    assert not missing, f"primitives without an abstract-eval error test: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_raises_eagerly_and_when_traced(name):
    thunk, exc, match = CASES[name]
    with pytest.raises(exc, match=match):
        thunk()
    with pytest.raises(exc, match=match):
        jax.make_jaxpr(lambda: thunk())()
