"""``jax.sharding``: how an array's elements are laid out over devices.

The classes are JAX's, with their arithmetic (a spec names mesh axes per array dimension;
a dimension is split into as many blocks as the product of the sizes of its axes, and
every device of the mesh holds the block its coordinates select).  tinyjax runs every
computation on one device today, so the shardings that describe an array or a
computation have one device; meshes and named shardings of several devices can be built
and queried (``shard_shape``, ``devices_indices_map``), and placing data on them is the
many-devices work still to come.

Installs ``.sharding``, ``.addressable_shards``, ``.global_shards``,
``.is_fully_replicated`` and ``.addressable_data`` on concrete arrays.
"""
from __future__ import annotations

import enum
import math
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from tinyjax.array import ArrayImpl
from tinyjax.backends import Device, devices as all_devices

__all__ = ["AbstractMesh", "AxisType", "Mesh", "NamedSharding", "PartitionSpec", "Sharding",
           "SingleDeviceSharding", "get_abstract_mesh", "get_mesh", "set_mesh",
           "use_abstract_mesh", "make_single_device_sharding", "make_mesh"]

Index = tuple[slice, ...]


class AxisType(enum.Enum):
    """How a mesh axis is partitioned: by the compiler (Auto), by the types of the
    arrays (Explicit), or by the user's per-device code (Manual)."""
    Auto = enum.auto()
    Explicit = enum.auto()
    Manual = enum.auto()

    def __repr__(self) -> str:
        return self.name


class _Unconstrained:
    def __repr__(self) -> str:
        return "UNCONSTRAINED"


class PartitionSpec:
    """For each array dimension, the mesh axis (a name), the mesh axes (a tuple of
    names) or None (not split) along which it is partitioned: ``P('data', None)``."""

    UNCONSTRAINED = _Unconstrained()

    __slots__ = ("_partitions", "unreduced", "reduced")

    def __init__(self, *partitions: Any, unreduced: Any = frozenset(),
                 reduced: Any = frozenset()):
        for p in partitions:
            if not (p is None or p is PartitionSpec.UNCONSTRAINED or isinstance(p, str)
                    or (isinstance(p, tuple) and all(isinstance(n, str) for n in p))):
                raise TypeError(f"PartitionSpec entries must be a mesh axis name, a tuple "
                                f"of names or None, got {p!r}")
        self._partitions = tuple(tuple(p) if isinstance(p, list) else p for p in partitions)
        self.unreduced = frozenset(unreduced)
        self.reduced = frozenset(reduced)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._partitions)

    def __len__(self) -> int:
        return len(self._partitions)

    def __getitem__(self, i: Any) -> Any:
        out = self._partitions[i]
        return PartitionSpec(*out) if isinstance(i, slice) else out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PartitionSpec):
            return (self._normalized() == other._normalized()
                    and self.unreduced == other.unreduced and self.reduced == other.reduced)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._normalized(), self.unreduced, self.reduced))

    def _normalized(self) -> tuple:
        """Trailing Nones dropped and one-name tuples unwrapped (they mean the same)."""
        parts = [p[0] if isinstance(p, tuple) and len(p) == 1 else p
                 for p in self._partitions]
        while parts and parts[-1] is None:
            parts.pop()
        return tuple(parts)

    def axes_of(self, dim: int) -> tuple[str, ...]:
        """The mesh axes that dimension ``dim`` is split over (empty: not split)."""
        p = self._partitions[dim] if dim < len(self._partitions) else None
        if p is None or p is PartitionSpec.UNCONSTRAINED:
            return ()
        return (p,) if isinstance(p, str) else tuple(p)

    def __repr__(self) -> str:
        body = ", ".join(map(repr, self._partitions))
        return f"P({body},)" if len(self._partitions) == 1 else f"P({body})"


P = PartitionSpec


# ---- meshes --------------------------------------------------------------------------------

def _axis_types(axis_types: Any, n: int, default: AxisType) -> tuple[AxisType, ...]:
    if axis_types is None:
        return (default,) * n
    if isinstance(axis_types, AxisType):
        return (axis_types,) * n
    axis_types = tuple(axis_types)
    if len(axis_types) != n:
        raise ValueError(f"Number of axis_types ({len(axis_types)}) must match the number "
                         f"of axis names ({n})")
    return axis_types


