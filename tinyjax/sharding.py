"""``jax.sharding``: how an array's elements are laid out over devices.

A :class:`Mesh` lays devices out in an n-dimensional grid whose axes have names.  A
:class:`PartitionSpec` names, per array dimension, the mesh axes it is split over; a
:class:`NamedSharding` pairs the two.  A dimension is split into as many equal blocks as
the product of the sizes of its axes, and every device of the mesh holds the block its
coordinates select (the array is *replicated* over the axes its spec does not name).

Arrays placed with a sharding of several devices hold one buffer per device
(:class:`~tinyjax.array.ShardedBuffer`); :func:`put_sharded` makes them.  This module also
gives concrete arrays ``.sharding``, ``.addressable_shards``, ``.global_shards``,
``.is_fully_replicated`` and ``.addressable_data``.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from tinyjax.array import ArrayImpl, ShardedBuffer, place, placed, to_array
from tinyjax.backends import Device, devices as all_devices, get_backend, get_device, topology
from tinyjax.core import ManualAxisType, get_aval, is_eager, register_aval_sharding
from tinyjax.lax.sharding_constraint import (register_sharding_resolver,
                                             with_sharding_constraint)
from tinyjax import tree_util
from tinyjax.tree_util import tree_map

__all__ = ["AbstractDevice", "AbstractMesh", "AxisType", "ManualAxisType", "Mesh",
           "NamedSharding", "PartitionSpec", "Sharding", "SingleDeviceSharding",
           "get_abstract_mesh", "get_mesh", "set_mesh",
           "use_abstract_mesh", "use_mesh", "make_single_device_sharding", "make_mesh",
           "put_sharded", "sharding_of", "Shard", "make_array_from_callback",
           "make_array_from_single_device_arrays", "reshard", "auto_axes", "explicit_axes"]

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


def _canonical_entry(p: Any) -> Any:
    if isinstance(p, list):
        p = tuple(p)
    if isinstance(p, tuple) and len(p) == 1:
        return p[0]
    return p


class PartitionSpec:
    """For each array dimension, the mesh axis (a name), the mesh axes (a tuple of
    names) or None (not split) along which it is partitioned: ``P('data', None)``.
    ``unreduced`` names mesh axes over which the array's value is the sum of the shards."""

    UNCONSTRAINED = _Unconstrained()

    __slots__ = ("_partitions", "unreduced", "reduced")

    def __init__(self, *partitions: Any, unreduced: Any = frozenset(),
                 reduced: Any = frozenset()):
        parts = tuple(_canonical_entry(p) for p in partitions)
        for p in parts:
            if not (p is None or p is PartitionSpec.UNCONSTRAINED or isinstance(p, str)
                    or (isinstance(p, tuple) and all(isinstance(n, str) for n in p))):
                raise TypeError(f"PartitionSpec entries must be a mesh axis name, a tuple "
                                f"of names or None, got {p!r}")
        for what, names in (("unreduced", unreduced), ("reduced", reduced)):
            if not isinstance(names, (set, frozenset)):
                raise TypeError(f"{what} argument of PartitionSpec should of type "
                                f"`frozenset` or `set`. Got type {names}")
        self._partitions = parts
        self.unreduced = frozenset(unreduced)
        self.reduced = frozenset(reduced)
        named = {n for d in range(len(parts)) for n in self.axes_of(d)}
        if named & self.unreduced:
            raise ValueError(f"partitions cannot overlap with unreduced axes passed to "
                             f"PartitionSpec. Got partitions: {parts} and unreduced axes: "
                             f"{set(self.unreduced)}")

    partitions = property(lambda self: self._partitions)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._partitions)

    def __len__(self) -> int:
        return len(self._partitions)

    def __getitem__(self, i: Any) -> Any:
        out = self._partitions[i]
        return PartitionSpec(*out) if isinstance(i, slice) else out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PartitionSpec):
            return (self._partitions == other._partitions and self.unreduced ==
                    other.unreduced and self.reduced == other.reduced)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._partitions, self.unreduced, self.reduced))

    def index(self, value: Any) -> int:
        """The first dimension whose entry is ``value`` (ValueError if none)."""
        return self._partitions.index(_canonical_entry(value))

    def count(self, value: Any) -> int:
        """How many dimensions have the entry ``value``."""
        return self._partitions.count(_canonical_entry(value))

    def update(self, partitions: Any = None, unreduced: Any = None,
               reduced: Any = None) -> "PartitionSpec":
        """This spec with the given parts replaced."""
        return PartitionSpec(*(self._partitions if partitions is None else partitions),
                             unreduced=self.unreduced if unreduced is None else unreduced,
                             reduced=self.reduced if reduced is None else reduced)

    def __add__(self, other: Any) -> "PartitionSpec":
        """The entries of ``self``, then those of ``other`` (a spec, or a tuple of
        entries where ``self`` has no unreduced or reduced axes)."""
        if isinstance(other, PartitionSpec):
            return PartitionSpec(*self._partitions, *other._partitions,
                                 unreduced=self.unreduced | other.unreduced,
                                 reduced=self.reduced | other.reduced)
        self._check_tuple_operand(other, "__add__")
        return PartitionSpec(*self._partitions, *other)

    def __radd__(self, other: Any) -> "PartitionSpec":
        self._check_tuple_operand(other, "__radd__")
        return PartitionSpec(*other, *self._partitions)

    def _check_tuple_operand(self, other: Any, method: str) -> None:
        if not isinstance(other, tuple):  # (JAX's exception)
            raise NotImplementedError(f"a PartitionSpec and a {type(other).__name__} "
                                      "cannot be added")
        for what in ("unreduced", "reduced"):
            if getattr(self, what):
                raise TypeError(f"other {other} cannot be of instance `tuple` when self "
                                f"{self} has {what} in `{method}` of PartitionSpec.")

    def axes_of(self, dim: int) -> tuple[str, ...]:
        """The mesh axes that dimension ``dim`` is split over (empty: not split)."""
        p = self._partitions[dim] if dim < len(self._partitions) else None
        if p is None or p is PartitionSpec.UNCONSTRAINED:
            return ()
        return (p,) if isinstance(p, str) else tuple(p)

    def mesh_axes(self) -> tuple[str, ...]:
        """Every mesh axis some dimension is split over."""
        return tuple(n for d in range(len(self._partitions)) for n in self.axes_of(d))

    def normalized(self, ndim: int) -> tuple[tuple[str, ...], ...]:
        """The axes of each of ``ndim`` dimensions (trailing ones unsplit)."""
        return tuple(self.axes_of(d) for d in range(ndim))

    def __repr__(self) -> str:
        body = repr(self._partitions)[1:-1]
        extra = []
        if self.unreduced:
            extra.append(f"unreduced={set(self.unreduced)!r}")
        if self.reduced:
            extra.append(f"reduced={set(self.reduced)!r}")
        if not extra:
            return f"P({body})"
        body = "" if not body else f"{body} " if body.endswith(",") else f"{body}, "
        return f"P({body}{', '.join(extra)})"

    __str__ = __repr__


