"""The Backend protocol: the C, interpreter and (where its module loads) CUDA backends
implement every member with the protocol's signature, so the compiler and the runtime can
call them without probing."""
import inspect

import numpy as np

import pytest

from tinyjax.backends import Backend, HostBackend, get_backend
from tinyjax.backends.c.runtime import CBackend
from tinyjax.backends.cuda.runtime import CUDABackend
from tinyjax.backends.interp import InterpBackend


def _members() -> dict[str, object]:
    """The protocol's methods and attributes (name -> function, or None for an attribute)."""
    out = {name: None for name in Backend.__annotations__}
    for name, value in vars(Backend).items():
        if inspect.isfunction(value) and not name.startswith("_"):
            out[name] = value
    return out


def _params(fn) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("cls", [CBackend, InterpBackend, CUDABackend],
                         ids=lambda c: c.__name__)
def test_backend_classes_implement_the_protocol(cls):
    members = _members()
    assert {"alloc", "put", "to_host", "compile", "make_launcher", "synchronize",
            "render"} <= set(members)
    for name, proto in members.items():
        assert hasattr(cls, name), f"{cls.__name__} lacks {name}"
        if proto is None:
            continue
        impl = getattr(cls, name)
        assert callable(impl), f"{cls.__name__}.{name} is not a method"
        assert _params(impl) == _params(proto), \
            f"{cls.__name__}.{name}{inspect.signature(impl)} != protocol's " \
            f"{inspect.signature(proto)}"


@pytest.mark.parametrize("name", ["cpu", "interp"])
def test_registered_host_backends_are_backends(name):
    backend = get_backend(name)
    assert isinstance(backend, Backend) and isinstance(backend, HostBackend)
    assert backend.host and backend.name == name
    buf = backend.put([[1.0, 2.0]])
    assert backend.to_host(backend.copy(buf)).tolist() == [[1.0, 2.0]]
    buf = backend.put(np.array([[1.0, 2.0]], np.float32))
    flat = backend.view(buf, 4, np.dtype(np.float32), 1)   # a program's view of a buffer
    backend.copy_into(flat, backend.put(np.array([5.0], np.float32)))
    assert backend.to_host(buf).tolist() == [[1.0, 5.0]]
