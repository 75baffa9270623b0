"""SPMD: programs that run on every device of a mesh.

* :mod:`.runtime` -- one per-device program compiled once and run on all the devices of a
  mesh at once, with their communicators;
* :mod:`.partition` -- a program written for whole arrays split into per-device programs
  with collectives where the layouts of operands disagree (``jit`` over sharded arrays,
  eager operations on them);
* :mod:`.shard_map` -- ``shard_map``: the user's own per-device function, and its rules
  (jvp, transpose, batching);
* :mod:`.smap` -- ``smap``: ``shard_map`` over one mesh axis, with vmap-style axes;
* :mod:`.pmap` -- ``pmap`` on ``shard_map``;
* :mod:`.inspect_sharding` -- ``jax.debug.inspect_array_sharding`` (the partitioner
  reports a value's layout when compiling).
"""
