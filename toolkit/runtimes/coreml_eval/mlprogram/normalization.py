"""MIL normalisation ops: ``softmax``, ``batch_norm`` (inference statistics, channel axis
1) and ``layer_norm``, per coremltools' op definitions."""

from __future__ import annotations

import numpy as np

from .. import ops
from .registry import implements


@implements("softmax")
def _softmax(a):
    return ops.softmax(a.f32(), axis=int(a.scalar("axis", -1)))


@implements("batch_norm")
def _batch_norm(a):
    x = a.f32()
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = a.f32("mean").reshape(shape), a.f32("variance").reshape(shape)
    eps = np.float32(a.scalar("epsilon", 1e-5))
    y = (x - mean) / np.sqrt(var + eps)
    if a.has("gamma"):
        y = y * a.f32("gamma").reshape(shape)
    if a.has("beta"):
        y = y + a.f32("beta").reshape(shape)
    return y


@implements("layer_norm")
def _layer_norm(a):
    x = a.f32()
    axes = tuple(a.ints("axes", list(range(x.ndim))))
    eps = np.float32(a.scalar("epsilon", 1e-5))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    if a.has("gamma"):
        y = y * a.f32("gamma")
    if a.has("beta"):
        y = y + a.f32("beta")
    return y