class AbstractMesh:
    """The shape of a mesh -- axis names and sizes -- without its devices."""

    def __init__(self, axis_sizes: Sequence[int], axis_names: Sequence[str],
                 axis_types: Any = None):
        self.axis_sizes = tuple(int(s) for s in axis_sizes)
        self.axis_names = tuple(axis_names)
        if len(self.axis_sizes) != len(self.axis_names):
            raise ValueError(f"AbstractMesh: {len(self.axis_sizes)} axis sizes for "
                             f"{len(self.axis_names)} axis names")
        self.axis_types = _axis_types(axis_types, len(self.axis_names), AxisType.Auto)

    shape = property(lambda self: OrderedDict(zip(self.axis_names, self.axis_sizes)))
    shape_tuple = property(lambda self: tuple(zip(self.axis_names, self.axis_sizes)))
    size = property(lambda self: math.prod(self.axis_sizes))
    empty = property(lambda self: not self.axis_names)
    abstract_mesh = property(lambda self: self)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AbstractMesh) and self.shape_tuple == other.shape_tuple
                and self.axis_types == other.axis_types)

    def __hash__(self) -> int:
        return hash((self.shape_tuple, self.axis_types))

    def __repr__(self) -> str:
        axes = ", ".join(f"{n!r}: {s}" for n, s in self.shape_tuple) or "()"
        return f"AbstractMesh({axes}, axis_types={self.axis_types})"


class Mesh(AbstractMesh):
    """Devices laid out in an n-dimensional array whose axes have names:
    ``Mesh(np.array(jax.devices()).reshape(1, 1), ('data', 'model'))``.
    A context manager: ``with mesh:`` makes it the current mesh."""

    def __init__(self, devices: Any, axis_names: str | Sequence[str], axis_types: Any = None):
        devs = np.array(devices, dtype=object) if not isinstance(devices, np.ndarray) \
            else devices
        names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
        if devs.ndim != len(names):
            raise ValueError(f"Mesh requires the ndim of its first argument (`devices`) to "
                             f"equal the length of its second argument (`axis_names`), got "
                             f"devices.ndim == {devs.ndim} and len(axis_names) == "
                             f"{len(names)}.")
        if len(set(names)) != len(names):
            raise ValueError(f"Mesh axis names must be unique, got {names}")
        for d in devs.flat:
            if not isinstance(d, Device):
                raise TypeError(f"Mesh devices must be Device objects, got {d!r}")
        super().__init__(devs.shape, names, axis_types)
        self.devices = devs

    device_ids = property(lambda self: np.vectorize(lambda d: d.id, otypes=[int])(
        self.devices))
    local_devices = property(lambda self: list(self.devices.flat))
    is_multi_process = property(lambda self: False)

    @property
    def abstract_mesh(self) -> AbstractMesh:
        return AbstractMesh(self.axis_sizes, self.axis_names, self.axis_types)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Mesh) and self.axis_names == other.axis_names
                and self.axis_types == other.axis_types
                and self.devices.shape == other.devices.shape
                and list(self.devices.flat) == list(other.devices.flat))

    def __hash__(self) -> int:
        return hash((self.axis_names, self.axis_types, tuple(self.devices.flat)))

    def __enter__(self) -> "Mesh":
        _mesh_stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _mesh_stack.pop()

    def __repr__(self) -> str:
        return (f"Mesh(axis_sizes={self.axis_sizes}, axis_names={self.axis_names}, "
                f"axis_types={self.axis_types})")


_EMPTY_MESH = AbstractMesh((), ())
_mesh_stack: list[AbstractMesh] = []


def get_abstract_mesh() -> AbstractMesh:
    """The shape of the current mesh (an empty mesh when none is set)."""
    return _mesh_stack[-1].abstract_mesh if _mesh_stack else _EMPTY_MESH


def get_mesh() -> AbstractMesh:
    """The current mesh set by ``set_mesh`` / ``with mesh:`` (an empty mesh if none)."""
    return _mesh_stack[-1] if _mesh_stack else _EMPTY_MESH


class set_mesh:
    """Make ``mesh`` the current mesh: for the rest of the program, or -- used as a
    context manager -- until the block ends."""

    def __init__(self, mesh: AbstractMesh):
        if not isinstance(mesh, AbstractMesh):
            raise TypeError(f"set_mesh expects a Mesh, got {mesh!r}")
        self.mesh = mesh
        _mesh_stack.append(mesh)

    def __enter__(self) -> AbstractMesh:
        return self.mesh

    def __exit__(self, *exc: Any) -> None:
        _mesh_stack.remove(self.mesh)


@contextmanager
def use_abstract_mesh(mesh: AbstractMesh) -> Iterator[AbstractMesh]:
    """Make the abstract ``mesh`` current inside the block."""
    _mesh_stack.append(mesh)
    try:
        yield mesh
    finally:
        _mesh_stack.pop()


# ---- shardings -----------------------------------------------------------------------------

