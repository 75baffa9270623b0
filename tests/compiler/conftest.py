import pytest

from tests.cuda_support import CUDA_PARAM


@pytest.fixture(params=["cpu", "interp", CUDA_PARAM])
def device(request):
    """Every device: the C backend, the reference interpreter, and CUDA where a driver is
    present (skipped, with the reason shown by ``pytest -rs``, where none is)."""
    return request.param
