"""Random programs of row statistics (sums, maxima, functions of them) read back over their
rows, several of them returned: multi-output fusion makes some stages of other kernels, and
the compiled results still equal eager evaluation, whichever kernel computes what."""
import numpy as np
from hypothesis import given, settings, strategies as st, HealthCheck

from tinyjax import lax
from tests.cuda_support import needs_cuda
from tests.compiler.test_fusion import compiled

ROWS, COLS = 72, 9  # enough rows that row results join other kernels


@st.composite
def programs(draw):
    """Steps over two pools of values, full (ROWS, COLS) arrays and (ROWS,) row results;
    each step reads earlier values by index."""
    n_full, n_rows, steps = 1, 0, []
    for _ in range(draw(st.integers(2, 8))):
        kinds = ["reduce", "unary"] + (["bcast", "row_fn"] if n_rows else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "reduce":
            steps.append((kind, draw(st.integers(0, n_full - 1)), draw(st.sampled_from(["sum", "max"]))))
            n_rows += 1
        elif kind == "unary":
            steps.append((kind, draw(st.integers(0, n_full - 1)), draw(st.sampled_from(["sin", "tanh"]))))
            n_full += 1
        elif kind == "bcast":
            steps.append((kind, draw(st.integers(0, n_full - 1)), draw(st.integers(0, n_rows - 1)),
                          draw(st.sampled_from(["add", "mul", "sub"]))))
            n_full += 1
        else:
            steps.append((kind, draw(st.integers(0, n_rows - 1)), draw(st.integers(0, n_rows - 1))))
            n_rows += 1
    outs_full = draw(st.sets(st.integers(0, n_full - 1), min_size=1, max_size=3))
    outs_rows = draw(st.sets(st.integers(0, n_rows - 1), max_size=3)) if n_rows else set()
    return steps, sorted(outs_full), sorted(outs_rows)


def build(prog):
    steps, outs_full, outs_rows = prog

    def f(x):
        full, rows = [x], []
        for step in steps:
            kind, a = step[0], step[1]
            if kind == "reduce":
                red = lax.reduce_sum if step[2] == "sum" else lax.reduce_max
                rows.append(red(full[a], (1,)))
            elif kind == "unary":
                full.append(getattr(lax, step[2])(full[a]))
            elif kind == "bcast":
                r = lax.broadcast_in_dim(rows[step[2]], (ROWS, COLS), (0,))
                full.append(getattr(lax, step[3])(full[a], r))
            else:  # a function of row results: stays per row
                rows.append(lax.log1p(lax.abs(rows[a])) + rows[step[2]])
        return tuple(full[i] for i in outs_full) + tuple(rows[i] for i in outs_rows)
    return f


def _run(prog, device):
    x = np.random.default_rng(0).standard_normal((ROWS, COLS)).astype(np.float32)
    compiled(build(prog), x, device=device)  # every output against eager evaluation


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_row_stage_programs_interp(prog):
    _run(prog, "interp")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_row_stage_programs_cpu(prog):
    _run(prog, "cpu")


@needs_cuda
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_row_stage_programs_cuda(prog):
    _run(prog, "cuda")
