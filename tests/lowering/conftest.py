import pytest


@pytest.fixture(params=["cpu", "interp"])
def device(request):
    return request.param
