"""A pytest plugin for scripts/library_tests.py: ``--sample-one-in N`` keeps one test in
``N``, chosen by a stable hash of its id (the same tests on every run and machine), and
deselects the others.  Loaded with ``-p library_sample``."""
from __future__ import annotations

import zlib


def in_sample(node_id: str, one_in: int) -> bool:
    """Whether the test ``node_id`` belongs to the sample of one test in ``one_in``."""
    return one_in <= 1 or zlib.crc32(node_id.encode()) % one_in == 0


def pytest_addoption(parser) -> None:
    parser.addoption("--sample-one-in", type=int, default=1,
                     help="run one test in N, chosen by a stable hash of its id")


def pytest_collection_modifyitems(config, items) -> None:
    one_in = config.getoption("sample_one_in")
    if one_in <= 1:
        return
    keep = [item for item in items if in_sample(item.nodeid, one_in)]
    dropped = [item for item in items if not in_sample(item.nodeid, one_in)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
