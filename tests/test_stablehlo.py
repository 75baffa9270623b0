"""Lowered.as_text(): the jaxpr spelled as StableHLO operations in MLIR's text form."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.stablehlo import dense_text

HEADER = "module @jit_{} attributes {{mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32}} {{"


def lines(text):
    return [line.strip() for line in text.strip().splitlines()]


def test_scalar_program_with_a_literal():
    def affine(x, y):
        return 3 * x - y

    text = jax.jit(affine).lower(1, 2).as_text()
    assert lines(text) == [
        HEADER.format("affine"),
        "func.func public @main(%arg0: tensor<i32>, %arg1: tensor<i32>) -> "
        '(tensor<i32> {jax.result_info = "result"}) {',
        "%c = stablehlo.constant dense<3> : tensor<i32>",
        "%0 = stablehlo.multiply %c, %arg0 : tensor<i32>",
        "%1 = stablehlo.subtract %0, %arg1 : tensor<i32>",
        "return %1 : tensor<i32>",
        "}",
        "}",
    ]


def test_scalar_operands_are_broadcast_and_constants_named_apart():
    text = jax.jit(lambda x: jnp.cos(x) * 0.5 + 2.0).lower(jnp.ones((2, 3))).as_text()
    body = lines(text)[2:-3]
    assert body == [
        "%0 = stablehlo.cosine %arg0 : tensor<2x3xf32>",
        "%cst = stablehlo.constant dense<5.000000e-01> : tensor<f32>",
        "%1 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<2x3xf32>",
        "%2 = stablehlo.multiply %0, %1 : tensor<2x3xf32>",
        "%cst_0 = stablehlo.constant dense<2.000000e+00> : tensor<f32>",
        "%3 = stablehlo.broadcast_in_dim %cst_0, dims = [] : (tensor<f32>) -> tensor<2x3xf32>",
        "%4 = stablehlo.add %2, %3 : tensor<2x3xf32>",
    ]


def test_reductions_comparisons_and_result_names():
    def stats(x):
        return {"max": x.max(axis=1), "pos": x > 0, "t": x.T}

    text = lines(jax.jit(stats).lower(jnp.ones((2, 3))).as_text())
    assert ('(tensor<2xf32> {jax.result_info = "result[\'max\']"}, tensor<2x3xi1> '
            '{jax.result_info = "result[\'pos\']"}, tensor<3x2xf32> '
            '{jax.result_info = "result[\'t\']"}) {') in text[1]
    assert "%cst = stablehlo.constant dense<0xFF800000> : tensor<f32>" in text
    assert ("%0 = stablehlo.reduce(%arg0 init: %cst) applies stablehlo.maximum across "
            "dimensions = [1] : (tensor<2x3xf32>, tensor<f32>) -> tensor<2xf32>") in text
    assert any(line.startswith("%") and "stablehlo.compare GT" in line and "FLOAT : "
               "(tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>" in line for line in text)
    assert any("stablehlo.transpose %arg0, dims = [1, 0] : (tensor<2x3xf32>) -> "
               "tensor<3x2xf32>" in line for line in text)


def test_nested_jit_is_a_private_function():
    inner = jax.jit(lambda y: y * y)

    def outer(x):
        return inner(x) + inner(x + 1.0)

    text = lines(jax.jit(outer).lower(jnp.ones(4)).as_text())
    calls = [line for line in text if "call @" in line]
    assert len(calls) == 2 and all('@"<lambda>"(' in c for c in calls)
    private = [line for line in text if line.startswith("func.func private")]
    assert private == ['func.func private @"<lambda>"(%arg0: tensor<4xf32>) -> tensor<4xf32> {']
    assert "%0 = stablehlo.multiply %arg0, %arg0 : tensor<4xf32>" in text


def test_matmul_and_integer_power():
    text = lines(jax.jit(lambda a, b: (a @ b) ** 3).lower(jnp.ones((2, 3)), jnp.ones((3, 4)))
                 .as_text())
    assert ("%0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0], "
            "precision = [DEFAULT, DEFAULT] : (tensor<2x3xf32>, tensor<3x4xf32>) -> "
            "tensor<2x4xf32>") in text
    assert [line.split(" = ", 1)[1] for line in text if "multiply" in line] == [
        "stablehlo.multiply %0, %0 : tensor<2x4xf32>",
        "stablehlo.multiply %0, %1 : tensor<2x4xf32>"]


@pytest.mark.parametrize("value, text", [
    (np.float32(1.5), "dense<1.500000e+00>"),
    (np.float32(0.1), "dense<1.000000e-01>"),
    (np.float32(1 / 3), "dense<0.333333343>"),
    (np.float32(1e-10 / 3), "dense<3.33333326E-11>"),
    (np.float64(0.1), "dense<1.000000e-01>"),
    (np.float32(-np.inf), "dense<0xFF800000>"),
    (np.array([1, 2, 3], np.int32), "dense<[1, 2, 3]>"),
    (np.zeros((2, 2), np.float32), "dense<0.000000e+00>"),
    (np.array([[True, False]]), "dense<[[true, false]]>"),
])
def test_dense_attributes(value, text):
    assert dense_text(np.asarray(value)) == text


def test_other_dialects():
    lowered = jax.jit(lambda x: x + 1).lower(1.0)
    assert lowered.as_text("stablehlo") == lowered.as_text()
    assert "add" in lowered.as_text(dialect="jaxpr") and "{ lambda" in lowered.as_text("jaxpr")
    with pytest.raises(NotImplementedError, match="dialect 'hlo'"):
        lowered.as_text(dialect="hlo")


def test_a_primitive_without_spelling_is_named():
    lowered = jax.jit(lambda x: jax.lax.cumsum(x)).lower(jnp.ones(3))
    with pytest.raises(NotImplementedError, match="primitive 'cumsum'"):
        lowered.as_text()
