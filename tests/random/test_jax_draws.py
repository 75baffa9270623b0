"""tinyjax.random draws the numbers JAX draws: the cases of draw_cases.py against the
values data/make_jax_draws.py recorded with JAX (bit for bit where the draw is an exact
function of the random bits, to a few units in the last place through transcendental
functions), eagerly and under jit."""
import json
import os

import numpy as np
import pytest

import tinyjax as jax
from tinyjax import random

from tests.random.draw_cases import BIT_EXACT, CASES

with open(os.path.join(os.path.dirname(__file__), "data", "jax_draws.json")) as _f:
    JAX_DRAWS = json.load(_f)["draws"]


def _ulps(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.max(np.abs(a.view(np.int32).astype(np.int64)
                             - b.view(np.int32).astype(np.int64)), initial=0))


def _check(name: str, got, seed: str) -> None:
    ref = JAX_DRAWS[seed][name]
    want = np.array(ref["values"], dtype=ref["dtype"])
    got = np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape)
    if name in BIT_EXACT or want.dtype != np.float32:
        np.testing.assert_array_equal(got, want)
    else:
        assert _ulps(got, want) <= 8, (got, want)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_draws_match_jax(name):
    for seed in JAX_DRAWS:
        _check(name, CASES[name](random, random.key(int(seed))), seed)


@pytest.mark.parametrize("name", sorted(BIT_EXACT - {"poisson_30", "binomial_100_0.6"}))
def test_jitted_draws_match_jax(name):
    for seed in JAX_DRAWS:
        got = jax.jit(lambda k: CASES[name](random, k))(random.key(int(seed)))
        _check(name, got, seed)
