"""Test helpers for the Core ML evaluator's tests: random inputs and the NHWC <-> NCHW
layouts (TensorFlow works channels-last, Core ML channels-first)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def normal_arrays(rng: np.random.Generator) -> Callable[..., np.ndarray]:
    """``rand(*shape, scale=1.0)``: float32 standard normal samples times ``scale``, drawn
    from ``rng`` (so a module's draws depend only on its own seed)."""

    def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return rand


def nchw(x_nhwc) -> np.ndarray:
    """A channels-last (N, H, W, C) array or tensor as a contiguous channels-first array."""
    return np.ascontiguousarray(np.transpose(np.asarray(x_nhwc), (0, 3, 1, 2)))


def nhwc(x_nchw) -> np.ndarray:
    """A channels-first (N, C, H, W) array as channels-last."""
    return np.transpose(np.asarray(x_nchw), (0, 2, 3, 1))