P = PartitionSpec


def spec_of_axes(axes: Sequence[Sequence[str]], full_rank: bool = False) -> PartitionSpec:
    """The spec whose dimension ``d`` is split over ``axes[d]``: trailing unsplit
    dimensions dropped, or (``full_rank``: as arrays over a mesh with Explicit axes carry
    their sharding, in JAX) kept."""
    parts = [None if not a else a[0] if len(a) == 1 else tuple(a) for a in axes]
    while parts and parts[-1] is None and not full_rank:
        parts.pop()
    return PartitionSpec(*parts)


# ---- meshes --------------------------------------------------------------------------------

def _axis_types(axis_types: Any, n: int, default: AxisType) -> tuple[AxisType, ...]:
    if axis_types is None:
        return (default,) * n
    if isinstance(axis_types, AxisType):
        return (axis_types,) * n
    axis_types = tuple(axis_types)
    if not all(isinstance(a, AxisType) for a in axis_types):
        raise TypeError(f"axis_types must be of type `jax.sharding.AxisType`. Got "
                        f"{axis_types}")
    if len(axis_types) != n:
        raise ValueError(f"Number of axis names should match the number of axis_types. "
                         f"Got axis_names={n} and axis_types={axis_types}")
    return axis_types


@dataclasses.dataclass(frozen=True)
class AbstractDevice:
    """What an AbstractMesh knows of its devices: their kind, cores and platform."""
    device_kind: str
    num_cores: int | None
    platform: str

    def __repr__(self) -> str:
        return (f"AbstractDevice(device_kind={self.device_kind}, num_cores={self.num_cores}, "
                f"platform={self.platform})")


class AbstractMesh:
    """The shape of a mesh -- axis names and sizes -- without its devices."""

    def __init__(self, axis_sizes: Sequence[int], axis_names: Sequence[str],
                 axis_types: Any = None, *, abstract_device: AbstractDevice | None = None):
        # (the kind of the devices of the mesh it was made from)
        self.abstract_device = abstract_device
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

    def axes_of_type(self, kind: AxisType) -> tuple[str, ...]:
        return tuple(n for n, t in zip(self.axis_names, self.axis_types) if t == kind)

    explicit_axes = property(lambda self: self.axes_of_type(AxisType.Explicit))
    auto_axes = property(lambda self: self.axes_of_type(AxisType.Auto))
    manual_axes = property(lambda self: self.axes_of_type(AxisType.Manual))
    are_all_axes_explicit = property(
        lambda self: len(self.explicit_axes) == len(self.axis_names))
    are_all_axes_auto = property(lambda self: len(self.auto_axes) == len(self.axis_names))
    are_all_axes_manual = property(
        lambda self: len(self.manual_axes) == len(self.axis_names))

    def update_axis_types(self, types: dict) -> "AbstractMesh":
        """A copy whose axes named in ``types`` have the given types."""
        return AbstractMesh(self.axis_sizes, self.axis_names,
                            tuple(types.get(n, t) for n, t in zip(self.axis_names,
                                                                  self.axis_types)),
                            abstract_device=self.abstract_device)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AbstractMesh) and not isinstance(other, Mesh)
                and self.shape_tuple == other.shape_tuple
                and self.axis_types == other.axis_types)

    def __hash__(self) -> int:
        return hash((self.shape_tuple, self.axis_types))

    def __repr__(self) -> str:
        axes = ", ".join(f"'{n}': {s}" for n, s in self.shape_tuple) or "()"
        d = self.abstract_device
        device = "" if d is None else \
            f", device_kind={d.device_kind}, num_cores={d.num_cores}, platform={d.platform}"
        return f"AbstractMesh({axes}, axis_types={self.axis_types}{device})"


