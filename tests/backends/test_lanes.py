"""tinyjax.backends.lanes: spreading a program's independent kernels over streams keeps every
dependence (checked against the happens-before order the plan's streams and waits give)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyjax.backends.lanes import dependences, plan_lanes


def _ordered_after(plan, lanes):
    """kernel -> the set of kernels that finish before it starts, under the plan."""
    before: dict[int, set] = {}
    tail = [None] * lanes
    for j, lane, waits in plan:
        b = set()
        if tail[lane] is not None:
            b |= {tail[lane]} | before[tail[lane]]
        for i in waits:
            assert i in before, f"k{j} waits for k{i}, which was not launched before it"
            b |= {i} | before[i]
        before[j] = b
        tail[lane] = j
    return before


def _spans(sets):
    return [[(8 * b, 8 * b + 8) for b in s] for s in sets]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sets(st.integers(0, 7), min_size=1, max_size=2),
                          st.sets(st.integers(0, 7), max_size=3)), min_size=1, max_size=24),
       st.integers(1, 4))
def test_every_dependence_is_kept(kernels, lanes):
    writes, reads = _spans([w for w, _ in kernels]), _spans([r for _, r in kernels])
    plan = plan_lanes(writes, reads, lanes)
    assert sorted(p.kernel for p in plan) == list(range(len(kernels)))
    assert all(0 <= p.lane < lanes for p in plan)
    before = _ordered_after(plan, lanes)
    for j, deps in enumerate(dependences(writes, reads)):
        for i in deps:
            assert i in before[j], (kernels, plan, i, j)


def test_dependences_are_read_after_write_write_after_read_and_write_after_write():
    # k0 writes A; k1 reads A (RAW); k2 writes A again (WAR with k1, WAW with k0); k3 reads B
    writes = _spans([{0}, {1}, {0}, {2}])
    reads = _spans([set(), {0}, set(), {3}])
    assert dependences(writes, reads) == [set(), {0}, {0, 1}, set()]


def test_independent_kernels_take_separate_lanes_and_a_chain_keeps_its_lane():
    # two chains from one input: x -> a -> b and x -> c -> d
    writes = _spans([{1}, {2}, {3}, {4}])
    reads = _spans([{0}, {1}, {0}, {3}])
    plan = plan_lanes(writes, reads, 2)
    lane = {p.kernel: p.lane for p in plan}
    assert lane[0] == lane[1] != lane[2] == lane[3]
    assert all(p.waits == () for p in plan)  # nothing crosses lanes
    # one lane: program order by depth, no waits
    assert [p.kernel for p in plan_lanes(writes, reads, 1)] == [0, 2, 1, 3]


def test_a_kernel_ready_early_does_not_queue_behind_one_ready_late():
    # a long chain 0 -> 1 -> 2 -> 3; kernel 4 needs only kernel 0's result
    writes = _spans([{1}, {2}, {3}, {4}, {5}])
    reads = _spans([{0}, {1}, {2}, {3}, {1}])
    plan = plan_lanes(writes, reads, 2)
    lane = {p.kernel: p.lane for p in plan}
    assert lane[4] != lane[1] and dict((p.kernel, p.waits) for p in plan)[4] == (0,)
    order = [p.kernel for p in plan]
    assert order.index(4) < order.index(2)