class Sharding:
    """How an array is laid out over devices: which block of it each device holds."""

    memory_kind: str | None = "device"

    @property
    def device_set(self) -> set[Device]:
        raise NotImplementedError

    def devices_indices_map(self, global_shape: Sequence[int]) -> dict[Device, Index]:
        """For every device, the index (a tuple of slices) of the block it holds."""
        raise NotImplementedError

    def shard_shape(self, global_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of one device's block of an array of ``global_shape``."""
        raise NotImplementedError

    num_devices = property(lambda self: len(self.device_set))
    addressable_devices = property(lambda self: set(self.device_set))
    is_fully_addressable = property(lambda self: True)

    @property
    def is_fully_replicated(self) -> bool:
        """Whether every device holds the whole array."""
        raise NotImplementedError

    def addressable_devices_indices_map(self, global_shape: Sequence[int]
                                        ) -> dict[Device, Index]:
        return self.devices_indices_map(global_shape)

    def is_equivalent_to(self, other: "Sharding", ndim: int) -> bool:
        """Whether both shardings place every element of an ``ndim``-dimensional array on
        the same devices."""
        shape = (8,) * ndim  # divisible by the block counts of small meshes
        try:
            a, b = self.devices_indices_map(shape), other.devices_indices_map(shape)
        except ValueError:
            return False
        norm = {d: tuple(s.indices(n) for s, n in zip(i, shape)) for d, i in a.items()}
        return norm == {d: tuple(s.indices(n) for s, n in zip(i, shape))
                        for d, i in b.items()}

    def with_memory_kind(self, kind: str) -> "Sharding":
        raise NotImplementedError


class SingleDeviceSharding(Sharding):
    """The whole array on one device."""

    def __init__(self, device: Device, *, memory_kind: str | None = None):
        if not isinstance(device, Device):
            raise TypeError(f"SingleDeviceSharding expects a Device, got {device!r}")
        self._device = device
        self.memory_kind = memory_kind or "device"

    device_set = property(lambda self: {self._device})
    is_fully_replicated = property(lambda self: True)

    def devices_indices_map(self, global_shape: Sequence[int]) -> dict[Device, Index]:
        return {self._device: (slice(None),) * len(global_shape)}

    def shard_shape(self, global_shape: Sequence[int]) -> tuple[int, ...]:
        return tuple(global_shape)

    def with_memory_kind(self, kind: str) -> "SingleDeviceSharding":
        return SingleDeviceSharding(self._device, memory_kind=kind)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SingleDeviceSharding) and self._device == other._device
                and self.memory_kind == other.memory_kind)

    def __hash__(self) -> int:
        return hash((self._device, self.memory_kind))

    def __repr__(self) -> str:
        return f"SingleDeviceSharding(device={self._device!r}, memory_kind={self.memory_kind})"


def make_single_device_sharding(device: Device) -> SingleDeviceSharding:
    return SingleDeviceSharding(device)