class Mesh(AbstractMesh):
    """Devices laid out in an n-dimensional array whose axes have names:
    ``Mesh(np.array(jax.devices()).reshape(4, 2), ('data', 'model'))``.
    A context manager: ``with mesh:`` makes it the current mesh."""

    def __init__(self, devices: Any, axis_names: str | Sequence[str], axis_types: Any = None):
        if isinstance(devices, np.ndarray):
            devs = devices
        else:
            devs = np.empty(len(devices), dtype=object)
            devs[:] = list(devices)
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
    local_devices = property(lambda self: [d for d in self.devices.flat if d.process_index
                                           == topology.cluster.process_index])
    is_multi_process = property(lambda self: len({d.process_index for d in
                                                  self.devices.flat}) > 1)
    device_list = property(lambda self: list(self.devices.flat))

    @property
    def abstract_mesh(self) -> AbstractMesh:
        first = self.devices.flat[0]
        device = AbstractDevice(first.device_kind, None, first.platform)
        return AbstractMesh(self.axis_sizes, self.axis_names, self.axis_types,
                            abstract_device=device)

    def update_axis_types(self, types: dict) -> "Mesh":
        return Mesh(self.devices, self.axis_names,
                    tuple(types.get(n, t) for n, t in zip(self.axis_names, self.axis_types)))

    def same_grid(self, other: Any) -> bool:
        """Whether ``other`` is a mesh of these devices with these axis names (of any
        types): arrays over either lie alike."""
        return (isinstance(other, Mesh) and self.axis_names == other.axis_names
                and self.devices.shape == other.devices.shape
                and list(self.devices.flat) == list(other.devices.flat))

    def retyped_as(self, abstract: Any) -> "Mesh":
        """This mesh with the axis types of ``abstract`` where it has this mesh's axes."""
        if abstract is None or abstract.shape_tuple != self.shape_tuple or \
                abstract.axis_types == self.axis_types:
            return self
        return self.update_axis_types(dict(zip(abstract.axis_names, abstract.axis_types)))

    def coords(self, device: Device) -> dict[str, int]:
        """The mesh coordinates of ``device``."""
        at = np.argwhere(self.devices == device)
        if not len(at):
            raise ValueError(f"{device!r} is not in {self}")
        return dict(zip(self.axis_names, (int(c) for c in at[0])))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Mesh) and self.axis_names == other.axis_names
                and self.axis_types == other.axis_types
                and self.devices.shape == other.devices.shape
                and list(self.devices.flat) == list(other.devices.flat))

    def __hash__(self) -> int:
        return hash((self.axis_names, self.axis_types, tuple(self.devices.flat)))

    def __enter__(self) -> "Mesh":
        _mesh_stack().append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _mesh_stack().pop()

    def __str__(self) -> str:
        axes = ", ".join(f"'{n}': {s}" for n, s in self.shape_tuple)
        return f"Mesh({axes}, axis_types={self.axis_types})" if axes else "Mesh()"

    def __repr__(self) -> str:
        return (f"Mesh(axis_sizes={self.axis_sizes}, axis_names={self.axis_names!r}, "
                f"axis_types={self.axis_types})")


_EMPTY_MESH = AbstractMesh((), ())


class _MeshContext(threading.local):
    def __init__(self):
        self.stack: list[AbstractMesh] = []


_global_meshes: list[AbstractMesh] = []  # set_mesh without a with-block: every thread's
_context = _MeshContext()


def _mesh_stack() -> list[AbstractMesh]:
    return _context.stack


def _current() -> AbstractMesh | None:
    stack = _mesh_stack()
    if stack:
        return stack[-1]
    return _global_meshes[-1] if _global_meshes else None


def get_abstract_mesh() -> AbstractMesh:
    """The shape of the current mesh (an empty mesh when none is set)."""
    mesh = _current()
    return _EMPTY_MESH if mesh is None else mesh.abstract_mesh


def get_mesh() -> AbstractMesh:
    """The current mesh set by ``set_mesh`` / ``with mesh:`` (an empty mesh if none)."""
    mesh = _current()
    return _EMPTY_MESH if mesh is None else mesh


def concrete_mesh() -> Mesh | None:
    """The current mesh if it is a Mesh (with devices), else None."""
    mesh = _current()
    return mesh if isinstance(mesh, Mesh) else None


class set_mesh:
    """Make ``mesh`` the current mesh: for the rest of the program, or -- used as a
    context manager -- until the block ends."""

    def __init__(self, mesh: AbstractMesh):
        if not isinstance(mesh, AbstractMesh):
            raise TypeError(f"set_mesh expects a Mesh, got {mesh!r}")
        self.mesh = mesh
        self._previous = list(_global_meshes)
        _global_meshes[:] = [mesh]

    def __enter__(self) -> AbstractMesh:
        return self.mesh

    def __exit__(self, *exc: Any) -> None:
        _global_meshes[:] = self._previous


use_mesh = set_mesh


@contextmanager
def use_abstract_mesh(mesh: AbstractMesh) -> Iterator[AbstractMesh]:
    """Make the abstract ``mesh`` current inside the block."""
    _mesh_stack().append(mesh)
    try:
        yield mesh
    finally:
        _mesh_stack().pop()


# ---- shardings -----------------------------------------------------------------------------

