"""Training programs written against JAX and its libraries, run unchanged by JAX itself
(``make_reference.py`` records their losses) and by tinyjax installed as ``jax`` (the
tests compare).  Each program returns the loss of every training step as Python floats.

Every program draws its data from numpy's seeded generator and its parameters from
``jax.random`` (tinyjax's Threefry draws are JAX's), so both runs start from the same
numbers."""
from __future__ import annotations

import numpy as np

STEPS = 12
BATCH, LENGTH, CLASSES = 32, 40, 10


def classification_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An MNIST-1D-shaped batch: (BATCH, LENGTH) float32 signals and int32 labels, the
    label shifting a bump along the signal (so that it can be learned)."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, CLASSES, BATCH).astype(np.int32)
    t = np.arange(LENGTH, dtype=np.float32)
    centre = 2.0 + labels[:, None] * (LENGTH - 4) / CLASSES
    x = np.exp(-0.5 * (t[None, :] - centre) ** 2) + 0.3 * rng.randn(BATCH, LENGTH)
    return x.astype(np.float32), labels