class NamedSharding(Sharding):
    """An array split over the axes of a mesh as a :class:`PartitionSpec` names them."""

    def __init__(self, mesh: AbstractMesh, spec: PartitionSpec = PartitionSpec(), *,
                 memory_kind: str | None = None):
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"NamedSharding expects a PartitionSpec, got {spec!r}")
        used: list[str] = []
        for dim in range(len(spec)):
            for name in spec.axes_of(dim):
                if name not in mesh.axis_names:
                    raise ValueError(f"Resource axis: {name} of {spec} is not found in "
                                     f"mesh: {mesh.axis_names}.")
                if name in used:
                    raise ValueError(f"A single NamedSharding spec specification can map "
                                     f"every mesh axis to at most one positional "
                                     f"dimension, but {spec} has duplicate entries for "
                                     f"`{name}`")
                used.append(name)
        self.mesh, self.spec = mesh, spec
        self.memory_kind = memory_kind or "device"

    @property
    def device_set(self) -> set[Device]:
        if not isinstance(self.mesh, Mesh):
            raise ValueError("a NamedSharding over an AbstractMesh has no devices")
        return set(self.mesh.devices.flat)

    @property
    def is_fully_replicated(self) -> bool:
        sizes = self.mesh.shape
        return all(sizes[n] == 1 for d in range(len(self.spec)) for n in self.spec.axes_of(d))

    def _splits(self, global_shape: Sequence[int]) -> list[int]:
        sizes = self.mesh.shape
        if len(self.spec) > len(global_shape):
            raise ValueError(f"Sharding {self} is only valid for values of rank at least "
                             f"{len(self.spec)}, but was applied to a value of rank "
                             f"{len(global_shape)}")
        splits = [math.prod(sizes[n] for n in self.spec.axes_of(d))
                  for d in range(len(global_shape))]
        for d, (n, k) in enumerate(zip(global_shape, splits)):
            if n % k:
                raise ValueError(f"Sharding {self} implies that array axis {d} is "
                                 f"partitioned {k} times, but the dimension size is {n} "
                                 f"(full shape: {tuple(global_shape)}, per-dimension tiling "
                                 f"factors: {splits} should evenly divide the shape)")
        return splits

    def shard_shape(self, global_shape: Sequence[int]) -> tuple[int, ...]:
        return tuple(n // k for n, k in zip(global_shape, self._splits(global_shape)))

    def devices_indices_map(self, global_shape: Sequence[int]) -> dict[Device, Index]:
        splits = self._splits(global_shape)
        block = [n // k for n, k in zip(global_shape, splits)]
        names, sizes = self.mesh.axis_names, self.mesh.axis_sizes
        out = {}
        for coords in np.ndindex(*self.mesh.devices.shape):
            at = dict(zip(names, coords))
            index = []
            for d, b in enumerate(block):
                k = 0
                for n in self.spec.axes_of(d):  # row-major over the dimension's axes
                    k = k * sizes[names.index(n)] + at[n]
                index.append(slice(None) if splits[d] == 1 else slice(k * b, (k + 1) * b))
            out[self.mesh.devices[coords]] = tuple(index)
        return out

    def with_memory_kind(self, kind: str) -> "NamedSharding":
        return NamedSharding(self.mesh, self.spec, memory_kind=kind)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NamedSharding) and self.mesh == other.mesh
                and self.spec == other.spec and self.memory_kind == other.memory_kind)

    def __hash__(self) -> int:
        return hash((self.mesh, self.spec, self.memory_kind))

    def __repr__(self) -> str:
        axes = ", ".join(f"{n!r}: {s}" for n, s in self.mesh.shape_tuple)
        return (f"NamedSharding(mesh=Mesh({axes}, axis_types={self.mesh.axis_types}), "
                f"spec={self.spec}, memory_kind={self.memory_kind})")


def device_of(sharding: Sharding) -> Device:
    """The one device of a sharding that tinyjax can place data with today."""
    devices = sharding.device_set
    if len(devices) != 1:
        raise NotImplementedError(
            f"placing an array with {sharding} ({len(devices)} devices): tinyjax places "
            "arrays on one device today")
    return next(iter(devices))


# ---- the sharding of concrete arrays -------------------------------------------------------

class Shard:
    """One device's block of an array: ``device``, ``index`` (slices into the global
    array), ``replica_id`` and ``data``."""

    def __init__(self, device: Device, sharding: Sharding, global_shape: Sequence[int],
                 data: Any, replica_id: int = 0):
        self.device, self.data, self.replica_id = device, data, replica_id
        self.index = sharding.devices_indices_map(global_shape)[device]

    def __repr__(self) -> str:
        return (f"Shard(device={self.device!r}, index={self.index}, "
                f"replica_id={self.replica_id}, data={self.data})")


def _array_sharding(x: ArrayImpl) -> SingleDeviceSharding:
    return SingleDeviceSharding(x.device)


def _addressable_shards(x: ArrayImpl) -> list[Shard]:
    return [Shard(x.device, x.sharding, x.shape, x)]


ArrayImpl.sharding = property(_array_sharding, doc="The array's sharding (one device).")
ArrayImpl.addressable_shards = property(_addressable_shards,
                                        doc="The blocks of the array this process holds.")
ArrayImpl.global_shards = property(_addressable_shards,
                                   doc="The blocks of the array over every device.")
ArrayImpl.is_fully_replicated = property(lambda x: True,
                                         doc="Whether every device holds the whole array.")
ArrayImpl.addressable_data = lambda x, index: _addressable_shards(x)[index].data


def make_mesh(axis_shapes: Sequence[int], axis_names: Sequence[str], axis_types: Any = None,
              *, devices: Sequence[Device] | None = None) -> Mesh:
    """A mesh of shape ``axis_shapes`` over the first devices of ``devices`` (default:
    ``jax.devices()``); its axes are Explicit unless ``axis_types`` says otherwise."""
    devs = list(all_devices() if devices is None else devices)
    n = math.prod(axis_shapes)
    if len(devs) < n:
        raise ValueError(f"Number of devices {len(devs)} must be >= the product of "
                         f"mesh_shape {tuple(axis_shapes)}")
    grid = np.empty(len(devs[:n]), dtype=object)
    grid[:] = devs[:n]
    return Mesh(grid.reshape(tuple(axis_shapes)), tuple(axis_names),
                _axis_types(axis_types, len(axis_names), AxisType.Explicit))