class Sharding:
    """How an array is laid out over devices: which block of it each device holds."""

    memory_kind: str | None = "device"

    @property
    def device_set(self) -> set[Device]:
        raise NotImplementedError

    @property
    def _device_assignment(self) -> list[Device]:
        """The devices in a fixed order (a mesh's: row-major)."""
        return sorted(self.device_set, key=lambda d: d.id)

    def type_spec(self, ndim: int) -> tuple:
        """Per dimension, the mesh axes an array's type names (those of Explicit axes it
        is split over); empty where none."""
        return ()

    def devices_indices_map(self, global_shape: Sequence[int]) -> dict[Device, Index]:
        """For every device, the index (a tuple of slices) of the block it holds."""
        raise NotImplementedError

    def shard_shape(self, global_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of one device's block of an array of ``global_shape``."""
        raise NotImplementedError

    num_devices = property(lambda self: len(self.device_set))

    @property
    def addressable_devices(self) -> set[Device]:
        p = topology.cluster.process_index
        return {d for d in self.device_set if d.process_index == p}

    @property
    def is_fully_addressable(self) -> bool:
        return len(self.addressable_devices) == len(self.device_set)

    @property
    def is_fully_replicated(self) -> bool:
        """Whether every device holds the whole array."""
        raise NotImplementedError

    def addressable_devices_indices_map(self, global_shape: Sequence[int]
                                        ) -> dict[Device, Index]:
        local = self.addressable_devices
        return {d: i for d, i in self.devices_indices_map(global_shape).items() if d in local}

    def is_equivalent_to(self, other: "Sharding", ndim: int) -> bool:
        """Whether both shardings place every element of an ``ndim``-dimensional array on
        the same devices."""
        shape = (math.lcm(*range(1, 9)),) * ndim  # divisible by the block counts of meshes
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
    _device_assignment = property(lambda self: [self._device])
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
        for name in spec.mesh_axes() + tuple(spec.unreduced):
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
        # a sharding of devices places arrays in their memory; one over an abstract mesh
        # (a type's) names none unless told
        self.memory_kind = memory_kind or ("device" if isinstance(mesh, Mesh) else None)

    @property
    def device_set(self) -> set[Device]:
        return set(self._device_assignment)

    @property
    def _device_assignment(self) -> list[Device]:
        if not isinstance(self.mesh, Mesh):
            raise ValueError("a NamedSharding over an AbstractMesh has no devices")
        return list(self.mesh.devices.flat)

    def type_spec(self, ndim: int) -> tuple:
        explicit = set(self.mesh.explicit_axes)
        if not explicit or not set(self.spec.mesh_axes()) & explicit:
            return ()
        return tuple(tuple(a for a in self.spec.axes_of(d) if a in explicit)
                     for d in range(ndim))

    @property
    def is_fully_replicated(self) -> bool:
        sizes = self.mesh.shape
        return all(sizes[n] == 1 for n in self.spec.mesh_axes() + tuple(self.spec.unreduced))

    def splits(self, global_shape: Sequence[int]) -> list[int]:
        """Into how many blocks each dimension is split; ValueError naming the sharding
        and the shape where a dimension does not divide."""
        sizes = self.mesh.shape
        if len(self.spec) > len(global_shape):
            raise ValueError(f"Sharding {self} is only valid for values of rank at least "
                             f"{len(self.spec)}, but was applied to a value of rank "
                             f"{len(global_shape)}")
        splits = [math.prod(sizes[n] for n in self.spec.axes_of(d))
                  for d in range(len(global_shape))]
        for d, (n, k) in enumerate(zip(global_shape, splits)):
            if n % k:
                raise ValueError(f"One of device_put args was given the sharding of {self}, "
                                 f"which implies that the global size of its dimension {d} "
                                 f"should be divisible by {k}, but it is equal to {n} (full "
                                 f"shape: {tuple(global_shape)})")
        return splits

    def shard_shape(self, global_shape: Sequence[int]) -> tuple[int, ...]:
        return tuple(n // k for n, k in zip(global_shape, self.splits(global_shape)))

    def block_of(self, coords: dict[str, int], global_shape: Sequence[int]) -> Index:
        """The block (slices) that the device at mesh ``coords`` holds."""
        splits = self.splits(global_shape)
        sizes = self.mesh.shape
        index = []
        for d, n in enumerate(global_shape):
            k = 0
            for name in self.spec.axes_of(d):  # row-major over the dimension's axes
                k = k * sizes[name] + coords[name]
            b = n // splits[d]
            index.append(slice(None) if splits[d] == 1 else slice(k * b, (k + 1) * b))
        return tuple(index)

    def devices_indices_map(self, global_shape: Sequence[int]) -> dict[Device, Index]:
        self.splits(global_shape)
        names = self.mesh.axis_names
        return {self.mesh.devices[c]: self.block_of(dict(zip(names, c)), global_shape)
                for c in np.ndindex(*self.mesh.devices.shape)}

    def replica_id(self, coords: dict[str, int]) -> int:
        """Which copy of its block the device at ``coords`` holds (row-major over the mesh
        axes the spec does not name)."""
        named = set(self.spec.mesh_axes())
        r = 0
        for name, size in self.mesh.shape_tuple:
            if name not in named:
                r = r * size + coords[name]
        return r

    def with_memory_kind(self, kind: str) -> "NamedSharding":
        return NamedSharding(self.mesh, self.spec, memory_kind=kind)

    def with_spec(self, spec: PartitionSpec) -> "NamedSharding":
        return NamedSharding(self.mesh, spec, memory_kind=self.memory_kind)

    def update(self, *, mesh: AbstractMesh | None = None, spec: Any = None,
               memory_kind: str | None = None) -> "NamedSharding":
        """A copy with the given fields changed (``spec``: a PartitionSpec or a sequence of
        its entries)."""
        if spec is not None and not isinstance(spec, PartitionSpec):
            spec = PartitionSpec(*spec)
        if memory_kind is None and (mesh is None or isinstance(mesh, Mesh)):
            memory_kind = self.memory_kind
        return NamedSharding(self.mesh if mesh is None else mesh,
                             self.spec if spec is None else spec, memory_kind=memory_kind)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NamedSharding) and self.mesh == other.mesh
                and self.spec == other.spec and self.memory_kind == other.memory_kind)

    def __hash__(self) -> int:
        return hash((self.mesh, self.spec, self.memory_kind))

    def __repr__(self) -> str:
        kind = "" if self.memory_kind is None else f", memory_kind={self.memory_kind}"
        return f"NamedSharding(mesh={self.mesh}, spec={self.spec}{kind})"


