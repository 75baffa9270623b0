"""The jax._src names libraries use: the compile entry point Chex replaces to restrict
backends, traceback exclusions naming the user's line, and the rest as tinyjax's."""
import contextlib
import sys

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.compat import mlir
from tinyjax.compat._src import compiler, dtypes as src_dtypes, traceback_util
from tinyjax.dispatch import compile_for_device, register_compile_entry
from tinyjax.extend import core as jex


@contextlib.contextmanager
def replaced_compile(wrapper):
    original = compiler.backend_compile_and_load
    compiler.backend_compile_and_load = wrapper(original)
    try:
        yield
    finally:
        compiler.backend_compile_and_load = original


def test_every_compilation_goes_through_the_replaceable_entry_point():
    seen = []

    def counting(inner):
        def wrapper(backend, closed):
            seen.append(backend.platform)
            return inner(backend, closed)
        return wrapper

    with replaced_compile(counting):
        np.testing.assert_allclose(float(jax.jit(lambda x: jnp.cos(x) * 3)(0.0)), 3.0)
    assert seen == ["cpu"]


def test_a_refusing_entry_point_stops_compilation():
    class Forbidden(RuntimeError):
        pass

    def refusing(inner):
        def wrapper(backend, closed):
            raise Forbidden(f"compiling for {backend.platform} is forbidden")
        return wrapper

    with replaced_compile(refusing):
        with pytest.raises(Forbidden, match="cpu is forbidden"):
            jax.jit(lambda x: jnp.tan(x) - 1)(0.0)
    assert float(jax.jit(lambda x: jnp.tan(x) - 1)(0.0)) == -1.0


def test_excluded_files_are_skipped_when_naming_an_equations_source(tmp_path):
    library = tmp_path / "mylib.py"
    library.write_text("import tinyjax.numpy as jnp\ndef double(x):\n    return jnp.sin(x) * 2\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import mylib
        traceback_util.register_exclusion(str(library))
        closed = jax.make_jaxpr(lambda x: mylib.double(x))(1.0)  # this line is the user's
        assert all(e.source_info.startswith(__file__) for e in closed.jaxpr.eqns)
        assert str(library) in traceback_util._exclude_paths
        assert traceback_util.include_frame(sys._getframe())
    finally:
        sys.path.remove(str(tmp_path))


def test_dtype_helpers():
    assert src_dtypes.supports_inf(jnp.float32)
    assert not src_dtypes.supports_inf(jnp.float8_e4m3fn)
    assert issubclass(src_dtypes.TypePromotionError, ValueError)


def test_an_mlir_level_rule_leaves_the_primitive_to_eager_evaluation():
    p = jex.Primitive("host_only_negate")
    p.def_impl(lambda x: -x)
    p.def_abstract_eval(lambda x: x)
    mlir.register_lowering(p, lambda ctx, x: x)  # JAX's MLIR form: unusable here
    assert mlir.unusable_rules[p] is not None
    np.testing.assert_allclose(np.asarray(jax.jit(lambda x: p.bind(x) * 2)(jnp.ones(2))),
                               [-2.0, -2.0])


def test_no_backend_is_listed_as_initialized_for_xla_flags_to_precede():
    import tinyjax.compat._src as src
    xla_bridge = src.xla_bridge  # an attribute of the package, as jax._src.xla_bridge
    float(jax.jit(lambda x: x + 1)(1.0))  # (running a computation initializes nothing)
    assert xla_bridge._backends == {}


def test_util_list_helpers_check_lengths():
    from tinyjax.compat._src.util import safe_map, safe_zip, split_list, unzip2
    assert safe_map(lambda a, b: a + b, [1, 2], (10, 20)) == [11, 22]
    assert safe_zip("ab", [1, 2]) == [("a", 1), ("b", 2)]
    assert unzip2([(1, "a"), (2, "b")]) == ((1, 2), ("a", "b"))
    assert split_list(range(6), [1, 2]) == [[0], [1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="length mismatch"):
        safe_map(lambda a, b: a, [1, 2], [1])
    with pytest.raises(ValueError, match="length mismatch"):
        safe_zip([1], [1, 2])