def as_sharding(where: Any) -> Sharding:
    """A Sharding for ``where``: a Sharding, a Device, or a PartitionSpec (over the
    current mesh)."""
    if isinstance(where, NamedSharding) and not isinstance(where.mesh, Mesh):
        mesh = _devices_for(where.mesh)  # a type's layout: over the devices around it
        return where if mesh is None else NamedSharding(mesh, where.spec)
    if isinstance(where, Sharding):
        return where
    if isinstance(where, Device):
        return SingleDeviceSharding(where)
    if isinstance(where, PartitionSpec):
        mesh = _current()
        if mesh is None or mesh.empty:
            raise ValueError(f"Using a PartitionSpec ({where}) requires a mesh: use "
                             "jax.set_mesh(mesh) or `with mesh:`, or pass a NamedSharding")
        if not isinstance(mesh, Mesh):
            mesh = _devices_for(mesh) or mesh
        if not isinstance(mesh, Mesh) and is_eager():
            raise ValueError(f"Using a PartitionSpec ({where}) at the top level requires a "
                             f"concrete Mesh in context, got {mesh}")
        return NamedSharding(mesh, where)
    raise TypeError(f"Expected a Device, a Sharding or a PartitionSpec, got {where!r}")


def _devices_for(abstract: AbstractMesh) -> Mesh | None:
    """A concrete mesh of the shape of ``abstract`` (with its axis types) from the meshes
    set around it (``auto_axes`` and ``explicit_axes`` retype the current mesh's axes)."""
    for mesh in reversed(_global_meshes + _mesh_stack()):
        if isinstance(mesh, Mesh) and mesh.shape_tuple == abstract.shape_tuple:
            return mesh.update_axis_types(dict(zip(abstract.axis_names,
                                                   abstract.axis_types)))
    return None


def _type_sharding(aval: Any) -> NamedSharding:
    """JAX's ``aval.sharding``: the layout a type names over its abstract mesh (the current
    one where the type names none), one spec entry per dimension."""
    mesh = aval.mesh if aval.mesh is not None else get_abstract_mesh()
    spec = aval.spec or ((),) * aval.ndim
    return NamedSharding(mesh.abstract_mesh, spec_of_axes(spec, full_rank=True))


def _type_layout(sharding: Any, ndim: int) -> tuple[tuple, AbstractMesh | None]:
    """The (spec, abstract mesh) an aval takes from a sharding: the Explicit axes it
    splits dimensions over."""
    mesh = getattr(sharding, "mesh", None)
    return sharding.type_spec(ndim), None if mesh is None else mesh.abstract_mesh


register_aval_sharding(_type_sharding, _type_layout)


# ---- the sharding of concrete arrays -------------------------------------------------------

def sharding_of(x: ArrayImpl) -> Sharding:
    """The sharding of a concrete array (its one device unless it is laid out over
    several)."""
    if isinstance(x._device, Sharding):
        return x._device
    return SingleDeviceSharding(get_device(x._device))


class _TracedLayouts(threading.local):
    def __init__(self):
        self.by_id: dict[int, Sharding] = {}


_traced = _TracedLayouts()


@contextmanager
def traced_layouts(tracers: Sequence[Any], values: Sequence[Any]) -> Iterator[None]:
    """While a function is traced for ``jit``, remember the layouts of the arrays its input
    ``tracers`` stand for (``values``), so that :func:`layout_of` can tell them."""
    added = {id(t): v._device for t, v in zip(tracers, values)
             if type(v) is ArrayImpl and isinstance(v._device, Sharding)}
    _traced.by_id.update(added)
    try:
        yield
    finally:
        for k in added:
            _traced.by_id.pop(k, None)


def layout_of(x: Any) -> Sharding | None:
    """The sharding of a concrete array laid out over devices, or of a jit input being
    traced -- also seen through the tracers of transforms inside that jit (a ``grad``'s
    primal) -- or None where unknown."""
    for _ in range(64):
        if type(x) is ArrayImpl:
            return x._device if isinstance(x._device, Sharding) else None
        found = _traced.by_id.get(id(x))
        if found is not None:
            return found
        inner = getattr(x, "primal", None)  # a jvp's primal is the value itself
        if inner is None:
            return None
        x = inner
    return None


def put_sharded(x: Any, sharding: Sharding, weak_type: bool = False) -> ArrayImpl:
    """The array ``x`` (a host array or an Array) laid out as ``sharding`` says: one buffer
    per addressable device, each a copy of its block."""
    if type(x) is ArrayImpl:
        weak_type = x.weak_type
        if x._device is not None and sharding_of(x) == sharding:
            return x
        if isinstance(x._device, Sharding) and x._device.is_equivalent_to(sharding, x.ndim) \
                and _unreduced_axes(x._device) == _unreduced_axes(sharding):
            return placed(x._buf, sharding, weak_type)
        value = x._value
    else:
        value = np.asarray(x)
    index_map = sharding.addressable_devices_indices_map(value.shape)
    devs = [d for d in sharding._device_assignment if d in index_map]
    indices = [index_map[d] for d in devs]
    blocks = [value[index] for index in indices]
    summands = None
    if _unreduced_axes(sharding):
        blocks, summands = _summands(sharding, devs, blocks)
    buffers = []
    for d, block in zip(devs, blocks):
        block = np.array(block, order="C")
        backend = get_backend(d)
        if backend.host:
            block.flags.writeable = False
            buffers.append(block)
        else:
            buffers.append(backend.asbuffer(block))
    return placed(ShardedBuffer(value.shape, value.dtype, devs, indices, buffers,
                                sharding.is_fully_addressable, summands=summands),
                  sharding, weak_type)


def _unreduced_axes(sharding: Any) -> frozenset:
    return sharding.spec.unreduced if isinstance(sharding, NamedSharding) else frozenset()


def _summands(sharding: NamedSharding, devs: list, blocks: list) -> tuple[list, list]:
    """Each device's block as a term of a sum over the unreduced mesh axes (the block is
    the sum of the terms of the devices that differ only along them), and whether the
    device's term is one of those summed (not a copy along an axis the spec leaves
    replicated).  The ``k`` terms split the block's last dimension that ``k`` divides
    into ``k`` chunks, each term holding one chunk and zeros elsewhere (XLA's split where
    one exists); where none does, the first term is the block and the others zeros."""
    mesh, spec = sharding.mesh, sharding.spec
    unreduced = [n for n in mesh.axis_names if n in spec.unreduced]
    named = set(spec.mesh_axes()) | spec.unreduced
    k = math.prod(mesh.shape[n] for n in unreduced)
    terms, summed = [], []
    for d, block in zip(devs, blocks):
        coords = mesh.coords(d)
        j = 0
        for n in unreduced:  # row-major over the unreduced axes
            j = j * mesh.shape[n] + coords[n]
        summed.append(not any(coords[n] for n in mesh.axis_names if n not in named))
        term = np.zeros_like(block)
        dims = [a for a in range(block.ndim) if block.shape[a] % k == 0]
        if dims:
            at = [slice(None)] * block.ndim
            size = block.shape[dims[-1]] // k
            at[dims[-1]] = slice(j * size, (j + 1) * size)
            term[tuple(at)] = block[tuple(at)]
        elif j == 0:
            term[...] = block
        terms.append(term)
    return terms, summed


def _constrain(x: ArrayImpl, sharding: Sharding) -> ArrayImpl:
    """A concrete array laid out as ``with_sharding_constraint`` asks."""
    if isinstance(sharding, SingleDeviceSharding):
        return place(x if type(x) is ArrayImpl else to_array(x), sharding._device.key)
    if isinstance(sharding, NamedSharding) and isinstance(sharding.mesh, AbstractMesh) and \
            sharding.mesh.empty:  # the type of a value laid out over no mesh (jax.typeof)
        return x if type(x) is ArrayImpl else to_array(x)
    return put_sharded(x, sharding)


register_sharding_resolver(as_sharding, _constrain)


def _device_buffer(device: Device, data: Any) -> Any:
    value = np.asarray(data)
    backend = get_backend(device)
    if backend.host:
        value = np.array(value, order="C")
        value.flags.writeable = False
        return value
    return backend.asbuffer(value)


def make_array_from_single_device_arrays(shape: Sequence[int], sharding: Sharding,
                                         arrays: Sequence[Any]) -> ArrayImpl:
    """The array of ``shape`` laid out by ``sharding`` whose blocks are ``arrays``, one per
    addressable device (in the order of the sharding's devices)."""
    shape = tuple(shape)
    index_map = sharding.addressable_devices_indices_map(shape)
    devs = [d for d in sharding._device_assignment if d in index_map]
    if len(arrays) != len(devs):
        raise ValueError(f"make_array_from_single_device_arrays: {len(arrays)} arrays for "
                         f"{len(devs)} addressable devices of {sharding}")
    dtype = np.asarray(arrays[0]).dtype if arrays else np.float32
    want = sharding.shard_shape(shape)
    for d, a in zip(devs, arrays):
        if np.shape(a) != tuple(want):
            raise ValueError(f"make_array_from_single_device_arrays: the block for {d} has "
                             f"shape {np.shape(a)}, expected {tuple(want)} (the shard shape of "
                             f"{shape} under {sharding})")
    if isinstance(sharding, SingleDeviceSharding):
        return placed(_device_buffer(devs[0], arrays[0]), devs[0].key,
                      getattr(arrays[0], "weak_type", False))
    buffers = [_device_buffer(d, a) for d, a in zip(devs, arrays)]
    return placed(ShardedBuffer(shape, dtype, devs, [index_map[d] for d in devs], buffers,
                                sharding.is_fully_addressable), sharding)


def make_array_from_callback(shape: Sequence[int], sharding: Sharding,
                             data_callback: Any, dtype: Any = None) -> ArrayImpl:
    """The array of ``shape`` laid out by ``sharding`` whose block on each addressable
    device is ``data_callback(index)`` (``index``: a tuple of slices into the array)."""
    shape = tuple(shape)
    index_map = sharding.addressable_devices_indices_map(shape)
    devs = [d for d in sharding._device_assignment if d in index_map]
    blocks = []
    for d in devs:
        block = np.asarray(data_callback(index_map[d]))
        blocks.append(block if dtype is None else block.astype(dtype))
    return make_array_from_single_device_arrays(shape, sharding, blocks)


def make_array_from_process_local_data(sharding: Any, local_data: Any,
                                       global_shape: Any = None) -> Any:
    """The global array laid out by ``sharding`` of which this process holds
    ``local_data`` (pytrees of shardings, host arrays and shapes, or one of each).

    Along a dimension where ``local_data`` is as long as the global array, each device
    takes its block from it; along the others, the blocks this process's devices hold are
    laid side by side in ``local_data``, in order (a process feeding devices that hold
    rows 8:12 and 24:28 gives 8 rows, of which rows 4:8 are the global 24:28).  Without
    ``global_shape`` each process is taken to hold its own share of every split dimension.
    """
    if isinstance(sharding, Sharding):
        return _from_process_local(sharding, local_data, global_shape)
    leaves, tree = tree_util.tree_flatten(local_data)
    shardings = tree_util.tree_leaves(sharding)
    shapes = [None] * len(leaves) if global_shape is None else tree_util.tree_leaves(
        global_shape, is_leaf=lambda x: isinstance(x, (tuple, list)) and
        all(isinstance(n, (int, np.integer)) for n in x))
    if not len(shardings) == len(shapes) == len(leaves):
        raise ValueError(f"make_array_from_process_local_data: {len(leaves)} local arrays "
                         f"but {len(shardings)} shardings and {len(shapes)} global shapes")
    return tree.unflatten([_from_process_local(s, x, g)
                           for s, x, g in zip(shardings, leaves, shapes)])


def _from_process_local(sharding: Sharding, local: Any, global_shape: Any) -> ArrayImpl:
    local = np.asarray(local)
    if global_shape is None:
        global_shape = _inferred_global_shape(sharding, local.shape)
    global_shape = tuple(int(n) for n in global_shape)
    if len(global_shape) != local.ndim:
        raise ValueError(f"make_array_from_process_local_data: global_shape {global_shape} "
                         f"and the local data's shape {local.shape} differ in rank")
    mine = sharding.addressable_devices_indices_map(global_shape)
    starts = [sorted({_start(index[d]) for index in mine.values()})
              for d in range(local.ndim)]

    def local_block(index: Index) -> np.ndarray:
        slices = []
        for d, (s, n) in enumerate(zip(index, global_shape)):
            if n == local.shape[d]:       # the whole dimension is here
                slices.append(s)
                continue
            size = len(range(*s.indices(n)))
            offset = starts[d].index(_start(s)) * size
            if offset + size > local.shape[d]:
                raise ValueError(f"make_array_from_process_local_data: the local data "
                                 f"{local.shape} is too short along dimension {d} for the "
                                 f"{len(starts[d])} blocks of {size} this process holds")
            slices.append(slice(offset, offset + size))
        return local[tuple(slices)]

    return make_array_from_callback(global_shape, sharding, local_block)


def _start(s: slice) -> int:
    return s.start or 0


def _inferred_global_shape(sharding: Sharding, local_shape: tuple) -> tuple:
    """Each split dimension ``local * (blocks in all / blocks this process holds)``."""
    probe = tuple(max(n, 1) * len(sharding._device_assignment) for n in local_shape)
    every = sharding.devices_indices_map(probe).values()
    mine = sharding.addressable_devices_indices_map(probe).values()
    shape = []
    for d, n in enumerate(local_shape):
        n_all = len({_start(i[d]) for i in every})
        n_mine = len({_start(i[d]) for i in mine})
        if n * n_all % n_mine:
            raise ValueError(f"make_array_from_process_local_data: cannot infer the global "
                             f"shape along dimension {d} from local size {n}; pass "
                             f"global_shape")
        shape.append(n * n_all // n_mine)
    return tuple(shape)


def reshard(xs: Any, out_shardings: Any) -> Any:
    """``xs`` (a pytree) laid out as ``out_shardings`` (Shardings or PartitionSpecs over the
    current mesh; a pytree prefix of ``xs``) says: moved now for concrete arrays, as a
    layout the partitioner honours under ``jit``."""
    return with_sharding_constraint(xs, out_shardings)


class Shard:
    """One device's block of an array: ``device``, ``index`` (slices into the global
    array), ``replica_id`` and ``data`` (an Array on that device)."""

    def __init__(self, device: Device, index: Index, data: Any, replica_id: int = 0):
        self.device, self.index, self.data, self.replica_id = device, index, data, replica_id

    def __repr__(self) -> str:
        return (f"Shard(device={self.device!r}, index={self.index}, "
                f"replica_id={self.replica_id}, data={self.data})")


def _shards(x: ArrayImpl) -> list[Shard]:
    sharding = sharding_of(x)
    if x._device is None or type(x._buf) is not ShardedBuffer:
        return [Shard(sharding._device_assignment[0], (slice(None),) * x.ndim, x)]
    out = []
    sb = x._buf
    for d, index, buf in zip(sb.devices, sb.indices, sb.buffers):
        replica = sharding.replica_id(sharding.mesh.coords(d)) \
            if isinstance(sharding, NamedSharding) else 0
        out.append(Shard(d, index, placed(buf, d.key, x.weak_type), replica))
    return out


ArrayImpl.sharding = property(sharding_of, doc="The array's sharding.")
ArrayImpl.addressable_shards = property(_shards,
                                        doc="The blocks of the array this process holds.")
ArrayImpl.global_shards = property(_shards, doc="The blocks of the array over every device.")
ArrayImpl.is_fully_replicated = property(lambda x: sharding_of(x).is_fully_replicated,
                                         doc="Whether every device holds the whole array.")
ArrayImpl.addressable_data = lambda x, index: _shards(x)[index].data
ArrayImpl.is_fully_addressable = property(
    lambda x: sharding_of(x).is_fully_addressable,
    doc="Whether this process holds every block of the array.")


def make_mesh(axis_shapes: Sequence[int], axis_names: Sequence[str], axis_types: Any = None,
              *, devices: Sequence[Device] | None = None) -> Mesh:
    """A mesh of shape ``axis_shapes`` over the first devices of ``devices`` (default:
    ``jax.devices()``); its axes are Explicit unless ``axis_types`` says otherwise."""
    devs = list(all_devices() if devices is None else devices)
    n = math.prod(axis_shapes)
    if len(devs) < n:
        raise ValueError(f"Number of devices {len(devs)} must be >= the product of "
                         f"mesh_shape {tuple(axis_shapes)}")
    grid = np.empty(n, dtype=object)
    grid[:] = devs[:n]
    return Mesh(grid.reshape(tuple(axis_shapes)), tuple(axis_names),
                _axis_types(axis_types, len(axis_names), AxisType.Explicit))


# ---- switching axis types ------------------------------------------------------------------

def _retyped_mesh(axes: Any, kind: AxisType, name: str) -> tuple[AbstractMesh, Any] | None:
    """(the current mesh, the same with ``axes`` -- default all -- of type ``kind``), or
    None where no mesh is set."""
    mesh = get_abstract_mesh()
    if mesh.empty:
        return None
    axes = mesh.axis_names if axes is None else (axes,) if isinstance(axes, str) \
        else tuple(axes)
    for a in axes:
        if a not in mesh.axis_names:
            raise ValueError(f"{name}: {a!r} is not an axis of the current mesh {mesh}")
        if mesh.axis_types[mesh.axis_names.index(a)] == AxisType.Manual:
            raise NotImplementedError("Going from `Manual` AxisType to `Auto` or `Explicit` "
                                      "AxisType is not allowed.")
    return mesh, mesh.update_axis_types({a: kind for a in axes})


def _retyped(x: Any, mesh: AbstractMesh) -> Any:
    """``x`` laid out as it is (a concrete array: as its blocks lie; a traced value: as
    its type says), over ``mesh`` (the same axes, of other types)."""
    placed_as = getattr(x, "_device", None)
    spec = placed_as.spec if isinstance(placed_as, NamedSharding) else \
        get_aval(x).sharding.spec
    return reshard(x, NamedSharding(_devices_for(mesh) or mesh, spec))


def _required(kwargs: dict, name: str, given: Any) -> Any:
    """The layout given to the decorator, else the call's keyword ``name`` (taken out of
    ``kwargs``); one of them is required."""
    value = kwargs.pop(name, given)
    if value is None:
        raise TypeError(f"Missing required keyword argument: '{name}'")
    return value


def auto_axes(fun: Any = None, /, *, axes: Any = None, out_sharding: Any = None) -> Any:
    """``fun`` run with the mesh axes ``axes`` (default: all) of type Auto: inside, values'
    types name no layout over them and the compiler lays them out; the results are laid
    out as ``out_sharding`` says (given here or as a keyword of the call)."""
    if fun is None:
        return lambda f: auto_axes(f, axes=axes, out_sharding=out_sharding)

    @functools.wraps(fun)
    def run(*args: Any, **kwargs: Any) -> Any:
        want = _required(kwargs, "out_sharding", out_sharding)
        meshes = _retyped_mesh(axes, AxisType.Auto, "auto_axes")
        if meshes is None or set(meshes[0].auto_axes) == set(meshes[1].auto_axes):
            return fun(*args, **kwargs)
        with use_abstract_mesh(meshes[1]):
            args = tree_map(lambda x: _retyped(x, meshes[1]), args)
            out = fun(*args, **kwargs)
        return reshard(out, want)
    return run


def explicit_axes(fun: Any = None, /, *, axes: Any = None, in_sharding: Any = None) -> Any:
    """``fun`` run with the mesh axes ``axes`` (default: all) of type Explicit: its
    arguments are laid out as ``in_sharding`` says (given here or as a keyword of the call)
    and their types name it; the results go back to the mesh outside as they are laid
    out."""
    if fun is None:
        return lambda f: explicit_axes(f, axes=axes, in_sharding=in_sharding)

    @functools.wraps(fun)
    def run(*args: Any, **kwargs: Any) -> Any:
        given = _required(kwargs, "in_sharding", in_sharding)
        meshes = _retyped_mesh(axes, AxisType.Explicit, "explicit_axes")
        if meshes is None:
            raise ValueError("Context mesh cannot be empty. Please use `jax.set_mesh` API to "
                             "enter into a mesh context when using `explicit_axes` API.")
        with use_abstract_mesh(meshes[1]):
            args = reshard(args, given)
            out = fun(*args, **kwargs)
        return tree_map(lambda x: _retyped(x, meshes[0]), out)
    return run
